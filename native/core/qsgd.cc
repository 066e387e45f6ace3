#include "qsgd.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <numeric>
#include <vector>

#include "cpu.h"
#include "gradcomp/philox.h"
#include "pool.h"

#if GC_X86
#include <immintrin.h>
#endif

namespace gradcomp {

namespace {

using Header = gc_qsgd_header;
static_assert(sizeof(Header) == GC_QSGD_HEADER_BYTES, "QSGD header must be 24 bytes");

inline uint32_t fbits(float v) { uint32_t b; std::memcpy(&b, &v, 4); return b; }
// Norms sit at byte offset 24 of a caller-provided buffer: access them without alignment UB.
inline float load_norm(const uint8_t* p, uint64_t b) { float v; std::memcpy(&v, p + 4 * b, 4); return v; }

#if GC_X86
// Max |x| bits and the 32 L2 partial sums, vectorized with the exact summation order of the
// scalar loop below (lane j of part[] still adds elements j, j+32, ... in sequence; squares of
// floats are exact in double, so an FMA rounds the same as the separate multiply and add).
GC_TARGET_AVX512 uint64_t norm_prefix_avx512(const float* x, uint64_t len, bool l2, uint32_t* maxkey, double part[32]) {
  const __m512i absm = _mm512_set1_epi32(0x7fffffff);
  __m512i mk = _mm512_setzero_si512();
  __m512d p0 = _mm512_loadu_pd(part), p1 = _mm512_loadu_pd(part + 8), p2 = _mm512_loadu_pd(part + 16),
          p3 = _mm512_loadu_pd(part + 24);
  uint64_t i = 0;
  for (; i + 32 <= len; i += 32) {
    __m512 a = _mm512_loadu_ps(x + i), b = _mm512_loadu_ps(x + i + 16);
    mk = _mm512_max_epu32(mk, _mm512_and_si512(_mm512_castps_si512(a), absm));
    mk = _mm512_max_epu32(mk, _mm512_and_si512(_mm512_castps_si512(b), absm));
    if (l2) {
      __m512d a0 = _mm512_cvtps_pd(_mm512_castps512_ps256(a)), a1 = _mm512_cvtps_pd(_mm512_extractf32x8_ps(a, 1));
      __m512d b0 = _mm512_cvtps_pd(_mm512_castps512_ps256(b)), b1 = _mm512_cvtps_pd(_mm512_extractf32x8_ps(b, 1));
      p0 = _mm512_fmadd_pd(a0, a0, p0); p1 = _mm512_fmadd_pd(a1, a1, p1);
      p2 = _mm512_fmadd_pd(b0, b0, p2); p3 = _mm512_fmadd_pd(b1, b1, p3);
    }
  }
  *maxkey = _mm512_reduce_max_epu32(mk);
  _mm512_storeu_pd(part, p0); _mm512_storeu_pd(part + 8, p1); _mm512_storeu_pd(part + 16, p2); _mm512_storeu_pd(part + 24, p3);
  return i;
}

// The same with eight floats per vector (four doubles per accumulator, eight accumulators).
GC_TARGET_AVX2 uint64_t norm_prefix_avx2(const float* x, uint64_t len, bool l2, uint32_t* maxkey, double part[32]) {
  const __m256i absm = _mm256_set1_epi32(0x7fffffff);
  __m256i mk = _mm256_setzero_si256();
  __m256d p[8];
  for (int k = 0; k < 8; ++k) p[k] = _mm256_loadu_pd(part + 4 * k);
  uint64_t i = 0;
  for (; i + 32 <= len; i += 32) {
    for (int q = 0; q < 4; ++q) {
      const __m256 a = _mm256_loadu_ps(x + i + 8 * q);
      mk = _mm256_max_epu32(mk, _mm256_and_si256(_mm256_castps_si256(a), absm));
      if (l2) {
        const __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(a)), hi = _mm256_cvtps_pd(_mm256_extractf128_ps(a, 1));
        p[2 * q] = _mm256_fmadd_pd(lo, lo, p[2 * q]);
        p[2 * q + 1] = _mm256_fmadd_pd(hi, hi, p[2 * q + 1]);
      }
    }
  }
  alignas(32) uint32_t m[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(m), mk);
  *maxkey = *std::max_element(m, m + 8);
  for (int k = 0; k < 8; ++k) _mm256_storeu_pd(part + 4 * k, p[k]);
  return i;
}
#endif

// Per-bucket norm; NaN marks a bucket that held a non-finite value (decoded as all NaN).
float bucket_norm(const float* x, uint64_t len, gc_qsgd_norm norm) {
  uint32_t maxkey = 0;
  // Fixed summation order shared with the CUDA kernel and the TS oracle: 32 sequential
  // partial sums in double (lane j takes elements j, j+32, ...), then a halving tree.
  double part[32] = {0};
  const bool l2 = norm == GC_QSGD_NORM_L2;
  uint64_t i = 0;
#if GC_X86
  if (active_isa() == Isa::kAvx512) i = norm_prefix_avx512(x, len, l2, &maxkey, part);
  else if (active_isa() == Isa::kAvx2) i = norm_prefix_avx2(x, len, l2, &maxkey, part);
#endif
  for (; i < len; ++i) {
    maxkey = std::max(maxkey, fbits(x[i]) & 0x7fffffffu);
    if (l2) {
      double v = static_cast<double>(x[i]);
      part[i & 31] += v * v;
    }
  }
  if (maxkey >= 0x7f800000u) return std::nanf("");
  if (!l2) { float m; std::memcpy(&m, &maxkey, 4); return m; }
  for (int off = 16; off >= 1; off >>= 1)
    for (int j = 0; j < off; ++j) part[j] += part[j + off];
  // A finite bucket whose l2 norm exceeds the float range stores FLT_MAX: any stored norm >= max|x|
  // keeps the quantizer unbiased, and the payload stays decodable.
  return static_cast<float>(std::min(std::sqrt(part[0]), static_cast<double>(FLT_MAX)));
}

// Quantizes elements [lo, hi) of one bucket whose norm is L into codes (one per element).
struct BucketParams {
  float L, scale, mul;
  uint32_t s, sign_shift;
  bool poisoned;
};

BucketParams bucket_params(float L, uint32_t s, uint32_t bits) {
  BucketParams p;
  p.L = L;
  p.s = s;
  p.sign_shift = bits - 1;
  p.poisoned = std::isnan(L);
  // Tiny norms: scale |x| and L by 2^100 (exact) so s / L cannot overflow.
  p.mul = L < 0x1p-100f ? 0x1p100f : 1.0f;
  p.scale = L > 0.0f ? static_cast<float>(s) / (L * p.mul) : 0.0f;
  return p;
}

inline uint32_t quantize_one(float x, uint32_t word, const BucketParams& p) {
  if (p.poisoned || p.scale == 0.0f) return 0;
  float r = (std::fabs(x) * p.mul) * p.scale;
  float l = std::floor(r);
  float frac = r - l;
  uint32_t level = static_cast<uint32_t>(l) + (gc_u24_to_unit(word) < frac ? 1u : 0u);
  if (level > p.s) level = p.s;
  uint32_t sign = (level > 0 && x < 0.0f) ? 1u : 0u;
  return level | (sign << p.sign_shift);
}

// Codes for the 64-element group starting at element base (64-aligned), elements
// [lo, hi) of it; words come from 16 Philox blocks.
void group_words(const gc_qsgd_desc& d, uint64_t base, uint32_t words[64]) {
  const uint64_t blk0 = (base >> 6) * 16;
  for (uint32_t L = 0; L < 16; ++L) {
    gc_u32x4 w = gc_philox_block(d.seed, d.step, d.tensor_id, blk0 + L);
    for (uint32_t k = 0; k < 4; ++k) words[k * 16 + L] = w.v[k];
  }
}

// Writes `count` codes of `bits` bits starting at element `first` (first*bits % 8 == 0).
void pack_codes(uint8_t* codes_out, uint64_t first, const uint32_t* codes, uint64_t count, uint32_t bits) {
  uint8_t* o = codes_out + first * bits / 8;
  if (bits == 8) { for (uint64_t i = 0; i < count; ++i) o[i] = static_cast<uint8_t>(codes[i]); return; }
  if (bits == 4 || bits == 2) {
    const uint32_t per = 8 / bits;
    for (uint64_t i = 0; i < count; i += per) {
      uint32_t byte = 0;
      for (uint32_t j = 0; j < per && i + j < count; ++j) byte |= codes[i + j] << (j * bits);
      *o++ = static_cast<uint8_t>(byte);
    }
    return;
  }
  uint64_t acc = 0;
  uint32_t fill = 0;
  for (uint64_t i = 0; i < count; ++i) {
    acc |= static_cast<uint64_t>(codes[i]) << fill;
    fill += bits;
    while (fill >= 8) { *o++ = static_cast<uint8_t>(acc); acc >>= 8; fill -= 8; }
  }
  if (fill > 0) *o = static_cast<uint8_t>(acc);  // only at the very end of the payload
}

void encode_range_scalar(const gc_qsgd_desc& d, uint32_t bits, const uint8_t* norms, uint8_t* codes_out,
                         uint64_t lo, uint64_t hi) {
  uint32_t words[64], codes[64];
  uint64_t cur_bucket = ~0ULL;
  BucketParams p{};
  for (uint64_t g = lo & ~63ULL; g < hi; g += 64) {
    group_words(d, g, words);
    uint64_t a = std::max(g, lo), b = std::min(g + 64, hi);
    for (uint64_t i = a; i < b; ++i) {
      if (i / d.bucket_size != cur_bucket) {  // one division per bucket, not per element
        cur_bucket = i / d.bucket_size;
        p = bucket_params(load_norm(norms, cur_bucket), d.levels, bits);
      }
      codes[i - a] = quantize_one(d.x[i], words[i - g], p);
    }
    pack_codes(codes_out, a, codes, b - a, bits);
  }
}

#if GC_X86
GC_TARGET_AVX512 inline __m512i mulhilo(__m512i a, __m512i m, __m512i* hi) {
  __m512i pe = _mm512_mul_epu32(a, m);
  __m512i po = _mm512_mul_epu32(_mm512_srli_epi64(a, 32), m);
  *hi = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(pe, 32), po);
  return _mm512_mask_blend_epi32(0xAAAA, pe, _mm512_slli_epi64(po, 32));
}

