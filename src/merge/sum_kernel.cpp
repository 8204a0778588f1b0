// The weighted-sum kernel (include/uqmerge/merge/sum_kernel.hpp). Two paths chosen once at run
// time: AVX2 + F16C (conversion instructions, eight lanes) and a portable one (io/dtype's
// bit-exact conversions); the binary itself stays baseline x86-64 for every node of a cluster.
// Neither path enables FMA, so the compiler cannot contract w * x + acc: both give the same bits.
#include "uqmerge/merge/sum_kernel.hpp"

#include <algorithm>
#include <atomic>
#include <cstring>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define UQMERGE_SUM_X86 1
#endif

namespace uqmerge::merge::kernels {

namespace {

constexpr int64_t kBlock = 1024;  // fp32 accumulator block: 4 KiB, stays in L1

// --- portable path -------------------------------------------------------------------------
void load_add(const void* src, DType t, float w, int64_t len, float* __restrict acc) {
  switch (t) {
    case DType::F32: {
      const float* x = static_cast<const float*>(src);
      for (int64_t j = 0; j < len; ++j) acc[j] += w * x[j];
      break;
    }
    case DType::BF16: {
      const uint16_t* x = static_cast<const uint16_t*>(src);
      for (int64_t j = 0; j < len; ++j) acc[j] += w * bf16_to_float(x[j]);
      break;
    }
    default: {
      const uint16_t* x = static_cast<const uint16_t*>(src);
      for (int64_t j = 0; j < len; ++j) acc[j] += w * f16_to_float(x[j]);
      break;
    }
  }
}

// Stores acc / divisor as `t`; returns whether every stored value is finite.
bool store(const float* __restrict acc, float divisor, DType t, int64_t len, void* dst) {
  uint32_t bad = 0;
  switch (t) {
    case DType::F32: {
      float* o = static_cast<float*>(dst);
      for (int64_t j = 0; j < len; ++j) {
        const float v = acc[j] / divisor;
        uint32_t u;
        std::memcpy(&u, &v, 4);
        bad |= static_cast<uint32_t>((u & 0x7f800000u) == 0x7f800000u);
        o[j] = v;
      }
      break;
    }
    default: {  // 16-bit: exponent all ones = Inf/NaN
      const bool bf16 = t == DType::BF16;
      const uint16_t expm = bf16 ? 0x7f80u : 0x7c00u;
      uint16_t* o = static_cast<uint16_t*>(dst);
      for (int64_t j = 0; j < len; ++j) {
        const float v = acc[j] / divisor;
        const uint16_t h = bf16 ? float_to_bf16(v) : float_to_f16(v);
        bad |= static_cast<uint32_t>((h & expm) == expm);
        o[j] = h;
      }
      break;
    }
  }
  return bad == 0;
}

// The blocked loop both paths use for any mix of input dtypes: per kBlock elements, an fp32
// block from +0, every term added in order (add(src, dtype, weight, len, acc)), then stored
// (put(acc, len, dst) -> all finite).
template <class Add, class Put>
bool blocked_sum(const SumTerm* terms, size_t count, void* out, DType out_dtype, int64_t n, Add&& add, Put&& put) {
  alignas(64) float acc[kBlock];
  const size_t osz = dtype_size(out_dtype);
  bool ok = true;
  for (int64_t s = 0; s < n; s += kBlock) {
    const int64_t len = std::min(kBlock, n - s);
    std::fill(acc, acc + len, 0.f);
    for (size_t k = 0; k < count; ++k)
      add(static_cast<const char*>(terms[k].data) + s * static_cast<int64_t>(dtype_size(terms[k].dtype)), terms[k].dtype,
          terms[k].weight, len, acc);
    ok &= put(acc, len, static_cast<char*>(out) + s * static_cast<int64_t>(osz));
  }
  return ok;
}

bool sum_portable(const SumTerm* terms, size_t count, float divisor, void* out, DType out_dtype, int64_t n) {
  return blocked_sum(terms, count, out, out_dtype, n, load_add,
                     [&](const float* acc, int64_t len, void* dst) { return store(acc, divisor, out_dtype, len, dst); });
}

#ifdef UQMERGE_SUM_X86
// --- AVX2 + F16C path ----------------------------------------------------------------------
#define UQ_AVX2 __attribute__((target("avx2,f16c")))

UQ_AVX2 void load_add_avx2(const void* src, DType t, float w, int64_t len, float* __restrict acc) {
  const __m256 wv = _mm256_set1_ps(w);
  int64_t j = 0;
  switch (t) {
    case DType::F32: {
      const float* x = static_cast<const float*>(src);
      for (; j + 8 <= len; j += 8)
        _mm256_store_ps(acc + j, _mm256_add_ps(_mm256_load_ps(acc + j), _mm256_mul_ps(wv, _mm256_loadu_ps(x + j))));
      for (; j < len; ++j) acc[j] += w * x[j];
      break;
    }
    case DType::BF16: {
      const uint16_t* x = static_cast<const uint16_t*>(src);
      for (; j + 8 <= len; j += 8) {
        const __m256i h = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + j)));
        const __m256 f = _mm256_castsi256_ps(_mm256_slli_epi32(h, 16));
        _mm256_store_ps(acc + j, _mm256_add_ps(_mm256_load_ps(acc + j), _mm256_mul_ps(wv, f)));
      }
      for (; j < len; ++j) acc[j] += w * bf16_to_float(x[j]);
      break;
    }
    default: {
      const uint16_t* x = static_cast<const uint16_t*>(src);
      for (; j + 8 <= len; j += 8) {
        const __m256 f = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + j)));
        _mm256_store_ps(acc + j, _mm256_add_ps(_mm256_load_ps(acc + j), _mm256_mul_ps(wv, f)));
      }
      for (; j < len; ++j) acc[j] += w * f16_to_float(x[j]);
      break;
    }
  }
}

