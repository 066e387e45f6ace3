#include "powersgd.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu.h"
#include "pool.h"
#include "scratch.h"

#if GC_X86
#include <immintrin.h>
#endif

namespace gradcomp {

namespace {

constexpr uint64_t kRowBlock = 256;  // rows per task for P = M Q
constexpr uint64_t kColTile = 8192;  // max columns per task for Q = M^T P (accumulators stay in L2)
constexpr uint64_t kRowSlab = 512;   // rows per partial sum for Q = M^T P (fixed: determinism)
constexpr uint32_t kRankGroup = 8;   // ranks handled per sweep over M

// P[i, k0:k0+R] = M[i, :] . Qt[k0:k0+R, :] for rows [i0, i1).
template <int R>
void mq_rows_scalar(const float* M, uint64_t cols, const float* Qt, float* P, uint32_t rank, uint32_t k0,
                    uint64_t i0, uint64_t i1) {
  for (uint64_t i = i0; i < i1; ++i) {
    const float* row = M + i * cols;
    float acc[R][8] = {};
    uint64_t j = 0;
    for (; j + 8 <= cols; j += 8)
      for (int k = 0; k < R; ++k)
        for (int l = 0; l < 8; ++l) acc[k][l] += row[j + l] * Qt[(k0 + k) * cols + j + l];
    for (int k = 0; k < R; ++k) {
      float s = 0.0f;
      for (int l = 0; l < 8; ++l) s += acc[k][l];
      for (uint64_t jj = j; jj < cols; ++jj) s += row[jj] * Qt[(k0 + k) * cols + jj];
      P[i * rank + k0 + k] = s;
    }
  }
}

#if GC_X86
// Two rows per sweep share every load of Qt.
template <int R>
GC_TARGET_AVX512 void mq_rows_avx512(const float* M, uint64_t cols, const float* Qt, float* P, uint32_t rank,
                                     uint32_t k0, uint64_t i0, uint64_t i1) {
  uint64_t i = i0;
  for (; i + 2 <= i1; i += 2) {
    const float* r0 = M + i * cols;
    const float* r1 = r0 + cols;
    __m512 a0[R], a1[R];
    for (int k = 0; k < R; ++k) { a0[k] = _mm512_setzero_ps(); a1[k] = _mm512_setzero_ps(); }
    uint64_t j = 0;
    for (; j + 16 <= cols; j += 16) {
      __m512 m0 = _mm512_loadu_ps(r0 + j), m1 = _mm512_loadu_ps(r1 + j);
      for (int k = 0; k < R; ++k) {
        __m512 qk = _mm512_loadu_ps(Qt + (k0 + k) * cols + j);
        a0[k] = _mm512_fmadd_ps(m0, qk, a0[k]);
        a1[k] = _mm512_fmadd_ps(m1, qk, a1[k]);
      }
    }
    if (j < cols) {
      __mmask16 mk = static_cast<__mmask16>((1u << (cols - j)) - 1);
      __m512 m0 = _mm512_maskz_loadu_ps(mk, r0 + j), m1 = _mm512_maskz_loadu_ps(mk, r1 + j);
      for (int k = 0; k < R; ++k) {
        __m512 qk = _mm512_maskz_loadu_ps(mk, Qt + (k0 + k) * cols + j);
        a0[k] = _mm512_fmadd_ps(m0, qk, a0[k]);
        a1[k] = _mm512_fmadd_ps(m1, qk, a1[k]);
      }
    }
    for (int k = 0; k < R; ++k) {
      P[i * rank + k0 + k] = _mm512_reduce_add_ps(a0[k]);
      P[(i + 1) * rank + k0 + k] = _mm512_reduce_add_ps(a1[k]);
    }
  }
  for (; i < i1; ++i) {
    const float* row = M + i * cols;
    __m512 acc[R];
    for (int k = 0; k < R; ++k) acc[k] = _mm512_setzero_ps();
    for (uint64_t j = 0; j < cols; j += 16) {
      __mmask16 mk = cols - j >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << (cols - j)) - 1);
      __m512 m = _mm512_maskz_loadu_ps(mk, row + j);
      for (int k = 0; k < R; ++k)
        acc[k] = _mm512_fmadd_ps(m, _mm512_maskz_loadu_ps(mk, Qt + (k0 + k) * cols + j), acc[k]);
    }
    for (int k = 0; k < R; ++k) P[i * rank + k0 + k] = _mm512_reduce_add_ps(acc[k]);
  }
}

