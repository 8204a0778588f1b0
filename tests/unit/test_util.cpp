// util: error kinds and exit codes, log levels, progress lines and durations, sharding splits.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "uqmerge/dist/communicator.hpp"
#include "uqmerge/dist/sharding.hpp"
#include "uqmerge/util/error.hpp"
#include "uqmerge/util/log.hpp"
#include "uqmerge/util/progress.hpp"

namespace uqmerge {
namespace {

TEST(Error, KindsMapToExitCodes) {
  try {
    throw_bad_input("data/x.tsv", "row 3: no question");
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "data/x.tsv: row 3: no question");
    EXPECT_EQ(e.exit_code(), kExitBadInput);
    EXPECT_EQ(e.message(), "row 3: no question");
  }
  try {
    try {
      throw_bad_input("a.safetensors", "truncated");
    } catch (const Error& e) {
      rethrow_with_context(e, "candidate 2");
    }
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "candidate 2: a.safetensors: truncated");
    EXPECT_EQ(e.kind(), ErrorKind::BadInput);
  }
  EXPECT_EQ(exit_code_for(std::runtime_error("x")), kExitInternal);
  EXPECT_EQ(Error(ErrorKind::NotImplemented, "run", "later").exit_code(), kExitNotImplemented);
  EXPECT_THROW(UQ_CHECK(1 == 2, "math"), Error);
}

TEST(Log, ParsesLevels) {
  EXPECT_EQ(log::parse_level("DEBUG"), log::Level::Debug);
  EXPECT_EQ(log::parse_level("warning"), log::Level::Warn);
  EXPECT_THROW(log::parse_level("loud"), Error);
}

TEST(Progress, FormatsDurations) {
  EXPECT_EQ(format_duration(0.42), "0.4s");
  EXPECT_EQ(format_duration(42), "42s");
  EXPECT_EQ(format_duration(185), "3m05s");
  EXPECT_EQ(format_duration(2 * 3600 + 3 * 60), "2h03m");
  EXPECT_EQ(format_duration(3 * 86400 + 4 * 3600), "3d04h");
  EXPECT_EQ(format_duration(-1), "?");
}

TEST(Progress, WholeLinesWhenNotATerminalWithRateAndEta) {
  char* buf = nullptr;
  size_t len = 0;
  std::FILE* out = open_memstream(&buf, &len);
  double t = 0;
  {
    ProgressOptions o;
    o.out = out;
    o.tty = 0;
    o.interval_s = 10;
    o.now = [&] { return t; };
    Progress p("models", 4, "model", o);
    t = 5;
    p.advance();  // 5 s < interval: silent
    t = 20;
    p.advance();  // prints: 2/4 at 0.1/s, ETA 20 s
    t = 40;
    p.advance(2);  // done: final line
  }
  std::fclose(out);
  const std::string s(buf, len);
  free(buf);
  EXPECT_EQ(s.find('\r'), std::string::npos);
  EXPECT_NE(s.find("models: 2/4 model  0.1 model/s  elapsed 20s  ETA 20s\n"), std::string::npos) << s;
  EXPECT_NE(s.find("models: 4/4 model  0.1 model/s  elapsed 40s\n"), std::string::npos) << s;
  EXPECT_EQ(std::count(s.begin(), s.end(), '\n'), 2);
}

TEST(Sharding, AssignByBytesIsBalancedAndDeterministic) {
  // Hand-computed, largest first: 10->r0; 7->r1; 6->r1 (7 < 10, r1=13); 5->r0 (10 < 13, r0=15);
  // 2->r1 (13 < 15, r1=15); 1->r0 (15 = 15: lower rank).
  const std::vector<uint64_t> bytes{5, 10, 1, 7, 6, 2};
  EXPECT_EQ(dist::assign_by_bytes(bytes, 2), (std::vector<int>{0, 0, 0, 1, 1, 1}));
  EXPECT_EQ(dist::assign_by_bytes(bytes, 1), (std::vector<int>(6, 0)));
  EXPECT_EQ(dist::assign_by_bytes({4, 4, 4}, 4), (std::vector<int>{0, 1, 2}));
}

