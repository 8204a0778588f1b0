// Opening a run's inputs once, and evaluating a model (see include/uqmerge/pipeline/session.hpp).
#include "uqmerge/pipeline/session.hpp"

#include <algorithm>

#include "evaluate.hpp"
#include "uqmerge/model/llava.hpp"
#include "uqmerge/uq/runner.hpp"
#include "uqmerge/util/error.hpp"
#include "uqmerge/util/log.hpp"

namespace uqmerge::pipeline {

std::unique_ptr<dist::Communicator> make_communicator(const RunConfig& cfg) {
  if (cfg.backend == "nccl") {
    const std::string where = cfg.source.string();
    if (!dist::built_with_nccl())
      throw_bad_input(where, "backend: nccl, but this uqmerge was built without NCCL (configure with -DUQMERGE_TORCH_CUDA=ON "
                             "-DUQMERGE_NCCL=ON on a machine with CUDA and NCCL), or use backend: mpi");
    if (dist::cuda_device_count() == 0)
      throw_bad_input(where, "backend: nccl, but no GPU is visible to this process (check CUDA_VISIBLE_DEVICES and the "
                             "job's GPU allocation), or use backend: mpi");
    // The uncertainty runner and the merger reduce host buffers; the device-buffer path is the
    // GPU-distribution work (docs/status.md). Refuse rather than silently run MPI.
    throw_bad_input(where, "backend: nccl is not wired into uq/eval/run yet (their reductions use host buffers); use backend: mpi");
  }
  return dist::make_mpi_communicator();
}

Session open_session(const RunConfig& cfg, dist::Communicator& comm) {
  Session s{cfg, comm, model::resolve_device(cfg.device, comm.local_rank()), {}, {}, {}, {}, nullptr};
  Checkpoint::Options copts;
  copts.vision_tower_dir = cfg.vision_tower;
  for (const auto& m : cfg.models) {
    try {
      s.checkpoints.push_back(Checkpoint::open(m.path, copts));
      s.checkpoints.back().require_valid();
      if (s.checkpoints.back().config().arch == Architecture::Llama)
        throw_bad_input(m.path.string(), "a text-only LlamaForCausalLM has no vision tower: uncertainty needs LLaVA checkpoints");
      s.tokenizers.push_back(model::Tokenizer::load(m.path));  // fails now, not after hours, when tokenizer.model is missing
    } catch (const Error& e) {
      rethrow_with_context(e, "candidate '" + m.name + "'");
    }
  }
  for (const auto& spec : cfg.datasets) s.datasets.push_back(data::Dataset::load(spec, cfg.seed));
  for (const auto& ck : s.checkpoints) s.towers.push_back(uq::vision_tower_hash(ck));
  for (size_t m = 1; m < s.towers.size(); ++m)
    if (s.towers[m] != s.towers[0])
      log::warn("candidate '{}' has a different vision tower than '{}': its features are computed separately",
                cfg.models[m].name, cfg.models[0].name);
  // Inputs are valid: take output_dir for this job (before anything is written there).
  if (comm.rank() == 0) s.lock = std::make_shared<OutputLock>(cfg.output_dir);
  comm.barrier();
  return s;
}

uq::ModelResult evaluate_checkpoint(const Session& s, const std::string& name, const Checkpoint& ck,
                                    const model::Tokenizer& tok, uint64_t tower, const std::vector<data::Dataset>& datasets,
                                    const uq::UqOptions& opts, uq::VisionCache& cache,
                                    const std::map<std::string, at::Tensor>* replace) {
  const auto model = model::LlavaModel::load(ck, {s.cfg.dtype, s.cfg.threads, s.device, replace});
  const auto style = ck.config().arch == Architecture::LlavaOriginal ? model::ImageStyle::SplitChunks : model::ImageStyle::SpecialToken;
  return uq::evaluate_model(name, *model, tok, style, tower, datasets, opts, cache, s.comm);
}

uq::ModelResult evaluate_candidate(const Session& s, size_t m, const std::vector<data::Dataset>& datasets,
                                   const uq::UqOptions& opts, uq::VisionCache& cache) {
  return evaluate_checkpoint(s, s.cfg.models[m].name, s.checkpoints[m], *s.tokenizers[m], s.towers[m], datasets, opts, cache);
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

}  // namespace uqmerge::pipeline
