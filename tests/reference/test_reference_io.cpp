// io against independent tools: files written by the Python safetensors package and
// checkpoints saved by transformers (tests/reference/*.py make them; UQMERGE_REF_DIR points
// there), and files written here for the Python package to read (ReferenceWrite).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

#include "uqmerge/io/checkpoint.hpp"

namespace uqmerge {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

fs::path ref_dir(const char* sub) {
  const char* d = std::getenv("UQMERGE_REF_DIR");
  if (!d) throw std::runtime_error("UQMERGE_REF_DIR not set (run through ctest)");
  return fs::path(d) / sub;
}

json read_json(const fs::path& p) {
  std::ifstream in(p);
  return json::parse(in);
}

std::string to_hex(const std::byte* p, size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  s.reserve(2 * n);
  for (size_t i = 0; i < n; ++i) {
    const auto b = static_cast<uint8_t>(p[i]);
    s += digits[b >> 4];
    s += digits[b & 15];
  }
  return s;
}

double element(const TensorView& v, int64_t i) {
  const std::byte* p = v.data();
  switch (v.dtype()) {
    case DType::F64: { double x; std::memcpy(&x, p + 8 * i, 8); return x; }
    case DType::F32: { float x; std::memcpy(&x, p + 4 * i, 4); return x; }
    case DType::F16: { uint16_t x; std::memcpy(&x, p + 2 * i, 2); return f16_to_float(x); }
    case DType::BF16: { uint16_t x; std::memcpy(&x, p + 2 * i, 2); return bf16_to_float(x); }
    default: break;
  }
  throw std::runtime_error("not a float tensor");
}

TEST(ReferenceRead, PythonSafetensorsFiles) {
  const fs::path dir = ref_dir("safetensors");
  const json manifest = read_json(dir / "manifest.json");
  ASSERT_FALSE(manifest.empty());
  for (auto it = manifest.begin(); it != manifest.end(); ++it) {
    auto f = SafetensorsFile::open(dir / it.key());
    for (auto m = it.value()["metadata"].begin(); m != it.value()["metadata"].end(); ++m)
      EXPECT_EQ(f->metadata().at(m.key()), m.value().get<std::string>());
    const json& tensors = it.value()["tensors"];
    EXPECT_EQ(f->tensors().size(), tensors.size());
    for (auto t = tensors.begin(); t != tensors.end(); ++t) {
      TensorView v = f->view(t.key());
      EXPECT_EQ(dtype_name(v.dtype()), t.value()["dtype"].get<std::string>()) << t.key();
      EXPECT_EQ(v.shape(), t.value()["shape"].get<std::vector<int64_t>>()) << t.key();
      EXPECT_EQ(to_hex(v.data(), v.nbytes()), t.value()["hex"].get<std::string>()) << t.key();
    }
  }
}

TEST(ReferenceRead, TransformersCheckpointsAndConfigs) {
  const fs::path dir = ref_dir("checkpoints");
  const json manifest = read_json(dir / "manifest.json");
  ASSERT_GE(manifest.size(), 8u);
  for (auto it = manifest.begin(); it != manifest.end(); ++it) {
    SCOPED_TRACE(it.key());
    const json& m = it.value();
    ModelConfig cfg;
    std::optional<Checkpoint> ck;
    if (m.value("config_only", false)) {
      cfg = read_model_config(dir / it.key());
    } else {
      Checkpoint::Options opts;
      if (m.contains("vision_tower_dir")) opts.vision_tower_dir = dir / m["vision_tower_dir"].get<std::string>();
      ck = Checkpoint::open(dir / it.key(), opts);
      for (const auto& p : ck->problems()) ADD_FAILURE() << p.file << ": " << p.message;
      cfg = ck->config();
    }
    EXPECT_EQ(architecture_name(cfg.arch), m["arch"].get<std::string>());
    const json& t = m["text"];
    EXPECT_EQ(cfg.text.vocab_size, t["vocab_size"].get<int64_t>());
    EXPECT_EQ(cfg.text.hidden_size, t["hidden_size"].get<int64_t>());
    EXPECT_EQ(cfg.text.intermediate_size, t["intermediate_size"].get<int64_t>());
    EXPECT_EQ(cfg.text.num_hidden_layers, t["num_hidden_layers"].get<int64_t>());
    EXPECT_EQ(cfg.text.num_attention_heads, t["num_attention_heads"].get<int64_t>());
    EXPECT_EQ(cfg.text.num_key_value_heads, t["num_key_value_heads"].get<int64_t>());
    EXPECT_EQ(cfg.text.head_dim, t["head_dim"].get<int64_t>());
    EXPECT_DOUBLE_EQ(cfg.text.rms_norm_eps, t["rms_norm_eps"].get<double>());
    EXPECT_DOUBLE_EQ(cfg.text.rope_theta, t["rope_theta"].get<double>());
    EXPECT_EQ(cfg.text.tie_word_embeddings, t["tie_word_embeddings"].get<bool>());
    if (m.contains("vision")) {
      ASSERT_TRUE(cfg.vision);
      const json& v = m["vision"];
      EXPECT_EQ(cfg.vision->hidden_size, v["hidden_size"].get<int64_t>());
      EXPECT_EQ(cfg.vision->intermediate_size, v["intermediate_size"].get<int64_t>());
      EXPECT_EQ(cfg.vision->num_hidden_layers, v["num_hidden_layers"].get<int64_t>());
      EXPECT_EQ(cfg.vision->num_attention_heads, v["num_attention_heads"].get<int64_t>());
      EXPECT_EQ(cfg.vision->image_size, v["image_size"].get<int64_t>());
      EXPECT_EQ(cfg.vision->patch_size, v["patch_size"].get<int64_t>());
      EXPECT_DOUBLE_EQ(cfg.vision->layer_norm_eps, v["layer_norm_eps"].get<double>());
    }
    if (m.contains("image_token_index")) {
      EXPECT_EQ(cfg.image_token_index, m["image_token_index"].get<int64_t>());
    }
    if (!ck) continue;
    // transformers' module parameters == tensors under canonical names (buffers excluded).
    EXPECT_EQ(ck->parameter_count(), m["parameters"].get<uint64_t>());
    const std::string scheme = m["scheme"].get<std::string>();
    const NameScheme s = scheme == "llava_hf" ? NameScheme::LlavaHf
                         : scheme == "llava_hf_legacy" ? NameScheme::LlavaHfLegacy
                         : scheme == "llava_original" ? NameScheme::LlavaOriginal : NameScheme::Llama;
    EXPECT_EQ(ck->scheme(), s);
    if (m.contains("shards")) {
      EXPECT_EQ(ck->weights().files().size(), m["shards"].get<size_t>());
    }
    if (m.contains("dtype")) {
      EXPECT_EQ(ck->dtype_histogram().begin()->first, *parse_dtype(m["dtype"].get<std::string>()));
    }
    for (auto sum = m["sums"].begin(); sum != m["sums"].end(); ++sum) {
      const auto canonical = to_canonical(s, sum.key());
      ASSERT_TRUE(canonical) << sum.key();
      TensorView v = ck->view(*canonical);
      EXPECT_EQ(ck->source_name(*canonical), sum.key());
      double acc = 0;
      for (int64_t i = 0; i < v.numel(); ++i) acc += element(v, i);
      const double want = sum.value().get<double>();
      EXPECT_NEAR(acc, want, 1e-9 * (1 + std::abs(want))) << sum.key();
    }
  }
}

// v(i) of safetensors_ref.py's docstring, as raw bytes of `dtype`.
std::vector<uint8_t> formula_bytes(DType d, int n) {
  std::vector<uint8_t> out(n * dtype_size(d));
  for (int i = 0; i < n; ++i) {
    const int v = (7 * i) % 23 - 11;
    uint8_t* p = out.data() + i * dtype_size(d);
    switch (d) {
      case DType::F64: { const double x = v; std::memcpy(p, &x, 8); break; }
      case DType::F32: { const float x = static_cast<float>(v); std::memcpy(p, &x, 4); break; }
      case DType::F16: { const uint16_t x = float_to_f16(static_cast<float>(v)); std::memcpy(p, &x, 2); break; }
      case DType::BF16: { const uint16_t x = float_to_bf16(static_cast<float>(v)); std::memcpy(p, &x, 2); break; }
      case DType::I64: { const int64_t x = v; std::memcpy(p, &x, 8); break; }
      case DType::I32: { const int32_t x = v; std::memcpy(p, &x, 4); break; }
      case DType::I16: { const int16_t x = static_cast<int16_t>(v); std::memcpy(p, &x, 2); break; }
      case DType::I8: *p = static_cast<uint8_t>(static_cast<int8_t>(v)); break;
      case DType::U8: *p = static_cast<uint8_t>((7 * i) % 23); break;
      case DType::BOOL: *p = i % 3 == 0; break;
    }
  }
  return out;
}

TEST(ReferenceWrite, FilesForThePythonPackage) {
  const fs::path dir = ref_dir("from_cpp");
  fs::create_directories(dir / "sharded");
  const std::vector<DType> all{DType::F64, DType::F32, DType::F16, DType::BF16, DType::I64,
                               DType::I32, DType::I16, DType::I8, DType::U8, DType::BOOL};
  std::vector<TensorSpec> specs;
  for (DType d : all) specs.push_back({"t_" + std::string(dtype_name(d)), d, {3, 5}});
  SafetensorsWriter w(dir / "single.safetensors", specs, {{"format", "pt"}, {"writer", "uqmerge"}});
  for (DType d : all) {
    const auto b = formula_bytes(d, 15);
    w.write("t_" + std::string(dtype_name(d)), b.data(), b.size());
  }
  w.commit();

  std::vector<TensorSpec> sharded;
  for (int k = 0; k < 6; ++k) sharded.push_back({"layer." + std::to_string(k) + ".weight", DType::F32, {3, 5}});
  const ShardPlan plan = plan_shards(sharded, 120);  // 60 bytes each: 2 per shard
  for (const auto& s : plan.shards) {
    SafetensorsWriter sw(dir / "sharded" / s.filename, s.tensors, {{"format", "pt"}});
    const auto b = formula_bytes(DType::F32, 15);
    for (const auto& t : s.tensors) sw.write(t.name, b.data(), b.size());
    sw.commit();
  }
  write_safetensors_index(dir / "sharded", plan);
  EXPECT_EQ(plan.shards.size(), 3u);
}

}  // namespace
}  // namespace uqmerge
