// Image preprocessing against PIL (make_image_cases.py): the bicubic resize must be
// bit-identical to PIL's classic two-pass resize (horizontal, then vertical) on every image and
// target size; its difference to Pillow 13's Image.resize (which reorders the passes for some
// shapes) is measured and bounded; the "pad" and "crop" pipelines within 1e-6 of PIL + numpy.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "uqmerge/io/safetensors.hpp"
#include "uqmerge/model/image.hpp"
#include "uqmerge/util/error.hpp"

namespace uqmerge::model {
namespace {

namespace fs = std::filesystem;

TEST(ReferenceImage, ResizeAndPipelinesMatchPil) {
  const char* env = std::getenv("UQMERGE_REF_DIR");
  ASSERT_NE(env, nullptr);
  const fs::path dir = fs::path(env) / "image";
  std::ifstream in(dir / "cases.json");
  const nlohmann::json cases = nlohmann::json::parse(in);
  auto ref = SafetensorsFile::open(dir / "reference.safetensors");
  int resized = 0, max_px_diff = 0, max_pil13_diff = 0;
  double mean_pil13_diff = 0;
  double max_pipe_diff = 0;
  for (const auto& c : cases["images"]) {
    const int k = c["k"];
    const RgbImage img = read_image(dir / ("img_" + std::to_string(k) + ".png"));
    ASSERT_EQ(img.width, c["w"].get<int>());
    ASSERT_EQ(img.height, c["h"].get<int>());
    for (const auto& t : cases["targets"]) {
      const int tw = t[0], th = t[1];
      const RgbImage r = resize_bicubic_pil(img, tw, th);
      const std::string suffix = std::to_string(k) + "_" + std::to_string(tw) + "x" + std::to_string(th);
      const TensorView two = ref->view("twopass_" + suffix), full = ref->view("resize_" + suffix);
      ASSERT_EQ(two.nbytes(), r.pixels.size());
      const auto* p = reinterpret_cast<const uint8_t*>(two.data());
      const auto* q = reinterpret_cast<const uint8_t*>(full.data());
      int d = 0, d13 = 0;
      double sum13 = 0;
      for (size_t i = 0; i < r.pixels.size(); ++i) {
        d = std::max(d, std::abs(int(p[i]) - int(r.pixels[i])));
        d13 = std::max(d13, std::abs(int(q[i]) - int(r.pixels[i])));
        sum13 += std::abs(int(q[i]) - int(r.pixels[i]));
      }
      if (d) std::printf("image %d (%dx%d) -> %dx%d: max difference %d to the two-pass reference\n", k, img.width, img.height, tw, th, d);
      max_px_diff = std::max(max_px_diff, d);
      max_pil13_diff = std::max(max_pil13_diff, d13);
      mean_pil13_diff = std::max(mean_pil13_diff, sum13 / r.pixels.size());
      ++resized;
    }
    for (const char* mode : {"pad", "crop"}) {
      Preprocessor pre;
      pre.mode = parse_aspect_mode(mode);
      const std::vector<float> out = pre(img);
      const TensorView v = ref->view(std::string(mode) + "_" + std::to_string(k));
      ASSERT_EQ(v.nbytes(), out.size() * 4);
      std::vector<float> want(out.size());
      std::memcpy(want.data(), v.data(), v.nbytes());
      for (size_t i = 0; i < out.size(); ++i) max_pipe_diff = std::max(max_pipe_diff, double(std::abs(out[i] - want[i])));
    }
  }
  std::printf("%d resizes: max difference to PIL's two-pass resize %d grey levels; to Pillow 13's Image.resize max %d, "
              "worst per-image mean %.3f; pad/crop pipelines vs PIL: max |diff| %.2e\n",
              resized, max_px_diff, max_pil13_diff, mean_pil13_diff, max_pipe_diff);
  EXPECT_EQ(max_px_diff, 0);
  EXPECT_LE(max_pil13_diff, 32);  // reordered passes only move clipped overshoot at hard edges
  EXPECT_LE(max_pipe_diff, 1e-6);
}

TEST(ReferenceImage, UnreadableImagesAreBadInput) {
  EXPECT_THROW(decode_image({1, 2, 3, 4}, "x.png"), Error);
  EXPECT_THROW(read_image("/nonexistent/image.png"), Error);
  EXPECT_THROW(parse_aspect_mode("anyres"), Error);
}

}  // namespace
}  // namespace uqmerge::model
