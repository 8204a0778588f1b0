// The demo zoo's trainer (see src/zoo/trainer.hpp, docs/demo.md). The forward pass is the
// inference engine's own (model::LlavaModel over trainable tensors), so what is trained is
// exactly what uqmerge and transformers later run. Training-only heads (per-patch colour/shape
// classifiers, the option pointer) live here and are never saved.
#include "trainer_impl.hpp"

#include <ATen/Version.h>
#include <stdlib.h>

#include <cctype>

namespace uqmerge::zoo::detail {

namespace fs = std::filesystem;

std::string llava_config_json(const Arch& a) {
  return fmt::format(R"({{
  "architectures": ["LlavaForConditionalGeneration"],
  "model_type": "llava",
  "dtype": "float32",
  "image_token_index": {image},
  "image_seq_length": {patches},
  "projector_hidden_act": "gelu",
  "multimodal_projector_bias": true,
  "vision_feature_layer": -2,
  "vision_feature_select_strategy": "default",
  "tie_word_embeddings": false,
  "text_config": {{
    "model_type": "llama", "vocab_size": {vocab}, "hidden_size": {th}, "intermediate_size": {ti},
    "num_hidden_layers": {tl}, "num_attention_heads": {tn}, "num_key_value_heads": {tn},
    "max_position_embeddings": {tp}, "rms_norm_eps": 1e-05, "rope_theta": 10000.0, "hidden_act": "silu",
    "bos_token_id": 1, "eos_token_id": 2, "tie_word_embeddings": false, "attention_bias": false, "mlp_bias": false
  }},
  "vision_config": {{
    "model_type": "clip_vision_model", "hidden_size": {vh}, "intermediate_size": {vi}, "num_hidden_layers": {vl},
    "num_attention_heads": {vn}, "num_channels": 3, "image_size": {s}, "patch_size": {p},
    "hidden_act": "quick_gelu", "layer_norm_eps": 1e-05, "projection_dim": {vh}
  }}
}}
)",
                     fmt::arg("image", a.image_token), fmt::arg("patches", (a.image_size / a.patch_size) * (a.image_size / a.patch_size)),
                     fmt::arg("vocab", a.vocab), fmt::arg("th", a.t_hidden), fmt::arg("ti", a.t_inter),
                     fmt::arg("tl", a.t_layers), fmt::arg("tn", a.t_heads), fmt::arg("tp", a.max_positions),
                     fmt::arg("vh", a.v_hidden), fmt::arg("vi", a.v_inter), fmt::arg("vl", a.v_layers),
                     fmt::arg("vn", a.v_heads), fmt::arg("s", a.image_size), fmt::arg("p", a.patch_size));
}

std::string pin_numerics() {
  if (!std::getenv("UQMERGE_ZOO_UNPINNED")) at::set_num_threads(1);  // the rest: zoo::pin_training_environment
  std::string cap = at::get_cpu_capability();  // "AVX2", "AVX512", "DEFAULT", ...
  for (auto& ch : cap) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  return cap;
}

Trainer::Trainer(const Arch& arch, const fs::path& init_dir, const fs::path& tokenizer_dir, uint64_t seed,
                 double steps_scale, dist::Communicator& comm)
    : impl_(std::make_unique<Impl>(arch, init_dir, tokenizer_dir, seed, steps_scale, comm)) {}
Trainer::~Trainer() = default;

void Trainer::write_init(const Arch& a, const fs::path& dir, uint64_t seed) {
  fs::create_directories(dir);
  write_file_atomic(dir / "config.json", llava_config_json(a));
  const ModelConfig cfg = read_model_config(dir);
  at::Generator gen = at::detail::createCPUGenerator(seed);
  std::vector<TensorSpec> specs;
  std::vector<at::Tensor> values;
  const int grid = a.image_size / a.patch_size;
  const double out_std = 0.02 / std::sqrt(2.0 * a.t_layers);
  for (const auto& e : expected_tensors(cfg)) {
    const std::string& n = e.name;
    at::Tensor t;
    const auto ends = [&](const std::string& suf) { return n.size() >= suf.size() && n.compare(n.size() - suf.size(), suf.size(), suf) == 0; };
    if (n == tensors::ClipNames{}.position_embedding) t = sincos_positions(grid, a.v_hidden);
    else if (ends("norm.weight") || ends("layernorm.weight") || ends("layer_norm1.weight") || ends("layer_norm2.weight") ||
             ends("pre_layrnorm.weight") || ends("post_layernorm.weight"))
      t = at::ones(e.shape);
    else if (ends(".bias")) t = at::zeros(e.shape);
    else {
      const double sd = ends("o_proj.weight") || ends("down_proj.weight") ? out_std : 0.02;
      t = at::normal(0.0, sd, e.shape, gen);
    }
    specs.push_back({from_canonical(NameScheme::LlavaHfLegacy, n), DType::F32, e.shape});
    values.push_back(t.contiguous());
  }
  SafetensorsWriter w(dir / "model.safetensors", specs, {{"format", "pt"}});
  for (size_t i = 0; i < specs.size(); ++i) w.write(specs[i].name, values[i].data_ptr(), values[i].nbytes());
  w.commit();
}

namespace {
template <class F>
void for_batches(const EvalSet& set, size_t batch, F&& f) {
  for (size_t i = 0; i < set.items.size(); i += batch) f(i, std::min(set.items.size(), i + batch));
}
}  // namespace

