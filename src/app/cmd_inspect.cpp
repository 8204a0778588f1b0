// `uqmerge inspect DIR`: what a checkpoint is and everything wrong with it, without reading
// tensor data (headers only). `uqmerge inspect FILE.safetensors`: that file's header (every
// tensor's name, dtype, shape and size, the metadata), validated the same way.
#include <fmt/format.h>

#include <map>

#include "commands.hpp"
#include "uqmerge/io/checkpoint.hpp"
#include "uqmerge/util/error.hpp"

namespace uqmerge::app {

namespace {
std::string human_count(uint64_t n) {
  if (n >= 1'000'000'000) return fmt::format("{:.2f} B", n / 1e9);
  if (n >= 1'000'000) return fmt::format("{:.2f} M", n / 1e6);
  if (n >= 1'000) return fmt::format("{:.1f} K", n / 1e3);
  return std::to_string(n);
}
std::string human_bytes(uint64_t n) {
  if (n >= (1ull << 30)) return fmt::format("{:.2f} GiB", n / double(1ull << 30));
  if (n >= (1ull << 20)) return fmt::format("{:.1f} MiB", n / double(1ull << 20));
  if (n >= (1ull << 10)) return fmt::format("{:.1f} KiB", n / double(1ull << 10));
  return fmt::format("{} B", n);
}
// A bare .safetensors file: header only, every tensor listed.
int inspect_file(const std::filesystem::path& path) {
  const auto f = SafetensorsFile::open(path);  // malformed header: one-line bad-input error
  uint64_t params = 0;
  std::map<DType, size_t> dtypes;
  for (const auto& t : f->tensors()) {
    params += static_cast<uint64_t>(t.numel());
    ++dtypes[t.dtype];
  }
  std::string hist;
  for (const auto& [d, n] : dtypes) hist += fmt::format("{}{}: {} tensors", hist.empty() ? "" : ", ", dtype_name(d), n);
  fmt::print("file          {}  {}\n", path.string(), human_bytes(f->file_size()));
  fmt::print("tensors       {} ({}), {} parameters\n", f->tensors().size(), hist.empty() ? "none" : hist, human_count(params));
  for (const auto& [k, v] : f->metadata()) fmt::print("metadata      {} = {}\n", k, v);
  for (const auto& t : f->tensors())
    fmt::print("  {:<60} {:<5} {:<20} {}\n", t.name, dtype_name(t.dtype), shape_string(t.shape), human_bytes(t.nbytes()));
  return kExitOk;
}
}  // namespace

int cmd_inspect(const InspectArgs& a) {
  if (std::filesystem::is_regular_file(a.dir)) {
    if (std::filesystem::path(a.dir).extension() != ".safetensors")
      throw_bad_input(a.dir, "not a model directory or a .safetensors file (pass the checkpoint's directory)");
    return inspect_file(a.dir);
  }
  Checkpoint::Options opts;
  if (a.vision_tower) opts.vision_tower_dir = *a.vision_tower;
  const Checkpoint ck = Checkpoint::open(a.dir, opts);
  const ModelConfig& m = ck.config();
  const LlamaConfig& t = m.text;

  fmt::print("checkpoint    {}\n", ck.dir().string());
  fmt::print("architecture  {}  [tensor names: {}]\n", architecture_name(m.arch), name_scheme_name(ck.scheme()));
  fmt::print("language      LLaMA: {} layers, hidden {}, heads {} (kv {}), head_dim {}, intermediate {}, "
             "vocab {}, rms_norm_eps {:g}, rope_theta {:g}, tied head {}\n",
             t.num_hidden_layers, t.hidden_size, t.num_attention_heads, t.num_key_value_heads, t.head_dim,
             t.intermediate_size, t.vocab_size, t.rms_norm_eps, t.rope_theta, t.tie_word_embeddings ? "yes" : "no");
  if (m.vision) {
    const ClipVisionConfig& v = *m.vision;
    fmt::print("vision        CLIP: {} layers, hidden {}, heads {}, intermediate {}, image {} px, patch {} "
               "({} patches), feature layer {}, strategy {}{}\n",
               v.num_hidden_layers, v.hidden_size, v.num_attention_heads, v.intermediate_size, v.image_size,
               v.patch_size, v.num_patches(), m.vision_feature_layer, m.vision_feature_select_strategy,
               ck.vision_dir() ? " [from " + ck.vision_dir()->string() + "]" : "");
  }
  if (m.arch != Architecture::Llama) {
    fmt::print("projector     {} linear layer(s), activation {}, bias {}\n", m.projector_layers, m.projector_act,
               m.projector_bias ? "yes" : "no");
    fmt::print("image token   {}{}\n", m.image_token_index,
               m.arch == Architecture::LlavaOriginal ? " (sentinel splitting the sequence)" : " (one per visual feature)");
  }
  std::string dtypes;
  for (const auto& [d, n] : ck.dtype_histogram()) dtypes += fmt::format("{}{}: {} tensors", dtypes.empty() ? "" : ", ", dtype_name(d), n);
  fmt::print("dtypes        {}{}\n", dtypes,
             m.torch_dtype ? fmt::format(" (config torch_dtype {})", dtype_torch_name(*m.torch_dtype)) : "");
  fmt::print("parameters    {} total ({}): language {}, vision {}, projector {}, lm_head {}\n",
             human_count(ck.parameter_count()), human_bytes(ck.parameter_bytes()), human_count(ck.parameter_count("lm.")),
             human_count(ck.parameter_count("vision.")), human_count(ck.parameter_count("projector.")),
             human_count(ck.parameter_count("lm_head.")));
  auto print_files = [](const SafetensorsSet& set, const char* label) {
    fmt::print("{} ({}{})\n", label, set.files().size(), set.has_index() ? ", with model.safetensors.index.json" : "");
    for (const auto& f : set.files())
      fmt::print("  {}  {}  {} tensors\n", f->path().filename().string(), human_bytes(f->file_size()), f->tensors().size());
  };
  print_files(ck.weights(), "files");
  if (ck.vision_weights()) print_files(*ck.vision_weights(), "vision files");
  if (a.list_tensors)
    for (const auto& n : ck.names()) {
      const TensorInfo& ti = ck.info(n);
      fmt::print("  {:<60} {:<5} {}\n", ck.source_name(n), dtype_name(ti.dtype), shape_string(ti.shape));
    }
  size_t errors = 0, warnings = 0;
  for (const auto& p : ck.problems()) (p.severity == Problem::Severity::Error ? errors : warnings)++;
  if (ck.problems().empty()) {
    fmt::print("problems      none\n");
  } else {
    fmt::print("problems      {} error(s), {} warning(s)\n", errors, warnings);
    for (const auto& p : ck.problems())
      fmt::print("  {}: {}: {}\n", p.severity == Problem::Severity::Error ? "error" : "warning", p.file, p.message);
  }
  std::fflush(stdout);
  if (errors) ck.require_valid();  // one-line error on stderr, exit 2
  return kExitOk;
}

}  // namespace uqmerge::app
