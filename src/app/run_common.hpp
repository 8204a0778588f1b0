// Private to src/app: what `uq` and `run` share — validation of every input before heavy work,
// and writing results.h5 (docs/results-h5.md).
#pragma once

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
uq::ModelResult evaluate_checkpoint(const std::string& name, const Checkpoint& ck, uint64_t tower,
                                    const pipeline::RunConfig& cfg, const std::vector<data::Dataset>& datasets,
                                    const uq::UqOptions& opts, uq::VisionCache& cache, dist::Communicator& comm);

// Algorithm 1's record: order, per-step results, selections.
struct RunRecord {
  std::vector<size_t> order;               // candidate indices, merge order
  std::vector<uq::ModelResult> steps;      // step t = merge of the first t (t = 1: the first candidate's evaluation)
  size_t global_min = 0, early_stop = 0;   // 1-based steps
  size_t chosen = 0;
  std::string rule, method, merged_dir;
};

void write_results(const pipeline::RunConfig& cfg, const std::string& command, const std::vector<uq::ModelResult>& results,
                   const std::vector<std::string>& paths, const std::vector<uint64_t>& towers, int ranks, double seconds,
                   const RunRecord* run = nullptr);

}  // namespace uqmerge::app
