// uq/estimator (hand-computed values) and perturb/plan (purity, independence of streams).
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "uqmerge/perturb/plan.hpp"
#include "uqmerge/uq/estimator.hpp"
#include "uqmerge/util/error.hpp"

namespace uqmerge {
namespace {

TEST(Estimator, HandComputedSample) {
  // Two perturbations, two options: p1 = (1, 0), p2 = (0, 1). Mean (0.5, 0.5): total = ln 2;
  // each p_j is certain: data = 0; uq = ln 2 (maximal disagreement).
  uq::Accumulator acc(1, 2);
  const double a[2] = {1, 0}, b[2] = {0, 1};
  acc.add(0, a);
  acc.add(0, b);
  const auto d = uq::finalize_dataset(acc, 2);
  EXPECT_NEAR(d.samples[0].total, std::log(2.0), 1e-15);
  EXPECT_NEAR(d.samples[0].data, 0.0, 1e-15);
  EXPECT_NEAR(d.samples[0].uq, std::log(2.0), 1e-15);
  // Agreeing but unsure: both (0.5, 0.5): total = data = ln 2, uq = 0.
  uq::Accumulator same(1, 2);
  const double h[2] = {0.5, 0.5};
  same.add(0, h);
  same.add(0, h);
  EXPECT_NEAR(uq::finalize_dataset(same, 2).samples[0].uq, 0.0, 1e-15);
}

TEST(Estimator, ThreeOptionsFourDrawsByHand) {
  // p = (0.7,0.2,0.1), (0.6,0.3,0.1), (0.8,0.1,0.1), (0.5,0.4,0.1); mean = (0.65,0.25,0.1)
  const double P[4][3] = {{0.7, 0.2, 0.1}, {0.6, 0.3, 0.1}, {0.8, 0.1, 0.1}, {0.5, 0.4, 0.1}};
  uq::Accumulator acc(1, 3);
  double hsum = 0;
  for (auto& p : P) {
    acc.add(0, p);
    hsum += -(p[0] * std::log(p[0]) + p[1] * std::log(p[1]) + p[2] * std::log(p[2]));
  }
  const double total = -(0.65 * std::log(0.65) + 0.25 * std::log(0.25) + 0.1 * std::log(0.1));
  const auto s = uq::finalize_dataset(acc, 4).samples[0];
  EXPECT_NEAR(s.total, total, 1e-12);
  EXPECT_NEAR(s.data, hsum / 4, 1e-12);
  EXPECT_NEAR(s.uq, 0.8568411 - 0.8205363, 2e-6);  // total 0.8568411, data 0.8205363 by hand
}

TEST(Estimator, MeanStderrAndMacroMicro) {
  const auto m = uq::mean_stderr({1, 2, 3, 4});
  EXPECT_DOUBLE_EQ(m.mean, 2.5);
  EXPECT_NEAR(m.stderr_, std::sqrt(5.0 / 3.0) / 2.0, 1e-15);  // sd = sqrt(5/3), n = 4
  uq::DatasetUq a, b;
  a.samples = {{0, 0, 1.0}, {0, 0, 3.0}};  // mean 2
  a.uq.mean = 2.0;
  b.samples = {{0, 0, 5.0}};  // mean 5
  b.uq.mean = 5.0;
  const auto o = uq::overall({a, b});
  EXPECT_DOUBLE_EQ(o.macro, 3.5);
  EXPECT_DOUBLE_EQ(o.micro, 3.0);
}

TEST(Estimator, IncompleteSamplesAndNaNsAreErrors) {
  uq::Accumulator acc(2, 2);
  const double p[2] = {0.5, 0.5}, bad[2] = {NAN, 0.5};
  acc.add(0, p);
  EXPECT_THROW(uq::finalize_dataset(acc, 1), Error);  // sample 1 never evaluated
  EXPECT_THROW(acc.add(1, bad), Error);
}

TEST(PerturbationPlan, PureAndIndependentOfOtherParts) {
  perturb::PlanConfig cfg;
  const auto a = perturb::plan(cfg, 7, 3, 1), b = perturb::plan(cfg, 7, 3, 1);
  EXPECT_EQ(a.text, b.text);
  EXPECT_EQ(a.dropout_seed, b.dropout_seed);
  EXPECT_EQ(a.image_seed, b.image_seed);
  perturb::PlanConfig no_text = cfg;
  no_text.text = perturb::TextMode::None;
  const auto c = perturb::plan(no_text, 7, 3, 1);
  EXPECT_EQ(c.text, -1);
  EXPECT_EQ(c.dropout_seed, a.dropout_seed) << "turning text off must not change the other draws";
  EXPECT_EQ(c.image_seed, a.image_seed);
  // All nine prompts get used, roughly uniformly, over many (i, j).
  std::vector<int> counts(9, 0);
  std::set<uint64_t> seeds;
  for (uint64_t i = 0; i < 900; ++i) {
    const auto p = perturb::plan(cfg, 1, i, i % 4);
    ++counts[p.text];
    seeds.insert(p.dropout_seed);
  }
  for (int n : counts) EXPECT_NEAR(n, 100, 40);
  EXPECT_EQ(seeds.size(), 900u);
}

TEST(PerturbationPlan, TextModesBuildTheReleasedPrompt) {
  EXPECT_EQ(perturb::release_prompts().size(), 9u);
  EXPECT_EQ(perturb::release_prompts()[8], "You are a nice assistant.");
  model::MultipleChoice mc{"Q?", "", {"x", "y"}};
  const std::string p = model::build_prompt(model::Template::LlavaV1, mc, perturb::prompt_parts(perturb::TextMode::PrependPrompt, 0));
  EXPECT_EQ(p.rfind("you are a helpful assistantA chat between", 0), 0u) << p;  // no separator
  const std::string s = model::build_prompt(model::Template::LlavaV1, mc, perturb::prompt_parts(perturb::TextMode::SystemMessage, 5));
  EXPECT_EQ(s.rfind("You are a nice assistant USER: <image>\nQ?\n", 0), 0u) << s;
  const std::string q = model::build_prompt(model::Template::LlavaV1, mc, perturb::prompt_parts(perturb::TextMode::BeforeQuestion, 1));
  EXPECT_NE(q.find("<image>\nyou are a question-answering assistant\nQ?\nA. x\nB. y\n"), std::string::npos) << q;
  EXPECT_THROW(perturb::parse_text_mode("shout"), Error);
}

}  // namespace
}  // namespace uqmerge
