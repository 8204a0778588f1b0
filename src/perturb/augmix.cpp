// AugMix with torchvision v2 semantics (see include/uqmerge/perturb/augmix.hpp). Each op is
// written from the behaviour of torchvision's uint8 tensor kernels: float32 math, round (grid
// ops) or truncate (blends) back to uint8.
#include "uqmerge/perturb/augmix.hpp"

#include <torch/torch.h>

#include <cmath>

#include "uqmerge/util/error.hpp"
#include "uqmerge/util/rng.hpp"

namespace uqmerge::perturb {

namespace {

constexpr int kBins = 10;  // torchvision AugMix: _PARAMETER_MAX

at::Tensor to_tensor(const model::RgbImage& img) {  // [3, H, W] uint8
  return torch::from_blob(const_cast<uint8_t*>(img.pixels.data()), {img.height, img.width, 3}, torch::kUInt8)
      .permute({2, 0, 1})
      .contiguous();
}

model::RgbImage from_tensor(const at::Tensor& t) {
  model::RgbImage img;
  img.height = static_cast<int>(t.size(1));
  img.width = static_cast<int>(t.size(2));
  const at::Tensor hwc = t.permute({1, 2, 0}).contiguous();
  img.pixels.assign(hwc.data_ptr<uint8_t>(), hwc.data_ptr<uint8_t>() + hwc.numel());
  return img;
}

// Inverse affine matrix about `center` (coordinates relative to the image centre).
std::array<double, 6> inverse_affine(double cx, double cy, double angle, double tx, double ty, double shx, double shy) {
  const double rot = angle * M_PI / 180.0, sx = shx * M_PI / 180.0, sy = shy * M_PI / 180.0;
  const double a = std::cos(rot - sy) / std::cos(sy);
  const double b = -(a * std::tan(sx) + std::sin(rot));
  const double c = std::sin(rot - sy) / std::cos(sy);
  const double d = std::cos(rot) - c * std::tan(sx);
  std::array<double, 6> m{d, -b, 0.0, -c, a, 0.0};
  m[2] += cx - m[0] * (cx + tx) - m[1] * (cy + ty);
  m[5] += cy - m[3] * (cx + tx) - m[4] * (cy + ty);
  return m;
}

// Resamples with the inverse matrix (output pixel centres -> input), bilinear, zeros outside.
at::Tensor warp(const at::Tensor& img, const std::array<double, 6>& m) {
  const int64_t H = img.size(1), W = img.size(2);
  const at::Tensor theta = torch::tensor({m[0], m[1], m[2], m[3], m[4], m[5]}, torch::kFloat64).to(torch::kFloat32).view({1, 2, 3});
  at::Tensor base = torch::empty({1, H, W, 3}, torch::kFloat32);
  base.select(3, 0).copy_(torch::linspace((1.0 - W) * 0.5, (W - 1.0) * 0.5, W, torch::kFloat32));
  base.select(3, 1).copy_(torch::linspace((1.0 - H) * 0.5, (H - 1.0) * 0.5, H, torch::kFloat32).unsqueeze(-1));
  base.select(3, 2).fill_(1);
  const at::Tensor scaled = theta.transpose(1, 2).div(torch::tensor({0.5f * W, 0.5f * H}, torch::kFloat32));
  const at::Tensor grid = base.view({1, H * W, 3}).bmm(scaled).view({1, H, W, 2});
  at::Tensor out = at::grid_sampler(img.unsqueeze(0).to(torch::kFloat32), grid, /*bilinear*/ 0, /*zeros*/ 0,
                                    /*align_corners=*/false);
  return out.round_().to(torch::kUInt8).squeeze(0);
}

at::Tensor blend(const at::Tensor& a, const at::Tensor& b, double ratio) {
  return a.mul(ratio).add_(b, 1.0 - ratio).clamp_(0, 255).to(torch::kUInt8);
}

at::Tensor gray(const at::Tensor& img) {  // float32 [1, H, W], floored as torchvision does for uint8
  const at::Tensor f = img.to(torch::kFloat32);
  return f[0].mul(0.2989).add_(f[1], 0.587).add_(f[2], 0.114).floor_().unsqueeze(0);
}

at::Tensor equalize(const at::Tensor& img) {
  const at::Tensor flat = img.flatten(1).to(torch::kLong);  // [3, HW]
  at::Tensor hist = torch::zeros({3, 256}, torch::kInt32);
  hist.scatter_add_(1, flat, torch::ones_like(flat, torch::kInt32));
  at::Tensor cum = hist.cumsum(1, torch::kInt32);
  const at::Tensor idx = cum.argmax(1, true);
  at::Tensor step = (flat.size(1) - hist.gather(1, idx)).div(255, "floor");  // [3, 1]
  const at::Tensor valid = step.ne(0);
  at::Tensor lut = cum.slice(1, 0, 255).add(step.div(2, "floor")).div(step.clamp_min(1), "floor").clamp_(0, 255).to(torch::kUInt8);
  lut = torch::cat({torch::zeros({3, 1}, torch::kUInt8), lut}, 1);
  const at::Tensor eq = lut.gather(1, flat).view_as(img);
  return torch::where(valid.view({3, 1, 1}), eq, img);
}

}  // namespace

const std::vector<std::string>& aug_op_names() {
  static const std::vector<std::string> n{"ShearX",   "ShearY",       "TranslateX", "TranslateY", "Rotate",
                                          "Posterize", "Solarize",     "AutoContrast", "Equalize", "Brightness",
                                          "Color",    "Contrast",     "Sharpness"};
  return n;
}

bool op_signed(AugOp op) {
  switch (op) {
    case AugOp::Posterize:
    case AugOp::Solarize:
    case AugOp::AutoContrast:
    case AugOp::Equalize: return false;
    default: return true;
  }
}

double op_magnitude(AugOp op, int level, int height, int width) {
  UQ_CHECK(level >= 0 && level < kBins, "magnitude level out of range");
  auto bin = [&](double lo, double hi) { return torch::linspace(lo, hi, kBins, torch::kFloat32)[level].item<double>(); };
  switch (op) {
    case AugOp::ShearX:
    case AugOp::ShearY: return bin(0.0, 0.3);
    case AugOp::TranslateX: return bin(0.0, width / 3.0);
    case AugOp::TranslateY: return bin(0.0, height / 3.0);
    case AugOp::Rotate: return bin(0.0, 30.0);
    case AugOp::Posterize:
      return (4 - (torch::arange(kBins) / ((kBins - 1) / 4.0))).round().to(torch::kInt)[level].item<double>();
    case AugOp::Solarize: return bin(1.0, 0.0);
    case AugOp::AutoContrast:
    case AugOp::Equalize: return 0.0;
    case AugOp::Brightness:
    case AugOp::Color:
    case AugOp::Contrast:
    case AugOp::Sharpness: return bin(0.0, 0.9);
  }
  return 0.0;
}

model::RgbImage apply_op(const model::RgbImage& im, AugOp op, double mag) {
  torch::NoGradGuard ng;
  const at::Tensor img = to_tensor(im);
  const double H = im.height, W = im.width;
  at::Tensor out;
  switch (op) {
    case AugOp::ShearX:  // centre (0, 0) of the image = its top-left corner
      out = warp(img, inverse_affine(-W * 0.5, -H * 0.5, 0, 0, 0, std::atan(mag) * 180.0 / M_PI, 0));
      break;
    case AugOp::ShearY:
      out = warp(img, inverse_affine(-W * 0.5, -H * 0.5, 0, 0, 0, 0, std::atan(mag) * 180.0 / M_PI));
      break;
    case AugOp::TranslateX: out = warp(img, inverse_affine(0, 0, 0, static_cast<int>(mag), 0, 0, 0)); break;
    case AugOp::TranslateY: out = warp(img, inverse_affine(0, 0, 0, 0, static_cast<int>(mag), 0, 0)); break;
    case AugOp::Rotate: {
      const double a = std::fmod(std::fmod(mag, 360.0) + 360.0, 360.0);
      if (a == 0) out = img.clone();
      else if (a == 180) out = torch::rot90(img, 2, {1, 2});
      else if (im.width == im.height && a == 90) out = torch::rot90(img, 1, {1, 2});
      else if (im.width == im.height && a == 270) out = torch::rot90(img, 3, {1, 2});
      else out = warp(img, inverse_affine(0, 0, -a, 0, 0, 0, 0));
      break;
    }
    case AugOp::Posterize: {
      const int bits = static_cast<int>(mag);
      out = bits >= 8 ? img.clone() : img.bitwise_and(static_cast<int64_t>(((1 << bits) - 1) << (8 - bits)));
      break;
    }
    case AugOp::Solarize: out = torch::where(img >= 255.0 * mag, 255 - img, img); break;
    case AugOp::AutoContrast: {
      at::Tensor f = img.to(torch::kFloat32);
      at::Tensor lo = f.amin({1, 2}, true), hi = f.amax({1, 2}, true);
      const at::Tensor eq = hi == lo;
      at::Tensor inv = (hi - lo).mul_(1.0 / 255.0);
      lo = lo.masked_fill(eq, 0.0);
      inv = inv.masked_fill(eq, 1.0);
      out = f.sub(lo).div_(inv).clamp_(0, 255).to(torch::kUInt8);
      break;
    }
    case AugOp::Equalize: out = equalize(img); break;
    case AugOp::Brightness: out = img.mul(1.0 + mag).clamp_(0, 255).to(torch::kUInt8); break;
    case AugOp::Color: out = blend(img, gray(img), 1.0 + mag); break;
    case AugOp::Contrast: out = blend(img, gray(img).mean(), 1.0 + mag); break;
    case AugOp::Sharpness: {
      if (im.width <= 2 || im.height <= 2) {
        out = img.clone();
        break;
      }
      const double a = 1.0 / 13.0, b = 5.0 / 13.0;
      const at::Tensor k = torch::tensor({a, a, a, a, b, a, a, a, a}, torch::kFloat32).view({1, 1, 3, 3}).expand({3, 1, 3, 3});
      at::Tensor f = img.to(torch::kFloat32).unsqueeze(0);
      const std::vector<int64_t> one{1, 1}, zero{0, 0};
      at::Tensor blur = at::conv2d(f, k, std::optional<at::Tensor>(), one, zero, one, 3).round_();
      at::Tensor view = f.slice(2, 1, -1).slice(3, 1, -1);
      view.add_(blur.sub_(view), 1.0 - (1.0 + mag));
      out = f.squeeze(0).clamp_(0, 255).to(torch::kUInt8);
      break;
    }
  }
  return from_tensor(out);
}

AugMixDraw augmix_draw(const AugMixConfig& cfg, uint64_t seed) {
  RngStream rng(seed, {0x617567ull});
  AugMixDraw d;
  const auto m = rng.dirichlet({cfg.alpha, cfg.alpha});  // original vs augmented
  d.m0 = m[0];
  d.m1 = m[1];
  d.weights = rng.dirichlet(std::vector<double>(static_cast<size_t>(cfg.mixture_width), cfg.alpha));
  const int nops = cfg.all_ops ? 13 : 9;
  for (int i = 0; i < cfg.mixture_width; ++i) {
    std::vector<AugStep>& chain = d.chains.emplace_back();
    const int depth = cfg.chain_depth > 0 ? cfg.chain_depth : 1 + static_cast<int>(rng.below(3));
    for (int s = 0; s < depth; ++s) {
      AugStep st{static_cast<AugOp>(rng.below(static_cast<uint64_t>(nops))), 0, 1};
      st.level = static_cast<int>(rng.below(static_cast<uint64_t>(cfg.severity)));
      if (op_signed(st.op) && rng.uniform() <= 0.5) st.sign = -1;
      chain.push_back(st);
    }
  }
  return d;
}

model::RgbImage augmix(const model::RgbImage& im, const AugMixDraw& d) {
  torch::NoGradGuard ng;
  const at::Tensor img = to_tensor(im);
  at::Tensor mix = img.to(torch::kFloat32).mul(static_cast<float>(d.m0));
  for (size_t i = 0; i < d.chains.size(); ++i) {
    model::RgbImage aug = im;
    for (const AugStep& st : d.chains[i])
      aug = apply_op(aug, st.op, st.sign * op_magnitude(st.op, st.level, im.height, im.width));
    mix.add_(to_tensor(aug).to(torch::kFloat32).mul(static_cast<float>(d.weights[i] * d.m1)));
  }
  return from_tensor(mix.to(torch::kUInt8));  // truncation, as torchvision's final cast
}

model::RgbImage augmix(const model::RgbImage& im, const AugMixConfig& cfg, uint64_t seed) {
  return augmix(im, augmix_draw(cfg, seed));
}

}  // namespace uqmerge::perturb
