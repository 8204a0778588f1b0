// uqmerge/perturb/plan.hpp — which perturbation sample i of dataset d gets at draw j
// (DESIGN §4.1): a pure function of (seed, dataset, sample, j), identical for every model and
// every rank count (common random numbers: differences between models are differences of
// models). Each part draws from its own named stream, so enabling one part never changes
// another's draws.
//   text:  one of the nine sentences of the paper's appendix B.1, prepended to the whole prompt
//          with no separator (released code), or used as the system message, or put before the
//          question;
//   model: the seed of the attention-probability dropout masks (p from the config);
//   image: the seed of the AugMix draw (ops, magnitudes, Dirichlet/Beta mixing).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "uqmerge/model/prompt.hpp"

namespace uqmerge::perturb {

// The nine prompts of appendix B.1, verbatim (case and final periods matter).
const std::vector<std::string>& release_prompts();

enum class TextMode { None, PrependPrompt, SystemMessage, BeforeQuestion };
TextMode parse_text_mode(const std::string& name);  // none | prepend_prompt | system | before_question
std::string text_mode_name(TextMode m);

struct PlanConfig {
  uint64_t seed = 1234;
  int perturbations = 4;       // J
  // R independent repeats of the J draws (the paper averages 3 runs): repeat r uses draw
  // indices r*J .. r*J + J-1 of the same streams, so repeat 0 is the single run's.
  int repeats = 1;
  TextMode text = TextMode::PrependPrompt;
  double attention_dropout = 0.1;  // 0: input-only perturbation (paper Table 5)
  bool image = true;           // AugMix on
};

struct Perturbation {
  int text = -1;               // index into release_prompts(), -1 when off
  uint64_t dropout_seed = 0;   // AttentionDropout seed for this (sample, j)
  uint64_t image_seed = 0;     // AugMix stream seed
};

Perturbation plan(const PlanConfig& cfg, uint64_t dataset_id, uint64_t sample, uint64_t j);

// The prompt parts the text perturbation contributes.
model::PromptParts prompt_parts(TextMode mode, int text_index);

// A stable id for a dataset name (for stream keys).
uint64_t dataset_id(const std::string& name);

}  // namespace uqmerge::perturb
