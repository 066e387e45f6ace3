#include "dropit.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <new>
#include <vector>

#include "cpu.h"
#include "pool.h"
#include "scratch.h"
#include "select.h"
#include "topk.h"

#if GC_X86
#include <immintrin.h>
#endif

namespace gradcomp {

namespace {

using Header = gc_dropit_header;
static_assert(sizeof(Header) == GC_DROPIT_HEADER_BYTES, "DropIT header must be 24 bytes");



constexpr uint64_t kChunk = 32768;  // elements per task of the bitmap passes (4 KiB of bitmap)
thread_local int t_last_path = -1;

// ---- bitmap pack: exact threshold from a narrow band, then one writing pass ----------------
//
// The keep fraction is above 1/32 here, so top-k's candidate slabs would hold a large part of
// the tensor. Instead (specs/performance.md §4.2): a sample brackets the k-th key between
// t_lo and t_hi (3 sigma each side); pass 1 counts keys >= t_hi per chunk and collects only the
// keys in [t_lo, t_hi) (about 1-2% of n); the exact k-th key T and the per-chunk tie quotas come
// from the band; pass 2 writes the bitmap and the kept values in index order. Reads x twice,
// writes the payload once. A bracket that misses falls back to the top-k path.

struct BandChunk {
  uint64_t hi_count;  // keys >= t_hi
  uint64_t band;      // keys in [t_lo, t_hi) (true count; may exceed the slab)
  uint32_t* slab;
  uint64_t take_eq;   // ties at T this chunk takes
  uint64_t out_off;   // first value index of this chunk
};

void pass_count(const float* x, uint64_t lo, uint64_t hi, uint32_t t_lo, uint32_t t_hi, uint64_t cap, BandChunk& c) {
  uint64_t above = 0, band = 0;
  for (uint64_t i = lo; i < hi; ++i) {
    uint32_t key = mag_key(x[i]);
    if (key >= t_hi) ++above;
    else if (key >= t_lo) { if (band < cap) c.slab[band] = key; ++band; }
  }
  c.hi_count = above;
  c.band = band;
}

#if GC_X86
GC_TARGET_AVX512 void pass_count_avx512(const float* x, uint64_t lo, uint64_t hi, uint32_t t_lo, uint32_t t_hi,
                                        uint64_t cap, BandChunk& c) {
  const __m512i absm = _mm512_set1_epi32(0x7fffffff);
  const __m512i vhi = _mm512_set1_epi32(static_cast<int>(t_hi)), vlo = _mm512_set1_epi32(static_cast<int>(t_lo));
  uint64_t above = 0, band = 0, i = lo;
  for (; i + 16 <= hi; i += 16) {
    __m512i key = _mm512_and_si512(_mm512_castps_si512(_mm512_loadu_ps(x + i)), absm);
    __mmask16 a = _mm512_cmpge_epi32_mask(key, vhi);  // keys < 2^31: signed compares are exact
    __mmask16 b = _mm512_cmpge_epi32_mask(key, vlo) & static_cast<__mmask16>(~a);
    above += static_cast<uint64_t>(__builtin_popcount(a));
    if (b) {
      if (band + 16 <= cap) _mm512_storeu_si512(c.slab + band, _mm512_maskz_compress_epi32(b, key));
      band += static_cast<uint64_t>(__builtin_popcount(b));
    }
  }
  for (; i < hi; ++i) {
    uint32_t key = mag_key(x[i]);
    if (key >= t_hi) ++above;
    else if (key >= t_lo) { if (band < cap) c.slab[band] = key; ++band; }
  }
  // A vector store was skipped only when the slab was nearly full: report it as overflowed.
  c.hi_count = above;
  c.band = band;
  if (band > cap - 16) c.band = cap + 1 > band ? cap + 1 : band;
}

GC_TARGET_AVX512 void pass_write_avx512(const float* x, uint64_t lo, uint64_t hi, uint32_t T, uint64_t quota,
                                        uint8_t* bitmap, float* vals, const float* vals_end) {
  const __m512i absm = _mm512_set1_epi32(0x7fffffff), vt = _mm512_set1_epi32(static_cast<int>(T));
  uint64_t i = lo;
  for (; i + 16 <= hi; i += 16) {
    __m512 v = _mm512_loadu_ps(x + i);
    __m512i key = _mm512_and_si512(_mm512_castps_si512(v), absm);
    uint32_t m = _mm512_cmpgt_epi32_mask(key, vt);
    uint32_t eq = _mm512_cmpeq_epi32_mask(key, vt);
    if (eq != 0) {
      // Ties at T: only the first `quota` of them in index order.
      while (static_cast<uint64_t>(__builtin_popcount(eq)) > quota) eq &= ~(1u << (31 - __builtin_clz(eq)));
      quota -= static_cast<uint64_t>(__builtin_popcount(eq));
      m |= eq;
    }
    std::memcpy(bitmap + i / 8, &m, 2);
    const unsigned cnt = static_cast<unsigned>(__builtin_popcount(m));
    const __m512 kept = _mm512_maskz_compress_ps(static_cast<__mmask16>(m), v);
    // A full store is cheaper than a masked one; its tail is overwritten by the next store.
    // Near the end of this chunk's values (the next chunk's may follow) store only what is kept.
    if (vals + 16 <= vals_end) _mm512_storeu_ps(vals, kept);
    else _mm512_mask_storeu_ps(vals, static_cast<__mmask16>((1u << cnt) - 1), kept);
    vals += cnt;
  }
  for (; i < hi; ++i) {
    uint32_t key = mag_key(x[i]);
    if (key > T || (key == T && quota > 0)) {
      if (key == T) --quota;
      bitmap[i / 8] |= static_cast<uint8_t>(1u << (i % 8));
      *vals++ = x[i];
    }
  }
}
#endif

void pass_write(const float* x, uint64_t lo, uint64_t hi, uint32_t T, uint64_t quota, uint8_t* bitmap, float* vals,
                const float* vals_end) {
#if GC_X86
  if (active_isa() == Isa::kAvx512) return pass_write_avx512(x, lo, hi, T, quota, bitmap, vals, vals_end);
#endif
  for (uint64_t i = lo; i < hi; ++i) {
    uint32_t key = mag_key(x[i]);
    if (key > T || (key == T && quota > 0)) {
      if (key == T) --quota;
      bitmap[i / 8] |= static_cast<uint8_t>(1u << (i % 8));
      *vals++ = x[i];
    }
  }
}

// The banded path's bracket (sample ranks j_hi, j_lo) and its slab capacity per chunk: functions
// of (n, k) only. False when the path does not apply.
bool band_plan(uint64_t n, uint64_t k, double* j_hi, double* j_lo, uint64_t* cap) {
  if (n < 65536 || k == 0 || k == n) return false;
  const double S = static_cast<double>(kSampleKeys), rho = static_cast<double>(k) / static_cast<double>(n);
  const double margin = 3.0 * std::sqrt(S * rho * (1.0 - rho)) + 2.0;
  *j_hi = S * rho - margin;
  *j_lo = S * rho + margin;
  if (*j_hi < 0.0 || *j_lo >= S - 1) return false;
  const double band_frac = (std::ceil(*j_lo) - std::floor(*j_hi) + 1.0) / S;
  *cap = std::min<uint64_t>(kChunk, static_cast<uint64_t>(kChunk * band_frac * 3.0) + 256);
  return true;
}

void plan_band(Carver& carve, uint64_t n, uint64_t cap, BandChunk** cs, uint32_t** slabs) {
  const size_t chunks = chunk_count(n, kChunk);
  carve.add(cs, chunks);
  carve.add(slabs, chunks * (cap + 16));
}

// Returns false when the bracket missed (the caller falls back to the top-k path).
bool pack_bitmap_banded(const float* x, uint64_t n, uint64_t k, uint8_t* bitmap, float* vals, gc_scratch scratch) {
  double j_hi = 0, j_lo = 0;
  uint64_t cap = 0;
  if (!band_plan(n, k, &j_hi, &j_lo, &cap)) return false;
  std::vector<uint32_t> keys = sample_keys(nullptr, x, 1.0f, n);
  const uint32_t t_hi = key_at_rank(keys, static_cast<uint64_t>(j_hi));
  const uint32_t t_lo = key_at_rank(keys, static_cast<uint64_t>(std::ceil(j_lo)));
  if (t_lo >= t_hi) return false;  // ties straddle the bracket: the top-k path handles them

  ThreadPool& pool = ThreadPool::instance();
  const size_t chunks = chunk_count(n, kChunk);
  BandChunk* cs = nullptr;
  uint32_t* slabs = nullptr;
  Carver carve(scratch);
  plan_band(carve, n, cap, &cs, &slabs);
  if (!carve.commit()) return false;
  for (size_t c = 0; c < chunks; ++c) cs[c] = BandChunk{0, 0, slabs + c * (cap + 16), 0, 0};
  pool.parallel_for(chunks, [&](size_t c) {
    const uint64_t lo = c * kChunk, hi = std::min<uint64_t>(n, lo + kChunk);
#if GC_X86
    if (active_isa() == Isa::kAvx512) return pass_count_avx512(x, lo, hi, t_lo, t_hi, cap, cs[c]);
#endif
    pass_count(x, lo, hi, t_lo, t_hi, cap, cs[c]);
  });
  uint64_t above = 0, band = 0;
  for (size_t ci = 0; ci < chunks; ++ci) {
    const BandChunk& c = cs[ci];
    if (c.band > cap) return false;  // a slab overflowed
    above += c.hi_count;
    band += c.band;
  }
  if (above >= k || above + band < k) return false;  // the k-th key is outside the bracket
  // The k-th key is the (k - above)-th largest band key. The band spans a narrow key range:
  // a parallel 4096-bin histogram over it finds the bin, and a select inside that bin finishes.
  const uint64_t need = k - above;
  const uint32_t range = t_hi - t_lo;
  int shift = 0;
  while ((range >> shift) >= 4096u) ++shift;
  const size_t tasks = std::min<size_t>(chunks, 4 * std::max(1u, pool.concurrency()));
  std::vector<uint32_t> hist(tasks * 4096, 0);
  pool.parallel_for(tasks, [&](size_t t) {
    uint32_t* h = hist.data() + t * 4096;
    for (size_t c = chunks * t / tasks; c < chunks * (t + 1) / tasks; ++c)
      for (uint64_t j = 0; j < cs[c].band; ++j) ++h[(cs[c].slab[j] - t_lo) >> shift];
  });
  for (size_t t = 1; t < tasks; ++t)
    for (uint32_t b = 0; b < 4096; ++b) hist[b] += hist[t * 4096 + b];
  uint64_t cum = 0;
  uint32_t bin = 4095;
  for (;; --bin) {
    if (cum + hist[bin] >= need || bin == 0) break;
    cum += hist[bin];
  }
  std::vector<uint32_t> in_bin;
  in_bin.reserve(hist[bin]);
  for (size_t ci = 0; ci < chunks; ++ci)
    for (uint64_t j = 0; j < cs[ci].band; ++j)
      if (((cs[ci].slab[j] - t_lo) >> shift) == bin) in_bin.push_back(cs[ci].slab[j]);
  if (in_bin.size() < need - cum) return false;
  const uint32_t T = key_at_rank(in_bin, need - cum - 1);
  // Per chunk: keys > T in its band, ties at T; then prefix sums give output offsets.
  std::vector<uint64_t> gt(chunks), eq(chunks);
  pool.parallel_for(chunks, [&](size_t c) {
    uint64_t g = 0, e = 0;
    for (uint64_t j = 0; j < cs[c].band; ++j) { g += cs[c].slab[j] > T; e += cs[c].slab[j] == T; }
    gt[c] = g;
    eq[c] = e;
  });
  uint64_t greater = above, off = 0;
  for (size_t c = 0; c < chunks; ++c) greater += gt[c];
  uint64_t ties_left = k - greater;
  for (size_t c = 0; c < chunks; ++c) {
    cs[c].take_eq = std::min(eq[c], ties_left);
    ties_left -= cs[c].take_eq;
    cs[c].out_off = off;
    off += cs[c].hi_count + gt[c] + cs[c].take_eq;
  }
  if (off != k) return false;  // cannot happen; keep the fallback honest if it ever does
  pool.parallel_for(chunks, [&](size_t c) {
    const uint64_t lo = c * kChunk, hi = std::min<uint64_t>(n, lo + kChunk);
    std::memset(bitmap + lo / 8, 0, (hi - lo + 7) / 8);
    const uint64_t count = (c + 1 < chunks ? cs[c + 1].out_off : k) - cs[c].out_off;
    pass_write(x, lo, hi, T, cs[c].take_eq, bitmap, vals + cs[c].out_off, vals + cs[c].out_off + count);
  });
  return true;
}


}  // namespace

int last_dropit_path() { return t_last_path; }

uint64_t dropit_scratch_bytes(uint64_t n, uint64_t k) {
  const uint64_t via_topk = topk_scratch_bytes(n, k);
  if (k > n || gc_dropit_layout_for(n, k) == GC_DROPIT_INDICES) return via_topk;
  Carver fallback;
  uint32_t* idx;
  uint8_t* rest;
  fallback.add(&idx, k);
  fallback.add(&rest, via_topk);
  uint64_t need = fallback.bytes();
  double j_hi, j_lo;
  uint64_t cap;
  if (band_plan(n, k, &j_hi, &j_lo, &cap)) {
    Carver band;
    BandChunk* cs;
    uint32_t* slabs;
    plan_band(band, n, cap, &cs, &slabs);
    need = std::max<uint64_t>(need, band.bytes());
  }
  return need;
}

gc_status dropit_pack(const float* x, uint64_t n, uint64_t k, uint8_t* out, uint64_t out_bytes, gc_scratch scratch) {
  if ((x == nullptr && n > 0) || out == nullptr || k > n || n > 0xffffffffULL) return GC_ERR_INVALID_ARG;
  if (out_bytes != gc_dropit_packed_bytes(n, k)) return GC_ERR_INVALID_ARG;
  const gc_dropit_layout layout = gc_dropit_layout_for(n, k);
  Header h{GC_DROPIT_MAGIC, GC_DROPIT_VERSION, static_cast<uint8_t>(layout), 0, n, k};
  std::memcpy(out, &h, sizeof h);
  uint8_t* body = out + GC_DROPIT_HEADER_BYTES;
  gc_topk_desc d{};
  d.residual = const_cast<float*>(x);  // plain top-k only reads it
  d.n = n;
  d.k = k;
  d.scale = 1.0f;
  if (layout == GC_DROPIT_INDICES) {
    t_last_path = -1;
    d.out_idx = reinterpret_cast<uint32_t*>(body);
    d.out_val = reinterpret_cast<float*>(body + 4 * k);
    d.scratch = scratch;
    return topk(d);
  }
  const uint64_t bm = gc_dropit_bitmap_bytes(n);
  std::memset(body + (n + 7) / 8, 0, bm - (n + 7) / 8);  // padding after the bitmap
  t_last_path = 0;
  if (pack_bitmap_banded(x, n, k, body, reinterpret_cast<float*>(body + bm), scratch)) return GC_OK;
  t_last_path = 1;
  // The top-k fallback: the indices, then topk's own scratch, from the same provided block.
  uint32_t* idx = nullptr;
  uint8_t* rest = nullptr;
  Carver carve(scratch);
  carve.add(&idx, k);
  carve.add(&rest, topk_scratch_bytes(n, k));
  if (!carve.commit()) return GC_ERR_INVALID_ARG;
  d.scratch = gc_scratch{rest, topk_scratch_bytes(n, k)};
  d.out_idx = idx;
  d.out_val = reinterpret_cast<float*>(body + bm);
  gc_status st = topk(d);
  if (st != GC_OK) return st;
  std::memset(body, 0, bm);
  for (uint64_t j = 0; j < k; ++j) body[idx[j] >> 3] |= static_cast<uint8_t>(1u << (idx[j] & 7));
  return GC_OK;
}

}  // namespace gradcomp
