// Private to src/app: what `uq` and `run` share — validation of every input before heavy work,
// and writing results.h5 (docs/results-h5.md).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "uqmerge/io/checkpoint.hpp"
#include "uqmerge/pipeline/config.hpp"
#include "uqmerge/uq/runner.hpp"

namespace uqmerge::app {

struct Prepared {
  std::vector<Checkpoint> checkpoints;  // candidates, in config order
  std::vector<data::Dataset> datasets;
  std::vector<uint64_t> towers;         // vision-tower hash per candidate
};
// Opens and validates every checkpoint, tokenizer and dataset (bad input names the candidate).
Prepared prepare(const pipeline::RunConfig& cfg);

model::ImageStyle image_style(const Checkpoint& ck);

// Loads a checkpoint (and the tokenizer beside it) and measures its uncertainty on every
// dataset: the one path candidates, merge steps and accuracy runs go through.
// `replace`: merged tensors held in memory that replace ck's (ck is then the merge's reference).
uq::ModelResult evaluate_checkpoint(const std::string& name, const Checkpoint& ck, uint64_t tower,
                                    const pipeline::RunConfig& cfg, const std::vector<data::Dataset>& datasets,
                                    const uq::UqOptions& opts, uq::VisionCache& cache, dist::Communicator& comm,
                                    const std::map<std::string, at::Tensor>* replace = nullptr);

// Accuracy: the unperturbed input (J = 1, no prompt sentence, no AugMix, no dropout) and the
// argmax over each row's own options; rows without `answer` are skipped.
uq::UqOptions clean_options(const uq::UqOptions& opts);
// A dataset without any `answer` is bad input.
void require_labelled(const std::vector<data::Dataset>& datasets);
struct Accuracy {
  std::vector<double> percent;                 // per dataset
  std::vector<int64_t> correct, labelled;      // per dataset
  std::vector<std::vector<int64_t>> predicted; // per dataset, per row (option index)
  double macro = 0;                            // mean over datasets
};
Accuracy accuracy(const std::vector<data::Dataset>& datasets, const uq::ModelResult& clean);

// Algorithm 1's record: order, per-step results, selections.
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
    std::map<std::string, int64_t> attrs;
  };
  std::vector<Baseline> baselines;
  std::vector<std::string> eval_names;       // evaluation datasets
  std::vector<Accuracy> candidate_acc;       // per candidate
  std::optional<Accuracy> chosen_acc;
  std::vector<Accuracy> step_acc;            // per merge step (the merge curve's accuracy)
};

void write_results(const pipeline::RunConfig& cfg, const std::string& command, const std::vector<uq::ModelResult>& results,
                   const std::vector<std::string>& paths, const std::vector<uint64_t>& towers, int ranks, double seconds,
                   const RunRecord* run = nullptr);

}  // namespace uqmerge::app
