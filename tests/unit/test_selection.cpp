// pipeline/selection: the paper's Table 4 (uncertainty per merge step of 10 models) and
// hand-made cases for ordering and both rules.
#include <gtest/gtest.h>

#include "uqmerge/pipeline/selection.hpp"
#include "uqmerge/pipeline/session.hpp"
#include "uqmerge/util/error.hpp"

namespace uqmerge::pipeline {
namespace {

// UQ-Merge, Table 4: uncertainty after merging the first t models (descending order).
const std::vector<double> kTable4{0.21197, 0.13290, 0.05609, 0.04866, 0.04531,
                                  0.04155, 0.03950, 0.03954, 0.03740, 0.0367};

TEST(Selection, PaperTable4) {
  EXPECT_EQ(select_global_min(kTable4), 10u);
  EXPECT_EQ(select_early_stop(kTable4, 1), 7u);   // the 7 models the paper reports
  EXPECT_EQ(select_early_stop(kTable4, 2), 10u);  // one rise (0.03950 -> 0.03954) is not two
}

TEST(Selection, RulesOnHandMadeCurves) {
  EXPECT_EQ(select_global_min({0.5, 0.3, 0.3, 0.4}), 2u);  // earliest on ties
  EXPECT_EQ(select_early_stop({0.5, 0.4, 0.45, 0.46, 0.2}, 2), 2u);  // two rises in a row stop before 0.2
  EXPECT_EQ(select_early_stop({0.5, 0.4, 0.45, 0.41, 0.2}, 2), 5u);  // a fall resets the count
  EXPECT_EQ(select_early_stop({0.3}, 1), 1u);
  EXPECT_THROW(select_early_stop({0.3, 0.2}, 0), Error);
}

TEST(Selection, OrderIsStableOnTies) {
  const std::vector<double> u{0.2, 0.5, 0.2, 0.9};
  EXPECT_EQ(order_candidates(u, Order::Descending), (std::vector<size_t>{3, 1, 0, 2}));
  EXPECT_EQ(order_candidates(u, Order::Ascending), (std::vector<size_t>{0, 2, 1, 3}));
  EXPECT_EQ(order_candidates(u, Order::Given), (std::vector<size_t>{0, 1, 2, 3}));
  EXPECT_THROW(parse_order("random"), Error);
}

}  // namespace
// LLaVA-1.5-7B: 7.06 G parameters = 13.2 GiB in bf16, 26.3 GiB in fp32 (hand-computed).
TEST(DeviceFit, SizesAndFixesInTheRefusal) {
  const uint64_t p = 7'063'000'000ull, gib = 1ull << 30;
  EXPECT_EQ(pipeline::device_fit_error("gqa", p, DType::BF16, "cuda:0", 70 * gib, 80 * gib), "");
  const std::string f32 = pipeline::device_fit_error("gqa", p, DType::F32, "cuda:1", 20 * gib, 24 * gib);
  EXPECT_EQ(f32, "candidate 'gqa' needs 26.3 GiB on cuda:1 (7.06 G parameters in F32) but 20.0 GiB of its 24.0 GiB are "
                 "free: use dtype: bfloat16, one rank per GPU, or a GPU with more memory");
  const std::string bf16 = pipeline::device_fit_error("gqa", p, DType::BF16, "cuda:0", 12 * gib, 16 * gib);
  EXPECT_NE(bf16.find("needs 13.2 GiB"), std::string::npos) << bf16;
  EXPECT_EQ(bf16.find("dtype: bfloat16"), std::string::npos) << bf16;  // already bf16: not offered
}

}  // namespace uqmerge::pipeline
