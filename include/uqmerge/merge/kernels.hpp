// uqmerge/merge/kernels.hpp — the task-arithmetic family's kernels (merge/kernels.cpp), called
// by merge/task_arithmetic.cpp and tested on their own: Philox blocks and magnitude ranks for
// the random masks, the radix-select top-k threshold, the fused one-pass DARE/DELLA merge.
#pragma once

#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>
#include <vector>

#include "uqmerge/merge/method.hpp"

namespace uqmerge::merge::kernels {

// Philox4x32-10 blocks first .. first + count - 1 under `key`, counter (block low word, block
// high word, 0, 0): out[4 b + q] is word q of block first + b, the same bits as
// philox4x32_10({block, block >> 32, 0, 0}, key) (util/rng.hpp), inlined for the mask loops.
void philox_blocks(uint64_t first, int64_t count, std::array<uint32_t, 2> key, uint32_t* out);

// Ascending 1-based ranks of |t[0 .. cols)| (ties in index order), i.e. torch's stable argsort
// of |t| followed by the inverse permutation: an LSD radix sort on the fp32 bit patterns of the
// magnitudes (non-negative floats order as their bits), 8-bit digits, digits every key shares
// skipped. scratch: 2 * cols elements.
void magnitude_ranks(const float* t, int64_t cols, int32_t* ranks, uint64_t* scratch);
// The same for every row of a 2-D fp32 tensor: int32 ranks [rows, cols].
at::Tensor magnitude_ranks(const at::Tensor& t);

constexpr int64_t kChunk = 1 << 15;  // elements per chunk of the chunked kernels (128 KiB fp32)

// Top-k of |x - base| without sorting or a tensor-sized temporary: a two-pass radix select on
// the fp32 bit patterns (high 16 bits, then low 16 bits within the winning bucket) gives the
// exact k-th largest magnitude; elements equal to it are kept in index order until k (as
// top_k_mask), via per-chunk counts of them when not all of them are kept.
struct TopK {
  float threshold = 0;
  int64_t need = 0;                // how many elements equal to the threshold are kept
  std::vector<int64_t> eq_before;  // equal elements before each chunk (empty: keep them all)
};
// x, base: same shape; k elements of |x - base| kept; chunks of kChunk elements.
TopK magnitude_threshold(const at::Tensor& x, const at::Tensor& base, int64_t k, int64_t chunks);

// DARE (della = false) or DELLA (true) merged in one pass per chunk of C elements (DELLA: whole
// rows of `cols`), written in out_type; consensus: TIES-style sign consensus. Masks are pure
// functions of (seed, tensor name, model, element index). Details in merge/kernels.cpp.
at::Tensor fused_random_merge(const TensorGroup& g, const Params& p, uint64_t seed, at::ScalarType out_type, bool della,
                              bool consensus, int64_t cols, int64_t C);

}  // namespace uqmerge::merge::kernels
