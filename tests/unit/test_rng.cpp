// util/rng: Philox4x32-10 against the known-answer vectors published with Random123
// (Salmon et al., SC'11), and the properties uqmerge relies on: a stream is a pure function
// of (seed, ids); different ids give independent-looking streams; distributions are right.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "uqmerge/util/rng.hpp"

namespace uqmerge {
namespace {

TEST(Philox, KnownAnswerVectors) {
  using A4 = std::array<uint32_t, 4>;
  EXPECT_EQ(philox4x32_10({0, 0, 0, 0}, {0, 0}), (A4{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}));
  EXPECT_EQ(philox4x32_10({0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, {0xffffffff, 0xffffffff}),
            (A4{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}));
  EXPECT_EQ(philox4x32_10({0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0}),
            (A4{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}));
}

TEST(RngStream, PureFunctionOfSeedAndIds) {
  RngStream a(42, {1, 2, 3}), b(42, {1, 2, 3});
  for (int i = 0; i < 100; ++i) ASSERT_EQ(a.next_u32(), b.next_u32());
  // Any prefix of ids, another seed, or another order is another stream.
  std::set<uint64_t> firsts;
  for (auto ids : {std::vector<uint64_t>{1, 2, 3}, {1, 2}, {1, 3, 2}, {3, 2, 1}, {1, 2, 3, 0}, {}})
    firsts.insert(RngStream(42, ids).next_u64());
  firsts.insert(RngStream(43, {1, 2, 3}).next_u64());
  EXPECT_EQ(firsts.size(), 7u);
  EXPECT_NE(RngStream(42, {1}).child(2).next_u64(), RngStream(42, {1, 2}).next_u64());
}

TEST(RngStream, UniformMoments) {
  RngStream r(7, {0});
  const int n = 200000;
  double s = 0, s2 = 0;
  for (int i = 0; i < n; ++i) {
    const double u = r.uniform();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    s += u;
    s2 += u * u;
  }
  EXPECT_NEAR(s / n, 0.5, 0.005);
  EXPECT_NEAR(s2 / n - (s / n) * (s / n), 1.0 / 12, 0.002);
}

TEST(RngStream, NormalGammaBetaDirichletMoments) {
  RngStream r(11, {5});
  const int n = 100000;
  double mn = 0, vn = 0, mg = 0, mg_small = 0, mb = 0;
  for (int i = 0; i < n; ++i) {
    const double z = r.normal();
    mn += z;
    vn += z * z;
    mg += r.gamma(3.0);         // mean 3
    mg_small += r.gamma(0.5);   // mean 0.5
    mb += r.beta(1.0, 1.0);     // mean 0.5
  }
  EXPECT_NEAR(mn / n, 0.0, 0.02);
  EXPECT_NEAR(vn / n, 1.0, 0.02);
  EXPECT_NEAR(mg / n, 3.0, 0.03);
  EXPECT_NEAR(mg_small / n, 0.5, 0.01);
  EXPECT_NEAR(mb / n, 0.5, 0.01);
  const auto d = r.dirichlet({1, 1, 1});
  EXPECT_NEAR(d[0] + d[1] + d[2], 1.0, 1e-12);
}

TEST(RngStream, BelowIsUnbiasedAndInRange) {
  RngStream r(3, {9});
  std::array<int, 6> counts{};
  for (int i = 0; i < 60000; ++i) {
    const uint64_t k = r.below(6);
    ASSERT_LT(k, 6u);
    ++counts[k];
  }
  for (int c : counts) EXPECT_NEAR(c, 10000, 400);
}

TEST(HashName, StableFnv1a) {
  EXPECT_EQ(hash_name(""), 0xcbf29ce484222325ull);
  EXPECT_EQ(hash_name("a"), 0xaf63dc4c8601ec8cull);  // FNV-1a 64 reference value
}

}  // namespace
}  // namespace uqmerge
