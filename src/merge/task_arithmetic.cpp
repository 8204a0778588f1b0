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

namespace kernels {

void philox_blocks(uint64_t first, int64_t count, std::array<uint32_t, 2> key, uint32_t* out) {
  for (int64_t b = 0; b < count; ++b) {
    const uint64_t block = first + static_cast<uint64_t>(b);
    const auto r = philox4x32_10({static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32), 0, 0}, key);
    std::memcpy(out + 4 * b, r.data(), sizeof r);
  }
}

void magnitude_ranks(const float* t, int64_t cols, int32_t* ranks, uint64_t* scratch) {
  // (magnitude bits << 32 | index), sorted stably by the high word: ties stay in index order.
  uint64_t *a = scratch, *b = scratch + cols;
  std::array<std::array<uint32_t, 256>, 4> hist{};
  for (int64_t j = 0; j < cols; ++j) {
    uint32_t k;
    std::memcpy(&k, t + j, sizeof k);
    k &= 0x7fffffffu;
    a[j] = (static_cast<uint64_t>(k) << 32) | static_cast<uint64_t>(j);
    ++hist[0][k & 255u];
    ++hist[1][(k >> 8) & 255u];
    ++hist[2][(k >> 16) & 255u];
    ++hist[3][k >> 24];
  }
  for (int q = 0; q < 4; ++q) {
    auto& h = hist[static_cast<size_t>(q)];
    const int shift = 32 + 8 * q;
    if (cols == 0 || h[(a[0] >> shift) & 255u] == static_cast<uint32_t>(cols)) continue;  // one digit: order kept
    uint32_t sum = 0;
    for (auto& x : h) sum += std::exchange(x, sum);
    for (int64_t j = 0; j < cols; ++j) {
      const uint64_t v = a[j];
      b[h[(v >> shift) & 255u]++] = v;
    }
    std::swap(a, b);
  }
  for (int64_t pos = 0; pos < cols; ++pos) ranks[static_cast<uint32_t>(a[pos])] = static_cast<int32_t>(pos + 1);
}

at::Tensor magnitude_ranks(const at::Tensor& t) {
  const at::Tensor x = t.to(torch::kFloat32).contiguous();
  UQ_CHECK(x.dim() == 2, "magnitude_ranks: a 2-D tensor");
  const int64_t rows = x.size(0), cols = x.size(1);
  at::Tensor out = torch::empty({rows, cols}, torch::kInt32);
  at::parallel_for(0, rows, 1, [&](int64_t r0, int64_t r1) {
    std::vector<uint64_t> scratch(static_cast<size_t>(2 * cols));
    for (int64_t r = r0; r < r1; ++r)
      magnitude_ranks(x.data_ptr<float>() + r * cols, cols, out.data_ptr<int32_t>() + r * cols, scratch.data());
  });
  return out;
}

}  // namespace kernels

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
constexpr int64_t kChunk = 1 << 15;  // elements per chunk of the chunked kernel (128 KiB fp32)

// |x - base| of one chunk as fp32.
at::Tensor abs_delta(const at::Tensor& x, const at::Tensor& base, int64_t chunk, int64_t n) {
  const int64_t s = chunk * kChunk, len = std::min(kChunk, n - s);
  return (x.narrow(0, s, len).to(torch::kFloat32) - base.narrow(0, s, len).to(torch::kFloat32)).abs_();
}

// Histogram of 16-bit digits of the magnitudes' bit patterns (non-negative floats order as
// their bits), over every chunk on the intra-op threads; `select(bits)` says which elements
// count and returns their digit, or -1.
template <class Select>
std::vector<int64_t> digit_histogram(const at::Tensor& x, const at::Tensor& base, int64_t n, int64_t chunks, Select select) {
  std::vector<int64_t> total(1 << 16, 0);
  std::mutex m;
  at::parallel_for(0, chunks, 1, [&](int64_t c0, int64_t c1) {
    std::vector<int64_t> h(1 << 16, 0);
    for (int64_t c = c0; c < c1; ++c) {
      const at::Tensor a = abs_delta(x, base, c, n);
      const auto* bits = reinterpret_cast<const uint32_t*>(a.data_ptr<float>());
      for (int64_t j = 0, len = a.numel(); j < len; ++j)
        if (const int64_t d = select(bits[j]); d >= 0) ++h[static_cast<size_t>(d)];
    }
    std::lock_guard<std::mutex> lock(m);
    for (size_t b = 0; b < h.size(); ++b) total[b] += h[b];
  });
  return total;
}