TEST(Sharding, BlockRangesCoverEverythingOnce) {
  EXPECT_EQ(dist::block_range(10, 0, 3), (std::pair<uint64_t, uint64_t>{0, 4}));
  EXPECT_EQ(dist::block_range(10, 1, 3), (std::pair<uint64_t, uint64_t>{4, 7}));
  EXPECT_EQ(dist::block_range(10, 2, 3), (std::pair<uint64_t, uint64_t>{7, 10}));
  EXPECT_EQ(dist::block_range(2, 3, 4), (std::pair<uint64_t, uint64_t>{2, 2}));
}

// Hand-made version pairs (NCCL_VERSION_CODE: 2.28.9 = 22809, before 2.9: 2.8.4 = 2804; CUDA
// driver/runtime: 13.0 = 13000, 12.4 = 12040).
TEST(GpuVersions, CompatiblePairsPass) {
  EXPECT_EQ(dist::gpu_version_mismatch(22809, 22809, 13000, 13000), "");
  EXPECT_EQ(dist::gpu_version_mismatch(22809, 23004, 13020, 13000), "");  // newer NCCL, newer driver
  EXPECT_EQ(dist::gpu_version_mismatch(22809, 22803, 13000, 13000), "");  // an older patch of the same minor
  EXPECT_EQ(dist::gpu_version_mismatch(22809, 22809, 12080, 12040), "");
  EXPECT_EQ(dist::gpu_version_mismatch(22809, 22809, 12020, 12080), "");  // minor-version compatibility
  EXPECT_EQ(dist::gpu_version_mismatch(2804, 20900, 12000, 12000), "");   // old code format < new
}

TEST(GpuVersions, MismatchesNameBothVersionsAndTheFix) {
  const std::string nccl = dist::gpu_version_mismatch(22809, 21805, 13000, 13000);
  EXPECT_NE(nccl.find("the loaded libnccl is 2.18.5 but uqmerge was built against NCCL 2.28.9"), std::string::npos) << nccl;
  EXPECT_NE(nccl.find("LD_LIBRARY_PATH"), std::string::npos) << nccl;
  const std::string old_format = dist::gpu_version_mismatch(20900, 2804, 13000, 13000);
  EXPECT_NE(old_format.find("libnccl is 2.8.4 but uqmerge was built against NCCL 2.9.0"), std::string::npos) << old_format;
  const std::string cuda = dist::gpu_version_mismatch(22809, 22809, 12040, 13000);
  EXPECT_NE(cuda.find("driver supports CUDA 12.4 but uqmerge's runtime is CUDA 13.0"), std::string::npos) << cuda;
  EXPECT_NE(cuda.find("update the NVIDIA driver"), std::string::npos) << cuda;
  EXPECT_NE(dist::gpu_version_mismatch(22809, 22809, 0, 13000).find("no CUDA driver"), std::string::npos);
}

TEST(Backend, AutoIsNcclOnlyOnCudaWithNccl) {
  EXPECT_EQ(dist::resolve_backend("mpi", true, "c.yaml"), dist::Backend::Mpi);
  EXPECT_EQ(dist::resolve_backend("auto", false, "c.yaml"), dist::Backend::Mpi);
  EXPECT_EQ(dist::resolve_backend("auto", true, "c.yaml"),
            dist::built_with_nccl() ? dist::Backend::Nccl : dist::Backend::Mpi);
  try {
    dist::resolve_backend("gloo", false, "c.yaml");
    FAIL() << "an unknown backend was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::BadInput);
    EXPECT_NE(std::string(e.what()).find("c.yaml: backend: 'gloo' (valid: auto, mpi, nccl)"), std::string::npos) << e.what();
  }
}

TEST(Backend, NcclNamesWhatIsMissing) {
  // Which refusal applies depends on this build and machine; each names its cause and the fix.
  const char* why = !dist::built_with_nccl()          ? "built without NCCL"
                    : dist::cuda_device_count() == 0 ? "no GPU is visible"
                                                      : "the engine runs on the CPU";
  try {
    dist::resolve_backend("nccl", /*device_is_cuda=*/false, "c.yaml");
    FAIL() << "backend: nccl with the engine on the CPU was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::BadInput);
    const std::string m = e.what();
    EXPECT_NE(m.find(why), std::string::npos) << m;
    EXPECT_NE(m.find("backend: auto or mpi"), std::string::npos) << m;
  }
}

}  // namespace
}  // namespace uqmerge
