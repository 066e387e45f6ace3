// Exact top-k by magnitude on the GPU, fused with error feedback: the same answer as
// native/core/topk.cc (k largest |v| compared by the bits of |v|, NaN > +Inf > finite, ties to
// the lower index, exactly k entries in ascending index order; residual = acc with the winners
// zeroed, acc = scale*grad + residual rounded as on the CPU: a multiply, then an add).
//
// Radix select on the 31-bit key, 11 + 11 + 9 bits:
//   1. one pass: (EF) acc written back, histogram of key >> 20; the host finds the bin b1
//      holding the k-th key;
//   2. one pass collects the keys and indices of bin b1 (exactly hist[b1] of them, so the buffer
//      is sized before the pass) and histograms their next 11 bits; the host finds b2;
//   3. the last 9 bits come from the candidates alone; ties at the k-th key are ordered by index
//      (a radix sort of the tied indices, rare outside adversarial inputs);
//   4. one ordered compaction (CUB DeviceSelect, decoupled look-back) with the exact predicate
//      key > T || (key == T && i < ilim) writes indices and values in ascending index order.
// Steps 2-3 are skipped when the k-th key ends a bin exactly. Traffic: 12 B/element for the EF
// pass (4 for plain top-k) plus two reads of acc.
#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_select.cuh>
#include <thrust/iterator/counting_iterator.h>
#include <thrust/iterator/tabulate_output_iterator.h>

#include <cmath>

#include "common.cuh"
#include "ops.h"

namespace gc_cuda {

namespace {

constexpr int kThreads = 512;
constexpr int kTile = kThreads * 4;  // elements per block per step: 4 consecutive per thread
constexpr int kBins = 2048;
constexpr int kSamples = 65536;
thread_local int t_path = -1;

// Counter block layout (uint32 words): hist1 | hist2 | hist3 | counters.
constexpr int kHist1 = 0, kHist2 = kBins, kHist3 = 2 * kBins, kCount = 2 * kBins + 512;
constexpr int kCounterWords = 2 * kBins + 512 + 16;

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

// Histogram of key >> 20 over x (read-only here: EF is applied before, see topk()). Lanes
// hitting the same bin are merged first (match.any), so skewed data costs few shared atomics.
__global__ void __launch_bounds__(kThreads) k_hist1(const float* __restrict__ x, uint64_t n, uint32_t* __restrict__ hist) {
  __shared__ uint32_t h[kBins];
  for (int b = threadIdx.x; b < kBins; b += blockDim.x) h[b] = 0;
  __syncthreads();
  const bool vec = (reinterpret_cast<uintptr_t>(x) & 15) == 0;
  const uint32_t lane = threadIdx.x & 31;
  for (uint64_t t0 = static_cast<uint64_t>(blockIdx.x) * kTile; t0 < n; t0 += static_cast<uint64_t>(gridDim.x) * kTile) {
    const uint64_t i = t0 + 4ull * threadIdx.x;
    float v[4];
    load4<false>(nullptr, const_cast<float*>(x), i, n, 1.0f, vec, v);
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const bool valid = i + e < n;
      const uint32_t bin = valid ? (mag_key(v[e]) >> 20) : 0xffffu;
      const unsigned peers = __match_any_sync(0xffffffffu, bin);
      if (valid && lane == static_cast<uint32_t>(__ffs(peers) - 1)) atomicAdd(&h[bin], static_cast<uint32_t>(__popc(peers)));
    }
  }
  __syncthreads();
  for (int b = threadIdx.x; b < kBins; b += blockDim.x)
    if (h[b]) atomicAdd(&hist[b], h[b]);
}

// Collects (key, index) of every element whose key >> 20 == b1 (the cut then histograms them).
__global__ void __launch_bounds__(kThreads) k_collect(const float* __restrict__ x, uint64_t n, uint32_t b1,
                                                      uint32_t* __restrict__ ckey, uint32_t* __restrict__ cidx,
                                                      uint32_t* counter, uint32_t cap) {
  __shared__ uint32_t s_warp[33];
  const bool vec = (reinterpret_cast<uintptr_t>(x) & 15) == 0;
  for (uint64_t t0 = static_cast<uint64_t>(blockIdx.x) * kTile; t0 < n; t0 += static_cast<uint64_t>(gridDim.x) * kTile) {
    const uint64_t i = t0 + 4ull * threadIdx.x;
    float v[4];
    load4<false>(nullptr, const_cast<float*>(x), i, n, 1.0f, vec, v);
    uint32_t cnt = 0, keys[4];
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      keys[e] = mag_key(v[e]);
      if (i + e < n && (keys[e] >> 20) == b1) ++cnt;
    }
    uint32_t slot = block_reserve(cnt, counter, s_warp);
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      if (i + e < n && (keys[e] >> 20) == b1) {
        if (slot < cap) {
          ckey[slot] = keys[e];
          cidx[slot] = static_cast<uint32_t>(i + e);
        }
        ++slot;
      }
    }
  }
}

