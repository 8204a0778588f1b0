// `uqmerge uq -c CONFIG.yaml`: the uncertainty of each listed model on each dataset, as MPI
// ranks (mpirun/srun), written by rank 0 to OUTPUT_DIR/results.h5 (docs/results-h5.md).
// Every checkpoint header and dataset is validated before any model is evaluated.
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <ctime>

#include "commands.hpp"
#include "uqmerge/io/results_h5.hpp"
#include "uqmerge/pipeline/config.hpp"
#include "uqmerge/util/error.hpp"
#include "uqmerge/util/log.hpp"

#ifndef UQMERGE_VERSION
#define UQMERGE_VERSION "dev"
#endif

namespace uqmerge::app {

namespace {
std::string now_iso() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

void write_results(const pipeline::RunConfig& cfg, const std::vector<uq::ModelResult>& results,
                   const std::vector<std::string>& paths, const std::vector<uint64_t>& towers, int ranks,
                   double seconds) {
  H5Writer h5(cfg.output_dir / "results.h5");
  h5.attr("/", "schema", std::string("uqmerge-results"));
  h5.attr("/", "schema_version", int64_t{1});
  h5.attr("/", "uqmerge_version", std::string(UQMERGE_VERSION));
  h5.attr("/", "created", now_iso());
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  h5.attr("/", "hostname", std::string(host));
  h5.attr("/", "ranks", int64_t{ranks});
  h5.attr("/", "command", std::string("uq"));
  h5.group("/config");
  h5.attr("/config", "yaml", cfg.yaml);
  h5.attr("/config", "path", cfg.source.string());
  h5.attr("/config", "seed", static_cast<int64_t>(cfg.seed));
  h5.attr("/config", "perturbations", int64_t{cfg.uq.plan.perturbations});
  h5.attr("/config", "attention_dropout", cfg.uq.plan.attention_dropout);
  h5.attr("/config", "text_perturbation", perturb::text_mode_name(cfg.uq.plan.text));
  h5.attr("/config", "image_perturbation", int64_t{cfg.uq.plan.image});
  h5.attr("/config", "save_distributions", int64_t{cfg.uq.save_distributions});
  h5.group("/uq");
  for (size_t m = 0; m < results.size(); ++m) {
    const auto& r = results[m];
    const std::string g = fmt::format("/uq/model_{:03}", m);
    h5.group(g);
    h5.attr(g, "name", r.model);
    h5.attr(g, "path", paths[m]);
    h5.attr(g, "vision_tower_hash", fmt::format("{:016x}", towers[m]));
    h5.attr(g, "seconds", r.seconds);
    h5.attr(g, "evaluations", static_cast<int64_t>(r.evaluations));
    h5.attr(g, "vision_passes", static_cast<int64_t>(r.vision_passes));
    h5.attr(g, "uq_macro", r.overall.macro);
    h5.attr(g, "uq_micro", r.overall.micro);
    for (const auto& d : r.datasets) {
      const std::string dg = g + "/" + d.name;
      h5.group(dg);
      std::vector<double> u, t, a;
      for (const auto& s : d.uq.samples) {
        u.push_back(s.uq);
        t.push_back(s.total);
        a.push_back(s.data);
      }
      const uint64_t n = u.size();
      h5.dataset(dg + "/uq", u, {n});
      h5.dataset(dg + "/total", t, {n});
      h5.dataset(dg + "/data", a, {n});
      h5.attr(dg, "uq_mean", d.uq.uq.mean);
      h5.attr(dg, "uq_stderr", d.uq.uq.stderr_);
      h5.attr(dg, "total_mean", d.uq.total.mean);
      h5.attr(dg, "data_mean", d.uq.data.mean);
      h5.attr(dg, "samples", static_cast<int64_t>(n));
      h5.attr(dg, "options", d.options);
      if (cfg.uq.save_distributions) {
        std::vector<uint16_t> half(d.p_mean.size());
        for (size_t i = 0; i < half.size(); ++i) half[i] = float_to_f16(static_cast<float>(d.p_mean[i]));
        h5.dataset_f16(dg + "/p_mean", half, {n, static_cast<uint64_t>(d.options)});
      }
    }
  }
  h5.group("/timing");
  h5.attr("/timing", "total_seconds", seconds);
  h5.commit();
}
}  // namespace

int cmd_uq(const UqArgs& a) {
  const auto t0 = std::chrono::steady_clock::now();
  auto comm = dist::make_mpi_communicator();
  const pipeline::RunConfig cfg = pipeline::load_config(a.config);
  if (cfg.backend == "nccl") throw_bad_input(a.config, "backend: nccl is not wired into the uq stage yet; use backend: mpi");
  // Validate everything before heavy work.
  std::vector<Checkpoint> cks;
  Checkpoint::Options copts;
  copts.vision_tower_dir = cfg.vision_tower;
  for (const auto& m : cfg.models) {
    try {
      cks.push_back(Checkpoint::open(m.path, copts));
      cks.back().require_valid();
    } catch (const Error& e) {
      rethrow_with_context(e, "candidate '" + m.name + "'");
    }
    if (cks.back().config().arch == Architecture::Llama)
      throw_bad_input(m.path.string(), "a text-only LlamaForCausalLM has no vision tower: uq needs LLaVA checkpoints");
    model::Tokenizer::load(m.path);  // fails now, not after hours, when tokenizer.model is missing
  }
  std::vector<data::Dataset> datasets;
  for (const auto& spec : cfg.datasets) datasets.push_back(data::Dataset::load(spec, cfg.seed));
  std::vector<uint64_t> towers;
  for (const auto& ck : cks) towers.push_back(uq::vision_tower_hash(ck));
  for (size_t m = 1; m < towers.size(); ++m)
    if (towers[m] != towers[0])
      log::warn("candidate '{}' has a different vision tower than '{}': its features are computed separately",
                cfg.models[m].name, cfg.models[0].name);
  log::info("uq: {} models x {} datasets, J = {}, {} ranks", cfg.models.size(), datasets.size(),
            cfg.uq.plan.perturbations, comm->size());

  uq::VisionCache cache(cfg.cache_memory_mb << 20, cfg.cache_dir / ("rank" + std::to_string(comm->rank())));
  std::vector<uq::ModelResult> results;
  std::vector<std::string> paths;
  for (size_t m = 0; m < cks.size(); ++m) {
    const auto model = model::LlavaModel::load(cks[m], {cfg.dtype, cfg.threads});
    const auto tok = model::Tokenizer::load(cfg.models[m].path);
    const model::ImageStyle style = cks[m].config().arch == Architecture::LlavaOriginal ? model::ImageStyle::SplitChunks
                                                                                       : model::ImageStyle::SpecialToken;
    results.push_back(uq::evaluate_model(cfg.models[m].name, *model, *tok, style, towers[m], datasets, cfg.uq, cache, *comm));
    paths.push_back(cfg.models[m].path.string());
    const auto& r = results.back();
    log::info("{}: uncertainty {:.6f} (macro over {} datasets), {} evaluations, {} vision passes, {:.1f} s", r.model,
              r.overall.macro, r.datasets.size(), r.evaluations, r.vision_passes, r.seconds);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (comm->rank() == 0) {
    write_results(cfg, results, paths, towers, comm->size(), seconds);
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