// acc / divisor; a power-of-two divisor as a product with its exact reciprocal (the same
// correctly rounded result, without the division's latency).
struct Scale {
  float divisor, reciprocal;
  bool pow2;
  explicit Scale(float d) : divisor(d), reciprocal(1.f / d), pow2(false) {
    uint32_t u;
    std::memcpy(&u, &d, 4);
    const uint32_t e = (u >> 23) & 0xffu;
    pow2 = (u & 0x7fffffu) == 0 && e >= 1 && e <= 254;
  }
};

UQ_AVX2 inline __m256 scaled(__m256 v, const Scale& sc, __m256 dv, __m256 rv) {
  return sc.pow2 ? _mm256_mul_ps(v, rv) : _mm256_div_ps(v, dv);
}

// stream: non-temporal stores (a large destination that is not read again soon: no
// read-for-ownership of its lines); used only where the destination is aligned.
UQ_AVX2 bool store_avx2(const float* __restrict acc, const Scale& sc, DType t, int64_t len, void* dst, bool stream) {
  const float divisor = sc.divisor;
  const __m256 dv = _mm256_set1_ps(sc.divisor), rv = _mm256_set1_ps(sc.reciprocal);
  stream = stream && (reinterpret_cast<uintptr_t>(dst) & 31) == 0;
  int64_t j = 0;
  bool ok = true;
  switch (t) {
    case DType::F32: {
      float* o = static_cast<float*>(dst);
      const __m256i expm = _mm256_set1_epi32(0x7f800000);
      __m256i bad = _mm256_setzero_si256();
      for (; j + 8 <= len; j += 8) {
        const __m256 v = scaled(_mm256_load_ps(acc + j), sc, dv, rv);
        bad = _mm256_or_si256(bad, _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_castps_si256(v), expm), expm));
        if (stream)
          _mm256_stream_ps(o + j, v);
        else
          _mm256_storeu_ps(o + j, v);
      }
      ok = _mm256_testz_si256(bad, bad);
      break;
    }
    case DType::BF16: {
      uint16_t* o = static_cast<uint16_t*>(dst);
      const __m256i expm = _mm256_set1_epi32(0x7f800000), absm = _mm256_set1_epi32(0x7fffffff);
      const __m256i one = _mm256_set1_epi32(1), bias = _mm256_set1_epi32(0x7fff), qnan = _mm256_set1_epi32(0x7fc0);
      __m256i bad = _mm256_setzero_si256();
      for (; j + 8 <= len; j += 8) {
        const __m256i u = _mm256_castps_si256(scaled(_mm256_load_ps(acc + j), sc, dv, rv));
        bad = _mm256_or_si256(bad, _mm256_cmpeq_epi32(_mm256_and_si256(u, expm), expm));
        // Round to nearest even as float_to_bf16; a NaN keeps its sign and becomes quiet.
        const __m256i r = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(u, bias), _mm256_and_si256(_mm256_srli_epi32(u, 16), one)), 16);
        const __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, absm), expm);
        const __m256i q = _mm256_or_si256(_mm256_srli_epi32(u, 16), qnan);
        const __m256i h = _mm256_blendv_epi8(r, _mm256_and_si256(q, _mm256_set1_epi32(0xffff)), nan);
        // 8 x 32-bit -> 8 x 16-bit (values < 2^16, so the unsigned pack is exact).
        const __m128i lo = _mm256_castsi256_si128(h), hi = _mm256_extracti128_si256(h, 1);
        if (stream)
          _mm_stream_si128(reinterpret_cast<__m128i*>(o + j), _mm_packus_epi32(lo, hi));
        else
          _mm_storeu_si128(reinterpret_cast<__m128i*>(o + j), _mm_packus_epi32(lo, hi));
      }
      ok = _mm256_testz_si256(bad, bad);
      break;
    }
    default: {
      uint16_t* o = static_cast<uint16_t*>(dst);
      const __m128i expm = _mm_set1_epi16(0x7c00);
      __m128i bad = _mm_setzero_si128();
      for (; j + 8 <= len; j += 8) {
        const __m128i h = _mm256_cvtps_ph(scaled(_mm256_load_ps(acc + j), sc, dv, rv), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        bad = _mm_or_si128(bad, _mm_cmpeq_epi16(_mm_and_si128(h, expm), expm));
        if (stream)
          _mm_stream_si128(reinterpret_cast<__m128i*>(o + j), h);
        else
          _mm_storeu_si128(reinterpret_cast<__m128i*>(o + j), h);
      }
      ok = _mm_testz_si128(bad, bad);
      break;
    }
  }
  if (j < len) {
    const size_t osz = dtype_size(t);
    ok &= store(acc + j, divisor, t, len - j, static_cast<char*>(dst) + j * static_cast<int64_t>(osz));
  }
  return ok;
}

