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
                                    const uq::UqOptions& opts, uq::VisionCache& cache, dist::Communicator& comm,
                                    const std::map<std::string, at::Tensor>* replace) {
  static const std::string device = model::resolve_device(cfg.device, comm.local_rank());  // once per process
  const auto model = model::LlavaModel::load(ck, {cfg.dtype, cfg.threads, device, replace});
  const auto tok = model::Tokenizer::load(ck.dir());
  return uq::evaluate_model(name, *model, *tok, image_style(ck), tower, datasets, opts, cache, comm);
}

uq::UqOptions clean_options(const uq::UqOptions& opts) {
  uq::UqOptions clean = opts;
  clean.plan.perturbations = 1;
  clean.plan.text = perturb::TextMode::None;
  clean.plan.attention_dropout = 0.0;
  clean.plan.image = false;
  return clean;
}

void require_labelled(const std::vector<data::Dataset>& datasets) {
  for (const auto& ds : datasets) {
    size_t labelled = 0;
    for (size_t i = 0; i < ds.size(); ++i) labelled += ds.row(i).answer >= 0;
    if (!labelled) throw_bad_input(ds.spec().path.string(), "no row has an 'answer': accuracy needs labelled data");
  }
}

Accuracy accuracy(const std::vector<data::Dataset>& datasets, const uq::ModelResult& r) {
  Accuracy a;
  for (size_t d = 0; d < datasets.size(); ++d) {
    const auto& ds = datasets[d];
    const int64_t K = r.datasets[d].options;
    std::vector<int64_t> pred;
    int64_t correct = 0, labelled = 0;
    for (size_t i = 0; i < ds.size(); ++i) {
      const int64_t n = static_cast<int64_t>(ds.question(i).options.size());
      const double* p = &r.datasets[d].p_mean[i * static_cast<size_t>(K)];
      const int64_t best = std::max_element(p, p + n) - p;
      pred.push_back(best);
      if (ds.row(i).answer >= 0) {
        ++labelled;
        correct += best == ds.row(i).answer;
      }
    }
    a.percent.push_back(100.0 * static_cast<double>(correct) / static_cast<double>(labelled));
    a.correct.push_back(correct);
    a.labelled.push_back(labelled);
    a.predicted.push_back(std::move(pred));
    a.macro += a.percent.back() / static_cast<double>(datasets.size());
  }
  return a;
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
      h5.attr(sg, "merge_seconds", t < run->step_merge_seconds.size() ? run->step_merge_seconds[t] : 0.0);
      h5.attr(sg, "vision_passes", static_cast<int64_t>(run->steps[t].vision_passes));
      for (const auto& d : run->steps[t].datasets) {
        std::vector<double> u;
        for (const auto& x : d.uq.samples) u.push_back(x.uq);
        h5.dataset(sg + "/" + d.name + "_uq", u, {static_cast<uint64_t>(u.size())});
      }
    }
  }
  if (run && !run->baselines.empty()) {
    h5.group("/baselines");
    for (const auto& b : run->baselines) {
      const std::string g = "/baselines/" + b.name;
      h5.group(g);
      for (const auto& [k, v] : b.attrs) h5.attr(g, k, v);
      const uint64_t n = b.sets.size(), k = n ? b.sets[0].size() : 0;
      bool rect = true;
      for (const auto& s : b.sets) rect = rect && s.size() == k;
      if (rect) {
        std::vector<int64_t> flat;
        for (const auto& s : b.sets) flat.insert(flat.end(), s.begin(), s.end());
        h5.dataset(g + "/members", flat, {n, k});
      }
      h5.dataset(g + "/uq_macro", b.uq, {n});
      if (!b.acc.empty()) h5.dataset(g + "/accuracy_macro", b.acc, {n});
      if (!b.acc_datasets.empty()) {
        std::vector<double> flat;
        for (const auto& a : b.acc_datasets) flat.insert(flat.end(), a.begin(), a.end());
        h5.dataset(g + "/accuracy", flat, {n, static_cast<uint64_t>(b.acc_datasets[0].size())});
      }
      if (!b.order.empty()) h5.dataset(g + "/order", std::vector<int64_t>(b.order.begin(), b.order.end()));
      if (!b.curve.empty()) h5.dataset(g + "/curve", b.curve, {static_cast<uint64_t>(b.curve.size())});
    }
  }
  if (run && !run->candidate_acc.empty()) {
    const std::string g = "/accuracy";
    h5.group(g);
    std::string names;
    for (const auto& n : run->eval_names) names += (names.empty() ? "" : ",") + n;
    h5.attr(g, "datasets", names);
    const uint64_t M = run->candidate_acc.size(), D = run->eval_names.size();
    std::vector<double> flat, macro;
    for (const auto& a : run->candidate_acc) {
      flat.insert(flat.end(), a.percent.begin(), a.percent.end());
      macro.push_back(a.macro);
    }
    h5.dataset(g + "/candidates", flat, {M, D});
    h5.dataset(g + "/candidates_macro", macro, {M});
    if (!run->step_acc.empty()) {
      std::vector<double> st, st_macro;
      for (const auto& a : run->step_acc) {
        st.insert(st.end(), a.percent.begin(), a.percent.end());
        st_macro.push_back(a.macro);
      }
      h5.dataset(g + "/steps", st, {static_cast<uint64_t>(run->step_acc.size()), D});
      h5.dataset(g + "/steps_macro", st_macro, {static_cast<uint64_t>(run->step_acc.size())});
    }
    if (run->chosen_acc) {
      h5.dataset(g + "/chosen", run->chosen_acc->percent, {D});
      h5.attr(g, "chosen_macro", run->chosen_acc->macro);
    }
  }
  h5.group("/timing");
  h5.attr("/timing", "total_seconds", seconds);
  h5.commit();
}

}  // namespace uqmerge::app
