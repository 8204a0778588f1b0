// Rank 1 misbehaves while rank 0 waits in a collective; the watchdog must end the job naming
// rank 1, or (mode slow) must not: check_hang.sh runs each mode under mpirun.
//   stop  rank 1 stops itself (SIGSTOP): its heartbeat stops -> "has not beaten"
//   stuck rank 1 spins forever, heartbeat alive -> the collective timeout names it as not arrived
//   slow  rank 1 computes for 3 x stale_s, heartbeat alive -> the job completes (no false alarm)
// Usage: uqmerge_hang_probe MODE DIR
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "uqmerge/dist/communicator.hpp"
#include "uqmerge/util/error.hpp"
#include "uqmerge/util/log.hpp"

int main(int argc, char** argv) {
  using namespace uqmerge;
  dist::MpiRuntime mpi(&argc, &argv);
  if (argc != 3) return 2;
  const std::string mode = argv[1];
  try {
    auto comm = dist::make_mpi_communicator();
    dist::WatchdogOptions o;
    o.heartbeat_s = 0.5;
    o.stale_s = 3;
    o.timeout_s = mode == "stuck" ? 6 : 600;
    comm->watch(argv[2], o);
    std::vector<double> x(1024, 1.0);
    comm->allreduce_sum(x.data(), x.size(), DType::F64);  // every rank is healthy here
    if (comm->rank() == 1) {
      if (mode == "stop") raise(SIGSTOP);
      if (mode == "stuck")
        for (volatile uint64_t i = 0;; i = i + 1) {
        }
      if (mode == "slow") std::this_thread::sleep_for(std::chrono::seconds(9));
    }
    comm->allreduce_sum(x.data(), x.size(), DType::F64);
    comm->unwatch();
    if (comm->rank() == 0) log::info("probe: completed, sum {}", x[0]);
    return 0;
  } catch (const std::exception& e) {
    log::error("{}", e.what());
    dist::abort_job(exit_code_for(e));
  }
}
