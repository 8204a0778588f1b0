// Accuracy's evaluation options (see include/uqmerge/uq/options.hpp).
#include "uqmerge/uq/options.hpp"

namespace uqmerge::uq {

UqOptions clean_options(const UqOptions& opts) {
  UqOptions clean = opts;
  clean.plan.perturbations = 1;
  clean.plan.repeats = 1;
  clean.plan.text = perturb::TextMode::None;
  clean.plan.attention_dropout = 0.0;
  clean.plan.image = false;
  return clean;
}

}  // namespace uqmerge::uq
