// PowerSGD's decompression: out = P Qᵀ with the error-feedback update, and the same fused with the
// SGD update that consumes it (powersgd.h).
#include <algorithm>
#include <vector>

#include "cpu.h"
#include "pool.h"
#include "powersgd.h"

#if GC_X86
#include <immintrin.h>
#endif

namespace gradcomp {

namespace {
// One row of the reconstruction, in one pass: out = sum_k p_k Qt_k (k in order, skipping p_k == 0,
// a multiply then an add each), and e = m - out when there is a residual. The vector versions
// do the same operations on 16 or 8 columns at once, so the bits match.
void recon_row_scalar(const float* pi, const float* qt, uint64_t cols, uint32_t r, float* o, const float* m, float* e, uint64_t j0) {
  for (uint64_t j = j0; j < cols; ++j) {
    float acc = 0.0f;
    for (uint32_t k = 0; k < r; ++k) if (pi[k] != 0.0f) acc = acc + pi[k] * qt[k * cols + j];
    o[j] = acc;
    if (e != nullptr) e[j] = m[j] - acc;
  }
}

#if GC_X86
GC_TARGET_AVX512 void recon_row_avx512(const float* pi, const float* qt, uint64_t cols, uint32_t r, float* o, const float* m, float* e) {
  uint64_t j = 0;
  for (; j + 16 <= cols; j += 16) {
    __m512 acc = _mm512_setzero_ps();
    for (uint32_t k = 0; k < r; ++k)
      if (pi[k] != 0.0f) acc = _mm512_add_ps(acc, _mm512_mul_ps(_mm512_set1_ps(pi[k]), _mm512_loadu_ps(qt + k * cols + j)));
    _mm512_storeu_ps(o + j, acc);
    if (e != nullptr) _mm512_storeu_ps(e + j, _mm512_sub_ps(_mm512_loadu_ps(m + j), acc));
  }
  recon_row_scalar(pi, qt, cols, r, o, m, e, j);
}

GC_TARGET_AVX2 void recon_row_avx2(const float* pi, const float* qt, uint64_t cols, uint32_t r, float* o, const float* m, float* e) {
  uint64_t j = 0;
  for (; j + 8 <= cols; j += 8) {
    __m256 acc = _mm256_setzero_ps();
    for (uint32_t k = 0; k < r; ++k)
      if (pi[k] != 0.0f) acc = _mm256_add_ps(acc, _mm256_mul_ps(_mm256_set1_ps(pi[k]), _mm256_loadu_ps(qt + k * cols + j)));
    _mm256_storeu_ps(o + j, acc);
    if (e != nullptr) _mm256_storeu_ps(e + j, _mm256_sub_ps(_mm256_loadu_ps(m + j), acc));
  }
  recon_row_scalar(pi, qt, cols, r, o, m, e, j);
}
#endif
}  // namespace

namespace {
// Qᵀ with its rows contiguous, for the row passes.
std::vector<float> transpose_q(const gc_powersgd_desc& d) {
  std::vector<float> qt(static_cast<size_t>(d.rank) * d.cols);
  for (uint64_t j = 0; j < d.cols; ++j)
    for (uint32_t k = 0; k < d.rank; ++k) qt[k * d.cols + j] = d.q[j * d.rank + k];
  return qt;
}

// Row i of the reconstruction into o (and the residual update), on the active ISA.
void recon_row(Isa isa, const gc_powersgd_desc& d, const float* qt, uint64_t i, float* o, float* residual) {
  const uint64_t cols = d.cols;
  const uint32_t r = d.rank;
  const float* pi = d.p + i * r;
  const float* m = residual != nullptr ? d.m + i * cols : nullptr;
  float* e = residual != nullptr ? residual + i * cols : nullptr;
#if GC_X86
  if (isa == Isa::kAvx512) return recon_row_avx512(pi, qt, cols, r, o, m, e);
  if (isa == Isa::kAvx2) return recon_row_avx2(pi, qt, cols, r, o, m, e);
#endif
  (void)isa;
  recon_row_scalar(pi, qt, cols, r, o, m, e, 0);
}
}  // namespace

gc_status powersgd_reconstruct(const gc_powersgd_desc& d, float* out, float* residual) {
  if (d.rank == 0 || d.p == nullptr || d.q == nullptr || out == nullptr || (residual != nullptr && d.m == nullptr)) return GC_ERR_INVALID_ARG;
  const std::vector<float> qt = transpose_q(d);
  const Isa isa = active_isa();
  ThreadPool::instance().parallel_for(chunk_count(d.rows, 64), [&](size_t t) {
    const uint64_t i0 = t * 64, i1 = std::min<uint64_t>(d.rows, i0 + 64);
    for (uint64_t i = i0; i < i1; ++i) recon_row(isa, d, qt.data(), i, out + i * d.cols, residual);
  });
  return GC_OK;
}

gc_status powersgd_reconstruct_sgd(const gc_powersgd_desc& d, float* residual, float* w, float* buf, const SgdParams& p) {
  if (d.rank == 0 || d.p == nullptr || d.q == nullptr || w == nullptr || (residual != nullptr && d.m == nullptr) ||
      (p.momentum != 0.0f && buf == nullptr)) {
    return GC_ERR_INVALID_ARG;
  }
  const std::vector<float> qt = transpose_q(d);
  const Isa isa = active_isa();
  const uint64_t cols = d.cols;
  ThreadPool::instance().parallel_for(chunk_count(d.rows, 64), [&](size_t t) {
    const uint64_t i0 = t * 64, i1 = std::min<uint64_t>(d.rows, i0 + 64);
    std::vector<float> g(cols);  // one row of P Qᵀ, cache-resident
    for (uint64_t i = i0; i < i1; ++i) {
      recon_row(isa, d, qt.data(), i, g.data(), residual);
      sgd_span(w + i * cols, g.data(), buf != nullptr ? buf + i * cols : nullptr, cols, p);
    }
  });
  return GC_OK;
}

}  // namespace gradcomp
