// The results.h5 and eval.h5 schemas (see include/uqmerge/pipeline/results.hpp, docs/results-h5.md).
#include "uqmerge/pipeline/results.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>

#include "uqmerge/io/dtype.hpp"
#include "uqmerge/io/results_h5.hpp"
#include "uqmerge/perturb/augmix.hpp"
#include "uqmerge/perturb/plan.hpp"
#include "uqmerge/util/version.hpp"


namespace uqmerge::pipeline {

namespace {
std::string now_iso() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

}  // namespace

namespace {
// Each AugMix draw, so that it can be replayed with torchvision (tests/reference/check_final_uq.py):
// augmix_mix [S, J, 2] (m0, m1), augmix_weights [S, J, width], and per chain and step
// augmix_op / augmix_level / augmix_sign [S, J, width, max depth] (-1 / 0 / 0 past the chain's end).
void write_augmix_draws(H5Writer& h5, const std::string& g, const perturb::AugMixConfig& ac, const std::vector<uint64_t>& seeds,
                        const std::vector<uint64_t>& dims) {
  const size_t kMaxDepth = static_cast<size_t>(std::max(3, ac.chain_depth));
  const auto width = static_cast<size_t>(ac.mixture_width);
  std::vector<double> mix, weights;
  std::vector<int64_t> op, level, sign;
  for (uint64_t seed : seeds) {
    const perturb::AugMixDraw d = perturb::augmix_draw(ac, seed);
    mix.insert(mix.end(), {d.m0, d.m1});
    weights.insert(weights.end(), d.weights.begin(), d.weights.end());
    for (const auto& chain : d.chains) {
      for (size_t k = 0; k < kMaxDepth; ++k) {
        const bool on = k < chain.size();
        op.push_back(on ? static_cast<int64_t>(chain[k].op) : -1);
        level.push_back(on ? chain[k].level : 0);
        sign.push_back(on ? chain[k].sign : 0);
      }
    }
  }
  h5.dataset(g + "/augmix_mix", mix, {dims[0], dims[1], 2});
  h5.dataset(g + "/augmix_weights", weights, {dims[0], dims[1], width});
  const std::vector<uint64_t> steps{dims[0], dims[1], width, kMaxDepth};
  h5.dataset(g + "/augmix_op", op, steps);
  h5.dataset(g + "/augmix_level", level, steps);
  h5.dataset(g + "/augmix_sign", sign, steps);
}

// /plan: every (sample, j) draw of every dataset, so an evaluation can be recomputed elsewhere
// (tests/reference/check_final_uq.py does it with transformers).
void write_plan(H5Writer& h5, const Session& session) {
  const perturb::PlanConfig& pc = session.cfg.uq.plan;
  h5.group("/plan");
  h5.attr("/plan", "seed", static_cast<int64_t>(pc.seed));
  h5.attr("/plan", "perturbations", int64_t{pc.perturbations});
  h5.attr("/plan", "text_perturbation", perturb::text_mode_name(pc.text));
  h5.attr("/plan", "attention_dropout", pc.attention_dropout);
  h5.attr("/plan", "image_perturbation", int64_t{pc.image});
  if (pc.image) {
    const perturb::AugMixConfig& ac = session.cfg.uq.augmix;
    h5.attr("/plan", "augmix_severity", int64_t{ac.severity});
    h5.attr("/plan", "augmix_mixture_width", int64_t{ac.mixture_width});
    h5.attr("/plan", "augmix_chain_depth", int64_t{ac.chain_depth});
    h5.attr("/plan", "augmix_alpha", ac.alpha);
    h5.attr("/plan", "augmix_all_ops", int64_t{ac.all_ops});
    const auto& names = perturb::aug_op_names();
    for (size_t k = 0; k < names.size(); ++k) h5.attr("/plan", fmt::format("augmix_op_{}", k), names[k]);
  }
  const auto& prompts = perturb::release_prompts();
  h5.attr("/plan", "prompt_count", static_cast<int64_t>(prompts.size()));
  for (size_t k = 0; k < prompts.size(); ++k) h5.attr("/plan", fmt::format("prompt_{}", k), prompts[k]);
  h5.attr("/plan", "repeats", int64_t{pc.repeats});
  const auto J = static_cast<uint64_t>(pc.perturbations) * static_cast<uint64_t>(pc.repeats);  // repeat r: columns r*J ..
  for (const auto& ds : session.datasets) {
    const std::string g = "/plan/" + ds.name();
    h5.group(g);
    const uint64_t did = perturb::dataset_id(ds.name());
    h5.attr(g, "dataset_id", fmt::format("{:016x}", did));
    std::vector<int64_t> text;
    std::vector<uint64_t> dropout, image;
    for (uint64_t i = 0; i < ds.size(); ++i)
      for (uint64_t j = 0; j < J; ++j) {
        const perturb::Perturbation p = perturb::plan(pc, did, i, j);
        text.push_back(p.text);
        dropout.push_back(p.dropout_seed);
        image.push_back(p.image_seed);
      }
    const std::vector<uint64_t> dims{ds.size(), J};
    h5.dataset(g + "/text_prompt", text, dims);
    h5.dataset(g + "/dropout_seed", dropout, dims);
    h5.dataset(g + "/image_seed", image, dims);
    if (pc.image) write_augmix_draws(h5, g, session.cfg.uq.augmix, image, dims);
  }
}
}  // namespace

namespace {

// /screen: selection.screen's statistics per candidate and dataset, the distributions they come
// from and the flags (docs/results-h5.md).
void write_screen(H5Writer& h5, const ScreenReport& rep) {
  const std::string g = "/screen";
  h5.group(g);
  h5.attr(g, "max_mode_share", rep.options.max_mode_share);
  h5.attr(g, "min_sensitivity_ratio", rep.options.min_sensitivity_ratio);
  h5.attr(g, "min_agreement_ratio", rep.options.min_agreement_ratio);
  h5.attr(g, "median_sensitivity", rep.median_sensitivity);
  h5.attr(g, "median_agreement", rep.median_agreement);
  std::string notes;
  for (const auto& n : rep.notes) notes += (notes.empty() ? "" : "\n") + n;
  h5.attr(g, "notes", notes);
  const uint64_t M = rep.candidates.size();
  std::vector<int64_t> flagged;
  std::vector<double> mode, sens, agr, base;
  for (const auto& c : rep.candidates) {
    flagged.push_back(c.flagged);
    mode.push_back(c.mode_share);
    sens.push_back(c.image_sensitivity);
    agr.push_back(c.agreement);
    base.push_back(c.base_agreement);
  }
  h5.dataset(g + "/flagged", flagged);
  h5.dataset(g + "/mode_share", mode, {M});
  h5.dataset(g + "/image_sensitivity", sens, {M});
  h5.dataset(g + "/agreement", agr, {M});
  h5.dataset(g + "/base_agreement", base, {M});
  for (size_t m = 0; m < M; ++m) {
    const CandidateScreen& c = rep.candidates[m];
    const std::string cg = fmt::format("{}/model_{:03}", g, m);
    h5.group(cg);
    h5.attr(cg, "name", c.name);
    h5.attr(cg, "flagged", int64_t{c.flagged});
    std::string why;
    for (const auto& r : c.reasons) why += (why.empty() ? "" : "; ") + r;
    h5.attr(cg, "reasons", why);
    for (const auto& d : c.datasets) {
      const std::string dg = cg + "/" + d.name;
      h5.group(dg);
      h5.attr(dg, "mode_share", d.mode_share);
      h5.attr(dg, "mode_position", d.mode_position);
      h5.attr(dg, "image_sensitivity", d.image_sensitivity);
      h5.attr(dg, "agreement", d.agreement);
      h5.attr(dg, "base_agreement", d.base_agreement);
      const uint64_t S = d.predicted.size(), K = static_cast<uint64_t>(d.options);
      h5.dataset(dg + "/predicted", d.predicted);
      h5.dataset(dg + "/predicted_blank", d.predicted_blank);
      h5.dataset(dg + "/p_clean", d.p, {S, K});
      h5.dataset(dg + "/p_blank", d.p_blank, {S, K});
    }
  }
}

}  // namespace

void write_results(const Session& session, const std::string& command, const std::vector<uq::ModelResult>& results,
                   double seconds, const RunRecord* run) {
  const RunConfig& cfg = session.cfg;
  const int ranks = session.comm.size();
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
  h5.attr("/config", "repeats", int64_t{cfg.uq.plan.repeats});
  h5.attr("/config", "attention_dropout", cfg.uq.plan.attention_dropout);
  h5.attr("/config", "text_perturbation", perturb::text_mode_name(cfg.uq.plan.text));
  h5.attr("/config", "image_perturbation", int64_t{cfg.uq.plan.image});
  h5.attr("/config", "save_distributions", int64_t{cfg.uq.save_distributions});
  write_plan(h5, session);
  h5.group("/uq");
  for (size_t m = 0; m < results.size(); ++m) {
    const auto& r = results[m];
    const std::string g = fmt::format("/uq/model_{:03}", m);
    h5.group(g);
    h5.attr(g, "name", r.model);
    h5.attr(g, "path", cfg.models[m].path.string());
    h5.attr(g, "vision_tower_hash", fmt::format("{:016x}", session.towers[m]));
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
      if (!d.repeat_uq.empty())  // uq.repeats > 1: each repeat's values; uq above is their mean
        h5.dataset(dg + "/uq_repeats", d.repeat_uq, {static_cast<uint64_t>(d.repeat_uq.size() / n), n});
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
    h5.attr(g, "schedule", cfg.merge.schedule);
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
  if (run && run->screen) write_screen(h5, *run->screen);
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
      if (!b.curve_acc.empty()) {
        std::vector<double> flat;
        for (const auto& a : b.curve_acc) flat.insert(flat.end(), a.begin(), a.end());
        h5.dataset(g + "/curve_accuracy", flat, {static_cast<uint64_t>(b.curve_acc.size()), static_cast<uint64_t>(b.curve_acc[0].size())});
      }
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

void write_eval(const Session& s, const std::vector<Accuracy>& candidate_acc) {
  H5Writer h5(s.cfg.output_dir / "eval.h5");
  h5.attr("/", "schema", std::string("uqmerge-eval"));
  h5.attr("/", "schema_version", int64_t{1});
  h5.attr("/", "ranks", int64_t{s.comm.size()});
  h5.group("/eval");
  for (size_t m = 0; m < candidate_acc.size(); ++m) {
    const Accuracy& acc = candidate_acc[m];
    const std::string g = fmt::format("/eval/model_{:03}", m);
    h5.group(g);
    h5.attr(g, "name", s.cfg.models[m].name);
    for (size_t d = 0; d < s.datasets.size(); ++d) {
      const auto& ds = s.datasets[d];
      std::vector<int64_t> answer;
      for (size_t i = 0; i < ds.size(); ++i) answer.push_back(ds.row(i).answer);
      const std::string dg = g + "/" + ds.name();
      h5.group(dg);
      h5.dataset(dg + "/predicted", acc.predicted[d]);
      h5.dataset(dg + "/answer", answer);
      h5.attr(dg, "accuracy", acc.percent[d]);
      h5.attr(dg, "correct", acc.correct[d]);
      h5.attr(dg, "labelled", acc.labelled[d]);
    }
    h5.attr(g, "accuracy_macro", acc.macro);
  }
  h5.commit();
}

}  // namespace uqmerge::pipeline
