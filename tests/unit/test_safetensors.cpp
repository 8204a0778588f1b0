// io/safetensors: validation of every bad-header case, zero-copy views, the atomic writer,
// shard plans and sharded sets. (Byte-for-byte agreement with the Python package is in
// tests/reference/.)
#include <gtest/gtest.h>

#include <cstring>
#include <thread>
#include <vector>

#include "test_util.hpp"
#include "uqmerge/io/mapped_file.hpp"
#include "uqmerge/io/safetensors.hpp"

namespace uqmerge {
namespace {

using test::expect_bad_input;
using test::safetensors_bytes;
using test::TempDir;
using test::write_bytes;
using test::write_text;

std::string f32_bytes(std::vector<float> v) { return std::string(reinterpret_cast<const char*>(v.data()), v.size() * 4); }

TEST(SafetensorsReader, ReadsHandWrittenFile) {
  TempDir d;
  const std::string header =
      R"({"__metadata__":{"format":"pt"},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]},)"
      R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  write_bytes(d / "x.safetensors", safetensors_bytes(header, f32_bytes({1, 2, 3, 4})));
  auto f = SafetensorsFile::open(d / "x.safetensors");
  ASSERT_EQ(f->tensors().size(), 2u);
  EXPECT_EQ(f->tensors()[0].name, "a");  // data order
  EXPECT_EQ(f->metadata().at("format"), "pt");
  TensorView b = f->view("b");
  EXPECT_EQ(b.shape(), (std::vector<int64_t>{2}));
  float vals[2];
  std::memcpy(vals, b.data(), 8);
  EXPECT_EQ(vals[0], 3.f);
  EXPECT_EQ(vals[1], 4.f);
  // Zero-copy: the view points into the mapping, right after the header.
  EXPECT_EQ(b.data(), b.file().data() + 8 + header.size() + 8);
}

TEST(SafetensorsReader, ViewKeepsMappingAlive) {
  TempDir d;
  write_bytes(d / "x.safetensors",
              safetensors_bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", f32_bytes({7})));
  TensorView v;
  {
    auto f = SafetensorsFile::open(d / "x.safetensors");
    v = f->view("a");
  }
  std::filesystem::remove(d / "x.safetensors");  // unlinked, still mapped
  float x;
  std::memcpy(&x, v.data(), 4);
  EXPECT_EQ(x, 7.f);
}

TEST(SafetensorsReader, EmptyTensorsAndNoTensors) {
  TempDir d;
  write_bytes(d / "e.safetensors", safetensors_bytes(R"({"z":{"dtype":"F16","shape":[0,3],"data_offsets":[0,0]}})", ""));
  auto f = SafetensorsFile::open(d / "e.safetensors");
  EXPECT_EQ(f->view("z").nbytes(), 0u);
  write_bytes(d / "n.safetensors", safetensors_bytes("{}", ""));
  EXPECT_TRUE(SafetensorsFile::open(d / "n.safetensors")->tensors().empty());
}

struct BadCase {
  const char* label;
  std::string bytes;
  std::vector<std::string> fragments;
};

// gtest prints a parameter with this (instead of its raw bytes) in test names and failures.
void PrintTo(const BadCase& c, std::ostream* os) { *os << c.label; }

class SafetensorsBadInput : public ::testing::TestWithParam<BadCase> {};

TEST_P(SafetensorsBadInput, FailsWithOneLineNamingFileAndProblem) {
  TempDir d;
  const auto p = d / "bad.safetensors";
  write_bytes(p, GetParam().bytes);
  try {
    SafetensorsFile::open(p);
    ADD_FAILURE() << "no error for " << GetParam().label;
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::BadInput);
    const std::string what = e.what();
    EXPECT_EQ(what.find('\n'), std::string::npos);
    EXPECT_NE(what.find(p.string()), std::string::npos) << what;
    for (const auto& f : GetParam().fragments) EXPECT_NE(what.find(f), std::string::npos) << f << " not in " << what;
  }
}

const std::string kGood = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";

INSTANTIATE_TEST_SUITE_P(
    Cases, SafetensorsBadInput,
    ::testing::Values(
        BadCase{"empty file", "", {"truncated"}},
        BadCase{"shorter than the length word", std::string("\x10\x00\x00", 3), {"truncated"}},
        BadCase{"truncated data", safetensors_bytes(kGood, f32_bytes({1})), {"tensor 'a'", "truncated"}},
        BadCase{"header length larger than file", safetensors_bytes(kGood, f32_bytes({1, 2}), 4096),
                {"header length 4096 larger than the file"}},
        BadCase{"header over 100 MB", safetensors_bytes(kGood, "", 200'000'000), {"100 MB"}},
        BadCase{"header not JSON", safetensors_bytes("{not json", ""), {"not valid JSON"}},
        BadCase{"header an array", safetensors_bytes("[1,2]", ""), {"not a JSON object"}},
        BadCase{"header a number", safetensors_bytes("{\"a\":1}", ""), {"tensor 'a'", "not a JSON object"}},
        BadCase{"unknown dtype",
                safetensors_bytes(R"({"a":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}})", "xx"),
                {"unknown dtype 'F8_E4M3'", "BF16"}},
        BadCase{"offsets out of range",
                safetensors_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})", f32_bytes({1, 2})),
                {"tensor 'a' ends at data byte 16", "only 8 data bytes"}},
        BadCase{"overlapping",
                safetensors_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                  R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                                  f32_bytes({1, 2, 3})),
                {"'a' and 'b' overlap"}},
        BadCase{"shape/bytes mismatch",
                safetensors_bytes(R"({"a":{"dtype":"BF16","shape":[3],"data_offsets":[0,8]}})", f32_bytes({1, 2})),
                {"shape [3] of BF16 needs 6 bytes but data_offsets span 8"}},
        BadCase{"begin after end",
                safetensors_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", f32_bytes({1, 2})),
                {"begin 8 > end 0"}},
        BadCase{"negative dim",
                safetensors_bytes(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", f32_bytes({1, 2})),
                {"non-negative"}},
        BadCase{"overflowing shape",
                safetensors_bytes(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})",
                                  f32_bytes({1, 2})),
                {"more than 2^64"}},
        BadCase{"duplicate tensor name",
                safetensors_bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                                  R"("a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                                  f32_bytes({1, 2})),
                {"names 'a' twice"}},
        BadCase{"metadata not strings",
                safetensors_bytes(R"({"__metadata__":{"n":1}})", ""), {"__metadata__", "not a string"}},
        BadCase{"missing data_offsets", safetensors_bytes(R"({"a":{"dtype":"F32","shape":[2]}})", ""),
                {"data_offsets"}}),
    [](const auto& param_info) {
      std::string s = param_info.param.label;
      for (auto& c : s)
        if (!isalnum(static_cast<unsigned char>(c))) c = '_';
      return s;
    });

