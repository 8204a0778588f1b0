// linear: a weighted average of the models (Wortsman et al., model soups).
#include <torch/torch.h>

#include "uqmerge/merge/method.hpp"

namespace uqmerge::merge {

namespace {
class Linear final : public Method {
 public:
  const std::string& name() const override {
    static const std::string n = "linear";
    return n;
  }
  bool needs_base() const override { return false; }
  bool default_normalize() const override { return true; }
  std::vector<ParamSpec> params() const override { return {{"weight", true, std::nullopt}, {"normalize", false, 1.0}}; }
  at::Tensor merge(const TensorGroup& g, const Params& p, uint64_t) const override {
    const auto dt = g.models[0].scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
    at::Tensor acc = torch::zeros(g.models[0].sizes(), torch::TensorOptions().dtype(dt));
    double wsum = 0;
    for (size_t i = 0; i < g.models.size(); ++i) {
      accumulate(acc, g.models[i], p.weight[i]);
      wsum += p.weight[i];
    }
    finish(acc, wsum, p);
    return acc;
  }
  bool running_sum() const override { return true; }
  void accumulate(at::Tensor& acc, const at::Tensor& x, double w) const override { acc.add_(x.to(acc.scalar_type()), w); }
  void finish(at::Tensor& acc, double wsum, const Params& p) const override {
    if (p.normalize) acc.div_(wsum);
  }
  double running_sum_divisor(double wsum, const Params& p) const override { return p.normalize ? wsum : 1.0; }
};
}  // namespace

std::vector<const Method*> linear_methods() {
  static const Linear linear;
  return {&linear};
}

}  // namespace uqmerge::merge
