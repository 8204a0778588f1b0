// uqmerge/pipeline/selection.hpp — Algorithm 1's ordering and selection (DESIGN §4.3).
//   order: candidates by descending uncertainty (ties keep input order); ascending and the
//          given order are baselines.
//   global_min: the step with the lowest uncertainty, earliest on ties (Algorithm 1 as written).
//   early_stop(P): walk the steps; stop at the first step after which the uncertainty rose P
//          times in a row (each step above the one before it), and take the best step so far.
//          On the paper's Table 4 this picks 7 models (P = 1), as the paper reports, while
//          global_min picks 10.
// Steps are 1-based (step t merges the first t ordered candidates).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace uqmerge::pipeline {

enum class Order { Descending, Ascending, Given };
Order parse_order(const std::string& s);  // descending | ascending | given
std::vector<size_t> order_candidates(const std::vector<double>& uncertainty, Order order);

size_t select_global_min(const std::vector<double>& step_uncertainty);
size_t select_early_stop(const std::vector<double>& step_uncertainty, int patience);

}  // namespace uqmerge::pipeline
