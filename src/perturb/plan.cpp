// Perturbation plan (see include/uqmerge/perturb/plan.hpp).
#include "uqmerge/perturb/plan.hpp"

#include "uqmerge/util/error.hpp"
#include "uqmerge/util/rng.hpp"

namespace uqmerge::perturb {

namespace {
// Stream purposes: fixed constants, part of the on-disk reproducibility contract.
constexpr uint64_t kText = 0x7465787400000001ull, kDropout = 0x64726f7000000002ull, kImage = 0x696d616700000003ull;
}  // namespace

const std::vector<std::string>& release_prompts() {
  static const std::vector<std::string> p{
      "you are a helpful assistant",  "you are a question-answering assistant",  "you are a nice assistant",
      "You are a helpful assistant",  "You are a question-answering assistant",  "You are a nice assistant",
      "You are a helpful assistant.", "You are a question-answering assistant.", "You are a nice assistant.",
  };
  return p;
}

TextMode parse_text_mode(const std::string& s) {
  if (s == "none") return TextMode::None;
  if (s == "prepend_prompt") return TextMode::PrependPrompt;
  if (s == "system") return TextMode::SystemMessage;
  if (s == "before_question") return TextMode::BeforeQuestion;
  throw_bad_input("uq.text_perturbation", "unknown '" + s + "' (valid: prepend_prompt, system, before_question, none)");
}

std::string text_mode_name(TextMode m) {
  switch (m) {
    case TextMode::None: return "none";
    case TextMode::PrependPrompt: return "prepend_prompt";
    case TextMode::SystemMessage: return "system";
    case TextMode::BeforeQuestion: return "before_question";
  }
  return "?";
}

uint64_t dataset_id(const std::string& name) { return hash_name(name); }

Perturbation plan(const PlanConfig& cfg, uint64_t d, uint64_t i, uint64_t j) {
  Perturbation p;
  if (cfg.text != TextMode::None)
    p.text = static_cast<int>(RngStream(cfg.seed, {d, i, j, kText}).below(release_prompts().size()));
  p.dropout_seed = RngStream(cfg.seed, {d, i, j, kDropout}).next_u64();
  p.image_seed = RngStream(cfg.seed, {d, i, j, kImage}).next_u64();
  return p;
}

model::PromptParts prompt_parts(TextMode mode, int t) {
  model::PromptParts parts;
  if (mode == TextMode::None || t < 0) return parts;
  const std::string& s = release_prompts().at(static_cast<size_t>(t));
  switch (mode) {
    case TextMode::PrependPrompt: parts.prefix = s; break;  // no separator, as released
    case TextMode::SystemMessage: parts.system = s; break;
    case TextMode::BeforeQuestion: parts.before_question = s + "\n"; break;
    case TextMode::None: break;
  }
  return parts;
}

}  // namespace uqmerge::perturb
