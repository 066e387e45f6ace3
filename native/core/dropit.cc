#include "dropit.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <new>
#include <vector>

#include "cpu.h"
#include "pool.h"
#include "select.h"
#include "topk.h"

#if GC_X86
#include <immintrin.h>
#endif

namespace gradcomp {

namespace {

using Header = gc_dropit_header;
static_assert(sizeof(Header) == GC_DROPIT_HEADER_BYTES, "DropIT header must be 24 bytes");

constexpr uint64_t kWordsPerTask = 4096;  // 64-bit bitmap words per task (262,144 elements)


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

// Returns false when the bracket missed (the caller falls back to the top-k path).
bool pack_bitmap_banded(const float* x, uint64_t n, uint64_t k, uint8_t* bitmap, float* vals) {
  if (n < 65536 || k == 0 || k == n) return false;
  std::vector<uint32_t> keys = sample_keys(nullptr, x, 1.0f, n);
  const double S = static_cast<double>(keys.size()), rho = static_cast<double>(k) / static_cast<double>(n);
  const double margin = 3.0 * std::sqrt(S * rho * (1.0 - rho)) + 2.0;
  const double j_hi = S * rho - margin, j_lo = S * rho + margin;
  if (j_hi < 0.0 || j_lo >= S - 1) return false;
  const uint32_t t_hi = key_at_rank(keys, static_cast<uint64_t>(j_hi));
  const uint32_t t_lo = key_at_rank(keys, static_cast<uint64_t>(std::ceil(j_lo)));
  if (t_lo >= t_hi) return false;  // ties straddle the bracket: the top-k path handles them
  const double band_frac = (std::ceil(j_lo) - std::floor(j_hi) + 1.0) / S;

  ThreadPool& pool = ThreadPool::instance();
  const size_t chunks = chunk_count(n, kChunk);
  const uint64_t cap = std::min<uint64_t>(kChunk, static_cast<uint64_t>(kChunk * band_frac * 3.0) + 256);
  std::vector<BandChunk> cs(chunks);
  std::unique_ptr<uint32_t[]> slabs(new (std::nothrow) uint32_t[chunks * (cap + 16)]);
  if (!slabs) return false;
  for (size_t c = 0; c < chunks; ++c) cs[c].slab = slabs.get() + c * (cap + 16);
  pool.parallel_for(chunks, [&](size_t c) {
    const uint64_t lo = c * kChunk, hi = std::min<uint64_t>(n, lo + kChunk);
#if GC_X86
    if (active_isa() == Isa::kAvx512) return pass_count_avx512(x, lo, hi, t_lo, t_hi, cap, cs[c]);
#endif
    pass_count(x, lo, hi, t_lo, t_hi, cap, cs[c]);
  });
  uint64_t above = 0, band = 0;
  for (const BandChunk& c : cs) {
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
  for (const BandChunk& c : cs)
    for (uint64_t j = 0; j < c.band; ++j)
      if (((c.slab[j] - t_lo) >> shift) == bin) in_bin.push_back(c.slab[j]);
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

#if GC_X86
// Rebuilds full 64-element words [w0, w1) from the bitmap: each 16-bit slice expands the next
// popcount values into place (zeros elsewhere) in registers; the masked load never reads past
// the values that exist. Returns the next value index.
GC_TARGET_AVX512 uint64_t unpack_words_avx512(const uint8_t* bitmap, const float* vals, uint64_t v, uint64_t w0,
                                              uint64_t w1, float* out) {
  for (uint64_t w = w0; w < w1; ++w) {
    uint64_t word;
    std::memcpy(&word, bitmap + 8 * w, 8);
    for (int q = 0; q < 4; ++q) {
      const uint32_t m = static_cast<uint32_t>(word >> (16 * q)) & 0xffffu;
      const unsigned cnt = static_cast<unsigned>(__builtin_popcount(m));
      __m512 packed = _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << cnt) - 1), vals + v);
      _mm512_storeu_ps(out + 64 * w + 16 * q, _mm512_maskz_expand_ps(static_cast<__mmask16>(m), packed));
      v += cnt;
    }
  }
  return v;
}
#endif

}  // namespace

int last_dropit_path() { return t_last_path; }

gc_status dropit_pack(const float* x, uint64_t n, uint64_t k, uint8_t* out, uint64_t out_bytes) {
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
    return topk(d);
  }
  const uint64_t bm = gc_dropit_bitmap_bytes(n);
  std::memset(body + (n + 7) / 8, 0, bm - (n + 7) / 8);  // padding after the bitmap
  t_last_path = 0;
  if (pack_bitmap_banded(x, n, k, body, reinterpret_cast<float*>(body + bm))) return GC_OK;
  t_last_path = 1;
  std::unique_ptr<uint32_t[]> idx(new (std::nothrow) uint32_t[k > 0 ? k : 1]);
  if (!idx) return GC_ERR_OUT_OF_MEMORY;
  d.out_idx = idx.get();
  d.out_val = reinterpret_cast<float*>(body + bm);
  gc_status st = topk(d);
  if (st != GC_OK) return st;
  std::memset(body, 0, bm);
  for (uint64_t j = 0; j < k; ++j) body[idx[j] >> 3] |= static_cast<uint8_t>(1u << (idx[j] & 7));
  return GC_OK;
}

