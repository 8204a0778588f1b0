// merge/: the chunked task-arithmetic kernel (Method::merge_into) against the whole-tensor
// merge() and hand-countable cases: magnitude top-k with many ties across chunk boundaries,
// DARE keep fractions and independence from the thread count; the DARE/DELLA building blocks
// (batched Philox, per-row magnitude ranks) and DELLA's MagPrune statistics.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "uqmerge/merge/kernels.hpp"
#include "uqmerge/merge/method.hpp"
#include "uqmerge/util/rng.hpp"

using namespace uqmerge::merge;

namespace {
constexpr int64_t kN = 3 * (1 << 15) + 123;  // spans four chunks of the kernel

// Magnitudes 1..5 (heavy ties), signs alternating in blocks: no zeros.
at::Tensor tied(int64_t seed) {
  const at::Tensor idx = torch::arange(kN, torch::kLong);
  const at::Tensor mag = ((idx * (7 + seed)) % 5 + 1).to(torch::kFloat32);
  const at::Tensor sign = (torch::floor_divide(idx, 11 + seed) % 2 * 2 - 1).to(torch::kFloat32);
  return mag * sign;
}

Params params(size_t models, double density) {
  Params p;
  p.normalize = true;
  p.weight.assign(models, 1.0);
  p.density.assign(models, density);
  return p;
}
}  // namespace

TEST(MergeKernels, TiesTopKWithTiesKeepsExactlyKInIndexOrder) {
  const Method& ties = find_method("ties");
  TensorGroup g{"t", torch::zeros({kN}), {tied(0)}};
  const Params p = params(1, 0.5);  // magnitudes 5 and 4 are 40 %: half of the 3s are kept
  const at::Tensor out = ties.merge_into(g, p, 1, torch::kFloat32);
  const int64_t k = static_cast<int64_t>(0.5 * static_cast<double>(kN));
  EXPECT_EQ(out.ne(0).sum().item<int64_t>(), k);
  // The k largest magnitudes by hand: every 5 and 4, then the first 3s in index order.
  const at::Tensor mag = g.models[0].abs();
  const int64_t fives = mag.eq(5).sum().item<int64_t>(), fours = mag.eq(4).sum().item<int64_t>();
  ASSERT_LT(fives + fours, k);
  const at::Tensor threes = mag.eq(3).nonzero().reshape({-1});
  const int64_t last_kept = threes[k - fives - fours - 1].item<int64_t>();
  EXPECT_TRUE(out.index({mag.eq(5)}).ne(0).all().item<bool>());
  EXPECT_NE(out[last_kept].item<float>(), 0.f);
  EXPECT_TRUE(out.slice(0, last_kept + 1).index({mag.slice(0, last_kept + 1).eq(3)}).eq(0).all().item<bool>());
  // Kept values are the model's own (one model: sign consensus agrees with itself).
  EXPECT_TRUE(out.index({out.ne(0)}).eq(g.models[0].index({out.ne(0)})).all().item<bool>());
}

TEST(MergeKernels, ChunkedEqualsWholeTensorForTiesAndTaskArithmetic) {
  const TensorGroup g{"t", torch::full({kN}, 0.25f), {tied(0), tied(1), tied(2)}};
  for (const char* name : {"ties", "task_arithmetic"}) {
    SCOPED_TRACE(name);
    const Method& m = find_method(name);
    Params p = params(3, 0.4);
    p.weight = {1.0, 0.5, 0.25};
    p.normalize = m.default_normalize();
    const at::Tensor whole = m.merge(g, p, 1), chunked = m.merge_into(g, p, 1, torch::kFloat32);
    EXPECT_LE((whole - chunked).abs().max().item<double>(), 1e-6);
  }
}

// A random-mask merge on 1 and on 2 intra-op threads: the masks must not depend on the
// threads, and another seed must draw other masks. Returns the merge.
namespace {
at::Tensor same_on_1_and_2_threads(const Method& m, const TensorGroup& g, const Params& p, uint64_t seed) {
  at::set_num_threads(1);
  const at::Tensor one = m.merge_into(g, p, seed, torch::kFloat32);
  at::set_num_threads(2);
  const at::Tensor two = m.merge_into(g, p, seed, torch::kFloat32);
  EXPECT_TRUE(torch::equal(one, two)) << "masks must not depend on threads";
  EXPECT_FALSE(torch::equal(one, m.merge_into(g, p, seed + 1, torch::kFloat32))) << "another seed, other masks";
  return one;
}
}  // namespace

TEST(MergeKernels, DareChunkedKeepFractionAndThreadIndependence) {
  const Method& dare = find_method("dare_linear");
  const TensorGroup g{"t", torch::zeros({kN}), {tied(0)}};
  Params p = params(1, 0.3);
  p.normalize = false;
  p.rescale = Rescale::Density;
  const at::Tensor one = same_on_1_and_2_threads(dare, g, p, 9);
  const double kept = one.ne(0).sum().item<double>() / static_cast<double>(kN);
  EXPECT_NEAR(kept, 0.3, 0.01);
  // Kept values are rescaled by 1 / (keep probability), which is the density quantised to 2^-16.
  const double keep_p = std::round(0.3 * 65536) / 65536;
  EXPECT_NEAR((one.index({one.ne(0)}) / g.models[0].index({one.ne(0)})).mean().item<double>(), 1 / keep_p, 5e-6);  // fp32 rounding; 1/0.3 would be 3.5e-5 off
}

