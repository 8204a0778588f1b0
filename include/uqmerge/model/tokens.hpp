// uqmerge/model/tokens.hpp — token-id conventions shared by the tokenizer and the model.
#pragma once

#include <cstdint>

namespace uqmerge::model {

// Marks where the image's P embedding rows go in a token sequence (the original LLaVA code's
// IMAGE_TOKEN_INDEX; llava-hf's image_token_index is mapped to it by the tokenizer).
constexpr int64_t kImageSlot = -200;

}  // namespace uqmerge::model
