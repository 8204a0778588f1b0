// data/dataset: VLMEvalKit TSV and JSONL rows, quoting, missing values, image references,
// seeded subsampling and distractor padding, and every bad-input case of issue #4.
#include <gtest/gtest.h>

#include <opencv2/imgcodecs.hpp>

#include "test_util.hpp"
#include "uqmerge/data/dataset.hpp"

namespace uqmerge::data {
namespace {

using test::expect_bad_input;
using test::TempDir;
using test::write_text;

std::string b64(const std::vector<uint8_t>& bytes) {
  static const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t v = bytes[i] << 16 | bytes[i + 1] << 8 | bytes[i + 2];
    out += {a[v >> 18], a[(v >> 12) & 63], a[(v >> 6) & 63], a[v & 63]};
  }
  if (i + 1 == bytes.size()) {
    const uint32_t v = bytes[i] << 16;
    out += {a[v >> 18], a[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == bytes.size()) {
    const uint32_t v = bytes[i] << 16 | bytes[i + 1] << 8;
    out += {a[v >> 18], a[(v >> 12) & 63], a[(v >> 6) & 63], '='};
  }
  return out;
}

std::string png_b64(int w, int h) {
  cv::Mat m(h, w, CV_8UC3, cv::Scalar(10, 20, 30));
  std::vector<uint8_t> buf;
  cv::imencode(".png", m, buf);
  return b64(buf);
}

const char* kHeader = "index\tquestion\thint\tA\tB\tC\tD\tanswer\tcategory\timage\n";

TEST(Base64, KnownVectors) {
  auto s = [](const std::vector<uint8_t>& v) { return std::string(v.begin(), v.end()); };
  EXPECT_EQ(s(base64_decode("TWFu", "t")), "Man");
  EXPECT_EQ(s(base64_decode("TWE=", "t")), "Ma");
  EXPECT_EQ(s(base64_decode("TQ==", "t")), "M");
  EXPECT_THROW(base64_decode("TW!u", "t"), Error);
  EXPECT_THROW(base64_decode("TWFuT", "t"), Error);  // a dangling 6 bits
}

TEST(Tsv, QuotingAndMissingValues) {
  const auto r = parse_tsv("a\tb\n\"x\ty\"\t\"say \"\"hi\"\"\nnext\"\n1\t2\r\n", "f.tsv");
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[1][0], "x\ty");
  EXPECT_EQ(r[1][1], "say \"hi\"\nnext");
  EXPECT_EQ(r[2][1], "2");
  expect_bad_input([] { parse_tsv("a\tb\n\"open\tx\n", "f.tsv"); }, {"f.tsv:2", "unterminated"});
  EXPECT_TRUE(is_missing("nan"));
  EXPECT_TRUE(is_missing("None"));
  EXPECT_FALSE(is_missing("0"));
}

TEST(Dataset, VlmEvalKitTsv) {
  TempDir d;
  const std::string img = png_b64(5, 3);
  write_text(d / "mmb.tsv", std::string(kHeader) +
                                "10\tWhat colour?\tLook closely.\tred\tgreen\tblue\tnan\tB\tcolour\t" + img + "\n" +
                                "11\t\"Two\tlines?\nyes\"\t\tyes\tno\t\t\t\tcount\t10\n");
  const Dataset ds = Dataset::load({"MMB", d / "mmb.tsv", -1, 0, true}, 1);
  ASSERT_EQ(ds.size(), 2u);
  EXPECT_EQ(ds.row(0).options, (std::vector<std::string>{"red", "green", "blue"}));  // "nan" skipped
  EXPECT_EQ(ds.row(0).answer, 1);
  EXPECT_EQ(ds.row(1).answer, -1);
  EXPECT_EQ(ds.row(1).question, "Two\tlines?\nyes");
  EXPECT_EQ(ds.question(0).options,
            (std::vector<std::string>{"red", "green", "blue", "I don't know", "None of the above"}));
  EXPECT_EQ(ds.question(0).hint, "Look closely.");
  EXPECT_EQ(ds.max_options(), 5u);
  const model::RgbImage a = ds.image(0), b = ds.image(1);  // row 11 refers to row 10's image
  EXPECT_EQ(a.width, 5);
  EXPECT_EQ(a.height, 3);
  EXPECT_EQ(a.pixels[0], 30);  // RGB order (the PNG was written from BGR 10, 20, 30)
  EXPECT_EQ(b.pixels, a.pixels);
}

TEST(Dataset, SubsampleAndPaddingAreSeeded) {
  TempDir d;
  std::string text = kHeader;
  const std::string img = png_b64(2, 2);
  for (int i = 0; i < 8; ++i)
    text += std::to_string(i) + "\tq" + std::to_string(i) + "\t\topt" + std::to_string(i) + "a\topt" + std::to_string(i) +
            "b\t\t\tA\tc\t" + img + "\n";
  write_text(d / "x.tsv", text);
  const DatasetSpec spec{"X", d / "x.tsv", 3, 4, false};
  const Dataset a = Dataset::load(spec, 7), b = Dataset::load(spec, 7);
  ASSERT_EQ(a.size(), 3u);
  std::vector<std::string> ia, ib;
  for (size_t i = 0; i < 3; ++i) {
    ia.push_back(a.row(i).index);
    ib.push_back(b.row(i).index);
    EXPECT_EQ(a.question(i).options, b.question(i).options);
    ASSERT_EQ(a.question(i).options.size(), 4u);  // 2 own + 2 distractors, distinct
    std::set<std::string> u(a.question(i).options.begin(), a.question(i).options.end());
    EXPECT_EQ(u.size(), 4u);
    EXPECT_EQ(a.question(i).options[0], a.row(i).options[0]);  // own options keep their letters
  }
  EXPECT_EQ(ia, ib);
  EXPECT_TRUE(std::is_sorted(ia.begin(), ia.end()));
  bool differs = false;
  for (uint64_t seed = 8; seed < 20 && !differs; ++seed) {
    const Dataset c = Dataset::load(spec, seed);
    for (size_t i = 0; i < 3; ++i) differs |= c.row(i).index != ia[i];
  }
  EXPECT_TRUE(differs) << "the seed must drive the subsample";
}

TEST(Dataset, JsonlWithImagePaths) {
  TempDir d;
  cv::imwrite((d / "pic.png").string(), cv::Mat(4, 6, CV_8UC3, cv::Scalar(1, 2, 3)));
  write_text(d / "x.jsonl", R"({"index": 1, "question": "Q?", "options": ["a", "b"], "answer": "A", "image": "pic.png"})"
                            "\n\n"
                            R"({"question": "R?", "A": "x", "B": "y", "C": "z", "image_path": "pic.png"})" "\n");
  const Dataset ds = Dataset::load({"J", d / "x.jsonl", -1, 0, true}, 1);
  ASSERT_EQ(ds.size(), 2u);
  EXPECT_EQ(ds.row(0).index, "1");
  EXPECT_EQ(ds.row(1).options.size(), 3u);
  EXPECT_EQ(ds.image(1).width, 6);
}

TEST(Dataset, BadInputNamesFileLineAndProblem) {
  TempDir d;
  const std::string img = png_b64(2, 2);
  auto load = [&](const std::string& body, int pad = 0) {
    write_text(d / "b.tsv", std::string(kHeader) + body);
    return Dataset::load({"B", d / "b.tsv", -1, pad, true}, 1);
  };
  expect_bad_input([&] { load("1\tq\t\ta\t\t\t\t\tc\t" + img + "\n"); }, {"b.tsv:2", "1 options; at least 2"});
  expect_bad_input([&] { load("1\tq\t\ta\tb\t\t\t\tc\t" + img + "\n1\tq\t\ta\tb\t\t\t\tc\t" + img + "\n"); },
                   {"b.tsv:3", "duplicate index '1'"});
  // A short cell that is no row's index: named as invalid base64 too, not only a missing row.
  expect_bad_input([&] { load("1\tq\t\ta\tb\t\t\t\tc\t99\n"); },
                   {"b.tsv:2", "image cell '99' is not valid base64 image data", "no row has that index"});
  expect_bad_input([&] { load("1\tq\t\ta\tb\t\t\tE\tc\t" + img + "\n"); }, {"b.tsv:2", "answer 'E'"});
  expect_bad_input([&] { load("1\tq\ta\tb\n"); }, {"b.tsv:2", "4 fields, the header 10"});
  expect_bad_input([&] { load("1\tq\t\ta\tb\t\t\t\tc\t" + img + "\n", 30); }, {"needs that many distinct options"});
  // A corrupt embedded image fails when the file is loaded, before any compute.
  expect_bad_input([&] { load("1\tq\t\ta\tb\t\t\t\tc\t" + std::string(80, '!') + "\n"); },
                   {"b.tsv:2", "row '1'", "not valid base64"});
  const Dataset notimg = load("1\tq\t\ta\tb\t\t\t\tc\t" + b64(std::vector<uint8_t>(70, 7)) + "\n");
  expect_bad_input([&] { notimg.image(0); }, {"b.tsv:2", "not a readable image"});
  write_text(d / "p.jsonl", R"({"question": "Q", "options": ["a", "b"], "image": "missing.png"})" "\n");
  const Dataset missing = Dataset::load({"P", d / "p.jsonl", -1, 0, true}, 1);
  expect_bad_input([&] { missing.image(0); }, {"p.jsonl:1", "missing.png", "missing or unreadable"});
  // 25 own options + 2 extras > 26 letters (JSONL lists are not limited by columns).
  std::string many = R"({"question": "Q", "image": "x.png", "options": [)";
  for (int i = 0; i < 25; ++i) many += (i ? ",\"o" : "\"o") + std::to_string(i) + "\"";
  write_text(d / "m.jsonl", many + "]}\n");
  expect_bad_input([&] { Dataset::load({"M", d / "m.jsonl", -1, 0, true}, 1); }, {"m.jsonl:1", "more than the 26 letters"});
  expect_bad_input([&] { Dataset::load({"N", d / "none.tsv", -1, 0, true}, 1); }, {"none.tsv", "cannot open"});
  write_text(d / "x.csv", "a,b\n");
  expect_bad_input([&] { Dataset::load({"C", d / "x.csv", -1, 0, true}, 1); }, {"unknown dataset format"});
}

}  // namespace
}  // namespace uqmerge::data
