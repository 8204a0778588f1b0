// uqmerge/io/model_config.hpp — config.json of the checkpoints uqmerge reads, with the defaults
// transformers applies when a key is absent. Three architectures:
//   LlavaForConditionalGeneration (llava-hf: nested text_config / vision_config),
//   LlavaLlamaForCausalLM (original LLaVA: LLaMA keys + mm_* keys; CLIP in a separate directory),
//   LlamaForCausalLM (text only: merged by mergekit-style configs, no vision).
// Not here: tensor names (io/checkpoint.hpp), the modules themselves (model/).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "uqmerge/io/dtype.hpp"

namespace uqmerge {

enum class Architecture { LlavaHf, LlavaOriginal, Llama };
std::string_view architecture_name(Architecture a);  // the transformers class name

// transformers.LlamaConfig (defaults as its __init__).
struct LlamaConfig {
  int64_t vocab_size = 32000;
  int64_t hidden_size = 4096;
  int64_t intermediate_size = 11008;
  int64_t num_hidden_layers = 32;
  int64_t num_attention_heads = 32;
  int64_t num_key_value_heads = 0;  // 0 in the file = same as num_attention_heads (resolved)
  int64_t head_dim = 0;             // 0 in the file = hidden_size / num_attention_heads (resolved)
  int64_t max_position_embeddings = 2048;
  double rms_norm_eps = 1e-6;       // llava-hf configs state 1e-5
  double rope_theta = 10000.0;      // rope_theta, or rope_parameters.rope_theta (transformers 5)
  std::string rope_type = "default";  // anything else is reported as unsupported
  std::string hidden_act = "silu";
  bool tie_word_embeddings = false;
  bool attention_bias = false;
  bool mlp_bias = false;
};

// transformers.CLIPVisionConfig (defaults as its __init__).
struct ClipVisionConfig {
  int64_t hidden_size = 768;
  int64_t intermediate_size = 3072;
  int64_t num_hidden_layers = 12;
  int64_t num_attention_heads = 12;
  int64_t num_channels = 3;
  int64_t image_size = 224;
  int64_t patch_size = 32;
  double layer_norm_eps = 1e-5;
  std::string hidden_act = "quick_gelu";
  int64_t num_patches() const { return (image_size / patch_size) * (image_size / patch_size); }
};

struct ModelConfig {
  Architecture arch = Architecture::LlavaHf;
  std::string model_type;
  LlamaConfig text;
  std::optional<ClipVisionConfig> vision;  // absent for Llama, and for original LLaVA until
                                           // its CLIP directory is read
  // Projector: number of Linear layers (mlp2x_gelu = 2; "linear" = 1), activation, bias.
  int projector_layers = 2;
  std::string projector_act = "gelu";
  bool projector_bias = true;
  int64_t image_token_index = 32000;   // llava-hf placeholder id; original LLaVA uses -200
  int vision_feature_layer = -2;       // hidden state index (mm_vision_select_layer)
  std::string vision_feature_select_strategy = "default";  // "default"/"patch" drop CLS; "full" keeps
  std::string image_aspect_ratio = "pad";
  std::string vision_tower_name;       // original: mm_vision_tower as written in config.json
  int64_t mm_hidden_size = 0;          // original: the projector's input width (CLIP hidden size)
  bool mm_use_im_start_end = false;
  std::optional<DType> torch_dtype;
};

// Reads DIR/config.json. Throws a bad-input Error naming the file for: missing file, invalid
// JSON, unsupported architecture, keys of the wrong type or impossible values.
ModelConfig read_model_config(const std::filesystem::path& dir);

// Reads a CLIP directory's config.json (CLIPConfig with vision_config, or CLIPVisionConfig).
ClipVisionConfig read_clip_vision_config(const std::filesystem::path& dir);

}  // namespace uqmerge
