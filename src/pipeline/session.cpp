// Opening a run's inputs once, and evaluating a model (see include/uqmerge/pipeline/session.hpp).
#include "uqmerge/pipeline/session.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "evaluate.hpp"
#include "uqmerge/model/llava.hpp"
#include "uqmerge/uq/runner.hpp"
#include "uqmerge/util/error.hpp"
#include "uqmerge/util/log.hpp"

namespace uqmerge::pipeline {

std::unique_ptr<dist::Communicator> make_communicator(const RunConfig& cfg) {
  // MPI first: it gives the local rank the device (and so the backend) depends on, and it
  // bootstraps NCCL.
  auto mpi = dist::make_mpi_communicator();
  const std::string device = model::resolve_device(cfg.device, mpi->local_rank(), mpi->local_size(), /*quiet=*/true);
  const dist::Backend b = dist::resolve_backend(cfg.backend, device != "cpu", cfg.source.string());
  if (cfg.backend == "auto" && device != "cpu" && b == dist::Backend::Mpi && mpi->rank() == 0)
    log::warn("backend auto: the engine runs on {} but this uqmerge has no NCCL: the reductions go through host memory by MPI",
              device);
  if (b == dist::Backend::Mpi) return mpi;
  return dist::make_nccl_communicator();
}

Session open_session(const RunConfig& cfg, dist::Communicator& comm) {
  Session s{cfg, comm, model::resolve_device(cfg.device, comm.local_rank(), comm.local_size()), {}, {}, {}, {}, nullptr};
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
  if (s.device.rfind("cuda:", 0) == 0) {
    // A candidate the device cannot hold fails now, naming the sizes, not as an OOM mid-run.
    size_t free_b = 0, total_b = 0;
    if (dist::cuda_memory(std::stoi(s.device.substr(5)), free_b, total_b))
      for (size_t m = 0; m < s.checkpoints.size(); ++m)
        if (const std::string e = device_fit_error(cfg.models[m].name, s.checkpoints[m].parameter_count(), cfg.dtype,
                                                   s.device, free_b, total_b);
            !e.empty())
          throw_bad_input(cfg.models[m].path.string(), e);
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
  // From here a stopped or stuck rank ends the job naming it (output_dir is shared by the ranks).
  comm.watch(cfg.output_dir / ".uqmerge-heartbeat", cfg.watchdog);
  if (comm.rank() == 0)
    log::info("backend {} on {}; watchdog: heartbeat {} s, stale {} s, collective timeout {} s", dist::backend_name(comm.backend()),
              s.device, cfg.watchdog.heartbeat_s, cfg.watchdog.stale_s, cfg.watchdog.timeout_s);
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

std::string device_fit_error(const std::string& candidate, uint64_t params, DType dtype, const std::string& device,
                             uint64_t free_bytes, uint64_t total_bytes) {
  const uint64_t need = params * dtype_size(dtype);
  if (need <= free_bytes) return {};
  const auto gib = [](uint64_t b) { return fmt::format("{:.1f} GiB", static_cast<double>(b) / double(1ull << 30)); };
  return fmt::format("candidate '{}' needs {} on {} ({:.2f} G parameters in {}) but {} of its {} are free: use {}one rank "
                     "per GPU, or a GPU with more memory",
                     candidate, gib(need), device, static_cast<double>(params) / 1e9, dtype_name(dtype), gib(free_bytes),
                     gib(total_bytes), dtype == DType::F32 ? "dtype: bfloat16, " : "");
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
