// uqmerge/merge/kernels.hpp — building blocks of the chunked DARE/DELLA kernel
// (merge/task_arithmetic.cpp), exposed for the unit tests.
#pragma once

#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>

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

}  // namespace uqmerge::merge::kernels
