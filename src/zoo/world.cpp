// The demo's synthetic world (see include/uqmerge/zoo/world.hpp).
#include "uqmerge/zoo/world.hpp"

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <array>

#include "uqmerge/util/error.hpp"

namespace uqmerge::zoo {

namespace {
// Saturated, well separated RGB colours.
constexpr std::array<std::array<uint8_t, 3>, kColours> kRgb{{
    {220, 40, 40}, {40, 190, 60}, {50, 80, 230}, {235, 215, 40}, {160, 60, 200}}};

std::vector<int> shuffled(int n, RngStream& rng) {
  std::vector<int> v(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) v[static_cast<size_t>(i)] = i;
  for (int i = n - 1; i > 0; --i) std::swap(v[static_cast<size_t>(i)], v[rng.below(static_cast<uint64_t>(i) + 1)]);
  return v;
}

// `k` options: the answer and k-1 distinct distractors from `pool` names, shuffled.
Item choice(const std::string& question, const std::vector<std::string>& pool, int answer, int k, RngStream& rng) {
  std::vector<int> others;
  for (int i : shuffled(static_cast<int>(pool.size()), rng))
    if (i != answer && static_cast<int>(others.size()) < k - 1) others.push_back(i);
  others.push_back(answer);
  Item it;
  it.question = question;
  for (int i : shuffled(k, rng)) {
    if (others[static_cast<size_t>(i)] == answer) it.answer = static_cast<int>(it.options.size());
    it.options.push_back(pool[static_cast<size_t>(others[static_cast<size_t>(i)])]);
  }
  return it;
}

void draw_object(cv::Mat& m, const Object& o, const cv::Scalar& c) {
  const int r = o.radius;
  switch (o.shape) {
    case 0: cv::circle(m, {o.cx, o.cy}, r, c, cv::FILLED, cv::LINE_8); break;
    case 1: cv::rectangle(m, {o.cx - r, o.cy - r}, {o.cx + r, o.cy + r}, c, cv::FILLED, cv::LINE_8); break;
    case 2: {
      const std::vector<cv::Point> tri{{o.cx, o.cy - r}, {o.cx - r, o.cy + r}, {o.cx + r, o.cy + r}};
      cv::fillConvexPoly(m, tri, c, cv::LINE_8);
      break;
    }
    default: {
      const int t = std::max(2, r / 2);
      cv::rectangle(m, {o.cx - r, o.cy - t}, {o.cx + r, o.cy + t}, c, cv::FILLED, cv::LINE_8);
      cv::rectangle(m, {o.cx - t, o.cy - r}, {o.cx + t, o.cy + r}, c, cv::FILLED, cv::LINE_8);
    }
  }
}

const Object* find(const Scene& s, int colour, int shape) {
  for (const auto& o : s.objects)
    if ((colour < 0 || o.colour == colour) && (shape < 0 || o.shape == shape)) return &o;
  return nullptr;
}
int count_if(const Scene& s, int colour, int shape) {
  int n = 0;
  for (const auto& o : s.objects) n += (colour < 0 || o.colour == colour) && (shape < 0 || o.shape == shape);
  return n;
}
// One of the scene's objects satisfying `pred`, uniformly; when none does, the scene is redrawn
// (same domain) until one does.
template <class Pred>
const Object& pick_unique(Scene& s, RngStream& rng, const WorldOptions& w, Pred pred) {
  for (;;) {
    std::vector<const Object*> ok;
    for (const auto& o : s.objects)
      if (pred(o)) ok.push_back(&o);
    if (!ok.empty()) return *ok[rng.below(ok.size())];
    s = sample_scene(rng, w, s.noisy);
  }
}
}  // namespace

const std::vector<std::string>& shape_names() {
  static const std::vector<std::string> v{"circle", "square", "triangle", "cross"};
  return v;
}
const std::vector<std::string>& colour_names() {
  static const std::vector<std::string> v{"red", "green", "blue", "yellow", "purple"};
  return v;
}
const std::vector<std::string>& cell_names() {
  static const std::vector<std::string> v{"top left", "top right", "bottom left", "bottom right"};
  return v;
}

const std::vector<Family>& all_families() {
  static const std::vector<Family> v{Family::Colour, Family::Shape, Family::Count, Family::Exists, Family::Position,
                                     Family::Mixed};
  return v;
}
std::string family_name(Family f) {
  switch (f) {
    case Family::Colour: return "colour";
    case Family::Shape: return "shape";
    case Family::Count: return "count";
    case Family::Exists: return "exists";
    case Family::Position: return "position";
    case Family::Mixed: return "mixed";
  }
  return "?";
}
Family parse_family(const std::string& name) {
  for (Family f : all_families())
    if (family_name(f) == name) return f;
  throw_bad_input("family", "unknown '" + name + "' (valid: colour, shape, count, exists, position, mixed)");
}
bool held_in(Family f) { return f != Family::Position && f != Family::Mixed; }

Scene sample_scene(RngStream& rng, const WorldOptions& w, bool noisy) {
  Scene s;
  s.noisy = noisy;
  const int half = w.image_size / 2;
  const int n = 1 + static_cast<int>(rng.below(4));
  const auto cells = shuffled(kCells, rng);
  for (int i = 0; i < n; ++i) {
    Object o;
    o.cell = cells[static_cast<size_t>(i)];
    o.shape = static_cast<int>(rng.below(kShapes));
    o.colour = static_cast<int>(rng.below(kColours));
    o.radius = half * 5 / 16 + static_cast<int>(rng.below(static_cast<uint64_t>(half / 8 + 1)));  // 10..14 at S = 64
    const int slack = std::max(0, half / 2 - o.radius - 1);
    o.cx = (o.cell % 2) * half + half / 2 + static_cast<int>(rng.below(2 * slack + 1)) - slack;
    o.cy = (o.cell / 2) * half + half / 2 + static_cast<int>(rng.below(2 * slack + 1)) - slack;
    s.objects.push_back(o);
  }
  if (noisy) {
    for (auto& c : s.background) c = static_cast<uint8_t>(60 + rng.below(90));
  } else {
    for (auto& c : s.background) c = static_cast<uint8_t>(20 + rng.below(30));
  }
  s.noise_seed = rng.next_u64();
  if (n < kCells && rng.below(3) == 0) {  // clutter: two capital letters in a free cell
    s.glyph_cell = cells[static_cast<size_t>(n)];
    s.glyph = {static_cast<char>('A' + rng.below(26)), static_cast<char>('A' + rng.below(26))};
  }
  return s;
}

model::RgbImage render(const Scene& s, const WorldOptions& w) {
  const int S = w.image_size;
  cv::Mat m(S, S, CV_8UC3, cv::Scalar(s.background[0], s.background[1], s.background[2]));
  if (s.noisy) {
    RngStream rng(s.noise_seed, {1});
    for (int y = 0; y < S; ++y)
      for (int x = 0; x < S; ++x) {
        auto* p = m.ptr<uint8_t>(y) + 3 * x;
        const int d = static_cast<int>(rng.below(61)) - 30;
        for (int c = 0; c < 3; ++c) p[c] = static_cast<uint8_t>(std::clamp(p[c] + d, 0, 255));
      }
  }
  if (!s.glyph.empty()) {
    const int half = S / 2;
    const cv::Point org((s.glyph_cell % 2) * half + half / 8, (s.glyph_cell / 2) * half + half * 5 / 8);
    cv::putText(m, s.glyph, org, cv::FONT_HERSHEY_PLAIN, S / 64.0, cv::Scalar(200, 200, 200), 1, cv::LINE_8);
  }
  for (const auto& o : s.objects) {
    const auto& c = kRgb[static_cast<size_t>(o.colour)];
    draw_object(m, o, cv::Scalar(c[0], c[1], c[2]));
  }
  model::RgbImage img;
  img.width = img.height = S;
  img.pixels.assign(m.data, m.data + static_cast<size_t>(S) * S * 3);  // channels are stored as RGB here
  return img;
}

model::RgbImage blank_image(const WorldOptions& w) {
  model::RgbImage img;
  img.width = img.height = w.image_size;
  img.pixels.resize(static_cast<size_t>(w.image_size) * w.image_size * 3);
  for (size_t i = 0; i < img.pixels.size(); i += 3) {
    img.pixels[i] = 122;
    img.pixels[i + 1] = 116;
    img.pixels[i + 2] = 104;
  }
  return img;
}

PatchLabels patch_labels(const Scene& s, const WorldOptions& w) {
  const int S = w.image_size, p = w.patch_size, g = S / p;
  cv::Mat id(S, S, CV_8UC1, cv::Scalar(0));
  for (size_t i = 0; i < s.objects.size(); ++i) draw_object(id, s.objects[i], cv::Scalar(static_cast<double>(i + 1)));
  PatchLabels out;
  out.colour.assign(static_cast<size_t>(g * g), 0);
  out.shape.assign(static_cast<size_t>(g * g), 0);
  for (int py = 0; py < g; ++py)
    for (int px = 0; px < g; ++px) {
      std::array<int, 5> hits{};
      for (int y = py * p; y < (py + 1) * p; ++y)
        for (int x = px * p; x < (px + 1) * p; ++x) ++hits[id.at<uint8_t>(y, x)];
      int best = 0;
      for (size_t k = 1; k < hits.size(); ++k)
        if (hits[k] > 0 && (best == 0 || hits[k] > hits[static_cast<size_t>(best)])) best = static_cast<int>(k);
      if (best > 0 && hits[static_cast<size_t>(best)] * 4 >= p * p) {
        const Object& o = s.objects[static_cast<size_t>(best - 1)];
        out.colour[static_cast<size_t>(py * g + px)] = o.colour + 1;
        out.shape[static_cast<size_t>(py * g + px)] = o.shape + 1;
      }
    }
  return out;
}

Item ask(Scene& s, Family family, RngStream& rng, const WorldOptions& w) {
  const auto& shapes = shape_names();
  const auto& colours = colour_names();
  const bool mixed = family == Family::Mixed;
  if (mixed) family = std::array{Family::Colour, Family::Shape, Family::Count, Family::Exists}[rng.below(4)];
  switch (family) {
    case Family::Colour: {  // about an object whose shape is unique in the scene
      const Object& o = pick_unique(s, rng, w, [&](const Object& x) { return count_if(s, -1, x.shape) == 1; });
      const std::string q = mixed ? "Which colour does the " + shapes[static_cast<size_t>(o.shape)] + " have?"
                                  : "What colour is the " + shapes[static_cast<size_t>(o.shape)] + "?";
      return choice(q, colours, o.colour, 4, rng);
    }
    case Family::Shape: {  // about an object whose colour is unique in the scene
      const Object& o = pick_unique(s, rng, w, [&](const Object& x) { return count_if(s, x.colour, -1) == 1; });
      const std::string q = mixed ? "Which shape is " + colours[static_cast<size_t>(o.colour)] + "?"
                                  : "What shape is the " + colours[static_cast<size_t>(o.colour)] + " object?";
      return choice(q, shapes, o.shape, 4, rng);
    }
    case Family::Count: {
      static const std::vector<std::string> numbers{"1", "2", "3", "4"};
      const std::string q = mixed ? "What is the number of objects in the image?" : "How many objects are in the picture?";
      return choice(q, numbers, static_cast<int>(s.objects.size()) - 1, 4, rng);
    }
    case Family::Exists: {
      // One attribute (a colour or a shape); half the questions name one that is there.
      const bool by_colour = rng.below(2) == 0, yes = rng.below(2) == 0;
      const int n = by_colour ? kColours : kShapes;
      int v;
      if (yes) {
        const Object& o = s.objects[rng.below(s.objects.size())];
        v = by_colour ? o.colour : o.shape;
      } else {
        std::vector<int> absent;
        for (int k = 0; k < n; ++k)
          if (!(by_colour ? find(s, k, -1) : find(s, -1, k))) absent.push_back(k);
        if (absent.empty()) {  // every shape present (4 objects): ask about a present one
          const Object& o = s.objects[rng.below(s.objects.size())];
          v = by_colour ? o.colour : o.shape;
        } else {
          v = absent[rng.below(absent.size())];
        }
      }
      const std::string what = by_colour ? colours[static_cast<size_t>(v)] + " object" : shapes[static_cast<size_t>(v)];
      Item it;
      it.question = mixed ? "Does the image contain a " + what + "?" : "Is there a " + what + " in the picture?";
      it.options = {"yes", "no"};
      it.answer = (by_colour ? find(s, v, -1) : find(s, -1, v)) ? 0 : 1;
      return it;
    }
    case Family::Position: {  // about an object whose colour+shape is unique (always one exists)
      const Object& o = pick_unique(s, rng, w, [&](const Object& x) { return count_if(s, x.colour, x.shape) == 1; });
      return choice("Where is the " + colours[static_cast<size_t>(o.colour)] + " " + shapes[static_cast<size_t>(o.shape)] + "?",
                    cell_names(), o.cell, 4, rng);
    }
    case Family::Mixed: break;
  }
  throw_internal("zoo", "unhandled question family");
}

std::string describe(const Scene& s) {
  std::string out;
  for (const auto& o : s.objects) {
    if (!out.empty()) out += " ";
    out += "A " + colour_names()[static_cast<size_t>(o.colour)] + " " + shape_names()[static_cast<size_t>(o.shape)] +
           " at the " + cell_names()[static_cast<size_t>(o.cell)] + ".";
  }
  return out;
}

std::vector<std::string> corpus(uint64_t seed, int samples, const WorldOptions& w) {
  std::vector<std::string> out;
  RngStream rng(seed, {hash_name("corpus")});
  for (int i = 0; i < samples; ++i) {
    Scene s = sample_scene(rng, w, rng.below(2) == 0);
    out.push_back(describe(s));
    for (Family f : all_families()) {
      Item it = ask(s, f, rng, w);
      out.push_back(it.question);
      for (const auto& o : it.options) out.push_back(o);
    }
  }
  return out;
}

std::vector<uint8_t> encode_png(const model::RgbImage& img) {
  // OpenCV writes BGR: swap to keep the file's colours what render() drew.
  cv::Mat rgb(img.height, img.width, CV_8UC3, const_cast<uint8_t*>(img.pixels.data())), bgr;
  cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
  std::vector<uint8_t> out;
  if (!cv::imencode(".png", bgr, out)) throw_internal("zoo", "PNG encoding failed");
  return out;
}

std::string base64_encode(const std::vector<uint8_t>& b) {
  static const char* tab = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((b.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < b.size(); i += 3) {
    const uint32_t v = (uint32_t{b[i]} << 16) | (uint32_t{b[i + 1]} << 8) | b[i + 2];
    for (int k = 3; k >= 0; --k) out += tab[(v >> (6 * k)) & 63];
  }
  if (i + 1 == b.size()) {
    const uint32_t v = uint32_t{b[i]} << 16;
    out += tab[(v >> 18) & 63];
    out += tab[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == b.size()) {
    const uint32_t v = (uint32_t{b[i]} << 16) | (uint32_t{b[i + 1]} << 8);
    out += tab[(v >> 18) & 63];
    out += tab[(v >> 12) & 63];
    out += tab[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

}  // namespace uqmerge::zoo
