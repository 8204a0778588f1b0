// Private to src/pipeline: the one path every evaluation goes through — a checkpoint (or a
// merged model held in memory over its reference checkpoint) loaded on the session's device
// and measured by the distributed uncertainty runner. A torch translation-unit header.
#pragma once

#include <ATen/core/Tensor.h>

#include <map>
#include <string>

#include "uqmerge/pipeline/session.hpp"

namespace uqmerge::pipeline {

// `replace`: merged tensors (canonical names) that replace ck's own; ck is then the merge's
// reference (config, vision tower, tokenizer files).
uq::ModelResult evaluate_checkpoint(const Session& s, const std::string& name, const Checkpoint& ck,
                                    const model::Tokenizer& tok, uint64_t tower, const std::vector<data::Dataset>& datasets,
                                    const uq::UqOptions& opts, uq::VisionCache& cache,
                                    const std::map<std::string, at::Tensor>* replace = nullptr);

}  // namespace uqmerge::pipeline
