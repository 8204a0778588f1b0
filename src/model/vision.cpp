// CLIP vision tower and LLaVA projector (see src/model/modules.hpp).
//   embeddings: patch conv (no bias) -> [B, P, Hv]; prepend class embedding; + position
//   embedding; pre_layrnorm; encoder layers x = x + attn(ln1(x)); x = x + mlp(ln2(x)) with
//   quick_gelu; hidden state k = output of layer k (0 = embeddings). LLaVA reads k = L-1, so the
//   last layer and post_layernorm never run; CLS is dropped ("default"/"patch" strategy).
#include "modules.hpp"
#include "uqmerge/util/error.hpp"

namespace uqmerge::model::detail {

ClipVision::ClipVision(const WeightStore& ws, const ClipVisionConfig& cfg, int feature_layer, bool keep_cls)
    : cfg_(cfg), keep_cls_(keep_cls) {
  const int64_t L = cfg.num_hidden_layers;
  const int64_t run = feature_layer < 0 ? L + 1 + feature_layer : feature_layer;  // hidden_states index
  if (run < 0 || run > L)
    throw_bad_input("vision_feature_layer", "value " + std::to_string(feature_layer) + " is outside the " +
                                                std::to_string(L) + "-layer vision tower");
  if (cfg.hidden_act != "quick_gelu")
    throw_bad_input("vision_config.hidden_act", "'" + cfg.hidden_act + "' is not supported (quick_gelu)");
  const tensors::ClipNames n;
  patch_w = ws.get(n.patch_embedding);
  class_emb = ws.get(n.class_embedding);
  pos_emb = ws.get(n.position_embedding);
  pre_ln_w = ws.get(n.pre_layernorm + ".weight");
  pre_ln_b = ws.get(n.pre_layernorm + ".bias");
  for (int64_t i = 0; i < run; ++i) {
    const auto l = tensors::clip_layer(i);
    layers_.push_back({ws.get(l.layer_norm1 + ".weight"), ws.get(l.layer_norm1 + ".bias"), ws.get(l.layer_norm2 + ".weight"),
                       ws.get(l.layer_norm2 + ".bias"), linear(ws, l.q_proj, true), linear(ws, l.k_proj, true),
                       linear(ws, l.v_proj, true), linear(ws, l.out_proj, true), linear(ws, l.fc1, true), linear(ws, l.fc2, true)});
  }
}

at::Tensor ClipVision::forward(const at::Tensor& pixels) const {
  const int64_t B = pixels.size(0), H = cfg_.hidden_size, nh = cfg_.num_attention_heads, D = H / nh;
  const double eps = cfg_.layer_norm_eps;
  // [B, H, S/p, S/p] -> [B, P, H]
  at::Tensor x = at::conv2d(pixels.to(patch_w.scalar_type()), patch_w, {}, {cfg_.patch_size, cfg_.patch_size});
  x = x.flatten(2).transpose(1, 2);
  x = at::cat({class_emb.view({1, 1, H}).expand({B, 1, H}), x}, 1) + pos_emb.unsqueeze(0);
  x = at::layer_norm(x, {H}, pre_ln_w, pre_ln_b, eps);
  const int64_t T = x.size(1);
  for (const Layer& l : layers_) {
    at::Tensor h = at::layer_norm(x, {H}, l.ln1_w, l.ln1_b, eps);
    auto heads = [&](const Linear& proj) { return proj(h).view({B, T, nh, D}).transpose(1, 2); };
    at::Tensor a = at::scaled_dot_product_attention(heads(l.q), heads(l.k), heads(l.v));
    x = x + l.o(a.transpose(1, 2).reshape({B, T, H}));
    h = at::layer_norm(x, {H}, l.ln2_w, l.ln2_b, eps);
    h = l.fc1(h);
    h = h * at::sigmoid(1.702 * h);  // quick_gelu
    x = x + l.fc2(h);
  }
  return keep_cls_ ? x : x.slice(1, 1);
}

Projector::Projector(const WeightStore& ws, const ModelConfig& cfg) : act_(cfg.projector_act) {
  if (cfg.projector_layers > 1 && act_ != "gelu")
    throw_bad_input("projector", "activation '" + act_ + "' is not supported (gelu, the exact erf GELU)");
  for (int k = 1; k <= cfg.projector_layers; ++k)
    layers_.push_back(linear(ws, tensors::projector_linear(k), cfg.projector_bias));
}

at::Tensor Projector::forward(const at::Tensor& x) const {
  at::Tensor h = layers_[0](x);
  for (size_t i = 1; i < layers_.size(); ++i) h = layers_[i](at::gelu(h));  // exact (erf) GELU
  return h;
}

}  // namespace uqmerge::model::detail
