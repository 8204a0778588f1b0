// LLaMA SentencePiece tokenizer (see include/uqmerge/model/tokenizer.hpp).
// Without a "▁" prefix (text after a special token, legacy=false) SentencePiece is asked to
// encode "<unk>" + text and the pieces of "<unk>" are dropped: the way transformers'
// sentencepiece-based LlamaTokenizer implements legacy=false.
#include "uqmerge/model/tokenizer.hpp"

#include <sentencepiece_processor.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "uqmerge/model/tokens.hpp"
#include "uqmerge/util/error.hpp"

namespace uqmerge::model {

namespace fs = std::filesystem;

struct Tokenizer::Sp {
  sentencepiece::SentencePieceProcessor proc;
  size_t unk_pieces = 0;  // pieces of "<unk>" encoded as text
};

Tokenizer::Tokenizer() : sp_(std::make_unique<Sp>()) {}
Tokenizer::~Tokenizer() = default;

std::shared_ptr<const Tokenizer> Tokenizer::load(const fs::path& dir) {
  const fs::path model = dir / "tokenizer.model";
  if (!fs::exists(model))
    throw_bad_input(model.string(), "missing: uqmerge needs the SentencePiece tokenizer.model of the checkpoint "
                                    "(copy it from the base model)");
  std::shared_ptr<Tokenizer> t(new Tokenizer());
  t->path_ = model;
  const auto st = t->sp_->proc.Load(model.string());
  if (!st.ok()) throw_bad_input(model.string(), "not a SentencePiece model: " + st.ToString());
  std::vector<int> ids;
  t->sp_->proc.Encode("<unk>", &ids);
  t->sp_->unk_pieces = ids.size();
  const fs::path cfg = dir / "tokenizer_config.json";
  if (fs::exists(cfg)) {
    std::ifstream in(cfg);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
      throw_bad_input(cfg.string(), std::string("not valid JSON (") + e.what() + ")");
    }
    if (auto it = j.find("legacy"); it != j.end() && it->is_boolean()) t->legacy_ = it->get<bool>();
  }
  return t;
}

std::vector<int64_t> Tokenizer::encode(std::string_view text, bool bos, bool prefix_space) const {
  std::vector<int> ids;
  std::vector<int64_t> out;
  if (bos) out.push_back(bos_id());
  if (text.empty()) return out;
  if (prefix_space) {
    sp_->proc.Encode(text, &ids);
  } else {
    sp_->proc.Encode("<unk>" + std::string(text), &ids);
    ids.erase(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(std::min(sp_->unk_pieces, ids.size())));
  }
  out.insert(out.end(), ids.begin(), ids.end());
  return out;
}

std::vector<int64_t> Tokenizer::encode_prompt(const std::string& prompt, ImageStyle style) const {
  const std::string tag = "<image>";
  const size_t pos = prompt.find(tag);
  if (pos == std::string::npos) return encode(prompt, true);
  if (prompt.find(tag, pos + tag.size()) != std::string::npos)
    throw_bad_input("prompt", "more than one <image> in a prompt");
  const std::string before = prompt.substr(0, pos), after = prompt.substr(pos + tag.size());
  std::vector<int64_t> ids = encode(before, true);
  ids.push_back(kImageSlot);
  // SplitChunks: each chunk is its own call, so it gets the leading "▁" (and its own BOS, dropped).
  const bool prefix = style == ImageStyle::SplitChunks || legacy_;
  const std::vector<int64_t> tail = encode(after, false, prefix);
  ids.insert(ids.end(), tail.begin(), tail.end());
  return ids;
}

int64_t Tokenizer::option_token(std::string_view letter) const {
  const std::vector<int64_t> ids = encode(letter, true);
  if (ids.size() != 2)
    throw_bad_input(path_.string(), "option letter '" + std::string(letter) + "' is " + std::to_string(ids.size() - 1) +
                                        " tokens, not one: choose single-token option labels");
  return ids.back();
}

std::vector<int64_t> Tokenizer::option_tokens(const std::vector<std::string>& letters) const {
  std::vector<int64_t> out;
  for (const auto& l : letters) out.push_back(option_token(l));
  return out;
}

int64_t Tokenizer::bos_id() const { return sp_->proc.bos_id(); }
int64_t Tokenizer::vocab_size() const { return sp_->proc.GetPieceSize(); }

std::string Tokenizer::decode(const std::vector<int64_t>& ids) const {
  std::vector<int> v;
  for (int64_t id : ids)
    if (id >= 0) v.push_back(static_cast<int>(id));
  std::string s;
  sp_->proc.Decode(v, &s);
  return s;
}

}  // namespace uqmerge::model
