// LLaMA decoder (see src/model/modules.hpp), written to match transformers' LlamaModel:
//   RMSNorm in fp32 (x * rsqrt(mean(x^2) + eps)), weight applied in the compute dtype;
//   RoPE with inv_freq = theta^(-2i/D), rotate_half on the two halves of each head;
//   softmax in fp32; SiLU-gated MLP; no biases unless the config asks.
// Batches are right-padded; position ids restart at 0 in every sequence.
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>

#include <mutex>

#include "modules.hpp"
#include "uqmerge/util/error.hpp"
#include "uqmerge/util/rng.hpp"

namespace uqmerge::model::detail {

namespace {
at::Generator seeded_generator(const at::Device& device, uint64_t seed) {
  if (device.is_cpu()) return at::detail::createCPUGenerator(seed);
  at::Generator g = at::globalContext().defaultGenerator(device).clone();
  std::lock_guard<std::mutex> lock(g.mutex());
  g.set_current_seed(seed);
  return g;
}

at::Tensor rotate_half(const at::Tensor& x) {
  const int64_t half = x.size(-1) / 2;
  return at::cat({-x.slice(-1, half), x.slice(-1, 0, half)}, -1);
}
}  // namespace

Llama::Llama(const WeightStore& ws, const LlamaConfig& cfg) : cfg_(cfg) {
  const tensors::LlamaNames n;
  embed_ = ws.get(n.embed_tokens);
  norm_ = ws.get(n.norm);
  lm_head_ = cfg.tie_word_embeddings ? embed_ : ws.get(n.lm_head);
  for (int64_t i = 0; i < cfg.num_hidden_layers; ++i) {
    const auto l = tensors::llama_layer(i);
    const bool ab = cfg.attention_bias, mb = cfg.mlp_bias;
    layers_.push_back({ws.get(l.input_layernorm + ".weight"), ws.get(l.post_attention_layernorm + ".weight"),
                       linear(ws, l.q_proj, ab), linear(ws, l.k_proj, ab), linear(ws, l.v_proj, ab), linear(ws, l.o_proj, ab),
                       linear(ws, l.gate_proj, mb), linear(ws, l.up_proj, mb), linear(ws, l.down_proj, mb)});
  }
}

at::Tensor Llama::embed(const at::Tensor& ids) const { return at::embedding(embed_, ids); }

at::Tensor Llama::rms_norm(const at::Tensor& x, const at::Tensor& w) const {
  const at::Tensor h = x.to(at::kFloat);
  const at::Tensor var = h.pow(2).mean(-1, /*keepdim=*/true);
  return w * (h * at::rsqrt(var + cfg_.rms_norm_eps)).to(x.scalar_type());
}

at::Tensor Llama::attention(const Layer& l, const at::Tensor& xq, const at::Tensor& x, const at::Tensor& cos_q,
                            const at::Tensor& sin_q, const at::Tensor& cos, const at::Tensor& sin, const at::Tensor& mask,
                            bool causal, const std::vector<int64_t>& lengths, const AttentionDropout* dropout, int layer,
                            bool last_row) const {
  const int64_t B = x.size(0), T = x.size(1), Tq = xq.size(1), nh = cfg_.num_attention_heads,
                nkv = cfg_.num_key_value_heads, D = cfg_.head_dim;
  at::Tensor q = l.q(xq).view({B, Tq, nh, D}).transpose(1, 2);  // [B, nh, Tq, D]
  at::Tensor k = l.k(x).view({B, T, nkv, D}).transpose(1, 2);    // [B, nkv, T, D]
  at::Tensor v = l.v(x).view({B, T, nkv, D}).transpose(1, 2);
  q = q * cos_q + rotate_half(q) * sin_q;
  k = k * cos + rotate_half(k) * sin;
  at::Tensor out;
  if (!dropout || dropout->p <= 0) {
    out = at::scaled_dot_product_attention(q, k, v, causal ? std::optional<at::Tensor>() : mask, 0.0, causal,
                                           std::nullopt, /*enable_gqa=*/nkv != nh);
  } else {
    // Explicit attention so the dropout mask comes from the perturbation's own stream. The
    // mask of sequence b is drawn for its full [nh, n, n] probabilities whatever is computed,
    // so last-row and full evaluations (and any batch) see the same mask.
    if (nkv != nh) {
      k = k.repeat_interleave(nh / nkv, 1);
      v = v.repeat_interleave(nh / nkv, 1);
    }
    at::Tensor scores = at::matmul(q, k.transpose(-1, -2)) / std::sqrt(static_cast<double>(D));
    const at::Tensor allowed = causal ? at::ones({T, T}, q.options().dtype(at::kBool)).tril() : mask;
    scores = scores.masked_fill(allowed.logical_not(), -std::numeric_limits<float>::infinity());
    at::Tensor probs = at::softmax(scores, -1, at::kFloat).to(q.scalar_type());
    const double keep = 1.0 - dropout->p;
    at::Tensor m = at::ones({B, nh, Tq, T}, probs.options());
    for (int64_t b = 0; b < B; ++b) {
      const int64_t n = lengths[b];
      RngStream s(dropout->seeds[b], {static_cast<uint64_t>(layer)});
      // CPU: mt19937 from the stream; a GPU: the device's own Philox generator, seeded from the
      // same stream (deterministic per device type; CPU and GPU masks differ).
      at::Generator gen = seeded_generator(q.device(), s.next_u64());
      at::Tensor mb = at::empty({nh, n, n}, q.options().dtype(at::kFloat)).bernoulli_(keep, gen).div_(keep);
      if (last_row) m[b].slice(2, 0, n).copy_(mb.slice(1, n - 1, n));
      else m[b].slice(1, 0, n).slice(2, 0, n).copy_(mb);
    }
    out = at::matmul(probs * m, v);
  }
  return l.o(out.transpose(1, 2).reshape({B, Tq, nh * D}));
}

at::Tensor Llama::forward(at::Tensor x, const std::vector<int64_t>& lengths, const AttentionDropout* dropout,
                          bool last_only, std::vector<at::Tensor>* layers_out) const {
  const int64_t B = x.size(0), T = x.size(1), D = cfg_.head_dim;
  // RoPE tables [T, D] in fp32, cast to the compute dtype as transformers does.
  const auto on = x.options();
  const at::Tensor inv_freq =
      1.0 / at::pow(cfg_.rope_theta, at::arange(0, D, 2, on.dtype(at::kLong)).to(at::kFloat) / static_cast<double>(D));
  const at::Tensor pos = at::arange(T, on.dtype(at::kLong)).to(at::kFloat);
  const at::Tensor freqs = at::outer(pos, inv_freq);
  const at::Tensor emb = at::cat({freqs, freqs}, -1);
  const at::Tensor cos = emb.cos().to(x.scalar_type()), sin = emb.sin().to(x.scalar_type());
  bool all_full = true;
  for (int64_t n : lengths) all_full &= n == T;
  const at::Tensor len = at::tensor(lengths, at::kLong).to(x.device());
  const at::Tensor key_valid = at::arange(T, on.dtype(at::kLong)).view({1, 1, 1, T}) < len.view({B, 1, 1, 1});  // [B,1,1,T]
  at::Tensor mask;  // [B, 1, T, T] true = may attend
  if (!all_full) mask = at::ones({T, T}, on.dtype(at::kBool)).tril().view({1, 1, T, T}).logical_and(key_valid);
  const size_t L = layers_.size();
  for (size_t i = 0; i < L; ++i) {
    const Layer& l = layers_[i];
    const at::Tensor h = rms_norm(x, l.in_norm);
    if (!(last_only && i + 1 == L)) {
      x = x + attention(l, h, h, cos, sin, cos, sin, mask, all_full, lengths, dropout, static_cast<int>(i), false);
    } else {
      // Final layer, last positions only: everything after the keys/values is per-token.
      const at::Tensor rows = at::arange(B, on.dtype(at::kLong)), last = len - 1;
      const at::Tensor hq = h.index({rows, last}).unsqueeze(1), xq = x.index({rows, last}).unsqueeze(1);  // [B,1,H]
      const at::Tensor cq = cos.index_select(0, last).view({B, 1, 1, D}), sq = sin.index_select(0, last).view({B, 1, 1, D});
      x = xq + attention(l, hq, h, cq, sq, cos, sin, key_valid, false, lengths, dropout, static_cast<int>(i), true);
    }
    const at::Tensor hm = rms_norm(x, l.post_norm);
    x = x + l.down(at::silu(l.gate(hm)) * l.up(hm));
    if (layers_out) layers_out->push_back(x);
  }
  return rms_norm(x, norm_);
}

at::Tensor Llama::head(const at::Tensor& hidden, const std::vector<int64_t>& rows) const {
  if (rows.empty()) return at::linear(hidden, lm_head_).to(at::kFloat);
  const at::Tensor idx = at::tensor(rows, at::kLong).to(hidden.device());
  return at::linear(hidden, lm_head_.index_select(0, idx)).to(at::kFloat);
}

}  // namespace uqmerge::model::detail
