#include "codec.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <new>
#include <vector>

#include "cpu.h"
#include "gradcomp/philox.h"
#include "pool.h"

#if GC_X86
#include <immintrin.h>
#endif

namespace gradcomp {

namespace {

constexpr uint64_t kPiece = 1 << 16;  // a multiple of 8: pieces own whole bytes of the bitmap

// p = g + e into e, sign bits, and this piece's sum |p|: sixteen partial sums (element j of the
// piece goes to partial j mod 16), combined as ((q0 + q1) + (q2 + q3)) + ((q4 + q5) + (q6 + q7))
// with q_l = s_l + s_{l+8}. The scalar and AVX-512 versions add in exactly this order.
inline double combine16(const double s[16]) {
  double q[8];
  for (int l = 0; l < 8; ++l) q[l] = s[l] + s[l + 8];
  return ((q[0] + q[1]) + (q[2] + q[3])) + ((q[4] + q[5]) + (q[6] + q[7]));
}

// kStore false: p = e (read only; g must be null), for sign_pack.
template <bool kStore = true>
double efsign_pass1_scalar(const float* g, float* e, uint8_t* bits, uint64_t lo, uint64_t hi) {
  double s[16] = {};
  for (uint64_t i = lo; i < hi; i += 8) {
    uint32_t byte = 0;
    const uint64_t end = std::min<uint64_t>(hi, i + 8);
    for (uint64_t j = i; j < end; ++j) {
      const float p = g != nullptr ? g[j] + e[j] : e[j];
      if (kStore) e[j] = p;
      byte |= (p < 0.0f ? 1u : 0u) << (j - i);
      s[(j - lo) & 15] += std::fabs(static_cast<double>(p));
    }
    bits[i / 8] = static_cast<uint8_t>(byte);
  }
  return combine16(s);
}

#if GC_X86
// The vector versions' tail [i, hi): the scalar pass on it, its |p| added into the same lanes.
template <bool kStore>
void pass1_tail(const float* g, float* e, uint8_t* bits, uint64_t lo, uint64_t i, uint64_t hi, double s[16]) {
  if (i >= hi) return;
  double t[16] = {};
  efsign_pass1_scalar<kStore>(g, e, bits, i, hi);
  for (uint64_t j = i; j < hi; ++j) t[(j - lo) & 15] += std::fabs(static_cast<double>(kStore || g == nullptr ? e[j] : g[j] + e[j]));
  for (int l = 0; l < 16; ++l) s[l] += t[l];
}

inline void sign_avg_body(const uint8_t* const* bits, const float* scales, uint32_t ranks, uint64_t lo, uint64_t hi,
                          float* out, float divisor);

template <bool kStore = true>
GC_TARGET_AVX512 double efsign_pass1_avx512(const float* g, float* e, uint8_t* bits, uint64_t lo, uint64_t hi) {
  __m512d a0 = _mm512_setzero_pd(), a1 = _mm512_setzero_pd();
  const __m512 zero = _mm512_setzero_ps();
  uint64_t i = lo;
  for (; i + 16 <= hi; i += 16) {
    __m512 p = _mm512_loadu_ps(e + i);
    if (g != nullptr) p = _mm512_add_ps(_mm512_loadu_ps(g + i), p);
    if (kStore) _mm512_storeu_ps(e + i, p);
    const __mmask16 neg = _mm512_cmp_ps_mask(p, zero, _CMP_LT_OQ);
    std::memcpy(bits + i / 8, &neg, 2);
    const __m512 ap = _mm512_abs_ps(p);
    a0 = _mm512_add_pd(a0, _mm512_cvtps_pd(_mm512_castps512_ps256(ap)));
    a1 = _mm512_add_pd(a1, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(ap), 1))));
  }
  double s[16];
  _mm512_storeu_pd(s, a0);
  _mm512_storeu_pd(s + 8, a1);
  pass1_tail<kStore>(g, e, bits, lo, i, hi, s);
  return combine16(s);
}