// Digit where the k-th largest falls: (digit, count strictly above it).
std::pair<uint32_t, int64_t> find_digit(const std::vector<int64_t>& h, int64_t k) {
  int64_t above = 0;
  for (int64_t d = static_cast<int64_t>(h.size()) - 1; d >= 0; --d) {
    if (above + h[static_cast<size_t>(d)] >= k) return {static_cast<uint32_t>(d), above};
    above += h[static_cast<size_t>(d)];
  }
  return {0, above};
}

// Top-k of |x - base| without sorting or a tensor-sized temporary: a two-pass radix select on
// the fp32 bit patterns (high 16 bits, then low 16 bits within the winning bucket) gives the
// exact k-th largest magnitude; elements equal to it are kept in index order until k (as
// top_k_mask), via per-chunk counts of them when not all of them are kept.
struct TopK {
  float threshold = 0;
  int64_t need = 0;                // how many elements equal to the threshold are kept
  std::vector<int64_t> eq_before;  // equal elements before each chunk (empty: keep them all)
};
TopK magnitude_threshold(const at::Tensor& x, const at::Tensor& base, int64_t k, int64_t chunks) {
  const int64_t n = base.numel();
  const auto high = digit_histogram(x, base, n, chunks, [](uint32_t b) { return static_cast<int64_t>(b >> 16); });
  const auto [hi, above_hi] = find_digit(high, k);
  const auto low = digit_histogram(x, base, n, chunks, [hi = hi](uint32_t b) {
    return (b >> 16) == hi ? static_cast<int64_t>(b & 0xffffu) : int64_t{-1};
  });
  const auto [lo, above_lo] = find_digit(low, k - above_hi);
  const uint32_t bits = (hi << 16) | lo;
  TopK t;
  std::memcpy(&t.threshold, &bits, sizeof bits);
  t.need = k - above_hi - above_lo;
  if (t.need < low[lo]) {  // only some of the ties are kept: which ones depends on position
    t.eq_before.assign(static_cast<size_t>(chunks), 0);
    at::parallel_for(0, chunks, 1, [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) {
        const at::Tensor a = abs_delta(x, base, c, n);
        const auto* b = reinterpret_cast<const uint32_t*>(a.data_ptr<float>());
        int64_t eq = 0;
        for (int64_t j = 0, len = a.numel(); j < len; ++j) eq += b[j] == bits;
        t.eq_before[static_cast<size_t>(c)] = eq;
      }
    });
    int64_t run = 0;
    for (auto& e : t.eq_before) run += std::exchange(e, run);
  }
  return t;
}

void check_magprune(double density, double epsilon) {
  if (density + epsilon >= 1 || density - epsilon <= 0)
    throw_bad_input("epsilon", "must keep density +/- epsilon inside (0, 1); got density " + std::to_string(density) +
                                   ", epsilon " + std::to_string(epsilon));
}

// 1.f when c, else 0.f, as bits (a select the vectoriser takes, where it gives up on `c ? 1 : 0`).
inline float one_if(bool c) { return std::bit_cast<float>(static_cast<uint32_t>(-static_cast<int32_t>(c)) & 0x3f800000u); }

struct FusedModel {
  enum Mode { Dense, Zero, Dare, Della } mode = Dense;
  float weight = 1;
  bool rescale = false;
  uint32_t below = 0;  // DARE: keep when the 16-bit uniform is below
  float keep_p = 1;    // DARE: below / 2^16
  float lo = 0, eps = 0;  // DELLA: probabilities density - eps .. density + eps
  std::array<uint32_t, 2> key{};  // DELLA's stream
};

