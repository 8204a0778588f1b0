// uqmerge/merge/config.hpp — the one merge configuration type and its one parser. `uqmerge
// merge` (a mergekit YAML file) and `uqmerge run` (its `merge:` section and the candidates'
// `parameters:`) both end up here: the method is looked up in the registry (merge/method.hpp),
// every parameter name is checked against what that method declares (global vs per model),
// every value against its range, before any checkpoint is opened. Torch-free.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "uqmerge/io/dtype.hpp"

namespace YAML {
class Node;
}

namespace uqmerge::merge {

// Every merge method's name, in the registry's order (merge/registry.cpp).
std::vector<std::string> method_names();

// One parameter as mergekit's YAML states it (its ParameterSetting): a number (true/false as
// 1/0); a gradient — a list of numbers interpolated linearly over the layers (layer i of L at
// t = i / (L - 1), t = 1 when L = 1; tensors outside the layers at t = 0); or a list of
// conditions {filter: SUBSTRING, value: number or gradient} where the first condition whose
// filter is a substring of the tensor's name (no filter, or "*": every tensor) gives the value.
// No matching condition: the next scope decides (the model's, then the global, then the default).
struct ParamSetting {
  struct Cond {
    std::string filter;          // "" = every tensor
    std::vector<double> values;  // 1: a number; more: a gradient
  };
  std::vector<Cond> conds;
  static ParamSetting number(double v) { return {{{"", {v}}}}; }
  // The value for `tensor` (its name in the checkpoint) at layer position t in [0, 1].
  std::optional<double> at(const std::string& tensor, double t) const;
  bool is_number(double v) const { return conds.size() == 1 && conds[0].filter.empty() && conds[0].values == std::vector<double>{v}; }
};
using ParamMap = std::map<std::string, ParamSetting>;

// One input model: a candidate of `run`, a member of a mergekit `models:` list.
struct ModelEntry {
  std::string name;  // default: the directory's name
  std::filesystem::path path;
  ParamMap parameters;  // per-model merge parameters (weight, density, ...)
};

struct MergeConfig {
  std::string source;                       // the config file (error messages)
  std::string method = "linear";
  // How Algorithm 1's step t combines the first t members: `uniform` (the paper's text: their
  // average) or `cascade` (the authors' release, multi_stage_merging.py: a 1:1 linear merge of
  // step t-1's result with member t, rounded to the output dtype at every step, so member k
  // weighs 2^-(t-k+1), the first 2^-(t-1)). Cascade needs the linear method.
  std::string schedule = "uniform";
  std::optional<std::filesystem::path> base_model;
  ParamMap global;                          // normalize, lambda, t, filter_wise, ..., per-model defaults
  std::string rescale;                      // "", density, l1, none ("": the method's default)
  std::optional<DType> out_dtype;           // default: the reference's dtype per tensor
  uint64_t seed = 0;                        // random masks (DARE, DELLA)
  bool merge_vision = false;                // else the vision tower must be bit-identical and is copied
  uint64_t shard_bytes = 5'000'000'000ull;  // output shard size
  uint64_t resident_bytes = 4096ull << 20;  // per rank: members' owned tensors kept in memory
};

// `uqmerge merge FILE`: mergekit's schema (merge_method, base_model, models, parameters,
// dtype/out_dtype, seed, merge_vision, shard_size_mb; uqmerge's `schedule: cascade` merges the
// models in list order as the release's chain of 1:1 merges). A listed model equal to base_model is
// dropped (mergekit lists it), a model listed twice is bad input. The result is validated.
struct MergeJob {
  MergeConfig merge;
  std::vector<ModelEntry> models;
};
MergeJob load_mergekit_yaml(const std::filesystem::path& path);

// `uqmerge run`'s `merge:` mapping (method, schedule, parameters, resident_memory_mb) into `out`;
// `file` names the config in errors.
void parse_merge_section(const YAML::Node& merge, const std::string& file, MergeConfig& out);
// A `parameters:` mapping of one model (numbers, gradients, filtered conditions) into `out` —
// names are checked by validate(), once the method is known.
void parse_model_parameters(const YAML::Node& params, const std::string& file, const std::string& where, ParamMap& out);
// Every check that needs the method: the method exists, needs_base has a base_model, each
// global and per-model parameter is one the method declares, values are in range, no model
// listed twice. Bad input naming `cfg.source` and the key.
void validate(const MergeConfig& cfg, const std::vector<ModelEntry>& models);
// At least 2 inputs (task-vector methods: the base and one model), bad input otherwise.
void require_enough_models(const MergeConfig& cfg, size_t n);

}  // namespace uqmerge::merge
