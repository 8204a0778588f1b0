// `uqmerge uq -c CONFIG.yaml`: the uncertainty of each listed model on each dataset, as MPI
// ranks (mpirun/srun), written by rank 0 to OUTPUT_DIR/results.h5 (docs/results-h5.md).
// Every checkpoint header and dataset is validated before any model is evaluated.
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <ctime>

#include "commands.hpp"
#include "run_common.hpp"
#include "uqmerge/io/results_h5.hpp"
#include "uqmerge/pipeline/config.hpp"
#include "uqmerge/util/error.hpp"
#include "uqmerge/util/log.hpp"

#ifndef UQMERGE_VERSION
#define UQMERGE_VERSION "dev"
#endif

namespace uqmerge::app {

int cmd_uq(const UqArgs& a) {
  const auto t0 = std::chrono::steady_clock::now();
  auto comm = dist::make_mpi_communicator();
  const pipeline::RunConfig cfg = pipeline::load_config(a.config);
  if (cfg.backend == "nccl") throw_bad_input(a.config, "backend: nccl is not wired into the uq stage yet; use backend: mpi");
  Prepared prep = prepare(cfg);
  const auto& cks = prep.checkpoints;
  const auto& datasets = prep.datasets;
  const auto& towers = prep.towers;
  log::info("uq: {} models x {} datasets, J = {}, {} ranks", cfg.models.size(), datasets.size(),
            cfg.uq.plan.perturbations, comm->size());

  uq::VisionCache cache(cfg.cache_memory_mb << 20, cfg.cache_dir / ("rank" + std::to_string(comm->rank())));
  std::vector<uq::ModelResult> results;
  std::vector<std::string> paths;
  for (size_t m = 0; m < cks.size(); ++m) {
    results.push_back(evaluate_checkpoint(cfg.models[m].name, cks[m], towers[m], cfg, datasets, cfg.uq, cache, *comm));
    paths.push_back(cfg.models[m].path.string());
    const auto& r = results.back();
    log::info("{}: uncertainty {:.6f} (macro over {} datasets), {} evaluations, {} vision passes, {:.1f} s", r.model,
              r.overall.macro, r.datasets.size(), r.evaluations, r.vision_passes, r.seconds);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (comm->rank() == 0) {
    write_results(cfg, "uq", results, paths, towers, comm->size(), seconds);
    fmt::print("{:<24}", "model");
    for (const auto& d : datasets) fmt::print(" {:>14}", d.name());
    fmt::print(" {:>10}\n", "average");
    for (const auto& r : results) {
      fmt::print("{:<24}", r.model);
      for (const auto& d : r.datasets) fmt::print(" {:>14.6f}", d.uq.uq.mean);
      fmt::print(" {:>10.6f}\n", r.overall.macro);
    }
    fmt::print("results: {}\n", (cfg.output_dir / "results.h5").string());
  }
  comm->barrier();
  return kExitOk;
}

}  // namespace uqmerge::app
