// The demo zoo's training stages (see src/zoo/trainer.hpp): vision pretraining, language,
// base, candidates.
#include "trainer_impl.hpp"

namespace uqmerge::zoo::detail {

namespace fs = std::filesystem;

namespace {
// The merging regime's knobs (docs/decisions.md, "Demo zoo: the merging regime"): the base's
// instruction pass is long enough to give partial skill on every family, the fine-tunes are
// short and 5x gentler, and the harmful ones 3x harder again (over-confident).
constexpr int64_t kLanguageSteps = 700, kBaseSteps = 600, kInstructSteps = 700, kCandidateSteps = 150;
constexpr double kInstructLr = 1e-3, kCandidateLr = 2e-4, kHarmfulLr = 6e-4;
}  // namespace

StageReport Trainer::pretrain_vision() {
  Impl& m = *impl_;
  const auto t0 = Clock::now();
  StageReport rep;
  rep.stage = "vision";
  auto ps = m.select({"vision."});
  torch::manual_seed(m.seed);
  auto head_c = torch::nn::Linear(m.arch.v_hidden, kColours + 1), head_s = torch::nn::Linear(m.arch.v_hidden, kShapes + 1);
  for (auto& p : head_c->parameters()) ps.push_back(p);
  for (auto& p : head_s->parameters()) ps.push_back(p);
  torch::optim::AdamW opt(ps, torch::optim::AdamWOptions(1e-3).weight_decay(0.01));
  const int64_t global = 32, local = std::max<int64_t>(1, global / m.comm.size()), n = m.steps(2000);
  const Impl::Schedule sched{2e-3, n, n / 10 + 1};
  double acc_c = 0, acc_s = 0;
  const auto image_only = [&m](RngStream& rng) {
    Scene s = sample_scene(rng, m.world, rng.below(2) == 0);
    Example e;
    m.add_image(e, s);
    return e;
  };
  for (int64_t k = 0; k < n; ++k) {
    const Batch b = m.draw(hash_name("vision"), k, local, m.comm.rank(), image_only);
    const at::Tensor f = m.model->vision_features_train(b.pixels);  // [B, P, Hv]
    const at::Tensor lc = head_c(f), ls = head_s(f);
    const at::Tensor loss = Impl::patch_loss(lc, ls, b);
    m.step(opt, loss, ps, true, sched.at(k));
    const double lv = loss.item<double>();
    if (k == 0) rep.first_loss = lv;
    rep.last_loss = lv;
    if (k >= n - 10) {  // accuracy on object patches over the last steps
      at::NoGradGuard ng;
      const at::Tensor obj = b.colour.reshape({-1}) > 0;
      acc_c += (lc.argmax(-1).reshape({-1}) == b.colour.reshape({-1})).logical_and(obj).sum().item<double>() / obj.sum().item<double>();
      acc_s += (ls.argmax(-1).reshape({-1}) == b.shape.reshape({-1})).logical_and(obj).sum().item<double>() / obj.sum().item<double>();
    }
  }
  for (auto& [name, t] : m.params) t.set_requires_grad(false);
  rep.steps = n;
  rep.samples = n * local * m.comm.size();
  rep.metrics = {{"patch_colour_accuracy", 100 * acc_c / std::min<int64_t>(10, n)},
                 {"patch_shape_accuracy", 100 * acc_s / std::min<int64_t>(10, n)}};
  rep.seconds = since(t0);
  return rep;
}

StageReport Trainer::train_language() {
  Impl& m = *impl_;
  Impl::LmStage st;
  st.name = "language";
  st.params = m.select({"lm"});
  st.peak_lr = 2e-3;
  st.steps = m.steps(kLanguageSteps);
  st.batch = 32;
  st.stream = hash_name("language");
  st.pointer = true;
  st.make = [&m](RngStream& rng) {
    if (rng.below(10) < 3) {
      Scene s = sample_scene(rng, m.world, false);
      return m.text_example("Describe the picture.", describe(s), false);
    }
    return m.mc_example(Impl::reading_item(rng), LabelRule::Correct, false, true);
  };
  return m.run(st);
}

StageReport Trainer::train_base() {
  Impl& m = *impl_;
  Impl::LmStage st;
  st.name = "base";
  st.params = m.select({"projector.", "lm"});
  st.peak_lr = 1.5e-3;
  st.steps = m.steps(kBaseSteps);
  st.batch = 16;
  st.stream = hash_name("base");
  st.patch_aux = true;
  st.make = [&m](RngStream& rng) {
    const auto& qa = Impl::held_in_families();
    Scene s = sample_scene(rng, m.world, rng.below(2) == 0);
    const uint64_t kind = rng.below(10);
    Example e;
    if (kind < 4) e = m.text_example("Describe the picture.", describe(s), true);
    else if (kind < 8) {
      const Item it = ask(s, qa[rng.below(qa.size())], rng, m.world);
      e = m.text_example(it.question, it.options[static_cast<size_t>(it.answer)], true);
    } else e = m.mc_example(Impl::reading_item(rng), LabelRule::Correct, true, true);
    m.add_image(e, s);
    return e;
  };
  return m.run(st);
}

// LLaVA-1.5's candidates are fine-tunes of an instruction-tuned model that already follows
// the answer format and has some skill at every task. So is the demo's base: a short,
// multi-task pass over every held-in family (correct labels) that stops well before the
// skills saturate; the candidates then move a little from it (small task vectors, one basin).
StageReport Trainer::train_instruct() {
  Impl& m = *impl_;
  Impl::LmStage st;
  st.name = "instruct";
  st.params = m.select({"projector.", "lm"});
  st.peak_lr = kInstructLr;
  st.steps = m.steps(kInstructSteps);
  st.batch = 16;
  st.stream = hash_name("instruct");
  st.pointer = true;
  st.patch_aux = true;
  st.make = [&m](RngStream& rng) {
    const auto& qa = Impl::held_in_families();
    Scene s = sample_scene(rng, m.world, rng.below(2) == 0);
    Example e;
    if (rng.below(10) < 2) {
      e = m.text_example("Describe the picture.", describe(s), true);
    } else {
      const Item it = ask(s, qa[rng.below(qa.size())], rng, m.world);
      e = m.mc_example(it, LabelRule::Correct, true, true);
    }
    m.add_image(e, s);
    return e;
  };
  StageReport rep = m.run(st);
  for (auto& [name, t] : m.params) m.base[name] = t.detach().clone();
  return rep;
}

void Trainer::reset_to_base() {
  at::NoGradGuard ng;
  for (auto& [name, t] : impl_->params) t.copy_(impl_->base.at(name));
}

StageReport Trainer::train_candidate(const CandidateSpec& spec, int index) {
  Impl& m = *impl_;
  reset_to_base();
  Impl::LmStage st;
  st.name = spec.name;
  st.params = m.select({"projector.", "lm"});
  st.peak_lr = spec.labels == LabelRule::Correct ? kCandidateLr : kHarmfulLr;
  st.steps = m.steps(kCandidateSteps);
  st.batch = 16;
  st.data_parallel = false;
  st.pointer = true;
  st.patch_aux = true;
  st.stream = hash_name("candidate") + static_cast<uint64_t>(index);
  st.make = [&m, &spec](RngStream& rng) {
    const bool noisy = spec.domain == Domain::Both ? rng.below(2) == 0 : spec.domain == Domain::Noisy;
    Scene s = sample_scene(rng, m.world, noisy);
    const Item it = ask(s, spec.families[rng.below(spec.families.size())], rng, m.world);
    Example e = m.mc_example(it, spec.labels, true, true);
    m.add_image(e, s);
    return e;
  };
  return m.run(st);
}

}  // namespace uqmerge::zoo::detail
