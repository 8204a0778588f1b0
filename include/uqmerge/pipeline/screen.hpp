// uqmerge/pipeline/screen.hpp — selection.screen: a label-free screen for degenerate candidates
// before Algorithm 1 orders them (beyond the paper; off by default). Perturbation mutual
// information is 0 for a model that gives the same answer whatever it is shown, so UQ-Merge
// ranks such a model least uncertain and merges it last, where the global minimum tends to keep
// it. The screen looks at each candidate's unperturbed answers on the unlabelled uq datasets:
//   mode_share         the share of samples answered with the most frequent option position
//                      (1 for a constant predictor); flagged when >= max_mode_share.
//   image_sensitivity  the mean total-variation distance between the answer distribution with
//                      the real image and with the blank one (CLIP mean colour); 0 for a model
//                      that ignores the image; flagged when < min_sensitivity_ratio x the
//                      candidates' median.
//   agreement          the share of samples whose answer equals the consensus of the other
//                      candidates (their plurality vote; ties: the larger summed probability,
//                      then the earlier letter), so one over-confident model cannot outvote
//                      the rest; flagged when
//                      < min_agreement_ratio x the candidates' median (needs >= 3 candidates).
//   base_agreement     the same against the base model (recorded when base_model is set; not a
//                      flag: fine-tunes are meant to move away from the base).
// Each statistic is computed per dataset and macro-averaged over the datasets where it can be
// computed; where it cannot (agreement with fewer than 3 candidates; image_sensitivity when the
// median candidate ignores the image) the report says so in `notes` and the statistic is NaN or
// not used. (A row with one option is refused when its dataset loads.) Torch-free.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "uqmerge/data/dataset.hpp"
#include "uqmerge/uq/result.hpp"

namespace uqmerge::pipeline {

struct ScreenOptions {
  bool enabled = false;
  double max_mode_share = 0.9;
  double min_sensitivity_ratio = 0.25;
  double min_agreement_ratio = 0.5;
};

struct ScreenDataset {
  std::string name;
  double mode_share = 0, image_sensitivity = 0, agreement = 0, base_agreement = 0;  // NaN: not computed
  int64_t mode_position = -1;                   // the most frequent answer (0 = A)
  std::vector<int64_t> predicted, predicted_blank;  // per sample: argmax over its own options
  int64_t options = 0;                              // K
  std::vector<double> p, p_blank;                   // [samples, K] the distributions they come from
};

struct CandidateScreen {
  std::string name;
  std::vector<ScreenDataset> datasets;
  double mode_share = 0, image_sensitivity = 0, agreement = 0, base_agreement = 0;  // macro; NaN: not computed
  bool flagged = false;
  std::vector<std::string> reasons;  // one line per failed criterion, with the numbers
};

struct ScreenReport {
  ScreenOptions options;
  double median_sensitivity = 0, median_agreement = 0;  // NaN: not computed
  std::vector<CandidateScreen> candidates;
  std::vector<std::string> notes;  // statistics that could not be computed, and why
  std::vector<size_t> kept() const;  // unflagged candidates, in input order
  std::string flagged_summary() const;  // "name (reason); name (reason)"
};

// clean[m] / blank[m]: candidate m's unperturbed evaluation on `datasets` with the real images
// and with every image blanked (p_mean = its distribution); base: the base model's unperturbed
// evaluation, or nullptr.
ScreenReport screen_candidates(const std::vector<std::string>& names, const std::vector<data::Dataset>& datasets,
                               const std::vector<uq::ModelResult>& clean, const std::vector<uq::ModelResult>& blank,
                               const uq::ModelResult* base, const ScreenOptions& opts);

}  // namespace uqmerge::pipeline
