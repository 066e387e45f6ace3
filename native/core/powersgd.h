// PowerSGD rank-r power step (Vogels et al., NeurIPS'19, Algorithm 1 without communication):
// P = M Q, orthonormalize P's columns, Q = M^T P. Batched over matrices of one shape.
#pragma once
#include "gradcomp/gradcomp.h"
#include "optim.h"

namespace gradcomp {

gc_status powersgd_step(const gc_powersgd_desc& d);
// Scratch bytes the power steps need (d.scratch must hold this many): Qᵀ and the slab partials of Mᵀ P.
uint64_t powersgd_scratch_bytes(const gc_powersgd_desc& d);
// The two halves of a distributed step, for when P is allreduced in between:
// P = M Q (d.q read, d.p written), and Q = M^T P (d.p read, d.q written). No orthogonalization.
gc_status powersgd_mq(const gc_powersgd_desc& d);
gc_status powersgd_mtp(const gc_powersgd_desc& d);
// Phase 1 with the error-feedback sum fused in: d.m (the residual, written) becomes g + d.m, then
// P = d.m Q, a cache-sized block of rows at a time (one pass less over M than an add, then P = M Q).
gc_status powersgd_mq_add(const gc_powersgd_desc& d, const float* g);
// The decompression of a step: out = P Qᵀ (d.p: rows x rank, d.q: cols x rank, one matrix), and
// when `residual` is given, residual = M - out with M = d.m (the error-feedback update, fused).
gc_status powersgd_reconstruct(const gc_powersgd_desc& d, float* out, float* residual);
// The reconstruction fused with the SGD update that consumes it: row by row, g = P Qᵀ (the same
// operations as powersgd_reconstruct, so the same bits), residual = d.m - g when residual is given,
// then sgd_span(w, g, buf). g never goes through memory: one pass over residual, w and buf instead
// of writing out and reading it back. buf may be null when p.momentum is 0.
gc_status powersgd_reconstruct_sgd(const gc_powersgd_desc& d, float* residual, float* w, float* buf, const SgdParams& p);
// Orthonormalizes the columns of `batch` row-major (rows x rank) matrices in place: modified
// Gram-Schmidt applied twice with fp64 dot products; a column that is (numerically) in the span
// of the previous ones, or zero, becomes exactly zero instead of NaN.
gc_status orthonormalize(float* p, uint64_t batch, uint64_t rows, uint32_t rank);

}  // namespace gradcomp
