// Deterministic work splits (see include/uqmerge/dist/sharding.hpp).
#include "uqmerge/dist/sharding.hpp"

#include <algorithm>
#include <numeric>
#include <queue>

#include "uqmerge/util/error.hpp"

namespace uqmerge::dist {

std::vector<int> assign_by_bytes(const std::vector<uint64_t>& bytes, int nranks) {
  UQ_CHECK(nranks > 0, "nranks must be positive");
  std::vector<size_t> order(bytes.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return bytes[a] > bytes[b]; });
  // (load, rank) min-heap: pops the least-loaded, lowest rank.
  using Slot = std::pair<uint64_t, int>;
  std::priority_queue<Slot, std::vector<Slot>, std::greater<Slot>> heap;
  for (int r = 0; r < nranks; ++r) heap.push({0, r});
  std::vector<int> owner(bytes.size(), 0);
  for (size_t i : order) {
    auto [load, r] = heap.top();
    heap.pop();
    owner[i] = r;
    heap.push({load + bytes[i], r});
  }
  return owner;
}

std::pair<uint64_t, uint64_t> block_range(uint64_t n, int rank, int nranks) {
  UQ_CHECK(nranks > 0 && rank >= 0 && rank < nranks, "bad rank");
  const uint64_t base = n / nranks, extra = n % nranks, r = static_cast<uint64_t>(rank);
  const uint64_t begin = r * base + std::min(r, extra);
  return {begin, begin + base + (r < extra ? 1 : 0)};
}

}  // namespace uqmerge::dist
