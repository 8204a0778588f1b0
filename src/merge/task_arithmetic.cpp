// The task-arithmetic family (Ilharco et al.; TIES, Yadav et al.; DARE, Yu et al.; Model
// Breadcrumbs, Davari & Belilovsky; DELLA, Deep et al.): one generalised method configured by a
// sparsification and an optional sign consensus, as mergekit's GeneralizedTaskArithmetic.
//   delta_i = sparsify(x_i - base) * w_i
//   consensus (sum): keep delta_i where sign(delta_i) = sign(sum_j delta_j) (>= 0 counts as +)
//   merged  = base + lambda * sum_i mask_i delta_i / (normalize ? sum_i w_i mask_i : 1)
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "uqmerge/merge/method.hpp"
#include "uqmerge/util/error.hpp"
#include "uqmerge/util/rng.hpp"

namespace uqmerge::merge {

namespace {

enum class Sparsify { None, Magnitude, Random, MagnitudeOutliers, DellaMagprune };

// tensor * mask, rescaled to the original L1 norm (mergekit's rescaled_masked_tensor, l1).
at::Tensor l1_rescaled(const at::Tensor& t, const at::Tensor& mask) {
  at::Tensor masked = t * mask;
  const double before = t.abs().sum().item<double>(), after = masked.abs().sum().item<double>();
  if (before < 1e-7 || after < 1e-7) return masked;
  return masked * (before / after);
}

// The k largest |d| (mergekit: argsort, first k). Selection instead of a full sort: the k-th
// largest magnitude by quickselect, everything above it, then the first elements (index order)
// equal to it until k are kept — elements tied at the threshold are interchangeable for top-k
// (mergekit's unstable argsort picks any of them); without ties the mask is mergekit's.
at::Tensor top_k_mask(const at::Tensor& d, int64_t k) {
  const at::Tensor a = d.abs().reshape(-1);
  const int64_t n = a.numel();
  if (k >= n) return torch::ones(d.sizes(), torch::kBool);
  const at::Tensor thr = std::get<0>(torch::kthvalue(a, n - k + 1));
  at::Tensor mask = a > thr;
  const int64_t need = k - mask.sum().item<int64_t>();
  if (need > 0) mask.index_fill_(0, (a == thr).nonzero().reshape(-1).slice(0, 0, need), true);
  return mask.view(d.sizes());
}

at::Generator generator(uint64_t seed, const std::string& name, size_t model) {
  return at::detail::createCPUGenerator(RngStream(seed, {hash_name(name), model, 0x6d61736bull}).next_u64());
}

at::Tensor sparsify(const at::Tensor& d, Sparsify how, double density, double gamma, double epsilon, Rescale rescale,
                    at::Generator gen) {
  if (how == Sparsify::None || density >= 1) return d;
  const int64_t n = d.numel();
  if (how == Sparsify::Magnitude) {
    if (density <= 0 || n == 0) return torch::zeros_like(d);
    const int64_t k = std::max<int64_t>(1, static_cast<int64_t>(density * static_cast<double>(n)));
    const at::Tensor mask = top_k_mask(d, k).to(d.scalar_type());
    return rescale == Rescale::L1 ? l1_rescaled(d, mask) : d * mask;
  }
  if (how == Sparsify::MagnitudeOutliers) {
    const int64_t target = static_cast<int64_t>(density * static_cast<double>(n));
    const int64_t top = static_cast<int64_t>(gamma * static_cast<double>(n));
    const int64_t bottom = std::max<int64_t>(0, n - target - top);
    at::Tensor mask = torch::zeros({n}, d.options());
    const at::Tensor order = torch::argsort(d.abs().reshape(-1), false, 0, /*descending=*/false);
    mask.index_fill_(0, order.slice(0, bottom, bottom + target), 1);
    mask = mask.view_as(d);
    return rescale == Rescale::L1 ? l1_rescaled(d, mask) : d * mask;
  }
  if (how == Sparsify::Random) {
    if (density <= 0) return torch::zeros_like(d);
    const at::Tensor mask = torch::empty_like(d).bernoulli_(density, gen);
    if (rescale == Rescale::Density) return d * mask / density;
    return rescale == Rescale::L1 ? l1_rescaled(d, mask) : d * mask;
  }
  // DELLA MagPrune: keep probability rises linearly with the magnitude rank within each row.
  if (density <= 0) return torch::zeros_like(d);
  if (density + epsilon >= 1 || density - epsilon <= 0)
    throw_bad_input("epsilon", "must keep density +/- epsilon inside (0, 1); got density " + std::to_string(density) +
                                   ", epsilon " + std::to_string(epsilon));
  const at::Tensor t = d.dim() < 2 ? d.unsqueeze(0) : d;
  // Rank of each |t| within its row (1 = smallest): one sort, then the inverse permutation.
  const at::Tensor order = torch::argsort(t.abs(), false, 1, false);
  const at::Tensor ranks = torch::empty_like(t).scatter_(
      1, order, torch::arange(1, t.size(1) + 1, t.options()).expand_as(t).contiguous());
  const at::Tensor lo = std::get<0>(ranks.min(1, true)), hi = std::get<0>(ranks.max(1, true));
  const at::Tensor norm = ((ranks - lo) / (hi - lo)).clamp(0, 1);
  const at::Tensor probs = (density - epsilon) + norm * 2 * epsilon;
  const at::Tensor mask = torch::bernoulli(probs, gen);
  at::Tensor out;
  if (rescale == Rescale::Density) out = t * mask / probs;
  else out = rescale == Rescale::L1 ? l1_rescaled(t, mask) : t * mask;
  return out.reshape(d.sizes());
}

class TaskArithmetic final : public Method {
 public:
  TaskArithmetic(std::string name, Sparsify s, bool consensus, bool normalize, Rescale rescale)
      : name_(std::move(name)), sparsify_(s), consensus_(consensus), normalize_(normalize), rescale_(rescale) {}
  const std::string& name() const override { return name_; }
  bool needs_base() const override { return true; }
  bool default_normalize() const override { return normalize_; }
  Rescale default_rescale() const override { return rescale_; }
  std::vector<ParamSpec> params() const override {
    std::vector<ParamSpec> p{{"weight", true, std::nullopt}, {"density", true, 1.0}, {"normalize", false, normalize_ ? 1.0 : 0.0},
                             {"lambda", false, 1.0}, {"rescale", false, std::nullopt}, {"int8_mask", false, 0.0}};
    if (sparsify_ == Sparsify::MagnitudeOutliers) p.push_back({"gamma", true, 0.01});
    if (sparsify_ == Sparsify::DellaMagprune) p.push_back({"epsilon", true, 0.15});
    return p;
  }
  at::Tensor merge(const TensorGroup& g, const Params& p, uint64_t seed) const override {
    const auto dt = g.base.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
    const at::Tensor base = g.base.to(dt);
    std::vector<at::Tensor> deltas;
    for (size_t i = 0; i < g.models.size(); ++i) {
      at::Tensor d = g.models[i].to(dt) - base;
      d = sparsify(d, sparsify_, p.density[i], p.gamma.empty() ? 0.01 : p.gamma[i],
                   p.epsilon.empty() ? 0.15 : p.epsilon[i], p.rescale, generator(seed, g.name, i));
      deltas.push_back(d * p.weight[i]);
    }
    const at::Tensor stack = torch::stack(deltas);  // [N, ...]
    at::Tensor mixed, divisor;
    if (consensus_) {
      const at::Tensor majority = (stack.sum(0) >= 0).to(dt) * 2 - 1;
      const at::Tensor mask = (stack.sign() == majority).to(dt);
      mixed = (stack * mask).sum(0);
      std::vector<int64_t> wshape(static_cast<size_t>(stack.dim()), 1);
      wshape[0] = static_cast<int64_t>(p.weight.size());
      divisor = (torch::tensor(p.weight, torch::kFloat64).to(dt).view(wshape) * mask).sum(0);
      divisor.masked_fill_(divisor == 0, 1);
    } else {
      mixed = stack.sum(0);
      double w = 0;
      for (double x : p.weight) w += x;
      divisor = torch::tensor(std::abs(w) < 1e-8 ? 1.0 : w, torch::kFloat64).to(dt);
    }
    if (p.normalize) mixed = mixed / divisor;
    if (p.lambda != 1) mixed = mixed * p.lambda;
    return base + mixed;
  }

