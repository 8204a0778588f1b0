// Baselines of Algorithm 1 (see src/pipeline/baselines.hpp).
#include "baselines.hpp"

#include <algorithm>

#include "uqmerge/pipeline/selection.hpp"
#include "uqmerge/util/rng.hpp"

namespace uqmerge::pipeline {

std::vector<size_t> prefix(const std::vector<size_t>& order, size_t t) {
  return {order.begin(), order.begin() + static_cast<std::ptrdiff_t>(t)};
}

std::vector<size_t> random_subset(const std::vector<size_t>& order, size_t k, uint64_t seed, uint64_t repeat) {
  RngStream rng(seed, {hash_name("baseline/random_k"), repeat});
  std::vector<size_t> pool = order;
  for (size_t i = 0; i < k; ++i) std::swap(pool[i], pool[i + rng.below(pool.size() - i)]);
  std::vector<size_t> pick(pool.begin(), pool.begin() + static_cast<std::ptrdiff_t>(k)), out;
  for (size_t m : order)
    if (std::find(pick.begin(), pick.end(), m) != pick.end()) out.push_back(m);
  return out;
}

void measure_baselines(Evaluations& ev, const RunConfig& cfg, const std::vector<double>& u, const std::vector<size_t>& order,
                       RunRecord& run) {
  const size_t N = u.size();
  const bool with_acc = !cfg.eval_datasets.empty();
  auto measure = [&](RunRecord::Baseline& b, const std::vector<size_t>& members) {
    b.sets.push_back(members);
    b.uq.push_back(ev.uq_of(members).overall.macro);
    if (with_acc) {
      const Accuracy acc = ev.accuracy_of(members);
      b.acc.push_back(acc.macro);
      b.acc_datasets.push_back(acc.percent);
    }
  };
  const auto& bl = cfg.baselines;
  // `repeats` random subsets of size k (the same draws for a size, whatever the other sizes).
  auto random_k = [&](const std::string& name, size_t k) {
    RunRecord::Baseline b{name};
    b.attrs["k"] = static_cast<int64_t>(k);
    b.attrs["seed"] = static_cast<int64_t>(bl.random_seed);
    for (int r = 0; r < bl.random_repeats; ++r) measure(b, random_subset(order, k, bl.random_seed, static_cast<uint64_t>(r)));
    run.baselines.push_back(b);
  };
  // The uncertainty curve along `along`, its step picked by the run's rule (both recorded);
  // with_curve_acc: also the accuracy of every step.
  auto curve = [&](const std::string& name, const std::vector<size_t>& along, bool with_curve_acc) {
    RunRecord::Baseline b{name};
    b.order = along;
    for (size_t t = 1; t <= N; ++t) {
      b.curve.push_back(ev.uq_of(prefix(b.order, t)).overall.macro);
      if (with_curve_acc) b.curve_acc.push_back(ev.accuracy_of(prefix(b.order, t)).percent);
    }
    const size_t gm = select_global_min(b.curve), es = select_early_stop(b.curve, cfg.patience);
    b.attrs["global_min_step"] = static_cast<int64_t>(gm);
    b.attrs["early_stop_step"] = static_cast<int64_t>(es);
    measure(b, prefix(b.order, cfg.rule == "early_stop" ? es : gm));
    run.baselines.push_back(b);
  };
  if (bl.merge_all) {
    RunRecord::Baseline b{"merge_all"};
    measure(b, order);
    run.baselines.push_back(b);
  }
  if (bl.random_repeats > 0) {
    random_k("random_k", bl.random_k > 0 ? static_cast<size_t>(bl.random_k) : run.chosen);
    for (int k : bl.random_sweep) random_k("random_k_" + std::to_string(k), static_cast<size_t>(k));
  }
  // Algorithm 1 as the paper has it, on every candidate; its step accuracies for the plots.
  if (cfg.screen.enabled) curve("unscreened", order, with_acc);
  if (bl.ascending) curve("ascending", order_candidates(u, Order::Ascending), false);
  if (bl.accuracy_guided) {
    RunRecord::Baseline b{"accuracy_guided"};
    std::vector<double> neg_acc;
    for (const auto& acc : run.candidate_acc) neg_acc.push_back(-acc.macro);
    b.order = order_candidates(neg_acc, Order::Ascending);  // best accuracy first
    for (size_t t = 1; t <= N; ++t) b.curve.push_back(ev.accuracy_of(prefix(b.order, t)).macro);
    const size_t best = static_cast<size_t>(std::max_element(b.curve.begin(), b.curve.end()) - b.curve.begin()) + 1;
    b.attrs["chosen_step"] = static_cast<int64_t>(best);
    measure(b, prefix(b.order, best));
    run.baselines.push_back(b);
  }
}

}  // namespace uqmerge::pipeline
