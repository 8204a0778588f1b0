// Image preprocessing (see include/uqmerge/model/image.hpp). The resampler follows the
// algorithm of Pillow's Resample.c (documented behaviour: bicubic a = -0.5, support scaled by
// the downscale factor, coefficients normalised then quantised to 22 fractional bits, uint8
// intermediate after the horizontal pass) so results are bit-identical to PIL's.
#include "uqmerge/model/image.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "uqmerge/util/error.hpp"

namespace uqmerge::model {

namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;

double bicubic(double x) {
  constexpr double a = -0.5;
  x = std::abs(x);
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
  if (x < 2.0) return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
  return 0.0;
}

struct Coeffs {
  int ksize = 0;
  std::vector<int> bounds;  // per output: xmin, count
  std::vector<int32_t> k;   // per output: ksize fixed-point weights
};

Coeffs precompute(int in_size, int out_size) {
  const double scale = static_cast<double>(in_size) / out_size;
  const double filterscale = std::max(scale, 1.0);
  const double support = 2.0 * filterscale;
  Coeffs c;
  c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  c.bounds.resize(2 * out_size);
  c.k.assign(static_cast<size_t>(out_size) * c.ksize, 0);
  std::vector<double> w(c.ksize);
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = (xx + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double total = 0;
    for (int x = 0; x < xmax; ++x) total += w[x] = bicubic((x + xmin - center + 0.5) * ss);
    for (int x = 0; x < xmax; ++x) {
      const double v = total != 0 ? w[x] / total : 0.0;
      c.k[static_cast<size_t>(xx) * c.ksize + x] =
          static_cast<int32_t>(v < 0 ? -0.5 + v * (1 << kPrecisionBits) : 0.5 + v * (1 << kPrecisionBits));
    }
    c.bounds[2 * xx] = xmin;
    c.bounds[2 * xx + 1] = xmax;
  }
  return c;
}

inline uint8_t clip8(int32_t v) {
  v >>= kPrecisionBits;
  return static_cast<uint8_t>(v < 0 ? 0 : v > 255 ? 255 : v);
}

}  // namespace

AspectMode parse_aspect_mode(const std::string& s) {
  if (s == "pad") return AspectMode::Pad;
  if (s == "crop" || s == "square" || s == "none" || s.empty()) return AspectMode::Crop;
  throw_bad_input("image_aspect_ratio", "'" + s + "' is not supported (pad; crop/square = resize + centre crop)");
}

RgbImage decode_image(const std::vector<uint8_t>& bytes, const std::string& where) {
  if (bytes.empty()) throw_bad_input(where, "empty image data");
  const cv::Mat raw(1, static_cast<int>(bytes.size()), CV_8UC1, const_cast<uint8_t*>(bytes.data()));
  cv::Mat bgr;
  try {
    bgr = cv::imdecode(raw, cv::IMREAD_COLOR | cv::IMREAD_IGNORE_ORIENTATION);
  } catch (const cv::Exception& e) {
    throw_bad_input(where, std::string("cannot decode image: ") + e.what());
  }
  if (bgr.empty()) throw_bad_input(where, "not a readable image (PNG, JPEG, BMP, WebP, TIFF...)");
  RgbImage img;
  img.width = bgr.cols;
  img.height = bgr.rows;
  img.pixels.resize(static_cast<size_t>(img.width) * img.height * 3);
  cv::Mat rgb(img.height, img.width, CV_8UC3, img.pixels.data());
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  return img;
}

RgbImage read_image(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_bad_input(path.string(), "cannot open image file (missing or unreadable)");
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return decode_image(bytes, path.string());
}

