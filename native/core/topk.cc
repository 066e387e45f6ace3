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
#include "topk_pass.h"

#if GC_X86
#include <immintrin.h>
#endif

namespace gradcomp {

namespace {

using namespace topk_detail;  // NOLINT: the chunk records and the pass live in topk_pass.h

thread_local int t_last_path = -1;

// ---- step 1: the sampled threshold --------------------------------------------------------

// Whether the sampled path applies to (n, k), the sample rank j of its threshold, and the
// fraction of keys expected above it: functions of the sizes only (the scratch depends on them).
bool sample_plan(uint64_t n, uint64_t k, uint64_t* j_out, double* frac_out) {
  if (n < kSampleMinN || k == 0 || k >= n) return false;
  const double S = static_cast<double>(kSampleKeys);
  const double rho = static_cast<double>(k) / static_cast<double>(n);
  const double want = S * rho + 3.0 * std::sqrt(S * rho * (1.0 - rho)) + 2.0;
  const uint64_t j = static_cast<uint64_t>(std::ceil(want));
  if (j >= kSampleKeys) return false;
  *j_out = j;
  *frac_out = static_cast<double>(j + 1) / S;
  return true;
}

// The chunk records and, on the sampled path, one slab per chunk.
void plan_scratch(Carver& carve, uint64_t n, bool sampled, double frac, Chunk** chunks, uint32_t** slab_idx, float** slab_val, uint64_t* cap) {
  const size_t n_chunks = chunk_count(n, kChunk);
  carve.add(chunks, n_chunks);
  *cap = 0;
  if (sampled) {
    *cap = std::min<uint64_t>(kChunk, static_cast<uint64_t>(std::ceil(kChunk * frac * 2.0)) + 64);
    carve.add(slab_idx, n_chunks * (*cap + kSlack));
    carve.add(slab_val, n_chunks * (*cap + kSlack));
  }
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

uint64_t topk_scratch_bytes(uint64_t n, uint64_t k) {
  uint64_t j = 0, cap = 0;
  double frac = 1.0;
  const bool sampled = sample_plan(n, k, &j, &frac);
  Carver carve;
  Chunk* chunks;
  uint32_t* slab_idx;
  float* slab_val;
  plan_scratch(carve, n, sampled, frac, &chunks, &slab_idx, &slab_val, &cap);
  return carve.bytes();
}

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
  uint64_t j = 0;
  double frac = 1.0;
  const bool sampled = sample_plan(n, k, &j, &frac);
  if (sampled) {
    std::vector<uint32_t> keys = sample_keys(d.grad, r, d.scale, n);
    t = key_at_rank(keys, j);
  }

  Chunk* chunks = nullptr;
  uint32_t* slab_idx = nullptr;
  float* slab_val = nullptr;
  uint64_t cap = 0;
  Carver carve(d.scratch);
  plan_scratch(carve, n, sampled, frac, &chunks, &slab_idx, &slab_val, &cap);
  if (!carve.commit()) return GC_ERR_INVALID_ARG;  // the caller provided less than topk_scratch_bytes
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
      run_pass(ef, a, chunks[ci]);
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
