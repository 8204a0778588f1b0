// uqmerge/merge/sum_kernel.hpp — the weighted-sum kernel behind `linear` (merge/engine.cpp):
// one pass over raw fp16/bf16/fp32 inputs, fp32 arithmetic in registers and L1-sized blocks,
// the result rounded (nearest even) straight into the output dtype. Torch-free.
#pragma once

#include <cstddef>
#include <cstdint>

#include "uqmerge/io/dtype.hpp"

namespace uqmerge::merge::kernels {

struct SumTerm {
  const void* data;  // element 0 of the range
  DType dtype;       // F16, BF16 or F32
  float weight;
};

// out[j] = cast(((0 + w_0 x_0[j]) + w_1 x_1[j] + ...) / divisor) for j in [0, n), in fp32 with
// every product and sum rounded on its own (no fused multiply-add), so the AVX2/F16C path and
// the portable path give the same bits; the sum starts from +0 as torch's zeros().add_() and
// mergekit's sum do. `out` may alias an F32 term's data (in-place accumulation). stream: the
// output is large and not read again soon (non-temporal stores where aligned; never for an
// in-place `out`). Returns false when an output value is Inf or NaN (the caller names the
// tensor).
bool weighted_sum(const SumTerm* terms, size_t count, float divisor, void* out, DType out_dtype, int64_t n,
                  bool stream = false);

// Whether weighted_sum takes this element type.
inline bool sum_kernel_supports(DType t) { return t == DType::F16 || t == DType::BF16 || t == DType::F32; }

// Which path runs: "avx2+f16c" or "portable". force_portable (tests) selects the portable path
// for later calls in this process.
const char* sum_kernel_path();
void sum_kernel_force_portable(bool on);

}  // namespace uqmerge::merge::kernels
