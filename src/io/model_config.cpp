// config.json parsing with transformers' defaults (see include/uqmerge/io/model_config.hpp).
#include "uqmerge/io/model_config.hpp"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "uqmerge/util/error.hpp"

namespace uqmerge {

namespace fs = std::filesystem;
using nlohmann::json;

std::string_view architecture_name(Architecture a) {
  switch (a) {
    case Architecture::LlavaHf: return "LlavaForConditionalGeneration";
    case Architecture::LlavaOriginal: return "LlavaLlamaForCausalLM";
    case Architecture::Llama: return "LlamaForCausalLM";
  }
  return "?";
}

namespace {

json read_json_file(const fs::path& path, const char* fix) {
  if (!fs::exists(path)) throw_bad_input(path.string(), std::string("missing: ") + fix);
  std::ifstream in(path);
  if (!in) throw_bad_input(path.string(), "cannot be read");
  std::stringstream ss;
  ss << in.rdbuf();
  json j;
  try {
    j = json::parse(ss.str());
  } catch (const json::exception& e) {
    throw_bad_input(path.string(), std::string("not valid JSON (") + e.what() + ")");
  }
  if (!j.is_object()) throw_bad_input(path.string(), "not a JSON object");
  return j;
}

// Typed optional getters: absent or null keeps the default; a wrong type is the user's error.
struct Reader {
  const json& j;
  std::string where;  // "DIR/config.json" or "DIR/config.json: text_config"

