// io/model_config + io/checkpoint: transformers' defaults, every config error, the canonical
// name mapping of each layout, and missing/unexpected/mis-shaped tensor reports.
// (Checkpoints saved by transformers itself are checked in tests/reference/.)
#include <gtest/gtest.h>

#include <vector>

#include "test_util.hpp"
#include "uqmerge/io/checkpoint.hpp"

namespace uqmerge {
namespace {

using test::expect_bad_input;
using test::TempDir;
using test::write_text;

TEST(ModelConfig, LlavaHfDefaultsAsTransformers) {
  TempDir d;
  write_text(d / "config.json", R"({"architectures":["LlavaForConditionalGeneration"],
      "text_config":{"model_type":"llama","vocab_size":32064,"rms_norm_eps":1e-05}})");
  const ModelConfig m = read_model_config(d.path());
  EXPECT_EQ(m.arch, Architecture::LlavaHf);
  EXPECT_EQ(m.text.hidden_size, 4096);
  EXPECT_EQ(m.text.num_key_value_heads, 32);
  EXPECT_EQ(m.text.head_dim, 128);
  EXPECT_DOUBLE_EQ(m.text.rms_norm_eps, 1e-5);
  EXPECT_DOUBLE_EQ(m.text.rope_theta, 10000.0);
  EXPECT_FALSE(m.text.tie_word_embeddings);
  ASSERT_TRUE(m.vision);  // LlavaConfig's default vision tower: CLIP ViT-L/14-336
  EXPECT_EQ(m.vision->hidden_size, 1024);
  EXPECT_EQ(m.vision->num_hidden_layers, 24);
  EXPECT_EQ(m.vision->num_patches(), 576);
  EXPECT_EQ(m.image_token_index, 32000);
  EXPECT_EQ(m.vision_feature_layer, -2);
  EXPECT_EQ(m.projector_act, "gelu");
}

TEST(ModelConfig, PresentVisionConfigGetsClipVisionDefaults) {
  TempDir d;
  write_text(d / "config.json", R"({"model_type":"llava","vision_config":{"hidden_size":64,"num_attention_heads":4},
      "text_config":{"rope_parameters":{"rope_type":"default","rope_theta":500000.0}}})");
  const ModelConfig m = read_model_config(d.path());
  EXPECT_EQ(m.vision->patch_size, 32);
  EXPECT_EQ(m.vision->image_size, 224);
  EXPECT_EQ(m.vision->num_hidden_layers, 12);
  EXPECT_DOUBLE_EQ(m.text.rope_theta, 500000.0);
  EXPECT_DOUBLE_EQ(m.text.rms_norm_eps, 1e-6);  // transformers' default when absent
}

TEST(ModelConfig, OriginalLlava) {
  TempDir d;
  write_text(d / "config.json", R"({"architectures":["LlavaLlamaForCausalLM"],"model_type":"llava_llama",
      "hidden_size":64,"num_attention_heads":4,"num_hidden_layers":2,"intermediate_size":128,"vocab_size":100,
      "mm_vision_tower":"openai/clip-vit-large-patch14-336","mm_projector_type":"mlp2x_gelu",
      "mm_vision_select_layer":-2,"mm_vision_select_feature":"patch","image_aspect_ratio":"pad"})");
  const ModelConfig m = read_model_config(d.path());
  EXPECT_EQ(m.arch, Architecture::LlavaOriginal);
  EXPECT_EQ(m.projector_layers, 2);
  EXPECT_EQ(m.image_token_index, -200);
  EXPECT_EQ(m.vision_tower_name, "openai/clip-vit-large-patch14-336");
  EXPECT_FALSE(m.vision);  // comes from the CLIP directory
}

TEST(ModelConfig, BadConfigs) {
  TempDir d;
  expect_bad_input([&] { read_model_config(d.path()); }, {"config.json", "missing"});
  write_text(d / "config.json", "{");
  expect_bad_input([&] { read_model_config(d.path()); }, {"config.json", "not valid JSON"});
  write_text(d / "config.json", R"({"architectures":["MistralForCausalLM"]})");
  expect_bad_input([&] { read_model_config(d.path()); }, {"unsupported architecture 'MistralForCausalLM'", "LlavaForConditionalGeneration"});
  write_text(d / "config.json", R"({"hidden_size":64})");
  expect_bad_input([&] { read_model_config(d.path()); }, {"lacks both 'architectures' and 'model_type'"});
  write_text(d / "config.json", R"({"model_type":"llama","hidden_size":"big"})");
  expect_bad_input([&] { read_model_config(d.path()); }, {"'hidden_size' must be an integer"});
  write_text(d / "config.json", R"({"model_type":"llama","hidden_size":100,"num_attention_heads":3})");
  expect_bad_input([&] { read_model_config(d.path()); }, {"not divisible"});
  write_text(d / "config.json", R"({"model_type":"llama","num_attention_heads":32,"num_key_value_heads":5})");
  expect_bad_input([&] { read_model_config(d.path()); }, {"num_key_value_heads"});
  write_text(d / "config.json", R"({"architectures":["LlavaLlamaForCausalLM"],"hidden_size":64,"num_attention_heads":4})");
  expect_bad_input([&] { read_model_config(d.path()); }, {"mm_vision_tower"});
  write_text(d / "config.json", R"({"architectures":["LlavaLlamaForCausalLM"],"hidden_size":64,"num_attention_heads":4,
      "mm_vision_tower":"clip","mm_projector_type":"qformer"})");
  expect_bad_input([&] { read_model_config(d.path()); }, {"mm_projector_type 'qformer' is not supported", "mlp<N>x_gelu"});
  write_text(d / "config.json", R"({"model_type":"llava","text_config":{"model_type":"mistral"}})");
  expect_bad_input([&] { read_model_config(d.path()); }, {"text_config.model_type 'mistral'"});
  write_text(d / "config.json", R"({"model_type":"llava","text_config":{"num_hidden_layers":0}})");
  expect_bad_input([&] { read_model_config(d.path()); }, {"'num_hidden_layers' must be positive"});
}