// Keys of acc at kSamples evenly spread positions (read before the main pass changes x).
__global__ void k_sample(const float* __restrict__ g, const float* __restrict__ x, uint64_t n, float scale, uint32_t* keys) {
  for (uint32_t s = blockIdx.x * blockDim.x + threadIdx.x; s < kSamples; s += gridDim.x * blockDim.x) {
    const uint64_t p = ((2ull * s + 1) * n) / (2ull * kSamples);
    const float v = g ? ef_acc(scale, g[p], x[p]) : x[p];
    keys[s] = mag_key(v);
  }
}

// The main pass of the sampled path: (EF) acc written back; (key, index) of every key >= t
// appended (one atomic per block step).
template <bool EF>
__global__ void __launch_bounds__(kThreads) k_pass_threshold(const float* __restrict__ g, float* __restrict__ x, uint64_t n,
                                                             float scale, uint32_t t, uint32_t* __restrict__ ckey,
                                                             uint32_t* __restrict__ cidx, uint32_t* counter, uint32_t cap) {
  __shared__ uint32_t s_warp[33];
  const uintptr_t align = reinterpret_cast<uintptr_t>(x) | (EF ? reinterpret_cast<uintptr_t>(g) : 0);
  const bool vec = (align & 15) == 0;
  for (uint64_t t0 = static_cast<uint64_t>(blockIdx.x) * kTile; t0 < n; t0 += static_cast<uint64_t>(gridDim.x) * kTile) {
    const uint64_t i = t0 + 4ull * threadIdx.x;
    float v[4];
    load4<EF>(g, x, i, n, scale, vec, v);
    uint32_t cnt = 0;
#pragma unroll
    for (int e = 0; e < 4; ++e) cnt += (i + e < n && mag_key(v[e]) >= t) ? 1u : 0u;
    uint32_t slot = block_reserve(cnt, counter, s_warp);
    if (cnt) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const uint32_t key = mag_key(v[e]);
        if (i + e < n && key >= t) {
          if (slot < cap) {
            ckey[slot] = key;
            cidx[slot] = static_cast<uint32_t>(i + e);
          }
          ++slot;
        }
      }
    }
  }
}

// Histogram of ((key >> bin_shift) & mask) over candidate keys whose key >> pre_shift == prefix.
__global__ void k_cand_hist(const uint32_t* __restrict__ ckey, uint32_t c, int pre_shift, uint32_t prefix, int bin_shift,
                            uint32_t mask, uint32_t* __restrict__ hist) {
  __shared__ uint32_t h[kBins];
  for (int b = threadIdx.x; b < kBins; b += blockDim.x) h[b] = 0;
  __syncthreads();
  for (uint32_t j = blockIdx.x * blockDim.x + threadIdx.x; j < c; j += gridDim.x * blockDim.x) {
    const uint32_t key = ckey[j];
    if ((pre_shift >= 32 ? 0u : (key >> pre_shift)) == prefix) atomicAdd(&h[(key >> bin_shift) & mask], 1u);
  }
  __syncthreads();
  for (uint32_t b = threadIdx.x; b <= mask; b += blockDim.x)
    if (h[b]) atomicAdd(&hist[b], h[b]);
}

