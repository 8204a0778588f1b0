// pipeline/screen: selection.screen's statistics and flags on hand-made candidates — two good
// ones and a third that differs on 2 of 8 samples, a constant predictor, an image-blind one
// (the same answers with the image blanked) and a shifted one (the next letter every time).
// Expected values are worked out by hand in the comments.
#include <gtest/gtest.h>

#include <cmath>

#include "test_util.hpp"
#include "uqmerge/pipeline/screen.hpp"

namespace uqmerge::pipeline {
namespace {

constexpr size_t S = 8, K = 4;

// 8 rows of 4 options, no extra options: K = 4. The screen reads only the option counts.
data::Dataset make_dataset(const test::TempDir& dir) {
  std::string tsv = "index\tquestion\thint\tA\tB\tC\tD\tanswer\tcategory\timage\n";
  const std::string image(80, 'A');  // never decoded here
  for (size_t i = 0; i < S; ++i) tsv += std::to_string(i) + "\tq\t\ta\tb\tc\td\t\tx\t" + image + "\n";
  test::write_text(dir / "d.tsv", tsv);
  data::DatasetSpec spec;
  spec.name = "d";
  spec.path = dir / "d.tsv";
  spec.extra_options = false;
  return data::Dataset::load(spec, 1);
}

// hi on position pos[i] of sample i, the rest shared equally.
std::vector<double> peaked(const std::vector<size_t>& pos, double hi) {
  std::vector<double> p(S * K, (1 - hi) / 3);
  for (size_t i = 0; i < S; ++i) p[i * K + pos[i]] = hi;
  return p;
}

uq::ModelResult result(const std::vector<double>& p) {
  uq::ModelResult r;
  uq::DatasetResult d;
  d.name = "d";
  d.options = K;
  d.p_mean = p;
  r.datasets.push_back(d);
  return r;
}

struct Zoo {
  std::vector<std::string> names;
  std::vector<uq::ModelResult> real, blank;
  void add(const std::string& n, const std::vector<double>& p, const std::vector<double>& q) {
    names.push_back(n);
    real.push_back(result(p));
    blank.push_back(result(q));
  }
};

// truth t_i = i mod 4: every position twice.
Zoo make_zoo() {
  std::vector<size_t> t, g3, shifted;
  for (size_t i = 0; i < S; ++i) {
    t.push_back(i % 4);
    g3.push_back(i < 6 ? i % 4 : (i + 2) % 4);  // samples 6, 7 answered two letters on
    shifted.push_back((i + 1) % 4);
  }
  const std::vector<double> uniform(S * K, 0.25);
  std::vector<double> constant;
  for (size_t i = 0; i < S; ++i) constant.insert(constant.end(), {0.4, 0.2, 0.2, 0.2});
  Zoo z;
  z.add("good1", peaked(t, 0.7), uniform);  // blanked: no idea
  z.add("good2", peaked(t, 0.7), uniform);
  z.add("good3", peaked(g3, 0.7), uniform);
  z.add("constant", constant, constant);
  z.add("blind", peaked(t, 0.7), peaked(t, 0.7));  // answers from the text alone
  z.add("shifted", peaked(shifted, 0.8), uniform);
  return z;
}

TEST(Screen, HandMadeCandidates) {
  test::TempDir dir;
  const std::vector<data::Dataset> ds{make_dataset(dir)};
  const Zoo z = make_zoo();
  const ScreenReport r = screen_candidates(z.names, ds, z.real, z.blank, nullptr, ScreenOptions{});
  ASSERT_EQ(r.candidates.size(), 6u);
  const auto& c = r.candidates;
  // mode share: the good ones 2/8 per position; good3 answers 0,1,2,3,0,1,0,1 -> 3/8; constant 8/8.
  EXPECT_DOUBLE_EQ(c[0].mode_share, 0.25);
  EXPECT_DOUBLE_EQ(c[2].mode_share, 0.375);
  EXPECT_DOUBLE_EQ(c[3].mode_share, 1.0);
  EXPECT_EQ(c[3].datasets[0].mode_position, 0);
  // TV(real, blank): 0.5 (|0.7 - 0.25| + 3 |0.1 - 0.25|) = 0.45; shifted 0.5 (0.55 + 3 x 0.18333) = 0.55; blind and constant 0.
  EXPECT_NEAR(c[0].image_sensitivity, 0.45, 1e-12);
  EXPECT_NEAR(c[5].image_sensitivity, 0.55, 1e-12);
  EXPECT_DOUBLE_EQ(c[3].image_sensitivity, 0.0);
  EXPECT_DOUBLE_EQ(c[4].image_sensitivity, 0.0);
  EXPECT_NEAR(r.median_sensitivity, 0.45, 1e-12);  // of 0, 0, .45, .45, .45, .55
  // The consensus (plurality vote) of the other five is t_i for everyone: good1, good2, blind
  // and (except samples 6, 7) good3 answer t_i.
  // Agreement: good 8/8, good3 6/8, constant 2/8 (where t_i = 0), blind 8/8, shifted 0.
  EXPECT_DOUBLE_EQ(c[0].agreement, 1.0);
  EXPECT_DOUBLE_EQ(c[2].agreement, 0.75);
  EXPECT_DOUBLE_EQ(c[3].agreement, 0.25);
  EXPECT_DOUBLE_EQ(c[5].agreement, 0.0);
  EXPECT_DOUBLE_EQ(r.median_agreement, 0.875);  // of 0, .25, .75, 1, 1, 1
  EXPECT_TRUE(std::isnan(c[0].base_agreement));  // no base given
  // Flags: constant (all three), blind (image only), shifted (agreement only); good3 stays.
  EXPECT_EQ(r.kept(), (std::vector<size_t>{0, 1, 2}));
  EXPECT_EQ(c[3].reasons.size(), 3u);
  ASSERT_EQ(c[4].reasons.size(), 1u);
  EXPECT_NE(c[4].reasons[0].find("ignores the image"), std::string::npos);
  ASSERT_EQ(c[5].reasons.size(), 1u);
  EXPECT_NE(c[5].reasons[0].find("disagrees"), std::string::npos);
  const std::string sum = r.flagged_summary();
  EXPECT_NE(sum.find("constant ("), std::string::npos);
  EXPECT_NE(sum.find("blind ("), std::string::npos);
  EXPECT_EQ(sum.find("good"), std::string::npos);
  EXPECT_TRUE(r.notes.empty());
}

TEST(Screen, ConsensusIsAVoteNotASum) {
  // Sample-wise: two unsure candidates answer B (0.4), one confident candidate answers A (0.97).
  // Summed, A wins (0.97 + 2 x 0.2 = 1.37 > 0.8 + 0.01); by vote, B (2 to 1).
  test::TempDir dir;
  const std::vector<data::Dataset> ds{make_dataset(dir)};
  std::vector<double> unsure, sure;
  for (size_t i = 0; i < S; ++i) {
    unsure.insert(unsure.end(), {0.2, 0.4, 0.2, 0.2});
    sure.insert(sure.end(), {0.97, 0.01, 0.01, 0.01});
  }
  Zoo z;
  z.add("probe", unsure, unsure);
  z.add("unsure1", unsure, unsure);
  z.add("unsure2", unsure, unsure);
  z.add("sure", sure, sure);
  const ScreenReport r = screen_candidates(z.names, ds, z.real, z.blank, nullptr, ScreenOptions{});
  EXPECT_DOUBLE_EQ(r.candidates[0].agreement, 1.0);  // B, as the vote of unsure1, unsure2, sure
  EXPECT_DOUBLE_EQ(r.candidates[3].agreement, 0.0);  // A against B, B, B
}

TEST(Screen, ThresholdsAndBase) {
  test::TempDir dir;
  const std::vector<data::Dataset> ds{make_dataset(dir)};
  const Zoo z = make_zoo();
  ScreenOptions o;
  o.max_mode_share = 1.0;         // still flags the constant predictor (8/8)
  o.min_sensitivity_ratio = 0.0;  // never flags for the image
  o.min_agreement_ratio = 0.0;    // never flags for agreement
  const uq::ModelResult base = z.real[5];  // a "base" that answers like the shifted one
  const ScreenReport r = screen_candidates(z.names, ds, z.real, z.blank, &base, o);
  EXPECT_EQ(r.kept(), (std::vector<size_t>{0, 1, 2, 4, 5}));
  EXPECT_EQ(r.candidates[3].reasons.size(), 1u);
  EXPECT_DOUBLE_EQ(r.candidates[5].base_agreement, 1.0);
  EXPECT_DOUBLE_EQ(r.candidates[0].base_agreement, 0.0);
}

TEST(Screen, TooFewCandidatesForAgreementIsSaid) {
  test::TempDir dir;
  const std::vector<data::Dataset> ds{make_dataset(dir)};
  Zoo z = make_zoo();
  z.names.resize(2), z.real.resize(2), z.blank.resize(2);
  const ScreenReport r = screen_candidates(z.names, ds, z.real, z.blank, nullptr, ScreenOptions{});
  EXPECT_TRUE(std::isnan(r.candidates[0].agreement));
  ASSERT_EQ(r.notes.size(), 1u);
  EXPECT_NE(r.notes[0].find("at least 3 candidates"), std::string::npos);
  EXPECT_EQ(r.kept().size(), 2u);
}

TEST(Screen, AllImageBlindIsSaid) {
  test::TempDir dir;
  const std::vector<data::Dataset> ds{make_dataset(dir)};
  Zoo z = make_zoo();
  z.blank = z.real;  // nobody looks at the image
  const ScreenReport r = screen_candidates(z.names, ds, z.real, z.blank, nullptr, ScreenOptions{});
  EXPECT_DOUBLE_EQ(r.median_sensitivity, 0.0);
  ASSERT_EQ(r.notes.size(), 1u);
  EXPECT_NE(r.notes[0].find("ignores the image"), std::string::npos);
  for (size_t m : {0, 1, 2, 4}) EXPECT_FALSE(r.candidates[m].flagged) << m;  // not judged on the image
}

}  // namespace
}  // namespace uqmerge::pipeline