TEST(MergeKernels, PhiloxBlocksMatchRngStream) {
  // Including a block counter that crosses 2^32 (the high counter word).
  for (const uint64_t first : {uint64_t{0}, uint64_t{1000}, (uint64_t{1} << 32) - 5}) {
    std::vector<uint32_t> out(4 * 37);
    const std::array<uint32_t, 2> key{0x12345678u, 0x9abcdef0u};
    kernels::philox_blocks(first, 37, key, out.data());
    for (uint64_t b = 0; b < 37; ++b) {
      const uint64_t block = first + b;
      const auto ref = uqmerge::philox4x32_10({static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32), 0, 0}, key);
      for (size_t q = 0; q < 4; ++q) ASSERT_EQ(out[4 * b + q], ref[q]) << "block " << block << " word " << q;
    }
  }
}

TEST(MergeKernels, MagnitudeRanksEqualStableArgsortInverse) {
  torch::manual_seed(3);
  for (const int64_t cols : {1, 2, 7, 300, 2048, 5504}) {
    SCOPED_TRACE(cols);
    // Heavy ties (small integers, both signed zeros) in some rows, all-distinct magnitudes,
    // tiny and huge exponents in others.
    at::Tensor t = torch::randint(-6, 7, {6, cols}).to(torch::kFloat32);
    t[1].mul_(-0.0);  // a row of +-0
    t[2] = torch::randn({cols});
    t[3] = torch::randn({cols}) * 1e-30;
    t[4] = torch::randn({cols}).mul(1e30).clamp(-3e38, 3e38);
    t[5] = torch::randn({cols}).to(torch::kFloat16).to(torch::kFloat32) - 0.5;  // fp16-quantised deltas
    const at::Tensor order = torch::argsort(t.abs(), /*stable=*/true, 1, false);
    const at::Tensor expect = torch::empty({6, cols}, torch::kLong)
                                  .scatter_(1, order, torch::arange(1, cols + 1, torch::kLong).expand({6, cols}).contiguous());
    EXPECT_TRUE(torch::equal(kernels::magnitude_ranks(t).to(torch::kLong), expect));
  }
}

TEST(MergeKernels, DellaChunkedMagPruneStatistics) {
  // One model against a zero base: keep probability rises linearly with the magnitude rank
  // within the row, from density - eps to density + eps; kept values are divided by it.
  const int64_t rows = 64, cols = 2048;
  torch::manual_seed(7);
  const at::Tensor x = torch::randn({rows, cols});
  const TensorGroup g{"model.layers.0.mlp.up_proj.weight", torch::zeros({rows, cols}), {x}};
  const Method& della = find_method("della_linear");
  Params p = params(1, 0.5);
  p.normalize = false;
  p.epsilon = {0.2};
  p.rescale = Rescale::Density;
  const at::Tensor out = same_on_1_and_2_threads(della, g, p, 11);
  const at::Tensor kept = out.ne(0);
  EXPECT_NEAR(kept.to(torch::kDouble).mean().item<double>(), 0.5, 0.01);
  // By rank quartile: expected keep fractions 0.35, 0.45, 0.55, 0.65 (+-0.2 linear in rank).
  const at::Tensor ranks = kernels::magnitude_ranks(x).to(torch::kLong);
  for (int q = 0; q < 4; ++q) {
    const at::Tensor in_q = torch::floor_divide((ranks - 1) * 4, cols) == q;
    const double frac = kept.index({in_q}).to(torch::kDouble).mean().item<double>();
    EXPECT_NEAR(frac, 0.35 + 0.1 * q, 0.015) << "quartile " << q;
  }
  // Kept values are x / p(rank), p computed in fp32 as magprune_probs does.
  const at::Tensor norm = (ranks.to(torch::kFloat32) - 1) / static_cast<double>(cols - 1);
  const at::Tensor probs = (0.5 - 0.2) + norm * 2 * 0.2;
  EXPECT_TRUE(torch::equal(out.index({kept}), (x / probs).index({kept})));
  // Unbiased: E[out] = x, so the regression slope of out on x is ~1.
  EXPECT_NEAR((out * x).sum().item<double>() / (x * x).sum().item<double>(), 1.0, 0.02);
}

TEST(MergeKernels, DellaTiesMatchesWholeTensorWithoutSparsification) {
  // density 1 keeps everything: the fused kernel must reproduce merge()'s sign consensus.
  const TensorGroup g{"t", torch::full({kN}, 0.25f), {tied(0), tied(1), tied(2)}};
  for (const char* name : {"della", "dare_ties", "dare_linear"}) {
    SCOPED_TRACE(name);
    const Method& m = find_method(name);
    Params p = params(3, 1.0);
    p.weight = {1.0, 0.5, 0.25};
    p.epsilon = {0.1, 0.1, 0.1};
    p.normalize = m.default_normalize();
    p.lambda = 0.7;
    const at::Tensor whole = m.merge(g, p, 1), chunked = m.merge_into(g, p, 1, torch::kFloat32);
    EXPECT_LE((whole - chunked).abs().max().item<double>(), 1e-6);
  }
}

TEST(MergeKernels, DareDellaEmptyTensors) {
  for (const char* name : {"della", "dare_ties"}) {
    for (const auto& shape : {std::vector<int64_t>{0, 5}, std::vector<int64_t>{5, 0}, std::vector<int64_t>{0}}) {
      const TensorGroup g{"t", torch::zeros(shape), {torch::zeros(shape)}};
      Params p = params(1, 0.5);
      p.epsilon = {0.1};
      EXPECT_EQ(find_method(name).merge_into(g, p, 1, torch::kFloat16).numel(), 0) << name;
    }
  }
}