__global__ void k_cand_ties(const uint32_t* __restrict__ ckey, const uint32_t* __restrict__ cidx, uint32_t c, uint32_t T,
                            uint32_t* __restrict__ ties, uint32_t* counter, uint32_t cap) {
  const uint32_t lane = threadIdx.x & 31;
  for (uint32_t base = blockIdx.x * blockDim.x + (threadIdx.x - lane); base < c; base += gridDim.x * blockDim.x) {
    const uint32_t j = base + lane;
    const bool take = j < c && ckey[j] == T;
    const uint32_t slot = warp_append(take, counter);
    if (take && slot < cap) ties[slot] = cidx[j];
  }
}

struct SelectPred {
  const float* x;
  uint32_t T, ilim;
  __device__ bool operator()(uint32_t i) const {
    const uint32_t key = mag_key(__ldg(x + i));
    return key > T || (key == T && i < ilim);
  }
};

// Output of the compaction: index and value, never past k (a guard, not a path).
struct SelectWrite {
  const float* x;
  uint32_t* idx;
  float* val;
  int64_t k;
  __device__ void operator()(int64_t j, uint32_t i) const {
    if (j >= k) return;
    idx[j] = i;
    if (val) val[j] = x[i];
  }
};

// The same over index-sorted candidates: item j is candidate j.
struct CandPred {
  const uint32_t* key;
  const uint32_t* idx;
  uint32_t T, ilim;
  __device__ bool operator()(uint32_t j) const {
    const uint32_t k = key[j];
    return k > T || (k == T && idx[j] < ilim);
  }
};
struct CandWrite {
  const uint32_t* cidx;
  const float* x;
  uint32_t* idx;
  float* val;
  int64_t k;
  __device__ void operator()(int64_t o, uint32_t j) const {
    if (o >= k) return;
    const uint32_t i = cidx[j];
    idx[o] = i;
    if (val) val[o] = x[i];
  }
};

__global__ void k_zero_at(float* __restrict__ x, const uint32_t* __restrict__ idx, uint64_t k) {
  for (uint64_t j = static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x; j < k; j += static_cast<uint64_t>(gridDim.x) * blockDim.x)
    x[idx[j]] = 0.0f;
}

// k == 0 (EF: acc only) and k == n (everything, in order).
template <bool EF, bool ALL>
__global__ void k_trivial(const float* __restrict__ g, float* __restrict__ x, uint64_t n, float scale,
                          uint32_t* __restrict__ idx, float* __restrict__ val) {
  for (uint64_t i = static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += static_cast<uint64_t>(gridDim.x) * blockDim.x) {
    const float v = EF ? ef_acc(scale, g[i], x[i]) : x[i];
    if (ALL) {
      idx[i] = static_cast<uint32_t>(i);
      if (val) val[i] = v;
    }
    if (EF) x[i] = ALL ? 0.0f : v;
  }
}

// The bin of the k-th largest key: scanning from the top, the first bin where the running count
// reaches k. Returns the bin and how many to take from it.
void find_bin(const uint32_t* h, int bins, uint64_t k, uint32_t* bin, uint64_t* need) {
  uint64_t cum = 0;
  for (int b = bins - 1; b >= 0; --b) {
    if (cum + h[b] >= k) { *bin = static_cast<uint32_t>(b); *need = k - cum; return; }
    cum += h[b];
  }
  *bin = 0;
  *need = k - (cum - h[0]);
}

// The selection threshold: take key > T, and key == T where index < ilim.
struct Cut { uint32_t T, ilim; };