// acc[k][0:w] += sum over rows i in [i0, i1) of M[i, j0:j0+w] * P[i, k0+k]; w <= kColTile.
// Four rows per accumulator load/store keep the L1 traffic below the FMA rate.
template <int R>
GC_TARGET_AVX512 void mtp_tile_avx512(const float* M, uint64_t cols, const float* P, uint32_t rank, uint32_t k0,
                                      uint64_t i0, uint64_t i1, uint64_t j0, uint64_t w, float* acc, uint64_t tw) {
  uint64_t i = i0;
  for (; i + 4 <= i1; i += 4) {
    const float* r0 = M + i * cols + j0;
    __m512 p0[R], p1[R], p2[R], p3[R];
    for (int k = 0; k < R; ++k) {
      p0[k] = _mm512_set1_ps(P[i * rank + k0 + k]);
      p1[k] = _mm512_set1_ps(P[(i + 1) * rank + k0 + k]);
      p2[k] = _mm512_set1_ps(P[(i + 2) * rank + k0 + k]);
      p3[k] = _mm512_set1_ps(P[(i + 3) * rank + k0 + k]);
    }
    for (uint64_t j = 0; j < w; j += 16) {
      __mmask16 mk = w - j >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << (w - j)) - 1);
      __m512 m0 = _mm512_maskz_loadu_ps(mk, r0 + j), m1 = _mm512_maskz_loadu_ps(mk, r0 + cols + j);
      __m512 m2 = _mm512_maskz_loadu_ps(mk, r0 + 2 * cols + j), m3 = _mm512_maskz_loadu_ps(mk, r0 + 3 * cols + j);
      for (int k = 0; k < R; ++k) {
        // Masked: past w lie another rank's (or another task's) accumulators.
        float* a = acc + k * tw + j;
        __m512 s = _mm512_maskz_loadu_ps(mk, a);
        s = _mm512_fmadd_ps(m0, p0[k], s);
        s = _mm512_fmadd_ps(m1, p1[k], s);
        s = _mm512_fmadd_ps(m2, p2[k], s);
        s = _mm512_fmadd_ps(m3, p3[k], s);
        _mm512_mask_storeu_ps(a, mk, s);
      }
    }
  }
  for (; i < i1; ++i) {
    const float* row = M + i * cols + j0;
    __m512 pk[R];
    for (int k = 0; k < R; ++k) pk[k] = _mm512_set1_ps(P[i * rank + k0 + k]);
    for (uint64_t j = 0; j < w; j += 16) {
      __mmask16 mk = w - j >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << (w - j)) - 1);
      __m512 m = _mm512_maskz_loadu_ps(mk, row + j);
      for (int k = 0; k < R; ++k) {
        float* a = acc + k * tw + j;
        _mm512_mask_storeu_ps(a, mk, _mm512_fmadd_ps(m, pk[k], _mm512_maskz_loadu_ps(mk, a)));
      }
    }
  }
}

// The AVX2 versions: eight columns per vector, two rows per sweep (16 ymm registers hold the
// accumulators and broadcasts of up to rank 4 without spilling).
GC_TARGET_AVX2 inline float hsum256(__m256 v) {
  __m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  x = _mm_add_ps(x, _mm_movehl_ps(x, x));
  return _mm_cvtss_f32(_mm_add_ss(x, _mm_movehdup_ps(x)));
}

template <int R>
GC_TARGET_AVX2 void mq_rows_avx2(const float* M, uint64_t cols, const float* Qt, float* P, uint32_t rank,
                                 uint32_t k0, uint64_t i0, uint64_t i1) {
  const uint64_t cv = cols & ~uint64_t{7};
  for (uint64_t i = i0; i < i1; i += 2) {
    const bool two = i + 1 < i1;
    const float* r0 = M + i * cols;
    const float* r1 = two ? r0 + cols : r0;
    __m256 a0[R], a1[R];
    for (int k = 0; k < R; ++k) { a0[k] = _mm256_setzero_ps(); a1[k] = _mm256_setzero_ps(); }
    for (uint64_t j = 0; j < cv; j += 8) {
      const __m256 m0 = _mm256_loadu_ps(r0 + j), m1 = _mm256_loadu_ps(r1 + j);
      for (int k = 0; k < R; ++k) {
        const __m256 qk = _mm256_loadu_ps(Qt + (k0 + k) * cols + j);
        a0[k] = _mm256_fmadd_ps(m0, qk, a0[k]);
        a1[k] = _mm256_fmadd_ps(m1, qk, a1[k]);
      }
    }
    for (int k = 0; k < R; ++k) {
      const float* q = Qt + (k0 + k) * cols;
      float s0 = hsum256(a0[k]), s1 = hsum256(a1[k]);
      for (uint64_t j = cv; j < cols; ++j) { s0 += r0[j] * q[j]; s1 += r1[j] * q[j]; }
      P[i * rank + k0 + k] = s0;
      if (two) P[(i + 1) * rank + k0 + k] = s1;
    }
  }
}

