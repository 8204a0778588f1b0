// `uqmerge run -c CONFIG.yaml`: Algorithm 1 of UQ-Merge (DESIGN §4.3).
//   1. u_i = UQ(M_i) for every candidate;
//   2. order the candidates (descending uncertainty by default);
//   3. for t = 2..N: merged_t = Merge(M'_1..M'_t), sharded over ranks and gathered in memory
//      (merge/engine.hpp; linear steps add only the new member to a running sum),
//      u*_t = UQ(merged_t) on all ranks (t = 1 reuses u of M'_1);
//   4. select with global_min and early_stop (both recorded; the config's rule decides);
//   5. baselines and accuracy when the config asks for them;
//   6. the chosen merge written to OUTPUT_DIR/merged by all ranks, results.h5 by rank 0.
// Every evaluation is memoised under a key in the resume state (pipeline/state.hpp), saved
// after each one; SIGTERM/SIGUSR1 stop at the next evaluation boundary with kExitStopped.
#include <fmt/format.h>

#include <chrono>
#include <csignal>
#include <cstdlib>

#include "commands.hpp"
#include "run_common.hpp"
#include "uqmerge/dist/sharding.hpp"
#include "uqmerge/io/atomic_file.hpp"
#include "uqmerge/merge/engine.hpp"
#include "uqmerge/merge/method.hpp"
#include "uqmerge/pipeline/selection.hpp"
#include "uqmerge/pipeline/state.hpp"
#include "uqmerge/util/error.hpp"
#include "uqmerge/util/log.hpp"
#include "uqmerge/util/rng.hpp"
#include "uqmerge/util/signals.hpp"

#ifndef UQMERGE_VERSION
#define UQMERGE_VERSION "dev"
#endif

namespace uqmerge::app {

namespace fs = std::filesystem;

namespace {

struct Stopped {};  // thrown at a safe point after SIGTERM/SIGUSR1; the state is saved

std::string set_key(const std::vector<size_t>& members) {
  std::string k;
  for (size_t m : members) {
    if (!k.empty()) k += ',';
    k += std::to_string(m);
  }
  return k;
}

void copy_model_dir(const fs::path& from, const fs::path& to) {
  const fs::path tmp = fs::path(to.string() + ".tmp");
  fs::remove_all(tmp);
  fs::copy(from, tmp, fs::copy_options::recursive);
  fs::remove_all(to);
  fs::rename(tmp, to);
}

// Memoised, resumable evaluations of candidates and merges.
class Driver {
 public:
  Driver(const pipeline::RunConfig& cfg, const RunArgs& args, Prepared& prep, dist::Communicator& comm)
      : cfg_(cfg), prep_(prep), comm_(comm), state_path_(cfg.output_dir / "state.uqs"),
        cache_(cfg.cache_memory_mb << 20, cfg.cache_dir / ("rank" + std::to_string(comm.rank()))),
        eval_cache_(cfg.cache_memory_mb << 20, cfg.cache_dir / ("eval-rank" + std::to_string(comm.rank()))) {
    if (comm.rank() == 0) fs::create_directories(cfg.output_dir);
    state_.config_hash = pipeline::config_hash(cfg.yaml, UQMERGE_VERSION);
    state_.uqmerge_version = UQMERGE_VERSION;
    if (args.restart) {
      comm.barrier();
      if (comm.rank() == 0) fs::remove(state_path_);
    } else if (auto s = pipeline::load_state(state_path_)) {
      if (s->config_hash != state_.config_hash)
        throw_bad_input(state_path_.string(), "was written by another config or uqmerge version (" + s->uqmerge_version +
                                                  "): rerun with --restart to start over, or restore the config it was made with");
      state_.done = std::move(s->done);
      state_.merge_seconds = std::move(s->merge_seconds);
      log::info("resuming from {}: {} evaluation(s) already done", state_path_.string(), state_.done.size());
    }
    comm.barrier();  // every rank has read the state before rank 0 rewrites it
    std::vector<const Checkpoint*> cands;
    std::vector<std::map<std::string, double>> params;
    for (size_t m = 0; m < prep.checkpoints.size(); ++m) {
      cands.push_back(&prep.checkpoints[m]);
      params.push_back(cfg.models[m].parameters);
      if (!params.back().count("weight")) params.back()["weight"] = 1.0;  // plain averaging unless told otherwise
    }
    if (cfg.base_model) {
      Checkpoint::Options copts;
      copts.vision_tower_dir = cfg.vision_tower;
      base_ = Checkpoint::open(*cfg.base_model, copts);
      base_->require_valid();
    }
    merge::EngineOptions o;
    o.source = cfg.source.string();
    o.method = cfg.merge_method;
    o.global = cfg.merge_parameters;
    o.rescale = cfg.merge_rescale;
    o.seed = cfg.seed;
    o.resident_bytes = cfg.resident_memory_mb << 20;
    o.incremental = true;
    merger_.emplace(cands, params, base_ ? &*base_ : nullptr, o, comm);
    if (!cfg.eval_datasets.empty()) {
      for (const auto& spec : cfg.eval_datasets) eval_datasets_.push_back(data::Dataset::load(spec, cfg.seed));
      require_labelled(eval_datasets_);
    }
  }

