// bench/merge: the linear merge's data movement against this machine's memory copy bandwidth,
// in one process (bench/merge/run.sh runs it beside mergekit). Merger::compute over every
// candidate, 1 rank, as `uqmerge run` merges between evaluations (the result stays in memory):
//   mapped    inputs read from the page cache through the checkpoints' mappings
//   resident  inputs already in memory (the engine's resident store)
// bytes moved = input bytes read + output bytes written; best of REPS after one warm-up.
// Copy bandwidth: memcpy of 1 GiB on one thread, and torch's copy_ on THREADS threads, best of 5,
// counting read + write. Page-cache read bandwidth: pread of the inputs' files, no arithmetic.
//   bench_merge THREADS REPS MODEL_DIR...        prints "key value" lines
//   BENCH_MERGE_ONLY=mapped|resident             one mode only (profiling)
#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "uqmerge/dist/communicator.hpp"
#include "uqmerge/io/checkpoint.hpp"
#include "uqmerge/io/mapped_file.hpp"
#include "uqmerge/merge/engine.hpp"
#include "uqmerge/merge/sum_kernel.hpp"

using namespace uqmerge;

namespace {
double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }
template <class Fn>
double best_of(int reps, Fn&& fn) {
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    const double t0 = now();
    fn();
    best = std::min(best, now() - t0);
  }
  return best;
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: bench_merge THREADS REPS MODEL_DIR MODEL_DIR...\n");
    return 2;
  }
  dist::MpiRuntime mpi(&argc, &argv);
  const int threads = std::stoi(argv[1]), reps = std::stoi(argv[2]);
  at::set_num_threads(threads);
  torch::NoGradGuard ng;
  auto comm = dist::make_mpi_communicator();

  constexpr size_t kCopy = size_t{1} << 30;
  {
    std::vector<char> a(kCopy, 1), b(kCopy, 2);
    const double t1 = best_of(5, [&] { std::memcpy(b.data(), a.data(), kCopy); });
    std::printf("copy_gbs_1thread %.2f\n", 2.0 * kCopy / t1 / 1e9);
  }
  {
    at::Tensor a = torch::ones({static_cast<int64_t>(kCopy)}, torch::kUInt8), b = torch::zeros_like(a);
    const double tn = best_of(5, [&] { b.copy_(a); });
    std::printf("copy_gbs_threads %.2f\n", 2.0 * kCopy / tn / 1e9);
  }

  // The ceiling for any program that reads these inputs from the page cache: pread of every
  // candidate's safetensors files in 128 KiB pieces (the merge's chunk for fp16) on THREADS
  // threads, piece p on thread p mod THREADS, no arithmetic.
  {
    std::vector<std::filesystem::path> files;
    for (int i = 3; i < argc; ++i)
      for (const auto& e : std::filesystem::directory_iterator(argv[i]))
        if (e.path().extension() == ".safetensors") files.push_back(e.path());
    std::vector<std::shared_ptr<const MappedFile>> maps;
    double bytes = 0;
    for (const auto& f : files) {
      maps.push_back(MappedFile::open(f));
      bytes += static_cast<double>(maps.back()->size());
    }
    constexpr size_t kPiece = size_t{1} << 17;
    const double t = best_of(3, [&] {
      std::vector<std::thread> pool;
      for (int th = 0; th < threads; ++th)
        pool.emplace_back([&, th] {
          std::vector<std::byte> buf(kPiece);
          for (const auto& m : maps)
            for (size_t o = static_cast<size_t>(th) * kPiece; o < m->size(); o += static_cast<size_t>(threads) * kPiece)
              m->read(o, std::min(kPiece, m->size() - o), buf.data());
        });
      for (auto& p : pool) p.join();
    });
    std::printf("pagecache_read_gbs %.2f\n", bytes / t / 1e9);
  }

  std::vector<Checkpoint> cks;
  for (int i = 3; i < argc; ++i) cks.push_back(Checkpoint::open(argv[i]));
  std::vector<const Checkpoint*> cands;
  std::vector<merge::ModelEntry> entries;
  std::vector<size_t> members;
  for (size_t i = 0; i < cks.size(); ++i) {
    cands.push_back(&cks[i]);
    entries.push_back({cks[i].dir().filename().string(), cks[i].dir(), {{"weight", merge::ParamSetting::number(1.0 / static_cast<double>(cks.size()))}}});
    members.push_back(i);
  }
  std::printf("kernel_path %s\nthreads %d\nmodels %zu\n", merge::kernels::sum_kernel_path(), threads, cks.size());
  const char* only = std::getenv("BENCH_MERGE_ONLY");  // "mapped" or "resident" (profiling one mode)
  for (const bool resident : {false, true}) {
    if (only && std::string(only) != (resident ? "resident" : "mapped")) continue;
    merge::MergeConfig o;
    o.method = "linear";
    o.resident_bytes = resident ? ~uint64_t{0} : 0;
    merge::Merger merger(cands, entries, nullptr, o, /*incremental=*/false, *comm);
    merger.compute(members);  // warm-up: output buffers (and the resident copies) allocated
    const double in_bytes = static_cast<double>(merger.stats().bytes_read);  // one merge's inputs (warm-up)
    const double out_bytes = static_cast<double>(merger.stats().owned_bytes);
    const double t = best_of(reps, [&] { merger.compute(members); });
    const char* k = resident ? "resident" : "mapped";
    std::printf("%s_seconds %.4f\n%s_gb_moved %.3f\n%s_gbs %.2f\n", k, t, k, (in_bytes + out_bytes) / 1e9, k,
                (in_bytes + out_bytes) / t / 1e9);
  }
  return 0;
}
