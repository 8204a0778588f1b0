// `uqmerge run -c CONFIG.yaml`: Algorithm 1 of UQ-Merge (DESIGN §4.3).
//   1. u_i = UQ(M_i) for every candidate;
//   2. order the candidates (descending uncertainty by default);
//   3. for t = 2..N: merged_t = Merge(M'_1..M'_t) (rank 0 writes it to a scratch directory),
//      u*_t = UQ(merged_t) on all ranks (t = 1 reuses u of M'_1);
//   4. select with global_min and early_stop (both recorded; the config's rule decides);
//   5. write the chosen merge to OUTPUT_DIR/merged and everything measured to results.h5.
// Not yet (issue #5): sharded merging over ranks with in-memory allgather, the linear running
// sum, resume state, baselines; each step re-reads its members' checkpoints.
#include <fmt/format.h>

#include <chrono>

#include "commands.hpp"
#include "run_common.hpp"
#include "uqmerge/io/atomic_file.hpp"
#include "uqmerge/merge/job.hpp"
#include "uqmerge/merge/method.hpp"
#include "uqmerge/pipeline/selection.hpp"
#include "uqmerge/util/error.hpp"
#include "uqmerge/util/log.hpp"

namespace uqmerge::app {

namespace fs = std::filesystem;

namespace {
merge::MergeSpec step_spec(const pipeline::RunConfig& cfg, const std::vector<size_t>& order, size_t t) {
  merge::MergeSpec s;
  s.source = cfg.source;
  s.method = cfg.merge_method;
  s.base_model = cfg.base_model;
  s.global = cfg.merge_parameters;
  s.rescale = cfg.merge_rescale;
  s.seed = cfg.seed;
  for (size_t k = 0; k < t; ++k) {
    const auto& m = cfg.models[order[k]];
    merge::MergeSpec::Member mem{m.path, m.parameters};
    if (!mem.params.count("weight")) mem.params["weight"] = 1.0;  // plain averaging unless told otherwise
    s.models.push_back(mem);
  }
  return s;
}

void copy_model_dir(const fs::path& from, const fs::path& to) {
  const fs::path tmp = fs::path(to.string() + ".tmp");
  fs::remove_all(tmp);
  fs::copy(from, tmp, fs::copy_options::recursive);
  fs::remove_all(to);
  fs::rename(tmp, to);
}
}  // namespace

int cmd_run(const RunArgs& a) {
  const auto t0 = std::chrono::steady_clock::now();
  auto comm = dist::make_mpi_communicator();
  const pipeline::RunConfig cfg = pipeline::load_config(a.config);
  const merge::Method& method = merge::find_method(cfg.merge_method);  // unknown method: fail before any compute
  if (method.needs_base() && !cfg.base_model)
    throw_bad_input(a.config, "merge.method: '" + cfg.merge_method + "' works on task vectors and needs base_model");
  if (cfg.models.size() < 2) throw_bad_input(a.config, "candidates: Algorithm 1 needs at least 2 candidates");
  Prepared prep = prepare(cfg);
  const fs::path merged_dir = cfg.output_dir / "merged", scratch = cfg.output_dir / "work";
  if (comm->rank() == 0 && fs::exists(merged_dir) && !a.overwrite)
    throw_bad_input(merged_dir.string(), "exists from an earlier run (pass --overwrite to replace it)");
  uq::VisionCache cache(cfg.cache_memory_mb << 20, cfg.cache_dir / ("rank" + std::to_string(comm->rank())));

  // 1. every candidate
  std::vector<uq::ModelResult> results;
  std::vector<std::string> paths;
  std::vector<double> u;
  for (size_t m = 0; m < prep.checkpoints.size(); ++m) {
    results.push_back(evaluate_checkpoint(cfg.models[m].name, prep.checkpoints[m], prep.towers[m], cfg, prep.datasets, cfg.uq,
                                          cache, *comm));
    paths.push_back(cfg.models[m].path.string());
    u.push_back(results.back().overall.macro);
    log::info("candidate {}: uncertainty {:.6f}", cfg.models[m].name, u.back());
  }
  // 2. order
  RunRecord run;
  run.method = cfg.merge_method;
  run.rule = cfg.rule;
  run.order = pipeline::order_candidates(u, pipeline::parse_order(cfg.order));
  // 3. incremental merges
  run.steps.push_back(results[run.order[0]]);
  for (size_t t = 2; t <= run.order.size(); ++t) {
    const fs::path dir = scratch / fmt::format("step_{:03}", t);
    if (comm->rank() == 0) merge::run_merge(step_spec(cfg, run.order, t), dir, /*overwrite=*/true);
    comm->barrier();
    Checkpoint::Options copts;
    copts.vision_tower_dir = cfg.vision_tower;
    const Checkpoint ck = Checkpoint::open(dir, copts);
    run.steps.push_back(evaluate_checkpoint(fmt::format("step_{:03}", t), ck, uq::vision_tower_hash(ck), cfg, prep.datasets,
                                            cfg.uq, cache, *comm));
    log::info("step {} ({} models): uncertainty {:.6f}", t, t, run.steps.back().overall.macro);
    comm->barrier();
    if (comm->rank() == 0 && !a.save_all_steps) fs::remove_all(dir);
  }
  // 4. selection
  std::vector<double> step_u;
  for (const auto& s : run.steps) step_u.push_back(s.overall.macro);
  run.global_min = pipeline::select_global_min(step_u);
  run.early_stop = pipeline::select_early_stop(step_u, cfg.patience);
  run.chosen = cfg.rule == "early_stop" ? run.early_stop : run.global_min;
  run.merged_dir = merged_dir.string();
  // 5. outputs (rank 0)
  if (comm->rank() == 0) {
    if (run.chosen == 1) copy_model_dir(cfg.models[run.order[0]].path, merged_dir);
    else merge::run_merge(step_spec(cfg, run.order, run.chosen), merged_dir, /*overwrite=*/true);
    if (!a.save_all_steps) fs::remove_all(scratch);
    // Model card: what was merged, in which order, and the numbers behind the choice.
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
    write_file_atomic(merged_dir / "README.md", card);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    write_results(cfg, "run", results, paths, prep.towers, comm->size(), seconds, &run);
    fmt::print("order:");
    for (size_t k : run.order) fmt::print(" {}({:.5f})", cfg.models[k].name, u[k]);
    fmt::print("\n{:>6} {:>12}\n", "step", "uncertainty");
    for (size_t t = 0; t < step_u.size(); ++t)
      fmt::print("{:>6} {:>12.6f}{}{}\n", t + 1, step_u[t], t + 1 == run.global_min ? "  <- global_min" : "",
                 t + 1 == run.early_stop ? "  <- early_stop" : "");
    fmt::print("chosen ({}): step {} -> {}\nresults: {}\n", cfg.rule, run.chosen, merged_dir.string(),
               (cfg.output_dir / "results.h5").string());
  }
  comm->barrier();
  return kExitOk;
}

}  // namespace uqmerge::app
