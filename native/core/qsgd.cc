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
#include "qsgd_encode.h"

#if GC_X86
#include <immintrin.h>
#endif

namespace gradcomp {

using namespace qsgd_detail;

namespace {

using Header = gc_qsgd_header;
static_assert(sizeof(Header) == GC_QSGD_HEADER_BYTES, "QSGD header must be 24 bytes");

inline uint32_t fbits(float v) { uint32_t b; std::memcpy(&b, &v, 4); return b; }

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

}  // namespace

namespace qsgd_detail {

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


}  // namespace qsgd_detail

namespace {

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