// Exact cut among c candidates (keys ckey, indices cidx, unordered) that hold the top `need`
// keys of the tensor, given that their keys share the prefix key >> pre_shift == prefix (level
// 0: all keys; level 1: the bin b1). Levels of 11, 11 and 9 bits; ties by index via a sort.
gc_status cut_candidates(const uint32_t* ckey, const uint32_t* cidx, uint64_t c, uint64_t need, int level, uint32_t prefix,
                         uint32_t* ctr, uint32_t* hh, cudaStream_t s, Cut* cut) {
  static const int kShift[3] = {20, 9, 0};
  static const uint32_t kMask[3] = {kBins - 1, kBins - 1, 511};
  const unsigned cgrid = grid_for(c, 256);
  for (; level < 3; ++level) {
    const int pre_shift = level == 0 ? 32 : kShift[level - 1];
    GC_CU(cudaMemsetAsync(ctr + kHist3, 0, 512 * 4, s));
    GC_CU(cudaMemsetAsync(ctr + kHist2, 0, kBins * 4, s));
    uint32_t* hist = level == 2 ? ctr + kHist3 : ctr + kHist2;
    k_cand_hist<<<cgrid, 256, 0, s>>>(ckey, static_cast<uint32_t>(c), pre_shift, prefix, kShift[level], kMask[level], hist);
    GC_LAUNCHED(k_cand_hist);
    GC_TRY(read_back(hh, hist, (kMask[level] + 1) * 4, s));
    uint32_t b;
    uint64_t nb;
    find_bin(hh, static_cast<int>(kMask[level] + 1), need, &b, &nb);
    const uint32_t p = (prefix << (level == 0 ? 0 : (kShift[level - 1] - kShift[level]))) | b;
    if (nb == hh[b]) {  // the cut closes this bin: every key >= p << shift is in
      cut->T = (p << kShift[level]) - 1;  // p > 0 here: 0 < need < number of keys overall
      cut->ilim = 0;
      return GC_OK;
    }
    prefix = p;
    need = nb;
    if (level == 2) {
      const uint64_t cntT = hh[b];
      cut->T = p;
      // need < cntT: the `need` lowest indices among the ties at T win.
      gc_status st = GC_OK;
      auto* ties = static_cast<uint32_t*>(scratch(Slot::TopkTies, cntT * 4, &st));
      auto* sorted = static_cast<uint32_t*>(scratch(Slot::TopkTiesSorted, cntT * 4, &st));
      if (st != GC_OK) return st;
      GC_CU(cudaMemsetAsync(ctr + kCount + 1, 0, 4, s));
      k_cand_ties<<<cgrid, 256, 0, s>>>(ckey, cidx, static_cast<uint32_t>(c), p, ties, ctr + kCount + 1, static_cast<uint32_t>(cntT));
      GC_LAUNCHED(k_cand_ties);
      GC_TRY(cub_run([&](void* temp, size_t& tb) {
        return cub::DeviceRadixSort::SortKeys(temp, tb, ties, sorted, static_cast<int64_t>(cntT), 0, 32, s);
      }));
      uint32_t got[2];
      GC_TRY(read_back(got, sorted + (need - 1), 4, s));
      GC_TRY(read_back(got + 1, ctr + kCount + 1, 4, s));
      if (got[1] != cntT) return GC_ERR_INTERNAL;
      cut->ilim = got[0] + 1;
      t_path = 2;
      return GC_OK;
    }
  }
  return GC_ERR_INTERNAL;
}

// Ordered compaction of the whole tensor with the cut: exactly k winners, ascending index.
gc_status select_all(const float* x, uint64_t n, uint64_t k, Cut cut, uint32_t* out_idx, float* out_val, uint32_t* ctr,
                     cudaStream_t s) {
  auto* num = reinterpret_cast<int64_t*>(ctr + kCount + 2);
  auto in = thrust::counting_iterator<uint32_t>(0);
  auto out = thrust::make_tabulate_output_iterator(SelectWrite{x, out_idx, out_val, static_cast<int64_t>(k)});
  SelectPred pred{x, cut.T, cut.ilim};
  GC_TRY(cub_run([&](void* temp, size_t& tb) {
    return cub::DeviceSelect::If(temp, tb, in, out, num, static_cast<int64_t>(n), pred, s);
  }));
  int64_t selected = -1;
  GC_TRY(read_back(&selected, num, 8, s));
  return selected == static_cast<int64_t>(k) ? GC_OK : GC_ERR_INTERNAL;
}

