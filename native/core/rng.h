// Philox-4x32-10 streams for the TypeScript layer (rand-k supports, PowerSGD's shared initial Q):
// element i of a (seed, step, stream) fill uses the same block/word mapping as QSGD (qsgd.h), so
// every worker that shares the key draws the same numbers on any thread count.
#pragma once
#include "gradcomp/gradcomp.h"

namespace gradcomp {

// kind 0: uniform [0, 1) with 24 bits; kind 1: standard normal (Box-Muller on words i and i^1
// of the same block pair: even i takes the cosine branch, odd i the sine branch).
gc_status philox_fill(float* out, uint64_t n, uint64_t seed, uint32_t step, uint32_t stream, int kind);

}  // namespace gradcomp
