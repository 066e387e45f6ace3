// TracIn on the GPU, bit-identical to the CPU path of lib/analysis/tracin.ts:
// - tracin_score: S[i, j] += eta * (a_i . b_j) * (d_i . e_j), the factorized last-layer score.
//   Each dot product is summed in float32 with k ascending and no contraction (the CPU gemm's
//   order: acc = 0, then acc = acc + x_k * y_k rounded at each step), and the update is evaluated
//   in float64 as ((eta * aa) * dd) + S, rounded once (native/core/vector.cc's vec_mul_add).
// - rows_sumsq: out[r] = sum over the row of x^2 in float64, eight interleaved partial sums
//   combined pairwise (native/core/vector.cc's rows_sumsq).
// One thread per output element: the factors are short (the last layer's inputs and classes),
// so the work is bound by reading them, which the 32 x 8 tiles below share through L1/L2.
#include "common.cuh"
#include "ops.h"

namespace gc_cuda {

namespace {

__device__ __forceinline__ float dot_in_order(const float* __restrict__ x, const float* __restrict__ y, uint64_t k) {
  float acc = 0.0f;
  for (uint64_t t = 0; t < k; ++t) acc = __fadd_rn(acc, __fmul_rn(x[t], y[t]));
  return acc;
}

__global__ void k_tracin_score(const float* __restrict__ a, const float* __restrict__ b, const float* __restrict__ d, const float* __restrict__ e,
                               uint64_t n, uint64_t m, uint64_t p, uint64_t c, double eta, float* __restrict__ s) {
  const uint64_t j = static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const uint64_t i = static_cast<uint64_t>(blockIdx.y) * blockDim.y + threadIdx.y;
  if (i >= n || j >= m) return;
  const float aa = dot_in_order(a + i * p, b + j * p, p);
  const float dd = dot_in_order(d + i * c, e + j * c, c);
  float* out = s + i * m + j;
  *out = static_cast<float>(__dadd_rn(__dmul_rn(__dmul_rn(eta, static_cast<double>(aa)), static_cast<double>(dd)), static_cast<double>(*out)));
}

__global__ void k_rows_sumsq(const float* __restrict__ x, uint64_t rows, uint64_t cols, double* __restrict__ out) {
  for (uint64_t r = static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x; r < rows; r += static_cast<uint64_t>(gridDim.x) * blockDim.x) {
    double part[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    const float* row = x + r * cols;
    for (uint64_t t = 0; t < cols; ++t) {
      const double v = row[t];
      part[t & 7] = __dadd_rn(part[t & 7], __dmul_rn(v, v));
    }
    out[r] = __dadd_rn(__dadd_rn(__dadd_rn(part[0], part[1]), __dadd_rn(part[2], part[3])),
                       __dadd_rn(__dadd_rn(part[4], part[5]), __dadd_rn(part[6], part[7])));
  }
}

}  // namespace

gc_status tracin_score(const float* a, const float* b, const float* d, const float* e, uint64_t n, uint64_t m, uint64_t p, uint64_t c,
                       double eta, float* s, cudaStream_t st) {
  if (n == 0 || m == 0) return GC_OK;
  if (s == nullptr || (p > 0 && (a == nullptr || b == nullptr)) || (c > 0 && (d == nullptr || e == nullptr))) return GC_ERR_INVALID_ARG;
  const dim3 threads(32, 8);
  const uint64_t gx = (m + threads.x - 1) / threads.x, gy = (n + threads.y - 1) / threads.y;
  if (gx > 0x7fffffffULL || gy > 65535ULL) return GC_ERR_INVALID_ARG;  // beyond one launch's grid
  k_tracin_score<<<dim3(static_cast<unsigned>(gx), static_cast<unsigned>(gy)), threads, 0, st>>>(a, b, d, e, n, m, p, c, eta, s);
  GC_LAUNCHED("tracin_score");
  return GC_OK;
}

gc_status rows_sumsq(const float* x, uint64_t rows, uint64_t cols, double* out, cudaStream_t st) {
  if (rows == 0) return GC_OK;
  if (out == nullptr || (cols > 0 && x == nullptr)) return GC_ERR_INVALID_ARG;
  k_rows_sumsq<<<grid_for(rows, 256), 256, 0, st>>>(x, rows, cols, out);
  GC_LAUNCHED("rows_sumsq");
  return GC_OK;
}

}  // namespace gc_cuda
