// NCCL backend of Communicator: device buffers, one rank per GPU (device = local rank modulo
// the visible devices), bootstrapped over MPI (rank 0's ncclUniqueId is broadcast). Each call
// is enqueued on the communicator's stream and waited for, so semantics match the MPI backend.
// Host buffers are accepted too: they are staged through a device buffer of at most kStage
// bytes, so the data still travels by NCCL (the merge engine's host shards until the sharded
// device-resident merge lands). Start-up refuses a loaded libnccl older than the headers it was
// built with, and a CUDA driver older than the runtime (gpu_version_mismatch).
// Compiled only when the CUDA toolkit and NCCL are found (UQMERGE_HAVE_NCCL); plain C++, no nvcc.
#include <cuda_runtime_api.h>
#include <nccl.h>

#include <algorithm>

#include "mpi_util.hpp"
#include "uqmerge/dist/communicator.hpp"
#include "uqmerge/util/log.hpp"

#define CHECK_CUDA(call)                                                                      \
  do {                                                                                        \
    const cudaError_t uq_e_ = (call);                                                         \
    if (uq_e_ != cudaSuccess)                                                                 \
      ::uqmerge::throw_internal(std::string(__FILE__) + ":" + std::to_string(__LINE__) + " rank " + \
                                    std::to_string(::uqmerge::dist::detail::world_rank()),    \
                                std::string(#call " failed: ") + cudaGetErrorString(uq_e_));  \
  } while (0)

#define CHECK_NCCL(call)                                                                      \
  do {                                                                                        \
    const ncclResult_t uq_r_ = (call);                                                        \
    if (uq_r_ != ncclSuccess)                                                                 \
      ::uqmerge::throw_internal(std::string(__FILE__) + ":" + std::to_string(__LINE__) + " rank " + \
                                    std::to_string(::uqmerge::dist::detail::world_rank()),    \
                                std::string(#call " failed: ") + ncclGetErrorString(uq_r_));  \
  } while (0)

namespace uqmerge::dist {

namespace {

ncclDataType_t nccl_type(DType t) {
  switch (t) {
    case DType::F64: return ncclFloat64;
    case DType::F32: return ncclFloat32;
    case DType::F16: return ncclFloat16;
    case DType::BF16: return ncclBfloat16;
    case DType::I64: return ncclInt64;
    case DType::I32: return ncclInt32;
    case DType::I8: return ncclInt8;
    case DType::U8:
    case DType::BOOL: return ncclUint8;
    case DType::I16: break;
  }
  throw_internal("dist/nccl", "dtype " + std::string(dtype_name(t)) + " has no NCCL type");
}

constexpr size_t kStage = size_t{256} << 20;  // bytes of the device buffer host data is staged through

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator() {
    if (!MpiRuntime::active()) throw_internal("dist/nccl", "MPI is not initialised (create an MpiRuntime first)");
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    detail::local_rank_size(MPI_COMM_WORLD, local_rank_, local_size_);
    wd_ = std::make_unique<detail::Watchdog>(rank_, size_);
    const int ndev = cuda_device_count();
    if (ndev == 0)
      throw_bad_input("backend: nccl", "no CUDA device visible on rank " + std::to_string(rank_) +
                                           " (use backend: mpi, or request GPUs from Slurm)");
    // NCCL refuses two ranks of one communicator on one GPU: say so before it does.
    if (local_size_ > ndev)
      throw_bad_input("backend: nccl", std::to_string(local_size_) + " ranks on this node but " + std::to_string(ndev) +
                                           " GPU(s) visible: start one rank per GPU (srun --ntasks-per-node=" +
                                           std::to_string(ndev) + ", or mpirun -npernode " + std::to_string(ndev) + ")");
    int nccl_loaded = 0, driver = 0, runtime = 0;
    CHECK_NCCL(ncclGetVersion(&nccl_loaded));
    cudaDriverGetVersion(&driver);
    cudaRuntimeGetVersion(&runtime);
    if (const std::string m = gpu_version_mismatch(NCCL_VERSION_CODE, nccl_loaded, driver, runtime); !m.empty())
      throw_bad_input("backend: nccl", m);
    device_ = local_rank_ % ndev;
    CHECK_CUDA(cudaSetDevice(device_));
    CHECK_CUDA(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    ncclUniqueId id{};
    if (rank_ == 0) CHECK_NCCL(ncclGetUniqueId(&id));
    CHECK_MPI(MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, MPI_COMM_WORLD));
    CHECK_NCCL(ncclCommInitRank(&comm_, size_, id, rank_));
  }
  ~NcclCommunicator() override {
    wd_->stop();
    if (stage_) cudaFree(stage_);
    if (comm_) ncclCommDestroy(comm_);
    if (stream_) cudaStreamDestroy(stream_);
  }

  Backend backend() const override { return Backend::Nccl; }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_rank() const override { return local_rank_; }
  int local_size() const override { return local_size_; }

  void barrier() override {
    // The GPUs are ordered by sync() after every call; MPI_Ibarrier orders the hosts.
    detail::Watched w(*wd_, "barrier");
    sync();
    MPI_Request req;
    CHECK_MPI(MPI_Ibarrier(MPI_COMM_WORLD, &req));
    detail::wait_request(req, *wd_, [&](const std::string& v) { abort(kExitInternal, v); });
  }

  void broadcast(void* buf, size_t count, DType t, int root) override {
    detail::Watched w(*wd_, "broadcast");
    if (on_device(buf)) {
      CHECK_NCCL(ncclBroadcast(buf, buf, count, nccl_type(t), root, comm_, stream_));
      sync();
      return;
    }
    staged_broadcast(static_cast<char*>(buf), count, t, root);
  }

  void allreduce_sum(void* buf, size_t count, DType t) override {
    detail::Watched w(*wd_, "allreduce");
    if (on_device(buf)) {
      CHECK_NCCL(ncclAllReduce(buf, buf, count, nccl_type(t), ncclSum, comm_, stream_));
      sync();
      return;
    }
    const size_t es = dtype_size(t), n_max = stage_bytes(count * es) / es;
    auto* p = static_cast<char*>(buf);
    for (size_t off = 0; off < count; off += n_max) {
      const size_t n = std::min(n_max, count - off);
      CHECK_CUDA(cudaMemcpyAsync(stage_, p + off * es, n * es, cudaMemcpyHostToDevice, stream_));
      CHECK_NCCL(ncclAllReduce(stage_, stage_, n, nccl_type(t), ncclSum, comm_, stream_));
      CHECK_CUDA(cudaMemcpyAsync(p + off * es, stage_, n * es, cudaMemcpyDeviceToHost, stream_));
      sync();
    }
  }

  void allgather(const void* send, void* recv, size_t count, DType t) override {
    if (!on_device(recv)) {
      allgatherv(send, recv, std::vector<size_t>(static_cast<size_t>(size_), count), t);
      return;
    }
    detail::Watched w(*wd_, "allgather");
    CHECK_NCCL(ncclAllGather(send, recv, count, nccl_type(t), comm_, stream_));
    sync();
  }

  void allgatherv(const void* send, void* recv, const std::vector<size_t>& counts, DType t) override {
    UQ_CHECK(counts.size() == static_cast<size_t>(size_), "allgatherv needs one count per rank");
    detail::Watched w(*wd_, "allgather");
    const size_t es = dtype_size(t);
    auto* out = static_cast<char*>(recv);
    if (!on_device(recv)) {
      // Host buffers: each rank's block broadcast from its owner through the staging buffer.
      size_t off = 0;
      for (int r = 0; r < size_; ++r) {
        if (r == rank_ && counts[r] > 0 && static_cast<const char*>(send) != out + off * es)
          std::copy_n(static_cast<const char*>(send), counts[r] * es, out + off * es);
        staged_broadcast(out + off * es, counts[r], t, r);
        off += counts[r];
      }
      return;
    }
    // NCCL has no allgatherv: one broadcast per rank's block, fused in a group.
    CHECK_NCCL(ncclGroupStart());
    size_t off = 0;
    for (int r = 0; r < size_; ++r) {
      const void* src = r == rank_ ? send : out + off * es;
      if (counts[r] > 0) CHECK_NCCL(ncclBroadcast(src, out + off * es, counts[r], nccl_type(t), r, comm_, stream_));
      off += counts[r];
    }
    CHECK_NCCL(ncclGroupEnd());
    sync();
  }

  void reduce_scatter_sum(const void* send, void* recv, size_t count, DType t) override {
    detail::Watched w(*wd_, "reduce_scatter");
    if (on_device(recv)) {
      CHECK_NCCL(ncclReduceScatter(send, recv, count, nccl_type(t), ncclSum, comm_, stream_));
      sync();
      return;
    }
    // Host buffers, in column chunks: every rank's piece of the chunk side by side in the
    // staging buffer, then this rank's reduced piece after them.
    const size_t es = dtype_size(t), R = static_cast<size_t>(size_);
    const size_t n_max = std::max<size_t>(1, stage_bytes((R + 1) * count * es) / es / (R + 1));
    const auto* in = static_cast<const char*>(send);
    auto* out = static_cast<char*>(recv);
    auto* st = static_cast<char*>(stage_);
    for (size_t off = 0; off < count; off += n_max) {
      const size_t n = std::min(n_max, count - off);
      for (size_t r = 0; r < R; ++r)
        CHECK_CUDA(cudaMemcpyAsync(st + r * n * es, in + (r * count + off) * es, n * es, cudaMemcpyHostToDevice, stream_));
      CHECK_NCCL(ncclReduceScatter(st, st + R * n * es, n, nccl_type(t), ncclSum, comm_, stream_));
      CHECK_CUDA(cudaMemcpyAsync(out + off * es, st + R * n * es, n * es, cudaMemcpyDeviceToHost, stream_));
      sync();
    }
  }

  void watch(const std::filesystem::path& dir, const WatchdogOptions& opts) override {
    sync();
    detail::watch_ranks(*wd_, MPI_COMM_WORLD, dir, opts, [&](const std::string& v) { abort(kExitInternal, v); });
  }

  void unwatch() override {
    barrier();
    wd_->stop();
  }

  [[noreturn]] void abort(int code, const std::string& message) override {
    log::error("{}", message);
    std::fflush(stderr);
    if (comm_) ncclCommAbort(comm_);  // frees peers blocked in a collective
    comm_ = nullptr;
    MPI_Abort(MPI_COMM_WORLD, code);
    std::_Exit(code);
  }

 private:
  // Waits for the stream, polling NCCL's asynchronous error (a dead peer) and the watchdog (a
  // stopped or stuck peer): either aborts the communicator, which frees this rank's kernels,
  // and ends the job naming the cause.
  void sync() {
    detail::wait_polling(
        [&] {
          const cudaError_t q = cudaStreamQuery(stream_);
          if (q == cudaSuccess) return true;
          if (q != cudaErrorNotReady) CHECK_CUDA(q);
          ncclResult_t async = ncclSuccess;
          CHECK_NCCL(ncclCommGetAsyncError(comm_, &async));
          if (async != ncclSuccess)
            abort(kExitInternal, "NCCL reported an error on rank " + std::to_string(rank_) + ": " +
                                     ncclGetErrorString(async) + " (a peer died or its network failed); ending the job");
          return false;
        },
        *wd_, [&](const std::string& v) { abort(kExitInternal, v); });
  }

  static bool on_device(const void* p) {
    cudaPointerAttributes a{};
    if (cudaPointerGetAttributes(&a, p) != cudaSuccess) {
      cudaGetLastError();  // an unregistered host pointer on old runtimes
      return false;
    }
    return a.type == cudaMemoryTypeDevice || a.type == cudaMemoryTypeManaged;
  }

  // The staging buffer, grown to min(want, kStage) bytes; returns its size.
  size_t stage_bytes(size_t want) {
    const size_t need = std::max<size_t>(64, std::min(want, kStage));
    if (need > stage_size_) {
      sync();
      if (stage_) CHECK_CUDA(cudaFree(stage_));
      stage_ = nullptr;
      CHECK_CUDA(cudaMalloc(&stage_, need));
      stage_size_ = need;
    }
    return stage_size_;
  }

  void staged_broadcast(char* p, size_t count, DType t, int root) {
    const size_t es = dtype_size(t), n_max = stage_bytes(count * es) / es;
    for (size_t off = 0; off < count; off += n_max) {
      const size_t n = std::min(n_max, count - off);
      if (rank_ == root) CHECK_CUDA(cudaMemcpyAsync(stage_, p + off * es, n * es, cudaMemcpyHostToDevice, stream_));
      CHECK_NCCL(ncclBroadcast(stage_, stage_, n, nccl_type(t), root, comm_, stream_));
      if (rank_ != root) CHECK_CUDA(cudaMemcpyAsync(p + off * es, stage_, n * es, cudaMemcpyDeviceToHost, stream_));
      sync();
    }
  }

  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  void* stage_ = nullptr;
  size_t stage_size_ = 0;
  std::unique_ptr<detail::Watchdog> wd_;
  int rank_ = 0, size_ = 1, local_rank_ = 0, local_size_ = 1, device_ = 0;
};

}  // namespace

std::unique_ptr<Communicator> make_nccl_communicator() { return std::make_unique<NcclCommunicator>(); }
bool built_with_nccl() { return true; }
bool cuda_memory(int device, size_t& free_bytes, size_t& total_bytes) {
  if (device < 0 || device >= cuda_device_count()) return false;
  int prev = 0;
  if (cudaGetDevice(&prev) != cudaSuccess || cudaSetDevice(device) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  const bool ok = cudaMemGetInfo(&free_bytes, &total_bytes) == cudaSuccess;
  if (!ok) cudaGetLastError();
  cudaSetDevice(prev);
  return ok;
}
int cuda_device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error
    return 0;
  }
  return n;
}

}  // namespace uqmerge::dist
