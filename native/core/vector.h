// Elementwise and reduction kernels the compressors, optimizers and communicators share: the
// pieces of a training step that are not a compressor's own encoding (dense sums, scatter-adds of
// sparse payloads, norms). Parallel on the pool; deterministic (fixed piece order for sums).
#pragma once
#include "gradcomp/gradcomp.h"

namespace gradcomp {

// dst = a + b (dst may be a or b).
gc_status vec_add(float* dst, const float* a, const float* b, uint64_t n);
// x *= s.
gc_status vec_scale(float* x, uint64_t n, float s);
// y += s * x  (s == 1: y += x).
gc_status vec_axpy(float* y, const float* x, uint64_t n, float s);
// y = b * y + s * x in one pass (the bits of vec_scale(y, b) then vec_axpy(y, x, s)): a momentum update.
gc_status vec_axpby(float* y, const float* x, uint64_t n, float s, float b);
// s[i] += eta * x[i] * y[i], evaluated in float64 as ((eta x) y) + s and rounded once (what the
// same line of JavaScript computes), for TracIn's factorized score.
gc_status vec_mul_add(float* s, const float* x, const float* y, uint64_t n, double eta);
// out[r] = sum over c of x[r * cols + c]^2 in float64 (eight interleaved partial sums per row,
// combined in a fixed order), for rows r < rows.
gc_status rows_sumsq(const float* x, uint64_t rows, uint64_t cols, double* out);
// Sum of x[i]^2 (kind 0) or |x[i]| (kind 1) in float64, over fixed 64K-element pieces summed in
// order, eight interleaved partial sums inside a piece: the same bits on any thread count.
double vec_norm_sum(const float* x, uint64_t n, int kind);
// out[idx[j]] += scale * vals[j] for j < k, after checking that idx is strictly ascending and
// below n (GC_ERR_CORRUPT_PAYLOAD otherwise, with out untouched).
gc_status scatter_add(float* out, uint64_t n, const uint32_t* idx, const float* vals, uint64_t k, float scale);
// A checksum of `bytes` bytes that does not depend on thread count: CRC32C (Castagnoli) of every
// 1 MiB piece, then CRC32C over the pieces' CRCs in order. SSE4.2's crc32 instruction where the
// CPU has it (x86-64-v2 guarantees it), a table otherwise.
uint32_t checksum(const uint8_t* data, uint64_t bytes);
// dst = dst op src elementwise (op 0: sum; 1: max, NaN wins), float32 or float64.
gc_status reduce_into(void* dst, const void* src, uint64_t n, int op, gc_dtype dtype);
// dst = (((srcs[0] op srcs[1]) op srcs[2]) ...) op srcs[k-1], elementwise, in one pass (the same
// bits as copying srcs[0] and k - 1 reduce_into calls).
gc_status reduce_many(void* dst, const void* const* srcs, uint32_t k, uint64_t n, int op, gc_dtype dtype);

}  // namespace gradcomp
