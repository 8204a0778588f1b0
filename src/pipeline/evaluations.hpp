// Private to src/pipeline: Algorithm 1's evaluations, memoised and resumable. Every model
// evaluated — a candidate, or the merge of a member set — is measured once, stored under a key
// that names it ("uq/3", "uq/4,1,7", "acc/4,1") in the resume state (pipeline/state.hpp),
// which rank 0 rewrites after each one; a rerun with the same config skips what it holds.
// After each evaluation all ranks agree whether a stop signal arrived (then Stopped is thrown).
// Merges are computed by the sharded merger (merge/engine.hpp) and gathered into every rank's
// memory; the last gathered merge is kept, so its accuracy and its output reuse it.
#pragma once

#include <ATen/core/Tensor.h>

#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "uqmerge/merge/engine.hpp"
#include "uqmerge/pipeline/driver.hpp"
#include "uqmerge/pipeline/screen.hpp"
#include "uqmerge/pipeline/session.hpp"
#include "uqmerge/pipeline/state.hpp"
#include "uqmerge/uq/vision_cache.hpp"

namespace uqmerge::pipeline {

struct Stopped {};  // thrown at a safe point after SIGTERM/SIGUSR1; the state is saved

std::string set_key(const std::vector<size_t>& members);

class Evaluations {
 public:
  Evaluations(Session& s, const RunOptions& opts);

  const std::vector<data::Dataset>& eval_datasets() const { return eval_datasets_; }
  double merge_seconds(const std::vector<size_t>& members) const;
  // Uncertainty of the merge of `members` (merge order); one member: that candidate.
  const uq::ModelResult& uq_of(const std::vector<size_t>& members);
  // Accuracy on evaluation.datasets (unperturbed input).
  Accuracy accuracy_of(const std::vector<size_t>& members);
  // Writes the merge of `members` to dir (all ranks, sharded): the merger's kept tensors when
  // they are this merge's (the step just evaluated), else merged again.
  void save_merge(const std::vector<size_t>& members, const std::filesystem::path& dir, const std::string& card);
  std::string label(const std::vector<size_t>& members) const;
  // selection.screen: every candidate's unperturbed answers on the uq datasets with the real
  // images and with every image blanked (and the base model's, when there is one), memoised
  // like every other evaluation, then screen_candidates() on them.
  ScreenReport screen();

 private:
  const uq::ModelResult& evaluate(const std::string& key, const std::vector<size_t>& members, const uq::UqOptions& opts,
                                  const std::vector<data::Dataset>& datasets, uq::VisionCache& cache);
  // The memo itself: the stored result under key, else run() stored, the state saved, and the
  // stop agreement taken.
  const uq::ModelResult& memo(const std::string& key, const std::function<uq::ModelResult()>& run);
  void load_merge(const std::vector<size_t>& members);
  const model::Tokenizer& ref_tokenizer();
  uint64_t ref_tower();

  Session& s_;
  std::filesystem::path state_path_;
  RunState state_;
  uq::VisionCache cache_, eval_cache_;
  std::optional<Checkpoint> base_;
  std::optional<merge::Merger> merger_;
  std::vector<data::Dataset> eval_datasets_;
  std::map<std::string, at::Tensor> weights_;
  std::string weights_key_, kept_key_;  // member sets of the gathered weights / the merger's kept tensors
  std::optional<uint64_t> ref_tower_;
  std::shared_ptr<const model::Tokenizer> base_tokenizer_;  // the reference's, when it is the base model
  unsigned long new_evaluations_ = 0;
};

}  // namespace uqmerge::pipeline
