// uqmerge/model/tokenizer.hpp — the LLaMA SentencePiece tokenizer of a checkpoint
// (tokenizer.model; tokenizer_config.json for the `legacy` flag), token-exact with
// transformers' LlamaTokenizer on the prompts uqmerge builds, and the two ways LLaVA code
// bases put the image into the token sequence:
//   ImageStyle::SplitChunks  (original LLaVA, tokenizer_image_token): the prompt is split at
//       "<image>", each chunk tokenized on its own (each gets SentencePiece's leading "▁"),
//       BOS once at the start, kImageSlot between chunks;
//   ImageStyle::SpecialToken (llava-hf processors): "<image>" is an added special token inside
//       one string; with legacy=false no "▁" is prepended to the text that follows it.
// Not here: prompt templates (model/prompt.hpp).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace uqmerge::model {

enum class ImageStyle { SplitChunks, SpecialToken };

class Tokenizer {
 public:
  // Reads DIR/tokenizer.model (and DIR/tokenizer_config.json when present). Bad input error
  // naming the file when it is missing or unreadable.
  static std::shared_ptr<const Tokenizer> load(const std::filesystem::path& dir);
  ~Tokenizer();

  // SentencePiece ids of `text` (with its leading "▁" unless prefix_space is false), BOS first
  // when `bos`.
  std::vector<int64_t> encode(std::string_view text, bool bos, bool prefix_space = true) const;
  // A prompt with exactly one "<image>": ids with kImageSlot where the image goes.
  std::vector<int64_t> encode_prompt(const std::string& prompt, ImageStyle style) const;
  // The option token of a letter: the last id of encode(letter, bos=true), as the released
  // code takes it; a letter that is not one token is a bad-input error.
  int64_t option_token(std::string_view letter) const;
  std::vector<int64_t> option_tokens(const std::vector<std::string>& letters) const;

  int64_t bos_id() const;
  int64_t vocab_size() const;  // SentencePiece pieces (added tokens such as <image> excluded)
  bool legacy() const { return legacy_; }
  std::string decode(const std::vector<int64_t>& ids) const;

 private:
  Tokenizer();
  struct Sp;
  std::unique_ptr<Sp> sp_;
  bool legacy_ = false;
  std::filesystem::path path_;
};

}  // namespace uqmerge::model
