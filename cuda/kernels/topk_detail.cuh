// The pieces of the GPU top-k (topk.cu: the entry point and the sampled pass; topk_select.cu:
// the exact radix cut and the ordered compaction) that both translation units need: the launch
// constants, the counter layout, the device helpers (inline into each kernel that uses them; no
// relocatable device code) and the host steps topk() calls.
#pragma once

#include <cstdint>

#include "common.cuh"
#include "ops.h"

namespace gc_cuda {
namespace topk_detail {

constexpr int kThreads = 512;
constexpr int kTile = kThreads * 4;  // elements per block per step: 4 consecutive per thread
constexpr int kBins = 2048;
constexpr int kSamples = 65536;

// Counter block layout (uint32 words): hist1 | hist2 | hist3 | counters.
constexpr int kHist1 = 0, kHist2 = kBins, kHist3 = 2 * kBins, kCount = 2 * kBins + 512;
constexpr int kCounterWords = 2 * kBins + 512 + 16;

// Which path the last topk() on this thread took (last_topk_path(), for the tests).
extern thread_local int t_path;

// x86's NaN rules, so a NaN in grad or residual leaves the same bits as on the CPU: an operation
// returns its first NaN operand, quieted; an invalid one (0 * inf, inf - inf) the default NaN
// 0xffc00000. (CUDA would return 0x7fffffff.)
__device__ __forceinline__ float x86_nan(float a, float b) {
  if (isnan(a)) return __uint_as_float(__float_as_uint(a) | 0x400000u);
  if (isnan(b)) return __uint_as_float(__float_as_uint(b) | 0x400000u);
  return __uint_as_float(0xffc00000u);
}
__device__ __forceinline__ float ef_acc(float scale, float g, float r) {
  float t = __fmul_rn(scale, g);
  if (isnan(t)) t = x86_nan(scale, g);
  const float v = __fadd_rn(t, r);
  return isnan(v) ? x86_nan(t, r) : v;
}

// Block-wide reservation: every thread of the block calls it (block-uniform control flow) with
// the number of slots it wants; one atomicAdd per block. Returns the thread's first slot.
__device__ __forceinline__ uint32_t block_reserve(uint32_t cnt, uint32_t* counter, uint32_t* s_warp) {
  const uint32_t lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  uint32_t v = cnt;
#pragma unroll
  for (int off = 1; off < 32; off <<= 1) {
    const uint32_t t = __shfl_up_sync(0xffffffffu, v, off);
    if (lane >= static_cast<uint32_t>(off)) v += t;
  }
  if (lane == 31) s_warp[warp] = v;
  __syncthreads();
  if (threadIdx.x == 0) {
    uint32_t tot = 0;
    for (uint32_t w = 0; w < blockDim.x / 32; ++w) {
      const uint32_t t = s_warp[w];
      s_warp[w] = tot;
      tot += t;
    }
    s_warp[32] = tot ? atomicAdd(counter, tot) : 0u;
  }
  __syncthreads();
  const uint32_t base = s_warp[32] + s_warp[warp] + v - cnt;
  __syncthreads();
  return base;
}

// Loads elements [i, i + 4) (those < n) of x (and g): acc for EF, written back.
template <bool EF>
__device__ __forceinline__ void load4(const float* __restrict__ g, float* __restrict__ x, uint64_t i, uint64_t n, float scale,
                                      bool vec, float v[4]) {
  if (vec && i + 4 <= n) {
    float4 q = *reinterpret_cast<const float4*>(x + i);
    if (EF) {
      const float4 gv = __ldg(reinterpret_cast<const float4*>(g + i));
      q.x = ef_acc(scale, gv.x, q.x);
      q.y = ef_acc(scale, gv.y, q.y);
      q.z = ef_acc(scale, gv.z, q.z);
      q.w = ef_acc(scale, gv.w, q.w);
      *reinterpret_cast<float4*>(x + i) = q;
    }
    v[0] = q.x; v[1] = q.y; v[2] = q.z; v[3] = q.w;
    return;
  }
#pragma unroll
  for (int e = 0; e < 4; ++e) {
    v[e] = 0.0f;
    if (i + e < n) {
      float a = x[i + e];
      if (EF) {
        a = ef_acc(scale, g[i + e], a);
        x[i + e] = a;
      }
      v[e] = a;
    }
  }
}

// The selection threshold: take key > T, and key == T where index < ilim.
struct Cut { uint32_t T, ilim; };

// Exact cut among c candidates holding the top `need` keys, sharing key >> shift == prefix at
// `level` (0: all keys; 1: the bin b1); topk_select.cu.
gc_status cut_candidates(const uint32_t* ckey, const uint32_t* cidx, uint64_t c, uint64_t need, int level, uint32_t prefix,
                         uint32_t* ctr, uint32_t* hh, cudaStream_t s, Cut* cut);
// Ordered compaction of the whole tensor, or of the candidates, with the cut: exactly k winners.
gc_status select_all(const float* x, uint64_t n, uint64_t k, Cut cut, uint32_t* out_idx, float* out_val, uint32_t* ctr,
                     cudaStream_t s);
gc_status select_candidates(const float* x, const uint32_t* ckey, const uint32_t* cidx, uint64_t n, uint64_t c, uint64_t k,
                            Cut cut, uint32_t* out_idx, float* out_val, uint32_t* ctr, cudaStream_t s);
// The histogram path over x (which already holds acc).
gc_status radix_path(float* x, uint64_t n, uint64_t k, uint32_t* out_idx, float* out_val, uint32_t* ctr, uint32_t* hh,
                     cudaStream_t s);

}  // namespace topk_detail
}  // namespace gc_cuda