 private:
  std::string name_;
  Sparsify sparsify_;
  bool consensus_, normalize_;
  Rescale rescale_;
};

}  // namespace

std::vector<const Method*> task_arithmetic_methods() {
  // name, sparsification, sign consensus, default normalize, default rescale (mergekit's table;
  // DARE/DELLA rescale by the keep probability by default, see method.hpp).
  static const TaskArithmetic ta("task_arithmetic", Sparsify::None, false, false, Rescale::None);
  static const TaskArithmetic ties("ties", Sparsify::Magnitude, true, true, Rescale::None);
  static const TaskArithmetic dare_ties("dare_ties", Sparsify::Random, true, false, Rescale::Density);
  static const TaskArithmetic dare_linear("dare_linear", Sparsify::Random, false, false, Rescale::Density);
  static const TaskArithmetic breadcrumbs("breadcrumbs", Sparsify::MagnitudeOutliers, false, false, Rescale::None);
  static const TaskArithmetic breadcrumbs_ties("breadcrumbs_ties", Sparsify::MagnitudeOutliers, true, false, Rescale::None);
  static const TaskArithmetic della("della", Sparsify::DellaMagprune, true, true, Rescale::Density);
  static const TaskArithmetic della_linear("della_linear", Sparsify::DellaMagprune, false, false, Rescale::Density);
  return {&ta, &ties, &dare_ties, &dare_linear, &breadcrumbs, &breadcrumbs_ties, &della, &della_linear};
}

}  // namespace uqmerge::merge