GC_TARGET_AVX512 void efsign_pass2_avx512(float* e, const uint8_t* bits, float scale, uint64_t lo, uint64_t hi) {
  const __m512 pos = _mm512_set1_ps(scale), neg = _mm512_set1_ps(-scale);
  uint64_t i = lo;
  for (; i + 16 <= hi; i += 16) {
    __mmask16 m;
    std::memcpy(&m, bits + i / 8, 2);
    _mm512_storeu_ps(e + i, _mm512_sub_ps(_mm512_loadu_ps(e + i), _mm512_mask_blend_ps(m, pos, neg)));
  }
  for (; i < hi; ++i) e[i] = e[i] - (((bits[i / 8] >> (i % 8)) & 1u) ? -scale : scale);
}

GC_TARGET_AVX512 void sign_avg_avx512(const uint8_t* const* bits, const float* scales, uint32_t ranks, uint64_t lo, uint64_t hi,
                                      float* out, float divisor) {
  const __m512 div = _mm512_set1_ps(divisor);
  uint64_t i = lo;
  for (; i + 16 <= hi; i += 16) {
    __m512 acc = _mm512_setzero_ps();
    for (uint32_t r = 0; r < ranks; ++r) {
      __mmask16 m;
      std::memcpy(&m, bits[r] + i / 8, 2);
      acc = _mm512_add_ps(acc, _mm512_mask_blend_ps(m, _mm512_set1_ps(scales[r]), _mm512_set1_ps(-scales[r])));
    }
    _mm512_storeu_ps(out + i, _mm512_div_ps(acc, div));
  }
  sign_avg_body(bits, scales, ranks, i, hi, out, divisor);
}

// AVX2: sixteen elements per iteration (two vectors: partials 0-7 and 8-15, the scalar's lanes).
template <bool kStore = true>
GC_TARGET_AVX2 double efsign_pass1_avx2(const float* g, float* e, uint8_t* bits, uint64_t lo, uint64_t hi) {
  __m256d a[4] = {_mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd()};
  const __m256 zero = _mm256_setzero_ps(), absm = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  uint64_t i = lo;
  for (; i + 16 <= hi; i += 16) {
    for (int h = 0; h < 2; ++h) {
      __m256 p = _mm256_loadu_ps(e + i + 8 * h);
      if (g != nullptr) p = _mm256_add_ps(_mm256_loadu_ps(g + i + 8 * h), p);
      if (kStore) _mm256_storeu_ps(e + i + 8 * h, p);
      bits[i / 8 + h] = static_cast<uint8_t>(_mm256_movemask_ps(_mm256_cmp_ps(p, zero, _CMP_LT_OQ)));
      const __m256 ap = _mm256_and_ps(p, absm);
      a[2 * h] = _mm256_add_pd(a[2 * h], _mm256_cvtps_pd(_mm256_castps256_ps128(ap)));
      a[2 * h + 1] = _mm256_add_pd(a[2 * h + 1], _mm256_cvtps_pd(_mm256_extractf128_ps(ap, 1)));
    }
  }
  double s[16];
  for (int k = 0; k < 4; ++k) _mm256_storeu_pd(s + 4 * k, a[k]);
  pass1_tail<kStore>(g, e, bits, lo, i, hi, s);
  return combine16(s);
}

// Lane l of the result is all ones where bit l of the byte is set.
GC_TARGET_AVX2 inline __m256 bit_lanes(uint8_t byte) {
  const __m256i sel = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
  return _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32(byte), sel), sel));
}

GC_TARGET_AVX2 void efsign_pass2_avx2(float* e, const uint8_t* bits, float scale, uint64_t lo, uint64_t hi) {
  const __m256 pos = _mm256_set1_ps(scale), neg = _mm256_set1_ps(-scale);
  uint64_t i = lo;
  for (; i + 8 <= hi; i += 8) _mm256_storeu_ps(e + i, _mm256_sub_ps(_mm256_loadu_ps(e + i), _mm256_blendv_ps(pos, neg, bit_lanes(bits[i / 8]))));
  for (; i < hi; ++i) e[i] = e[i] - (((bits[i / 8] >> (i % 8)) & 1u) ? -scale : scale);
}

