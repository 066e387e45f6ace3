// QSGD stochastic quantization (Alistarh et al., NeurIPS'17) with per-bucket max or L2 norms
// and fixed-width packed codes; the payload layout is documented in gradcomp.h.
#pragma once
#include "gradcomp/gradcomp.h"

namespace gradcomp {

// 1 sign bit + ceil(log2(levels + 1)) level bits.
gc_status qsgd_encode(const gc_qsgd_desc& d);
// Validates the whole payload (header, size, norms, every code) and writes n floats into out, or
// adds them (accumulate: out += decoded, one rounding per element). A corrupt payload is refused
// before anything is written only for header/size faults; a bad code found mid-way may leave out
// partly written (decode into scratch when that matters).
gc_status qsgd_decode(const uint8_t* payload, uint64_t bytes, float* out, uint64_t out_len, bool accumulate = false);
// out = scale * (sum of the count payloads' dense values), in payload order, tile by tile (out is
// written once); every payload is validated as qsgd_decode does, and must hold n elements.
gc_status qsgd_decode_sum(const uint8_t* const* payloads, const uint64_t* bytes, uint32_t count, float* out, uint64_t n, float scale);
// The SGD update of w (optim.h) with g = the sum of the payloads' dense values (scale 1, payload
// order), formed a cache-sized tile at a time and consumed there: the bits of qsgd_decode_sum then
// sgd_step, without g going through memory. Every payload is validated (header, norms, and every
// code where a level field can exceed the levels) before w or buf is written.
struct SgdParams;
gc_status qsgd_decode_sgd(const uint8_t* const* payloads, const uint64_t* bytes, uint32_t count, uint64_t n, float* w, float* buf,
                          const SgdParams& p);

// The element -> random word mapping (contract, shared with CUDA and the TS oracle):
// element i uses Philox block (i >> 6) * 16 + (i & 15), word (i >> 4) & 3. A group of 64
// consecutive elements is served by 16 blocks, so a 16-lane vector of one word covers 16
// consecutive elements.
}  // namespace gradcomp