TEST(NameMapping, EveryLayoutToCanonicalAndBack) {
  struct Row {
    NameScheme s;
    std::string source, canonical;
  };
  const std::vector<Row> rows{
      {NameScheme::LlavaHfLegacy, "language_model.model.layers.3.self_attn.q_proj.weight", "lm.layers.3.self_attn.q_proj.weight"},
      {NameScheme::LlavaHfLegacy, "language_model.lm_head.weight", "lm_head.weight"},
      {NameScheme::LlavaHfLegacy, "vision_tower.vision_model.pre_layrnorm.bias", "vision.pre_layrnorm.bias"},
      {NameScheme::LlavaHfLegacy, "multi_modal_projector.linear_2.weight", "projector.linear_2.weight"},
      {NameScheme::LlavaHf, "model.language_model.embed_tokens.weight", "lm.embed_tokens.weight"},
      {NameScheme::LlavaHf, "lm_head.weight", "lm_head.weight"},
      {NameScheme::LlavaHf, "model.vision_tower.vision_model.encoder.layers.0.mlp.fc1.bias", "vision.encoder.layers.0.mlp.fc1.bias"},
      {NameScheme::LlavaHf, "model.multi_modal_projector.linear_1.bias", "projector.linear_1.bias"},
      {NameScheme::LlavaOriginal, "model.layers.0.mlp.up_proj.weight", "lm.layers.0.mlp.up_proj.weight"},
      {NameScheme::LlavaOriginal, "model.mm_projector.0.weight", "projector.linear_1.weight"},
      {NameScheme::LlavaOriginal, "model.mm_projector.2.bias", "projector.linear_2.bias"},
      {NameScheme::LlavaOriginal, "lm_head.weight", "lm_head.weight"},
      {NameScheme::Llama, "model.norm.weight", "lm.norm.weight"},
      {NameScheme::ClipDir, "vision_model.embeddings.class_embedding", "vision.embeddings.class_embedding"},
  };
  // transformers 5 saves CLIP towers without the vision_model. level.
  EXPECT_EQ(to_canonical(NameScheme::LlavaHfLegacy, "vision_tower.encoder.layers.1.mlp.fc2.bias").value_or(""),
            "vision.encoder.layers.1.mlp.fc2.bias");
  EXPECT_EQ(to_canonical(NameScheme::ClipDir, "pre_layrnorm.weight").value_or(""), "vision.pre_layrnorm.weight");
  for (const auto& r : rows) {
    EXPECT_EQ(to_canonical(r.s, r.source).value_or("<none>"), r.canonical) << r.source;
    if (r.s != NameScheme::ClipDir) {
      EXPECT_EQ(from_canonical(r.s, r.canonical), r.source) << r.canonical;
    }
  }
  EXPECT_EQ(to_canonical(NameScheme::LlavaOriginal, "model.mm_projector.weight").value_or(""), "projector.linear_1.weight");
  EXPECT_FALSE(to_canonical(NameScheme::LlavaOriginal, "model.mm_projector.1.weight"));
  EXPECT_FALSE(to_canonical(NameScheme::LlavaHf, "language_model.model.norm.weight"));
  EXPECT_TRUE(is_ignored_tensor(NameScheme::Llama, "model.layers.0.self_attn.rotary_emb.inv_freq"));
  EXPECT_TRUE(is_ignored_tensor(NameScheme::ClipDir, "text_model.embeddings.token_embedding.weight"));
}