// Eight lanes of term k's input at element j, as fp32.
template <DType T>
UQ_AVX2 inline __m256 load8(const void* base, int64_t j) {
  if constexpr (T == DType::F32) {
    return _mm256_loadu_ps(static_cast<const float*>(base) + j);
  } else if constexpr (T == DType::BF16) {
    const __m256i h = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(base) + j)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(h, 16));
  } else {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(base) + j)));
  }
}

// Every term of one dtype (the usual case): each group of eight elements summed over the terms
// in registers and stored once, with no accumulator block to stream through L1. The same
// operations in the same order as the blocked loop, hence the same bits.
template <DType T>
UQ_AVX2 bool sum_avx2_uniform(const SumTerm* terms, size_t count, float divisor, void* out, DType out_dtype, int64_t n, bool stream) {
  const Scale sc(divisor);
  constexpr size_t kMax = 16;
  const void* src[kMax];
  __m256 w[kMax];
  for (size_t k = 0; k < count; ++k) {
    src[k] = terms[k].data;
    w[k] = _mm256_set1_ps(terms[k].weight);
  }
  alignas(64) float acc[kBlock];
  const size_t osz = dtype_size(out_dtype);
  bool ok = true;
  for (int64_t s = 0; s < n; s += kBlock) {
    const int64_t len = std::min(kBlock, n - s), body = len & ~int64_t{7};
    for (int64_t j = 0; j < body; j += 8) {
      __m256 v = _mm256_setzero_ps();
      for (size_t k = 0; k < count; ++k) v = _mm256_add_ps(v, _mm256_mul_ps(w[k], load8<T>(src[k], s + j)));
      _mm256_store_ps(acc + j, v);
    }
    if (body < len) {
      std::fill(acc + body, acc + len, 0.f);
      for (size_t k = 0; k < count; ++k)
        load_add(static_cast<const char*>(src[k]) + (s + body) * static_cast<int64_t>(dtype_size(T)), T, terms[k].weight, len - body,
                 acc + body);
    }
    ok &= store_avx2(acc, sc, out_dtype, len, static_cast<char*>(out) + s * static_cast<int64_t>(osz), stream);
  }
  if (stream) _mm_sfence();  // the streamed lines are visible to other threads once we return
  return ok;
}

UQ_AVX2 bool sum_avx2(const SumTerm* terms, size_t count, float divisor, void* out, DType out_dtype, int64_t n, bool stream) {
  bool uniform = count <= 16;
  for (size_t k = 1; k < count; ++k) uniform &= terms[k].dtype == terms[0].dtype;
  if (uniform && count > 0) {
    switch (terms[0].dtype) {
      case DType::F16: return sum_avx2_uniform<DType::F16>(terms, count, divisor, out, out_dtype, n, stream);
      case DType::BF16: return sum_avx2_uniform<DType::BF16>(terms, count, divisor, out, out_dtype, n, stream);
      default: return sum_avx2_uniform<DType::F32>(terms, count, divisor, out, out_dtype, n, stream);
    }
  }
  const Scale sc(divisor);
  const bool ok = blocked_sum(terms, count, out, out_dtype, n, load_add_avx2, [&](const float* acc, int64_t len, void* dst) {
    return store_avx2(acc, sc, out_dtype, len, dst, stream);
  });
  if (stream) _mm_sfence();
  return ok;
}

bool have_avx2() {
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c");
  return yes;
}
#else
bool have_avx2() { return false; }
#endif

std::atomic<bool> g_force_portable{false};

}  // namespace

bool weighted_sum(const SumTerm* terms, size_t count, float divisor, void* out, DType out_dtype, int64_t n, bool stream) {
#ifdef UQMERGE_SUM_X86
  if (have_avx2() && !g_force_portable.load(std::memory_order_relaxed))
    return sum_avx2(terms, count, divisor, out, out_dtype, n, stream);
#endif
  return sum_portable(terms, count, divisor, out, out_dtype, n);
}

const char* sum_kernel_path() { return have_avx2() && !g_force_portable.load() ? "avx2+f16c" : "portable"; }
void sum_kernel_force_portable(bool on) { g_force_portable.store(on); }

}  // namespace uqmerge::merge::kernels
