// uqmerge/pipeline/config.hpp — the run configuration (YAML; schema in docs/config.md). Every
// key is validated before any compute: unknown keys, wrong types and impossible values are bad
// input naming the key and the valid choices. Relative paths are relative to the config file.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "uqmerge/data/dataset.hpp"
#include "uqmerge/dist/communicator.hpp"
#include "uqmerge/io/dtype.hpp"
#include "uqmerge/merge/config.hpp"
#include "uqmerge/pipeline/screen.hpp"
#include "uqmerge/uq/options.hpp"

namespace uqmerge::pipeline {

using merge::ModelEntry;

struct RunConfig {
  std::filesystem::path source;  // the YAML file
  std::string yaml;              // its text, recorded in results.h5
  std::filesystem::path output_dir = "runs/uqmerge";
  uint64_t seed = 1234;
  DType dtype = DType::F32;
  int threads = 0;
  std::string backend = "auto";    // auto | mpi | nccl (dist::resolve_backend)
  dist::WatchdogOptions watchdog;   // `watchdog:` (hang detection; dist/communicator.hpp)
  std::string device = "auto";      // auto | cpu | cuda (model::resolve_device)
  std::optional<std::filesystem::path> vision_tower;
  std::vector<ModelEntry> models;   // `candidates:` (also accepted: `models:`)
  uq::UqOptions uq;
  std::vector<data::DatasetSpec> datasets;
  uint64_t cache_memory_mb = 4096;
  std::filesystem::path cache_dir;  // default output_dir/cache
  // Algorithm 1 (uqmerge run): `merge:` plus base_model and seed (merge/config.hpp); the
  // candidates' `parameters:` are in models[i].parameters.
  merge::MergeConfig merge;
  std::string order = "descending";                 // descending | ascending | given
  std::string rule = "global_min";                  // global_min | early_stop
  int patience = 1;
  ScreenOptions screen;                             // selection.screen (pipeline/screen.hpp); off by default
  // Baselines (results.h5 /baselines), each measured like the main curve.
  struct Baselines {
    bool merge_all = false;        // every candidate merged
    int random_repeats = 0;        // random_k.repeats: random subsets of size k
    int random_k = 0;              // random_k.k; 0: the size UQ-Merge chose
    uint64_t random_seed = 0;      // random_k.seed (default: seed)
    std::vector<int> random_sweep; // random_k.sweep: more sizes, each with its own repeats (/baselines/random_k_<k>)
    bool ascending = false;        // the whole curve in ascending order of uncertainty
    bool accuracy_guided = false;  // order by accuracy, keep the step with the best accuracy (needs evaluation)
  } baselines;
  // evaluation.datasets: labelled multiple-choice data; accuracy (unperturbed argmax) of every
  // candidate, the chosen merge and every baseline (results.h5 /accuracy).
  std::vector<data::DatasetSpec> eval_datasets;
};

RunConfig load_config(const std::filesystem::path& path);

}  // namespace uqmerge::pipeline
