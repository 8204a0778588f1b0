// Algorithm 1 and the uq / eval jobs (see include/uqmerge/pipeline/driver.hpp).
#include "uqmerge/pipeline/driver.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>

#include "baselines.hpp"
#include "evaluations.hpp"
#include "uqmerge/io/atomic_file.hpp"
#include "uqmerge/pipeline/results.hpp"
#include "uqmerge/pipeline/selection.hpp"
#include "uqmerge/util/error.hpp"
#include "uqmerge/util/log.hpp"
#include "uqmerge/util/signals.hpp"

namespace uqmerge::pipeline {

namespace fs = std::filesystem;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void copy_model_dir(const fs::path& from, const fs::path& to) {
  const fs::path tmp = fs::path(to.string() + ".tmp");
  fs::remove_all(tmp);
  fs::copy(from, tmp, fs::copy_options::recursive);
  fs::remove_all(to);
  fs::rename(tmp, to);
}

std::string model_card(const RunConfig& cfg, const RunRecord& run, const std::vector<double>& u,
                       const std::vector<double>& step_u) {
  std::string card = fmt::format("# Merged with uqmerge (UQ-Merge, Algorithm 1)\n\nmethod: `{}` (schedule `{}`); selection: `{}` "
                                 "(global_min -> step {}, early_stop(patience {}) -> step {}); chosen: step {}\n\n",
                                 cfg.merge.method, cfg.merge.schedule, cfg.rule, run.global_min, cfg.patience, run.early_stop, run.chosen);
  card += "## Members (in merge order)\n\n| step | candidate | path | uncertainty |\n|---|---|---|---|\n";
  for (size_t k = 0; k < run.order.size(); ++k) {
    const size_t i = run.order[k];
    card += fmt::format("| {} | {}{} | `{}` | {:.6f} |\n", k + 1, cfg.models[i].name, k < run.chosen ? "" : " (not merged)",
                        cfg.models[i].path.string(), u[i]);
  }
  if (run.screen && run.order.size() < u.size())
    card += "\nLeft out by selection.screen: " + run.screen->flagged_summary() + ".\n";
  card += "\n## Uncertainty of the merge of the first t candidates\n\n| t | uncertainty |\n|---|---|\n";
  for (size_t t = 0; t < step_u.size(); ++t) card += fmt::format("| {} | {:.6f} |\n", t + 1, step_u[t]);
  card += "\nEvery number, per dataset and per sample, is in results.h5 beside this directory.\n";
  return card;
}

void print_run(const RunConfig& cfg, const RunRecord& run, const std::vector<double>& u, const std::vector<double>& step_u) {
  if (run.screen) {
    fmt::print("selection.screen: {:<22} {:>10} {:>17} {:>10}\n", "candidate", "mode_share", "image_sensitivity", "agreement");
    for (const auto& c : run.screen->candidates)
      fmt::print("                  {:<22} {:>10.3f} {:>17.4f} {:>10.3f}{}\n", c.name, c.mode_share, c.image_sensitivity,
                 c.agreement, c.flagged ? "  <- left out" : "");
  }
  fmt::print("order:");
  for (size_t k : run.order) fmt::print(" {}({:.5f})", cfg.models[k].name, u[k]);
  fmt::print("\n{:>6} {:>12}\n", "step", "uncertainty");
  for (size_t t = 0; t < step_u.size(); ++t)
    fmt::print("{:>6} {:>12.6f}{}{}\n", t + 1, step_u[t], t + 1 == run.global_min ? "  <- global_min" : "",
               t + 1 == run.early_stop ? "  <- early_stop" : "");
  for (const auto& b : run.baselines) {
    double mu = 0, ma = 0;
    for (double x : b.uq) mu += x / static_cast<double>(b.uq.size());
    for (double x : b.acc) ma += x / static_cast<double>(b.acc.size());
    fmt::print("baseline {:<16} uncertainty {:.6f}{}\n", b.name, mu,
               cfg.eval_datasets.empty() ? "" : fmt::format("  accuracy {:.2f}", ma));
  }
  if (run.chosen_acc) fmt::print("accuracy of the chosen merge: {:.2f}\n", run.chosen_acc->macro);
  fmt::print("chosen ({}): step {} -> {}\nresults: {}\n", cfg.rule, run.chosen, run.merged_dir,
             (cfg.output_dir / "results.h5").string());
}

int algorithm(Session& s, const RunOptions& opts) {
  const auto t0 = std::chrono::steady_clock::now();
  const RunConfig& cfg = s.cfg;
  dist::Communicator& comm = s.comm;
  const fs::path merged_dir = cfg.output_dir / "merged";
  if (comm.rank() == 0 && fs::exists(merged_dir) && !opts.overwrite)
    throw_bad_input(merged_dir.string(), "exists from an earlier run (pass --overwrite to replace it)");
  if (comm.rank() == 0) require_replaceable(merged_dir, is_model_file);  // before any compute
  Evaluations ev(s, opts);
  const size_t N = s.checkpoints.size();

  // 0. selection.screen (beyond the paper): degenerate candidates left out of the ordering
  RunRecord run;
  std::vector<size_t> pool(N);
  for (size_t m = 0; m < N; ++m) pool[m] = m;
  if (cfg.screen.enabled) {
    run.screen = ev.screen();
    pool = run.screen->kept();
    for (const auto& note : run.screen->notes) log::warn("selection.screen: {}", note);
    if (pool.empty())
      throw_bad_input(cfg.source.string(), "selection.screen flagged every candidate, so there is nothing to merge: " +
                                               run.screen->flagged_summary() +
                                               "; check these checkpoints, or relax selection.screen's thresholds");
    if (pool.size() < N) log::info("selection.screen left out {}", run.screen->flagged_summary());
  }

  // 1. every candidate
  std::vector<uq::ModelResult> results;
  std::vector<double> u;
  for (size_t m = 0; m < N; ++m) {
    results.push_back(ev.uq_of({m}));
    u.push_back(results.back().overall.macro);
    log::info("candidate {}: uncertainty {:.6f}", cfg.models[m].name, u.back());
  }
  // 2. order, 3. incremental merges
  run.method = cfg.merge.method;
  run.rule = cfg.rule;
  const std::vector<size_t> full_order = order_candidates(u, parse_order(cfg.order));
  for (size_t m : full_order)  // the same order over the candidates the screen kept
    if (std::find(pool.begin(), pool.end(), m) != pool.end()) run.order.push_back(m);
  std::vector<double> step_u;
  for (size_t t = 1; t <= run.order.size(); ++t) {
    const auto members = prefix(run.order, t);
    run.steps.push_back(ev.uq_of(members));
    run.step_merge_seconds.push_back(ev.merge_seconds(members));
    step_u.push_back(run.steps.back().overall.macro);
    if (t > 1) log::info("step {} ({} models): uncertainty {:.6f}", t, t, step_u.back());
    if (opts.save_all_steps && t > 1)
      ev.save_merge(members, cfg.output_dir / "steps" / fmt::format("step_{:03}", t), "# step " + std::to_string(t) + "\n");
  }
  // 4. selection
  run.global_min = select_global_min(step_u);
  run.early_stop = select_early_stop(step_u, cfg.patience);
  run.chosen = cfg.rule == "early_stop" ? run.early_stop : run.global_min;
  run.merged_dir = merged_dir.string();
  const auto chosen = prefix(run.order, run.chosen);

  // 5. accuracy and baselines
  if (!cfg.eval_datasets.empty()) {
    for (const auto& d : ev.eval_datasets()) run.eval_names.push_back(d.name());
    for (size_t m = 0; m < N; ++m) run.candidate_acc.push_back(ev.accuracy_of({m}));
    run.chosen_acc = ev.accuracy_of(chosen);
    for (size_t t = 1; t <= run.order.size(); ++t)
      run.step_acc.push_back(ev.accuracy_of(prefix(run.order, t)));  // memoised: the chosen step is not re-evaluated
  }
  measure_baselines(ev, cfg, u, full_order, run);  // over every candidate, screened or not

  // 6. outputs: the chosen merge (all ranks write their shards), then results.h5 (rank 0)
  const std::string card = model_card(cfg, run, u, step_u);
  if (run.chosen == 1) {
    if (comm.rank() == 0) {
      copy_model_dir(cfg.models[run.order[0]].path, merged_dir);
      write_file_atomic(merged_dir / "README.md", card);
    }
    comm.barrier();
  } else {
    ev.save_merge(chosen, merged_dir, card);
  }
  if (comm.rank() == 0) {
    write_results(s, "run", results, seconds_since(t0), &run);
    print_run(cfg, run, u, step_u);
  }
  comm.barrier();
  return kExitOk;
}

}  // namespace

