// QSGD's vector encoders (AVX-512 and AVX2 + BMI2): Philox for 16 / 8 blocks at once and the
// quantizer of quantize_one (qsgd.cc) lane by lane, bit-identical to encode_range_scalar.
#include <cstring>

#include "gradcomp/philox.h"
#include "qsgd_encode.h"

#if GC_X86
#include <immintrin.h>

namespace gradcomp {
namespace qsgd_detail {

static GC_TARGET_AVX512 inline __m512i mulhilo(__m512i a, __m512i m, __m512i* hi) {
  __m512i pe = _mm512_mul_epu32(a, m);
  __m512i po = _mm512_mul_epu32(_mm512_srli_epi64(a, 32), m);
  *hi = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(pe, 32), po);
  return _mm512_mask_blend_epi32(0xAAAA, pe, _mm512_slli_epi64(po, 32));
}

// 16 Philox-4x32-10 blocks at once: lane L computes block blk0 + L.
static GC_TARGET_AVX512 void philox16(const gc_qsgd_desc& d, uint64_t blk0, __m512i out[4]) {
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
static GC_TARGET_AVX2 inline __m256i mulhilo8(__m256i a, __m256i m, __m256i* hi) {
  const __m256i pe = _mm256_mul_epu32(a, m), po = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m);
  *hi = _mm256_blend_epi32(_mm256_srli_epi64(pe, 32), po, 0xAA);
  return _mm256_blend_epi32(pe, _mm256_slli_epi64(po, 32), 0xAA);
}

static GC_TARGET_AVX2 void philox8(const gc_qsgd_desc& d, uint64_t blk0, __m256i out[4]) {
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
static GC_TARGET_AVX2 inline void pack8_avx2(__m256i code, uint32_t bits, uint8_t* codes_out, uint64_t i) {
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
}  // namespace qsgd_detail
}  // namespace gradcomp
#endif