  const std::vector<data::Dataset>& eval_datasets() const { return eval_datasets_; }
  bool has_merge_seconds(const std::vector<size_t>& m) const { return state_.merge_seconds.count(set_key(m)) != 0; }
  double merge_seconds(const std::vector<size_t>& m) const {
    auto it = state_.merge_seconds.find(set_key(m));
    return it == state_.merge_seconds.end() ? 0.0 : it->second;
  }

  // Uncertainty of the merge of `members` (merge order); one member: that candidate.
  const uq::ModelResult& uq_of(const std::vector<size_t>& members) {
    return evaluate("uq/" + set_key(members), members, cfg_.uq, prep_.datasets, cache_);
  }
  // Accuracy on evaluation.datasets (unperturbed input).
  Accuracy accuracy_of(const std::vector<size_t>& members) {
    return accuracy(eval_datasets_, evaluate("acc/" + set_key(members), members, clean_options(cfg_.uq), eval_datasets_, eval_cache_));
  }
  // Writes the merge of `members` to dir (all ranks, sharded): the merger's kept tensors when
  // they are this merge's (the step just evaluated), else merged again.
  void save_merge(const std::vector<size_t>& members, const fs::path& dir, const std::string& card) {
    if (set_key(members) != kept_key_) {
      merger_->compute(members);
      kept_key_ = set_key(members);
    }
    merger_->write(dir, card, /*overwrite=*/true);
  }
  std::string label(const std::vector<size_t>& members) const {
    if (members.size() == 1) return cfg_.models[members[0]].name;
    return fmt::format("merge({})", set_key(members));
  }

 private:
  const uq::ModelResult& evaluate(const std::string& key, const std::vector<size_t>& members, const uq::UqOptions& opts,
                                  const std::vector<data::Dataset>& datasets, uq::VisionCache& cache) {
    if (auto it = state_.done.find(key); it != state_.done.end()) return it->second;
    uq::ModelResult r;
    if (members.size() == 1) {
      const size_t m = members[0];
      r = evaluate_checkpoint(cfg_.models[m].name, prep_.checkpoints[m], prep_.towers[m], cfg_, datasets, opts, cache, comm_);
    } else {
      load_merge(members);
      const Checkpoint& ref = merger_->reference();
      r = evaluate_checkpoint(label(members), ref, ref_tower(), cfg_, datasets, opts, cache, comm_, &weights_);
    }
    auto& stored = state_.done[key] = std::move(r);
    if (comm_.rank() == 0) pipeline::save_state(state_, state_path_);
    // Test hook: behave as if SIGUSR1 arrived after this many new evaluations (tests/e2e/test_resume.sh).
    if (const char* n = std::getenv("UQMERGE_TEST_STOP_AFTER"); n && ++new_evaluations_ == std::strtoul(n, nullptr, 10))
      signals::request_stop_for_testing(SIGUSR1);
    // Safe point: all ranks agree to stop when any received the signal.
    double stop = signals::stop_requested() ? 1.0 : 0.0;
    comm_.allreduce_sum(&stop, 1, DType::F64);
    if (stop > 0) {
      log::warn("stop requested (signal {}): {} evaluation(s) saved in {}; rerun the same command to continue",
                signals::stop_signal(), state_.done.size(), state_path_.string());
      throw Stopped{};
    }
    return stored;
  }