template <int R>
GC_TARGET_AVX2 void mtp_tile_avx2(const float* M, uint64_t cols, const float* P, uint32_t rank, uint32_t k0,
                                  uint64_t i0, uint64_t i1, uint64_t j0, uint64_t w, float* acc, uint64_t tw) {
  const uint64_t wv = w & ~uint64_t{7};
  for (uint64_t i = i0; i < i1; i += 2) {
    const bool two = i + 1 < i1;
    const float* r0 = M + i * cols + j0;
    const float* r1 = two ? r0 + cols : r0;
    __m256 p0[R], p1[R];
    for (int k = 0; k < R; ++k) {
      p0[k] = _mm256_set1_ps(P[i * rank + k0 + k]);
      p1[k] = _mm256_set1_ps(two ? P[(i + 1) * rank + k0 + k] : 0.0f);  // unused for a last odd row
    }
    for (uint64_t j = 0; j < wv; j += 8) {
      const __m256 m0 = _mm256_loadu_ps(r0 + j);
      if (two) {
        const __m256 m1 = _mm256_loadu_ps(r1 + j);
        for (int k = 0; k < R; ++k) {
          float* a = acc + k * tw + j;
          _mm256_storeu_ps(a, _mm256_fmadd_ps(m1, p1[k], _mm256_fmadd_ps(m0, p0[k], _mm256_loadu_ps(a))));
        }
      } else {
        for (int k = 0; k < R; ++k) _mm256_storeu_ps(acc + k * tw + j, _mm256_fmadd_ps(m0, p0[k], _mm256_loadu_ps(acc + k * tw + j)));
      }
    }
    for (int k = 0; k < R; ++k) {
      const float q0 = P[i * rank + k0 + k];
      for (uint64_t j = wv; j < w; ++j) {
        acc[k * tw + j] = std::fma(r0[j], q0, acc[k * tw + j]);
        if (two) acc[k * tw + j] = std::fma(r1[j], P[(i + 1) * rank + k0 + k], acc[k * tw + j]);
      }
    }
  }
}
#endif

template <int R>
void mtp_tile_scalar(const float* M, uint64_t cols, const float* P, uint32_t rank, uint32_t k0, uint64_t i0,
                     uint64_t i1, uint64_t j0, uint64_t w, float* acc, uint64_t tw) {
  for (uint64_t i = i0; i < i1; ++i) {
    const float* row = M + i * cols + j0;
    for (int k = 0; k < R; ++k) {
      const float pk = P[i * rank + k0 + k];
      float* a = acc + k * tw;
      for (uint64_t j = 0; j < w; ++j) a[j] += row[j] * pk;
    }
  }
}

template <int R>
void mq_rows(const float* M, uint64_t cols, const float* Qt, float* P, uint32_t rank, uint32_t k0, uint64_t i0,
             uint64_t i1) {
#if GC_X86
  if (active_isa() == Isa::kAvx512) return mq_rows_avx512<R>(M, cols, Qt, P, rank, k0, i0, i1);
  if (active_isa() == Isa::kAvx2) return mq_rows_avx2<R>(M, cols, Qt, P, rank, k0, i0, i1);
#endif
  mq_rows_scalar<R>(M, cols, Qt, P, rank, k0, i0, i1);
}

template <int R>
void mtp_tile(const float* M, uint64_t cols, const float* P, uint32_t rank, uint32_t k0, uint64_t i0,
              uint64_t i1, uint64_t j0, uint64_t w, float* acc, uint64_t tw) {
#if GC_X86
  if (active_isa() == Isa::kAvx512) return mtp_tile_avx512<R>(M, cols, P, rank, k0, i0, i1, j0, w, acc, tw);
  if (active_isa() == Isa::kAvx2) return mtp_tile_avx2<R>(M, cols, P, rank, k0, i0, i1, j0, w, acc, tw);
#endif
  mtp_tile_scalar<R>(M, cols, P, rank, k0, i0, i1, j0, w, acc, tw);
}

