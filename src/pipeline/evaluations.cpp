// Algorithm 1's memoised, resumable evaluations (see src/pipeline/evaluations.hpp).
#include "evaluations.hpp"

#include <fmt/format.h>

#include <chrono>
#include <csignal>
#include <cstdlib>

#include "evaluate.hpp"
#include "uqmerge/util/error.hpp"
#include "uqmerge/util/log.hpp"
#include "uqmerge/util/signals.hpp"
#include "uqmerge/util/version.hpp"


namespace uqmerge::pipeline {

namespace fs = std::filesystem;

std::string set_key(const std::vector<size_t>& members) {
  std::string k;
  for (size_t m : members) {
    if (!k.empty()) k += ',';
    k += std::to_string(m);
  }
  return k;
}

Evaluations::Evaluations(Session& s, const RunOptions& opts)
    : s_(s), state_path_(s.cfg.output_dir / "state.uqs"),
      cache_(s.cfg.cache_memory_mb << 20, s.cfg.cache_dir / ("rank" + std::to_string(s.comm.rank()))),
      eval_cache_(s.cfg.cache_memory_mb << 20, s.cfg.cache_dir / ("eval-rank" + std::to_string(s.comm.rank()))) {
  const RunConfig& cfg = s.cfg;
  dist::Communicator& comm = s.comm;
  if (comm.rank() == 0) fs::create_directories(cfg.output_dir);
  state_.config_hash = config_hash(cfg.yaml, UQMERGE_VERSION);
  state_.uqmerge_version = UQMERGE_VERSION;
  if (opts.restart) {
    comm.barrier();
    if (comm.rank() == 0) fs::remove(state_path_);
  } else if (auto st = load_state(state_path_)) {
    if (st->config_hash != state_.config_hash)
      throw_bad_input(state_path_.string(), "was written by another config or uqmerge version (" + st->uqmerge_version +
                                                "): rerun with --restart to start over, or restore the config it was made with");
    state_.done = std::move(st->done);
    state_.merge_seconds = std::move(st->merge_seconds);
    log::info("resuming from {}: {} evaluation(s) already done", state_path_.string(), state_.done.size());
  }
  comm.barrier();  // every rank has read the state before rank 0 rewrites it
  std::vector<const Checkpoint*> cands;
  std::vector<merge::ModelEntry> entries = cfg.models;
  for (size_t m = 0; m < s.checkpoints.size(); ++m) {
    cands.push_back(&s.checkpoints[m]);
    entries[m].parameters.try_emplace("weight", merge::ParamSetting::number(1.0));  // plain averaging unless told otherwise
  }
  if (cfg.merge.base_model) {
    Checkpoint::Options copts;
    copts.vision_tower_dir = cfg.vision_tower;
    base_ = Checkpoint::open(*cfg.merge.base_model, copts);
    base_->require_valid();
  }
  merger_.emplace(cands, entries, base_ ? &*base_ : nullptr, cfg.merge, /*incremental=*/true, comm);
  if (!cfg.eval_datasets.empty()) {
    for (const auto& spec : cfg.eval_datasets) eval_datasets_.push_back(data::Dataset::load(spec, cfg.seed));
    require_labelled(eval_datasets_);
  }
}

double Evaluations::merge_seconds(const std::vector<size_t>& m) const {
  auto it = state_.merge_seconds.find(set_key(m));
  return it == state_.merge_seconds.end() ? 0.0 : it->second;
}

const uq::ModelResult& Evaluations::uq_of(const std::vector<size_t>& members) {
  return evaluate("uq/" + set_key(members), members, s_.cfg.uq, s_.datasets, cache_);
}

Accuracy Evaluations::accuracy_of(const std::vector<size_t>& members) {
  return accuracy(eval_datasets_,
                  evaluate("acc/" + set_key(members), members, uq::clean_options(s_.cfg.uq), eval_datasets_, eval_cache_));
}

void Evaluations::save_merge(const std::vector<size_t>& members, const fs::path& dir, const std::string& card) {
  if (set_key(members) != kept_key_) {
    merger_->compute(members);
    kept_key_ = set_key(members);
  }
  merger_->write(dir, card, /*overwrite=*/true);
}

std::string Evaluations::label(const std::vector<size_t>& members) const {
  if (members.size() == 1) return s_.cfg.models[members[0]].name;
  return fmt::format("merge({})", set_key(members));
}

const uq::ModelResult& Evaluations::evaluate(const std::string& key, const std::vector<size_t>& members,
                                             const uq::UqOptions& opts, const std::vector<data::Dataset>& datasets,
                                             uq::VisionCache& cache) {
  return memo(key, [&] {
    if (members.size() == 1) return evaluate_candidate(s_, members[0], datasets, opts, cache);
    load_merge(members);
    return evaluate_checkpoint(s_, label(members), merger_->reference(), ref_tokenizer(), ref_tower(), datasets, opts, cache,
                               &weights_);
  });
}

ScreenReport Evaluations::screen() {
  const RunConfig& cfg = s_.cfg;
  // Unperturbed features of the uq datasets: a cache of their own (the uq cache holds AugMix'd
  // ones under the same keys), dropped when the screen is done.
  uq::VisionCache cache(cfg.cache_memory_mb << 20, cfg.cache_dir / ("screen-rank" + std::to_string(s_.comm.rank())));
  const uq::UqOptions clean = uq::clean_options(cfg.uq);
  uq::UqOptions blank = clean;
  blank.blank_images = true;
  std::vector<uq::ModelResult> real, blanked;
  std::vector<std::string> names;
  for (size_t m = 0; m < s_.checkpoints.size(); ++m) {
    names.push_back(cfg.models[m].name);
    real.push_back(memo("screen/clean/" + std::to_string(m), [&] { return evaluate_candidate(s_, m, s_.datasets, clean, cache); }));
    blanked.push_back(memo("screen/blank/" + std::to_string(m), [&] { return evaluate_candidate(s_, m, s_.datasets, blank, cache); }));
  }
  const uq::ModelResult* base = nullptr;
  if (base_)
    base = &memo("screen/base", [&] {
      return evaluate_checkpoint(s_, "base_model", *base_, ref_tokenizer(), ref_tower(), s_.datasets, clean, cache);
    });
  return screen_candidates(names, s_.datasets, real, blanked, base, cfg.screen);
}

const uq::ModelResult& Evaluations::memo(const std::string& key, const std::function<uq::ModelResult()>& run) {
  if (auto it = state_.done.find(key); it != state_.done.end()) return it->second;
  auto& stored = state_.done[key] = run();
  if (s_.comm.rank() == 0) save_state(state_, state_path_);
  // Test hook: behave as if SIGUSR1 arrived after this many new evaluations (tests/e2e/test_resume.sh).
  if (const char* n = std::getenv("UQMERGE_TEST_STOP_AFTER"); n && ++new_evaluations_ == std::strtoul(n, nullptr, 10))
    signals::request_stop_for_testing(SIGUSR1);
  // Safe point: all ranks agree to stop when any received the signal.
  double stop = signals::stop_requested() ? 1.0 : 0.0;
  s_.comm.allreduce_sum(&stop, 1, DType::F64);
  if (stop > 0) {
    log::warn("stop requested (signal {}): {} evaluation(s) saved in {}; rerun the same command to continue",
              signals::stop_signal(), state_.done.size(), state_path_.string());
    throw Stopped{};
  }
  return stored;
}

void Evaluations::load_merge(const std::vector<size_t>& members) {
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

// The merge's reference is the base model when there is one, else candidate 0.
const model::Tokenizer& Evaluations::ref_tokenizer() {
  if (!base_) return *s_.tokenizers[0];
  if (!base_tokenizer_) base_tokenizer_ = model::Tokenizer::load(base_->dir());
  return *base_tokenizer_;
}

uint64_t Evaluations::ref_tower() {
  if (!ref_tower_) ref_tower_ = base_ ? uq::vision_tower_hash(*base_) : s_.towers[0];
  return *ref_tower_;
}

}  // namespace uqmerge::pipeline
