// HF checkpoint directories under canonical tensor names (see include/uqmerge/io/checkpoint.hpp).
#include "uqmerge/io/checkpoint.hpp"

#include <algorithm>
#include <set>

#include "uqmerge/util/error.hpp"

namespace uqmerge {

namespace fs = std::filesystem;

std::string_view name_scheme_name(NameScheme s) {
  switch (s) {
    case NameScheme::LlavaHfLegacy: return "llava-hf (language_model.model.*)";
    case NameScheme::LlavaHf: return "llava-hf (model.language_model.*)";
    case NameScheme::LlavaOriginal: return "original LLaVA (model.*, model.mm_projector.*)";
    case NameScheme::Llama: return "LLaMA (model.*)";
    case NameScheme::ClipDir: return "CLIP (vision_model.*)";
  }
  return "?";
}

namespace {

struct Rule {
  const char* source;
  const char* canonical;
};
// Most specific prefixes first; the first rule of a canonical prefix is the one from_canonical
// writes. transformers 5 saves the CLIP tower flat (vision_tower.embeddings.*), transformers 4
// nested it (vision_tower.vision_model.embeddings.*): both are read.
const std::vector<Rule>& rules(NameScheme s) {
  static const std::vector<Rule> legacy{{"language_model.model.", "lm."},
                                        {"language_model.lm_head.", "lm_head."},
                                        {"vision_tower.vision_model.", "vision."},
                                        {"vision_tower.", "vision."},
                                        {"multi_modal_projector.", "projector."}};
  static const std::vector<Rule> hf{{"model.language_model.", "lm."},
                                    {"model.vision_tower.vision_model.", "vision."},
                                    {"model.vision_tower.", "vision."},
                                    {"model.multi_modal_projector.", "projector."},
                                    {"lm_head.", "lm_head."}};
  static const std::vector<Rule> original{{"model.vision_tower.vision_tower.vision_model.", "vision."},
                                          {"model.", "lm."},
                                          {"lm_head.", "lm_head."}};
  static const std::vector<Rule> llama{{"model.", "lm."}, {"lm_head.", "lm_head."}};
  // CLIPModel / transformers-4 CLIPVisionModel: vision_model.*; transformers-5 CLIPVisionModel: flat.
  static const std::vector<Rule> clip{{"vision_model.", "vision."}, {"", "vision."}};
  switch (s) {
    case NameScheme::LlavaHfLegacy: return legacy;
    case NameScheme::LlavaHf: return hf;
    case NameScheme::LlavaOriginal: return original;
    case NameScheme::Llama: return llama;
    case NameScheme::ClipDir: return clip;
  }
  return llama;
}

bool starts_with(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }
bool ends_with(const std::string& s, const std::string& p) {
  return s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0;
}

}  // namespace

std::optional<std::string> to_canonical(NameScheme s, const std::string& src) {
  if (s == NameScheme::LlavaOriginal) {
    // model.mm_projector.{2k}.{weight,bias} -> projector.linear_{k+1}.*; a linear projector
    // is model.mm_projector.{weight,bias} -> projector.linear_1.*
    const std::string p = "model.mm_projector.";
    if (starts_with(src, p)) {
      const std::string rest = src.substr(p.size());
      if (rest == "weight" || rest == "bias") return "projector.linear_1." + rest;
      const auto dot = rest.find('.');
      if (dot == std::string::npos) return std::nullopt;
      const std::string idx = rest.substr(0, dot);
      if (idx.empty() || !std::all_of(idx.begin(), idx.end(), ::isdigit)) return std::nullopt;
      const int k = std::stoi(idx);
      if (k % 2 != 0) return std::nullopt;  // odd indices are the GELUs: no parameters
      return "projector.linear_" + std::to_string(k / 2 + 1) + rest.substr(dot);
    }
  }
  for (const auto& r : rules(s))
    if (starts_with(src, r.source)) return std::string(r.canonical) + src.substr(std::string(r.source).size());
  return std::nullopt;
}

std::string from_canonical(NameScheme s, const std::string& c) {
  if (s == NameScheme::LlavaOriginal && starts_with(c, "projector.linear_")) {
    const auto dot = c.find('.', 17);
    const int k = std::stoi(c.substr(17, dot - 17));
    return "model.mm_projector." + std::to_string(2 * (k - 1)) + c.substr(dot);
  }
  if (s == NameScheme::LlavaOriginal && starts_with(c, "vision."))
    return "vision_model." + c.substr(7);  // lives in the CLIP directory
  for (const auto& r : rules(s))
    if (starts_with(c, r.canonical)) return std::string(r.source) + c.substr(std::string(r.canonical).size());
  return c;
}

bool is_ignored_tensor(NameScheme s, const std::string& src) {
  if (ends_with(src, "rotary_emb.inv_freq") || ends_with(src, "embeddings.position_ids")) return true;
  if (s == NameScheme::ClipDir)
    return starts_with(src, "text_model.") || starts_with(src, "text_projection.") ||
           starts_with(src, "visual_projection.") || src == "logit_scale";
  return false;
}

void Checkpoint::map_tensors(bool vision_set, NameScheme scheme) {
  const SafetensorsSet& set = vision_set ? *vision_weights_ : weights_;
  for (const auto& src : set.names()) {
    if (is_ignored_tensor(scheme, src)) continue;
    const auto c = to_canonical(scheme, src);
    const std::string file = set.file_of(src).path().string();
    if (!c) {
      problems_.push_back({Problem::Severity::Error, file,
                           "unexpected tensor '" + src + "' (not part of " +
                               std::string(name_scheme_name(scheme)) + ")"});
      continue;
    }
    if (entries_.count(*c)) {
      problems_.push_back({Problem::Severity::Error, file,
                           "tensor '" + src + "' duplicates '" + entries_.at(*c).source + "'"});
      continue;
    }
    entries_.emplace(*c, Entry{vision_set, src});
  }
}

Checkpoint Checkpoint::open(const fs::path& dir, const Options& opts) {
  Checkpoint ck;
  ck.dir_ = dir;
  if (!fs::is_directory(dir)) throw_bad_input(dir.string(), "not a directory (expected a Hugging Face model directory)");
  ck.config_ = read_model_config(dir);
  ck.weights_ = SafetensorsSet::open_dir(dir);

  switch (ck.config_.arch) {
    case Architecture::LlavaHf: {
      bool legacy = false, current = false;
      for (const auto& n : ck.weights_.names()) {
        legacy |= starts_with(n, "language_model.") || starts_with(n, "vision_tower.") ||
                  starts_with(n, "multi_modal_projector.");
        current |= starts_with(n, "model.language_model.") || starts_with(n, "model.vision_tower.");
      }
      if (legacy && current)
        throw_bad_input(dir.string(), "mixes llava-hf tensor names of two generations "
                                      "(language_model.* and model.language_model.*): re-save the checkpoint");
      ck.scheme_ = legacy ? NameScheme::LlavaHfLegacy : NameScheme::LlavaHf;
      ck.map_tensors(false, ck.scheme_);
      break;
    }
    case Architecture::Llama:
      ck.scheme_ = NameScheme::Llama;
      ck.map_tensors(false, ck.scheme_);
      break;
    case Architecture::LlavaOriginal: {
      ck.scheme_ = NameScheme::LlavaOriginal;
      ck.map_tensors(false, ck.scheme_);
      bool embedded_vision = false;
      for (const auto& [c, e] : ck.entries_) embedded_vision |= starts_with(c, "vision.");
      std::optional<fs::path> vdir = opts.vision_tower_dir;
      if (!vdir) {
        fs::path named(ck.config_.vision_tower_name);
        if (named.is_relative()) named = dir / named;
        if (fs::is_directory(named)) vdir = named;
      }
      if (vdir) {
        ck.vision_dir_ = vdir;
        ck.config_.vision = read_clip_vision_config(*vdir);
        if (ck.config_.mm_hidden_size && ck.config_.mm_hidden_size != ck.config_.vision->hidden_size)
          ck.problems_.push_back({Problem::Severity::Error, (dir / "config.json").string(),
                                  "mm_hidden_size " + std::to_string(ck.config_.mm_hidden_size) +
                                      " differs from the vision tower's hidden_size " +
                                      std::to_string(ck.config_.vision->hidden_size) + " in " + vdir->string()});
        if (!embedded_vision) {
          ck.vision_weights_ = SafetensorsSet::open_dir(*vdir);
          ck.map_tensors(true, NameScheme::ClipDir);
        }
      } else {
        ck.problems_.push_back({Problem::Severity::Error, dir.string(),
                                "vision tower '" + ck.config_.vision_tower_name +
                                    "' (mm_vision_tower) is not a local directory: pass --vision-tower DIR "
                                    "(or vision_tower: in the config) naming the CLIP checkpoint"});
      }
      break;
    }
  }

  // Compare with what the config implies.
  const auto expected = expected_tensors(ck.config_);
  std::set<std::string> expected_names;
  for (const auto& e : expected) {
    expected_names.insert(e.name);
    if (e.name.rfind("vision.", 0) == 0 && !ck.config_.vision) continue;
    auto it = ck.entries_.find(e.name);
    const std::string src = from_canonical(ck.scheme_, e.name);
    if (it == ck.entries_.end()) {
      ck.problems_.push_back({e.required ? Problem::Severity::Error : Problem::Severity::Warning,
                              dir.string(),
                              "missing tensor '" + src + "' (expected " + shape_string(e.shape) + ")" +
                                  (e.required ? "" : "; not used by LLaVA")});
      continue;
    }
    const TensorInfo& ti = ck.info(e.name);
    const std::string file = ck.file_of(e.name).path().string();
    if (ti.shape != e.shape)
      ck.problems_.push_back({Problem::Severity::Error, file,
                              "tensor '" + it->second.source + "' has shape " + shape_string(ti.shape) +
                                  ", config.json implies " + shape_string(e.shape) +
                                  ": the checkpoint does not match its config"});
    if (!is_floating(ti.dtype))
      ck.problems_.push_back({Problem::Severity::Error, file,
                              "tensor '" + it->second.source + "' has non-float dtype " +
                                  std::string(dtype_name(ti.dtype))});
    ck.names_.push_back(e.name);
  }
  std::vector<std::string> extra;
  for (const auto& [c, e] : ck.entries_)
    if (!expected_names.count(c)) {
      extra.push_back(c);
      ck.problems_.push_back({Problem::Severity::Error, ck.set_of(e).file_of(e.source).path().string(),
                              "unexpected tensor '" + e.source + "' (config.json implies no such tensor)"});
    }
  ck.names_.insert(ck.names_.end(), extra.begin(), extra.end());
  if (ck.config_.text.rope_type != "default")
    ck.problems_.push_back({Problem::Severity::Error, (dir / "config.json").string(),
                            "RoPE type '" + ck.config_.text.rope_type + "' is not supported (default only)"});
  if (ck.config_.text.hidden_act != "silu")
    ck.problems_.push_back({Problem::Severity::Error, (dir / "config.json").string(),
                            "text hidden_act '" + ck.config_.text.hidden_act + "' is not supported (silu)"});
  return ck;
}

bool Checkpoint::valid() const {
  return std::none_of(problems_.begin(), problems_.end(),
                      [](const Problem& p) { return p.severity == Problem::Severity::Error; });
}

void Checkpoint::require_valid() const {
  size_t errors = 0;
  const Problem* first = nullptr;
  for (const auto& p : problems_)
    if (p.severity == Problem::Severity::Error && errors++ == 0) first = &p;
  if (!first) return;
  std::string msg = first->message;
  if (errors > 1)
    msg += " (and " + std::to_string(errors - 1) + " more problems: run `uqmerge inspect " + dir_.string() + "`)";
  throw_bad_input(first->file, msg);
}

const TensorInfo& Checkpoint::info(const std::string& c) const {
  auto it = entries_.find(c);
  if (it == entries_.end())
    throw_bad_input(dir_.string(), "missing tensor '" + from_canonical(scheme_, c) + "'");
  return set_of(it->second).info(it->second.source);
}

TensorView Checkpoint::view(const std::string& c) const {
  info(c);
  const Entry& e = entries_.at(c);
  return set_of(e).view(e.source);
}

const std::string& Checkpoint::source_name(const std::string& c) const {
  info(c);
  return entries_.at(c).source;
}

const SafetensorsFile& Checkpoint::file_of(const std::string& c) const {
  info(c);
  const Entry& e = entries_.at(c);
  return set_of(e).file_of(e.source);
}

uint64_t Checkpoint::parameter_count(const std::string& prefix) const {
  uint64_t n = 0;
  for (const auto& [c, e] : entries_)
    if (starts_with(c, prefix)) n += static_cast<uint64_t>(info(c).numel());
  return n;
}

uint64_t Checkpoint::parameter_bytes(const std::string& prefix) const {
  uint64_t n = 0;
  for (const auto& [c, e] : entries_)
    if (starts_with(c, prefix)) n += info(c).nbytes();
  return n;
}

std::map<DType, uint64_t> Checkpoint::dtype_histogram() const {
  std::map<DType, uint64_t> h;
  for (const auto& [c, e] : entries_) ++h[info(c).dtype];
  return h;
}

}  // namespace uqmerge
