// NCCL backend of Communicator: device buffers, one rank per GPU (device = local rank modulo
// the visible devices), bootstrapped over MPI (rank 0's ncclUniqueId is broadcast). Each call
// is enqueued on the communicator's stream and waited for, so semantics match the MPI backend.
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

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator() {
    if (!MpiRuntime::active()) throw_internal("dist/nccl", "MPI is not initialised (create an MpiRuntime first)");
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    detail::local_rank_size(MPI_COMM_WORLD, local_rank_, local_size_);
    const int ndev = cuda_device_count();
    if (ndev == 0)
      throw_bad_input("backend: nccl", "no CUDA device visible on rank " + std::to_string(rank_) +
                                           " (use backend: mpi, or request GPUs from Slurm)");
    device_ = local_rank_ % ndev;
    if (local_size_ > ndev)
      log::warn("{} ranks on this node share {} GPUs", local_size_, ndev);
    CHECK_CUDA(cudaSetDevice(device_));
    CHECK_CUDA(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    ncclUniqueId id{};
    if (rank_ == 0) CHECK_NCCL(ncclGetUniqueId(&id));
    CHECK_MPI(MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, MPI_COMM_WORLD));
    CHECK_NCCL(ncclCommInitRank(&comm_, size_, id, rank_));
  }
  ~NcclCommunicator() override {
    if (comm_) ncclCommDestroy(comm_);
    if (stream_) cudaStreamDestroy(stream_);
  }

  Backend backend() const override { return Backend::Nccl; }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_rank() const override { return local_rank_; }
  int local_size() const override { return local_size_; }

  void barrier() override {
    // A one-element allreduce orders the GPUs; MPI_Barrier orders the hosts.
    sync();
    CHECK_MPI(MPI_Barrier(MPI_COMM_WORLD));
  }

  void broadcast(void* buf, size_t count, DType t, int root) override {
    CHECK_NCCL(ncclBroadcast(buf, buf, count, nccl_type(t), root, comm_, stream_));
    sync();
  }

  void allreduce_sum(void* buf, size_t count, DType t) override {
    CHECK_NCCL(ncclAllReduce(buf, buf, count, nccl_type(t), ncclSum, comm_, stream_));
    sync();
  }

  void allgather(const void* send, void* recv, size_t count, DType t) override {
    CHECK_NCCL(ncclAllGather(send, recv, count, nccl_type(t), comm_, stream_));
    sync();
  }

  void allgatherv(const void* send, void* recv, const std::vector<size_t>& counts, DType t) override {
    UQ_CHECK(counts.size() == static_cast<size_t>(size_), "allgatherv needs one count per rank");
    // NCCL has no allgatherv: one broadcast per rank's block, fused in a group.
    const size_t es = dtype_size(t);
    auto* out = static_cast<char*>(recv);
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
    CHECK_NCCL(ncclReduceScatter(send, recv, count, nccl_type(t), ncclSum, comm_, stream_));
    sync();
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
  void sync() {
    // Polls so an asynchronous NCCL error (a dead peer) surfaces instead of hanging.
    for (;;) {
      const cudaError_t q = cudaStreamQuery(stream_);
      if (q == cudaSuccess) return;
      if (q != cudaErrorNotReady) CHECK_CUDA(q);
      ncclResult_t async = ncclSuccess;
      CHECK_NCCL(ncclCommGetAsyncError(comm_, &async));
      if (async != ncclSuccess) CHECK_NCCL(async);
    }
  }

  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  int rank_ = 0, size_ = 1, local_rank_ = 0, local_size_ = 1, device_ = 0;
};

}  // namespace

std::unique_ptr<Communicator> make_nccl_communicator() { return std::make_unique<NcclCommunicator>(); }
bool built_with_nccl() { return true; }
int cuda_device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error
    return 0;
  }
  return n;
}

}  // namespace uqmerge::dist
