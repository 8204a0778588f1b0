// uqmerge/model/prompt.hpp — the multiple-choice prompt of the UQ stage (DESIGN §4.1):
//   question text:  "{hint}\n{question}\nA. {opt}\nB. {opt}…\nAnswer with the option's letter
//                    from the given choices directly."   (hint line only when present)
//   user turn:      "<image>\n" + question text
//   llava_v1:       "{system} USER: {user turn} ASSISTANT:"   (vicuna_v1: its own system line)
// A text perturbation may be prepended to the whole prompt with no separator (the released
// code's behaviour), used as the system message, or put before the question.
#pragma once

#include <string>
#include <vector>

namespace uqmerge::model {

enum class Template { LlavaV1, VicunaV1 };
Template parse_template(const std::string& name);  // "llava_v1" | "vicuna_v1"
const std::string& system_message(Template t);

struct MultipleChoice {
  std::string question;
  std::string hint;  // empty: no hint line
  std::vector<std::string> options;  // texts, in letter order (extras already appended)
};

// "A", "B", … for n options (n ≤ 26).
std::vector<std::string> option_letters(size_t n);

std::string question_text(const MultipleChoice& mc, const std::string& before_question = "");

struct PromptParts {
  std::string prefix;          // prepended to the whole prompt (default text perturbation)
  std::string system;          // replaces the template's system message when not empty
  std::string before_question; // inserted before the question line
};
std::string build_prompt(Template t, const MultipleChoice& mc, const PromptParts& parts = {});

}  // namespace uqmerge::model