TEST(SafetensorsWriter, RoundTripAlignedWithMetadata) {
  TempDir d;
  const auto p = d / "out.safetensors";
  std::vector<TensorSpec> specs{{"h", DType::F16, {3}}, {"w", DType::F32, {2, 2}}, {"b", DType::U8, {5}},
                                {"d", DType::F64, {1}}};
  {
    SafetensorsWriter w(p, specs, {{"format", "pt"}});
    const uint16_t h[3] = {0x3c00, 0x4000, 0xc000};
    const float wv[4] = {1, 2, 3, 4};
    const uint8_t b[5] = {1, 2, 3, 4, 5};
    const double dv = 2.5;
    w.write("w", wv, sizeof wv);
    w.write("b", b, sizeof b);
    w.write("h", h, sizeof h);
    w.write("d", &dv, sizeof dv);
    EXPECT_FALSE(std::filesystem::exists(p)) << "visible before commit";
    w.commit();
  }
  auto f = SafetensorsFile::open(p);
  EXPECT_EQ(f->metadata().at("format"), "pt");
  for (const auto& t : f->tensors()) EXPECT_TRUE(f->view(t).aligned()) << t.name;
  // Larger elements first: d (8), w (4), h (2), b (1).
  ASSERT_EQ(f->tensors().size(), 4u);
  EXPECT_EQ(f->tensors()[0].name, "d");
  EXPECT_EQ(f->tensors()[3].name, "b");
  float wv[4];
  std::memcpy(wv, f->view("w").data(), 16);
  EXPECT_EQ(wv[3], 4.f);
  // Header length is a multiple of 8.
  uint64_t n = 0;
  std::memcpy(&n, f->view("d").file().data(), 8);
  EXPECT_EQ(n % 8, 0u);
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(d.path()), {}), 1) << "temporary file left behind";
}

