// fp32 <-> fp16 / bf16 (round to nearest even; NaN becomes the canonical quiet NaN of its sign,
// so every ISA gives the same bits) and sign-bit packing, for the cast and sign compressors.
#pragma once
#include "gradcomp/gradcomp.h"

namespace gradcomp {

// kind 0: fp16, 1: bf16, 2: fp16 saturating (finite values beyond ±65504 become ±65504 instead
// of ±Infinity, so error feedback keeps the excess; ±Infinity and NaN inputs stay non-finite).
gc_status half_pack(const float* x, uint64_t n, uint16_t* out, int kind);
// out[i] += value(h[i]).
gc_status half_unpack_add(const uint16_t* h, uint64_t n, float* out, int kind);
// bits (ceil(n/8) bytes, zeroed here): bit i = 1 iff x[i] < 0. *l1 = sum |x| in float64, summed
// over fixed 64K-element pieces in order (independent of thread count).
gc_status sign_pack(const float* x, uint64_t n, uint8_t* bits, double* l1);
// out[i] += bit i ? -scale : scale.
gc_status sign_unpack_add(const uint8_t* bits, uint64_t n, float scale, float* out);

}  // namespace gradcomp
