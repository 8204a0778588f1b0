// uqmerge/dist/communicator.hpp — the collectives uqmerge needs, behind one interface with an
// MPI backend (host buffers, CPU runs) and a NCCL backend (device buffers, one rank per GPU,
// bootstrapped over MPI). Blocking semantics on both: when a call returns, the result is in
// the buffer. Counts are in elements of `dtype`; any size (large messages are chunked).
// No MPI, CUDA or NCCL header leaks out of this file.
#pragma once

#include <cstddef>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "uqmerge/io/dtype.hpp"

namespace uqmerge::dist {

enum class Backend { Mpi, Nccl };
std::string_view backend_name(Backend b);

// Hang detection (src/dist/watchdog.hpp): while a rank waits for a collective, a peer whose
// heartbeat has not changed for stale_s (it is stopped or frozen), or a collective incomplete
// after timeout_s (a peer alive but stuck), ends the job with a message naming the rank.
struct WatchdogOptions {
  double heartbeat_s = 2;   // how often each rank rewrites its heartbeat file
  double stale_s = 30;      // 0 = no heartbeat verdicts
  double timeout_s = 1800;  // 0 = no limit on one collective
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual Backend backend() const = 0;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual int local_rank() const = 0;  // rank among the processes of this node
  virtual int local_size() const = 0;

  virtual void barrier() = 0;
  // root's `count` elements -> every rank's buf.
  virtual void broadcast(void* buf, size_t count, DType dtype, int root) = 0;
  // In place: buf = sum over ranks. F64/F32/F16/BF16/I64/I32 (F16/BF16 summed in fp32 per
  // pair of operands on MPI; NCCL's own rules on GPUs).
  virtual void allreduce_sum(void* buf, size_t count, DType dtype) = 0;
  // recv[r*count .. (r+1)*count) = rank r's send. recv holds size()*count elements.
  virtual void allgather(const void* send, void* recv, size_t count, DType dtype) = 0;
  // Like allgather with per-rank counts: recv holds sum(counts), rank r's block at the
  // prefix sum of counts[0..r). send holds counts[rank()] elements.
  virtual void allgatherv(const void* send, void* recv, const std::vector<size_t>& counts, DType dtype) = 0;
  // send holds size()*count elements; recv (count) = sum over ranks of block rank() of send.
  virtual void reduce_scatter_sum(const void* send, void* recv, size_t count, DType dtype) = 0;
  // Ends every rank of the job with `code` after logging `message` on this rank. Never hangs.
  [[noreturn]] virtual void abort(int code, const std::string& message) = 0;

  // Collective. Sets the watchdog's limits and, with a non-empty dir (a directory every rank
  // sees, e.g. under output_dir), starts the heartbeats there; checks that every rank's
  // heartbeat is visible (else only timeout_s applies, with a warning). Until called, every
  // collective runs under the default timeout_s without heartbeats. unwatch() (collective)
  // stops the heartbeats and removes this rank's file.
  virtual void watch(const std::filesystem::path& dir, const WatchdogOptions& opts) = 0;
  virtual void unwatch() = 0;
};

// Owns MPI_Init_thread/MPI_Finalize for the process (FUNNELED). Create once in main().
class MpiRuntime {
 public:
  MpiRuntime(int* argc, char*** argv);
  ~MpiRuntime();
  MpiRuntime(const MpiRuntime&) = delete;
  MpiRuntime& operator=(const MpiRuntime&) = delete;
  static bool active();  // initialised and not finalised
};

// MPI_COMM_WORLD (needs an MpiRuntime).
std::unique_ptr<Communicator> make_mpi_communicator();
// NCCL over all ranks, device = local_rank % visible GPUs. Throws an Error when uqmerge was
// built without NCCL or no GPU is visible.
std::unique_ptr<Communicator> make_nccl_communicator();
bool built_with_nccl();
int cuda_device_count();  // 0 without NCCL build, driver or device
// Free and total bytes of CUDA device `device`; false without a NCCL build, driver or device.
bool cuda_memory(int device, size_t& free_bytes, size_t& total_bytes);

// Empty when the versions can work together, else the one-line cause and fix. NCCL codes as
// NCCL_VERSION_CODE (2.28.9 = 22809): a loaded libnccl of an older major.minor than the headers
// built against is refused. CUDA as cudaDriverGetVersion/cudaRuntimeGetVersion (13.0 = 13000):
// a driver of an older major than the runtime is refused (newer minors run on a driver of the
// same major: CUDA's minor-version compatibility).
std::string gpu_version_mismatch(int nccl_built, int nccl_loaded, int cuda_driver, int cuda_runtime);

// `backend:` as configured (auto | mpi | nccl) and whether this rank computes on a CUDA device
// -> the backend: auto = NCCL when the engine runs on CUDA devices and uqmerge has NCCL, MPI
// otherwise. nccl with the engine on the CPU, in a build without NCCL, or with no GPU visible
// is bad input naming `where` and what is missing (never a silent fallback to MPI).
Backend resolve_backend(const std::string& wanted, bool device_is_cuda, const std::string& where);

// Ends the whole job: MPI_Abort when MPI is active, else std::exit. For the CLI's last resort.
[[noreturn]] void abort_job(int code);

}  // namespace uqmerge::dist
