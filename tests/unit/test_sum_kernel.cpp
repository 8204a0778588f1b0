// merge/sum_kernel: the weighted-sum kernel behind `linear`, both paths (AVX2 + F16C and the
// portable one), bit for bit against torch's separately rounded fp32 ops
// ((zeros + x0.float() * w0) + ..., / divisor, .to(out) with round-to-nearest-even), for mixed
// input dtypes, lengths around the vector width and the 1024-element block, fp16 subnormals
// and values near the fp16/bf16 limits; Inf/NaN detection; in-place accumulation.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstring>
#include <optional>
#include <vector>

#include "uqmerge/merge/sum_kernel.hpp"

using namespace uqmerge;
using namespace uqmerge::merge::kernels;

namespace {
DType dtype_of(const at::Tensor& t) {
  return t.scalar_type() == torch::kHalf ? DType::F16 : t.scalar_type() == torch::kBFloat16 ? DType::BF16 : DType::F32;
}
c10::ScalarType scalar_of(DType d) {
  return d == DType::F16 ? torch::kHalf : d == DType::BF16 ? torch::kBFloat16 : torch::kFloat32;
}

// Four inputs with values spread over many binades, fp16 subnormals included: of mixed dtypes
// (the blocked loop), or all of `one` dtype (the register loop of the AVX2 path).
std::vector<at::Tensor> inputs(int64_t n, int seed, std::optional<c10::ScalarType> one = std::nullopt) {
  torch::manual_seed(seed);
  const at::Tensor scale = torch::pow(2.0, torch::randint(-20, 8, {n}).to(torch::kFloat32));
  std::vector<at::Tensor> xs;
  for (auto dt : {torch::kHalf, torch::kBFloat16, torch::kFloat32, torch::kHalf})
    xs.push_back((torch::randn({n}) * scale).to(one.value_or(dt)));
  return xs;
}

at::Tensor reference(const std::vector<at::Tensor>& xs, const std::vector<float>& w, float divisor, DType od) {
  at::Tensor acc = torch::zeros({xs[0].numel()});
  for (size_t k = 0; k < xs.size(); ++k) acc = acc + xs[k].to(torch::kFloat32) * w[k];
  return (acc / divisor).to(scalar_of(od));
}

bool run(const std::vector<at::Tensor>& xs, const std::vector<float>& w, float divisor, at::Tensor& out, bool stream = false) {
  std::vector<SumTerm> terms;
  for (size_t k = 0; k < xs.size(); ++k) terms.push_back({xs[k].data_ptr(), dtype_of(xs[k]), w[k]});
  return weighted_sum(terms.data(), terms.size(), divisor, out.data_ptr(), dtype_of(out), out.numel(), stream);
}

bool same_bits(const at::Tensor& a, const at::Tensor& b) {
  return a.scalar_type() == b.scalar_type() && a.nbytes() == b.nbytes() && std::memcmp(a.data_ptr(), b.data_ptr(), a.nbytes()) == 0;
}

struct Portable {  // the portable path for the test's scope
  explicit Portable(bool on) { sum_kernel_force_portable(on); }
  ~Portable() { sum_kernel_force_portable(false); }
};
}  // namespace

TEST(SumKernel, BitExactAgainstTorchOnBothPaths) {
  const std::vector<float> w = {0.25f, -1.5f, 0.125f, 3.0f};
  for (bool portable : {false, true}) {
    Portable guard(portable);
    for (int64_t n : {1, 7, 8, 9, 1023, 1024, 1031, 5000})
      for (std::optional<c10::ScalarType> one : {std::optional<c10::ScalarType>{}, std::optional{torch::kHalf},
                                                  std::optional{torch::kBFloat16}, std::optional{torch::kFloat32}}) {
      const auto xs = inputs(n, static_cast<int>(n), one);
      for (DType od : {DType::F16, DType::BF16, DType::F32})
        for (float divisor : {1.f, 3.0f, 4.0f, 0.375f, 0.125f})  // powers of two: a product with the reciprocal
          for (bool stream : {false, true}) {
          at::Tensor out = torch::empty({n}, scalar_of(od));
          ASSERT_TRUE(run(xs, w, divisor, out, stream));
          const at::Tensor ref = reference(xs, w, divisor, od);
          ASSERT_TRUE(same_bits(out, ref)) << sum_kernel_path() << " n " << n << " inputs " << (one ? c10::toString(*one) : "mixed") << " stream " << stream << " out " << dtype_name(od) << " divisor " << divisor
                                           << " max |diff| " << (out.to(torch::kFloat64) - ref.to(torch::kFloat64)).abs().max().item<double>();
        }
    }
  }
}