// DARE and DELLA in one pass per chunk over per-thread fp32 buffers (no tensor-op temporaries):
// convert, subtract the base, mask, rescale and weight each model's delta, then sum or sign
// consensus, normalise and add the base, in the same fp32 operations and order as merge_into's
// tensor loop (DARE's output is bit-identical to the tensor-op loop this replaced; the masks'
// selects and the consensus test x * majority > 0 are exact). Masks, all pure functions of
// (seed, tensor name, model, element index):
//  - DARE: Philox keyed by (seed, tensor, model, 32 K-element chunk), block = index in chunk / 8,
//    eight 16-bit uniforms per block, kept when below the density quantised to 2^-16 (the
//    rescale divides by that quantised probability, so it stays unbiased).
//  - DELLA: Philox keyed by (seed, tensor, model), block = flat element index / 4, one 32-bit
//    word per element whose low 24 bits u give a uniform u 2^-24 — torch's bernoulli on
//    fp32 draws the same way — kept when below the element's probability p (Bernoulli(p)
//    to 2^-24). p rises linearly with the magnitude rank within the row
//    (kernels::magnitude_ranks, ties in index order as torch's argsort).
at::Tensor fused_random_merge(const TensorGroup& g, const Params& p, uint64_t seed, at::ScalarType out_type, bool della,
                              bool consensus, int64_t cols, int64_t C) {
  const size_t N = g.models.size();
  const at::Tensor base = g.base.reshape({-1});
  std::vector<at::Tensor> xs;
  for (const auto& x : g.models) xs.push_back(x.reshape({-1}));
  const int64_t n = base.numel(), chunks = (n + C - 1) / C;
  const uint64_t tensor_id = hash_name(g.name);
  std::vector<FusedModel> m(N);
  for (size_t i = 0; i < N; ++i) {
    const double density = p.density[i];
    m[i].weight = static_cast<float>(p.weight[i]);
    m[i].rescale = p.rescale == Rescale::Density;
    if (density >= 1) continue;
    if (density <= 0) {
      m[i].mode = FusedModel::Zero;
    } else if (della) {
      m[i].mode = FusedModel::Della;
      m[i].lo = static_cast<float>(density - p.epsilon[i]);
      m[i].eps = static_cast<float>(p.epsilon[i]);
      const uint64_t key = RngStream(seed, {tensor_id, i, 0x64656c6cull}).next_u64();
      m[i].key = {static_cast<uint32_t>(key), static_cast<uint32_t>(key >> 32)};
    } else {
      m[i].mode = FusedModel::Dare;
      m[i].below = static_cast<uint32_t>(std::lround(std::clamp(density, 0.0, 1.0) * 65536.0));
      m[i].keep_p = static_cast<float>(m[i].below / 65536.0);
      if (m[i].below == 0) m[i].rescale = false;
    }
  }
  double wsum = 0;
  for (double w : p.weight) wsum += w;
  const float plain_div = static_cast<float>(std::abs(wsum) < 1e-8 ? 1.0 : wsum);
  const float lambda = static_cast<float>(p.lambda);
  const float norm_div = cols > 1 ? static_cast<float>(cols - 1) : 1.f;
  at::Tensor out = torch::empty(g.base.sizes(), torch::TensorOptions().dtype(out_type));
  at::Tensor flat = out.view({-1});
  const auto f32 = torch::TensorOptions().dtype(torch::kFloat32);
  at::parallel_for(0, chunks, 1, [&](int64_t c0, int64_t c1) {
    // Flat loops over restrict-qualified buffers with selects instead of branches, so that the
    // compiler vectorises them.
    std::vector<float> buf(static_cast<size_t>((N + 5) * C));
    float* __restrict bb = buf.data();  // base
    float* __restrict acc = bb + C;     // result
    float* __restrict div = acc + C;    // consensus divisor
    float* __restrict maj = div + C;    // majority sign
    float* __restrict tmp = maj + C;    // masks, probabilities
    float* ds = tmp + C;                // deltas, model after model
    std::vector<uint32_t> words(static_cast<size_t>(C + 8));
    std::vector<uint16_t> u16(static_cast<size_t>(C + 16));
    std::vector<int32_t> ranks(della ? static_cast<size_t>(cols) : 0);
    std::vector<uint64_t> scratch(della ? static_cast<size_t>(2 * cols) : 0);
    for (int64_t c = c0; c < c1; ++c) {
      const int64_t s = c * C, len = std::min(C, n - s);
      at::from_blob(bb, {len}, f32).copy_(base.narrow(0, s, len));
      for (size_t i = 0; i < N; ++i) {
        float* __restrict d = ds + static_cast<int64_t>(i) * C;
        at::from_blob(d, {len}, f32).copy_(xs[i].narrow(0, s, len));
        for (int64_t j = 0; j < len; ++j) d[j] -= bb[j];
        const FusedModel& mi = m[i];
        const float w = mi.weight;
        switch (mi.mode) {
          case FusedModel::Dense:
            break;
          case FusedModel::Zero:
            for (int64_t j = 0; j < len; ++j) d[j] = 0.f;
            break;
          case FusedModel::Dare: {
            // Eight 16-bit uniforms per block, in little-endian order: element j takes bits
            // 16 (j % 2) .. of word j / 2.
            const uint64_t key = RngStream(seed, {tensor_id, i, 0x64617265ull, static_cast<uint64_t>(c)}).next_u64();
            kernels::philox_blocks(0, (len + 7) / 8, {static_cast<uint32_t>(key), static_cast<uint32_t>(key >> 32)},
                                   words.data());
            for (int64_t j = 0; j < (len + 1) / 2; ++j) {
              const uint32_t x = words[static_cast<size_t>(j)];
              u16[static_cast<size_t>(2 * j)] = static_cast<uint16_t>(x & 0xffffu);
              u16[static_cast<size_t>(2 * j + 1)] = static_cast<uint16_t>(x >> 16);
            }
            const uint16_t* __restrict u = u16.data();
            const uint32_t below = mi.below;
            for (int64_t j = 0; j < len; ++j) d[j] *= one_if(static_cast<uint32_t>(u[j]) < below);
            if (mi.rescale) {
              const float kp = mi.keep_p;
              for (int64_t j = 0; j < len; ++j) d[j] /= kp;
            }
            break;
          }
          case FusedModel::Della: {
            const int64_t first = s / 4, off = s % 4;
            kernels::philox_blocks(static_cast<uint64_t>(first), (off + len + 3) / 4, mi.key, words.data());
            const uint32_t* __restrict u = words.data() + off;
            const float lo = mi.lo, eps = mi.eps;
            int32_t* __restrict rk = ranks.data();
            for (int64_t r = 0; r < len; r += cols) {
              float* __restrict row = d + r;
              const uint32_t* __restrict ur = u + r;
              kernels::magnitude_ranks(row, cols, rk, scratch.data());
              // magprune_probs' fp32 arithmetic: ((rank - 1) / (cols - 1) * 2) * eps + (density - eps)
              if (cols > 1)
                for (int64_t j = 0; j < cols; ++j) tmp[j] = (static_cast<float>(rk[j]) - 1.f) / norm_div * 2.f * eps + lo;
              else
                tmp[0] = 0.f * 2.f * eps + lo;
              for (int64_t j = 0; j < cols; ++j) {
                const float uf = static_cast<float>(static_cast<int32_t>(ur[j] & 0xffffffu)) * 0x1p-24f;
                row[j] *= one_if(uf < tmp[j]);
              }
              if (mi.rescale)
                for (int64_t j = 0; j < cols; ++j) row[j] /= tmp[j];
            }
            break;
          }
        }
        if (mi.mode != FusedModel::Dense || w != 1.f)
          for (int64_t j = 0; j < len; ++j) d[j] *= w;
      }
      // mixed = sum_i d_i (in model order), as the tensor kernel.
      std::copy(ds, ds + len, acc);
      for (size_t i = 1; i < N; ++i) {
        const float* __restrict d = ds + static_cast<int64_t>(i) * C;
        for (int64_t j = 0; j < len; ++j) acc[j] += d[j];
      }
      if (consensus) {
        // acc := sum_i d_i agree_i, div := sum_i w_i agree_i (agree: sign(d_i) = majority).
        for (int64_t j = 0; j < len; ++j) {
          maj[j] = std::bit_cast<float>(0x3f800000u | static_cast<uint32_t>(acc[j] < 0) << 31);  // >= 0: +1, else -1
          acc[j] = 0.f;
          div[j] = 0.f;
        }
        for (size_t i = 0; i < N; ++i) {
          const float* __restrict d = ds + static_cast<int64_t>(i) * C;
          const float w = m[i].weight;
          for (int64_t j = 0; j < len; ++j) {
            const float x = d[j];
            const float agree = one_if(x * maj[j] > 0);  // sign(x) == majority (sign(+-0) = 0: never)
            acc[j] += x * agree;
            div[j] += agree * w;
          }
        }
        if (p.normalize)
          for (int64_t j = 0; j < len; ++j) acc[j] /= div[j] + one_if(div[j] == 0);  // 0 -> 1
      } else if (p.normalize) {
        for (int64_t j = 0; j < len; ++j) acc[j] /= plain_div;
      }
      if (p.lambda != 1)
        for (int64_t j = 0; j < len; ++j) acc[j] *= lambda;
      for (int64_t j = 0; j < len; ++j) acc[j] += bb[j];
      flat.narrow(0, s, len).copy_(at::from_blob(acc, {len}, f32));
    }
  });
  return out;
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
    const int64_t C = della ? std::max<int64_t>(1, kChunk / std::max<int64_t>(cols, 1)) * std::max<int64_t>(cols, 1) : kChunk;
    const int64_t chunks = (n + C - 1) / C;
    if (della)
      for (size_t i = 0; i < N; ++i)
        if (p.density[i] > 0 && p.density[i] < 1) check_magprune(p.density[i], p.epsilon[i]);
    if (della || sparsify_ == Sparsify::Random) return fused_random_merge(g, p, seed, out_type, della, consensus_, cols, C);
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
      const TopK t = magnitude_threshold(xs[i], base, k, chunks);
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