int run_algorithm(Session& s, const RunOptions& opts) {
  if (s.cfg.models.size() < 2) throw_bad_input(s.cfg.source.string(), "candidates: Algorithm 1 needs at least 2 candidates");
  signals::install_stop_handlers();
  try {
    return algorithm(s, opts);
  } catch (const Stopped&) {
    s.comm.barrier();
    return kExitStopped;
  }
}

int run_uq(Session& s) {
  const auto t0 = std::chrono::steady_clock::now();
  const RunConfig& cfg = s.cfg;
  log::info("uq: {} models x {} datasets, J = {}, {} ranks", cfg.models.size(), s.datasets.size(), cfg.uq.plan.perturbations,
            s.comm.size());
  uq::VisionCache cache(cfg.cache_memory_mb << 20, cfg.cache_dir / ("rank" + std::to_string(s.comm.rank())));
  std::vector<uq::ModelResult> results;
  for (size_t m = 0; m < s.checkpoints.size(); ++m) {
    results.push_back(evaluate_candidate(s, m, s.datasets, cfg.uq, cache));
    const auto& r = results.back();
    log::info("{}: uncertainty {:.6f} (macro over {} datasets), {} evaluations, {} vision passes, {:.1f} s", r.model,
              r.overall.macro, r.datasets.size(), r.evaluations, r.vision_passes, r.seconds);
  }
  if (s.comm.rank() == 0) {
    write_results(s, "uq", results, seconds_since(t0));
    fmt::print("{:<24}", "model");
    for (const auto& d : s.datasets) fmt::print(" {:>14}", d.name());
    fmt::print(" {:>10}\n", "average");
    for (const auto& r : results) {
      fmt::print("{:<24}", r.model);
      for (const auto& d : r.datasets) fmt::print(" {:>14.6f}", d.uq.uq.mean);
      fmt::print(" {:>10.6f}\n", r.overall.macro);
    }
    fmt::print("results: {}\n", (cfg.output_dir / "results.h5").string());
  }
  s.comm.barrier();
  return kExitOk;
}

