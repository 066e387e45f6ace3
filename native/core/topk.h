// Exact top-k by magnitude, fused with error feedback (see gc_topk_desc in gradcomp.h).
#pragma once
#include "gradcomp/gradcomp.h"

namespace gradcomp {

// Fused EF top-k when d.grad != nullptr, plain top-k of d.residual otherwise.
// Selection: k largest |v| by the bits of |v| (NaN > +Inf > finite), ties to the lower index,
// output in ascending index order, exactly k entries.
gc_status topk(const gc_topk_desc& d);
// Scratch bytes topk() needs for n elements and k winners (a function of the sizes only).
uint64_t topk_scratch_bytes(uint64_t n, uint64_t k);

// Which path the last topk() on this thread took (for tests and the benchmark):
// 0 = direct radix (small n), 1 = sampled candidates, 2 = sampled threshold exactly at the
// k-th value (ties rescanned), 3 = fallback radix after the sample misjudged.
int last_topk_path();

}  // namespace gradcomp
