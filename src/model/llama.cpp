// LLaMA decoder (see src/model/modules.hpp), written to match transformers' LlamaModel:
//   RMSNorm in fp32 (x * rsqrt(mean(x^2) + eps)), weight applied in the compute dtype;
//   RoPE with inv_freq = theta^(-2i/D), rotate_half on the two halves of each head;
//   softmax in fp32; SiLU-gated MLP; no biases unless the config asks.
// Batches are right-padded; position ids restart at 0 in every sequence.
#include <ATen/CPUGeneratorImpl.h>

#include "modules.hpp"
#include "uqmerge/util/error.hpp"
#include "uqmerge/util/rng.hpp"

namespace uqmerge::model::detail {

namespace {
at::Tensor rotate_half(const at::Tensor& x) {
  const int64_t half = x.size(-1) / 2;
  return at::cat({-x.slice(-1, half), x.slice(-1, 0, half)}, -1);
}
}  // namespace

Llama::Llama(const WeightStore& ws, const LlamaConfig& cfg) : cfg_(cfg) {
  embed_ = ws.get("lm.embed_tokens.weight");
  norm_ = ws.get("lm.norm.weight");
  lm_head_ = cfg.tie_word_embeddings ? embed_ : ws.get("lm_head.weight");
  for (int64_t i = 0; i < cfg.num_hidden_layers; ++i) {
    const std::string p = "lm.layers." + std::to_string(i) + ".";
    layers_.push_back({ws.get(p + "input_layernorm.weight"), ws.get(p + "post_attention_layernorm.weight"),
                       linear(ws, p + "self_attn.q_proj", cfg.attention_bias),
                       linear(ws, p + "self_attn.k_proj", cfg.attention_bias),
                       linear(ws, p + "self_attn.v_proj", cfg.attention_bias),
                       linear(ws, p + "self_attn.o_proj", cfg.attention_bias), linear(ws, p + "mlp.gate_proj", cfg.mlp_bias),
                       linear(ws, p + "mlp.up_proj", cfg.mlp_bias), linear(ws, p + "mlp.down_proj", cfg.mlp_bias)});
  }
}

at::Tensor Llama::embed(const at::Tensor& ids) const { return at::embedding(embed_, ids); }

at::Tensor Llama::rms_norm(const at::Tensor& x, const at::Tensor& w) const {
  const at::Tensor h = x.to(at::kFloat);
  const at::Tensor var = h.pow(2).mean(-1, /*keepdim=*/true);
  return w * (h * at::rsqrt(var + cfg_.rms_norm_eps)).to(x.scalar_type());
}

at::Tensor Llama::attention(const Layer& l, const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                            const at::Tensor& mask, bool all_full, const std::vector<int64_t>& lengths,
                            const AttentionDropout* dropout, int layer) const {
  const int64_t B = x.size(0), T = x.size(1), nh = cfg_.num_attention_heads, nkv = cfg_.num_key_value_heads,
                D = cfg_.head_dim;
  at::Tensor q = l.q(x).view({B, T, nh, D}).transpose(1, 2);   // [B, nh, T, D]
  at::Tensor k = l.k(x).view({B, T, nkv, D}).transpose(1, 2);  // [B, nkv, T, D]
  at::Tensor v = l.v(x).view({B, T, nkv, D}).transpose(1, 2);
  q = q * cos + rotate_half(q) * sin;
  k = k * cos + rotate_half(k) * sin;
  at::Tensor out;
  if (!dropout || dropout->p <= 0) {
    out = at::scaled_dot_product_attention(q, k, v, all_full ? std::optional<at::Tensor>() : mask, 0.0,
                                           /*is_causal=*/all_full, std::nullopt, /*enable_gqa=*/nkv != nh);
  } else {
    // Explicit attention so the dropout mask comes from the perturbation's own stream.
    if (nkv != nh) {
      k = k.repeat_interleave(nh / nkv, 1);
      v = v.repeat_interleave(nh / nkv, 1);
    }
    at::Tensor scores = at::matmul(q, k.transpose(-1, -2)) / std::sqrt(static_cast<double>(D));
    at::Tensor allowed = all_full ? at::ones({T, T}, at::kBool).tril() : mask;
    scores = scores.masked_fill(allowed.logical_not(), -std::numeric_limits<float>::infinity());
    at::Tensor probs = at::softmax(scores, -1, at::kFloat).to(q.scalar_type());
    const double keep = 1.0 - dropout->p;
    at::Tensor m = at::ones({B, nh, T, T}, probs.options());
    for (int64_t b = 0; b < B; ++b) {
      const int64_t n = lengths[b];
      RngStream s(dropout->seeds[b], {static_cast<uint64_t>(layer)});
      at::Generator gen = at::detail::createCPUGenerator(s.next_u64());
      at::Tensor mb = at::empty({nh, n, n}, at::kFloat).bernoulli_(keep, gen);
      m[b].slice(1, 0, n).slice(2, 0, n).copy_(mb / keep);
    }
    out = at::matmul(probs * m, v);
  }
  return l.o(out.transpose(1, 2).reshape({B, T, nh * D}));
}

at::Tensor Llama::forward(at::Tensor x, const std::vector<int64_t>& lengths, const AttentionDropout* dropout) const {
  const int64_t B = x.size(0), T = x.size(1), D = cfg_.head_dim;
  // RoPE tables [T, D] in fp32, cast to the compute dtype as transformers does.
  const at::Tensor inv_freq =
      1.0 / at::pow(cfg_.rope_theta, at::arange(0, D, 2, at::kLong).to(at::kFloat) / static_cast<double>(D));
  const at::Tensor pos = at::arange(T, at::kLong).to(at::kFloat);
  const at::Tensor freqs = at::outer(pos, inv_freq);
  const at::Tensor emb = at::cat({freqs, freqs}, -1);
  const at::Tensor cos = emb.cos().to(x.scalar_type()), sin = emb.sin().to(x.scalar_type());
  bool all_full = true;
  for (int64_t n : lengths) all_full &= n == T;
  at::Tensor mask;  // [B, 1, T, T] true = may attend
  if (!all_full) {
    const at::Tensor causal = at::ones({T, T}, at::kBool).tril();
    const at::Tensor len = at::tensor(lengths, at::kLong).view({B, 1, 1, 1});
    mask = causal.view({1, 1, T, T}).logical_and(at::arange(T, at::kLong).view({1, 1, 1, T}) < len);
  }
  int layer = 0;
  for (const Layer& l : layers_) {
    x = x + attention(l, rms_norm(x, l.in_norm), cos, sin, mask, all_full, lengths, dropout, layer++);
    const at::Tensor h = rms_norm(x, l.post_norm);
    x = x + l.down(at::silu(l.gate(h)) * l.up(h));
  }
  return rms_norm(x, norm_);
}

at::Tensor Llama::head(const at::Tensor& hidden, const std::vector<int64_t>& rows) const {
  if (rows.empty()) return at::linear(hidden, lm_head_).to(at::kFloat);
  const at::Tensor idx = at::tensor(rows, at::kLong);
  return at::linear(hidden, lm_head_.index_select(0, idx)).to(at::kFloat);
}

}  // namespace uqmerge::model::detail
