// dist: the MPI backend's collectives under mpirun -np 1 and -np 2. Expected values are
// written from the rank (rank + i patterns), never from the code under test.
#include <gtest/gtest.h>

#include <numeric>
#include <vector>

#include "uqmerge/dist/communicator.hpp"
#include "uqmerge/dist/sharding.hpp"

namespace uqmerge::dist {
namespace {

class Mpi : public ::testing::Test {
 protected:
  void SetUp() override { comm = make_mpi_communicator(); }
  std::unique_ptr<Communicator> comm;
};

TEST_F(Mpi, RankSizeLocal) {
  EXPECT_EQ(comm->backend(), Backend::Mpi);
  EXPECT_GE(comm->size(), 1);
  EXPECT_LT(comm->rank(), comm->size());
  EXPECT_EQ(comm->local_size(), comm->size());  // one node in the tests
  EXPECT_EQ(comm->local_rank(), comm->rank());
  comm->barrier();
}

TEST_F(Mpi, AllreduceSumF32F64I64) {
  const int r = comm->rank(), n = comm->size();
  std::vector<float> f(1000);
  std::vector<double> d(7);
  std::vector<int64_t> i(3);
  for (size_t k = 0; k < f.size(); ++k) f[k] = static_cast<float>(r + k);
  for (size_t k = 0; k < d.size(); ++k) d[k] = 0.5 * (r + 1) * k;
  for (size_t k = 0; k < i.size(); ++k) i[k] = (int64_t{1} << 40) * (r + 1);
  comm->allreduce_sum(f.data(), f.size(), DType::F32);
  comm->allreduce_sum(d.data(), d.size(), DType::F64);
  comm->allreduce_sum(i.data(), i.size(), DType::I64);
  const double ranks_sum = n * (n - 1) / 2.0;  // sum of r over ranks
  for (size_t k = 0; k < f.size(); ++k) ASSERT_EQ(f[k], static_cast<float>(ranks_sum + n * k));
  for (size_t k = 0; k < d.size(); ++k) ASSERT_DOUBLE_EQ(d[k], 0.5 * k * (ranks_sum + n));
  for (auto v : i) ASSERT_EQ(v, (int64_t{1} << 40) * static_cast<int64_t>(ranks_sum + n));
}

TEST_F(Mpi, AllreduceSumHalfAndBFloat16) {
  const int r = comm->rank(), n = comm->size();
  // Small integers are exact in both formats, so the expected sum is exact too.
  std::vector<uint16_t> h(33), b(33);
  for (size_t k = 0; k < h.size(); ++k) {
    h[k] = float_to_f16(static_cast<float>(r + k));
    b[k] = float_to_bf16(static_cast<float>(r - static_cast<int>(k)));
  }
  comm->allreduce_sum(h.data(), h.size(), DType::F16);
  comm->allreduce_sum(b.data(), b.size(), DType::BF16);
  const int ranks_sum = n * (n - 1) / 2;
  for (size_t k = 0; k < h.size(); ++k) {
    ASSERT_EQ(f16_to_float(h[k]), static_cast<float>(ranks_sum + n * static_cast<int>(k)));
    ASSERT_EQ(bf16_to_float(b[k]), static_cast<float>(ranks_sum - n * static_cast<int>(k)));
  }
}

TEST_F(Mpi, BroadcastFromEveryRoot) {
  for (int root = 0; root < comm->size(); ++root) {
    std::vector<uint16_t> v(5, 0);
    if (comm->rank() == root)
      for (size_t k = 0; k < v.size(); ++k) v[k] = float_to_bf16(static_cast<float>(100 * root + k));
    comm->broadcast(v.data(), v.size(), DType::BF16, root);
    for (size_t k = 0; k < v.size(); ++k) ASSERT_EQ(bf16_to_float(v[k]), static_cast<float>(100 * root + k));
  }
}

TEST_F(Mpi, AllgatherAndAllgatherv) {
  const int r = comm->rank(), n = comm->size();
  std::vector<float> mine{static_cast<float>(r), static_cast<float>(10 + r)};
  std::vector<float> all(2 * n);
  comm->allgather(mine.data(), all.data(), 2, DType::F32);
  for (int q = 0; q < n; ++q) {
    EXPECT_EQ(all[2 * q], q);
    EXPECT_EQ(all[2 * q + 1], 10 + q);
  }
  // Rank q contributes q + 1 elements of value q (like uneven tensor shards).
  std::vector<size_t> counts(n);
  for (int q = 0; q < n; ++q) counts[q] = q + 1;
  std::vector<int32_t> send(r + 1, r), recv(std::accumulate(counts.begin(), counts.end(), size_t{0}), -1);
  comm->allgatherv(send.data(), recv.data(), counts, DType::I32);
  size_t k = 0;
  for (int q = 0; q < n; ++q)
    for (int j = 0; j <= q; ++j) ASSERT_EQ(recv[k++], q);
}

TEST_F(Mpi, ReduceScatterSum) {
  const int r = comm->rank(), n = comm->size();
  const size_t count = 4;
  std::vector<float> send(count * n);
  for (size_t k = 0; k < send.size(); ++k) send[k] = static_cast<float>(k * (r + 1));
  std::vector<float> recv(count);
  comm->reduce_scatter_sum(send.data(), recv.data(), count, DType::F32);
  const float factor = n * (n + 1) / 2.0f;  // sum of (r + 1)
  for (size_t k = 0; k < count; ++k) ASSERT_EQ(recv[k], (r * count + k) * factor);
}

TEST_F(Mpi, ShardingAgreesOnEveryRank) {
  std::vector<uint64_t> bytes{100, 30, 70, 50, 50, 1};
  auto owner = assign_by_bytes(bytes, comm->size());
  std::vector<int32_t> mine(owner.begin(), owner.end()), root = mine;
  comm->broadcast(root.data(), root.size(), DType::I32, 0);
  EXPECT_EQ(mine, root);
}

}  // namespace
}  // namespace uqmerge::dist