GC_TARGET_AVX2 void sign_avg_avx2(const uint8_t* const* bits, const float* scales, uint32_t ranks, uint64_t lo, uint64_t hi,
                                  float* out, float divisor) {
  const __m256 div = _mm256_set1_ps(divisor);
  uint64_t i = lo;
  for (; i + 8 <= hi; i += 8) {
    __m256 acc = _mm256_setzero_ps();
    for (uint32_t r = 0; r < ranks; ++r)
      acc = _mm256_add_ps(acc, _mm256_blendv_ps(_mm256_set1_ps(scales[r]), _mm256_set1_ps(-scales[r]), bit_lanes(bits[r][i / 8])));
    _mm256_storeu_ps(out + i, _mm256_div_ps(acc, div));
  }
  sign_avg_body(bits, scales, ranks, i, hi, out, divisor);
}
#endif

template <bool kStore = true>
double efsign_pass1(const float* g, float* e, uint8_t* bits, uint64_t lo, uint64_t hi) {
#if GC_X86
  if (active_isa() == Isa::kAvx512) return efsign_pass1_avx512<kStore>(g, e, bits, lo, hi);
  if (active_isa() == Isa::kAvx2) return efsign_pass1_avx2<kStore>(g, e, bits, lo, hi);
#endif
  return efsign_pass1_scalar<kStore>(g, e, bits, lo, hi);
}

inline void efsign_pass2_body(float* e, const uint8_t* bits, float scale, uint64_t lo, uint64_t hi) {
  for (uint64_t i = lo; i < hi; ++i) e[i] = e[i] - (((bits[i / 8] >> (i % 8)) & 1u) ? -scale : scale);
}

void efsign_pass2(float* e, const uint8_t* bits, float scale, uint64_t lo, uint64_t hi) {
#if GC_X86
  if (active_isa() == Isa::kAvx512) return efsign_pass2_avx512(e, bits, scale, lo, hi);
  if (active_isa() == Isa::kAvx2) return efsign_pass2_avx2(e, bits, scale, lo, hi);
#endif
  efsign_pass2_body(e, bits, scale, lo, hi);
}

inline void sign_avg_body(const uint8_t* const* bits, const float* scales, uint32_t ranks, uint64_t lo, uint64_t hi,
                          float* out, float divisor) {
  for (uint64_t i = lo; i < hi; ++i) {
    float acc = 0.0f;
    for (uint32_t r = 0; r < ranks; ++r) acc = acc + (((bits[r][i / 8] >> (i % 8)) & 1u) ? -scales[r] : scales[r]);
    out[i] = acc / divisor;
  }
}

void sign_avg(const uint8_t* const* bits, const float* scales, uint32_t ranks, uint64_t lo, uint64_t hi, float* out, float divisor) {
#if GC_X86
  if (active_isa() == Isa::kAvx512) return sign_avg_avx512(bits, scales, ranks, lo, hi, out, divisor);
  if (active_isa() == Isa::kAvx2) return sign_avg_avx2(bits, scales, ranks, lo, hi, out, divisor);
#endif
  sign_avg_body(bits, scales, ranks, lo, hi, out, divisor);
}

inline void sign_vote_body(const uint8_t* const* bits, uint32_t ranks, uint64_t lo, uint64_t hi, float* out) {
  for (uint64_t i = lo; i < hi; ++i) {
    int32_t votes = 0;
    for (uint32_t r = 0; r < ranks; ++r) votes += ((bits[r][i / 8] >> (i % 8)) & 1u) ? -1 : 1;
    out[i] = votes > 0 ? 1.0f : votes < 0 ? -1.0f : 0.0f;
  }
}

