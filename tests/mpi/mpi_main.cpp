// Shared main of the MPI test binaries (as ECP-copa/Cabana does): MPI up, every rank runs
// every test, MPI down. Tests named *_CUDA skip themselves when no GPU is visible
// (tests/cuda_test.hpp), so CPU-only CI stays green and the same binary tests NCCL on a GPU machine.
#include <gtest/gtest.h>

#include "uqmerge/dist/communicator.hpp"

int main(int argc, char** argv) {
  uqmerge::dist::MpiRuntime mpi(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  // Only rank 0 prints the gtest report; a failure on any rank still fails the run (exit code).
  auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
  int rank = 0;
  {
    auto comm = uqmerge::dist::make_mpi_communicator();
    rank = comm->rank();
  }
  if (rank != 0) delete listeners.Release(listeners.default_result_printer());
  return RUN_ALL_TESTS();
}