gc_status dropit_unpack(const uint8_t* in, uint64_t bytes, float* out, uint64_t out_len) {
  if (in == nullptr || bytes < GC_DROPIT_HEADER_BYTES) return GC_ERR_CORRUPT_PAYLOAD;
  Header h;
  std::memcpy(&h, in, sizeof h);
  if (!gc_dropit_header_ok(&h, bytes)) return GC_ERR_CORRUPT_PAYLOAD;
  if (out_len != h.n || (out == nullptr && h.n > 0)) return GC_ERR_INVALID_ARG;
  const uint8_t* body = in + GC_DROPIT_HEADER_BYTES;
  const uint64_t n = h.n, k = h.k;
  ThreadPool& pool = ThreadPool::instance();

  if (h.layout == GC_DROPIT_INDICES) {
    const uint8_t* idxp = body;
    const uint8_t* valp = body + 4 * k;
    // Validate first: strictly ascending and in range, so the scatter cannot go out of bounds.
    uint32_t prev = 0;
    for (uint64_t j = 0; j < k; ++j) {
      uint32_t i;
      std::memcpy(&i, idxp + 4 * j, 4);
      if (i >= n || (j > 0 && i <= prev)) return GC_ERR_CORRUPT_PAYLOAD;
      prev = i;
    }
    const size_t tasks = chunk_count(n, 1 << 18);
    pool.parallel_for(tasks, [&](size_t t) {
      uint64_t lo = t << 18, hi = std::min<uint64_t>(n, lo + (1 << 18));
      std::memset(out + lo, 0, (hi - lo) * 4);
    });
    for (uint64_t j = 0; j < k; ++j) {
      uint32_t i;
      std::memcpy(&i, idxp + 4 * j, 4);
      std::memcpy(out + i, valp + 4 * j, 4);
    }
    return GC_OK;
  }

  // Bitmap: per-task popcounts give each task its first value, then tasks fill in parallel.
  const uint64_t words = (n + 63) / 64;
  auto word_at = [&](uint64_t w) {
    uint64_t v = 0;
    std::memcpy(&v, body + 8 * w, std::min<uint64_t>(8, (n + 7) / 8 - 8 * w));
    return v;
  };
  const uint64_t tail = n % 64;
  if (tail != 0 && (word_at(words - 1) >> tail) != 0) return GC_ERR_CORRUPT_PAYLOAD;
  for (uint64_t b = (n + 7) / 8; b < gc_dropit_bitmap_bytes(n); ++b)
    if (body[b] != 0) return GC_ERR_CORRUPT_PAYLOAD;
  const size_t tasks = chunk_count(words, kWordsPerTask);
  std::vector<uint64_t> first(tasks + 1, 0);
  pool.parallel_for(tasks, [&](size_t t) {
    uint64_t w0 = t * kWordsPerTask, w1 = std::min(words, w0 + kWordsPerTask), c = 0;
    for (uint64_t w = w0; w < w1; ++w) c += static_cast<uint64_t>(__builtin_popcountll(word_at(w)));
    first[t + 1] = c;
  });
  for (size_t t = 0; t < tasks; ++t) first[t + 1] += first[t];
  if (first[tasks] != k) return GC_ERR_CORRUPT_PAYLOAD;
  const uint8_t* valp = body + gc_dropit_bitmap_bytes(n);
  const float* vals = reinterpret_cast<const float*>(valp);  // 4-byte aligned offset
  pool.parallel_for(tasks, [&](size_t t) {
    uint64_t w0 = t * kWordsPerTask, w1 = std::min(words, w0 + kWordsPerTask), v = first[t];
#if GC_X86
    if (active_isa() == Isa::kAvx512) {
      const uint64_t full_end = std::min(w1, n / 64);  // words lying wholly inside the tensor
      if (full_end > w0) { v = unpack_words_avx512(body, vals, v, w0, full_end, out); w0 = full_end; }
    }
#endif
    for (uint64_t w = w0; w < w1; ++w) {
      const uint64_t base = w * 64, len = std::min<uint64_t>(64, n - base);
      std::memset(out + base, 0, len * 4);
      for (uint64_t bits = word_at(w); bits; bits &= bits - 1) {
        std::memcpy(out + base + static_cast<uint64_t>(__builtin_ctzll(bits)), valp + 4 * v, 4);
        ++v;
      }
    }
  });
  return GC_OK;
}

}  // namespace gradcomp
