// Model Stock (Jang et al., 2024): interpolate between the base and the average of the
// fine-tuned models with t = N cos / (1 + (N - 1) cos), cos = the mean pairwise cosine of the
// task vectors, per tensor (or per row with filter_wise). A singular denominator keeps the base.
#include <torch/torch.h>

#include "uqmerge/merge/method.hpp"

namespace uqmerge::merge {

namespace {
class ModelStock final : public Method {
 public:
  const std::string& name() const override {
    static const std::string n = "model_stock";
    return n;
  }
  bool needs_base() const override { return true; }
  size_t min_models() const override { return 2; }
  std::vector<ParamSpec> params() const override { return {{"filter_wise", false, 0.0}}; }
  at::Tensor merge(const TensorGroup& g, const Params& p, uint64_t) const override {
    const auto dt = g.base.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
    at::Tensor w0 = g.base.to(dt);
    std::vector<at::Tensor> ws;
    for (const auto& m : g.models) ws.push_back(m.to(dt));
    if (p.filter_wise) {
      if (w0.dim() == 1) {
        w0 = w0.unsqueeze(0);
        for (auto& w : ws) w = w.unsqueeze(0);
      }
    } else {
      w0 = w0.reshape(-1);
      for (auto& w : ws) w = w.reshape(-1);
    }
    std::vector<at::Tensor> off;
    for (const auto& w : ws) off.push_back(w - w0);
    std::vector<at::Tensor> cos;
    for (size_t a = 0; a < off.size(); ++a)
      for (size_t b = a + 1; b < off.size(); ++b) {
        const at::Tensor norms = torch::norm(off[a], 2, {-1}) * torch::norm(off[b], 2, {-1});
        cos.push_back(((off[a] * off[b]).sum(-1) / norms.clamp_min(1e-6)).clamp(-1, 1));
      }
    const at::Tensor c = torch::stack(cos).mean(0).unsqueeze(-1);
    const double n = static_cast<double>(ws.size());
    const at::Tensor den = 1 + (n - 1) * c;
    const at::Tensor singular = den.abs() < 1e-6;
    const at::Tensor t = torch::where(singular, torch::zeros_like(c), (n * c) / torch::where(singular, torch::ones_like(den), den));
    at::Tensor avg = ws[0].clone();
    for (size_t i = 1; i < ws.size(); ++i) avg = avg + ws[i];
    avg = avg / n;
    return (t * avg + (1 - t) * w0).reshape(g.base.sizes());
  }
};
}  // namespace

std::vector<const Method*> model_stock_methods() {
  static const ModelStock ms;
  return {&ms};
}

}  // namespace uqmerge::merge
