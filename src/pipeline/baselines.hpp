// Private to src/pipeline: the paper's comparison points, each measured exactly like the
// main curve (same evaluations, memoised): merge-all, k random subsets (seeded; and a sweep of
// other sizes), the ascending order, the accuracy-guided order (needs evaluation.datasets), and
// with selection.screen on, Algorithm 1 without the screen ("unscreened").
#pragma once

#include <cstdint>
#include <vector>

#include "evaluations.hpp"
#include "uqmerge/pipeline/results.hpp"

namespace uqmerge::pipeline {

// The first t of `order`.
std::vector<size_t> prefix(const std::vector<size_t>& order, size_t t);
// k distinct candidates drawn uniformly (partial Fisher–Yates on a Philox stream keyed by
// seed and repeat), listed in `order` so the same subset always merges the same way.
std::vector<size_t> random_subset(const std::vector<size_t>& order, size_t k, uint64_t seed, uint64_t repeat);

// Appends every baseline cfg.baselines asks for to run.baselines. u: each candidate's
// uncertainty; order: every candidate in Algorithm 1's order (the screen does not apply to the
// baselines); run.chosen and run.candidate_acc are already set.
void measure_baselines(Evaluations& ev, const RunConfig& cfg, const std::vector<double>& u, const std::vector<size_t>& order,
                       RunRecord& run);

}  // namespace uqmerge::pipeline
