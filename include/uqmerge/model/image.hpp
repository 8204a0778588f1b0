// uqmerge/model/image.hpp — LLaVA-1.5 image preprocessing with OpenCV, matching PIL:
//   decode (RGB, alpha dropped, EXIF orientation ignored — as PIL's convert("RGB"));
//   "pad"  (image_aspect_ratio of LLaVA-1.5): paste centred on a square of the CLIP mean colour
//          (122, 116, 104), then resize to S×S;
//   "crop" (llava-hf's CLIPImageProcessor, and LLaVA without pad): resize the shortest edge to
//          S, centre-crop S×S;
//   resize = PIL's bicubic (a = −0.5, antialiased support, 22-bit fixed-point coefficients,
//   horizontal pass then vertical, each rounded to uint8), rescale 1/255, normalise with the
//   CLIP mean/std -> [3, S, S] float32.
// Torch-free: callers wrap the buffer. Not here: augmentation (perturb/).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace uqmerge::model {

// 8-bit RGB, row-major, 3 bytes per pixel.
struct RgbImage {
  int width = 0, height = 0;
  std::vector<uint8_t> pixels;
  uint8_t* at(int x, int y) { return &pixels[(static_cast<size_t>(y) * width + x) * 3]; }
  const uint8_t* at(int x, int y) const { return &pixels[(static_cast<size_t>(y) * width + x) * 3]; }
};

enum class AspectMode { Pad, Crop };
AspectMode parse_aspect_mode(const std::string& image_aspect_ratio);  // "pad" | "square"/"crop"/"none"

// Decoding: bad-input Error naming `where` for data that is not an image.
RgbImage decode_image(const std::vector<uint8_t>& bytes, const std::string& where);
RgbImage read_image(const std::filesystem::path& path);

RgbImage resize_bicubic_pil(const RgbImage& in, int out_w, int out_h);
RgbImage expand_to_square(const RgbImage& in, const uint8_t background[3]);
RgbImage center_crop(const RgbImage& in, int w, int h);

struct Preprocessor {
  int size = 336;
  AspectMode mode = AspectMode::Pad;
  float mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
  float std[3] = {0.26862954f, 0.26130258f, 0.27577711f};
  // The RGB image LLaVA resizes (after pad or before crop): exposed for augmentation, which
  // acts on the original image.
  RgbImage geometry(const RgbImage& img) const;
  // [3, size, size] float32, channel-major.
  std::vector<float> operator()(const RgbImage& img) const;
};

}  // namespace uqmerge::model
