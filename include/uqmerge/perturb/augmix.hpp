// uqmerge/perturb/augmix.hpp — AugMix (Hendrycks et al., 2020) with torchvision.transforms.v2
// semantics, on 8-bit RGB images (the paper's image perturbation, appendix B.2):
//   severity 3, mixture width 3, chain depth 1..3, alpha 1, all ops, bilinear, fill 0;
//   magnitudes from torchvision's bins (10 bins, level < severity), signed ops negated with
//   probability 1/2; mix = m0 * image + sum_i m1 * w_i * chain_i(image) with
//   (m0, m1) ~ Dirichlet(alpha, alpha) and w ~ Dirichlet(alpha x width), truncated to uint8.
// Each op follows torchvision's uint8 tensor kernel (affine grids, blends, equalize LUT...).
// Randomness comes from the caller's seed (perturb/plan): the same draw on every rank.
// Torch-free interface; the implementation uses libtorch ops.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "uqmerge/model/image.hpp"

namespace uqmerge::perturb {

enum class AugOp {
  ShearX, ShearY, TranslateX, TranslateY, Rotate, Posterize, Solarize, AutoContrast, Equalize,
  Brightness, Color, Contrast, Sharpness  // the last four only with all_ops
};
const std::vector<std::string>& aug_op_names();  // torchvision's names, in its order

struct AugMixConfig {
  int severity = 3;
  int mixture_width = 3;
  int chain_depth = -1;  // <= 0: uniform in 1..3
  double alpha = 1.0;
  bool all_ops = true;
};

// One op at a given magnitude (already signed, in torchvision's units: shear factor, pixels,
// degrees, bits, threshold fraction, factor - 1).
model::RgbImage apply_op(const model::RgbImage& img, AugOp op, double magnitude);
// The magnitude torchvision uses for `op` at bin `level` (0-based) for an image of this size.
double op_magnitude(AugOp op, int level, int height, int width);
bool op_signed(AugOp op);

// The random part of one AugMix call, drawn from `seed` alone (it does not depend on the
// image): results.h5 records it under /plan so that anyone can replay the augmentation.
struct AugStep {
  AugOp op;
  int level;  // torchvision's magnitude bin, 0 .. severity-1
  int sign;   // +1, or -1 for a negated signed op
};
struct AugMixDraw {
  double m0 = 1, m1 = 0;              // original vs augmented ~ Dirichlet(alpha, alpha)
  std::vector<double> weights;        // per chain ~ Dirichlet(alpha x width)
  std::vector<std::vector<AugStep>> chains;
};
AugMixDraw augmix_draw(const AugMixConfig& cfg, uint64_t seed);
// mix = m0 * image + sum_i (w_i * m1) * chain_i(image), in float32, truncated to uint8.
model::RgbImage augmix(const model::RgbImage& img, const AugMixDraw& draw);
model::RgbImage augmix(const model::RgbImage& img, const AugMixConfig& cfg, uint64_t seed);

}  // namespace uqmerge::perturb