inline void dgc_body(const float* g, float* u, float* v, uint64_t lo, uint64_t hi, float mu, bool nesterov, float clip) {
  if (nesterov) {
    for (uint64_t i = lo; i < hi; ++i) {
      const float gi = clip == 1.0f ? g[i] : g[i] * clip;
      const float ui = mu * (u[i] + gi);
      u[i] = ui;
      v[i] = v[i] + (ui + gi);
    }
  } else {
    for (uint64_t i = lo; i < hi; ++i) {
      const float gi = clip == 1.0f ? g[i] : g[i] * clip;
      const float ui = mu * u[i] + gi;
      u[i] = ui;
      v[i] = v[i] + ui;
    }
  }
}
GC_ISA_VARIANTS(dgc, (const float* g, float* u, float* v, uint64_t lo, uint64_t hi, float mu, bool nesterov, float clip),
                (g, u, v, lo, hi, mu, nesterov, clip))

}  // namespace

gc_status efsign_encode(const float* grad, float* e, uint64_t n, uint8_t* bits, float* scale_out) {
  if ((n > 0 && (e == nullptr || bits == nullptr)) || scale_out == nullptr) return GC_ERR_INVALID_ARG;
  ThreadPool& pool = ThreadPool::instance();
  const size_t tasks = chunk_count(n, kPiece);
  std::vector<double> part(tasks, 0.0);
  pool.parallel_for(tasks, [&](size_t t) {
    const uint64_t lo = t * kPiece, hi = std::min<uint64_t>(n, lo + kPiece);
    if (lo < hi) part[t] = efsign_pass1(grad, e, bits, lo, hi);
  });
  double l1 = 0.0;
  for (double p : part) l1 += p;
  const float scale = n > 0 ? static_cast<float>(l1 / static_cast<double>(n)) : 0.0f;
  *scale_out = scale;
  pool.parallel_for(tasks, [&](size_t t) {
    const uint64_t lo = t * kPiece, hi = std::min<uint64_t>(n, lo + kPiece);
    if (lo < hi) efsign_pass2(e, bits, scale, lo, hi);
  });
  return GC_OK;
}

gc_status efsign_encode_blocks(const float* grad, float* e, uint64_t n, uint64_t block, uint8_t* bits, float* scales) {
  if (block == 0 || block % 8 != 0 || (n > 0 && (e == nullptr || bits == nullptr || scales == nullptr))) return GC_ERR_INVALID_ARG;
  const uint64_t nb = (n + block - 1) / block;
  // Each block is one piece: its sum |p| in efsign's lane order, then its own scale.
  ThreadPool::instance().parallel_for(chunk_count(nb, std::max<uint64_t>(1, kPiece / block)), [&](size_t t) {
    const uint64_t per = std::max<uint64_t>(1, kPiece / block), b0 = t * per, b1 = std::min<uint64_t>(nb, b0 + per);
    for (uint64_t b = b0; b < b1; ++b) {
      const uint64_t lo = b * block, hi = std::min<uint64_t>(n, lo + block);
      const double l1 = efsign_pass1(grad, e, bits, lo, hi);
      const float scale = static_cast<float>(l1 / static_cast<double>(hi - lo));
      scales[b] = scale;
      efsign_pass2(e, bits, scale, lo, hi);
    }
  });
  return GC_OK;
}

gc_status sign_unpack_add_blocks(const uint8_t* bits, uint64_t n, uint64_t block, const float* scales, float* out) {
  if (block == 0 || block % 8 != 0 || (n > 0 && (bits == nullptr || scales == nullptr || out == nullptr))) return GC_ERR_INVALID_ARG;
  const uint64_t nb = (n + block - 1) / block, per = std::max<uint64_t>(1, kPiece / block);
  ThreadPool::instance().parallel_for(chunk_count(nb, per), [&](size_t t) {
    const uint64_t b0 = t * per, b1 = std::min<uint64_t>(nb, b0 + per);
    for (uint64_t b = b0; b < b1; ++b) {
      const uint64_t lo = b * block, hi = std::min<uint64_t>(n, lo + block);
      efsign_pass2(out, bits, -scales[b], lo, hi);
    }
  });
  return GC_OK;
}

