// A job where rank 1 fails while rank 0 waits in a collective: the error must end both ranks
// with the message and a non-zero code, never a hang. Used by check_abort.sh under mpirun.
// It goes through the same path as the CLI: Error -> log::error -> dist::abort_job.
#include <vector>

#include "uqmerge/dist/communicator.hpp"
#include "uqmerge/util/error.hpp"
#include "uqmerge/util/log.hpp"

int main(int argc, char** argv) {
  using namespace uqmerge;
  dist::MpiRuntime mpi(&argc, &argv);
  try {
    auto comm = dist::make_mpi_communicator();
    comm->barrier();
    if (comm->rank() == 1) throw_bad_input("probe/candidate-1/model.safetensors", "truncated (probe)");
    std::vector<float> x(16, 1.f);
    comm->allreduce_sum(x.data(), x.size(), DType::F32);  // never completes: rank 1 is gone
    log::error("rank 0 passed a collective that rank 1 never joined");
    return 0;
  } catch (const std::exception& e) {
    log::error("{}", e.what());
    dist::abort_job(exit_code_for(e));
  }
}
