// Benchmarks of io/safetensors on sharded checkpoints (run by bench/io/run.sh, which puts the
// reference tools beside it and computes ratios):
//   make DIR TOTAL_MB           writes a sharded F32/BF16 checkpoint of about TOTAL_MB
//   open DIR REPS               median time of SafetensorsSet::open_dir, bytes read from disk
//                               (/proc/self/io read_bytes+rchar) during the opens
//   touch DIR [release]         sums every element of every tensor (fp32 accumulators), page
//                               cache warm; prints GB/s and RSS growth; "release" drops each
//                               tensor's pages after use (MADV_DONTNEED) so RSS stays bounded
// Output: one "key value" per line, for the driver to parse.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "uqmerge/io/safetensors.hpp"

using namespace uqmerge;
namespace fs = std::filesystem;

namespace {

double now_s() {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}

long rss_kb() {
  std::ifstream in("/proc/self/statm");
  long pages_total = 0, pages_rss = 0;
  in >> pages_total >> pages_rss;
  return pages_rss * (sysconf(_SC_PAGESIZE) / 1024);
}

uint64_t proc_io(const char* key) {
  std::ifstream in("/proc/self/io");
  std::string k;
  uint64_t v = 0;
  while (in >> k >> v)
    if (k == std::string(key) + ":") return v;
  return 0;
}

int make(const fs::path& dir, uint64_t total_mb) {
  fs::create_directories(dir);
  // The same tensor count and shard count at every size, so only bytes differ: 64 matrices
  // [rows, 4096] (every 4th BF16) with a norm vector each, in 5 shards.
  std::vector<TensorSpec> specs;
  const int64_t rows = std::max<int64_t>(1, static_cast<int64_t>((total_mb << 20) / 64 / (4096 * 4)));
  for (int k = 0; k < 64; ++k) {
    specs.push_back({"layers." + std::to_string(k) + ".weight", k % 4 == 3 ? DType::BF16 : DType::F32, {rows, 4096}});
    specs.push_back({"layers." + std::to_string(k) + ".norm", DType::F32, {4096}});
  }
  uint64_t bytes = 0;
  for (const auto& t : specs) bytes += t.nbytes();
  const ShardPlan plan = plan_shards(specs, bytes / 5 + 1);
  std::vector<char> buf;
  for (const auto& s : plan.shards) {
    SafetensorsWriter w(dir / s.filename, s.tensors, {{"format", "pt"}});
    for (const auto& t : s.tensors) {
      buf.resize(t.nbytes());
      // Non-zero, cheap pattern (0.0..1.0 floats / bf16 halves of them).
      for (size_t i = 0; i + 4 <= buf.size(); i += 4) {
        const float v = static_cast<float>((i / 4) % 1000) * 1e-3f;
        std::memcpy(&buf[i], &v, 4);
      }
      w.write(t.name, buf.data(), buf.size());
    }
    w.commit();
  }
  if (plan.needs_index()) write_safetensors_index(dir, plan);
  std::printf("tensors %zu\nshards %zu\nbytes %llu\n", specs.size(), plan.shards.size(),
              static_cast<unsigned long long>(plan.total_bytes));
  return 0;
}

long minor_faults() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_minflt;
}

int open_bench(const fs::path& dir, int reps) {
  std::vector<double> t;
  const uint64_t rchar0 = proc_io("rchar"), read0 = proc_io("read_bytes");
  const long faults0 = minor_faults();
  size_t n = 0;
  for (int i = 0; i < reps; ++i) {
    const double a = now_s();
    auto s = SafetensorsSet::open_dir(dir);
    n = s.names().size();
    t.push_back(now_s() - a);
  }
  std::sort(t.begin(), t.end());
  // Pages mapped in (minor faults) per open: the header pages, not the tensor data.
  std::printf("tensors %zu\nopen_median_ms %.4f\nopen_min_ms %.4f\npages_touched_per_open %.1f\n"
              "rchar_per_open %llu\nread_bytes_per_open %llu\n", n,
              1e3 * t[t.size() / 2], 1e3 * t[0], static_cast<double>(minor_faults() - faults0) / reps,
              static_cast<unsigned long long>((proc_io("rchar") - rchar0) / reps),
              static_cast<unsigned long long>((proc_io("read_bytes") - read0) / reps));
  return 0;
}

// Sum with 16 independent fp32 lanes (vectorises); order fixed, so the result is reproducible.
float sum_f32(const float* p, size_t n) {
  float acc[16] = {};
  size_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int l = 0; l < 16; ++l) acc[l] += p[i + l];
  float s = 0;
  for (; i < n; ++i) s += p[i];
  for (float a : acc) s += a;
  return s;
}
float sum_bf16(const uint16_t* p, size_t n) {
  float acc[16] = {};
  size_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int l = 0; l < 16; ++l) {
      const uint32_t u = static_cast<uint32_t>(p[i + l]) << 16;
      float f;
      std::memcpy(&f, &u, 4);
      acc[l] += f;
    }
  float s = 0;
  for (; i < n; ++i) s += bf16_to_float(p[i]);
  for (float a : acc) s += a;
  return s;
}

int touch(const fs::path& dir, bool release) {
  auto set = SafetensorsSet::open_dir(dir);
  const long rss0 = rss_kb();
  long rss_peak = rss0;
  double total = 0;
  uint64_t bytes = 0;
  const double a = now_s();
  for (const auto& name : set.names()) {
    TensorView v = set.view(name);
    v.populate();  // one madvise instead of a page fault per 4 KiB
    if (v.dtype() == DType::F32)
      total += sum_f32(reinterpret_cast<const float*>(v.data()), v.numel());
    else
      total += sum_bf16(reinterpret_cast<const uint16_t*>(v.data()), v.numel());
    bytes += v.nbytes();
    rss_peak = std::max(rss_peak, rss_kb());
    if (release) v.release();
  }
  const double dt = now_s() - a;
  std::printf("bytes %llu\nseconds %.4f\ngbps %.3f\nrss_growth_mb %.1f\nrss_peak_growth_mb %.1f\nchecksum %.6e\n",
              static_cast<unsigned long long>(bytes), dt, bytes / dt / 1e9, (rss_kb() - rss0) / 1024.0,
              (rss_peak - rss0) / 1024.0, total);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s make DIR MB | open DIR REPS | touch DIR [release]\n", argv[0]);
    return 2;
  }
  try {
    const std::string cmd = argv[1];
    if (cmd == "make" && argc == 4) return make(argv[2], std::stoull(argv[3]));
    if (cmd == "open" && argc == 4) return open_bench(argv[2], std::stoi(argv[3]));
    if (cmd == "touch") return touch(argv[2], argc > 3 && std::string(argv[3]) == "release");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  std::fprintf(stderr, "bad arguments\n");
  return 2;
}
