// Shared by `uq` and `run` (see src/app/run_common.hpp).
#include "run_common.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <ctime>

#include "uqmerge/io/results_h5.hpp"
#include "uqmerge/model/tokenizer.hpp"
#include "uqmerge/util/error.hpp"
#include "uqmerge/util/log.hpp"

#ifndef UQMERGE_VERSION
#define UQMERGE_VERSION "dev"
#endif

namespace uqmerge::app {

Prepared prepare(const pipeline::RunConfig& cfg) {
  Prepared p;
  Checkpoint::Options copts;
  copts.vision_tower_dir = cfg.vision_tower;
  for (const auto& m : cfg.models) {
    try {
      p.checkpoints.push_back(Checkpoint::open(m.path, copts));
      p.checkpoints.back().require_valid();
      if (p.checkpoints.back().config().arch == Architecture::Llama)
        throw_bad_input(m.path.string(), "a text-only LlamaForCausalLM has no vision tower: uncertainty needs LLaVA checkpoints");
      model::Tokenizer::load(m.path);  // fails now, not after hours, when tokenizer.model is missing
    } catch (const Error& e) {
      rethrow_with_context(e, "candidate '" + m.name + "'");
    }
  }
  for (const auto& spec : cfg.datasets) p.datasets.push_back(data::Dataset::load(spec, cfg.seed));
  for (const auto& ck : p.checkpoints) p.towers.push_back(uq::vision_tower_hash(ck));
  for (size_t m = 1; m < p.towers.size(); ++m)
    if (p.towers[m] != p.towers[0])
      log::warn("candidate '{}' has a different vision tower than '{}': its features are computed separately",
                cfg.models[m].name, cfg.models[0].name);
  return p;
}

model::ImageStyle image_style(const Checkpoint& ck) {
  return ck.config().arch == Architecture::LlavaOriginal ? model::ImageStyle::SplitChunks : model::ImageStyle::SpecialToken;
}

uq::ModelResult evaluate_checkpoint(const std::string& name, const Checkpoint& ck, uint64_t tower,
                                    const pipeline::RunConfig& cfg, const std::vector<data::Dataset>& datasets,
                                    const uq::UqOptions& opts, uq::VisionCache& cache, dist::Communicator& comm) {
  const auto model = model::LlavaModel::load(ck, {cfg.dtype, cfg.threads});
  const auto tok = model::Tokenizer::load(ck.dir());
  return uq::evaluate_model(name, *model, *tok, image_style(ck), tower, datasets, opts, cache, comm);
}

namespace {
std::string now_iso() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

}  // namespace

void write_results(const pipeline::RunConfig& cfg, const std::string& command, const std::vector<uq::ModelResult>& results,
                   const std::vector<std::string>& paths, const std::vector<uint64_t>& towers, int ranks, double seconds,
                   const RunRecord* run) {
  H5Writer h5(cfg.output_dir / "results.h5");
  h5.attr("/", "schema", std::string("uqmerge-results"));
  h5.attr("/", "schema_version", int64_t{1});
  h5.attr("/", "uqmerge_version", std::string(UQMERGE_VERSION));
  h5.attr("/", "created", now_iso());
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  h5.attr("/", "hostname", std::string(host));
  h5.attr("/", "ranks", int64_t{ranks});
  h5.attr("/", "command", command);
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
  if (run) {
    const std::string g = "/run";
    h5.group(g);
    h5.attr(g, "method", run->method);
    h5.attr(g, "rule", run->rule);
    h5.attr(g, "order_by", cfg.order);
    h5.attr(g, "patience", int64_t{cfg.patience});
    h5.attr(g, "global_min_step", static_cast<int64_t>(run->global_min));
    h5.attr(g, "early_stop_step", static_cast<int64_t>(run->early_stop));
    h5.attr(g, "chosen_step", static_cast<int64_t>(run->chosen));
    h5.attr(g, "merged_dir", run->merged_dir);
    std::vector<int64_t> order(run->order.begin(), run->order.end());
    h5.dataset(g + "/order", order);
    std::vector<double> macro, micro;
    for (const auto& s : run->steps) {
      macro.push_back(s.overall.macro);
      micro.push_back(s.overall.micro);
    }
    const uint64_t T = run->steps.size();
    h5.dataset(g + "/step_uq_macro", macro, {T});
    h5.dataset(g + "/step_uq_micro", micro, {T});
    for (size_t d = 0; d < (T ? run->steps[0].datasets.size() : 0); ++d) {
      std::vector<double> mean, se;
      for (const auto& s : run->steps) {
        mean.push_back(s.datasets[d].uq.uq.mean);
        se.push_back(s.datasets[d].uq.uq.stderr_);
      }
      const std::string dg = g + "/datasets/" + run->steps[0].datasets[d].name;
      h5.group(dg);
      h5.dataset(dg + "/step_uq_mean", mean, {T});
      h5.dataset(dg + "/step_uq_stderr", se, {T});
    }
    for (size_t t = 0; t < T; ++t) {
      const std::string sg = fmt::format("{}/steps/step_{:03}", g, t + 1);
      h5.group(sg);
      std::vector<int64_t> members(run->order.begin(), run->order.begin() + static_cast<std::ptrdiff_t>(t + 1));
      h5.dataset(sg + "/members", members);
      h5.attr(sg, "seconds", run->steps[t].seconds);
      h5.attr(sg, "vision_passes", static_cast<int64_t>(run->steps[t].vision_passes));
      for (const auto& d : run->steps[t].datasets) {
        std::vector<double> u;
        for (const auto& x : d.uq.samples) u.push_back(x.uq);
        h5.dataset(sg + "/" + d.name + "_uq", u, {static_cast<uint64_t>(u.size())});
      }
    }
  }
  h5.group("/timing");
  h5.attr("/timing", "total_seconds", seconds);
  h5.commit();
}

}  // namespace uqmerge::app
