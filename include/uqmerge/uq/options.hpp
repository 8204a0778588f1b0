// uqmerge/uq/options.hpp — how the uncertainty stage evaluates a model (the config's `uq:`
// section once parsed): the perturbation plan, AugMix, the prompt template, batching.
// Torch-free, so configuration code can hold it without the engine's headers.
#pragma once

#include <string>

#include "uqmerge/model/prompt.hpp"
#include "uqmerge/perturb/augmix.hpp"
#include "uqmerge/perturb/plan.hpp"

namespace uqmerge::uq {

struct UqOptions {
  perturb::PlanConfig plan;
  perturb::AugMixConfig augmix;
  model::Template conv_template = model::Template::LlavaV1;
  std::string image_aspect;  // empty: the checkpoint's image_aspect_ratio (default pad)
  int batch_size = 4;
  bool save_distributions = false;  // results.h5 keeps each sample's mean distribution (float16)
  // The image control of selection.screen: every image replaced by the CLIP mean colour exactly
  // (normalised pixels 0, the colour LLaVA pads with), so the model sees no image content.
  bool blank_images = false;
};

// Accuracy's evaluation: the unperturbed input (J = 1, no prompt sentence, no AugMix, no
// dropout) with everything else as in `opts`.
UqOptions clean_options(const UqOptions& opts);

}  // namespace uqmerge::uq
