// `uqmerge merge MERGEKIT.yaml -o OUT`: merge checkpoints without uncertainty (merge/job.hpp).
#include <fmt/format.h>

#include <filesystem>

#include "commands.hpp"
#include "uqmerge/merge/job.hpp"
#include "uqmerge/model/llava.hpp"
#include "uqmerge/util/error.hpp"

namespace uqmerge::app {

int cmd_merge(const MergeArgs& a) {
  const merge::MergeJob job = merge::load_mergekit_yaml(a.config);  // validated before any MPI or checkpoint work
  if (!(a.stale_s == 0 || a.stale_s >= 6)) throw_bad_input("--stale-s", "must be 0 (off) or at least 6 seconds (3 heartbeats)");
  if (!(a.timeout_s >= 0)) throw_bad_input("--timeout-s", "must be 0 (no limit) or a positive number of seconds");
  // The merge computes in host memory: auto is MPI; nccl is honoured (host shards staged through
  // the GPUs) and refused where it cannot run.
  const dist::Backend b = dist::resolve_backend(a.backend == "auto" ? "mpi" : a.backend, dist::cuda_device_count() > 0, "--backend");
  std::unique_ptr<dist::Communicator> comm =
      b == dist::Backend::Nccl ? dist::make_nccl_communicator() : dist::make_mpi_communicator();
  dist::WatchdogOptions wd;
  wd.stale_s = a.stale_s;
  wd.timeout_s = a.timeout_s;
  comm->watch(std::filesystem::path(a.out + ".heartbeat"), wd);
  model::set_torch_threads(0);  // every core of this rank (libtorch's default was 1 on some machines)
  const size_t n = merge::run_merge(job, a.out, a.overwrite, *comm);
  if (comm->rank() == 0)
    fmt::print("merged {} tensors with {} into {} ({} rank(s))\n", n, job.merge.method, a.out, comm->size());
  return kExitOk;
}

}  // namespace uqmerge::app
