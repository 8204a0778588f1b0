// uqmerge/model/llava.hpp — the LLaVA-1.5 forward pass uqmerge needs, in libtorch:
//   pixels --CLIP (up to hidden state vision_feature_layer, CLS dropped)--> vision features
//   vision features --projector (mlp2x_gelu)--> image embeddings
//   token ids with one image slot + image embeddings --LLaMA--> logits at the last real
//   position, for the requested vocabulary rows only (the option letters), or full logits.
// The vision tower is frozen and shared by all candidates, so vision_features() is separate
// from project(): callers cache the former and run each model's own projector.
// Weights are zero-copy views of the checkpoint's mapping when stored dtype = compute dtype.
// Not here: tokenizing, prompts, image decoding (model/tokenizer, model/prompt, model/image).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <string>
#include <memory>
#include <optional>
#include <vector>

#include "uqmerge/io/checkpoint.hpp"
#include "uqmerge/model/tokens.hpp"

namespace uqmerge::model {

struct LoadOptions {
  DType compute = DType::F32;  // F32 (CPU default), BF16 or F16
  int threads = 0;             // 0: all cores (libtorch's own default was 1 on some machines)
  std::string device = "cpu";  // "cpu" or "cuda:N" (resolve_device); weights live there
  // Tensors (canonical names) that replace the checkpoint's: a merged model held in memory
  // (merge/engine.hpp gather()) runs on its reference checkpoint's config and remaining weights.
  const std::map<std::string, at::Tensor>* replace = nullptr;
};

// One sequence of a batch: token ids with at most one kImageSlot, and which row of the
// image-embedding batch fills it.
struct Sequence {
  std::vector<int64_t> ids;
  int64_t image = -1;
};

// Dropout on the language model's attention probabilities (the "model" perturbation).
// Sequence b's masks are a pure function of (seeds[b], layer): the same whichever batch or
// rank the sequence is evaluated in.
struct AttentionDropout {
  double p = 0.0;
  std::vector<uint64_t> seeds;  // one per sequence of the batch
};

class LlavaModel {
 public:
  // Validates the checkpoint (missing/mis-shaped tensors: bad input) and wraps its weights.
  static std::unique_ptr<LlavaModel> load(const Checkpoint& ck, const LoadOptions& opts = {});
  ~LlavaModel();

  const ModelConfig& config() const;
  int64_t image_tokens() const;  // P: embedding rows per image
  at::ScalarType dtype() const;

  // [B, 3, S, S] normalised pixels -> [B, P, Hv] CLIP hidden state vision_feature_layer.
  at::Tensor vision_features(const at::Tensor& pixels) const;
  // [B, P, Hv] -> [B, P, Ht]
  at::Tensor project(const at::Tensor& vision_features) const;

  // Logits [B, K] (fp32) at each sequence's last position, for vocabulary ids `rows` only.
  // image_embeds: [N, P, Ht] rows referenced by Sequence::image (undefined if no images).
  at::Tensor last_logits(const std::vector<Sequence>& batch, const at::Tensor& image_embeds,
                         const std::vector<int64_t>& rows, const AttentionDropout* dropout = nullptr) const;
  // Full logits [B, T, V] (fp32, padded to the longest sequence) — for tests.
  at::Tensor full_logits(const std::vector<Sequence>& batch, const at::Tensor& image_embeds) const;

  // Differentiable forms, for the demo zoo's trainer (zoo/): no InferenceMode, results stay
  // on the model's device, gradients flow into the tensors given as LoadOptions::replace.
  at::Tensor vision_features_train(const at::Tensor& pixels) const;  // [B, P, Hv]
  at::Tensor project_train(const at::Tensor& vision_features) const;  // [B, P, Ht]
  // Final-normed hidden states [B, T, H] (right-padded to the longest sequence); layers_out
  // receives every decoder layer's output (un-normed residual stream) when given.
  at::Tensor hidden_train(const std::vector<Sequence>& batch, const at::Tensor& image_embeds,
                          std::vector<at::Tensor>* layers_out = nullptr) const;
  // hidden [N, H] -> logits [N, V] (fp32).
  at::Tensor head_train(const at::Tensor& hidden) const;

  // Sequence length after the image slot expands to P rows.
  int64_t expanded_length(const Sequence& s) const;

  struct Impl;

 private:
  explicit LlavaModel(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The device a rank computes on: "cpu"; "cuda" (GPU local_rank % GPUs; bad input when this
// build or machine has none; bad input too when local_size ranks outnumber the GPUs); "auto" (a
// GPU when there is one, else the CPU with a warning; ranks sharing GPUs are warned). quiet:
// no log lines (a probe before the session resolves it for real).
std::string resolve_device(const std::string& wanted, int local_rank, int local_size = 1, bool quiet = false);
// Whether this build links libtorch's CUDA backend (-DUQMERGE_TORCH_CUDA=ON).
bool built_with_cuda();

// Sets libtorch's intra-op thread count (0 = all cores) and returns what it is now.
int set_torch_threads(int threads);

}  // namespace uqmerge::model
