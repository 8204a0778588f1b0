// Methods on the hypersphere and SCE, with mergekit 0.1.5's names, parameters and arithmetic
// (the same tensor operations in the same order, so fp32 results are mergekit's bits):
//   multislerp  barycentric interpolation on the sphere (Goddard): unit vectors' weighted mean,
//               the tangent-space weighted sum at it, the exponential map back, times the
//               weighted mean norm; relative to the base when one is given;
//   karcher     the weighted Karcher (Riemannian) mean of every input on the unit sphere by up
//               to max_iter fixed-point steps (tol), times the weighted mean norm;
//   nuslerp     slerp of two models at t = w2 / (w1 + w2), flattened (default) or per row /
//               column (nuslerp_row_wise), of the task vectors when a base is given;
//   sce         select (top select_topk of the elements by variance across the task vectors),
//               calculate (weights by mean squared task vector), erase (TIES sign consensus).
#include <torch/torch.h>

#include "uqmerge/merge/method.hpp"
#include "uqmerge/util/error.hpp"

namespace uqmerge::merge {

namespace {

at::Tensor vnorm(const at::Tensor& x) { return at::linalg_vector_norm(x, 2); }
at::Tensor vnorm_last(const at::Tensor& x) { return at::linalg_vector_norm(x, 2, {-1}, /*keepdim=*/true); }

class MultiSlerp final : public Method {
 public:
  const std::string& name() const override {
    static const std::string n = "multislerp";
    return n;
  }
  bool needs_base() const override { return false; }  // optional: used when given
  size_t min_inputs() const override { return 1; }
  std::vector<ParamSpec> params() const override {
    return {{"weight", true, std::nullopt}, {"normalize_weights", false, 1.0}, {"eps", false, 1e-8}};
  }
  at::Tensor merge(const TensorGroup& g, const Params& p, uint64_t) const override {
    if (g.models.size() == 1) return g.models[0];
    at::Tensor tensors = torch::stack(g.models, 0);
    if (g.base.defined()) tensors -= g.base;
    const at::Tensor flat = tensors.view({tensors.size(0), -1});
    at::Tensor w = torch::tensor(p.weight, torch::TensorOptions().dtype(torch::kFloat64)).to(tensors.scalar_type());
    if (p.shared_or("normalize_weights", 1) != 0) w = w / w.sum();
    const double eps = p.shared_or("eps", 1e-8);
    const at::Tensor norms = vnorm_last(flat);
    const at::Tensor units = flat / (norms + eps);
    at::Tensor mean = (units * w.view({-1, 1})).sum(0);
    const at::Tensor mean_norm = vnorm(mean);
    if (mean_norm.item<double>() < eps) {
      if (tensors.size(0) == 2) {
        at::Tensor res = (tensors[0] * w[0] + tensors[1] * w[1]).view(tensors.sizes().slice(1));
        return g.base.defined() ? res + g.base : res;
      }
      throw_bad_input(g.name, "multislerp: the weighted sum of the inputs is zero (antipodal inputs with balancing weights); "
                              "change the weights");
    }
    mean = mean / mean_norm;
    const at::Tensor dots = (units * mean).sum(-1, /*keepdim=*/true);
    const at::Tensor tangent = units - dots * mean;
    const at::Tensor tangent_result = (tangent * w.view({-1, 1})).sum(0);
    const at::Tensor tangent_norm = vnorm(tangent_result) + eps;
    at::Tensor result = mean * torch::cos(tangent_norm) + tangent_result * (torch::sin(tangent_norm) / tangent_norm);
    result = result * (norms.squeeze(-1) * w).sum();
    result = result.view(tensors.sizes().slice(1));
    return g.base.defined() ? result + g.base : result;
  }
};

class Karcher final : public Method {
 public:
  const std::string& name() const override {
    static const std::string n = "karcher";
    return n;
  }
  bool needs_base() const override { return false; }  // a base, when given, is one more input
  size_t min_inputs() const override { return 1; }
  std::vector<ParamSpec> params() const override { return {{"max_iter", false, 10.0}, {"tol", false, 1e-5}}; }
  at::Tensor merge(const TensorGroup& g, const Params& p, uint64_t) const override {
    std::vector<at::Tensor> tensors;
    if (g.base.defined()) tensors.push_back(g.base);
    for (const auto& m : g.models) tensors.push_back(m);
    if (tensors.size() == 1) return tensors[0];
    const int max_iter = static_cast<int>(p.shared_or("max_iter", 10));
    const double tol = p.shared_or("tol", 1e-5);
    const double alpha = 1.0 / static_cast<double>(tensors.size());
    const auto dt = tensors[0].scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
    std::vector<at::Tensor> norms, units;
    for (const auto& t : tensors) {
      const at::Tensor n = vnorm(t.to(dt));
      norms.push_back(n);
      units.push_back(n.item<double>() == 0.0 ? torch::zeros_like(t) : (t / n).to(t.scalar_type()));
    }
    std::vector<size_t> valid;
    for (size_t k = 0; k < norms.size(); ++k)
      if (norms[k].item<double>() > tol) valid.push_back(k);
    if (valid.empty()) {
      at::Tensor zero = tensors[0] * 0;
      for (size_t k = 1; k < tensors.size(); ++k) zero = zero + tensors[k] * 0;
      return zero;
    }
    double alpha_sum = 0;  // Python's sum() of equal alphas, in order
    for (size_t k = 0; k < valid.size(); ++k) alpha_sum += alpha;
    const double a = alpha / alpha_sum;
    at::Tensor mean = torch::zeros_like(units[valid[0]]);
    for (size_t k : valid) mean += a * units[k];
    const at::Tensor mean_norm = vnorm(mean.to(dt));
    mean = mean_norm.item<double>() < tol ? units[valid[0]].clone() : (mean / mean_norm).to(mean.scalar_type());
    for (int it = 0; it < max_iter; ++it) {
      at::Tensor tangent = torch::zeros_like(mean);
      for (size_t k : valid) {
        const at::Tensor dot = torch::clamp(torch::dot(mean.flatten(), units[k].flatten()), -1.0, 1.0);
        const at::Tensor theta = torch::arccos(dot);
        if (theta.item<double>() < tol) continue;
        tangent += a * (theta / torch::sin(theta)) * (units[k] - dot * mean);
      }
      const at::Tensor tangent_norm = vnorm(tangent.to(dt));
      if (tangent_norm.item<double>() < tol) break;
      mean = (torch::cos(tangent_norm) * mean + torch::sin(tangent_norm) * (tangent / tangent_norm)).to(mean.scalar_type());
      const at::Tensor unit_norm = vnorm(mean.to(dt));
      if (unit_norm.item<double>() > tol) mean = (mean / unit_norm).to(mean.scalar_type());
    }
    at::Tensor scale = alpha * norms[0];  // Python: sum(alpha * norm ...) starts from int 0
    for (size_t k = 1; k < norms.size(); ++k) scale = scale + alpha * norms[k];
    return scale * mean;
  }
};

at::Tensor nuslerp(double t, at::Tensor v0, at::Tensor v1, bool row_wise, bool flatten) {
  const auto out_shape = v0.sizes().vec();
  auto normalize = [](const at::Tensor& x) { return x / vnorm_last(x).clamp_min(1e-7); };
  if (flatten) {
    v0 = v0.reshape({-1});
    v1 = v1.reshape({-1});
  } else if (row_wise) {
    v0 = v0.transpose(0, -1);
    v1 = v1.transpose(0, -1);
  }
  const at::Tensor cos_theta = (normalize(v0) * normalize(v1)).sum(-1, /*keepdim=*/true).clamp(-1, 1);
  const double eps = 1e-8;
  const at::Tensor colinear = (1 - cos_theta.square()) <= eps * eps;
  const at::Tensor theta = torch::acos(torch::where(colinear, torch::zeros_like(cos_theta), cos_theta));
  const at::Tensor sin_theta = torch::sin(theta);
  at::Tensor result = (torch::sin((1 - t) * theta) * v0 + torch::sin(t * theta) * v1) / sin_theta;
  result = torch::where(colinear, (1 - t) * v0 + t * v1, result);
  if (row_wise && !flatten) result = result.transpose(0, -1);
  return result.reshape(out_shape);
}

class NuSlerp final : public Method {
 public:
  const std::string& name() const override {
    static const std::string n = "nuslerp";
    return n;
  }
  bool needs_base() const override { return false; }  // optional: slerp of task vectors when given
  size_t min_models() const override { return 2; }
  size_t max_models() const override { return 2; }
  std::vector<ParamSpec> params() const override {
    return {{"weight", true, std::nullopt}, {"nuslerp_row_wise", false, 0.0}, {"nuslerp_flatten", false, 1.0}};
  }
  at::Tensor merge(const TensorGroup& g, const Params& p, uint64_t) const override {
    const double total = p.weight[0] + p.weight[1];
    const double t = std::abs(total) < 1e-6 ? 0.5 : p.weight[1] / total;
    const bool row_wise = p.shared_or("nuslerp_row_wise", 0) != 0, flatten = p.shared_or("nuslerp_flatten", 1) != 0;
    if (g.base.defined()) return g.base + nuslerp(t, g.models[0] - g.base, g.models[1] - g.base, row_wise, flatten);
    return nuslerp(t, g.models[0], g.models[1], row_wise, flatten);
  }
};

class Sce final : public Method {
 public:
  const std::string& name() const override {
    static const std::string n = "sce";
    return n;
  }
  bool needs_base() const override { return true; }
  std::vector<ParamSpec> params() const override { return {{"int8_mask", false, 0.0}, {"select_topk", false, 1.0}}; }
  at::Tensor merge(const TensorGroup& g, const Params& p, uint64_t) const override {
    const at::Tensor& base = g.base;
    std::vector<at::Tensor> deltas;
    for (const auto& m : g.models) deltas.push_back(m - base);
    at::Tensor tv = torch::stack(deltas, 0);
    const double k_frac = p.shared_or("select_topk", 1.0);
    if (k_frac < 1) {  // select: the elements whose task vectors vary most across models
      at::Tensor mask;
      if (k_frac <= 0) {
        mask = torch::zeros_like(tv[0]);
      } else {
        const at::Tensor var = at::var(tv, {0}, /*correction=*/0, /*keepdim=*/false);
        const int64_t k = static_cast<int64_t>(static_cast<double>(torch::count_nonzero(var).item<int64_t>()) * k_frac);
        mask = torch::zeros_like(var);
        if (k > 0) mask.view({-1}).index_fill_(0, std::get<1>(torch::topk(var.abs().view({-1}), k, -1, true)), 1);
      }
      tv = tv * mask.unsqueeze(0);
    }
    // erase: TIES sign consensus by sum (>= 0 counts as +)
    const at::Tensor sign = tv.sign();
    const at::Tensor majority = (tv.sum(0) >= 0).to(tv.scalar_type()) * 2 - 1;
    const at::Tensor erase = (sign == majority).to(tv.scalar_type());
    // calculate: weights by mean squared task vector
    at::Tensor w = tv.square().reshape({tv.size(0), -1}).mean(1);
    const double wsum = torch::sum(w).item<double>();
    w = std::abs(wsum) < 1e-6 ? torch::ones_like(w) / w.size(0) : w / wsum;
    while (w.dim() < tv.dim()) w = w.unsqueeze(-1);
    const at::Tensor ew = w * erase;
    return base + (tv * ew).sum(0) / torch::sum(ew, 0).clamp_min(1e-6);
  }
};

}  // namespace

std::vector<const Method*> spherical_methods() {
  static const MultiSlerp multislerp;
  static const Karcher karcher;
  static const NuSlerp nuslerp;
  static const Sce sce;
  return {&multislerp, &karcher, &nuslerp, &sce};
}

}  // namespace uqmerge::merge