  void get(const char* key, int64_t& out) const {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return;
    if (!it->is_number_integer()) bad(key, "an integer");
    out = it->get<int64_t>();
  }
  void get(const char* key, int& out) const {
    int64_t v = out;
    get(key, v);
    out = static_cast<int>(v);
  }
  void get(const char* key, double& out) const {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return;
    if (!it->is_number()) bad(key, "a number");
    out = it->get<double>();
  }
  void get(const char* key, bool& out) const {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return;
    if (!it->is_boolean()) bad(key, "true or false");
    out = it->get<bool>();
  }
  void get(const char* key, std::string& out) const {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return;
    if (!it->is_string()) bad(key, "a string");
    out = it->get<std::string>();
  }
  [[noreturn]] void bad(const char* key, const char* want) const {
    throw_bad_input(where, std::string("key '") + key + "' must be " + want);
  }
  void positive(const char* key, int64_t v) const {
    if (v <= 0) throw_bad_input(where, std::string("key '") + key + "' must be positive, got " + std::to_string(v));
  }
};

void read_llama(const Reader& r, LlamaConfig& c) {
  r.get("vocab_size", c.vocab_size);
  r.get("hidden_size", c.hidden_size);
  r.get("intermediate_size", c.intermediate_size);
  r.get("num_hidden_layers", c.num_hidden_layers);
  r.get("num_attention_heads", c.num_attention_heads);
  r.get("num_key_value_heads", c.num_key_value_heads);
  r.get("head_dim", c.head_dim);
  r.get("max_position_embeddings", c.max_position_embeddings);
  r.get("rms_norm_eps", c.rms_norm_eps);
  r.get("rope_theta", c.rope_theta);
  r.get("hidden_act", c.hidden_act);
  r.get("tie_word_embeddings", c.tie_word_embeddings);
  r.get("attention_bias", c.attention_bias);
  r.get("mlp_bias", c.mlp_bias);
  // transformers 5 keeps RoPE settings in rope_parameters; older files may carry rope_scaling.
  for (const char* key : {"rope_scaling", "rope_parameters"}) {
    auto it = r.j.find(key);
    if (it == r.j.end() || it->is_null()) continue;
    if (!it->is_object()) r.bad(key, "an object");
    Reader sub{*it, r.where + ": " + key};
    sub.get("rope_theta", c.rope_theta);
    std::string type = c.rope_type;
    sub.get("type", type);
    sub.get("rope_type", type);
    c.rope_type = type;
  }
  if (c.num_key_value_heads == 0) c.num_key_value_heads = c.num_attention_heads;
  for (auto [k, v] : {std::pair{"vocab_size", c.vocab_size}, {"hidden_size", c.hidden_size},
                      {"intermediate_size", c.intermediate_size}, {"num_hidden_layers", c.num_hidden_layers},
                      {"num_attention_heads", c.num_attention_heads},
                      {"num_key_value_heads", c.num_key_value_heads}})
    r.positive(k, v);
  if (c.head_dim == 0) {
    if (c.hidden_size % c.num_attention_heads != 0)
      throw_bad_input(r.where, "hidden_size " + std::to_string(c.hidden_size) +
                                   " is not divisible by num_attention_heads " + std::to_string(c.num_attention_heads));
    c.head_dim = c.hidden_size / c.num_attention_heads;
  }
  if (c.num_attention_heads % c.num_key_value_heads != 0)
    throw_bad_input(r.where, "num_attention_heads " + std::to_string(c.num_attention_heads) +
                                 " is not a multiple of num_key_value_heads " + std::to_string(c.num_key_value_heads));
  if (c.rms_norm_eps <= 0) throw_bad_input(r.where, "rms_norm_eps must be positive");
  if (c.rope_theta <= 0) throw_bad_input(r.where, "rope_theta must be positive");
}

void read_clip(const Reader& r, ClipVisionConfig& c) {
  r.get("hidden_size", c.hidden_size);
  r.get("intermediate_size", c.intermediate_size);
  r.get("num_hidden_layers", c.num_hidden_layers);
  r.get("num_attention_heads", c.num_attention_heads);
  r.get("num_channels", c.num_channels);
  r.get("image_size", c.image_size);
  r.get("patch_size", c.patch_size);
  r.get("layer_norm_eps", c.layer_norm_eps);
  r.get("hidden_act", c.hidden_act);
  for (auto [k, v] : {std::pair{"hidden_size", c.hidden_size}, {"intermediate_size", c.intermediate_size},
                      {"num_hidden_layers", c.num_hidden_layers}, {"num_attention_heads", c.num_attention_heads},
                      {"num_channels", c.num_channels}, {"image_size", c.image_size}, {"patch_size", c.patch_size}})
    r.positive(k, v);
  if (c.hidden_size % c.num_attention_heads != 0)
    throw_bad_input(r.where, "vision hidden_size is not divisible by num_attention_heads");
  if (c.image_size % c.patch_size != 0)
    throw_bad_input(r.where, "vision image_size " + std::to_string(c.image_size) +
                                 " is not a multiple of patch_size " + std::to_string(c.patch_size));
}

const json& sub_object(const json& j, const char* key, const std::string& where) {
  static const json empty = json::object();
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return empty;
  if (!it->is_object()) throw_bad_input(where, std::string("key '") + key + "' must be an object");
  return *it;
}

void read_torch_dtype(const Reader& r, ModelConfig& m) {
  std::string s;
  r.get("torch_dtype", s);
  r.get("dtype", s);  // transformers 5 name
  if (s.empty()) return;
  m.torch_dtype = parse_torch_dtype(s);
  if (!m.torch_dtype || !is_floating(*m.torch_dtype))
    throw_bad_input(r.where, "torch_dtype '" + s + "' is not a floating type");
}

// mm_projector_type: "linear" or "mlp{N}x_gelu".
void parse_projector_type(const std::string& t, ModelConfig& m, const std::string& where) {
  if (t == "linear") {
    m.projector_layers = 1;
    m.projector_act = "none";
    return;
  }
  int n = 0;
  if (std::sscanf(t.c_str(), "mlp%dx_gelu", &n) == 1 && n >= 1 && t == "mlp" + std::to_string(n) + "x_gelu") {
    m.projector_layers = n;
    m.projector_act = "gelu";
    return;
  }
  throw_bad_input(where, "mm_projector_type '" + t + "' is not supported (supported: linear, mlp<N>x_gelu)");
}

}  // namespace

ModelConfig read_model_config(const fs::path& dir) {
  const fs::path path = dir / "config.json";
  const json j = read_json_file(path, "a Hugging Face model directory needs config.json (save it with save_pretrained)");
  const std::string where = path.string();
  Reader r{j, where};
  ModelConfig m;
  r.get("model_type", m.model_type);
  std::string arch_name;
  if (auto it = j.find("architectures"); it != j.end() && !it->is_null()) {
    if (!it->is_array() || it->empty() || !(*it)[0].is_string())
      throw_bad_input(where, "key 'architectures' must be a non-empty list of class names");
    arch_name = (*it)[0].get<std::string>();
  }
  const bool has_mm = j.contains("mm_vision_tower") || j.contains("mm_hidden_size");
  if (arch_name == "LlavaForConditionalGeneration") m.arch = Architecture::LlavaHf;
  else if (arch_name == "LlavaLlamaForCausalLM") m.arch = Architecture::LlavaOriginal;
  else if (arch_name == "LlamaForCausalLM") m.arch = has_mm ? Architecture::LlavaOriginal : Architecture::Llama;
  else if (!arch_name.empty())
    throw_bad_input(where, "unsupported architecture '" + arch_name +
                               "' (supported: LlavaForConditionalGeneration, LlavaLlamaForCausalLM, LlamaForCausalLM)");
  else if (m.model_type == "llava") m.arch = has_mm ? Architecture::LlavaOriginal : Architecture::LlavaHf;
  else if (m.model_type == "llava_llama") m.arch = Architecture::LlavaOriginal;
  else if (m.model_type == "llama") m.arch = has_mm ? Architecture::LlavaOriginal : Architecture::Llama;
  else if (m.model_type.empty())
    throw_bad_input(where, "lacks both 'architectures' and 'model_type': cannot tell the model's architecture");
  else
    throw_bad_input(where, "unsupported model_type '" + m.model_type + "' (supported: llava, llava_llama, llama)");
  read_torch_dtype(r, m);

  switch (m.arch) {
    case Architecture::LlavaHf: {
      const json& tc = sub_object(j, "text_config", where);
      std::string tt = "llama";
      Reader tr{tc, where + ": text_config"};
      tr.get("model_type", tt);
      if (tt != "llama")
        throw_bad_input(where, "text_config.model_type '" + tt + "' is not supported (supported: llama)");
      read_llama(tr, m.text);
      // transformers keeps tie_word_embeddings on the top-level config too.
      if (!tc.contains("tie_word_embeddings")) r.get("tie_word_embeddings", m.text.tie_word_embeddings);
      if (!m.torch_dtype) read_torch_dtype(tr, m);
      // LlavaConfig's default vision_config is CLIP ViT-L/14 at 336 px, but a vision_config
      // dict that is present gets CLIPVisionConfig's own defaults for its missing keys.
      ClipVisionConfig v;
      if (auto it = j.find("vision_config"); it == j.end() || it->is_null()) {
        v.hidden_size = 1024, v.intermediate_size = 4096, v.patch_size = 14, v.image_size = 336;
        v.num_hidden_layers = 24, v.num_attention_heads = 16;
      } else {
        const json& vc = sub_object(j, "vision_config", where);
        Reader vr{vc, where + ": vision_config"};
        std::string vt = "clip_vision_model";
        vr.get("model_type", vt);
        if (vt != "clip_vision_model")
          throw_bad_input(where, "vision_config.model_type '" + vt + "' is not supported (supported: clip_vision_model)");
        read_clip(vr, v);
      }
      m.vision = v;
      r.get("image_token_index", m.image_token_index);
      r.get("image_token_id", m.image_token_index);  // transformers 5 name
      r.get("projector_hidden_act", m.projector_act);
      r.get("multimodal_projector_bias", m.projector_bias);
      r.get("vision_feature_select_strategy", m.vision_feature_select_strategy);
      if (auto it = j.find("vision_feature_layer"); it != j.end() && it->is_array())
        throw_bad_input(where, "vision_feature_layer as a list (multi-layer features) is not supported");
      r.get("vision_feature_layer", m.vision_feature_layer);
      m.projector_layers = 2;
      break;
    }
    case Architecture::LlavaOriginal: {
      read_llama(r, m.text);
      r.get("mm_vision_tower", m.vision_tower_name);
      if (m.vision_tower_name.empty()) r.get("vision_tower", m.vision_tower_name);
      if (m.vision_tower_name.empty())
        throw_bad_input(where, "original LLaVA config lacks 'mm_vision_tower' (the CLIP model it was built on)");
      r.get("mm_hidden_size", m.mm_hidden_size);
      std::string ptype = "linear";
      r.get("mm_projector_type", ptype);
      parse_projector_type(ptype, m, where);
      m.projector_bias = true;
      r.get("mm_vision_select_layer", m.vision_feature_layer);
      std::string sel = "patch";
      r.get("mm_vision_select_feature", sel);
      if (sel != "patch" && sel != "cls_patch")
        throw_bad_input(where, "mm_vision_select_feature '" + sel + "' is not supported (patch, cls_patch)");
      m.vision_feature_select_strategy = sel == "patch" ? "default" : "full";
      r.get("image_aspect_ratio", m.image_aspect_ratio);
      r.get("mm_use_im_start_end", m.mm_use_im_start_end);
      m.image_token_index = -200;  // IMAGE_TOKEN_INDEX of the LLaVA code base
      break;
    }
    case Architecture::Llama: read_llama(r, m.text); break;
  }
  if (m.vision_feature_select_strategy != "default" && m.vision_feature_select_strategy != "full")
    throw_bad_input(where, "vision_feature_select_strategy '" + m.vision_feature_select_strategy +
                               "' is not supported (default, full)");
  return m;
}

ClipVisionConfig read_clip_vision_config(const fs::path& dir) {
  const fs::path path = dir / "config.json";
  const json j = read_json_file(path, "the CLIP vision tower directory needs its config.json");
  std::string type;
  Reader r{j, path.string()};
  r.get("model_type", type);
  ClipVisionConfig c;
  if (type == "clip") {
    Reader vr{sub_object(j, "vision_config", path.string()), path.string() + ": vision_config"};
    read_clip(vr, c);
  } else if (type == "clip_vision_model" || type.empty()) {
    read_clip(r, c);
  } else {
    throw_bad_input(path.string(), "model_type '" + type + "' is not a CLIP model (clip, clip_vision_model)");
  }
  return c;
}

}  // namespace uqmerge