int run_eval(Session& s) {
  const RunConfig& cfg = s.cfg;
  require_labelled(s.datasets);
  const uq::UqOptions clean = uq::clean_options(cfg.uq);
  uq::VisionCache cache(cfg.cache_memory_mb << 20, cfg.cache_dir / ("eval-rank" + std::to_string(s.comm.rank())));
  std::vector<Accuracy> acc;
  for (size_t m = 0; m < s.checkpoints.size(); ++m) acc.push_back(accuracy(s.datasets, evaluate_candidate(s, m, s.datasets, clean, cache)));
  if (s.comm.rank() == 0) {
    write_eval(s, acc);
    fmt::print("{:<24}", "model");
    for (const auto& d : s.datasets) fmt::print(" {:>12}", d.name());
    fmt::print(" {:>10}\n", "average");
    for (size_t m = 0; m < acc.size(); ++m) {
      fmt::print("{:<24}", cfg.models[m].name);
      for (double p : acc[m].percent) fmt::print(" {:>12.2f}", p);
      fmt::print(" {:>10.2f}\n", acc[m].macro);
    }
    fmt::print("results: {}\n", (cfg.output_dir / "eval.h5").string());
  }
  s.comm.barrier();
  return kExitOk;
}

}  // namespace uqmerge::pipeline