namespace {

// One separable pass along x (horizontal) or y, rounding to uint8 as Pillow does.
RgbImage resample_pass(const RgbImage& in, int out_size, bool horizontal) {
  const int in_size = horizontal ? in.width : in.height;
  const Coeffs c = precompute(in_size, out_size);
  RgbImage out;
  out.width = horizontal ? out_size : in.width;
  out.height = horizontal ? in.height : out_size;
  out.pixels.resize(static_cast<size_t>(out.width) * out.height * 3);
  for (int y = 0; y < out.height; ++y)
    for (int x = 0; x < out.width; ++x) {
      const int o = horizontal ? x : y;
      const int first = c.bounds[2 * o], n = c.bounds[2 * o + 1];
      const int32_t* k = &c.k[static_cast<size_t>(o) * c.ksize];
      int32_t s0 = 1 << (kPrecisionBits - 1), s1 = s0, s2 = s0;
      for (int i = 0; i < n; ++i) {
        const uint8_t* p = horizontal ? in.at(first + i, y) : in.at(x, first + i);
        s0 += p[0] * k[i];
        s1 += p[1] * k[i];
        s2 += p[2] * k[i];
      }
      uint8_t* q = out.at(x, y);
      q[0] = clip8(s0), q[1] = clip8(s1), q[2] = clip8(s2);
    }
  return out;
}

}  // namespace

RgbImage resize_bicubic_pil(const RgbImage& in, int out_w, int out_h) {
  UQ_CHECK(out_w > 0 && out_h > 0 && in.width > 0 && in.height > 0, "empty resize");
  const bool need_h = out_w != in.width, need_v = out_h != in.height;
  if (!need_h && !need_v) return in;
  if (!need_h) return resample_pass(in, out_h, false);
  if (!need_v) return resample_pass(in, out_w, true);
  // Horizontal first, as Pillow's Resample.c has done since 2017 and LLaVA's environment ran
  // (Pillow 13 reorders the passes for some sizes: docs/decisions.md).
  return resample_pass(resample_pass(in, out_w, true), out_h, false);
}

RgbImage expand_to_square(const RgbImage& in, const uint8_t bg[3]) {
  if (in.width == in.height) return in;
  const int s = std::max(in.width, in.height);
  RgbImage out;
  out.width = out.height = s;
  out.pixels.resize(static_cast<size_t>(s) * s * 3);
  for (size_t i = 0; i < out.pixels.size(); i += 3) std::copy(bg, bg + 3, &out.pixels[i]);
  // LLaVA's expand2square pastes at ((s - w) // 2, (s - h) // 2) along the short side.
  const int ox = (s - in.width) / 2, oy = (s - in.height) / 2;
  for (int y = 0; y < in.height; ++y) std::copy(in.at(0, y), in.at(0, y) + 3 * in.width, out.at(ox, oy + y));
  return out;
}

RgbImage center_crop(const RgbImage& in, int w, int h) {
  UQ_CHECK(w <= in.width && h <= in.height, "crop larger than image");
  const int top = (in.height - h) / 2, left = (in.width - w) / 2;
  RgbImage out;
  out.width = w;
  out.height = h;
  out.pixels.resize(static_cast<size_t>(w) * h * 3);
  for (int y = 0; y < h; ++y) std::copy(in.at(left, top + y), in.at(left, top + y) + 3 * w, out.at(0, y));
  return out;
}

RgbImage Preprocessor::geometry(const RgbImage& img) const {
  if (mode == AspectMode::Pad) {
    const uint8_t bg[3] = {static_cast<uint8_t>(mean[0] * 255), static_cast<uint8_t>(mean[1] * 255),
                           static_cast<uint8_t>(mean[2] * 255)};  // (122, 116, 104)
    return expand_to_square(img, bg);
  }
  return img;
}

std::vector<float> Preprocessor::operator()(const RgbImage& img) const {
  RgbImage g = geometry(img);
  RgbImage r;
  if (g.width == g.height) {
    r = resize_bicubic_pil(g, size, size);
  } else {  // shortest edge -> size (int() of the scaled long edge, as transformers), centre crop
    const bool wide = g.width > g.height;
    const int short_edge = wide ? g.height : g.width, long_edge = wide ? g.width : g.height;
    const int scaled = static_cast<int>(static_cast<double>(size) * long_edge / short_edge);
    r = resize_bicubic_pil(g, wide ? scaled : size, wide ? size : scaled);
    r = center_crop(r, size, size);
  }
  std::vector<float> out(static_cast<size_t>(3) * size * size);
  const size_t plane = static_cast<size_t>(size) * size;
  for (size_t i = 0; i < plane; ++i)
    for (int c = 0; c < 3; ++c)
      out[c * plane + i] = (static_cast<float>(r.pixels[3 * i + c]) * (1.0f / 255.0f) - mean[c]) / std[c];
  return out;
}

}  // namespace uqmerge::model
