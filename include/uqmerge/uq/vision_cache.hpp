// uqmerge/uq/vision_cache.hpp — vision features of every perturbed image, computed once per run
// and reused by every model evaluation (the vision tower is frozen and bit-identical across
// candidates, and perturbations are common to all models). Entries live in memory up to a byte
// budget; past it they are appended to a spill file on local disk and read back with pread,
// never recomputed. Keyed by (vision-tower hash, dataset, sample, j). Rank-local: each rank
// caches the (sample, j) pairs it evaluates, which are the same for every model.
// Torch-free: entries are raw bytes with a shape; the runner wraps them.
#pragma once

#include <cstdint>
#include <filesystem>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

#include "uqmerge/io/checkpoint.hpp"

namespace uqmerge::uq {

struct CacheKey {
  uint64_t tower = 0, dataset = 0, sample = 0, j = 0;
  bool operator==(const CacheKey& o) const {
    return tower == o.tower && dataset == o.dataset && sample == o.sample && j == o.j;
  }
};
struct CacheKeyHash {
  size_t operator()(const CacheKey& k) const;
};

// 64-bit hash of the vision tower's tensors (names, shapes, dtypes, bytes): candidates with
// equal hashes share cached features.
uint64_t vision_tower_hash(const Checkpoint& ck);

class VisionCache {
 public:
  // spill_dir: where the spill file goes (created on first spill, removed by the destructor).
  VisionCache(uint64_t memory_budget_bytes, std::filesystem::path spill_dir);
  ~VisionCache();
  VisionCache(const VisionCache&) = delete;
  VisionCache& operator=(const VisionCache&) = delete;

  // Copies `bytes` in; returns false if the key is already present.
  bool put(const CacheKey& k, const void* bytes, size_t n);
  // Fills `out` (resized) and returns true when present.
  bool get(const CacheKey& k, std::vector<uint8_t>& out) const;
  bool contains(const CacheKey& k) const;

  uint64_t memory_bytes() const { return mem_bytes_; }
  uint64_t spilled_bytes() const { return spill_bytes_; }
  uint64_t entries() const { return mem_.size() + spilled_.size(); }
  uint64_t hits() const { return hits_; }
  uint64_t misses() const { return misses_; }

 private:
  uint64_t budget_;
  std::filesystem::path spill_dir_, spill_path_;
  int fd_ = -1;
  std::unordered_map<CacheKey, std::vector<uint8_t>, CacheKeyHash> mem_;
  std::unordered_map<CacheKey, std::pair<uint64_t, uint64_t>, CacheKeyHash> spilled_;  // offset, size
  uint64_t mem_bytes_ = 0, spill_bytes_ = 0;
  mutable uint64_t hits_ = 0, misses_ = 0;
  mutable std::mutex mu_;
};

}  // namespace uqmerge::uq
