// libFuzzer target for the dataset row parsers (data/dataset.cpp): TSV (first byte even) or
// JSONL (odd). Any input must parse or raise a bad-input uqmerge::Error.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "uqmerge/data/dataset.hpp"
#include "uqmerge/util/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool jsonl = data[0] & 1;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  try {
    const auto rows = uqmerge::data::parse_rows(text, jsonl, "fuzz");
    for (const auto& r : rows)
      if (r.answer >= static_cast<int>(r.options.size())) std::abort();
  } catch (const uqmerge::Error& e) {
    if (e.kind() != uqmerge::ErrorKind::BadInput) std::abort();
  }
  return 0;
}