// 16 Philox-4x32-10 blocks at once: lane L computes block blk0 + L.
GC_TARGET_AVX512 void philox16(const gc_qsgd_desc& d, uint64_t blk0, __m512i out[4]) {
  const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  // blk0 is a multiple of 16, so adding the lane never carries into the high word.
  __m512i c0 = _mm512_add_epi32(_mm512_set1_epi32(static_cast<int>(static_cast<uint32_t>(blk0))), iota);
  __m512i c1 = _mm512_set1_epi32(static_cast<int>(static_cast<uint32_t>(blk0 >> 32)));
  __m512i c2 = _mm512_set1_epi32(static_cast<int>(d.step));
  __m512i c3 = _mm512_set1_epi32(static_cast<int>(d.tensor_id));
  const __m512i m0 = _mm512_set1_epi64(0xD2511F53u), m1 = _mm512_set1_epi64(0xCD9E8D57u);
  uint32_t k0 = static_cast<uint32_t>(d.seed), k1 = static_cast<uint32_t>(d.seed >> 32);
  for (int round = 0; round < 10; ++round) {
    __m512i hi0, hi1;
    __m512i lo0 = mulhilo(c0, m0, &hi0);
    __m512i lo1 = mulhilo(c2, m1, &hi1);
    __m512i n0 = _mm512_xor_si512(_mm512_xor_si512(hi1, c1), _mm512_set1_epi32(static_cast<int>(k0)));
    __m512i n2 = _mm512_xor_si512(_mm512_xor_si512(hi0, c3), _mm512_set1_epi32(static_cast<int>(k1)));
    c0 = n0; c1 = lo1; c2 = n2; c3 = lo0;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

// Requires bucket_size % 16 == 0 and lo, hi multiples of 64 (except hi == n at the end,
// handled by the scalar tail).
GC_TARGET_AVX512 void encode_range_avx512(const gc_qsgd_desc& d, uint32_t bits, const uint8_t* norms,
                                          uint8_t* codes_out, uint64_t lo, uint64_t hi) {
  const __m512 one_over = _mm512_set1_ps(1.0f / 16777216.0f);
  const __m512i absm = _mm512_set1_epi32(0x7fffffff);
  const __m512i vs = _mm512_set1_epi32(static_cast<int>(d.levels));
  const __m512i one = _mm512_set1_epi32(1);
  alignas(64) uint32_t codes[64];
  uint64_t g = lo, cur_bucket = ~0ULL;
  BucketParams p{};
  for (; g + 64 <= hi; g += 64) {
    __m512i w[4];
    philox16(d, (g >> 6) * 16, w);
    for (int k = 0; k < 4; ++k) {
      const uint64_t i = g + 16 * k;
      if (i / d.bucket_size != cur_bucket) {  // one division per bucket, not per vector
        cur_bucket = i / d.bucket_size;
        p = bucket_params(load_norm(norms, cur_bucket), d.levels, bits);
      }
      __m512i code;
      if (p.poisoned || p.scale == 0.0f) {
        code = _mm512_setzero_si512();
      } else {
        __m512 x = _mm512_loadu_ps(d.x + i);
        __m512 ax = _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(x), absm));
        // mul is 1 (an exact no-op) unless the norm is tiny.
        if (p.mul != 1.0f) ax = _mm512_mul_ps(ax, _mm512_set1_ps(p.mul));
        __m512 r = _mm512_mul_ps(ax, _mm512_set1_ps(p.scale));
        __m512 l = _mm512_roundscale_ps(r, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
        __m512 frac = _mm512_sub_ps(r, l);
        __m512 u = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(w[k], 8)), one_over);
        __mmask16 up = _mm512_cmp_ps_mask(u, frac, _CMP_LT_OQ);
        __m512i level = _mm512_mask_add_epi32(_mm512_cvttps_epi32(l), up, _mm512_cvttps_epi32(l), one);
        level = _mm512_min_epu32(level, vs);
        __mmask16 neg = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ) &
                        _mm512_cmpgt_epi32_mask(level, _mm512_setzero_si512());
        code = _mm512_mask_or_epi32(level, neg, level, _mm512_set1_epi32(1 << p.sign_shift));
      }
      if (bits == 8) {
        _mm_storeu_si128(reinterpret_cast<__m128i*>(codes_out + i), _mm512_cvtepi32_epi8(code));
      } else if (bits == 4) {
        // Pairs of codes meet in each 64-bit lane; the low byte of every lane is one output byte.
        __m512i pairs = _mm512_or_si512(code, _mm512_srli_epi64(code, 28));
        _mm_storel_epi64(reinterpret_cast<__m128i*>(codes_out + i / 2), _mm512_cvtepi64_epi8(pairs));
      } else if (bits == 2) {
        __m512i pairs = _mm512_or_si512(code, _mm512_srli_epi64(code, 30));
        uint64_t nibbles = static_cast<uint64_t>(_mm_cvtsi128_si64(_mm512_cvtepi64_epi8(pairs)));
        uint32_t packed = static_cast<uint32_t>(_pext_u64(nibbles, 0x0F0F0F0F0F0F0F0FULL));
        std::memcpy(codes_out + i / 4, &packed, 4);
      } else {
        _mm512_store_si512(codes + 16 * k, code);
      }
    }
    if (bits != 8 && bits != 4 && bits != 2) pack_codes(codes_out, g, codes, 64, bits);
  }
  if (g < hi) encode_range_scalar(d, bits, norms, codes_out, g, hi);
}

