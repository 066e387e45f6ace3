#include "cast.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "cpu.h"
#include "pool.h"

#if GC_X86
#include <immintrin.h>
#endif

namespace gradcomp {

namespace {

constexpr uint64_t kPiece = 1 << 16;  // elements per task (a multiple of 64)

inline uint32_t bits_of(float v) { uint32_t b; std::memcpy(&b, &v, 4); return b; }
inline float from_bits(uint32_t b) { float v; std::memcpy(&v, &b, 4); return v; }

uint16_t to_bf16(float v) {
  const uint32_t b = bits_of(v);
  if ((b & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>(((b >> 16) & 0x8000u) | 0x7fc0u);
  return static_cast<uint16_t>((b + 0x7fffu + ((b >> 16) & 1u)) >> 16);
}

inline float saturate_fp16(float v) {
  if (std::isfinite(v) && std::fabs(v) > 65504.0f) return std::copysign(65504.0f, v);
  return v;
}

uint16_t to_fp16(float v) {
  const uint32_t b = bits_of(v);
  const uint32_t sign = (b >> 16) & 0x8000u, exp = (b >> 23) & 0xffu;
  uint32_t mant = b & 0x7fffffu;
  if (exp == 0xffu) return static_cast<uint16_t>(sign | (mant ? 0x7e00u : 0x7c00u));
  const int e = static_cast<int>(exp) - 127 + 15;
  if (e >= 0x1f) return static_cast<uint16_t>(sign | 0x7c00u);
  if (e <= 0) {
    if (e < -10) return static_cast<uint16_t>(sign);
    mant |= 0x800000u;
    const int shift = 14 - e;
    uint32_t h = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (h & 1u))) ++h;
    return static_cast<uint16_t>(sign | h);
  }
  uint32_t h = (static_cast<uint32_t>(e) << 10) | (mant >> 13);
  const uint32_t rem = mant & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;  // may carry into the exponent: correct
  return static_cast<uint16_t>(sign | h);
}

float from_fp16(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
  if (exp == 0) {
    const float v = static_cast<float>(mant) * (1.0f / 16777216.0f);
    return sign ? -v : v;
  }
  if (exp == 0x1f) return from_bits(sign | 0x7f800000u | (mant << 13));
  return from_bits(sign | ((exp + 112u) << 23) | (mant << 13));
}

#if GC_X86
GC_TARGET_AVX512 void half_pack_avx512(const float* x, uint64_t lo, uint64_t hi, uint16_t* out, int kind) {
  uint64_t i = lo;
  for (; i + 16 <= hi; i += 16) {
    __m512 v = _mm512_loadu_ps(x + i);
    const __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    if (kind == 2) {
      // Clamp finite lanes only: Infinity and NaN keep their meaning.
      const __m512 av = _mm512_abs_ps(v);
      const __mmask16 big = _mm512_cmp_ps_mask(av, _mm512_set1_ps(65504.0f), _CMP_GT_OQ) &
                            _mm512_cmp_ps_mask(av, _mm512_set1_ps(INFINITY), _CMP_LT_OQ);
      v = _mm512_mask_mov_ps(v, big, _mm512_or_ps(_mm512_set1_ps(65504.0f), _mm512_and_ps(v, _mm512_set1_ps(-0.0f))));
    }
    const __m512i b = _mm512_castps_si512(v);
    const __m512i sign16 = _mm512_and_si512(_mm512_srli_epi32(b, 16), _mm512_set1_epi32(0x8000));
    __m256i h;
    if (kind != 1) {
      h = _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      const __m256i canon = _mm512_cvtepi32_epi16(_mm512_or_si512(sign16, _mm512_set1_epi32(0x7e00)));
      h = _mm256_mask_blend_epi16(nan, h, canon);
    } else {
      const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(b, 16), _mm512_set1_epi32(1));
      __m512i r = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(b, _mm512_set1_epi32(0x7fff)), lsb), 16);
      r = _mm512_mask_mov_epi32(r, nan, _mm512_or_si512(sign16, _mm512_set1_epi32(0x7fc0)));
      h = _mm512_cvtepi32_epi16(r);
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), h);
  }
  for (; i < hi; ++i) out[i] = kind == 1 ? to_bf16(x[i]) : to_fp16(kind == 2 ? saturate_fp16(x[i]) : x[i]);
}

GC_TARGET_AVX512 void half_unpack_avx512(const uint16_t* h, uint64_t lo, uint64_t hi, float* out, int kind) {
  uint64_t i = lo;
  for (; i + 16 <= hi; i += 16) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(h + i));
    const __m512 f = kind == 0 ? _mm512_cvtph_ps(v) : _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(v), 16));
    _mm512_storeu_ps(out + i, _mm512_add_ps(_mm512_loadu_ps(out + i), f));
  }
  for (; i < hi; ++i) out[i] += kind == 0 ? from_fp16(h[i]) : from_bits(static_cast<uint32_t>(h[i]) << 16);
}
#endif

}  // namespace

gc_status half_pack(const float* x, uint64_t n, uint16_t* out, int kind) {
  if ((n > 0 && (x == nullptr || out == nullptr)) || kind < 0 || kind > 2) return GC_ERR_INVALID_ARG;
  ThreadPool::instance().parallel_for(chunk_count(n, kPiece), [&](size_t t) {
    const uint64_t lo = t * kPiece, hi = std::min<uint64_t>(n, lo + kPiece);
#if GC_X86
    if (active_isa() == Isa::kAvx512) return half_pack_avx512(x, lo, hi, out, kind);
#endif
    for (uint64_t i = lo; i < hi; ++i) out[i] = kind == 1 ? to_bf16(x[i]) : to_fp16(kind == 2 ? saturate_fp16(x[i]) : x[i]);
  });
  return GC_OK;
}

gc_status half_unpack_add(const uint16_t* h, uint64_t n, float* out, int kind) {
  if ((n > 0 && (h == nullptr || out == nullptr)) || kind < 0 || kind > 1) return GC_ERR_INVALID_ARG;
  ThreadPool::instance().parallel_for(chunk_count(n, kPiece), [&](size_t t) {
    const uint64_t lo = t * kPiece, hi = std::min<uint64_t>(n, lo + kPiece);
#if GC_X86
    if (active_isa() == Isa::kAvx512) return half_unpack_avx512(h, lo, hi, out, kind);
#endif
    for (uint64_t i = lo; i < hi; ++i) out[i] += kind == 0 ? from_fp16(h[i]) : from_bits(static_cast<uint32_t>(h[i]) << 16);
  });
  return GC_OK;
}

}  // namespace gradcomp
