#include "topk_pass.h"

#include <cstring>

#include "cpu.h"
#include "select.h"

#if GC_X86
#include <immintrin.h>
#endif

namespace gradcomp {
namespace topk_detail {

namespace {



template <bool kEF>
void pass_scalar(const PassArgs& a, Chunk& c, uint64_t from, uint64_t cnt, uint64_t eq) {
  for (uint64_t i = from; i < c.hi; ++i) {
    float v;
    if (kEF) {
      v = a.scale * a.g[i] + a.r[i];
      a.r[i] = v;
    } else {
      v = a.r[i];
    }
    uint32_t key = mag_key(v);
    if (key > a.t) {
      if (cnt < a.cap) { c.sidx[cnt] = static_cast<uint32_t>(i); c.sval[cnt] = v; }
      ++cnt;
    } else if (key == a.t) {
      ++eq;
    }
  }
  c.gt = cnt;
  c.eq = eq;
  c.stored = std::min(cnt, a.cap);
}

#if GC_X86
template <bool kEF>
GC_TARGET_AVX512 void pass_avx512(const PassArgs& a, Chunk& c) {
  const __m512 vs = _mm512_set1_ps(a.scale);
  const __m512i vt = _mm512_set1_epi32(static_cast<int>(a.t));
  const __m512i vabs = _mm512_set1_epi32(0x7fffffff);
  const __m512i step = _mm512_set1_epi32(16);
  __m512i vidx = _mm512_add_epi32(_mm512_set1_epi32(static_cast<int>(c.lo)),
                                  _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
  uint64_t cnt = 0, eq = 0, i = c.lo;
  for (; i + 16 <= c.hi; i += 16) {
    __m512 v;
    if (kEF) {
      v = _mm512_add_ps(_mm512_mul_ps(vs, _mm512_loadu_ps(a.g + i)), _mm512_loadu_ps(a.r + i));
      _mm512_storeu_ps(a.r + i, v);
    } else {
      v = _mm512_loadu_ps(a.r + i);
    }
    __m512i key = _mm512_and_si512(_mm512_castps_si512(v), vabs);
    __mmask16 gt = _mm512_cmpgt_epi32_mask(key, vt);  // keys < 2^31: signed compare is exact
    eq += static_cast<uint64_t>(__builtin_popcount(_mm512_cmpeq_epi32_mask(key, vt)));
    if (gt) {
      // Compress into a register and store the whole vector: compress-to-memory is
      // microcoded and slow on Zen 4; the slab has kSlack entries of room past cap.
      if (cnt < a.cap) {
        _mm512_storeu_si512(c.sidx + cnt, _mm512_maskz_compress_epi32(gt, vidx));
        _mm512_storeu_ps(c.sval + cnt, _mm512_maskz_compress_ps(gt, v));
      }
      cnt += static_cast<uint64_t>(__builtin_popcount(gt));
    }
    vidx = _mm512_add_epi32(vidx, step);
  }
  // Entries past cap (inside the slack) are garbage; stored = min(cnt, cap) < gt marks the
  // chunk as overflowed so later steps rescan its source instead of reading the slab.
  pass_scalar<kEF>(a, c, i, cnt, eq);
}

template <bool kEF>
GC_TARGET_AVX2 void pass_avx2(const PassArgs& a, Chunk& c) {
  const __m256 vs = _mm256_set1_ps(a.scale);
  const __m256i vt = _mm256_set1_epi32(static_cast<int>(a.t));
  const __m256i vabs = _mm256_set1_epi32(0x7fffffff);
  alignas(32) float lanes[8];
  uint64_t cnt = 0, eq = 0, i = c.lo;
  for (; i + 8 <= c.hi; i += 8) {
    __m256 v;
    if (kEF) {
      v = _mm256_add_ps(_mm256_mul_ps(vs, _mm256_loadu_ps(a.g + i)), _mm256_loadu_ps(a.r + i));
      _mm256_storeu_ps(a.r + i, v);
    } else {
      v = _mm256_loadu_ps(a.r + i);
    }
    __m256i key = _mm256_and_si256(_mm256_castps_si256(v), vabs);
    unsigned gt = static_cast<unsigned>(_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(key, vt))));
    unsigned e = static_cast<unsigned>(_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(key, vt))));
    eq += static_cast<uint64_t>(__builtin_popcount(e));
    if (gt) {
      _mm256_store_ps(lanes, v);
      while (gt) {
        unsigned j = static_cast<unsigned>(__builtin_ctz(gt));
        if (cnt < a.cap) { c.sidx[cnt] = static_cast<uint32_t>(i + j); c.sval[cnt] = lanes[j]; }
        ++cnt;
        gt &= gt - 1;
      }
    }
  }
  pass_scalar<kEF>(a, c, i, cnt, eq);
}
#endif

template <bool kEF>
void run_pass(const PassArgs& a, Chunk& c) {
#if GC_X86
  Isa isa = active_isa();
  if (isa == Isa::kAvx512) return pass_avx512<kEF>(a, c);
  if (isa == Isa::kAvx2) return pass_avx2<kEF>(a, c);
#endif
  pass_scalar<kEF>(a, c, c.lo, 0, 0);
}


}  // namespace

void run_pass(bool ef, const PassArgs& a, Chunk& c) {
  if (ef) run_pass<true>(a, c); else run_pass<false>(a, c);
}

}  // namespace topk_detail
}  // namespace gradcomp
