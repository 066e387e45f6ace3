// Single-precision matrix multiply for the training jobs' models (gradcomp train's MLP and CNN,
// TracIn's scores): C = alpha * op(A) op(B) + beta * C, row-major, op = transpose or not.
// Every element of C is summed over k in index order with separate multiplies and adds (no FMA
// contraction), so the result is the same bits on every ISA and thread count.
#pragma once
#include "gradcomp/gradcomp.h"

namespace gradcomp {

// A is m x k (k x m when ta), B is k x n (n x k when tb), C is m x n; lda/ldb/ldc are row strides.
// scratch: at least gemm_scratch_floats(ta, tb, m, n, k) floats (a transposed copy of B when tb).
uint64_t gemm_scratch_floats(bool ta, bool tb, uint64_t m, uint64_t n, uint64_t k);
gc_status sgemm(bool ta, bool tb, uint64_t m, uint64_t n, uint64_t k, float alpha, const float* a, uint64_t lda, const float* b, uint64_t ldb,
                float beta, float* c, uint64_t ldc, float* scratch);

}  // namespace gradcomp
