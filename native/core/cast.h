// fp32 <-> fp16 / bf16 (round to nearest even; NaN becomes the canonical quiet NaN of its sign,
// so every ISA gives the same bits), for the cast compressors (sign packing is in codec.h).
#pragma once
#include "gradcomp/gradcomp.h"

namespace gradcomp {

// kind 0: fp16, 1: bf16, 2: fp16 saturating (finite values beyond ±65504 become ±65504 instead
// of ±Infinity, so error feedback keeps the excess; ±Infinity and NaN inputs stay non-finite).
gc_status half_pack(const float* x, uint64_t n, uint16_t* out, int kind);
// out[i] += value(h[i]).
gc_status half_unpack_add(const uint16_t* h, uint64_t n, float* out, int kind);
}  // namespace gradcomp
