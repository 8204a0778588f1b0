// merge/: the chunked task-arithmetic kernel (Method::merge_into) against the whole-tensor
// merge() and hand-countable cases: magnitude top-k with many ties across chunk boundaries,
// DARE keep fractions and independence from the thread count.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "uqmerge/merge/method.hpp"

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

TEST(MergeKernels, DareChunkedKeepFractionAndThreadIndependence) {
  const Method& dare = find_method("dare_linear");
  const TensorGroup g{"t", torch::zeros({kN}), {tied(0)}};
  Params p = params(1, 0.3);
  p.normalize = false;
  p.rescale = Rescale::Density;
  at::set_num_threads(1);
  const at::Tensor one = dare.merge_into(g, p, 9, torch::kFloat32);
  at::set_num_threads(2);
  const at::Tensor two = dare.merge_into(g, p, 9, torch::kFloat32);
  EXPECT_TRUE(torch::equal(one, two)) << "masks must not depend on threads";
  const double kept = one.ne(0).sum().item<double>() / static_cast<double>(kN);
  EXPECT_NEAR(kept, 0.3, 0.01);
  // Kept values are rescaled by 1 / (keep probability), which is the density quantised to 2^-16.
  const double keep_p = std::round(0.3 * 65536) / 65536;
  EXPECT_NEAR((one.index({one.ne(0)}) / g.models[0].index({one.ne(0)})).mean().item<double>(), 1 / keep_p, 5e-6);  // fp32 rounding; 1/0.3 would be 3.5e-5 off
  EXPECT_FALSE(torch::equal(one, dare.merge_into(g, p, 10, torch::kFloat32))) << "another seed, other masks";
}
