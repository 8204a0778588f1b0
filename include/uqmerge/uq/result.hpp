// uqmerge/uq/result.hpp — what one model's uncertainty evaluation produced (torch-free: the
// resume state and results.h5 writers include it).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "uqmerge/uq/estimator.hpp"

namespace uqmerge::uq {

struct DatasetResult {
  std::string name;
  int64_t options = 0;  // K
  DatasetUq uq;
  std::vector<double> p_mean;  // [samples, K] mean option distribution over the J perturbations (x R repeats)
  // uq.repeats = R > 1: each repeat's per-sample uq, [R, samples]; `uq` holds their mean.
  std::vector<double> repeat_uq;
};

struct ModelResult {
  std::string model;
  std::vector<DatasetResult> datasets;
  OverallUq overall;
  double seconds = 0;
  uint64_t evaluations = 0;    // (sample, j) forward passes, all ranks
  uint64_t vision_passes = 0;  // vision-tower image passes this evaluation needed, all ranks
};

}  // namespace uqmerge::uq