TEST(SafetensorsWriter, AbandonedWriteLeavesNothing) {
  TempDir d;
  const auto p = d / "out.safetensors";
  {
    SafetensorsWriter w(p, {{"a", DType::F32, {4}}});
    const float v[4] = {};
    w.write("a", v, sizeof v);
  }  // no commit: e.g. an exception elsewhere
  EXPECT_TRUE(std::filesystem::is_empty(d.path()));
}

TEST(SafetensorsWriter, CommitRequiresEveryTensor) {
  TempDir d;
  SafetensorsWriter w(d / "o.safetensors", {{"a", DType::F32, {1}}, {"b", DType::F32, {1}}});
  const float v = 1;
  w.write("a", &v, 4);
  EXPECT_THROW(w.commit(), Error);
  EXPECT_THROW(w.write("c", &v, 4), Error);
  EXPECT_THROW(w.write("b", &v, 3), Error);
}

TEST(SafetensorsWriter, RangesFromThreadsMustCoverEachTensor) {
  TempDir d;
  std::vector<float> v(1000);
  for (size_t k = 0; k < v.size(); ++k) v[k] = static_cast<float>(k);
  {
    SafetensorsWriter w(d / "o.safetensors", {{"a", DType::F32, {1000}}});
    std::thread t1([&] { w.write_range("a", 0, v.data(), 600 * 4); });
    std::thread t2([&] { w.write_range("a", 600 * 4, v.data() + 600, 400 * 4); });
    t1.join();
    t2.join();
    EXPECT_THROW(w.write_range("a", 999 * 4, v.data(), 8), Error);  // past the tensor's end
    w.commit();
  }
  const auto f = SafetensorsFile::open(d / "o.safetensors");
  EXPECT_EQ(std::memcmp(f->view("a").data(), v.data(), v.size() * 4), 0);
  SafetensorsWriter partial(d / "p.safetensors", {{"a", DType::F32, {1000}}});
  partial.write_range("a", 0, v.data(), 999 * 4);
  EXPECT_THROW(partial.commit(), Error);  // one element short
}

TEST(MappedFile, ReadCopiesRangesAndNamesAFileThatShrank) {
  TempDir d;
  std::string bytes(8192, '\0');
  for (size_t k = 0; k < bytes.size(); ++k) bytes[k] = static_cast<char>(k * 7);
  test::write_bytes(d / "f.bin", bytes);
  const auto m = MappedFile::open(d / "f.bin");
  std::string got(100, '\0');
  m->read(5000, 100, got.data());
  EXPECT_EQ(got, bytes.substr(5000, 100));
  std::filesystem::resize_file(d / "f.bin", 4000);  // overwritten by someone during the run
  expect_bad_input([&] { m->read(3900, 200, got.data()); }, {(d / "f.bin").string(), "shrank"});
}

TEST(ShardPlan, SplitsByBudgetLikeTransformers) {
  std::vector<TensorSpec> t{{"a", DType::F32, {10}}, {"b", DType::F32, {10}}, {"c", DType::F32, {30}},
                            {"d", DType::F32, {5}}};  // 40, 40, 120, 20 bytes
  ShardPlan p = plan_shards(t, 100);
  ASSERT_EQ(p.shards.size(), 3u);  // [a b] [c (over budget, alone)] [d]
  EXPECT_EQ(p.shards[0].tensors.size(), 2u);
  EXPECT_EQ(p.shards[1].bytes, 120u);
  EXPECT_EQ(p.shards[2].tensors[0].name, "d");
  EXPECT_EQ(p.shards[0].filename, "model-00001-of-00003.safetensors");
  EXPECT_EQ(p.total_bytes, 220u);
  EXPECT_TRUE(p.needs_index());
  ShardPlan one = plan_shards(t, 1000);
  ASSERT_EQ(one.shards.size(), 1u);
  EXPECT_EQ(one.shards[0].filename, "model.safetensors");
}

