// LlavaModel: weights from the checkpoint mapping, and the glue between vision tower,
// projector and language model (see include/uqmerge/model/llava.hpp).
#include "uqmerge/model/llava.hpp"

#include <ATen/Context.h>
#include <ATen/detail/CUDAHooksInterface.h>

#include <sched.h>

#include <cstdlib>
#include <thread>

#include "modules.hpp"
#include "uqmerge/model/torch_view.hpp"
#include "uqmerge/util/error.hpp"
#include "uqmerge/util/log.hpp"

namespace uqmerge::model {

namespace detail {

at::ScalarType scalar_type(DType d) {
  if (!is_floating(d))
    throw_bad_input("dtype", std::string(dtype_name(d)) + " is not a compute dtype (float32, bfloat16, float16)");
  return torch_scalar_type(d);
}

WeightStore::WeightStore(const Checkpoint& ck, at::ScalarType dtype, const std::map<std::string, at::Tensor>* replace,
                         const at::Device& device) {
  for (const auto& name : ck.names()) {
    const at::Tensor* r = nullptr;
    if (replace)
      if (auto it = replace->find(name); it != replace->end()) r = &it->second;
    at::Tensor t = r ? *r : to_torch(ck.view(name));
    if (r && t.sizes() != at::IntArrayRef(ck.info(name).shape))
      throw_internal("model", "replacement for '" + name + "' has another shape than the checkpoint's");
    if (t.scalar_type() != dtype || t.device() != device) {
      t = t.to(device, dtype);
      copied_bytes_ += t.nbytes();
    }
    w_.emplace(name, std::move(t));
  }
}

const at::Tensor* WeightStore::find(const std::string& name) const {
  auto it = w_.find(name);
  return it == w_.end() ? nullptr : &it->second;
}

const at::Tensor& WeightStore::get(const std::string& name) const {
  const at::Tensor* t = find(name);
  if (!t) throw_internal("model", "tensor '" + name + "' missing after validation");
  return *t;
}

Linear linear(const WeightStore& ws, const std::string& prefix, bool bias) {
  return {ws.get(prefix + ".weight"), bias ? ws.get(prefix + ".bias") : at::Tensor()};
}

}  // namespace detail

struct LlavaModel::Impl {
  ModelConfig cfg;
  at::ScalarType dtype;
  at::Device device;
  detail::WeightStore weights;
  std::optional<detail::ClipVision> vision;
  std::optional<detail::Projector> projector;
  detail::Llama llm;

  Impl(const Checkpoint& ck, at::ScalarType dt, const std::map<std::string, at::Tensor>* replace, const at::Device& dev)
      : cfg(ck.config()), dtype(dt), device(dev), weights(ck, dt, replace, dev), llm(weights, ck.config().text) {
    if (cfg.arch == Architecture::Llama) return;
    vision.emplace(weights, *cfg.vision, cfg.vision_feature_layer, cfg.vision_feature_select_strategy == "full");
    projector.emplace(weights, cfg);
  }

