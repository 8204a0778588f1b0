// Element types (see include/uqmerge/io/dtype.hpp).
#include "uqmerge/io/dtype.hpp"

#include <array>

namespace uqmerge {

namespace {
struct Row {
  DType t;
  std::string_view name;
  size_t size;
  std::string_view torch;
};
constexpr std::array<Row, 10> kRows{{
    {DType::F64, "F64", 8, "float64"},
    {DType::F32, "F32", 4, "float32"},
    {DType::F16, "F16", 2, "float16"},
    {DType::BF16, "BF16", 2, "bfloat16"},
    {DType::I64, "I64", 8, "int64"},
    {DType::I32, "I32", 4, "int32"},
    {DType::I16, "I16", 2, "int16"},
    {DType::I8, "I8", 1, "int8"},
    {DType::U8, "U8", 1, "uint8"},
    {DType::BOOL, "BOOL", 1, "bool"},
}};
const Row& row(DType t) { return kRows[static_cast<size_t>(t)]; }
}  // namespace

size_t dtype_size(DType t) { return row(t).size; }
std::string_view dtype_name(DType t) { return row(t).name; }
std::string_view dtype_torch_name(DType t) { return row(t).torch; }
bool is_floating(DType t) {
  return t == DType::F64 || t == DType::F32 || t == DType::F16 || t == DType::BF16;
}

std::optional<DType> parse_dtype(std::string_view s) {
  for (const auto& r : kRows)
    if (r.name == s) return r.t;
  return std::nullopt;
}

std::optional<DType> parse_torch_dtype(std::string_view s) {
  if (s.substr(0, 6) == "torch.") s.remove_prefix(6);
  if (s == "float" || s == "fp32") return DType::F32;
  if (s == "half" || s == "fp16") return DType::F16;
  if (s == "bf16") return DType::BF16;
  for (const auto& r : kRows)
    if (r.torch == s) return r.t;
  return std::nullopt;
}

float f16_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t man = h & 0x3ffu;
  uint32_t u;
  if (exp == 0) {
    if (man == 0) {
      u = sign;
    } else {  // subnormal: normalise
      int e = -1;
      do {
        ++e;
        man <<= 1;
      } while ((man & 0x400u) == 0);
      u = sign | static_cast<uint32_t>(127 - 15 - e) << 23 | (man & 0x3ffu) << 13;
    }
  } else if (exp == 0x1f) {
    u = sign | 0x7f800000u | man << 13;
  } else {
    u = sign | (exp + 127 - 15) << 23 | man << 13;
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

uint16_t float_to_f16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  const uint32_t abs = u & 0x7fffffffu;
  if (abs > 0x7f800000u) return sign | 0x7e00u;  // NaN
  if (abs >= 0x477ff000u) return sign | 0x7c00u;  // rounds to >= 65520: inf
  if (abs < 0x38800000u) {                        // below 2^-14: subnormal or zero
    // Add 0.5 (as float) so the hardware rounds the mantissa to the subnormal grid.
    float half_ulp_shift;
    const float a = [&] {
      float x;
      std::memcpy(&x, &abs, 4);
      return x;
    }();
    half_ulp_shift = a + 0.5f;
    uint32_t v;
    std::memcpy(&v, &half_ulp_shift, 4);
    return sign | static_cast<uint16_t>(v - 0x3f000000u);
  }
  // Normal: rebias exponent, round mantissa to nearest even.
  uint32_t v = abs + ((15u - 127u) << 23) + 0xfffu + ((abs >> 13) & 1u);
  return sign | static_cast<uint16_t>(v >> 13);
}

}  // namespace uqmerge
