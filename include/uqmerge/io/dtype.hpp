// uqmerge/io/dtype.hpp — element types of checkpoints and collectives, and the bit-level
// fp16/bf16 <-> fp32 conversions used on the CPU (no torch needed).
// Names follow safetensors ("F32", "BF16", ...).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace uqmerge {

enum class DType : uint8_t { F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL };

size_t dtype_size(DType t);
std::string_view dtype_name(DType t);  // "F32"
std::optional<DType> parse_dtype(std::string_view safetensors_name);
bool is_floating(DType t);
// The transformers `torch_dtype` string ("float32", "bfloat16", ...) for a float dtype.
std::string_view dtype_torch_name(DType t);
std::optional<DType> parse_torch_dtype(std::string_view name);

// IEEE half and bfloat16, round-to-nearest-even on the way down (as torch does).
inline float bf16_to_float(uint16_t h) {
  const uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline uint16_t float_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);  // NaN stays NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}
float f16_to_float(uint16_t h);
uint16_t float_to_f16(float f);

}  // namespace uqmerge