  // [B, Tmax, H] input embeddings (right-padded) and real lengths.
  std::pair<at::Tensor, std::vector<int64_t>> embed(const std::vector<Sequence>& batch, const at::Tensor& images) const {
    const int64_t V = cfg.text.vocab_size, H = cfg.text.hidden_size;
    std::vector<at::Tensor> rows;
    std::vector<int64_t> lengths;
    for (const Sequence& s : batch) {
      std::vector<at::Tensor> parts;
      std::vector<int64_t> text;
      bool image_done = false;
      auto flush = [&] {
        if (!text.empty()) parts.push_back(llm.embed(at::tensor(text, at::kLong).to(device)));
        text.clear();
      };
      for (int64_t id : s.ids) {
        if (id == kImageSlot) {
          if (image_done) throw_bad_input("prompt", "more than one image slot in one sequence");
          if (!images.defined() || s.image < 0 || s.image >= images.size(0))
            throw_internal("model", "image slot without image embeddings");
          flush();
          parts.push_back(images[s.image].to(device, dtype));
          image_done = true;
        } else {
          if (id < 0 || id >= V)
            throw_bad_input("prompt", "token id " + std::to_string(id) + " outside the vocabulary (" + std::to_string(V) + ")");
          text.push_back(id);
        }
      }
      flush();
      if (parts.empty()) throw_bad_input("prompt", "empty token sequence");
      at::Tensor e = at::cat(parts, 0);
      if (e.size(0) > cfg.text.max_position_embeddings)
        throw_bad_input("prompt", "sequence of " + std::to_string(e.size(0)) + " tokens (image included) exceeds "
                                  "max_position_embeddings " + std::to_string(cfg.text.max_position_embeddings) +
                                  ": shorten the question/options or lower the text perturbation length");
      lengths.push_back(e.size(0));
      rows.push_back(e);
    }
    const int64_t T = *std::max_element(lengths.begin(), lengths.end());
    at::Tensor x = at::zeros({static_cast<int64_t>(batch.size()), T, H}, at::TensorOptions().dtype(dtype).device(device));
    for (size_t b = 0; b < rows.size(); ++b) x[b].slice(0, 0, lengths[b]).copy_(rows[b]);
    return {x, lengths};
  }
};

LlavaModel::LlavaModel(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
LlavaModel::~LlavaModel() = default;

std::unique_ptr<LlavaModel> LlavaModel::load(const Checkpoint& ck, const LoadOptions& opts) {
  ck.require_valid();
  set_torch_threads(opts.threads);
  const at::Device device(opts.device);
  if (!device.is_cpu() && !built_with_cuda())
    throw_bad_input("device", "'" + opts.device + "': this build has no GPU support (rebuild with -DUQMERGE_TORCH_CUDA=ON)");
  return std::unique_ptr<LlavaModel>(
      new LlavaModel(std::make_unique<Impl>(ck, detail::scalar_type(opts.compute), opts.replace, device)));
}

const ModelConfig& LlavaModel::config() const { return impl_->cfg; }
at::ScalarType LlavaModel::dtype() const { return impl_->dtype; }
int64_t LlavaModel::image_tokens() const { return impl_->vision ? impl_->vision->tokens() : 0; }

at::Tensor LlavaModel::vision_features(const at::Tensor& pixels) const {
  if (!impl_->vision) throw_bad_input("model", "a text-only checkpoint has no vision tower");
  at::InferenceMode guard;
  return impl_->vision->forward(pixels.to(impl_->device, impl_->dtype)).to(at::kCPU);  // callers cache features in host memory
}

at::Tensor LlavaModel::project(const at::Tensor& feats) const {
  if (!impl_->projector) throw_bad_input("model", "a text-only checkpoint has no projector");
  at::InferenceMode guard;
  return impl_->projector->forward(feats.to(impl_->device, impl_->dtype));
}

int64_t LlavaModel::expanded_length(const Sequence& s) const {
  int64_t n = 0;
  for (int64_t id : s.ids) n += id == kImageSlot ? image_tokens() : 1;
  return n;
}

at::Tensor LlavaModel::last_logits(const std::vector<Sequence>& batch, const at::Tensor& images,
                                   const std::vector<int64_t>& rows, const AttentionDropout* dropout) const {
  at::InferenceMode guard;
  if (dropout && dropout->p > 0 && dropout->seeds.size() != batch.size())
    throw_internal("model", "attention dropout needs one seed per sequence");
  for (int64_t r : rows)
    if (r < 0 || r >= impl_->cfg.text.vocab_size) throw_bad_input("options", "token id " + std::to_string(r) + " outside the vocabulary");
  auto [x, lengths] = impl_->embed(batch, images);
  const at::Tensor h = impl_->llm.forward(x, lengths, dropout, /*last_only=*/true);  // [B, 1, H]
  return impl_->llm.head(h.squeeze(1), rows).to(at::kCPU);
}

at::Tensor LlavaModel::full_logits(const std::vector<Sequence>& batch, const at::Tensor& images) const {
  at::InferenceMode guard;
  auto [x, lengths] = impl_->embed(batch, images);
  const at::Tensor h = impl_->llm.forward(x, lengths, nullptr);
  return impl_->llm.head(h.reshape({-1, h.size(-1)}), {}).view({h.size(0), h.size(1), -1}).to(at::kCPU);
}

at::Tensor LlavaModel::vision_features_train(const at::Tensor& pixels) const {
  if (!impl_->vision) throw_bad_input("model", "a text-only checkpoint has no vision tower");
  return impl_->vision->forward(pixels.to(impl_->device, impl_->dtype));
}

at::Tensor LlavaModel::project_train(const at::Tensor& feats) const {
  if (!impl_->projector) throw_bad_input("model", "a text-only checkpoint has no projector");
  return impl_->projector->forward(feats.to(impl_->device, impl_->dtype));
}

at::Tensor LlavaModel::hidden_train(const std::vector<Sequence>& batch, const at::Tensor& images,
                                    std::vector<at::Tensor>* layers_out) const {
  auto [x, lengths] = impl_->embed(batch, images);
  return impl_->llm.forward(x, lengths, nullptr, false, layers_out);
}

at::Tensor LlavaModel::head_train(const at::Tensor& hidden) const { return impl_->llm.head(hidden, {}); }

bool built_with_cuda() {
#ifdef UQMERGE_HAVE_TORCH_CUDA
  return true;
#else
  return false;
#endif
}

std::string resolve_device(const std::string& wanted, int local_rank, int local_size, bool quiet) {
  if (wanted == "cpu") return "cpu";
  if (wanted != "cuda" && wanted != "auto") throw_bad_input("device", "'" + wanted + "' (valid: auto, cpu, cuda)");
  const int gpus = built_with_cuda() && at::hasCUDA() ? static_cast<int>(at::detail::getCUDAHooks().deviceCount()) : 0;
  if (gpus > 0 && local_size > gpus) {
    const std::string what = std::to_string(local_size) + " ranks on this node but " + std::to_string(gpus) + " GPU(s) visible";
    if (wanted == "cuda")
      throw_bad_input("device", "cuda: " + what + ": start one rank per GPU (srun --ntasks-per-node=" + std::to_string(gpus) +
                                    ", mpirun -npernode " + std::to_string(gpus) + ")");
    if (!quiet) log::warn("device auto: {}; ranks share GPUs (memory and speed divided)", what);
  }
  if (gpus > 0) return "cuda:" + std::to_string(local_rank % gpus);
  const std::string why = built_with_cuda() ? "no GPU is visible to this rank (CUDA_VISIBLE_DEVICES, the Slurm GPU binding)"
                                            : "this build has no GPU support (rebuild with -DUQMERGE_TORCH_CUDA=ON)";
  if (wanted == "cuda") throw_bad_input("device", "cuda requested but " + why + "; set device: auto to allow the CPU");
  // A CPU build computing on the CPU is what its user expects (info); a GPU build without a
  // GPU usually means a wrong allocation or binding (warning).
  if (quiet) return "cpu";
  if (built_with_cuda()) log::warn("device auto: {}; computing on the CPU", why);
  else log::info("device auto: {}; computing on the CPU", why);
  return "cpu";
}

int set_torch_threads(int threads) {
  if (threads <= 0) {
    // This process's share: OMP_NUM_THREADS when set (jobs/uqmerge.slurm sets it to
    // --cpus-per-task), else the CPUs of its affinity mask (Slurm/mpirun binding), never the
    // whole node's cores.
    if (const char* env = std::getenv("OMP_NUM_THREADS"); env && std::atoi(env) > 0) threads = std::atoi(env);
    cpu_set_t set;
    if (threads <= 0 && sched_getaffinity(0, sizeof set, &set) == 0) threads = CPU_COUNT(&set);
    if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  }
  at::set_num_threads(threads);
  return at::get_num_threads();
}

}  // namespace uqmerge::model
