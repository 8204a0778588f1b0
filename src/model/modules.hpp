// Private to src/model: the modules of LLaVA-1.5 as plain structs over weight tensors.
// Shapes: B batch, T tokens, H hidden, nh/nkv heads, D head dim, P image patches, V vocab.
#pragma once

#include <torch/torch.h>

#include <string>
#include <unordered_map>
#include <vector>

#include "uqmerge/io/checkpoint.hpp"
#include "uqmerge/model/llava.hpp"

namespace uqmerge::model::detail {

at::ScalarType scalar_type(DType d);

// Canonical name -> tensor in the compute dtype (zero-copy when the stored dtype matches).
class WeightStore {
 public:
  WeightStore(const Checkpoint& ck, at::ScalarType dtype, const std::map<std::string, at::Tensor>* replace,
              const at::Device& device);
  const at::Tensor& get(const std::string& name) const;  // missing: internal error (validated before)
  const at::Tensor* find(const std::string& name) const;
  uint64_t copied_bytes() const { return copied_bytes_; }

 private:
  std::unordered_map<std::string, at::Tensor> w_;
  uint64_t copied_bytes_ = 0;
};

struct Linear {
  at::Tensor w, b;  // w [out, in], b [out] or undefined
  at::Tensor operator()(const at::Tensor& x) const { return at::linear(x, w, b.defined() ? std::optional<at::Tensor>(b) : std::nullopt); }
};
Linear linear(const WeightStore& ws, const std::string& prefix, bool bias);

// CLIP vision transformer up to hidden state `feature_layer` (LLaVA: -2).
class ClipVision {
 public:
  ClipVision(const WeightStore& ws, const ClipVisionConfig& cfg, int feature_layer, bool keep_cls);
  // pixels [B, 3, S, S] -> [B, P(+1), Hv]
  at::Tensor forward(const at::Tensor& pixels) const;
  int64_t tokens() const { return keep_cls_ ? cfg_.num_patches() + 1 : cfg_.num_patches(); }

 private:
  struct Layer {
    at::Tensor ln1_w, ln1_b, ln2_w, ln2_b;
    Linear q, k, v, o, fc1, fc2;
  };
  ClipVisionConfig cfg_;
  bool keep_cls_;
  at::Tensor patch_w, class_emb, pos_emb, pre_ln_w, pre_ln_b;
  std::vector<Layer> layers_;  // only the layers that run
};

// LLaVA projector: Linear (GELU Linear)* — mlp{N}x_gelu, or one Linear.
class Projector {
 public:
  Projector(const WeightStore& ws, const ModelConfig& cfg);
  at::Tensor forward(const at::Tensor& x) const;  // [.., Hv] -> [.., Ht]

 private:
  std::vector<Linear> layers_;
  std::string act_;
};

// LLaMA decoder: embeddings, layers, final norm, head.
class Llama {
 public:
  Llama(const WeightStore& ws, const LlamaConfig& cfg);
  at::Tensor embed(const at::Tensor& ids) const;  // [N] -> [N, H]
  // x [B, T, H] right-padded; lengths[b] real tokens. Returns final-normed hidden [B, T, H], or
  // with last_only [B, 1, H] at each sequence's last position: the final layer then computes
  // keys/values for all tokens but queries, output projection and MLP for that position only.
  // layers_out (training): receives each layer's output residual stream [B, T, H].
  at::Tensor forward(at::Tensor x, const std::vector<int64_t>& lengths, const AttentionDropout* dropout,
                     bool last_only = false, std::vector<at::Tensor>* layers_out = nullptr) const;
  // hidden [N, H] -> logits [N, rows] (fp32); rows empty = whole vocabulary.
  at::Tensor head(const at::Tensor& hidden, const std::vector<int64_t>& rows) const;
  const LlamaConfig& config() const { return cfg_; }

 private:
  struct Layer {
    at::Tensor in_norm, post_norm;
    Linear q, k, v, o, gate, up, down;
  };
  at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& w) const;
  // Queries from xq [B, Tq, H] (RoPE tables cos_q/sin_q broadcastable to [B, nh, Tq, D]),
  // keys/values from x [B, T, H]. mask [B, 1, Tq, T] (true = may attend); causal = plain
  // causal attention with no padding (mask unused). last_row: Tq = 1 is each sequence's last.
  at::Tensor attention(const Layer& l, const at::Tensor& xq, const at::Tensor& x, const at::Tensor& cos_q,
                       const at::Tensor& sin_q, const at::Tensor& cos, const at::Tensor& sin, const at::Tensor& mask,
                       bool causal, const std::vector<int64_t>& lengths, const AttentionDropout* dropout, int layer,
                       bool last_row) const;
  LlamaConfig cfg_;
  at::Tensor embed_, norm_, lm_head_;
  std::vector<Layer> layers_;
};

}  // namespace uqmerge::model::detail
