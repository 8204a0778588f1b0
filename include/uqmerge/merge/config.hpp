// uqmerge/merge/config.hpp — the one merge configuration type and its one parser. `uqmerge
// merge` (a mergekit YAML file) and `uqmerge run` (its `merge:` section and the candidates'
// `parameters:`) both end up here: the method is looked up in the registry (merge/method.hpp),
// every parameter name is checked against what that method declares (global vs per model),
// every value against its range, before any checkpoint is opened. Torch-free.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "uqmerge/io/dtype.hpp"

namespace YAML {
class Node;
}

namespace uqmerge::merge {

// Every merge method's name, in the registry's order (merge/registry.cpp).
std::vector<std::string> method_names();

// One input model: a candidate of `run`, a member of a mergekit `models:` list.
struct ModelEntry {
  std::string name;  // default: the directory's name
  std::filesystem::path path;
  std::map<std::string, double> parameters;  // per-model merge parameters (weight, density, ...)
};

struct MergeConfig {
  std::string source;                       // the config file (error messages)
  std::string method = "linear";
  // How Algorithm 1's step t combines the first t members: `uniform` (the paper's text: their
  // average) or `cascade` (the authors' release, multi_stage_merging.py: a 1:1 linear merge of
  // step t-1's result with member t, rounded to the output dtype at every step, so member k
  // weighs 2^-(t-k+1), the first 2^-(t-1)). Cascade needs the linear method.
  std::string schedule = "uniform";
  std::optional<std::filesystem::path> base_model;
  std::map<std::string, double> global;     // normalize, lambda, int8_mask, filter_wise, per-model defaults
  std::string rescale;                      // "", density, l1, none ("": the method's default)
  std::optional<DType> out_dtype;           // default: the reference's dtype per tensor
  uint64_t seed = 0;                        // random masks (DARE, DELLA)
  bool merge_vision = false;                // else the vision tower must be bit-identical and is copied
  uint64_t shard_bytes = 5'000'000'000ull;  // output shard size
  uint64_t resident_bytes = 4096ull << 20;  // per rank: members' owned tensors kept in memory
};

// `uqmerge merge FILE`: mergekit's schema (merge_method, base_model, models, parameters,
// dtype/out_dtype, seed, merge_vision, shard_size_mb; uqmerge's `schedule: cascade` merges the
// models in list order as the release's chain of 1:1 merges). A listed model equal to base_model is
// dropped (mergekit lists it), a model listed twice is bad input. The result is validated.
struct MergeJob {
  MergeConfig merge;
  std::vector<ModelEntry> models;
};
MergeJob load_mergekit_yaml(const std::filesystem::path& path);

// `uqmerge run`'s `merge:` mapping (method, schedule, parameters, resident_memory_mb) into `out`;
// `file` names the config in errors.
void parse_merge_section(const YAML::Node& merge, const std::string& file, MergeConfig& out);
// A `parameters:` mapping of one model (numbers; true/false as 1/0) into `out` — names are
// checked by validate(), once the method is known.
void parse_model_parameters(const YAML::Node& params, const std::string& file, const std::string& where,
                            std::map<std::string, double>& out);
// Every check that needs the method: the method exists, needs_base has a base_model, each
// global and per-model parameter is one the method declares, values are in range, no model
// listed twice. Bad input naming `cfg.source` and the key.
void validate(const MergeConfig& cfg, const std::vector<ModelEntry>& models);
// At least 2 inputs (task-vector methods: the base and one model), bad input otherwise.
void require_enough_models(const MergeConfig& cfg, size_t n);

}  // namespace uqmerge::merge