gc_status sign_pack(const float* x, uint64_t n, uint8_t* bits, double* l1) {
  if ((n > 0 && (x == nullptr || bits == nullptr)) || l1 == nullptr) return GC_ERR_INVALID_ARG;
  const size_t tasks = chunk_count(n, kPiece);
  std::vector<double> part(tasks, 0.0);
  float* xs = const_cast<float*>(x);  // read only: pass1<false> never stores
  ThreadPool::instance().parallel_for(tasks, [&](size_t t) {
    const uint64_t lo = t * kPiece, hi = std::min<uint64_t>(n, lo + kPiece);
    if (lo < hi) part[t] = efsign_pass1<false>(nullptr, xs, bits, lo, hi);
  });
  double total = 0.0;
  for (double p : part) total += p;
  *l1 = total;
  return GC_OK;
}

gc_status sign_unpack_add(const uint8_t* bits, uint64_t n, float scale, float* out) {
  if (n > 0 && (bits == nullptr || out == nullptr)) return GC_ERR_INVALID_ARG;
  // out - (bit ? scale : -scale) is exactly out + (bit ? -scale : scale): pass 2 with -scale.
  ThreadPool::instance().parallel_for(chunk_count(n, kPiece), [&](size_t t) {
    const uint64_t lo = t * kPiece, hi = std::min<uint64_t>(n, lo + kPiece);
    if (lo < hi) efsign_pass2(out, bits, -scale, lo, hi);
  });
  return GC_OK;
}

gc_status sign_decode_all(const uint8_t* const* bits, const float* scales, uint32_t ranks, uint64_t n, float* out, int mode,
                          float divisor) {
  if ((n > 0 && out == nullptr) || ranks == 0 || bits == nullptr || (mode == 0 && scales == nullptr) || mode < 0 || mode > 1)
    return GC_ERR_INVALID_ARG;
  ThreadPool::instance().parallel_for(chunk_count(n, kPiece), [&](size_t t) {
    const uint64_t lo = t * kPiece, hi = std::min<uint64_t>(n, lo + kPiece);
    if (lo >= hi) return;
    if (mode == 0) sign_avg(bits, scales, ranks, lo, hi, out, divisor);
    else sign_vote_body(bits, ranks, lo, hi, out);
  });
  return GC_OK;
}

gc_status randk_support(uint64_t n, uint64_t k, uint64_t seed, uint32_t step, uint32_t stream, uint32_t* out) {
  if (k > n || n > 0xffffffffULL || (k > 0 && out == nullptr)) return GC_ERR_INVALID_ARG;
  if (k == 0) return GC_OK;
  const uint64_t words = (n + 63) / 64;
  std::unique_ptr<uint64_t[]> taken(new (std::nothrow) uint64_t[words]());
  if (!taken) return GC_ERR_OUT_OF_MEMORY;
  for (uint64_t j = n - k; j < n; ++j) {
    const gc_u32x4 r = gc_philox_block(seed, step, stream, j);
    const uint64_t x = (static_cast<uint64_t>(r.v[1]) << 32) | r.v[0];
    const uint64_t t = static_cast<uint64_t>((static_cast<unsigned __int128>(x) * (j + 1)) >> 64);
    const uint64_t pick = (taken[t / 64] >> (t % 64)) & 1u ? j : t;
    taken[pick / 64] |= 1ULL << (pick % 64);
  }
  uint64_t o = 0;
  for (uint64_t w = 0; w < words && o < k; ++w) {
    for (uint64_t bitsw = taken[w]; bitsw != 0; bitsw &= bitsw - 1) out[o++] = static_cast<uint32_t>(w * 64 + __builtin_ctzll(bitsw));
  }
  return o == k ? GC_OK : GC_ERR_INTERNAL;
}

gc_status dgc_accumulate(const float* g, float* u, float* v, uint64_t n, float mu, bool nesterov, float clip) {
  if (n > 0 && (g == nullptr || u == nullptr || v == nullptr)) return GC_ERR_INVALID_ARG;
  ThreadPool::instance().parallel_for(chunk_count(n, kPiece), [&](size_t t) {
    const uint64_t lo = t * kPiece, hi = std::min<uint64_t>(n, lo + kPiece);
    if (lo < hi) dgc_run(g, u, v, lo, hi, mu, nesterov, clip);
  });
  return GC_OK;
}

}  // namespace gradcomp
