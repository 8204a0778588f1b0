// Prompts and tokenization against transformers (make_tokenizer_cases.py): the prompt string
// uqmerge builds equals the reference's, and its ids equal transformers' for both ways of
// placing the image (LLaVA's tokenizer_image_token; llava-hf's special token), for tokenizers
// with legacy=false and legacy=true; option letters map to transformers' ids.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "uqmerge/model/prompt.hpp"
#include "uqmerge/model/tokenizer.hpp"

namespace uqmerge::model {
namespace {

namespace fs = std::filesystem;

TEST(ReferenceText, PromptsAndTokensMatchTransformers) {
  const char* env = std::getenv("UQMERGE_REF_DIR");
  ASSERT_NE(env, nullptr);
  const fs::path dir = fs::path(env) / "tokenizer";
  std::ifstream in(dir / "cases.json");
  const nlohmann::json all = nlohmann::json::parse(in);
  ASSERT_EQ(all.size(), 2u);
  for (auto it = all.begin(); it != all.end(); ++it) {
    SCOPED_TRACE(it.key());
    const auto tok = Tokenizer::load(dir / it.key());
    EXPECT_EQ(tok->legacy(), it.value()["legacy"].get<bool>());
    int prompt_bad = 0, split_bad = 0, special_bad = 0, n = 0;
    for (const auto& item : it.value()["items"]) {
      ++n;
      MultipleChoice mc{item["question"], item["hint"], item["options"].get<std::vector<std::string>>()};
      const std::string prompt = build_prompt(parse_template(item["template"]), mc);
      if (prompt != item["prompt"].get<std::string>() && prompt_bad++ < 3)
        ADD_FAILURE() << "prompt differs:\n" << prompt << "\nvs\n" << item["prompt"].get<std::string>();
      const auto split = tok->encode_prompt(prompt, ImageStyle::SplitChunks);
      if (split != item["split"].get<std::vector<int64_t>>() && split_bad++ < 3)
        ADD_FAILURE() << "split ids differ for: " << prompt;
      const auto special = tok->encode_prompt(prompt, ImageStyle::SpecialToken);
      if (special != item["special"].get<std::vector<int64_t>>() && special_bad++ < 3)
        ADD_FAILURE() << "special-token ids differ for: " << prompt;
    }
    std::printf("[%s] %d prompts: %d prompt strings, %d split-chunk and %d special-token tokenizations differ\n",
                it.key().c_str(), n, prompt_bad, split_bad, special_bad);
    for (auto o = it.value()["options"].begin(); o != it.value()["options"].end(); ++o)
      EXPECT_EQ(tok->option_token(o.key()), o.value().get<int64_t>()) << o.key();
  }
}

}  // namespace
}  // namespace uqmerge::model