TEST(SumKernel, RoundsAtTheFp16AndBf16Limits) {
  // fp32 values right at fp16 rounding boundaries, subnormals and the overflow edge (65519.996 rounds
  // to 65504; 65520 to Inf, which must be reported).
  const std::vector<float> edge = {65504.f, 65519.99f, -65519.99f, 6.1035156e-05f, 6.0e-08f, 2.9802322e-08f, 2.9802326e-08f,
                                   1.0f + 0x1p-11f, 1.0f + 0x1p-11f + 0x1p-23f, 1.0f + 3 * 0x1p-11f, -0.f, 0.f, 1e-30f};
  for (bool portable : {false, true}) {
    Portable guard(portable);
    at::Tensor x = torch::tensor(edge).repeat({3});  // 39 elements: vector body and tail
    at::Tensor out = torch::empty({x.numel()}, torch::kHalf);
    ASSERT_TRUE(run({x}, {1.f}, 1.f, out)) << sum_kernel_path();
    EXPECT_TRUE(same_bits(out, reference({x}, {1.f}, 1.f, DType::F16))) << sum_kernel_path();  // -0 -> +0 as 0 + x
    at::Tensor ob = torch::empty({x.numel()}, torch::kBFloat16);
    ASSERT_TRUE(run({x}, {1.f}, 1.f, ob));
    EXPECT_TRUE(same_bits(ob, reference({x}, {1.f}, 1.f, DType::BF16))) << sum_kernel_path();
  }
}

TEST(SumKernel, ReportsInfAndNaN) {
  for (bool portable : {false, true}) {
    Portable guard(portable);
    for (int64_t pos : {0, 5, 16, 1030}) {
      const int64_t n = 1031;
      at::Tensor a = torch::full({n}, 60000.f).to(torch::kHalf), b = a.clone();
      at::Tensor out = torch::empty({n}, torch::kHalf);
      EXPECT_FALSE(run({a, b}, {1.f, 1.f}, 1.f, out)) << "fp16 overflow";  // 120000 > 65504
      EXPECT_TRUE(run({a, b}, {1.f, 1.f}, 2.f, out)) << "normalised: finite";
      at::Tensor c = torch::ones({n});
      c[pos] = std::nanf("");
      for (DType od : {DType::F16, DType::BF16, DType::F32}) {
        at::Tensor o = torch::empty({n}, scalar_of(od));
        EXPECT_FALSE(run({c}, {1.f}, 1.f, o)) << sum_kernel_path() << " NaN at " << pos << " into " << dtype_name(od);
        c[pos] = INFINITY;
        EXPECT_FALSE(run({c}, {1.f}, 1.f, o)) << sum_kernel_path() << " Inf at " << pos << " into " << dtype_name(od);
        c[pos] = std::nanf("");
      }
      at::Tensor big = torch::full({n}, 3e38f);
      at::Tensor ob = torch::empty({n}, torch::kBFloat16);
      EXPECT_FALSE(run({big, big}, {1.f, 1.f}, 1.f, ob)) << "fp32 overflow";
    }
  }
}

TEST(SumKernel, AccumulatesInPlace) {
  // acc = (0 + acc) + w x: what the incremental driver does step after step.
  const int64_t n = 2053;
  const auto xs = inputs(n, 7);
  at::Tensor acc = torch::zeros({n});
  const std::vector<float> w = {0.5f, 2.f, -0.75f, 1.f};
  for (size_t k = 0; k < xs.size(); ++k) {
    const SumTerm t[2] = {{acc.data_ptr(), DType::F32, 1.f}, {xs[k].data_ptr(), dtype_of(xs[k]), w[k]}};
    ASSERT_TRUE(weighted_sum(t, 2, 1.f, acc.data_ptr(), DType::F32, n));
  }
  EXPECT_TRUE(same_bits(acc, reference(xs, w, 1.f, DType::F32)));
}
