// The one convention for GPU tests, in every test binary: a GoogleTest whose name ends in
// _CUDA and whose body starts with UQMERGE_SKIP_WITHOUT_CUDA(count), where count is the number
// of CUDA devices the code under test can use, as its own library sees them (the engine:
// torch::cuda::device_count(); the NCCL backend: uqmerge::dist::cuda_device_count()). Where
// there is none the test is skipped (GTEST_SKIP), so CPU-only CI stays green and the same
// binaries test the GPU paths on a GPU machine. The GPU checks select these tests by name,
// --gtest_filter='*_CUDA' (scripts/gpu-check.sh, scripts/device/gpu-bundle-run.sh, which count
// a skipped test as no pass); the CPU runs there exclude them with --gtest_filter='-*_CUDA*'.
#pragma once

#include <gtest/gtest.h>

#define UQMERGE_SKIP_WITHOUT_CUDA(device_count)                                                      \
  do {                                                                                              \
    if ((device_count) == 0)                                                                        \
      GTEST_SKIP() << "no CUDA device visible (" #device_count " is 0): a *_CUDA test, run on a GPU " \
                      "machine by scripts/gpu-check.sh";                                             \
  } while (0)