// Dispatch on the number of ranks in this group (1..8) to a fully unrolled kernel.
template <template <int> class F, typename... A>
void by_rank(uint32_t r, A... a) {
  switch (r) {
    case 1: F<1>::run(a...); break;
    case 2: F<2>::run(a...); break;
    case 3: F<3>::run(a...); break;
    case 4: F<4>::run(a...); break;
    case 5: F<5>::run(a...); break;
    case 6: F<6>::run(a...); break;
    case 7: F<7>::run(a...); break;
    default: F<8>::run(a...); break;
  }
}
template <int R> struct MqRows { template <typename... A> static void run(A... a) { mq_rows<R>(a...); } };
template <int R> struct MtpTile { template <typename... A> static void run(A... a) { mtp_tile<R>(a...); } };

}  // namespace

gc_status orthonormalize(float* p, uint64_t batch, uint64_t rows, uint32_t rank) {
  ThreadPool::instance().parallel_for(batch, [&](size_t b) {
    float* P = p + b * rows * rank;
    for (uint32_t j = 0; j < rank; ++j) {
      double norm0 = 0.0;
      for (uint64_t i = 0; i < rows; ++i) norm0 += static_cast<double>(P[i * rank + j]) * P[i * rank + j];
      norm0 = std::sqrt(norm0);
      // "Twice is enough" (Giraud et al.): a second MGS sweep restores orthogonality lost to
      // cancellation when P's columns are nearly dependent (warm-started PowerSGD drives them so).
      for (int sweep = 0; sweep < 2; ++sweep) {
        for (uint32_t c = 0; c < j; ++c) {
          double dot = 0.0;
          for (uint64_t i = 0; i < rows; ++i) dot += static_cast<double>(P[i * rank + c]) * P[i * rank + j];
          if (dot == 0.0) continue;
          for (uint64_t i = 0; i < rows; ++i)
            P[i * rank + j] = static_cast<float>(P[i * rank + j] - dot * P[i * rank + c]);
        }
      }
      double nv = 0.0;
      for (uint64_t i = 0; i < rows; ++i) nv += static_cast<double>(P[i * rank + j]) * P[i * rank + j];
      nv = std::sqrt(nv);
      // Guard (specs/compressors.md §4(f)): a zero or dependent column becomes 0, never NaN.
      const bool keep = std::isfinite(nv) && nv > 0.0 && nv > 1e-6 * norm0;
      const double inv = keep ? 1.0 / nv : 0.0;
      for (uint64_t i = 0; i < rows; ++i) P[i * rank + j] = static_cast<float>(P[i * rank + j] * inv);
    }
  });
  return GC_OK;
}

