// Shared main of the MPI test binaries (as ECP-copa/Cabana does): MPI up, every rank runs
// every test, MPI down. Tests named *_CUDA are filtered out when no GPU is visible, so CPU-only
// CI stays green and the same binary tests NCCL on a GPU machine.
#include <gtest/gtest.h>

#include <string>

#include "uqmerge/dist/communicator.hpp"

int main(int argc, char** argv) {
  uqmerge::dist::MpiRuntime mpi(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  if (uqmerge::dist::cuda_device_count() == 0) {
    std::string& filter = ::testing::GTEST_FLAG(filter);
    filter += filter.find('-') == std::string::npos ? "-*_CUDA*" : ":*_CUDA*";
  }
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
