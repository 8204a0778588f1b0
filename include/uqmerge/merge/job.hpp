// uqmerge/merge/job.hpp — `uqmerge merge MERGEKIT.yaml -o OUT`: mergekit's YAML (merge_method,
// base_model, models with parameters, global parameters, dtype/out_dtype) merged tensor by
// tensor from zero-copy views into a complete Hugging Face directory in the inputs' layout.
// The vision tower is checked bit-identical across inputs and copied (merge_vision: true merges
// it). The output is built under "OUT.tmp" and renamed when complete. Under mpirun the
// tensors are merged and written in parallel by their owner ranks (merge/engine.hpp).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "uqmerge/dist/communicator.hpp"
#include "uqmerge/io/dtype.hpp"

namespace uqmerge::merge {

struct MergeSpec {
  std::filesystem::path source;
  std::string method;
  std::optional<std::filesystem::path> base_model;
  struct Member {
    std::filesystem::path path;
    std::map<std::string, double> params;
  };
  std::vector<Member> models;
  std::map<std::string, double> global;  // normalize, lambda, int8_mask, filter_wise
  std::string rescale;                   // "", density, l1, none
  std::optional<DType> out_dtype;        // out_dtype, else dtype, else the inputs'
  uint64_t seed = 0;
  bool merge_vision = false;
  uint64_t shard_bytes = 5'000'000'000ull;
};

MergeSpec load_merge_yaml(const std::filesystem::path& path);
// Merges spec's models into `out` (sharded over comm's ranks: see merge/engine.hpp). Returns
// the number of tensors written.
size_t run_merge(const MergeSpec& spec, const std::filesystem::path& out, bool overwrite, dist::Communicator& comm);

}  // namespace uqmerge::merge
