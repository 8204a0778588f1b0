// uqmerge/merge/job.hpp — `uqmerge merge MERGEKIT.yaml -o OUT`: mergekit's YAML (merge_method,
// base_model, models with parameters, global parameters, dtype/out_dtype) merged tensor by
// tensor from zero-copy views into a complete Hugging Face directory in the inputs' layout.
// The vision tower is checked bit-identical across inputs and copied (merge_vision: true merges
// it). The output is built under "OUT.tmp.<pid>" and renamed when complete.
// Not here (issue #5, next): sharding over ranks, incremental steps, the UQ driver.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

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
// Returns the number of tensors written.
size_t run_merge(const MergeSpec& spec, const std::filesystem::path& out, bool overwrite);

}  // namespace uqmerge::merge
