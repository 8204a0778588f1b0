// uqmerge/dist/sharding.hpp — deterministic work splits, identical on every rank.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

namespace uqmerge::dist {

// Assigns items (tensors) to ranks balancing bytes: largest first, each to the least-loaded
// rank (ties: lowest rank; equal sizes: lower index first). Returns owner[i].
std::vector<int> assign_by_bytes(const std::vector<uint64_t>& bytes, int nranks);

// Contiguous block [begin, end) of n items for `rank` of `nranks`; the first n % nranks
// ranks get one more. Used for (sample, perturbation) pairs.
std::pair<uint64_t, uint64_t> block_range(uint64_t n, int rank, int nranks);

}  // namespace uqmerge::dist
