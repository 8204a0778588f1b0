// uqmerge/pipeline/results.hpp — the results.h5 and eval.h5 schemas (docs/results-h5.md),
// written by rank 0 through io/results_h5's generic writer: per candidate and dataset every
// sample's uncertainty and entropy terms, Algorithm 1's record (order, steps, selections),
// baselines, accuracy, config and provenance. Torch-free.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "uqmerge/pipeline/config.hpp"
#include "uqmerge/pipeline/session.hpp"
#include "uqmerge/uq/result.hpp"

namespace uqmerge::pipeline {

// Algorithm 1's record: order, per-step results, selections, baselines, accuracy.
struct RunRecord {
  std::vector<size_t> order;               // candidate indices, merge order
  std::vector<uq::ModelResult> steps;      // step t = merge of the first t (t = 1: the first candidate's evaluation)
  size_t global_min = 0, early_stop = 0;   // 1-based steps
  size_t chosen = 0;
  std::string rule, method, merged_dir;
  std::vector<double> step_merge_seconds;  // merge + gather per step (0: step 1, or resumed)
  struct Baseline {
    explicit Baseline(std::string n) : name(std::move(n)) {}
    std::string name;                          // merge_all, random_k, ascending, accuracy_guided
    std::vector<std::vector<size_t>> sets;     // evaluated member sets (merge order)
    std::vector<double> uq;                    // macro uncertainty per set
    std::vector<double> acc;                   // macro accuracy per set (with evaluation.datasets)
    std::vector<std::vector<double>> acc_datasets;  // ... and per dataset
    std::vector<size_t> order;                 // ascending / accuracy_guided: their order
    std::vector<double> curve;                 // ... and the criterion along it
    std::vector<std::vector<double>> curve_acc;  // unscreened: accuracy per dataset along it
    std::map<std::string, int64_t> attrs;
  };
  std::vector<Baseline> baselines;
  std::vector<std::string> eval_names;       // evaluation datasets
  std::vector<Accuracy> candidate_acc;       // per candidate
  std::optional<Accuracy> chosen_acc;
  std::vector<Accuracy> step_acc;            // per merge step (the merge curve's accuracy)
  std::optional<ScreenReport> screen;        // selection.screen, when on (then `order` holds the kept candidates)
};

// OUTPUT_DIR/results.h5 (command "uq" or "run"; `run` only for "run"), complete or absent.
void write_results(const Session& s, const std::string& command, const std::vector<uq::ModelResult>& results,
                   double seconds, const RunRecord* run = nullptr);
// OUTPUT_DIR/eval.h5: per candidate and dataset the predicted option, the answer, accuracy.
void write_eval(const Session& s, const std::vector<Accuracy>& candidate_acc);

}  // namespace uqmerge::pipeline
