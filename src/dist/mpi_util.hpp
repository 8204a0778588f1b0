// Private to src/dist: MPI error checking and helpers shared by both backends.
#pragma once

#include <mpi.h>

#include <string>

#include "uqmerge/util/error.hpp"

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