// The same over the c candidates, sorted by index first (cheaper than a pass over the tensor
// when k is small).
gc_status select_candidates(const float* x, const uint32_t* ckey, const uint32_t* cidx, uint64_t n, uint64_t c, uint64_t k,
                            Cut cut, uint32_t* out_idx, float* out_val, uint32_t* ctr, cudaStream_t s) {
  gc_status st = GC_OK;
  auto* sidx = static_cast<uint32_t*>(scratch(Slot::TopkSortIdx, c * 4, &st));
  auto* skey = static_cast<uint32_t*>(scratch(Slot::TopkSortVal, c * 4, &st));
  if (st != GC_OK) return st;
  int end_bit = 1;
  while (end_bit < 32 && (n - 1) >> end_bit) ++end_bit;
  GC_TRY(cub_run([&](void* temp, size_t& tb) {
    return cub::DeviceRadixSort::SortPairs(temp, tb, cidx, sidx, ckey, skey, static_cast<int64_t>(c), 0, end_bit, s);
  }));
  auto* num = reinterpret_cast<int64_t*>(ctr + kCount + 2);
  auto in = thrust::counting_iterator<uint32_t>(0);
  auto out = thrust::make_tabulate_output_iterator(CandWrite{sidx, x, out_idx, out_val, static_cast<int64_t>(k)});
  CandPred pred{skey, sidx, cut.T, cut.ilim};
  GC_TRY(cub_run([&](void* temp, size_t& tb) {
    return cub::DeviceSelect::If(temp, tb, in, out, num, static_cast<int64_t>(c), pred, s);
  }));
  int64_t selected = -1;
  GC_TRY(read_back(&selected, num, 8, s));
  return selected == static_cast<int64_t>(k) ? GC_OK : GC_ERR_INTERNAL;
}

// The histogram path over x (which already holds acc): robust to any distribution.
gc_status radix_path(float* x, uint64_t n, uint64_t k, uint32_t* out_idx, float* out_val, uint32_t* ctr, uint32_t* hh,
                     cudaStream_t s) {
  const unsigned grid = grid_for(n, kThreads);
  GC_CU(cudaMemsetAsync(ctr, 0, kCounterWords * 4, s));
  k_hist1<<<grid, kThreads, 0, s>>>(x, n, ctr + kHist1);
  GC_LAUNCHED(k_hist1);
  GC_TRY(read_back(hh, ctr + kHist1, kBins * 4, s));
  uint32_t b1;
  uint64_t need;
  find_bin(hh, kBins, k, &b1, &need);
  const uint64_t cnt1 = hh[b1];
  Cut cut{0, 0};
  if (need == cnt1) {
    cut.T = (b1 << 20) - 1;  // 0 < k < n: b1 > 0
    t_path = 0;
  } else {
    t_path = 1;
    gc_status st = GC_OK;
    auto* ckey = static_cast<uint32_t*>(scratch(Slot::TopkCandKey, cnt1 * 4, &st));
    auto* cidx = static_cast<uint32_t*>(scratch(Slot::TopkCandIdx, cnt1 * 4, &st));
    if (st != GC_OK) return st;
    k_collect<<<grid, kThreads, 0, s>>>(x, n, b1, ckey, cidx, ctr + kCount, static_cast<uint32_t>(cnt1));
    GC_LAUNCHED(k_collect);
    uint32_t got = 0;
    GC_TRY(read_back(&got, ctr + kCount, 4, s));
    if (got != cnt1) return GC_ERR_INTERNAL;
    GC_TRY(cut_candidates(ckey, cidx, cnt1, need, 1, b1, ctr, hh, s, &cut));
  }
  return select_all(x, n, k, cut, out_idx, out_val, ctr, s);
}

}  // namespace

int last_topk_path() { return t_path; }

