// dist: the NCCL backend on GPUs (one per rank). Named *_CUDA: skipped where no GPU is visible
// (tests/cuda_test.hpp), compiled and linked everywhere NCCL is found.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <vector>

#include "../cuda_test.hpp"
#include "uqmerge/dist/communicator.hpp"

namespace uqmerge::dist {
namespace {

template <typename T>
struct DeviceBuffer {
  explicit DeviceBuffer(size_t n) : n(n) { EXPECT_EQ(cudaMalloc(reinterpret_cast<void**>(&p), n * sizeof(T)), cudaSuccess); }
  ~DeviceBuffer() { cudaFree(p); }
  void upload(const std::vector<T>& v) { cudaMemcpy(p, v.data(), n * sizeof(T), cudaMemcpyHostToDevice); }
  std::vector<T> download() const {
    std::vector<T> v(n);
    cudaMemcpy(v.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost);
    return v;
  }
  T* p = nullptr;
  size_t n;
};

TEST(Nccl, AllreduceBroadcastAllgather_CUDA) {
  UQMERGE_SKIP_WITHOUT_CUDA(cuda_device_count());
  auto comm = make_nccl_communicator();
  const int r = comm->rank(), n = comm->size();
  ASSERT_EQ(comm->backend(), Backend::Nccl);
  const size_t count = 1 << 20;
  DeviceBuffer<float> f(count);
  std::vector<float> host(count);
  for (size_t k = 0; k < count; ++k) host[k] = static_cast<float>(r + (k % 1000));
  f.upload(host);
  comm->allreduce_sum(f.p, count, DType::F32);
  auto out = f.download();
  const float ranks_sum = n * (n - 1) / 2.0f;
  for (size_t k = 0; k < count; k += 997) ASSERT_EQ(out[k], ranks_sum + n * static_cast<float>(k % 1000));

  DeviceBuffer<uint16_t> b(8);
  std::vector<uint16_t> hb(8);
  for (int k = 0; k < 8; ++k) hb[k] = float_to_bf16(static_cast<float>(r + k));
  b.upload(hb);
  comm->allreduce_sum(b.p, 8, DType::BF16);
  auto ob = b.download();
  for (int k = 0; k < 8; ++k) ASSERT_EQ(bf16_to_float(ob[k]), ranks_sum + n * k);

  DeviceBuffer<float> bc(4);
  bc.upload(std::vector<float>(4, static_cast<float>(r == 0 ? 42 : -1)));
  comm->broadcast(bc.p, 4, DType::F32, 0);
  for (float v : bc.download()) ASSERT_EQ(v, 42.f);

  DeviceBuffer<float> mine(2), all(2 * n);
  mine.upload({static_cast<float>(r), static_cast<float>(10 + r)});
  comm->allgather(mine.p, all.p, 2, DType::F32);
  auto ga = all.download();
  for (int q = 0; q < n; ++q) ASSERT_EQ(ga[2 * q + 1], 10 + q);

  std::vector<size_t> counts(n);
  size_t total = 0;
  for (int q = 0; q < n; ++q) total += counts[q] = q + 1;
  DeviceBuffer<float> sv(r + 1), rv(total);
  sv.upload(std::vector<float>(r + 1, static_cast<float>(r)));
  comm->allgatherv(sv.p, rv.p, counts, DType::F32);
  auto gv = rv.download();
  size_t k = 0;
  for (int q = 0; q < n; ++q)
    for (int j = 0; j <= q; ++j) ASSERT_EQ(gv[k++], q);
  comm->barrier();
}

// Host buffers under NCCL: staged through the communicator's device buffer (256 MiB), so a
// block larger than it takes several chunks; each result is the hand-computed sum.
TEST(Nccl, HostBuffersAreStagedThroughTheDevice_CUDA) {
  UQMERGE_SKIP_WITHOUT_CUDA(cuda_device_count());
  auto comm = make_nccl_communicator();
  const int r = comm->rank(), n = comm->size();
  const float ranks_sum = n * (n - 1) / 2.0f;
  const size_t big = (size_t{300} << 20) / sizeof(float);  // 300 MiB: two chunks
  std::vector<float> x(big);
  for (size_t k = 0; k < big; ++k) x[k] = static_cast<float>(r + (k % 1000));
  comm->allreduce_sum(x.data(), big, DType::F32);
  for (size_t k = 0; k < big; k += 1009) ASSERT_EQ(x[k], ranks_sum + n * static_cast<float>(k % 1000)) << k;
  std::vector<double> d(5, r == 0 ? 7.5 : -1.0);
  comm->broadcast(d.data(), d.size(), DType::F64, 0);
  for (double v : d) ASSERT_EQ(v, 7.5);
  std::vector<size_t> counts(n);
  size_t total = 0;
  for (int q = 0; q < n; ++q) total += counts[q] = 3 + q;
  std::vector<int32_t> mine(3 + r, 100 + r), all(total, -1);
  comm->allgatherv(mine.data(), all.data(), counts, DType::I32);
  size_t k = 0;
  for (int q = 0; q < n; ++q)
    for (size_t j = 0; j < counts[q]; ++j) ASSERT_EQ(all[k++], 100 + q);
  std::vector<float> send(static_cast<size_t>(n) * 4), recv(4, -1);
  for (int q = 0; q < n; ++q)
    for (int j = 0; j < 4; ++j) send[q * 4 + j] = static_cast<float>(r * 10 + q + j);
  comm->reduce_scatter_sum(send.data(), recv.data(), 4, DType::F32);
  for (int j = 0; j < 4; ++j) ASSERT_EQ(recv[j], 10 * ranks_sum + n * static_cast<float>(r + j));
  comm->barrier();
}

}  // namespace
}  // namespace uqmerge::dist
