// `uqmerge merge MERGEKIT.yaml -o OUT`: merge checkpoints without uncertainty (merge/job.hpp).
#include <fmt/format.h>

#include "commands.hpp"
#include "uqmerge/merge/job.hpp"
#include "uqmerge/model/llava.hpp"
#include "uqmerge/util/error.hpp"

namespace uqmerge::app {

int cmd_merge(const MergeArgs& a) {
  const merge::MergeJob job = merge::load_mergekit_yaml(a.config);  // validated before any MPI or checkpoint work
  auto comm = dist::make_mpi_communicator();
  model::set_torch_threads(0);  // every core of this rank (libtorch's default was 1 on some machines)
  const size_t n = merge::run_merge(job, a.out, a.overwrite, *comm);
  if (comm->rank() == 0)
    fmt::print("merged {} tensors with {} into {} ({} rank(s))\n", n, job.merge.method, a.out, comm->size());
  return kExitOk;
}

}  // namespace uqmerge::app
