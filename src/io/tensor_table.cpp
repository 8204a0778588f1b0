// The architectures' tensor tables (see include/uqmerge/io/tensor_table.hpp).
#include "uqmerge/io/tensor_table.hpp"

namespace uqmerge {

namespace tensors {

ClipLayerNames clip_layer(int64_t i) {
  const std::string p = "vision.encoder.layers." + std::to_string(i) + ".";
  return {p + "self_attn.q_proj", p + "self_attn.k_proj", p + "self_attn.v_proj", p + "self_attn.out_proj",
          p + "layer_norm1",      p + "layer_norm2",      p + "mlp.fc1",          p + "mlp.fc2"};
}

std::string projector_linear(int k) { return "projector.linear_" + std::to_string(k); }

LlamaLayerNames llama_layer(int64_t i) {
  const std::string p = "lm.layers." + std::to_string(i) + ".";
  return {p + "self_attn.q_proj", p + "self_attn.k_proj", p + "self_attn.v_proj",      p + "self_attn.o_proj",
          p + "mlp.gate_proj",    p + "mlp.up_proj",      p + "mlp.down_proj",         p + "input_layernorm",
          p + "post_attention_layernorm"};
}

}  // namespace tensors

std::vector<ExpectedTensor> expected_tensors(const ModelConfig& m) {
  std::vector<ExpectedTensor> out;
  auto add = [&](std::string name, std::vector<int64_t> shape, bool required = true) {
    out.push_back({std::move(name), std::move(shape), required});
  };
  // A module with a weight of `w` and (when `bias`) a bias of [w[0]].
  auto module = [&](const std::string& prefix, std::vector<int64_t> w, bool bias, bool required = true) {
    const int64_t rows = w[0];
    add(prefix + ".weight", std::move(w), required);
    if (bias) add(prefix + ".bias", {rows}, required);
  };
  if (m.vision) {
    const ClipVisionConfig& v = *m.vision;
    const int64_t H = v.hidden_size, I = v.intermediate_size, P = v.patch_size;
    const tensors::ClipNames n;
    add(n.class_embedding, {H});
    add(n.patch_embedding, {H, v.num_channels, P, P});
    add(n.position_embedding, {v.num_patches() + 1, H});
    module(n.pre_layernorm, {H}, true);
    // Layers past the selected hidden state, and post_layernorm, are never run by LLaVA.
    const int64_t L = v.num_hidden_layers;
    const int64_t used = m.vision_feature_layer < 0 ? L + 1 + m.vision_feature_layer : m.vision_feature_layer;
    for (int64_t i = 0; i < L; ++i) {
      const auto l = tensors::clip_layer(i);
      const bool req = i < used;
      for (const auto* proj : {&l.q_proj, &l.k_proj, &l.v_proj, &l.out_proj}) module(*proj, {H, H}, true, req);
      module(l.layer_norm1, {H}, true, req);
      module(l.fc1, {I, H}, true, req);
      module(l.fc2, {H, I}, true, req);
      module(l.layer_norm2, {H}, true, req);
    }
    module(n.post_layernorm, {H}, true, false);
  }
  if (m.arch != Architecture::Llama) {
    const int64_t in = m.vision ? m.vision->hidden_size : m.mm_hidden_size, out_dim = m.text.hidden_size;
    for (int k = 1; k <= m.projector_layers; ++k) module(tensors::projector_linear(k), {out_dim, k == 1 ? in : out_dim}, m.projector_bias);
  }
  const LlamaConfig& t = m.text;
  const int64_t H = t.hidden_size, V = t.vocab_size, I = t.intermediate_size;
  const int64_t q = t.num_attention_heads * t.head_dim, kv = t.num_key_value_heads * t.head_dim;
  const tensors::LlamaNames n;
  add(n.embed_tokens, {V, H});
  for (int64_t i = 0; i < t.num_hidden_layers; ++i) {
    const auto l = tensors::llama_layer(i);
    module(l.q_proj, {q, H}, t.attention_bias);
    module(l.k_proj, {kv, H}, t.attention_bias);
    module(l.v_proj, {kv, H}, t.attention_bias);
    module(l.o_proj, {H, q}, t.attention_bias);
    module(l.gate_proj, {I, H}, t.mlp_bias);
    module(l.up_proj, {I, H}, t.mlp_bias);
    module(l.down_proj, {H, I}, t.mlp_bias);
    add(l.input_layernorm + ".weight", {H});
    add(l.post_attention_layernorm + ".weight", {H});
  }
  add(n.norm, {H});
  if (!t.tie_word_embeddings) add(n.lm_head, {V, H});
  return out;
}

}  // namespace uqmerge
