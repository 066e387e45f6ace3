// The GPU section of the benchmark suite, native side: allocates its inputs, fills them on the
// device (Philox), and times `reps` runs of one op with CUDA events after 3 warm-ups. Before
// each timed run the inputs that the op consumes are restored and a 256 MiB buffer is written,
// so no run finds the previous one's data in L2 (50 MB on an H100).
#pragma once
#include <cuda_runtime.h>

#include <string>
#include <vector>

#include "gradcomp/gradcomp.h"

namespace gc_cuda {
// op: copy | eftopk | topk | qsgd-encode | qsgd-decode | powersgd | orth | dropit-pack | dropit-unpack
// n: elements (powersgd/orth: batch); a, b, c: op parameters (see bench.cu); times: ms per run.
gc_status bench(const std::string& op, uint64_t n, double a, double b, double c, int reps, cudaStream_t s,
                std::vector<double>* times);
}  // namespace gc_cuda
