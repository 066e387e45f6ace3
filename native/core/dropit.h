// DropIT (Chen et al., ICLR'23): keep the k = ceil((1 - gamma) n) largest |x| of an activation in
// a compact form and rebuild the dense tensor for the backward pass. Layout in gradcomp.h.
#pragma once
#include "gradcomp/gradcomp.h"

namespace gradcomp {

// Layout and sizes: gc_dropit_layout_for / gc_dropit_packed_bytes in gradcomp.h.
gc_status dropit_pack(const float* x, uint64_t n, uint64_t k, uint8_t* out, uint64_t out_bytes, gc_scratch scratch);
// Scratch bytes dropit_pack needs (the banded pass's slabs, or the top-k fallback's).
uint64_t dropit_scratch_bytes(uint64_t n, uint64_t k);
// Validates the payload (header, size, bitmap popcount or strictly ascending in-range indices).
// Which path the last bitmap dropit_pack() on this thread took: 0 = banded threshold, 1 = the
// top-k fallback, -1 = indices layout (tests and the benchmark).
int last_dropit_path();
gc_status dropit_unpack(const uint8_t* in, uint64_t bytes, float* out, uint64_t out_len);

}  // namespace gradcomp
