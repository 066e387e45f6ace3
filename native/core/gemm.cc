#include "gemm.h"

#include <algorithm>

#include "cpu.h"
#include "pool.h"

namespace gradcomp {

namespace {

constexpr uint64_t kColBlock = 512;  // C columns per block: a row of B's block stays in L1
constexpr uint64_t kDepthBlock = 128;  // k per block

constexpr uint64_t kMr = 4, kNr = 32;  // the register tile: 4 rows x 32 columns of C stay in registers over k

// C[i0:i1, j0:j1] += alpha * A[i, k] * B[k, j] for k in [k0, k1), k ascending for every element.
// A is read transposed or not; B is row-major k x n here. Full 4 x 32 tiles keep their sums in
// registers across k (the same operations per element, in the same order, as the plain loop).
// beta * C, as the separate pass would compute it (beta 0 writes zeros: NaNs in an uninitialized C do not survive).
inline float scaled(float beta, float x) { return beta == 0.0f ? 0.0f : (beta == 1.0f ? x : beta * x); }

// first: this is the first depth block of the task, so C is scaled by beta as it is loaded (the
// same value the separate pass would have stored, one pass over C fewer).
__attribute__((always_inline)) inline void block_body(const float* a, uint64_t lda, bool ta, const float* b, uint64_t ldb, float alpha, float* c, uint64_t ldc,
                       uint64_t i0, uint64_t i1, uint64_t j0, uint64_t j1, uint64_t k0, uint64_t k1, float beta, bool first) {
  const uint64_t it = i0 + (i1 - i0) / kMr * kMr, jt = j0 + (j1 - j0) / kNr * kNr;
  for (uint64_t i = i0; i < it; i += kMr) {
    for (uint64_t j = j0; j < jt; j += kNr) {
      float acc[kMr][kNr];
      for (uint64_t r = 0; r < kMr; ++r)
        for (uint64_t q = 0; q < kNr; ++q) acc[r][q] = first ? scaled(beta, c[(i + r) * ldc + j + q]) : c[(i + r) * ldc + j + q];
      for (uint64_t kk = k0; kk < k1; ++kk) {
        float av[kMr];
        for (uint64_t r = 0; r < kMr; ++r) av[r] = alpha * (ta ? a[kk * lda + i + r] : a[(i + r) * lda + kk]);
        const float* brow = b + kk * ldb + j;
        for (uint64_t r = 0; r < kMr; ++r)
          for (uint64_t q = 0; q < kNr; ++q) acc[r][q] = acc[r][q] + av[r] * brow[q];
      }
      for (uint64_t r = 0; r < kMr; ++r)
        for (uint64_t q = 0; q < kNr; ++q) c[(i + r) * ldc + j + q] = acc[r][q];
    }
  }
  // The edges: rows past the last full tile (all columns), then the columns past it for the tiled
  // rows; the same per-element operations as the tiles, row by row.
  auto edge = [&](uint64_t ilo, uint64_t ihi, uint64_t jlo, uint64_t jhi) {
    for (uint64_t i = ilo; i < ihi; ++i) {
      float* crow = c + i * ldc;
      if (first)
        for (uint64_t j = jlo; j < jhi; ++j) crow[j] = scaled(beta, crow[j]);
      for (uint64_t kk = k0; kk < k1; ++kk) {
        const float av = alpha * (ta ? a[kk * lda + i] : a[i * lda + kk]);
        const float* brow = b + kk * ldb;
        for (uint64_t j = jlo; j < jhi; ++j) crow[j] = crow[j] + av * brow[j];
      }
    }
  };
  edge(it, i1, j0, j1);
  edge(i0, it, jt, j1);
}
GC_ISA_VARIANTS(block, (const float* a, uint64_t lda, bool ta, const float* b, uint64_t ldb, float alpha, float* c, uint64_t ldc,
                        uint64_t i0, uint64_t i1, uint64_t j0, uint64_t j1, uint64_t k0, uint64_t k1, float beta, bool first),
                (a, lda, ta, b, ldb, alpha, c, ldc, i0, i1, j0, j1, k0, k1, beta, first))

}  // namespace

uint64_t gemm_scratch_floats(bool ta, bool tb, uint64_t m, uint64_t n, uint64_t k) {
  (void)ta;
  (void)m;
  return tb ? n * k : 0;
}

gc_status sgemm(bool ta, bool tb, uint64_t m, uint64_t n, uint64_t k, float alpha, const float* a, uint64_t lda, const float* b, uint64_t ldb,
                float beta, float* c, uint64_t ldc, float* scratch) {
  if (m == 0 || n == 0) return GC_OK;
  if (c == nullptr || (k > 0 && (a == nullptr || b == nullptr)) || (tb && k > 0 && scratch == nullptr)) return GC_ERR_INVALID_ARG;
  ThreadPool& pool = ThreadPool::instance();
  if (k == 0 || alpha == 0.0f) {
    // Only beta * C to do (otherwise the first depth block applies beta as it loads C).
    pool.parallel_for(chunk_count(m, 64), [&](size_t t) {
      const uint64_t lo = t * 64, hi = std::min<uint64_t>(m, lo + 64);
      for (uint64_t i = lo; i < hi; ++i)
        for (uint64_t j = 0; j < n; ++j) c[i * ldc + j] = scaled(beta, c[i * ldc + j]);
    });
    return GC_OK;
  }
  // B transposed (n x k) becomes k x n in scratch, so every variant runs the same row-axpy kernel.
  const float* bb = b;
  uint64_t ldbb = ldb;
  if (tb) {
    pool.parallel_for(chunk_count(k, 64), [&](size_t t) {
      const uint64_t lo = t * 64, hi = std::min<uint64_t>(k, lo + 64);
      for (uint64_t kk = lo; kk < hi; ++kk)
        for (uint64_t j = 0; j < n; ++j) scratch[kk * n + j] = b[j * ldb + kk];
    });
    bb = scratch;
    ldbb = n;
  }
  // Tasks own disjoint rows of C (row blocks x column blocks); depth blocks run in order inside a task.
  const uint64_t rows = std::max<uint64_t>(1, std::min<uint64_t>(64, (m + 15) / 16));
  const uint64_t row_tasks = (m + rows - 1) / rows, col_tasks = (n + kColBlock - 1) / kColBlock;
  pool.parallel_for(row_tasks * col_tasks, [&](size_t t) {
    const uint64_t ri = t / col_tasks, ci = t % col_tasks;
    const uint64_t i0 = ri * rows, i1 = std::min<uint64_t>(m, i0 + rows), j0 = ci * kColBlock, j1 = std::min<uint64_t>(n, j0 + kColBlock);
    // Depth blocks of kDepthBlock; a tail shorter than half a block joins the last one (a block of
    // depth 1 would cost a whole pass over C for one multiply-add per element).
    for (uint64_t k0 = 0; k0 < k;) {
      const uint64_t k1 = k - k0 < kDepthBlock + kDepthBlock / 2 ? k : k0 + kDepthBlock;
      block_run(a, lda, ta, bb, ldbb, alpha, c, ldc, i0, i1, j0, j1, k0, k1, beta, k0 == 0);
      k0 = k1;
    }
  });
  return GC_OK;
}

}  // namespace gradcomp
