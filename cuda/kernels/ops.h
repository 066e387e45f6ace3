// The CUDA kernels' checked host entries. Pointers are device pointers; every entry enqueues on
// `s`, may read small results back (it synchronizes `s` when it does), and returns a gc_status.
// Semantics match the CPU kernels in native/core exactly (see each .cu file's header).
#pragma once
#include <cuda_runtime.h>
#include <stdint.h>

#include "gradcomp/gradcomp.h"

namespace gc_cuda {

// Fused EF top-k (grad != nullptr: x is the residual, updated) or plain top-k of x (read-only).
// out_idx/out_val get exactly k entries in ascending index order. out_val may be null.
gc_status topk(const float* grad, float* x, uint64_t n, uint64_t k, float scale, uint32_t* out_idx,
               float* out_val, cudaStream_t s);
// Which path the last topk took: 0 = whole-bin threshold, 1 = candidates, 2 = candidates with
// ties resolved by index, 3 = k == 0 or k == n.
int last_topk_path();

gc_status qsgd_encode(const gc_qsgd_desc& d, cudaStream_t s);  // d.x and d.payload on the device
gc_status qsgd_decode(const uint8_t* payload, uint64_t bytes, float* out, uint64_t out_len, cudaStream_t s);

// m, q, p on the device; rank <= 32.
gc_status powersgd_step(const gc_powersgd_desc& d, cudaStream_t s);
gc_status orthonormalize(float* p, uint64_t batch, uint64_t rows, uint32_t rank, cudaStream_t s);
constexpr uint32_t kMaxRank = 32;

// Payload sizes and layouts: gc_qsgd_payload_bytes, gc_dropit_packed_bytes, gc_dropit_layout_for (gradcomp.h).
gc_status dropit_pack(const float* x, uint64_t n, uint64_t k, uint8_t* out, uint64_t out_bytes, cudaStream_t s);
gc_status dropit_unpack(const uint8_t* in, uint64_t bytes, float* out, uint64_t out_len, cudaStream_t s);

// TracIn: s[i * m + j] += eta * (a_i . b_j) * (d_i . e_j) for rows of p (a, b) and c (d, e)
// floats; and out[r] = the float64 sum of squares of row r of x. Bit-identical to the CPU
// (tracin.cu's header has the orders).
gc_status tracin_score(const float* a, const float* b, const float* d, const float* e, uint64_t n, uint64_t m, uint64_t p, uint64_t c,
                       double eta, float* s, cudaStream_t st);
gc_status rows_sumsq(const float* x, uint64_t rows, uint64_t cols, double* out, cudaStream_t st);

}  // namespace gc_cuda