// AVX2: eight Philox blocks per call (lane L: block blk0 + L), the same rounds as philox16.
GC_TARGET_AVX2 inline __m256i mulhilo8(__m256i a, __m256i m, __m256i* hi) {
  const __m256i pe = _mm256_mul_epu32(a, m), po = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m);
  *hi = _mm256_blend_epi32(_mm256_srli_epi64(pe, 32), po, 0xAA);
  return _mm256_blend_epi32(pe, _mm256_slli_epi64(po, 32), 0xAA);
}

GC_TARGET_AVX2 void philox8(const gc_qsgd_desc& d, uint64_t blk0, __m256i out[4]) {
  // blk0 is a multiple of 8: adding the lane never carries into the high word.
  __m256i c0 = _mm256_add_epi32(_mm256_set1_epi32(static_cast<int>(static_cast<uint32_t>(blk0))), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  __m256i c1 = _mm256_set1_epi32(static_cast<int>(static_cast<uint32_t>(blk0 >> 32)));
  __m256i c2 = _mm256_set1_epi32(static_cast<int>(d.step)), c3 = _mm256_set1_epi32(static_cast<int>(d.tensor_id));
  const __m256i m0 = _mm256_set1_epi64x(0xD2511F53u), m1 = _mm256_set1_epi64x(0xCD9E8D57u);
  uint32_t k0 = static_cast<uint32_t>(d.seed), k1 = static_cast<uint32_t>(d.seed >> 32);
  for (int round = 0; round < 10; ++round) {
    __m256i hi0, hi1;
    const __m256i lo0 = mulhilo8(c0, m0, &hi0), lo1 = mulhilo8(c2, m1, &hi1);
    const __m256i n0 = _mm256_xor_si256(_mm256_xor_si256(hi1, c1), _mm256_set1_epi32(static_cast<int>(k0)));
    const __m256i n2 = _mm256_xor_si256(_mm256_xor_si256(hi0, c3), _mm256_set1_epi32(static_cast<int>(k1)));
    c0 = n0; c1 = lo1; c2 = n2; c3 = lo0;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

// Eight codes (one per 32-bit lane, each < 2^bits, bits 2, 4 or 8) written as pack_codes writes
// them, starting at element i (i * bits a multiple of 8): their low bytes gathered, then the
// code bits of each byte squeezed together (pext).
GC_TARGET_AVX2 inline void pack8_avx2(__m256i code, uint32_t bits, uint8_t* codes_out, uint64_t i) {
  const __m256i pick = _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                        0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
  const __m256i b = _mm256_shuffle_epi8(code, pick);
  const uint64_t w = static_cast<uint32_t>(_mm256_cvtsi256_si32(b)) | (static_cast<uint64_t>(static_cast<uint32_t>(_mm256_extract_epi32(b, 4))) << 32);
  uint8_t* o = codes_out + i * bits / 8;
  if (bits == 8) {
    std::memcpy(o, &w, 8);
  } else if (bits == 4) {
    const uint32_t q = static_cast<uint32_t>(_pext_u64(w, 0x0F0F0F0F0F0F0F0FULL));
    std::memcpy(o, &q, 4);
  } else {
    const uint16_t q = static_cast<uint16_t>(_pext_u64(w, 0x0303030303030303ULL));
    std::memcpy(o, &q, 2);
  }
}

// Requires bucket_size % 8 == 0; the same operations per element as quantize_one (bit-identical).
GC_TARGET_AVX2 void encode_range_avx2(const gc_qsgd_desc& d, uint32_t bits, const uint8_t* norms,
                                      uint8_t* codes_out, uint64_t lo, uint64_t hi) {
  const __m256 one_over = _mm256_set1_ps(1.0f / 16777216.0f), zero = _mm256_setzero_ps();
  const __m256i absm = _mm256_set1_epi32(0x7fffffff), vs = _mm256_set1_epi32(static_cast<int>(d.levels));
  alignas(32) uint32_t codes[64];
  const bool direct = bits == 2 || bits == 4 || bits == 8;  // whole bytes per 8 codes: packed straight from the vector
  uint64_t g = lo, next_bucket = 0;  // the first element past the current bucket (0: none yet)
  BucketParams p{};
  for (; g + 64 <= hi; g += 64) {
    __m256i w[2][4];  // element g + 16k + 8h takes word k of blocks 8h..8h+7 of the group's 16
    philox8(d, (g >> 6) * 16, w[0]);
    philox8(d, (g >> 6) * 16 + 8, w[1]);
    for (int v = 0; v < 8; ++v) {
      const int k = v >> 1, h = v & 1;
      const uint64_t i = g + 8 * v;
      if (i >= next_bucket) {  // one division per bucket
        const uint64_t b = i / d.bucket_size;
        next_bucket = (b + 1) * d.bucket_size;
        p = bucket_params(load_norm(norms, b), d.levels, bits);
      }
      __m256i code = _mm256_setzero_si256();
      if (!p.poisoned && p.scale != 0.0f) {
        const __m256 x = _mm256_loadu_ps(d.x + i);
        __m256 ax = _mm256_castsi256_ps(_mm256_and_si256(_mm256_castps_si256(x), absm));
        if (p.mul != 1.0f) ax = _mm256_mul_ps(ax, _mm256_set1_ps(p.mul));
        const __m256 r = _mm256_mul_ps(ax, _mm256_set1_ps(p.scale));
        const __m256 l = _mm256_round_ps(r, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
        const __m256 u = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(w[h][k], 8)), one_over);
        const __m256i up = _mm256_castps_si256(_mm256_cmp_ps(u, _mm256_sub_ps(r, l), _CMP_LT_OQ));  // -1 where rounding up
        const __m256i level = _mm256_min_epu32(_mm256_sub_epi32(_mm256_cvttps_epi32(l), up), vs);
        const __m256i neg = _mm256_and_si256(_mm256_castps_si256(_mm256_cmp_ps(x, zero, _CMP_LT_OQ)), _mm256_cmpgt_epi32(level, _mm256_setzero_si256()));
        code = _mm256_or_si256(level, _mm256_and_si256(neg, _mm256_set1_epi32(1 << p.sign_shift)));
      }
      if (direct) pack8_avx2(code, bits, codes_out, i);
      else _mm256_store_si256(reinterpret_cast<__m256i*>(codes + 8 * v), code);
    }
    if (!direct) pack_codes(codes_out, g, codes, 64, bits);
  }
  if (g < hi) encode_range_scalar(d, bits, norms, codes_out, g, hi);
}
#endif

uint64_t align_unit(uint32_t bucket) { return std::lcm<uint64_t>(bucket, 64); }

}  // namespace

gc_status qsgd_encode(const gc_qsgd_desc& d) {
  if (d.levels < 1 || d.levels > GC_QSGD_MAX_LEVELS || d.bucket_size < 1) return GC_ERR_INVALID_ARG;
  if (d.norm != GC_QSGD_NORM_MAX && d.norm != GC_QSGD_NORM_L2) return GC_ERR_INVALID_ARG;
  if (d.payload == nullptr || (d.x == nullptr && d.n > 0)) return GC_ERR_INVALID_ARG;
  if (d.payload_bytes != gc_qsgd_payload_bytes(d.n, d.levels, d.bucket_size)) return GC_ERR_INVALID_ARG;
  const uint32_t bits = gc_qsgd_bits(d.levels);
  Header h{GC_QSGD_MAGIC, GC_QSGD_VERSION, static_cast<uint8_t>(d.norm), static_cast<uint8_t>(bits), 0,
           d.levels, d.bucket_size, d.n};
  std::memcpy(d.payload, &h, sizeof h);
  const uint64_t buckets = (d.n + d.bucket_size - 1) / d.bucket_size;
  uint8_t* norms = d.payload + GC_QSGD_HEADER_BYTES;
  uint8_t* codes = d.payload + GC_QSGD_HEADER_BYTES + 4 * buckets;
  const uint64_t code_bytes = (d.n * bits + 7) / 8;
  if (code_bytes > 0) codes[code_bytes - 1] = 0;  // pad bits of the last byte are zero

  // Tasks cover whole buckets and whole 64-element groups: ~32K elements each.
  const uint64_t unit = align_unit(d.bucket_size);
  const uint64_t per_task = std::max<uint64_t>(unit, (32768 / unit) * unit);
  const size_t tasks = chunk_count(d.n, per_task);
#if GC_X86
  const bool simd = active_isa() == Isa::kAvx512 && d.bucket_size % 16 == 0;
  const bool simd2 = active_isa() == Isa::kAvx2 && d.bucket_size % 8 == 0;
#else
  const bool simd = false;
#endif
  ThreadPool::instance().parallel_for(tasks, [&](size_t t) {
    uint64_t lo = t * per_task, hi = std::min<uint64_t>(d.n, lo + per_task);
    if (lo >= hi) return;
    for (uint64_t b = lo / d.bucket_size; b * d.bucket_size < hi; ++b) {
      uint64_t b0 = b * d.bucket_size, b1 = std::min<uint64_t>(d.n, b0 + d.bucket_size);
      float L = bucket_norm(d.x + b0, b1 - b0, d.norm);
      std::memcpy(norms + 4 * b, &L, 4);
    }
#if GC_X86
    if (simd) return encode_range_avx512(d, bits, norms, codes, lo, hi);
    if (simd2) return encode_range_avx2(d, bits, norms, codes, lo, hi);
#endif
    encode_range_scalar(d, bits, norms, codes, lo, hi);
  });
  return GC_OK;
}

}  // namespace gradcomp