// Writes a sharded model with our writer and reads it back through the index.
void write_sharded(const std::filesystem::path& dir, uint64_t budget) {
  std::vector<TensorSpec> t{{"x.a", DType::F32, {4}}, {"x.b", DType::F32, {4}}, {"x.c", DType::F32, {4}}};
  ShardPlan plan = plan_shards(t, budget);
  const float v[4] = {1, 2, 3, 4};
  for (const auto& s : plan.shards) {
    SafetensorsWriter w(dir / s.filename, s.tensors, {{"format", "pt"}});
    for (const auto& spec : s.tensors) w.write(spec.name, v, sizeof v);
    w.commit();
  }
  if (plan.needs_index()) write_safetensors_index(dir, plan);
}

TEST(SafetensorsSet, ShardedThroughIndex) {
  TempDir d;
  write_sharded(d.path(), 20);
  auto s = SafetensorsSet::open_dir(d.path());
  EXPECT_TRUE(s.has_index());
  EXPECT_EQ(s.files().size(), 3u);
  EXPECT_EQ(s.names(), (std::vector<std::string>{"x.a", "x.b", "x.c"}));
  EXPECT_EQ(s.index_metadata().at("total_size"), "48");
  EXPECT_EQ(s.total_bytes(), 48u);
  EXPECT_EQ(s.file_of("x.c").path().filename(), "model-00003-of-00003.safetensors");
}

TEST(SafetensorsSet, IndexNamingMissingShard) {
  TempDir d;
  write_sharded(d.path(), 20);
  std::filesystem::remove(d / "model-00002-of-00003.safetensors");
  expect_bad_input([&] { SafetensorsSet::open_dir(d.path()); },
                   {"model.safetensors.index.json", "model-00002-of-00003.safetensors", "does not exist"});
}

TEST(SafetensorsSet, SameTensorInTwoShards) {
  TempDir d;
  write_sharded(d.path(), 20);
  // Shard 2 now also holds x.a, which the index assigns to shard 1.
  {
    SafetensorsWriter w(d / "model-00002-of-00003.safetensors", {{"x.a", DType::F32, {4}}, {"x.b", DType::F32, {4}}});
    const float v[4] = {};
    w.write("x.a", v, 16);
    w.write("x.b", v, 16);
    w.commit();
  }
  expect_bad_input([&] { SafetensorsSet::open_dir(d.path()); },
                   {"model-00002-of-00003.safetensors", "'x.a'", "two shards"});
}

TEST(SafetensorsSet, SameTensorInTwoFilesWithoutIndex) {
  TempDir d;
  const float v[4] = {};
  for (const char* f : {"a.safetensors", "b.safetensors"}) {
    SafetensorsWriter w(d / f, {{"t", DType::F32, {4}}});
    w.write("t", v, 16);
    w.commit();
  }
  expect_bad_input([&] { SafetensorsSet::open_files({d / "a.safetensors", d / "b.safetensors"}); },
                   {"b.safetensors", "'t'", "two shards"});
}

TEST(SafetensorsSet, IndexListsTensorAbsentFromShard) {
  TempDir d;
  write_sharded(d.path(), 20);
  write_text(d / "model.safetensors.index.json",
             R"({"metadata":{},"weight_map":{"x.a":"model-00001-of-00003.safetensors","x.b":"model-00001-of-00003.safetensors",)"
             R"("x.c":"model-00003-of-00003.safetensors"}})");
  expect_bad_input([&] { SafetensorsSet::open_dir(d.path()); }, {"'x.b'", "does not contain it"});
}

TEST(SafetensorsSet, MalformedIndex) {
  TempDir d;
  write_sharded(d.path(), 20);
  write_text(d / "model.safetensors.index.json", R"({"metadata":{}})");
  expect_bad_input([&] { SafetensorsSet::open_dir(d.path()); }, {"index.json", "weight_map"});
  write_text(d / "model.safetensors.index.json", R"({"weight_map":{"x.a":"../etc/passwd"}})");
  expect_bad_input([&] { SafetensorsSet::open_dir(d.path()); }, {"not a plain file name"});
  write_text(d / "model.safetensors.index.json", "{oops");
  expect_bad_input([&] { SafetensorsSet::open_dir(d.path()); }, {"index.json", "not valid JSON"});
}

TEST(SafetensorsSet, DirectoryWithoutWeights) {
  TempDir d;
  write_text(d / "pytorch_model.bin", "x");
  expect_bad_input([&] { SafetensorsSet::open_dir(d.path()); }, {"no model.safetensors", "safe_serialization"});
}

}  // namespace
}  // namespace uqmerge
