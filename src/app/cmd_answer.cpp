// `uqmerge answer`: the option distribution of one model for one image and question, built
// exactly as the uncertainty stage builds its unperturbed input (prompt template, extra
// options, image preprocessing, option tokens). A user's sanity check of a checkpoint.
#include <fmt/format.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "uqmerge/model/image.hpp"
#include "uqmerge/model/llava.hpp"
#include "uqmerge/model/prompt.hpp"
#include "uqmerge/model/tokenizer.hpp"
#include "uqmerge/util/error.hpp"
#include "uqmerge/util/log.hpp"

namespace uqmerge::app {

int cmd_answer(const AnswerArgs& a) {
  if (a.options.size() < 2) throw_bad_input("--option", "give at least two options");
  Checkpoint::Options copts;
  if (a.vision_tower) copts.vision_tower_dir = *a.vision_tower;
  const Checkpoint ck = Checkpoint::open(a.model, copts);
  const ModelConfig& cfg = ck.config();
  if (cfg.arch == Architecture::Llama) throw_bad_input(a.model, "a text-only LlamaForCausalLM cannot answer about an image");
  model::LoadOptions eopts;
  eopts.threads = a.threads;
  if (auto d = parse_torch_dtype(a.dtype); d && is_floating(*d)) eopts.compute = *d;
  else throw_bad_input("--dtype", "'" + a.dtype + "' is not float32, bfloat16 or float16");
  const auto model = model::LlavaModel::load(ck, eopts);
  const auto tok = model::Tokenizer::load(a.model);

  model::MultipleChoice mc{a.question, a.hint, a.options};
  if (!a.no_extra_options) {
    mc.options.push_back("I don't know");
    mc.options.push_back("None of the above");
  }
  const auto letters = model::option_letters(mc.options.size());
  const std::vector<int64_t> rows = tok->option_tokens(letters);
  const std::string prompt = model::build_prompt(model::parse_template(a.conv_template), mc);
  const model::ImageStyle style =
      cfg.arch == Architecture::LlavaOriginal ? model::ImageStyle::SplitChunks : model::ImageStyle::SpecialToken;
  model::Sequence seq{tok->encode_prompt(prompt, style), 0};

  model::Preprocessor pre;
  pre.size = static_cast<int>(cfg.vision->image_size);
  pre.mode = model::parse_aspect_mode(a.image_aspect.empty() ? cfg.image_aspect_ratio : a.image_aspect);
  const std::vector<float> pixels = pre(model::read_image(a.image));
  const at::Tensor px = torch::from_blob(const_cast<float*>(pixels.data()), {1, 3, pre.size, pre.size}, torch::kFloat32);
  const at::Tensor logits = model->last_logits({seq}, model->project(model->vision_features(px)), rows)[0];
  const at::Tensor probs = torch::softmax(logits.to(torch::kDouble), 0);
  const int64_t best = probs.argmax().item<int64_t>();

  if (a.json) {
    nlohmann::ordered_json j;
    j["model"] = a.model;
    j["prompt"] = prompt;
    j["tokens"] = seq.ids.size();
    j["answer"] = letters[best];
    for (size_t i = 0; i < letters.size(); ++i)
      j["options"].push_back({{"letter", letters[i]}, {"text", mc.options[i]}, {"token", rows[i]},
                              {"logit", logits[i].item<double>()}, {"probability", probs[i].item<double>()}});
    fmt::print("{}\n", j.dump(2));
  } else {
    fmt::print("prompt ({} tokens, image = {} rows):\n{}\n\n", model->expanded_length(seq), model->image_tokens(), prompt);
    fmt::print("{:<6} {:>12} {:>12}  {}\n", "option", "logit", "probability", "text");
    for (size_t i = 0; i < letters.size(); ++i)
      fmt::print("{:<6} {:>12.5f} {:>12.6f}  {}{}\n", letters[i], logits[i].item<double>(), probs[i].item<double>(),
                 mc.options[i], static_cast<int64_t>(i) == best ? "   <- answer" : "");
  }
  return kExitOk;
}

}  // namespace uqmerge::app
