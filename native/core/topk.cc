// Fused error-feedback top-k on the CPU (specs/performance.md §1.2 and §5.1):
//  1. sample ~32K values of |acc| in 512 contiguous blocks and take a threshold t a little
//     below the estimated k-th value (3 sigma on the binomial count);
//  2. one streaming pass: acc = scale*g + r, write r = acc, keep (i, acc) when |acc| > t in a
//     per-chunk slab and count |acc| == t per chunk;
//  3. an exact radix select (11/11/9-bit digits on the bits of |acc|) among the candidates
//     gives the k-th key T; ties at T go to the lower index;
//  4. compaction in index order straight from the slabs; chunks whose slab overflowed, or that
//     hold needed ties at T == t, are rescanned from the source;
//  5. zero the k winners in r.
// When the sample misjudges (fewer than k keys >= t, or far too many candidates) the same
// radix select and compaction run over the whole array instead: still exact, a few passes more.
#include "topk.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "cpu.h"
#include "pool.h"
#include "scratch.h"
#include "select.h"

#if GC_X86
#include <immintrin.h>
#endif

namespace gradcomp {

namespace {

constexpr uint64_t kChunk = 32768;      // elements per chunk (128 KiB of fp32)
constexpr uint64_t kSampleMinN = 65536;  // below this, select directly without sampling
constexpr uint32_t kSlack = 16;          // vector stores may write this far past a slab's fill

thread_local int t_last_path = -1;

struct Chunk {
  uint64_t lo, hi;
  uint32_t* sidx;  // slab (nullptr: candidates not stored, use the source)
  float* sval;
  uint64_t stored;  // candidates written to the slab (key > t)
  uint64_t gt;      // true count of key > t (> stored when the slab overflowed)
  uint64_t eq;      // count of key == t
  uint64_t sel_gt, sel_eq, out_off, quota;
};

// ---- step 2: the fused pass over one chunk ------------------------------------------------

struct PassArgs {
  const float* g;  // nullptr for plain top-k
  float* r;        // EF residual (written); for plain top-k the read-only source
  float scale;
  uint32_t t;
  uint64_t cap;  // slab capacity
};

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

// ---- step 1: the sampled threshold --------------------------------------------------------

// Returns false when sampling cannot help (the threshold would sit at the bottom).
bool sample_threshold(const float* g, const float* r, float scale, uint64_t n, uint64_t k,
                      uint32_t* t_out, double* frac_out) {
  std::vector<uint32_t> keys = sample_keys(g, r, scale, n);
  const double S = static_cast<double>(keys.size());
  const double rho = static_cast<double>(k) / static_cast<double>(n);
  const double want = S * rho + 3.0 * std::sqrt(S * rho * (1.0 - rho)) + 2.0;
  uint64_t j = static_cast<uint64_t>(std::ceil(want));
  if (j >= keys.size()) return false;
  *t_out = key_at_rank(keys, j);
  *frac_out = static_cast<double>(j + 1) / S;
  return true;
}

// ---- step 3: exact radix select over chunk views ------------------------------------------

// The elements of chunk c that radix select and compaction look at: its slab when every
// candidate was stored, else the source range filtered by key > t (or everything when
// `all` is set, the fallback).
struct Views {
  Chunk* chunks;
  size_t n_chunks;
  const float* src;
  uint32_t t;
  bool all;
};

template <typename F>
inline void for_each_in_view(const Views& v, const Chunk& c, F&& f) {
  if (!v.all && c.sidx != nullptr && c.stored == c.gt) {
    for (uint64_t i = 0; i < c.stored; ++i) f(c.sidx[i], c.sval[i]);
  } else {
    for (uint64_t i = c.lo; i < c.hi; ++i) {
      float x = v.src[i];
      if (v.all || mag_key(x) > v.t) f(static_cast<uint32_t>(i), x);
    }
  }
}

struct Threshold {
  uint32_t key;
  uint64_t n_greater;  // elements with key > T; k - n_greater ties at T are taken
};

Threshold radix_threshold(const Views& v, uint64_t k) {
  ThreadPool& pool = ThreadPool::instance();
  const size_t tasks = std::min<size_t>(v.n_chunks, 4 * std::max(1u, pool.concurrency()));
  std::vector<uint32_t> hist(tasks * 2048);
  static const int kShift[3] = {20, 9, 0};
  static const uint32_t kMask[3] = {0x7ff, 0x7ff, 0x1ff};
  uint32_t prefix = 0, prefix_mask = 0;  // fixed high bits of T so far
  uint64_t need = k, greater = 0;
  for (int level = 0; level < 3; ++level) {
    std::fill(hist.begin(), hist.end(), 0u);
    const int sh = kShift[level];
    const uint32_t dm = kMask[level];
    pool.parallel_for(tasks, [&](size_t tk) {
      uint32_t* h = hist.data() + tk * 2048;
      size_t c0 = v.n_chunks * tk / tasks, c1 = v.n_chunks * (tk + 1) / tasks;
      for (size_t c = c0; c < c1; ++c) {
        for_each_in_view(v, v.chunks[c], [&](uint32_t, float x) {
          uint32_t key = mag_key(x);
          if ((key & prefix_mask) == prefix) ++h[(key >> sh) & dm];
        });
      }
    });
    for (size_t tk = 1; tk < tasks; ++tk)
      for (uint32_t b = 0; b <= dm; ++b) hist[b] += hist[tk * 2048 + b];
    uint64_t above = 0;
    uint32_t b = dm;
    for (;; --b) {
      if (above + hist[b] >= need || b == 0) break;
      above += hist[b];
    }
    greater += above;
    need -= above;
    prefix |= b << sh;
    prefix_mask |= dm << sh;
  }
  return Threshold{prefix, greater};
}

// ---- step 4: compaction in index order ------------------------------------------------------

void compact(const Views& v, Threshold th, uint64_t k, bool counts_known, uint32_t* out_idx,
             float* out_val) {
  ThreadPool& pool = ThreadPool::instance();
  const uint32_t T = th.key;
  // Per-chunk counts of key > T and key == T (known from the pass when T == t).
  if (!counts_known) {
    pool.parallel_for(v.n_chunks, [&](size_t ci) {
      Chunk& c = v.chunks[ci];
      uint64_t gt = 0, eq = 0;
      for_each_in_view(v, c, [&](uint32_t, float x) {
        uint32_t key = mag_key(x);
        gt += key > T;
        eq += key == T;
      });
      c.sel_gt = gt;
      c.sel_eq = eq;
    });
  } else {
    for (size_t ci = 0; ci < v.n_chunks; ++ci) { v.chunks[ci].sel_gt = v.chunks[ci].gt; v.chunks[ci].sel_eq = v.chunks[ci].eq; }
  }
  uint64_t off = 0, ties_left = k - th.n_greater;
  for (size_t ci = 0; ci < v.n_chunks; ++ci) {
    Chunk& c = v.chunks[ci];
    c.quota = std::min(c.sel_eq, ties_left);
    ties_left -= c.quota;
    c.out_off = off;
    off += c.sel_gt + c.quota;
  }
  pool.parallel_for(v.n_chunks, [&](size_t ci) {
    const Chunk& c = v.chunks[ci];
    if (c.sel_gt + c.quota == 0) return;
    uint64_t o = c.out_off, q = c.quota;
    auto emit = [&](uint32_t i, float x) {
      uint32_t key = mag_key(x);
      if (key > T || (key == T && q > 0)) {
        if (key == T) --q;
        out_idx[o] = i;
        out_val[o] = x;
        ++o;
      }
    };
    // Ties at T == t were only counted, never stored: such chunks rescan their source.
    if (counts_known && c.quota > 0) {
      Views all = v;
      all.all = true;
      for_each_in_view(all, c, emit);
    } else {
      for_each_in_view(v, c, emit);
    }
  });
}

}  // namespace

int last_topk_path() { return t_last_path; }

gc_status topk(const gc_topk_desc& d) {
  const uint64_t n = d.n, k = d.k;
  if (d.residual == nullptr && n > 0) return GC_ERR_INVALID_ARG;
  if (k > n || n > 0xffffffffULL) return GC_ERR_INVALID_ARG;
  if (k > 0 && (d.out_idx == nullptr || d.out_val == nullptr)) return GC_ERR_INVALID_ARG;
  ThreadPool& pool = ThreadPool::instance();
  const bool ef = d.grad != nullptr;
  float* r = d.residual;
  const size_t n_chunks = chunk_count(n, kChunk);

  uint32_t t = 0;
  double frac = 1.0;
  const bool sampled = n >= kSampleMinN && k > 0 && k < n &&
                       sample_threshold(d.grad, r, d.scale, n, k, &t, &frac);

  // Scratch: chunk records and, on the sampled path, one slab per chunk.
  Chunk* chunks = nullptr;
  uint32_t* slab_idx = nullptr;
  float* slab_val = nullptr;
  uint64_t cap = 0;
  Carver carve;
  carve.add(&chunks, n_chunks);
  if (sampled) {
    cap = std::min<uint64_t>(kChunk, static_cast<uint64_t>(std::ceil(kChunk * frac * 2.0)) + 64);
    carve.add(&slab_idx, n_chunks * (cap + kSlack));
    carve.add(&slab_val, n_chunks * (cap + kSlack));
  }
  if (!carve.commit()) return GC_ERR_OUT_OF_MEMORY;
  for (size_t ci = 0; ci < n_chunks; ++ci) {
    Chunk& c = chunks[ci];
    c = Chunk{};
    c.lo = ci * kChunk;
    c.hi = std::min<uint64_t>(n, c.lo + kChunk);
    if (sampled) { c.sidx = slab_idx + ci * (cap + kSlack); c.sval = slab_val + ci * (cap + kSlack); }
  }

  if (sampled) {
    PassArgs a{d.grad, r, d.scale, t, cap};
    pool.parallel_for(n_chunks, [&](size_t ci) {
      if (ef) run_pass<true>(a, chunks[ci]); else run_pass<false>(a, chunks[ci]);
    });
  } else if (ef) {
    // No sampling: form acc in place first, then select from it.
    pool.parallel_for(n_chunks, [&](size_t ci) {
      const Chunk& c = chunks[ci];
      for (uint64_t i = c.lo; i < c.hi; ++i) r[i] = d.scale * d.grad[i] + r[i];
    });
  }

  if (k == 0) { t_last_path = 0; return GC_OK; }

  Views v{chunks, n_chunks, r, t, !sampled};
  if (sampled) {
    uint64_t gt = 0, eq = 0;
    for (size_t ci = 0; ci < n_chunks; ++ci) { gt += chunks[ci].gt; eq += chunks[ci].eq; }
    // Far too many candidates makes the candidate path no cheaper than a full select.
    const bool too_many = gt > std::max<uint64_t>(4 * k, n / 8);
    if (gt >= k && !too_many) {
      Threshold th = radix_threshold(v, k);
      compact(v, th, k, false, d.out_idx, d.out_val);
      t_last_path = 1;
    } else if (gt < k && gt + eq >= k) {
      compact(v, Threshold{t, gt}, k, true, d.out_idx, d.out_val);
      t_last_path = 2;
    } else {
      v.all = true;
      Threshold th = radix_threshold(v, k);
      compact(v, th, k, false, d.out_idx, d.out_val);
      t_last_path = 3;
    }
  } else if (k == n) {
    pool.parallel_for(n_chunks, [&](size_t ci) {
      const Chunk& c = chunks[ci];
      for (uint64_t i = c.lo; i < c.hi; ++i) { d.out_idx[i] = static_cast<uint32_t>(i); d.out_val[i] = r[i]; }
    });
    t_last_path = 0;
  } else {
    Threshold th = radix_threshold(v, k);
    compact(v, th, k, false, d.out_idx, d.out_val);
    t_last_path = 0;
  }

  if (ef) {
    // Step 5: the winners leave the residual.
    const size_t zc = chunk_count(k, kChunk);
    pool.parallel_for(zc, [&](size_t zi) {
      uint64_t lo = zi * kChunk, hi = std::min<uint64_t>(k, lo + kChunk);
      for (uint64_t j = lo; j < hi; ++j) r[d.out_idx[j]] = 0.0f;
    });
  }
  return GC_OK;
}

}  // namespace gradcomp
