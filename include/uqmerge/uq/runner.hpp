// uqmerge/uq/runner.hpp — the uncertainty of one model on a set of datasets, distributed over
// ranks (DESIGN §4.1, §5): the (sample, j) pairs of each dataset are split into contiguous
// blocks over ranks; each rank evaluates its pairs in batches (perturbed image -> cached vision
// features -> this model's projector -> perturbed prompt -> option logits with attention
// dropout), sums p_j and H(p_j) per sample, and one allreduce per dataset gives every rank the
// totals, from which the estimator finalises.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "uqmerge/data/dataset.hpp"
#include "uqmerge/dist/communicator.hpp"
#include "uqmerge/model/llava.hpp"
#include "uqmerge/model/tokenizer.hpp"
#include "uqmerge/perturb/augmix.hpp"
#include "uqmerge/perturb/plan.hpp"
#include "uqmerge/uq/estimator.hpp"
#include "uqmerge/uq/result.hpp"
#include "uqmerge/uq/vision_cache.hpp"

namespace uqmerge::uq {

struct UqOptions {
  perturb::PlanConfig plan;
  perturb::AugMixConfig augmix;
  model::Template conv_template = model::Template::LlavaV1;
  std::string image_aspect;  // empty: the checkpoint's image_aspect_ratio (default pad)
  int batch_size = 4;
  bool save_distributions = false;  // results.h5 keeps each sample's mean distribution (float16)
};

// 64-bit hash of the vision tower's tensors (names, shapes, dtypes, bytes): candidates with
// equal hashes share cached features.
uint64_t vision_tower_hash(const Checkpoint& ck);

ModelResult evaluate_model(const std::string& name, const model::LlavaModel& model, const model::Tokenizer& tok,
                           model::ImageStyle style, uint64_t tower_hash, const std::vector<data::Dataset>& datasets,
                           const UqOptions& opts, VisionCache& cache, dist::Communicator& comm);

}  // namespace uqmerge::uq
