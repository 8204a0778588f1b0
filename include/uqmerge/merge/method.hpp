// uqmerge/merge/method.hpp — merge methods over one tensor at a time, with mergekit's names,
// parameters and defaults (so users bring their mergekit YAML), one file per family behind one
// registry (merge/registry.cpp):
//   linear            sum_i w_i x_i (/ sum_i w_i when normalize, default true)
//   task_arithmetic   base + lambda * sum_i w_i (x_i - base) (normalize default false)
//   ties              + magnitude top-k sparsification (density) and sign consensus (sum)
//   dare_linear       + random keep-with-probability-density sparsification
//   dare_ties         + random sparsification and sign consensus
//   breadcrumbs[_ties] + drop the gamma largest and the smallest, keep density
//   della[_linear]    + rank-dependent keep probabilities density +/- epsilon (MagPrune)
//   model_stock       t = N cos/(1 + (N-1) cos), t * mean_i x_i + (1 - t) base (per tensor or row)
//   slerp, nearswap   between the base and one model at t; passthrough: one model (x scale)
//   multislerp, karcher, nuslerp, sce   on the sphere / select-calculate-erase (merge/spherical.cpp)
// DARE/DELLA rescaling: `rescale: density` divides kept values by their keep probability (the
// DARE/DELLA papers, mergekit 0.0.4.4 which the paper's release vendors; default), `l1` matches
// the L1 norm (mergekit >= Feb 2025; `rescale: true` in mergekit 0.1.x), `none`.
// Random masks derive from (seed, tensor name, model index): never from the rank.
// Computation in fp32 (fp64 for fp64 inputs); the caller casts to the output dtype.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "uqmerge/merge/config.hpp"

namespace uqmerge::merge {

enum class Rescale { None, Density, L1 };

// Parameters after resolution for one tensor: global ones and one value per model.
struct Params {
  bool normalize = false;
  double lambda = 1.0;
  Rescale rescale = Rescale::Density;
  bool filter_wise = false;          // model_stock
  double t = 0.5;                    // slerp, nearswap: the interpolation / swap parameter
  std::vector<double> weight;        // per model
  std::vector<double> density;       // per model
  std::vector<double> gamma;         // per model (breadcrumbs)
  std::vector<double> epsilon;       // per model (della)
  std::vector<double> scale;         // per model (passthrough)
  std::map<std::string, double> shared;  // every global parameter the method declares, resolved (defaults filled)
  double shared_or(const std::string& k, double def) const {
    auto it = shared.find(k);
    return it == shared.end() ? def : it->second;
  }
};

struct TensorGroup {
  std::string name;                 // canonical tensor name (keys the random masks)
  at::Tensor base;                  // undefined when the method needs none
  std::vector<at::Tensor> models;   // same shape as base
};

struct ParamSpec {
  std::string name;
  bool per_model;
  std::optional<double> default_value;  // nullopt: required
};

class Method {
 public:
  virtual ~Method() = default;
  virtual const std::string& name() const = 0;
  virtual bool needs_base() const = 0;
  virtual size_t min_models() const { return 1; }          // models besides the base
  virtual size_t max_models() const { return SIZE_MAX; }   // models besides the base
  virtual size_t min_inputs() const { return 2; }          // models plus the base, if any
  // Whether one member alone merges to itself (run's step 1; false for passthrough's scale).
  virtual bool single_is_identity() const { return true; }
  virtual std::vector<ParamSpec> params() const = 0;
  // Defaults of the global flags that differ per method (normalize, rescale).
  virtual bool default_normalize() const { return false; }
  virtual Rescale default_rescale() const { return Rescale::None; }
  virtual at::Tensor merge(const TensorGroup& g, const Params& p, uint64_t seed) const = 0;
  // The merge written straight in the output dtype. Default: merge() then a cast; the
  // task-arithmetic family overrides it with a chunked kernel (no tensor-sized temporaries).
  virtual at::Tensor merge_into(const TensorGroup& g, const Params& p, uint64_t seed, at::ScalarType out) const;
  // Running-sum methods (linear): merge() == finish(accumulate(...) over the models in order),
  // so the incremental driver adds only each step's new model. acc starts as zeros in the
  // compute dtype (fp32; fp64 for fp64 inputs).
  virtual bool running_sum() const { return false; }
  virtual void accumulate(at::Tensor& acc, const at::Tensor& x, double weight) const;
  virtual void finish(at::Tensor& acc, double weight_sum, const Params& p) const;
  // What finish() divides by (1: nothing): the engine's fused weighted-sum kernel
  // (merge/sum_kernel.hpp) computes finish(sum_i w_i x_i) as that sum over this divisor.
  virtual double running_sum_divisor(double weight_sum, const Params& p) const { return 1.0; }
};

// The registry: every method by name; bad input listing the valid names for an unknown one
// (method_names(), in registry order: merge/config.hpp).
const Method& find_method(const std::string& name);

// Factories (one per source file).
std::vector<const Method*> linear_methods();
std::vector<const Method*> task_arithmetic_methods();
std::vector<const Method*> model_stock_methods();
std::vector<const Method*> interpolation_methods();  // slerp, nearswap, passthrough
std::vector<const Method*> spherical_methods();      // multislerp, karcher, nuslerp, sce

}  // namespace uqmerge::merge
