// uqmerge/merge/engine.hpp — merging sharded over ranks (DESIGN §5, docs/decisions.md "Sharded
// merging"). Every tensor of the merged model has one owner rank (dist::assign_by_bytes over
// the reference's tensor sizes). A rank reads only the bytes of the tensors it owns — from every
// member — merges them, and either
//   * gather(): allgatherv hands every rank the whole merged model in memory (the next
//     uncertainty evaluation loads it without touching the disk), or
//   * write(): writes its own output shards in parallel; rank 0 adds index, config, tokenizer
//     and processor files; the directory appears (renamed from OUT.tmp) only when complete.
// Tensor ownership instead of model ownership: each byte of each member is read by exactly one
// rank, so no reduce-scatter is needed and every method (not only sums) shards the same way.
// Running sums: for methods that are a running sum over models (linear), a call whose members
// extend the previous call's by one reads only the new member (step t of Algorithm 1 costs one
// model's bytes). Resident store: members' owned tensors are kept in memory up to a per-rank
// budget so later steps (TIES, DARE, baselines) do not re-read checkpoints.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "uqmerge/dist/communicator.hpp"
#include "uqmerge/io/checkpoint.hpp"
#include "uqmerge/merge/config.hpp"
#include "uqmerge/merge/method.hpp"

namespace uqmerge::merge {


class Merger {
 public:
  // candidates: every model a merge may use (indices below refer to this list); entries[i]
  // holds candidate i's per-model parameters (weight, density, ...); base: the base model for task-vector methods.
  // Checks architecture, shapes and (unless merge_vision) vision-tower identity: bad input
  // naming the tensor and both files.
  // incremental: keep running sums between compute() calls (Algorithm 1's steps).
  Merger(std::vector<const Checkpoint*> candidates, const std::vector<ModelEntry>& entries, const Checkpoint* base,
         const MergeConfig& cfg, bool incremental, dist::Communicator& comm);
  ~Merger();
  Merger(const Merger&) = delete;
  Merger& operator=(const Merger&) = delete;

  // The checkpoint whose layout, config and files the output takes (base, else candidate 0).
  const Checkpoint& reference() const;
  // Merges `members` (candidate indices, merge order) for the tensors this rank owns and keeps
  // the results. A single member is that model itself (cast to the output dtype).
  void compute(const std::vector<size_t>& members);
  // Every merged (non-vision) tensor on every rank, canonical name -> tensor in the output dtype.
  std::map<std::string, at::Tensor> gather();
  // Writes the complete directory. members == nullptr: writes what compute() kept; else merges
  // `members` tensor by tensor while writing, keeping nothing (RSS of one tensor).
  void write(const std::filesystem::path& out, const std::string& card, bool overwrite,
             const std::vector<size_t>* members = nullptr);

  struct Stats {
    double read_merge_seconds = 0, gather_seconds = 0, write_seconds = 0;
    uint64_t bytes_read = 0;        // this rank, from checkpoints (not the resident store)
    uint64_t resident_bytes = 0;    // this rank
    uint64_t owned_tensors = 0, owned_bytes = 0;
  };
  const Stats& stats() const { return stats_; }
  size_t tensor_count() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  Stats stats_;
};

}  // namespace uqmerge::merge