  void load_merge(const std::vector<size_t>& members) {
    const std::string key = set_key(members);
    if (key == weights_key_) return;
    const auto t0 = std::chrono::steady_clock::now();
    weights_.clear();
    merger_->compute(members);
    kept_key_ = key;
    weights_ = merger_->gather();
    weights_key_ = key;
    state_.merge_seconds[key] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const auto& st = merger_->stats();
    log::info("merged {} candidates in {:.2f} s (this rank: {} tensors, {:.1f} MiB read so far, {:.1f} MiB resident)",
              members.size(), state_.merge_seconds[key], st.owned_tensors, static_cast<double>(st.bytes_read) / (1 << 20),
              static_cast<double>(st.resident_bytes) / (1 << 20));
  }

  uint64_t ref_tower() {
    if (!ref_tower_) ref_tower_ = uq::vision_tower_hash(merger_->reference());
    return *ref_tower_;
  }

  const pipeline::RunConfig& cfg_;
  Prepared& prep_;
  dist::Communicator& comm_;
  fs::path state_path_;
  pipeline::RunState state_;
  uq::VisionCache cache_, eval_cache_;
  std::optional<Checkpoint> base_;
  std::optional<merge::Merger> merger_;
  std::vector<data::Dataset> eval_datasets_;
  std::map<std::string, at::Tensor> weights_;
  std::string weights_key_, kept_key_;  // member sets of the gathered weights / the merger's kept tensors
  std::optional<uint64_t> ref_tower_;
  unsigned long new_evaluations_ = 0;
};

std::vector<size_t> prefix(const std::vector<size_t>& order, size_t t) {
  return {order.begin(), order.begin() + static_cast<std::ptrdiff_t>(t)};
}

// k distinct candidates drawn uniformly (partial Fisher–Yates on a Philox stream), merged in the
// main order (descending uncertainty) so the same subset always merges the same way.
std::vector<size_t> random_subset(const std::vector<size_t>& order, size_t k, uint64_t seed, uint64_t repeat) {
  RngStream rng(seed, {hash_name("baseline/random_k"), repeat});
  std::vector<size_t> pool = order;
  for (size_t i = 0; i < k; ++i) std::swap(pool[i], pool[i + rng.below(pool.size() - i)]);
  std::vector<size_t> pick(pool.begin(), pool.begin() + static_cast<std::ptrdiff_t>(k)), out;
  for (size_t m : order)
    if (std::find(pick.begin(), pick.end(), m) != pick.end()) out.push_back(m);
  return out;
}

std::string model_card(const pipeline::RunConfig& cfg, const RunRecord& run, const std::vector<double>& u,
                       const std::vector<double>& step_u) {
  std::string card = fmt::format("# Merged with uqmerge (UQ-Merge, Algorithm 1)\n\nmethod: `{}`; selection: `{}` "
                                 "(global_min -> step {}, early_stop(patience {}) -> step {}); chosen: step {}\n\n",
                                 cfg.merge_method, cfg.rule, run.global_min, cfg.patience, run.early_stop, run.chosen);
  card += "## Members (in merge order)\n\n| step | candidate | path | uncertainty |\n|---|---|---|---|\n";
  for (size_t k = 0; k < run.order.size(); ++k) {
    const size_t i = run.order[k];
    card += fmt::format("| {} | {}{} | `{}` | {:.6f} |\n", k + 1, cfg.models[i].name, k < run.chosen ? "" : " (not merged)",
                        cfg.models[i].path.string(), u[i]);
  }
  card += "\n## Uncertainty of the merge of the first t candidates\n\n| t | uncertainty |\n|---|---|\n";
  for (size_t t = 0; t < step_u.size(); ++t) card += fmt::format("| {} | {:.6f} |\n", t + 1, step_u[t]);
  card += "\nEvery number, per dataset and per sample, is in results.h5 beside this directory.\n";
  return card;
}

int run_algorithm(const pipeline::RunConfig& cfg, const RunArgs& a, dist::Communicator& comm, double& seconds_out) {
  const auto t0 = std::chrono::steady_clock::now();
  Prepared prep = prepare(cfg);
  const fs::path merged_dir = cfg.output_dir / "merged";
  if (comm.rank() == 0 && fs::exists(merged_dir) && !a.overwrite)
    throw_bad_input(merged_dir.string(), "exists from an earlier run (pass --overwrite to replace it)");
  Driver drv(cfg, a, prep, comm);
  const size_t N = prep.checkpoints.size();

  // 1. every candidate
  std::vector<uq::ModelResult> results;
  std::vector<std::string> paths;
  std::vector<double> u;
  for (size_t m = 0; m < N; ++m) {
    results.push_back(drv.uq_of({m}));
    paths.push_back(cfg.models[m].path.string());
    u.push_back(results.back().overall.macro);
    log::info("candidate {}: uncertainty {:.6f}", cfg.models[m].name, u.back());
  }
  // 2. order, 3. incremental merges
  RunRecord run;
  run.method = cfg.merge_method;
  run.rule = cfg.rule;
  run.order = pipeline::order_candidates(u, pipeline::parse_order(cfg.order));
  std::vector<double> step_u;
  for (size_t t = 1; t <= N; ++t) {
    const auto members = prefix(run.order, t);
    run.steps.push_back(drv.uq_of(members));
    run.step_merge_seconds.push_back(drv.merge_seconds(members));
    step_u.push_back(run.steps.back().overall.macro);
    if (t > 1) log::info("step {} ({} models): uncertainty {:.6f}", t, t, step_u.back());
    if (a.save_all_steps && t > 1)
      drv.save_merge(members, cfg.output_dir / "steps" / fmt::format("step_{:03}", t), "# step " + std::to_string(t) + "\n");
  }
  // 4. selection
  run.global_min = pipeline::select_global_min(step_u);
  run.early_stop = pipeline::select_early_stop(step_u, cfg.patience);
  run.chosen = cfg.rule == "early_stop" ? run.early_stop : run.global_min;
  run.merged_dir = merged_dir.string();
  const auto chosen = prefix(run.order, run.chosen);

  // 5. accuracy and baselines
  const bool with_acc = !cfg.eval_datasets.empty();
  if (with_acc) {
    for (const auto& d : drv.eval_datasets()) run.eval_names.push_back(d.name());
    for (size_t m = 0; m < N; ++m) run.candidate_acc.push_back(drv.accuracy_of({m}));
    run.chosen_acc = drv.accuracy_of(chosen);
    for (size_t t = 1; t <= N; ++t) run.step_acc.push_back(drv.accuracy_of(prefix(run.order, t)));  // memoised: the chosen step is not re-evaluated
  }
  auto measure = [&](RunRecord::Baseline& b, const std::vector<size_t>& members) {
    b.sets.push_back(members);
    b.uq.push_back(drv.uq_of(members).overall.macro);
    if (with_acc) {
      const Accuracy acc = drv.accuracy_of(members);
      b.acc.push_back(acc.macro);
      b.acc_datasets.push_back(acc.percent);
    }
  };
  const auto& bl = cfg.baselines;
  if (bl.merge_all) {
    RunRecord::Baseline b{"merge_all"};
    measure(b, run.order);
    run.baselines.push_back(b);
  }
  if (bl.random_repeats > 0) {
    RunRecord::Baseline b{"random_k"};
    const size_t k = bl.random_k > 0 ? static_cast<size_t>(bl.random_k) : run.chosen;
    b.attrs["k"] = static_cast<int64_t>(k);
    b.attrs["seed"] = static_cast<int64_t>(bl.random_seed);
    for (int r = 0; r < bl.random_repeats; ++r) measure(b, random_subset(run.order, k, bl.random_seed, static_cast<uint64_t>(r)));
    run.baselines.push_back(b);
  }
  if (bl.ascending) {
    RunRecord::Baseline b{"ascending"};
    b.order = pipeline::order_candidates(u, pipeline::parse_order("ascending"));
    for (size_t t = 1; t <= N; ++t) b.curve.push_back(drv.uq_of(prefix(b.order, t)).overall.macro);
    const size_t gm = pipeline::select_global_min(b.curve), es = pipeline::select_early_stop(b.curve, cfg.patience);
    b.attrs["global_min_step"] = static_cast<int64_t>(gm);
    b.attrs["early_stop_step"] = static_cast<int64_t>(es);
    measure(b, prefix(b.order, cfg.rule == "early_stop" ? es : gm));
    run.baselines.push_back(b);
  }
  if (bl.accuracy_guided) {
    RunRecord::Baseline b{"accuracy_guided"};
    std::vector<double> neg_acc;
    for (const auto& acc : run.candidate_acc) neg_acc.push_back(-acc.macro);
    b.order = pipeline::order_candidates(neg_acc, pipeline::parse_order("ascending"));  // best accuracy first
    for (size_t t = 1; t <= N; ++t) b.curve.push_back(drv.accuracy_of(prefix(b.order, t)).macro);
    const size_t best = static_cast<size_t>(std::max_element(b.curve.begin(), b.curve.end()) - b.curve.begin()) + 1;
    b.attrs["chosen_step"] = static_cast<int64_t>(best);
    measure(b, prefix(b.order, best));
    run.baselines.push_back(b);
  }

  // 6. outputs: the chosen merge (all ranks write their shards), then results.h5 (rank 0)
  const std::string card = model_card(cfg, run, u, step_u);
  if (run.chosen == 1) {
    if (comm.rank() == 0) {
      copy_model_dir(cfg.models[run.order[0]].path, merged_dir);
      write_file_atomic(merged_dir / "README.md", card);
    }
    comm.barrier();
  } else {
    drv.save_merge(chosen, merged_dir, card);
  }
  if (comm.rank() == 0) {
    seconds_out = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    write_results(cfg, "run", results, paths, prep.towers, comm.size(), seconds_out, &run);
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
      fmt::print("baseline {:<16} uncertainty {:.6f}{}\n", b.name, mu, with_acc ? fmt::format("  accuracy {:.2f}", ma) : "");
    }
    if (run.chosen_acc) fmt::print("accuracy of the chosen merge: {:.2f}\n", run.chosen_acc->macro);
    fmt::print("chosen ({}): step {} -> {}\nresults: {}\n", cfg.rule, run.chosen, merged_dir.string(),
               (cfg.output_dir / "results.h5").string());
  }
  comm.barrier();
  return kExitOk;
}

}  // namespace

int cmd_run(const RunArgs& a) {
  signals::install_stop_handlers();
  auto comm = dist::make_mpi_communicator();
  const pipeline::RunConfig cfg = pipeline::load_config(a.config);
  const merge::Method& method = merge::find_method(cfg.merge_method);  // unknown method: fail before any compute
  if (method.needs_base() && !cfg.base_model)
    throw_bad_input(a.config, "merge.method: '" + cfg.merge_method + "' works on task vectors and needs base_model");
  if (cfg.models.size() < 2) throw_bad_input(a.config, "candidates: Algorithm 1 needs at least 2 candidates");
  double seconds = 0;
  try {
    return run_algorithm(cfg, a, *comm, seconds);
  } catch (const Stopped&) {
    comm->barrier();
    return kExitStopped;
  }
}

}  // namespace uqmerge::app
