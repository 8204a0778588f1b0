// Methods between two models or of one, with mergekit 0.1.5's names, parameters and arithmetic:
//   slerp        spherical interpolation from the base to the other model at t (per tensor,
//                over its flattened values; nearly collinear pairs, |cos| > 0.9995, interpolate
//                linearly), Shoemake 1985;
//   nearswap     per element, move from the base towards the other model by
//                w = clamp(t / max(|a - b|, 1e-6), 0, 1): values closer than t are swapped in;
//   passthrough  one model's tensor, optionally times a per-model `scale`.
// slerp computes in fp32 (fp64 for fp64 inputs) in mergekit's chunked order and stores in the
// input dtype; nearswap and passthrough compute in the tensors' own dtype, as mergekit does.
#include <torch/torch.h>

#include "uqmerge/merge/method.hpp"
#include "uqmerge/util/error.hpp"

namespace uqmerge::merge {

namespace {

constexpr int64_t kSlerpChunk = 1 << 20;  // elements per chunk (mergekit's _CHUNK_ELEMENTS)

// v0 -> v1 at t, both [N] flattened (one output row, as mergekit's batch of one tensor).
at::Tensor slerp(double t_value, const at::Tensor& v0, const at::Tensor& v1) {
  const auto dt = v0.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
  const at::Tensor a = v0.reshape({1, -1}), b = v1.reshape({1, -1});
  const at::Tensor t = torch::full({1, 1}, t_value, torch::TensorOptions().dtype(torch::kFloat64)).to(dt);
  const int64_t n = a.size(1);
  if (n == 0) return ((1 - t) * a + t * b).reshape(v0.sizes()).to(v0.scalar_type());
  std::vector<at::Tensor> na, nb;
  for (int64_t s = 0; s < n; s += kSlerpChunk) {
    const int64_t len = std::min(kSlerpChunk, n - s);
    na.push_back(at::linalg_vector_norm(a.narrow(1, s, len).to(dt), 2, {1}, /*keepdim=*/true));
    nb.push_back(at::linalg_vector_norm(b.narrow(1, s, len).to(dt), 2, {1}, /*keepdim=*/true));
  }
  at::Tensor norm_a = at::linalg_vector_norm(torch::stack(na), 2, {0});
  at::Tensor norm_b = at::linalg_vector_norm(torch::stack(nb), 2, {0});
  const double eps = 1e-8;
  norm_a = torch::where(norm_a > eps, norm_a, torch::ones_like(norm_a));
  norm_b = torch::where(norm_b > eps, norm_b, torch::ones_like(norm_b));
  std::vector<at::Tensor> dots;
  for (int64_t s = 0; s < n; s += kSlerpChunk) {
    const int64_t len = std::min(kSlerpChunk, n - s);
    const at::Tensor x = a.narrow(1, s, len).to(dt) / norm_a, y = b.narrow(1, s, len).to(dt) / norm_b;
    dots.push_back((x * y).sum({1}, /*keepdim=*/true));
  }
  const at::Tensor dot = torch::stack(dots).sum({0}).clamp(-1, 1);
  const at::Tensor linear = dot.abs() > 0.9995;
  const at::Tensor theta = torch::acos(torch::where(linear, torch::zeros_like(dot), dot));
  const at::Tensor sin_theta = torch::sin(theta);
  const at::Tensor coef_a = torch::where(linear, 1 - t, torch::sin((1 - t) * theta) / sin_theta);
  const at::Tensor coef_b = torch::where(linear, t, torch::sin(t * theta) / sin_theta);
  at::Tensor result = torch::empty_like(a);
  for (int64_t s = 0; s < n; s += kSlerpChunk) {
    const int64_t len = std::min(kSlerpChunk, n - s);
    result.narrow(1, s, len).copy_(coef_a * a.narrow(1, s, len).to(dt) + coef_b * b.narrow(1, s, len).to(dt));
  }
  return result.reshape(v0.sizes());
}

class Slerp final : public Method {
 public:
  const std::string& name() const override {
    static const std::string n = "slerp";
    return n;
  }
  bool needs_base() const override { return true; }
  size_t max_models() const override { return 1; }
  std::vector<ParamSpec> params() const override { return {{"t", false, std::nullopt}}; }
  at::Tensor merge(const TensorGroup& g, const Params& p, uint64_t) const override {
    if (!g.base.is_floating_point()) throw_bad_input(g.name, "slerp needs floating-point tensors");
    return slerp(p.t, g.base, g.models[0]);
  }
};

class NearSwap final : public Method {
 public:
  const std::string& name() const override {
    static const std::string n = "nearswap";
    return n;
  }
  bool needs_base() const override { return true; }
  size_t max_models() const override { return 1; }
  std::vector<ParamSpec> params() const override { return {{"t", false, std::nullopt}}; }
  at::Tensor merge(const TensorGroup& g, const Params& p, uint64_t) const override {
    const at::Tensor& a = g.base;
    const at::Tensor& b = g.models[0].to(a.scalar_type());
    // The same tensor ops as mergekit's, in this order (t / x is reciprocal(x) * t in torch).
    const at::Tensor weight = (at::reciprocal(torch::abs(a - b).clamp_min(1e-6)) * p.t).clamp(0, 1);
    return weight * b + (1 - weight) * a;
  }
};

class Passthrough final : public Method {
 public:
  const std::string& name() const override {
    static const std::string n = "passthrough";
    return n;
  }
  bool needs_base() const override { return false; }
  size_t min_inputs() const override { return 1; }
  size_t max_models() const override { return 1; }
  bool single_is_identity() const override { return false; }
  std::vector<ParamSpec> params() const override { return {{"scale", true, 1.0}}; }
  at::Tensor merge(const TensorGroup& g, const Params& p, uint64_t) const override {
    return p.scale.empty() || p.scale[0] == 1.0 ? g.models[0] : g.models[0] * p.scale[0];
  }
};

}  // namespace

std::vector<const Method*> interpolation_methods() {
  static const Slerp slerp;
  static const NearSwap nearswap;
  static const Passthrough passthrough;
  return {&slerp, &nearswap, &passthrough};
}

}  // namespace uqmerge::merge
