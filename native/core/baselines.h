// Baselines measured by the benchmark suite in the same run as our kernels. Not part of the
// public API: they exist so that every ratio in bench/ is against code run on the same machine.
#pragma once
#include <cstddef>
#include <cstdint>

namespace gradcomp {

// The std::nth_element composite for EF top-k (specs/performance.md §5.2): acc = g + r into r,
// a |acc| copy, nth_element for the k-th magnitude, then a filter pass that emits the winners
// and zeroes them in r. Single-threaded, as a typical C++ implementation is.
void baseline_nth_element_ef_topk(const float* g, float* r, uint64_t n, uint64_t k, uint32_t* out_idx,
                                  float* out_val);
// memcpy split across the pool: the machine's copy bandwidth for the floor ratios.
void baseline_parallel_memcpy(void* dst, const void* src, size_t bytes);

}  // namespace gradcomp
