// uqmerge/io/checkpoint.hpp — an HF model directory: its config, its safetensors, and every
// tensor under one canonical name whatever the layout it was saved in:
//
//   canonical            llava-hf (<4.52)                 llava-hf (>=4.52)                 original LLaVA / Llama
//   lm.<x>               language_model.model.<x>         model.language_model.<x>          model.<x>
//   lm_head.weight       language_model.lm_head.weight    lm_head.weight                    lm_head.weight
//   vision.<x>           vision_tower[.vision_model].<x>  model.vision_tower[.vision_model].<x>  CLIP dir: [vision_model.]<x>
//   projector.linear_K.* multi_modal_projector.linear_K.* model.multi_modal_projector.linear_K.*  model.mm_projector.{2K-2}.*
//
// The source name of each tensor is kept, so outputs are written in the input's own layout.
// Not here: building modules (model/), merging (merge/).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "uqmerge/io/model_config.hpp"
#include "uqmerge/io/safetensors.hpp"
#include "uqmerge/io/tensor_table.hpp"

namespace uqmerge {

enum class NameScheme { LlavaHfLegacy, LlavaHf, LlavaOriginal, Llama, ClipDir };
std::string_view name_scheme_name(NameScheme s);

// Source name -> canonical name; nullopt for names the scheme does not know.
std::optional<std::string> to_canonical(NameScheme s, const std::string& source);
// Canonical -> source name in scheme s (for error messages and writing outputs).
std::string from_canonical(NameScheme s, const std::string& canonical);
// Buffers and parts of a checkpoint uqmerge never reads (rotary inv_freq, CLIP text tower...).
bool is_ignored_tensor(NameScheme s, const std::string& source);


struct Problem {
  enum class Severity { Error, Warning };
  Severity severity;
  std::string file;     // the file or directory concerned
  std::string message;  // one line
};

class Checkpoint {
 public:
  struct Options {
    std::optional<std::filesystem::path> vision_tower_dir;  // original LLaVA: the CLIP directory
  };
  // Reads config.json and every safetensors header (no tensor data). Throws a bad-input Error
  // for unreadable/malformed files; missing, unexpected and mis-shaped tensors are collected in
  // problems() so `inspect` can list them all — call require_valid() before using the weights.
  static Checkpoint open(const std::filesystem::path& dir, const Options& opts = {});

  const std::filesystem::path& dir() const { return dir_; }
  const ModelConfig& config() const { return config_; }
  NameScheme scheme() const { return scheme_; }
  const std::optional<std::filesystem::path>& vision_dir() const { return vision_dir_; }
  const std::vector<Problem>& problems() const { return problems_; }
  bool valid() const;
  // Throws a bad-input Error with the first error problem (and how many more there are).
  void require_valid() const;

  // Canonical names present, in module order (expected order, then extras sorted).
  const std::vector<std::string>& names() const { return names_; }
  bool has(const std::string& canonical) const { return entries_.count(canonical) != 0; }
  const TensorInfo& info(const std::string& canonical) const;
  TensorView view(const std::string& canonical) const;
  const std::string& source_name(const std::string& canonical) const;
  const SafetensorsFile& file_of(const std::string& canonical) const;

  const SafetensorsSet& weights() const { return weights_; }
  const SafetensorsSet* vision_weights() const { return vision_weights_ ? &*vision_weights_ : nullptr; }

  // Parameter count and bytes of canonical tensors under a prefix ("" = all, "lm.", "vision.").
  uint64_t parameter_count(const std::string& prefix = "") const;
  uint64_t parameter_bytes(const std::string& prefix = "") const;
  std::map<DType, uint64_t> dtype_histogram() const;  // dtype -> tensor count

 private:
  struct Entry {
    bool in_vision_set;  // weights_ or vision_weights_ (an index: Checkpoint stays movable)
    std::string source;
  };
  const SafetensorsSet& set_of(const Entry& e) const { return e.in_vision_set ? *vision_weights_ : weights_; }
  void map_tensors(bool vision_set, NameScheme scheme);

  std::filesystem::path dir_;
  std::optional<std::filesystem::path> vision_dir_;
  ModelConfig config_;
  NameScheme scheme_ = NameScheme::LlavaHf;
  SafetensorsSet weights_;
  std::optional<SafetensorsSet> vision_weights_;
  std::map<std::string, Entry> entries_;
  std::vector<std::string> names_;
  std::vector<Problem> problems_;
};

}  // namespace uqmerge
