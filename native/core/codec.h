// Fused compressor steps (encode with error feedback, decode of every worker's payload at once)
// for the sign family, rand-k's shared support and DGC's momentum accumulation. Each replaces a
// chain of passes over the tensor with one or two.
#pragma once
#include "gradcomp/gradcomp.h"

namespace gradcomp {

// Scaled sign with error feedback (Karimireddy et al. 2019), fused: p = grad + e (into e); bits
// (ceil(n/8) bytes, bit i = p[i] < 0); scale = float32(sum |p| / n) (float64 sum, fixed order);
// e = p - (bit ? -scale : scale). grad may be null (p = e: a bare encode of e, e then updated).
gc_status efsign_encode(const float* grad, float* e, uint64_t n, uint8_t* bits, float* scale_out);

// Decodes R sign payloads at once: for each element, in rank order,
//   mode 0 (average): out = (sum_r (bit_r ? -scale_r : scale_r)) / divisor
//   mode 1 (majority vote): out = sign(sum_r (bit_r ? -1 : 1))   (a tie gives 0)
// bits[r] points at ceil(n/8) bytes.
// bits (ceil(n/8) bytes): bit i = 1 iff x[i] < 0 (the last byte's unused bits zero). *l1 = sum |x|
// in float64, in efsign_encode's order (16 lanes per 64K piece, pieces in order): any ISA, any
// thread count, the same bits.
// Blockwise scaled sign with error feedback: blocks of `block` elements (a multiple of 8), each
// with its own scale = sum |p| / size (efsign's order within the block) written to scales[b].
gc_status efsign_encode_blocks(const float* grad, float* e, uint64_t n, uint64_t block, uint8_t* bits, float* scales);
// out[i] += bit i ? -scales[b] : scales[b] for the block b holding i.
gc_status sign_unpack_add_blocks(const uint8_t* bits, uint64_t n, uint64_t block, const float* scales, float* out);
gc_status sign_pack(const float* x, uint64_t n, uint8_t* bits, double* l1);
// out[i] += bit i ? -scale : scale.
gc_status sign_unpack_add(const uint8_t* bits, uint64_t n, float scale, float* out);
gc_status sign_decode_all(const uint8_t* const* bits, const float* scales, uint32_t ranks, uint64_t n, float* out,
                          int mode, float divisor);

// rand-k's support: k distinct indices in [0, n), ascending, the same for every (seed, step,
// stream) on any machine (Floyd's algorithm: for j = n-k .. n-1 draw t uniform in [0, j] from
// Philox block j; take t, or j when t was taken). O(n/8) bytes of scratch for the membership bits.
gc_status randk_support(uint64_t n, uint64_t k, uint64_t seed, uint32_t step, uint32_t stream, uint32_t* out);

// DGC's accumulation (Lin et al. 2018), per element with g' = g * clip:
//   heavy ball: u = mu u + g';  v = v + u        Nesterov: u = mu (u + g');  v = v + u + g'
gc_status dgc_accumulate(const float* g, float* u, float* v, uint64_t n, float mu, bool nesterov, float clip);

}  // namespace gradcomp
