// Ordering and selection rules of Algorithm 1 (see include/uqmerge/pipeline/selection.hpp).
#include "uqmerge/pipeline/selection.hpp"

#include <algorithm>
#include <numeric>

#include "uqmerge/util/error.hpp"

namespace uqmerge::pipeline {

Order parse_order(const std::string& s) {
  if (s == "descending") return Order::Descending;
  if (s == "ascending") return Order::Ascending;
  if (s == "given") return Order::Given;
  throw_bad_input("selection.order", "unknown '" + s + "' (valid: descending, ascending, given)");
}

std::vector<size_t> order_candidates(const std::vector<double>& u, Order order) {
  std::vector<size_t> idx(u.size());
  std::iota(idx.begin(), idx.end(), 0);
  if (order == Order::Descending)
    std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return u[a] > u[b]; });
  else if (order == Order::Ascending)
    std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return u[a] < u[b]; });
  return idx;
}

size_t select_global_min(const std::vector<double>& u) {
  UQ_CHECK(!u.empty(), "no steps");
  size_t best = 0;
  for (size_t t = 1; t < u.size(); ++t)
    if (u[t] < u[best]) best = t;
  return best + 1;
}

size_t select_early_stop(const std::vector<double>& u, int patience) {
  UQ_CHECK(!u.empty(), "no steps");
  if (patience < 1) throw_bad_input("selection.patience", "must be at least 1");
  size_t best = 0;
  int rises = 0;
  for (size_t t = 1; t < u.size(); ++t) {
    rises = u[t] > u[t - 1] ? rises + 1 : 0;
    if (u[t] < u[best]) best = t;
    if (rises >= patience) break;
  }
  return best + 1;
}

}  // namespace uqmerge::pipeline
