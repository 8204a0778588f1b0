// The demo world (zoo/world.hpp): hand-computed patch labels and pixels, every family's answer
// checked against the scene it asks about, answer letters spread, determinism, base64.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "uqmerge/data/dataset.hpp"
#include "uqmerge/model/image.hpp"
#include "uqmerge/zoo/world.hpp"

namespace uqmerge::zoo {
namespace {

Scene one_square() {
  Scene s;
  Object o;
  o.shape = 1;   // square
  o.colour = 2;  // blue
  o.cell = 0;
  o.cx = 16;
  o.cy = 16;
  o.radius = 12;  // x, y in [4, 28]
  s.objects.push_back(o);
  s.background[0] = s.background[1] = s.background[2] = 30;
  return s;
}

TEST(ZooWorld, PatchLabelsOfOneSquareByHand) {
  WorldOptions w;  // 64 px, patch 16: a 4x4 grid
  const PatchLabels l = patch_labels(one_square(), w);
  ASSERT_EQ(l.colour.size(), 16u);
  // The square covers 13x13 px of patches (0,0), (1,0), (0,1), (1,1) (>= 1/4 of 256 px each).
  for (int py = 0; py < 4; ++py)
    for (int px = 0; px < 4; ++px) {
      const bool in = px < 2 && py < 2;
      EXPECT_EQ(l.colour[static_cast<size_t>(py * 4 + px)], in ? 3 : 0) << px << "," << py;
      EXPECT_EQ(l.shape[static_cast<size_t>(py * 4 + px)], in ? 2 : 0) << px << "," << py;
    }
}

TEST(ZooWorld, PatchLabelNeedsAQuarterOfThePatch) {
  WorldOptions w;
  Scene s = one_square();
  s.objects[0].cx = 16 + 3;  // x in [7, 31]; y in [4, 28] -> patch (1,0) has 16x13 px
  s.objects[0].radius = 12;
  s.objects[0].cy = 16 + 15;  // y in [19, 43]: patches of row 2 get 5 rows = 80 px >= 64
  const PatchLabels l = patch_labels(s, w);
  EXPECT_EQ(l.colour[2 * 4 + 1], 3);  // (1,2): x 16..31 (16 cols) x y 32..43 (12 rows) = 192 px
  s.objects[0].cy = 16 + 4;            // y in [8, 32]: row 2 (y >= 32) gets 1 row = 16 px < 64
  EXPECT_EQ(patch_labels(s, w).colour[2 * 4 + 1], 0);
}

TEST(ZooWorld, RenderDrawsTheColourOnTheBackground) {
  WorldOptions w;
  const model::RgbImage img = render(one_square(), w);
  ASSERT_EQ(img.width, 64);
  const uint8_t* c = img.at(16, 16);
  EXPECT_EQ(c[0], 50);  // blue = (50, 80, 230)
  EXPECT_EQ(c[1], 80);
  EXPECT_EQ(c[2], 230);
  const uint8_t* bg = img.at(60, 60);
  EXPECT_EQ(bg[0], 30);
  EXPECT_EQ(bg[2], 30);
}

TEST(ZooWorld, EveryFamilyAnswersItsScene) {
  WorldOptions w;
  const auto& shapes = shape_names();
  const auto& colours = colour_names();
  for (Family f : all_families()) {
    std::map<int, int> letters;
    for (uint64_t i = 0; i < 400; ++i) {
      RngStream rng(9, {static_cast<uint64_t>(f), i});
      Scene s = sample_scene(rng, w, i % 2 == 0);
      const Item it = ask(s, f, rng, w);
      ASSERT_GE(it.answer, 0);
      ASSERT_LT(it.answer, static_cast<int>(it.options.size()));
      std::set<std::string> distinct(it.options.begin(), it.options.end());
      ASSERT_EQ(distinct.size(), it.options.size()) << it.question;
      ++letters[it.answer];
      const std::string& a = it.options[static_cast<size_t>(it.answer)];
      const std::string& q = it.question;
      auto has = [&](int colour, int shape) {
        for (const auto& o : s.objects)
          if ((colour < 0 || o.colour == colour) && (shape < 0 || o.shape == shape)) return true;
        return false;
      };
      bool consistent = false;
      if (q.find("How many") == 0 || q.find("What is the number") == 0) {
        consistent = a == std::to_string(s.objects.size());
      } else if (q.find("Is there") == 0 || q.find("Does the image") == 0) {
        for (int c = 0; c < kColours; ++c)
          if (q.find(" " + colours[static_cast<size_t>(c)] + " object") != std::string::npos) consistent = (a == "yes") == has(c, -1);
        for (int sh = 0; sh < kShapes; ++sh)
          if (q.find(" " + shapes[static_cast<size_t>(sh)] + " in") != std::string::npos ||
              q.find(" " + shapes[static_cast<size_t>(sh)] + "?") != std::string::npos)
            consistent = (a == "yes") == has(-1, sh);
      } else if (q.find("Where") == 0) {
        for (const auto& o : s.objects)
          if (q == "Where is the " + colours[static_cast<size_t>(o.colour)] + " " + shapes[static_cast<size_t>(o.shape)] + "?")
            consistent = a == cell_names()[static_cast<size_t>(o.cell)];
      } else if (q.find("colour") != std::string::npos) {  // colour of the <shape>
        for (const auto& o : s.objects)
          if (q.find(" " + shapes[static_cast<size_t>(o.shape)] + " ") != std::string::npos ||
              q.find(" " + shapes[static_cast<size_t>(o.shape)] + "?") != std::string::npos)
            consistent = a == colours[static_cast<size_t>(o.colour)];
      } else {  // shape of the <colour> object
        for (const auto& o : s.objects)
          if (q.find(" " + colours[static_cast<size_t>(o.colour)] + " ") != std::string::npos ||
              q.find(" " + colours[static_cast<size_t>(o.colour)] + "?") != std::string::npos)
            consistent = a == shapes[static_cast<size_t>(o.shape)];
      }
      ASSERT_TRUE(consistent) << family_name(f) << ": '" << q << "' -> '" << a << "' with " << s.objects.size() << " objects";
    }
    // Correct letters spread: no letter above 40 % (4 options) or 60 % (yes/no).
    for (const auto& [letter, n] : letters) EXPECT_LE(n, f == Family::Exists ? 240 : 160) << family_name(f) << " letter " << letter;
  }
}

TEST(ZooWorld, DeterministicAndBase64RoundTrips) {
  WorldOptions w;
  auto png = [&](uint64_t seed) {
    RngStream rng(seed, {1, 2});
    return encode_png(render(sample_scene(rng, w, true), w));
  };
  EXPECT_EQ(png(3), png(3));
  EXPECT_NE(png(3), png(4));
  const auto bytes = png(3);
  for (size_t cut : {bytes.size(), bytes.size() - 1, bytes.size() - 2}) {
    const std::vector<uint8_t> part(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(cut));
    EXPECT_EQ(data::base64_decode(base64_encode(part), "test"), part) << cut;
  }
  const model::RgbImage back = model::decode_image(bytes, "test");
  RngStream rng(3, {1, 2});
  EXPECT_EQ(back.pixels, render(sample_scene(rng, w, true), w).pixels);
}

}  // namespace
}  // namespace uqmerge::zoo
