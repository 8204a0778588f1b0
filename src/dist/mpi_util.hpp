// Private to src/dist: MPI error checking and helpers shared by both backends.
#pragma once

#include <mpi.h>

#include <filesystem>
#include <string>

#include "uqmerge/util/error.hpp"
#include "watchdog.hpp"

namespace uqmerge::dist::detail {

inline int world_rank() {
  int init = 0, fin = 0, r = 0;
  MPI_Initialized(&init);
  MPI_Finalized(&fin);
  if (init && !fin) MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}

[[noreturn]] inline void mpi_fail(int rc, const char* call, const char* file, int line) {
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  throw_internal(std::string(file) + ":" + std::to_string(line) + " rank " + std::to_string(world_rank()),
                 std::string(call) + " failed: " + std::string(text, static_cast<size_t>(len)));
}

// Local rank/size: processes sharing this node's memory.
inline void local_rank_size(MPI_Comm comm, int& local_rank, int& local_size) {
  MPI_Comm node;
  MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
  MPI_Comm_rank(node, &local_rank);
  MPI_Comm_size(node, &local_size);
  MPI_Comm_free(&node);
}

}  // namespace uqmerge::dist::detail

#define CHECK_MPI(call)                                                                 \
  do {                                                                                  \
    const int uq_rc_ = (call);                                                          \
    if (uq_rc_ != MPI_SUCCESS) ::uqmerge::dist::detail::mpi_fail(uq_rc_, #call, __FILE__, __LINE__); \
  } while (0)

namespace uqmerge::dist::detail {

// Completes a nonblocking MPI call, polling the watchdog (wait_polling); a verdict goes to fail().
template <typename Fail>
void wait_request(MPI_Request& req, Watchdog& w, Fail&& fail) {
  wait_polling(
      [&] {
        int done = 0;
        CHECK_MPI(MPI_Test(&req, &done, MPI_STATUS_IGNORE));
        return done != 0;
      },
      w, fail);
}

// Communicator::watch for both backends, over `comm`: sets the limits, and with a directory
// starts this rank's heartbeats, waits until every rank has written its first, and keeps
// heartbeat verdicts only if every rank sees every other's (one node without the shared
// directory turns them off everywhere, so no rank judges peers it cannot see).
template <typename Fail>
void watch_ranks(Watchdog& w, MPI_Comm comm, const std::filesystem::path& dir, const WatchdogOptions& opts, Fail&& fail) {
  w.stop();
  w.set_options(opts);
  if (dir.empty()) return;
  w.start(dir);
  {
    Watched scope(w, "barrier");
    MPI_Request req;
    CHECK_MPI(MPI_Ibarrier(comm, &req));
    wait_request(req, w, fail);
  }
  int visible = w.peers_visible() ? 1 : 0;
  {
    Watched scope(w, "allreduce");
    MPI_Request req;
    CHECK_MPI(MPI_Iallreduce(MPI_IN_PLACE, &visible, 1, MPI_INT, MPI_MIN, comm, &req));
    wait_request(req, w, fail);
  }
  if (!visible) w.disable_peers();
}

}  // namespace uqmerge::dist::detail
