// Backend-independent parts of dist (see include/uqmerge/dist/communicator.hpp).
#include <cstdlib>

#include "mpi_util.hpp"
#include "uqmerge/dist/communicator.hpp"
#include "uqmerge/util/log.hpp"

namespace uqmerge::dist {

std::string_view backend_name(Backend b) { return b == Backend::Mpi ? "mpi" : "nccl"; }

MpiRuntime::MpiRuntime(int* argc, char*** argv) {
  int provided = 0;
  CHECK_MPI(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided));
  // Errors come back as codes so CHECK_MPI can say which call failed on which rank.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  log::init(rank, size);
}

MpiRuntime::~MpiRuntime() {
  if (active()) MPI_Finalize();
}

bool MpiRuntime::active() {
  int init = 0, fin = 0;
  MPI_Initialized(&init);
  MPI_Finalized(&fin);
  return init && !fin;
}

void abort_job(int code) {
  std::fflush(stdout);
  std::fflush(stderr);
  if (MpiRuntime::active()) {
    int size = 1;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (size > 1) MPI_Abort(MPI_COMM_WORLD, code);
  }
  std::exit(code);
}

#ifndef UQMERGE_HAVE_NCCL
std::unique_ptr<Communicator> make_nccl_communicator() {
  throw_bad_input("backend: nccl", "this uqmerge was built without NCCL (configure with the CUDA toolkit "
                                   "and NCCL present, or use backend: mpi)");
}
bool built_with_nccl() { return false; }
int cuda_device_count() { return 0; }
#endif

}  // namespace uqmerge::dist