Trainer::Scores Trainer::evaluate(const EvalSet& set, bool blind) {
  Impl& m = *impl_;
  int64_t correct = 0;
  double entropy = 0;
  for_batches(set, 32, [&](size_t lo, size_t hi) {
    std::vector<Example> ex;
    for (size_t i = lo; i < hi; ++i) {
      Example e = m.mc_example(set.items[i], LabelRule::Correct, true, false);
      m.add_image(e, set.scenes[i], blind);
      ex.push_back(std::move(e));
    }
    Batch b = m.collate(ex);
    const size_t k = set.items[lo].options.size() + 2;
    const std::vector<int64_t> rows(m.letters.begin(), m.letters.begin() + static_cast<int64_t>(k));
    const at::Tensor img = m.model->project(m.model->vision_features(b.pixels));
    const at::Tensor logits = m.model->last_logits(b.seqs, img, rows);
    const at::Tensor pred = logits.argmax(-1);
    for (size_t i = lo; i < hi; ++i) correct += pred[static_cast<int64_t>(i - lo)].item<int64_t>() == set.items[i].answer;
    const at::Tensor logp = at::log_softmax(logits.to(at::kDouble), -1);
    entropy += -(logp.exp() * logp).sum().item<double>();
  });
  const double n = static_cast<double>(set.items.size());
  return {100.0 * static_cast<double>(correct) / n, entropy / n};
}

namespace {
bool trained_tensor(const std::string& name) { return name.rfind("projector.", 0) == 0 || name.rfind("lm", 0) == 0; }
std::map<std::string, at::Tensor> read_weights(const Checkpoint& layout, const fs::path& dir) {
  const Checkpoint ck = Checkpoint::open(dir);
  std::map<std::string, at::Tensor> out;
  for (const auto& name : layout.names()) out.emplace(name, to_torch(ck.view(name)).to(at::kDouble).clone());
  return out;
}
}  // namespace

void Trainer::load_average(const std::vector<fs::path>& dirs) {
  Impl& m = *impl_;
  UQ_CHECK(!dirs.empty(), "load_average needs checkpoints");
  at::NoGradGuard ng;
  std::map<std::string, at::Tensor> sum;
  for (const auto& d : dirs)
    for (auto& [name, t] : read_weights(m.ck, d)) {
      auto it = sum.find(name);
      if (it == sum.end()) sum.emplace(name, t);
      else it->second.add_(t);
    }
  for (auto& [name, t] : m.params) t.copy_(sum.at(name).div_(static_cast<double>(dirs.size())));
}

Trainer::TaskVectors Trainer::task_vectors(const std::vector<fs::path>& dirs) const {
  const Impl& m = *impl_;
  at::NoGradGuard ng;
  std::vector<at::Tensor> taus;
  double base_sq = 0;
  for (const auto& [name, t] : m.base)
    if (trained_tensor(name)) base_sq += t.to(at::kDouble).pow(2).sum().item<double>();
  for (const auto& d : dirs) {
    std::vector<at::Tensor> parts;
    for (auto& [name, t] : read_weights(m.ck, d))
      if (trained_tensor(name)) parts.push_back((t - m.base.at(name).to(at::kDouble)).reshape({-1}));
    taus.push_back(at::cat(parts));
  }
  TaskVectors out;
  for (const auto& a : taus) {
    out.relative_norm.push_back(a.norm().item<double>() / std::sqrt(base_sq));
    auto& row = out.cosine.emplace_back();
    for (const auto& b : taus) row.push_back((a.dot(b) / (a.norm() * b.norm())).item<double>());
  }
  return out;
}

void Trainer::save(const fs::path& dir, const std::string& card) const {
  const Impl& m = *impl_;
  const fs::path tmp = dir.string() + ".tmp";
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  std::vector<TensorSpec> specs;
  for (const auto& name : m.ck.names())
    specs.push_back({m.ck.source_name(name), DType::F32, m.ck.info(name).shape});
  {
    SafetensorsWriter w(tmp / "model.safetensors", specs, {{"format", "pt"}});
    for (const auto& name : m.ck.names()) {
      const at::Tensor t = m.params.at(name).contiguous();
      w.write(m.ck.source_name(name), t.data_ptr(), t.nbytes());
    }
    w.commit();
  }
  write_file_atomic(tmp / "config.json", llava_config_json(m.arch));
  write_file_atomic(tmp / "generation_config.json", "{\"bos_token_id\": 1, \"eos_token_id\": 2}\n");
  const int S = m.arch.image_size;
  write_file_atomic(tmp / "preprocessor_config.json",
                    fmt::format(R"({{"image_processor_type": "CLIPImageProcessor", "processor_class": "LlavaProcessor",
 "do_resize": true, "size": {{"shortest_edge": {s}}}, "do_center_crop": true, "crop_size": {{"height": {s}, "width": {s}}},
 "do_rescale": true, "rescale_factor": 0.00392156862745098, "do_normalize": true, "do_convert_rgb": true, "resample": 3,
 "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711]}}
)",
                                fmt::arg("s", S)));
  write_file_atomic(tmp / "processor_config.json",
                    fmt::format(R"({{"processor_class": "LlavaProcessor", "image_token": "<image>", "patch_size": {p},
 "vision_feature_select_strategy": "default", "num_additional_image_tokens": 1}}
)",
                                fmt::arg("p", m.arch.patch_size)));
  for (const char* f : {"tokenizer.model", "tokenizer_config.json", "special_tokens_map.json"})
    fs::copy_file(m.tok_dir / f, tmp / f, fs::copy_options::overwrite_existing);
  write_file_atomic(tmp / "README.md", card);
  fs::remove_all(dir);
  fs::rename(tmp, dir);
}

}  // namespace uqmerge::zoo::detail
