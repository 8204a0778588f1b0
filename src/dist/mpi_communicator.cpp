// MPI backend of Communicator: host buffers, MPI_COMM_WORLD.
// fp16/bf16 have no MPI type: they travel as 16-bit words and are summed by user-defined ops
// that widen to fp32 per pair of operands.
#include <algorithm>
#include <climits>
#include <vector>

#include "mpi_util.hpp"
#include "uqmerge/dist/communicator.hpp"
#include "uqmerge/util/log.hpp"

namespace uqmerge::dist {

namespace {

constexpr size_t kChunk = size_t{1} << 30;  // elements per MPI call (counts are int)

void sum_bf16(void* in, void* inout, int* len, MPI_Datatype*) {
  auto* a = static_cast<const uint16_t*>(in);
  auto* b = static_cast<uint16_t*>(inout);
  for (int i = 0; i < *len; ++i) b[i] = float_to_bf16(bf16_to_float(a[i]) + bf16_to_float(b[i]));
}
void sum_f16(void* in, void* inout, int* len, MPI_Datatype*) {
  auto* a = static_cast<const uint16_t*>(in);
  auto* b = static_cast<uint16_t*>(inout);
  for (int i = 0; i < *len; ++i) b[i] = float_to_f16(f16_to_float(a[i]) + f16_to_float(b[i]));
}

MPI_Datatype mpi_type(DType t) {
  switch (t) {
    case DType::F64: return MPI_DOUBLE;
    case DType::F32: return MPI_FLOAT;
    case DType::F16:
    case DType::BF16:
    case DType::I16: return MPI_INT16_T;
    case DType::I64: return MPI_INT64_T;
    case DType::I32: return MPI_INT32_T;
    case DType::I8: return MPI_INT8_T;
    case DType::U8: return MPI_UINT8_T;
    case DType::BOOL: return MPI_C_BOOL;
  }
  return MPI_BYTE;
}

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator() {
    if (!MpiRuntime::active()) throw_internal("dist", "MPI is not initialised (create an MpiRuntime first)");
    comm_ = MPI_COMM_WORLD;
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
    detail::local_rank_size(comm_, local_rank_, local_size_);
    wd_ = std::make_unique<detail::Watchdog>(rank_, size_);
    CHECK_MPI(MPI_Op_create(&sum_bf16, /*commute=*/1, &op_bf16_));
    CHECK_MPI(MPI_Op_create(&sum_f16, 1, &op_f16_));
  }
  ~MpiCommunicator() override {
    wd_->stop();
    if (MpiRuntime::active()) {
      MPI_Op_free(&op_bf16_);
      MPI_Op_free(&op_f16_);
    }
  }

  Backend backend() const override { return Backend::Mpi; }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_rank() const override { return local_rank_; }
  int local_size() const override { return local_size_; }

  void barrier() override {
    detail::Watched w(*wd_, "barrier");
    MPI_Request req;
    CHECK_MPI(MPI_Ibarrier(comm_, &req));
    wait(req);
  }

  void broadcast(void* buf, size_t count, DType t, int root) override {
    detail::Watched w(*wd_, "broadcast");
    bcast(buf, count, t, root);
  }

  void allreduce_sum(void* buf, size_t count, DType t) override {
    detail::Watched w(*wd_, "allreduce");
    MPI_Op op = reduction_op(t);
    auto* p = static_cast<char*>(buf);
    const size_t es = dtype_size(t);
    for (size_t off = 0; off < count; off += kChunk) {
      const int n = static_cast<int>(std::min(kChunk, count - off));
      MPI_Request req;
      CHECK_MPI(MPI_Iallreduce(MPI_IN_PLACE, p + off * es, n, mpi_type(t), op, comm_, &req));
      wait(req);
    }
  }

  void allgather(const void* send, void* recv, size_t count, DType t) override {
    allgatherv(send, recv, std::vector<size_t>(static_cast<size_t>(size_), count), t);
  }