namespace {

// The three steps share one scratch layout; `which` selects P = MQ (1), Q = M^T P (2) or both
// with the orthogonalization between them (3).
// Qᵀ (B x r x cols, for contiguous dot products) and the partial sums of Mᵀ P (B x slabs x tiles x r x tw).
void plan_scratch(Carver& carve, const gc_powersgd_desc& d, float** qt, float** part) {
  const uint64_t B = d.batch, rows = d.rows, cols = d.cols, r = d.rank;
  const uint64_t slabs = (rows + kRowSlab - 1) / kRowSlab, tw = std::min(kColTile, cols), tiles = tw ? (cols + tw - 1) / tw : 0;
  carve.add(qt, B * r * cols);
  carve.add(part, B * slabs * tiles * r * tw);
}

// g_add: when given (phase 1 only), M = g_add + M is formed in place first, a cache-sized block
// of rows at a time, right before P = M Q reads those rows (one pass less over M).
gc_status run_phases(const gc_powersgd_desc& d, int which, const float* g_add = nullptr) {
  const uint64_t B = d.batch, rows = d.rows, cols = d.cols;
  const uint32_t r = d.rank;
  if (r == 0 || d.m == nullptr || d.q == nullptr || d.p == nullptr) return GC_ERR_INVALID_ARG;
  if (B == 0 || rows == 0 || cols == 0) return GC_OK;
  ThreadPool& pool = ThreadPool::instance();
  const uint64_t slabs = (rows + kRowSlab - 1) / kRowSlab;
  const uint64_t tw = std::min(kColTile, cols);  // accumulator row stride
  const uint64_t tiles = (cols + tw - 1) / tw;
  float* qt = nullptr;
  float* part = nullptr;
  Carver carve(d.scratch);
  plan_scratch(carve, d, &qt, &part);
  if (!carve.commit()) return GC_ERR_INVALID_ARG;  // the caller provided less than powersgd_scratch_bytes

  if (which & 1) {
    pool.parallel_for(B, [&](size_t b) {
      const float* Q = d.q + b * cols * r;
      float* T = qt + b * r * cols;
      for (uint64_t j = 0; j < cols; ++j)
        for (uint32_t k = 0; k < r; ++k) T[k * cols + j] = Q[j * r + k];
    });
    // P = M Q: tasks are (matrix, block of rows); ranks in groups of 8 per sweep over M.
    const uint64_t rblocks = (rows + kRowBlock - 1) / kRowBlock;
    pool.parallel_for(B * rblocks, [&](size_t t) {
      const uint64_t b = t / rblocks, blk = t % rblocks;
      const uint64_t i0 = blk * kRowBlock, i1 = std::min(rows, i0 + kRowBlock);
      const float* M = d.m + b * rows * cols;
      const uint64_t sub = g_add != nullptr ? std::max<uint64_t>(1, (256 << 10) / (4 * cols)) : kRowBlock;
      for (uint64_t s0 = i0; s0 < i1; s0 += sub) {
        const uint64_t s1 = std::min(i1, s0 + sub);
        if (g_add != nullptr) {
          float* mw = const_cast<float*>(M) + s0 * cols;  // the caller's residual, writable (powersgd_mq_add)
          const float* ga = g_add + b * rows * cols + s0 * cols;
          for (uint64_t j = 0; j < (s1 - s0) * cols; ++j) mw[j] = ga[j] + mw[j];
        }
        for (uint32_t k0 = 0; k0 < r; k0 += kRankGroup)
          by_rank<MqRows>(std::min(kRankGroup, r - k0), M, cols, static_cast<const float*>(qt + b * r * cols),
                          d.p + b * rows * r, r, k0, s0, s1);
      }
    });
  }
  if (which == 3) orthonormalize(d.p, B, rows, r);
  if (!(which & 2)) return GC_OK;
  // Q = M^T P: tasks are (matrix, row slab, column tile) with private accumulators, then a
  // reduction over slabs in a fixed order, so the result does not depend on thread count.
  pool.parallel_for(B * slabs * tiles, [&](size_t t) {
    const uint64_t b = t / (slabs * tiles), s = (t / tiles) % slabs, tile = t % tiles;
    const uint64_t i0 = s * kRowSlab, i1 = std::min(rows, i0 + kRowSlab);
    const uint64_t j0 = tile * tw, w = std::min(tw, cols - j0);
    float* acc = part + t * r * tw;
    std::fill(acc, acc + r * tw, 0.0f);
    for (uint32_t k0 = 0; k0 < r; k0 += kRankGroup)
      by_rank<MtpTile>(std::min(kRankGroup, r - k0), d.m + b * rows * cols, cols,
                       static_cast<const float*>(d.p + b * rows * r), r, k0, i0, i1, j0, w, acc + k0 * tw, tw);
  });
  pool.parallel_for(B * tiles, [&](size_t t) {
    const uint64_t b = t / tiles, tile = t % tiles;
    const uint64_t j0 = tile * tw, w = std::min(tw, cols - j0);
    float* Q = d.q + b * cols * r;
    for (uint64_t j = 0; j < w; ++j) {
      for (uint32_t k = 0; k < r; ++k) {
        float s = 0.0f;
        for (uint64_t sl = 0; sl < slabs; ++sl) s += part[((b * slabs + sl) * tiles + tile) * r * tw + k * tw + j];
        Q[(j0 + j) * r + k] = s;
      }
    }
  });
  return GC_OK;
}

}  // namespace

uint64_t powersgd_scratch_bytes(const gc_powersgd_desc& d) {
  if (d.batch == 0 || d.rows == 0 || d.cols == 0 || d.rank == 0) return 0;
  Carver carve;
  float* qt;
  float* part;
  plan_scratch(carve, d, &qt, &part);
  return carve.bytes();
}

gc_status powersgd_step(const gc_powersgd_desc& d) { return run_phases(d, 3); }
gc_status powersgd_mq(const gc_powersgd_desc& d) { return run_phases(d, 1); }
gc_status powersgd_mq_add(const gc_powersgd_desc& d, const float* g) { return g == nullptr ? GC_ERR_INVALID_ARG : run_phases(d, 1, g); }
gc_status powersgd_mtp(const gc_powersgd_desc& d) { return run_phases(d, 2); }

}  // namespace gradcomp
