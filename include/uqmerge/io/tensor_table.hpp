// uqmerge/io/tensor_table.hpp — every tensor of each architecture stated once: its canonical
// name (io/checkpoint.hpp's scheme), its shape from the config, and whether it is required.
// Checkpoint validation (expected_tensors) and model loading (model/vision.cpp, model/llama.cpp)
// both take their names from here, so a name cannot drift between the two. Module names are
// prefixes ("lm.layers.3.self_attn.q_proj"); the parameter is appended (".weight", ".bias").
// Torch-free.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "uqmerge/io/model_config.hpp"

namespace uqmerge::tensors {

// CLIP vision tower (vision.*).
struct ClipNames {
  std::string class_embedding = "vision.embeddings.class_embedding";            // [Hv]
  std::string patch_embedding = "vision.embeddings.patch_embedding.weight";     // [Hv, C, p, p]
  std::string position_embedding = "vision.embeddings.position_embedding.weight";  // [P + 1, Hv]
  std::string pre_layernorm = "vision.pre_layrnorm";                            // [Hv] weight, bias
  std::string post_layernorm = "vision.post_layernorm";                         // [Hv], never run by LLaVA
};
struct ClipLayerNames {  // layer i; every module has a weight and a bias
  std::string q_proj, k_proj, v_proj, out_proj;  // [Hv, Hv]
  std::string layer_norm1, layer_norm2;          // [Hv]
  std::string fc1, fc2;                          // [I, Hv], [Hv, I]
};
ClipLayerNames clip_layer(int64_t i);

// LLaVA projector: linear_1 [Ht, Hv], linear_k [Ht, Ht] (k = 1..projector_layers).
std::string projector_linear(int k);

// LLaMA decoder (lm.*, lm_head).
struct LlamaNames {
  std::string embed_tokens = "lm.embed_tokens.weight";  // [V, Ht]
  std::string norm = "lm.norm.weight";                  // [Ht]
  std::string lm_head = "lm_head.weight";               // [V, Ht] unless tied to embed_tokens
};
struct LlamaLayerNames {  // layer i; biases only when the config says so
  std::string q_proj, k_proj, v_proj, o_proj;  // [nh D, Ht], [nkv D, Ht] x2, [Ht, nh D]
  std::string gate_proj, up_proj, down_proj;   // [I, Ht] x2, [Ht, I]
  std::string input_layernorm, post_attention_layernorm;  // [Ht] weight only
};
LlamaLayerNames llama_layer(int64_t i);

}  // namespace uqmerge::tensors

namespace uqmerge {

struct ExpectedTensor {
  std::string name;  // canonical
  std::vector<int64_t> shape;
  bool required = true;  // false: present in checkpoints but never run (CLIP's last layer...)
};
// Every tensor the config implies, in module order.
std::vector<ExpectedTensor> expected_tensors(const ModelConfig& config);

}  // namespace uqmerge
