// `uqmerge merge MERGEKIT.yaml -o OUT`: merge checkpoints without uncertainty.
#include <fmt/format.h>

#include "commands.hpp"
#include "uqmerge/merge/job.hpp"
#include "uqmerge/model/llava.hpp"
#include "uqmerge/util/error.hpp"

namespace uqmerge::app {

int cmd_merge(const MergeArgs& a) {
  auto comm = dist::make_mpi_communicator();
  model::set_torch_threads(0);  // every core of this rank (libtorch's default was 1 on some machines)
  const merge::MergeSpec spec = merge::load_merge_yaml(a.config);
  const size_t n = merge::run_merge(spec, a.out, a.overwrite, *comm);
  if (comm->rank() == 0) fmt::print("merged {} tensors with {} into {} ({} rank(s))\n", n, spec.method, a.out, comm->size());
  return kExitOk;
}

}  // namespace uqmerge::app
