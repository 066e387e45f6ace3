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
// Columns [j, j + 16) of a row of P Qᵀ (the scalar loop's operations, lane by lane), with
// e = m - that when there is a residual: shared by the plain and the SGD-fused rows.
GC_TARGET_AVX512 inline __m512 recon_vec_avx512(const float* pi, const float* qt, uint64_t cols, uint32_t r, uint64_t j, const float* m, float* e) {
  __m512 acc = _mm512_setzero_ps();
  for (uint32_t k = 0; k < r; ++k)
    if (pi[k] != 0.0f) acc = _mm512_add_ps(acc, _mm512_mul_ps(_mm512_set1_ps(pi[k]), _mm512_loadu_ps(qt + k * cols + j)));
  if (e != nullptr) _mm512_storeu_ps(e + j, _mm512_sub_ps(_mm512_loadu_ps(m + j), acc));
  return acc;
}

// The same for columns [j, j + 8).
GC_TARGET_AVX2 inline __m256 recon_vec_avx2(const float* pi, const float* qt, uint64_t cols, uint32_t r, uint64_t j, const float* m, float* e) {
  __m256 acc = _mm256_setzero_ps();
  for (uint32_t k = 0; k < r; ++k)
    if (pi[k] != 0.0f) acc = _mm256_add_ps(acc, _mm256_mul_ps(_mm256_set1_ps(pi[k]), _mm256_loadu_ps(qt + k * cols + j)));
  if (e != nullptr) _mm256_storeu_ps(e + j, _mm256_sub_ps(_mm256_loadu_ps(m + j), acc));
  return acc;
}

GC_TARGET_AVX512 void recon_row_avx512(const float* pi, const float* qt, uint64_t cols, uint32_t r, float* o, const float* m, float* e) {
  uint64_t j = 0;
  for (; j + 16 <= cols; j += 16) _mm512_storeu_ps(o + j, recon_vec_avx512(pi, qt, cols, r, j, m, e));
  recon_row_scalar(pi, qt, cols, r, o, m, e, j);
}

GC_TARGET_AVX2 void recon_row_avx2(const float* pi, const float* qt, uint64_t cols, uint32_t r, float* o, const float* m, float* e) {
  uint64_t j = 0;
  for (; j + 8 <= cols; j += 8) _mm256_storeu_ps(o + j, recon_vec_avx2(pi, qt, cols, r, j, m, e));
  recon_row_scalar(pi, qt, cols, r, o, m, e, j);
}

// One row of the reconstruction fused with the SGD update of that row, in registers: each vector
// of P Qᵀ comes from recon_vec_* (as in recon_row_*), then goes through sgd_body's operations in its order
// (mul and add apart, -ffp-contract=off), so the bits are those of recon_row then sgd_span. The
// ragged end (fewer than one vector) is left for the caller. Returns how many columns were done.
GC_TARGET_AVX512 uint64_t recon_sgd_row_avx512(const float* pi, const float* qt, uint64_t cols, uint32_t r, const float* m, float* e,
                                               float* w, float* buf, const SgdParams& p) {
  const __m512 gs = _mm512_set1_ps(p.grad_scale), wd = _mm512_set1_ps(p.weight_decay), mom = _mm512_set1_ps(p.momentum);
  const __m512 keep = _mm512_set1_ps(1.0f - p.dampening), lr = _mm512_set1_ps(p.lr);
  uint64_t j = 0;
  for (; j + 16 <= cols; j += 16) {
    __m512 d = recon_vec_avx512(pi, qt, cols, r, j, m, e);
    const __m512 wv = _mm512_loadu_ps(w + j);
    if (p.grad_scale != 1.0f) d = _mm512_mul_ps(d, gs);
    if (p.weight_decay != 0.0f) d = _mm512_add_ps(d, _mm512_mul_ps(wd, wv));
    if (buf != nullptr) {
      const __m512 b = p.first ? d : _mm512_add_ps(_mm512_mul_ps(mom, _mm512_loadu_ps(buf + j)), _mm512_mul_ps(keep, d));
      _mm512_storeu_ps(buf + j, b);
      d = p.nesterov ? _mm512_add_ps(d, _mm512_mul_ps(mom, b)) : b;
    }
    _mm512_storeu_ps(w + j, _mm512_sub_ps(wv, _mm512_mul_ps(lr, d)));
  }
  return j;
}

GC_TARGET_AVX2 uint64_t recon_sgd_row_avx2(const float* pi, const float* qt, uint64_t cols, uint32_t r, const float* m, float* e,
                                           float* w, float* buf, const SgdParams& p) {
  const __m256 gs = _mm256_set1_ps(p.grad_scale), wd = _mm256_set1_ps(p.weight_decay), mom = _mm256_set1_ps(p.momentum);
  const __m256 keep = _mm256_set1_ps(1.0f - p.dampening), lr = _mm256_set1_ps(p.lr);
  uint64_t j = 0;
  for (; j + 8 <= cols; j += 8) {
    __m256 d = recon_vec_avx2(pi, qt, cols, r, j, m, e);
    const __m256 wv = _mm256_loadu_ps(w + j);
    if (p.grad_scale != 1.0f) d = _mm256_mul_ps(d, gs);
    if (p.weight_decay != 0.0f) d = _mm256_add_ps(d, _mm256_mul_ps(wd, wv));
    if (buf != nullptr) {
      const __m256 b = p.first ? d : _mm256_add_ps(_mm256_mul_ps(mom, _mm256_loadu_ps(buf + j)), _mm256_mul_ps(keep, d));
      _mm256_storeu_ps(buf + j, b);
      d = p.nesterov ? _mm256_add_ps(d, _mm256_mul_ps(mom, b)) : b;
    }
    _mm256_storeu_ps(w + j, _mm256_sub_ps(wv, _mm256_mul_ps(lr, d)));
  }
  return j;
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
  [[maybe_unused]] const Isa isa = active_isa();  // the vector rows are x86 only
  const uint64_t cols = d.cols;
  if (p.momentum == 0.0f) buf = nullptr;
  ThreadPool::instance().parallel_for(chunk_count(d.rows, 64), [&](size_t t) {
    const uint64_t i0 = t * 64, i1 = std::min<uint64_t>(d.rows, i0 + 64);
    std::vector<float> g(cols);  // the part of a row of P Qᵀ not done in registers, cache-resident
    for (uint64_t i = i0; i < i1; ++i) {
      float* wi = w + i * cols;
      float* bi = buf != nullptr ? buf + i * cols : nullptr;
      const float* pi = d.p + i * d.rank;
      const float* mi = residual != nullptr ? d.m + i * cols : nullptr;
      float* ei = residual != nullptr ? residual + i * cols : nullptr;
      uint64_t j = 0;
#if GC_X86
      if (isa == Isa::kAvx512) j = recon_sgd_row_avx512(pi, qt.data(), cols, d.rank, mi, ei, wi, bi, p);
      else if (isa == Isa::kAvx2) j = recon_sgd_row_avx2(pi, qt.data(), cols, d.rank, mi, ei, wi, bi, p);
#endif
      if (j < cols) {  // the ragged end, or the whole row on the scalar ISA
        recon_row_scalar(pi, qt.data(), cols, d.rank, g.data(), mi, ei, j);
        sgd_span(wi + j, g.data() + j, bi != nullptr ? bi + j : nullptr, cols - j, p);
      }
    }
  });
  return GC_OK;
}

}  // namespace gradcomp