  void allgatherv(const void* send, void* recv, const std::vector<size_t>& counts, DType t) override {
    UQ_CHECK(counts.size() == static_cast<size_t>(size_), "allgatherv needs one count per rank");
    detail::Watched w(*wd_, "allgather");
    const size_t es = dtype_size(t);
    size_t total = 0, mine_off = 0;
    for (int r = 0; r < size_; ++r) {
      if (r == rank_) mine_off = total;
      total += counts[r];
    }
    auto* out = static_cast<char*>(recv);
    if (total <= static_cast<size_t>(INT_MAX)) {
      std::vector<int> c(size_), d(size_);
      size_t off = 0;
      for (int r = 0; r < size_; ++r) {
        c[r] = static_cast<int>(counts[r]);
        d[r] = static_cast<int>(off);
        off += counts[r];
      }
      // MPI forbids aliasing send and recv unless MPI_IN_PLACE: stage our block in place.
      if (counts[rank_] > 0 && static_cast<const char*>(send) != out + mine_off * es)
        std::copy_n(static_cast<const char*>(send), counts[rank_] * es, out + mine_off * es);
      MPI_Request req;
      CHECK_MPI(MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, out, c.data(), d.data(), mpi_type(t), comm_, &req));
      wait(req);
      return;
    }
    // Past int counts: one chunked broadcast per rank's block.
    size_t off = 0;
    for (int r = 0; r < size_; ++r) {
      if (r == rank_ && counts[r] > 0 && static_cast<const char*>(send) != out + off * es)
        std::copy_n(static_cast<const char*>(send), counts[r] * es, out + off * es);
      bcast(out + off * es, counts[r], t, r);
      off += counts[r];
    }
  }

  void reduce_scatter_sum(const void* send, void* recv, size_t count, DType t) override {
    detail::Watched w(*wd_, "reduce_scatter");
    MPI_Op op = reduction_op(t);
    const size_t es = dtype_size(t);
    if (count <= static_cast<size_t>(INT_MAX)) {
      MPI_Request req;
      CHECK_MPI(MPI_Ireduce_scatter_block(send, recv, static_cast<int>(count), mpi_type(t), op, comm_, &req));
      wait(req);
      return;
    }
    // Huge blocks: reduce each rank's block to its owner.
    const auto* in = static_cast<const char*>(send);
    for (int r = 0; r < size_; ++r)
      for (size_t off = 0; off < count; off += kChunk) {
        const int n = static_cast<int>(std::min(kChunk, count - off));
        const char* src = in + (static_cast<size_t>(r) * count + off) * es;
        char* dst = static_cast<char*>(recv) + off * es;
        MPI_Request req;
        CHECK_MPI(MPI_Ireduce(src, r == rank_ ? dst : nullptr, n, mpi_type(t), op, r, comm_, &req));
        wait(req);
      }
  }

  [[noreturn]] void abort(int code, const std::string& message) override {
    log::error("{}", message);
    std::fflush(stderr);
    MPI_Abort(comm_, code);
    std::_Exit(code);  // MPI_Abort does not return; keep [[noreturn]] honest regardless
  }

  void watch(const std::filesystem::path& dir, const WatchdogOptions& opts) override {
    detail::watch_ranks(*wd_, comm_, dir, opts, [&](const std::string& v) { abort(kExitInternal, v); });
  }

  void unwatch() override {
    barrier();  // no rank may judge a peer whose heartbeat is about to stop
    wd_->stop();
  }

 private:
  void bcast(void* buf, size_t count, DType t, int root) {
    auto* p = static_cast<char*>(buf);
    const size_t es = dtype_size(t);
    for (size_t off = 0; off < count; off += kChunk) {
      const int n = static_cast<int>(std::min(kChunk, count - off));
      MPI_Request req;
      CHECK_MPI(MPI_Ibcast(p + off * es, n, mpi_type(t), root, comm_, &req));
      wait(req);
    }
  }

  // Completes a nonblocking collective under the watchdog.
  void wait(MPI_Request& req) {
    detail::wait_request(req, *wd_, [&](const std::string& v) { abort(kExitInternal, v); });
  }

  MPI_Op reduction_op(DType t) const {
    switch (t) {
      case DType::BF16: return op_bf16_;
      case DType::F16: return op_f16_;
      case DType::F64:
      case DType::F32:
      case DType::I64:
      case DType::I32: return MPI_SUM;
      default: break;
    }
    throw_internal("dist/mpi", "sum of " + std::string(dtype_name(t)) + " is not supported");
  }

  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1, local_rank_ = 0, local_size_ = 1;
  MPI_Op op_bf16_ = MPI_OP_NULL, op_f16_ = MPI_OP_NULL;
  std::unique_ptr<detail::Watchdog> wd_;
};

}  // namespace

std::unique_ptr<Communicator> make_mpi_communicator() { return std::make_unique<MpiCommunicator>(); }

}  // namespace uqmerge::dist
