// uqmerge/zoo/world.hpp — the demo's synthetic visual world (issue #7, docs/demo.md).
//
// A scene is 1–4 objects on a 2×2 grid of cells of an S×S picture (S = 64 by default): each
// object a shape (circle, square, triangle, cross) in a colour (red, green, blue, yellow,
// purple) of a random size, jittered inside its cell, on a plain or a noisy ("domain")
// background, sometimes with a short text glyph (two capital letters) in a free cell as
// clutter. Scenes are drawn with OpenCV and are a pure function of (seed, purpose ids).
//
// Question families, each a multiple-choice dataset whose distractors are real answers of the
// family (so a blind model cannot rule them out) and whose correct letter is uniform:
//   colour   "What colour is the <shape>?"           4 colours          held-in
//   shape    "What shape is the <colour> object?"    the 4 shapes       held-in
//   count    "How many objects are in the picture?"  1 2 3 4            held-in
//   exists   "Is there a <colour> object / <shape>?" yes no (~50/50)    held-in
//   position "Where is the <colour> <shape>?"        the 4 cells        held-out
//   mixed    the four held-in skills in new wording  as above           held-out
// Torch-free. Not here: training (zoo/trainer.hpp), the TSV writer's CLI (app/cmd_zoo.cpp).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "uqmerge/model/image.hpp"
#include "uqmerge/util/rng.hpp"

namespace uqmerge::zoo {

inline constexpr int kShapes = 4, kColours = 5, kCells = 4;
const std::vector<std::string>& shape_names();
const std::vector<std::string>& colour_names();
const std::vector<std::string>& cell_names();  // "top left", "top right", "bottom left", "bottom right"

struct Object {
  int shape = 0, colour = 0, cell = 0;
  int cx = 0, cy = 0, radius = 0;  // pixels
};

struct Scene {
  std::vector<Object> objects;
  bool noisy = false;               // domain: noisy textured background instead of a plain one
  uint8_t background[3] = {0, 0, 0};
  uint64_t noise_seed = 0;
  std::string glyph;                // clutter text ("" = none)
  int glyph_cell = -1;
};

struct WorldOptions {
  int image_size = 64;
  int patch_size = 16;  // vision tower patches: labels are per patch
};

enum class Family { Colour, Shape, Count, Exists, Position, Mixed };
const std::vector<Family>& all_families();
std::string family_name(Family f);
Family parse_family(const std::string& name);  // bad input for unknown names
bool held_in(Family f);

enum class Domain { Plain, Noisy, Both };

// A random scene: 1–4 objects in distinct cells; `noisy` picks the background domain.
Scene sample_scene(RngStream& rng, const WorldOptions& w, bool noisy);
model::RgbImage render(const Scene& s, const WorldOptions& w);
// The image with every pixel the CLIP mean colour (the blind control's input).
model::RgbImage blank_image(const WorldOptions& w);
// Per-patch labels in raster order, (S/patch)^2 entries: 0 = background, else colour+1 /
// shape+1 of the object covering at least a quarter of the patch.
struct PatchLabels {
  std::vector<int64_t> colour, shape;
};
PatchLabels patch_labels(const Scene& s, const WorldOptions& w);

struct Item {
  std::string question;
  std::vector<std::string> options;  // the family's own options (without the extras)
  int answer = 0;                    // index into options
};
// A question of `family` about scene s. Families that need a property the scene lacks (a
// unique shape for colour) draw a new scene from rng first, so the returned scene may differ.
Item ask(Scene& s, Family family, RngStream& rng, const WorldOptions& w);
// A caption naming every object, its colour and cell ("a red circle at the top left. ...").
std::string describe(const Scene& s);

// Every sentence the world can produce (questions, options, captions, prompt boilerplate), for
// building the tokenizer.
std::vector<std::string> corpus(uint64_t seed, int samples, const WorldOptions& w);

// PNG bytes of an image (OpenCV).
std::vector<uint8_t> encode_png(const model::RgbImage& img);
std::string base64_encode(const std::vector<uint8_t>& bytes);

}  // namespace uqmerge::zoo
