// Collectives of uqmerge's MPI communicator (numbered for the watchdog, nonblocking + polled)
// beside the same blocking MPI calls, in one run on the same ranks: the watchdog's cost.
// Sizes as the job uses them: the stop flag (1 double), the uncertainty reduction
// ([S*K | S | S] for 1000 samples, 4 options: 6000 doubles), and a merge shard allgather
// (64 MiB of bytes over the ranks). Prints one table row per collective (rank 0).
// Usage: mpirun -np R uqmerge_bench_collectives [REPEATS]
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <vector>

#include "uqmerge/dist/communicator.hpp"

namespace {

double best_us(int repeats, const std::function<void()>& op) {
  double best = 1e300;
  for (int k = 0; k < repeats; ++k) {
    MPI_Barrier(MPI_COMM_WORLD);
    const auto t0 = std::chrono::steady_clock::now();
    op();
    double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
    MPI_Allreduce(MPI_IN_PLACE, &us, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);  // the slowest rank's time
    best = std::min(best, us);
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace uqmerge;
  dist::MpiRuntime mpi(&argc, &argv);
  const int repeats = argc > 1 ? std::atoi(argv[1]) : 50;
  auto comm = dist::make_mpi_communicator();
  const int R = comm->size(), r = comm->rank();
  if (r == 0) {
    std::printf("%d ranks, best of %d (the slowest rank's time per call)\n\n", R, repeats);
    std::printf("| collective | blocking MPI us | uqmerge (watched) us | ratio |\n|---|---|---|---|\n");
  }
  const auto row = [&](const char* name, double a, double b) {
    if (r == 0) std::printf("| %s | %.1f | %.1f | %.2f |\n", name, a, b, b / a);
  };
  double flag = 1;
  row("allreduce 1 double (stop flag)", best_us(repeats, [&] { MPI_Allreduce(MPI_IN_PLACE, &flag, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD); }),
      best_us(repeats, [&] { comm->allreduce_sum(&flag, 1, DType::F64); }));
  std::vector<double> uq(6000, 0.5);
  row("allreduce 6000 doubles (uq reduction)",
      best_us(repeats, [&] { MPI_Allreduce(MPI_IN_PLACE, uq.data(), 6000, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD); }),
      best_us(repeats, [&] { comm->allreduce_sum(uq.data(), uq.size(), DType::F64); }));
  row("barrier", best_us(repeats, [&] { MPI_Barrier(MPI_COMM_WORLD); }), best_us(repeats, [&] { comm->barrier(); }));
  const size_t total = size_t{64} << 20, each = total / static_cast<size_t>(R);
  std::vector<uint8_t> buf(each * static_cast<size_t>(R), static_cast<uint8_t>(r));
  std::vector<int> counts(static_cast<size_t>(R), static_cast<int>(each)), displs(static_cast<size_t>(R));
  for (int q = 0; q < R; ++q) displs[static_cast<size_t>(q)] = static_cast<int>(each) * q;
  const std::vector<size_t> ucounts(static_cast<size_t>(R), each);
  const int big = std::max(3, repeats / 10);
  row("allgatherv 64 MiB (merge shards)",
      best_us(big, [&] { MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf.data(), counts.data(), displs.data(), MPI_UINT8_T, MPI_COMM_WORLD); }),
      best_us(big, [&] { comm->allgatherv(buf.data() + each * static_cast<size_t>(r), buf.data(), ucounts, DType::U8); }));
  return 0;
}