// A 1-layer LLaMA (hidden 8, 2 heads, 1 kv head, intermediate 16, vocab 10), tensors by hand.
std::vector<TensorSpec> tiny_llama_tensors() {
  return {{"model.embed_tokens.weight", DType::F32, {10, 8}},
          {"model.layers.0.self_attn.q_proj.weight", DType::F32, {8, 8}},
          {"model.layers.0.self_attn.k_proj.weight", DType::F32, {4, 8}},
          {"model.layers.0.self_attn.v_proj.weight", DType::F32, {4, 8}},
          {"model.layers.0.self_attn.o_proj.weight", DType::F32, {8, 8}},
          {"model.layers.0.mlp.gate_proj.weight", DType::F32, {16, 8}},
          {"model.layers.0.mlp.up_proj.weight", DType::F32, {16, 8}},
          {"model.layers.0.mlp.down_proj.weight", DType::F32, {8, 16}},
          {"model.layers.0.input_layernorm.weight", DType::F32, {8}},
          {"model.layers.0.post_attention_layernorm.weight", DType::F32, {8}},
          {"model.norm.weight", DType::F32, {8}},
          {"lm_head.weight", DType::F32, {10, 8}}};
}

void write_tiny_llama(const std::filesystem::path& dir, std::vector<TensorSpec> specs) {
  write_text(dir / "config.json", R"({"architectures":["LlamaForCausalLM"],"hidden_size":8,"num_attention_heads":2,
      "num_key_value_heads":1,"num_hidden_layers":1,"intermediate_size":16,"vocab_size":10})");
  SafetensorsWriter w(dir / "model.safetensors", specs);
  for (const auto& s : specs) w.write(s.name, std::vector<char>(s.nbytes()).data(), s.nbytes());
  w.commit();
}

TEST(Checkpoint, TinyLlamaIsValid) {
  TempDir d;
  write_tiny_llama(d.path(), tiny_llama_tensors());
  const Checkpoint ck = Checkpoint::open(d.path());
  EXPECT_TRUE(ck.problems().empty()) << ck.problems()[0].message;
  EXPECT_EQ(ck.scheme(), NameScheme::Llama);
  // 80 + 64 + 32 + 32 + 64 + 128 * 3 + 8 + 8 + 8 + 80 = 760, counted by hand
  EXPECT_EQ(ck.parameter_count(), 760u);
  EXPECT_EQ(ck.parameter_count("lm_head."), 80u);
  EXPECT_EQ(ck.source_name("lm.norm.weight"), "model.norm.weight");
  EXPECT_EQ(ck.names().front(), "lm.embed_tokens.weight");
  EXPECT_EQ(ck.view("lm.layers.0.self_attn.k_proj.weight").shape(), (std::vector<int64_t>{4, 8}));
}

TEST(Checkpoint, ReportsMissingUnexpectedAndMisShapedTensors) {
  TempDir d;
  auto specs = tiny_llama_tensors();
  specs.erase(specs.begin() + 7);                         // down_proj missing
  specs[1].shape = {8, 4};                                // q_proj mis-shaped
  specs.push_back({"model.layers.1.mlp.up_proj.weight", DType::F32, {16, 8}});  // a layer too many
  specs.push_back({"model.layers.0.self_attn.rotary_emb.inv_freq", DType::F32, {2}});  // ignored buffer
  write_tiny_llama(d.path(), specs);
  const Checkpoint ck = Checkpoint::open(d.path());
  ASSERT_EQ(ck.problems().size(), 3u);
  std::string all;
  for (const auto& p : ck.problems()) all += p.message + "\n";
  EXPECT_NE(all.find("missing tensor 'model.layers.0.mlp.down_proj.weight' (expected [8, 16])"), std::string::npos) << all;
  EXPECT_NE(all.find("tensor 'model.layers.0.self_attn.q_proj.weight' has shape [8, 4], config.json implies [8, 8]"),
            std::string::npos) << all;
  EXPECT_NE(all.find("unexpected tensor 'model.layers.1.mlp.up_proj.weight'"), std::string::npos) << all;
  expect_bad_input([&] { ck.require_valid(); }, {"and 2 more problems", "uqmerge inspect"});
}

TEST(Checkpoint, OriginalLlavaWithoutLocalVisionTower) {
  TempDir d;
  write_text(d / "config.json", R"({"architectures":["LlavaLlamaForCausalLM"],"hidden_size":8,"num_attention_heads":2,
      "num_hidden_layers":1,"intermediate_size":16,"vocab_size":10,"mm_vision_tower":"openai/clip-vit-large-patch14-336",
      "mm_hidden_size":16,"mm_projector_type":"mlp2x_gelu"})");
  SafetensorsWriter w(d / "model.safetensors", {{"model.norm.weight", DType::F32, {8}}});
  const float z[8] = {};
  w.write("model.norm.weight", z, sizeof z);
  w.commit();
  const Checkpoint ck = Checkpoint::open(d.path());
  EXPECT_FALSE(ck.valid());
  expect_bad_input([&] { ck.require_valid(); }, {"openai/clip-vit-large-patch14-336", "--vision-tower"});
}

}  // namespace
}  // namespace uqmerge
