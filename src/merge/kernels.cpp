// The merge kernels of the task-arithmetic family (see include/uqmerge/merge/kernels.hpp):
// Philox blocks and magnitude ranks for the random masks, the radix-select top-k threshold
// (TIES, breadcrumbs) and the fused one-pass DARE/DELLA merge. The methods that call them are
// in merge/task_arithmetic.cpp.
#include "uqmerge/merge/kernels.hpp"

#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstring>
#include <mutex>
#include <utility>

#include "uqmerge/util/error.hpp"
#include "uqmerge/util/rng.hpp"

namespace uqmerge::merge::kernels {

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


namespace {


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

}  // namespace

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

}  // namespace uqmerge::merge::kernels
