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
#include "uqmerge/uq/options.hpp"
#include "uqmerge/uq/result.hpp"
#include "uqmerge/uq/vision_cache.hpp"

namespace uqmerge::uq {



ModelResult evaluate_model(const std::string& name, const model::LlavaModel& model, const model::Tokenizer& tok,
                           model::ImageStyle style, uint64_t tower_hash, const std::vector<data::Dataset>& datasets,
                           const UqOptions& opts, VisionCache& cache, dist::Communicator& comm);

}  // namespace uqmerge::uq
