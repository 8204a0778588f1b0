// The task-arithmetic family (Ilharco et al.; TIES, Yadav et al.; DARE, Yu et al.; Model
// Breadcrumbs, Davari & Belilovsky; DELLA, Deep et al.): one generalised method configured by a
// sparsification and an optional sign consensus, as mergekit's GeneralizedTaskArithmetic.
//   delta_i = sparsify(x_i - base) * w_i
//   consensus (sum): keep delta_i where sign(delta_i) = sign(sum_j delta_j) (>= 0 counts as +)
//   merged  = base + lambda * sum_i mask_i delta_i / (normalize ? sum_i w_i mask_i : 1)
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstring>
#include <mutex>
#include <utility>

#include "uqmerge/merge/kernels.hpp"
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
void check_magprune(double density, double epsilon) {
  if (density + epsilon >= 1 || density - epsilon <= 0)
    throw_bad_input("epsilon", "must keep density +/- epsilon inside (0, 1); got density " + std::to_string(density) +
                                   ", epsilon " + std::to_string(epsilon));
}

// DELLA MagPrune's keep probabilities for whole rows t [rows, cols]: density - eps .. density +
// eps, rising linearly with the magnitude rank within each row (rank by one sort, then the
// inverse permutation).
at::Tensor magprune_probs(const at::Tensor& t, double density, double epsilon) {
  const int64_t cols = t.size(1);
  const at::Tensor order = torch::argsort(t.abs(), false, 1, false);
  const at::Tensor ranks = torch::empty_like(t).scatter_(1, order, torch::arange(1, cols + 1, t.options()).expand_as(t).contiguous());
  const at::Tensor norm = cols > 1 ? (ranks - 1) / static_cast<double>(cols - 1) : torch::zeros_like(t);
  return (density - epsilon) + norm * 2 * epsilon;
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
  // DELLA MagPrune.
  if (density <= 0) return torch::zeros_like(d);
  check_magprune(density, epsilon);
  const at::Tensor t = d.dim() < 2 ? d.unsqueeze(0) : d;
  const at::Tensor probs = magprune_probs(t, density, epsilon);
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

  // The same arithmetic chunk by chunk over the flattened tensor, on the intra-op threads,
  // written in the output dtype: for 1 GB checkpoints merge() holds ~10 tensor-sized fp32
  // temporaries (deltas, their stack, signs, masks), whose allocation and page faults cost
  // more than the arithmetic. Magnitude top-k needs each model's global threshold first (one
  // model-sized temporary at a time); the elements equal to the threshold are kept in index
  // order, as top_k_mask does, via per-chunk counts. DARE and DELLA take fused_random_merge
  // (one pass per chunk, Philox masks keyed by element index: deterministic, but other draws
  // than merge()'s torch generator). L1 rescaling, breadcrumbs and fp64 use merge().
  at::Tensor merge_into(const TensorGroup& g, const Params& p, uint64_t seed, at::ScalarType out_type) const override {
    const bool della = sparsify_ == Sparsify::DellaMagprune;
    const bool chunked = g.base.scalar_type() != torch::kFloat64 && p.rescale != Rescale::L1 && g.base.dim() <= 2 &&
                         sparsify_ != Sparsify::MagnitudeOutliers;
    if (!chunked) return merge(g, p, seed).to(out_type);
    const size_t N = g.models.size();
    const at::Tensor base = g.base.reshape({-1});
    std::vector<at::Tensor> xs;
    for (const auto& x : g.models) xs.push_back(x.reshape({-1}));
    // DELLA ranks magnitudes within rows: its chunks are whole rows (a 1-D tensor is one row).
    const int64_t n = base.numel(), cols = g.base.dim() == 2 ? g.base.size(1) : n;
    const int64_t C = della ? std::max<int64_t>(1, kernels::kChunk / std::max<int64_t>(cols, 1)) * std::max<int64_t>(cols, 1) : kernels::kChunk;
    const int64_t chunks = (n + C - 1) / C;
    if (della)
      for (size_t i = 0; i < N; ++i)
        if (p.density[i] > 0 && p.density[i] < 1) check_magprune(p.density[i], p.epsilon[i]);
    if (della || sparsify_ == Sparsify::Random) return kernels::fused_random_merge(g, p, seed, out_type, della, consensus_, cols, C);
    enum class Keep { All, None, TopK };
    std::vector<Keep> keep(N, Keep::All);
    std::vector<float> thr(N, 0.f);
    std::vector<int64_t> need(N, 0);
    std::vector<std::vector<int64_t>> eq_before(N);  // elements equal to thr before each chunk
    for (size_t i = 0; i < N; ++i) {
      const double density = p.density[i];
      if (sparsify_ == Sparsify::None || density >= 1) continue;
      if (density <= 0) {
        keep[i] = Keep::None;
        continue;
      }
      if (sparsify_ != Sparsify::Magnitude) continue;
      const int64_t k = std::max<int64_t>(1, static_cast<int64_t>(density * static_cast<double>(n)));
      if (k >= n) continue;
      keep[i] = Keep::TopK;
      const kernels::TopK t = kernels::magnitude_threshold(xs[i], base, k, chunks);
      thr[i] = t.threshold;
      need[i] = t.need;
      eq_before[i] = t.eq_before;
    }
    double wsum = 0;
    for (double w : p.weight) wsum += w;
    const double plain_div = std::abs(wsum) < 1e-8 ? 1.0 : wsum;
    at::Tensor out = torch::empty(g.base.sizes(), torch::TensorOptions().dtype(out_type));
    at::Tensor flat = out.view({-1});
    at::parallel_for(0, chunks, 1, [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) {
        const int64_t s = c * C, len = std::min(C, n - s);
        const at::Tensor b = base.narrow(0, s, len).to(torch::kFloat32);
        std::vector<at::Tensor> ds(N);
        for (size_t i = 0; i < N; ++i) {
          at::Tensor d = xs[i].narrow(0, s, len).to(torch::kFloat32) - b;
          if (keep[i] == Keep::None) {
            d.zero_();
          } else if (keep[i] == Keep::TopK) {
            const at::Tensor ad = d.abs();
            at::Tensor m = ad > thr[i];
            const at::Tensor eq = ad == thr[i];
            if (eq_before[i].empty()) {
              m.logical_or_(eq);
            } else if (const int64_t before = eq_before[i][static_cast<size_t>(c)]; before < need[i]) {
              m.logical_or_(eq.logical_and((eq.cumsum(0) + before) <= need[i]));
            }
            d.mul_(m);
          }
          ds[i] = d.mul_(p.weight[i]);
        }
        at::Tensor mixed = ds[0].clone();
        for (size_t i = 1; i < N; ++i) mixed.add_(ds[i]);
        if (consensus_) {
          const at::Tensor majority = (mixed >= 0).to(torch::kFloat32) * 2 - 1;
          mixed.zero_();
          at::Tensor div = torch::zeros_like(mixed);
          for (size_t i = 0; i < N; ++i) {
            const at::Tensor agree = (ds[i].sign() == majority).to(torch::kFloat32);
            mixed.add_(ds[i] * agree);
            div.add_(agree, p.weight[i]);
          }
          if (p.normalize) mixed.div_(div.masked_fill_(div == 0, 1));
        } else if (p.normalize) {
          mixed.div_(plain_div);
        }
        if (p.lambda != 1) mixed.mul_(p.lambda);
        flat.narrow(0, s, len).copy_(mixed.add_(b));
      }
    });
    return out;
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