gc_status topk(const float* grad, float* x, uint64_t n, uint64_t k, float scale, uint32_t* out_idx, float* out_val,
               cudaStream_t s) {
  if (k > n || n > 0xffffffffULL || (n > 0 && x == nullptr) || (k > 0 && out_idx == nullptr)) return GC_ERR_INVALID_ARG;
  if (n == 0) { t_path = 3; return GC_OK; }
  const bool ef = grad != nullptr;
  const unsigned grid = grid_for(n, kThreads);
  if (k == 0 || k == n) {
    t_path = 3;
    if (k == n) {
      if (ef) k_trivial<true, true><<<grid, kThreads, 0, s>>>(grad, x, n, scale, out_idx, out_val);
      else k_trivial<false, true><<<grid, kThreads, 0, s>>>(grad, x, n, scale, out_idx, out_val);
    } else if (ef) {
      k_trivial<true, false><<<grid, kThreads, 0, s>>>(grad, x, n, scale, out_idx, out_val);
    }
    GC_LAUNCHED(k_trivial);
    return GC_OK;
  }
  gc_status st = GC_OK;
  auto* ctr = static_cast<uint32_t*>(scratch(Slot::TopkCounters, kCounterWords * 4, &st));
  auto* hh = static_cast<uint32_t*>(host_staging(kCounterWords * 4, &st));
  if (st != GC_OK) return st;
  auto finish = [&](gc_status r) -> gc_status {
    if (r != GC_OK || !ef) return r;
    k_zero_at<<<grid_for(k, 256), 256, 0, s>>>(x, out_idx, k);
    GC_LAUNCHED(k_zero_at);
    return GC_OK;
  };
  if (n < (1u << 18)) {
    // Small tensors: apply EF in one pass, then the histogram path.
    if (ef) {
      k_trivial<true, false><<<grid, kThreads, 0, s>>>(grad, x, n, scale, nullptr, nullptr);
      GC_LAUNCHED(k_trivial);
    }
    return finish(radix_path(x, n, k, out_idx, out_val, ctr, hh, s));
  }
  // Sampled threshold: t such that about k (1 + 4 sigma) keys are >= t.
  auto* sample = static_cast<uint32_t*>(scratch(Slot::TopkSample, 2 * kSamples * 4, &st));
  if (st != GC_OK) return st;
  k_sample<<<kSamples / 256, 256, 0, s>>>(ef ? grad : nullptr, x, n, scale, sample);
  GC_LAUNCHED(k_sample);
  GC_TRY(cub_run([&](void* temp, size_t& tb) {
    return cub::DeviceRadixSort::SortKeysDescending(temp, tb, sample, sample + kSamples, kSamples, 0, 31, s);
  }));
  const double m = static_cast<double>(kSamples) * static_cast<double>(k) / static_cast<double>(n);
  const uint64_t j = static_cast<uint64_t>(std::ceil(m + 4.0 * std::sqrt(m) + 8.0));
  uint32_t t = 0;
  bool sampled = j < kSamples;
  if (sampled) {
    GC_TRY(read_back(&t, sample + kSamples + j, 4, s));
    sampled = t > 0;
  }
  uint64_t c = 0, cap = 0;
  uint32_t *ckey = nullptr, *cidx = nullptr;
  if (sampled) {
    const double expect = static_cast<double>(n) * static_cast<double>(j + 1) / kSamples;
    cap = static_cast<uint64_t>(2.0 * expect) + 65536;
    if (cap > n) cap = n;
    ckey = static_cast<uint32_t*>(scratch(Slot::TopkCandKey, cap * 4, &st));
    cidx = static_cast<uint32_t*>(scratch(Slot::TopkCandIdx, cap * 4, &st));
    if (st != GC_OK) return st;
    GC_CU(cudaMemsetAsync(ctr + kCount, 0, 4, s));
    if (ef) k_pass_threshold<true><<<grid, kThreads, 0, s>>>(grad, x, n, scale, t, ckey, cidx, ctr + kCount, static_cast<uint32_t>(cap));
    else k_pass_threshold<false><<<grid, kThreads, 0, s>>>(nullptr, x, n, scale, t, ckey, cidx, ctr + kCount, static_cast<uint32_t>(cap));
    GC_LAUNCHED(k_pass_threshold);
    uint32_t cc = 0;
    GC_TRY(read_back(&cc, ctr + kCount, 4, s));
    c = cc;
  } else if (ef) {
    k_trivial<true, false><<<grid, kThreads, 0, s>>>(grad, x, n, scale, nullptr, nullptr);
    GC_LAUNCHED(k_trivial);
  }
  if (!sampled || c < k || c > cap) {
    // The sample misjudged (or could not judge) the tail: x holds acc now; the histogram path.
    t_path = 4;
    return finish(radix_path(x, n, k, out_idx, out_val, ctr, hh, s));
  }
  t_path = 5;
  Cut cut{0, 0};
  if (c == k) {
    cut.T = t - 1;  // every candidate is in
  } else {
    GC_TRY(cut_candidates(ckey, cidx, c, k, 0, 0, ctr, hh, s, &cut));
  }
  if (k * 32 > n) return finish(select_all(x, n, k, cut, out_idx, out_val, ctr, s));
  return finish(select_candidates(x, ckey, cidx, n, c, k, cut, out_idx, out_val, ctr, s));
}

}  // namespace gc_cuda
