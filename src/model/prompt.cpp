// Multiple-choice prompts (see include/uqmerge/model/prompt.hpp).
#include "uqmerge/model/prompt.hpp"

#include "uqmerge/util/error.hpp"

namespace uqmerge::model {

Template parse_template(const std::string& name) {
  if (name == "llava_v1") return Template::LlavaV1;
  if (name == "vicuna_v1") return Template::VicunaV1;
  throw_bad_input("conversation template", "unknown '" + name + "' (valid: llava_v1, vicuna_v1)");
}

const std::string& system_message(Template t) {
  // The system lines of LLaVA's conv_llava_v1 and conv_vicuna_v1.
  static const std::string llava =
      "A chat between a curious human and an artificial intelligence assistant. "
      "The assistant gives helpful, detailed, and polite answers to the human's questions.";
  static const std::string vicuna =
      "A chat between a curious user and an artificial intelligence assistant. "
      "The assistant gives helpful, detailed, and polite answers to the user's questions.";
  return t == Template::LlavaV1 ? llava : vicuna;
}

std::vector<std::string> option_letters(size_t n) {
  if (n > 26) throw_bad_input("options", std::to_string(n) + " options: at most 26 (A-Z)");
  std::vector<std::string> out;
  for (size_t i = 0; i < n; ++i) out.emplace_back(1, static_cast<char>('A' + i));
  return out;
}

std::string question_text(const MultipleChoice& mc, const std::string& before_question) {
  std::string s;
  if (!mc.hint.empty()) s += mc.hint + "\n";
  s += before_question + mc.question + "\n";
  const auto letters = option_letters(mc.options.size());
  for (size_t i = 0; i < mc.options.size(); ++i) s += letters[i] + ". " + mc.options[i] + "\n";
  s += "Answer with the option's letter from the given choices directly.";
  return s;
}

std::string build_prompt(Template t, const MultipleChoice& mc, const PromptParts& parts) {
  const std::string& system = parts.system.empty() ? system_message(t) : parts.system;
  return parts.prefix + system + " USER: <image>\n" + question_text(mc, parts.before_question) + " ASSISTANT:";
}

}  // namespace uqmerge::model
