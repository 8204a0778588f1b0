// libFuzzer target for the safetensors header parser (io/safetensors_reader.cpp).
// Any input must either parse or raise uqmerge::Error with kind BadInput; a crash, a sanitizer
// report (ASan/UBSan), an internal error or any other exception is a finding.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "uqmerge/io/safetensors.hpp"
#include "uqmerge/util/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto h = uqmerge::parse_safetensors_header(reinterpret_cast<const std::byte*>(data), size, size, "fuzz");
    // Whatever parsed must be self-consistent.
    for (const auto& t : h.tensors)
      if (t.end < t.begin || h.data_offset + t.end > size) std::abort();
  } catch (const uqmerge::Error& e) {
    if (e.kind() != uqmerge::ErrorKind::BadInput) std::abort();
  }
  return 0;
}
