// uqmerge/dist/communicator.hpp — the collectives uqmerge needs, behind one interface with an
// MPI backend (host buffers, CPU runs) and a NCCL backend (device buffers, one rank per GPU,
// bootstrapped over MPI). Blocking semantics on both: when a call returns, the result is in
// the buffer. Counts are in elements of `dtype`; any size (large messages are chunked).
// No MPI, CUDA or NCCL header leaks out of this file.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "uqmerge/io/dtype.hpp"

namespace uqmerge::dist {

enum class Backend { Mpi, Nccl };
std::string_view backend_name(Backend b);

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

// Ends the whole job: MPI_Abort when MPI is active, else std::exit. For the CLI's last resort.
[[noreturn]] void abort_job(int code);

}  // namespace uqmerge::dist
