// The exact part of the GPU top-k (topk.cu has the overview and the entry point): histograms of
// the key bits over the tensor or the candidates, the cut at the k-th key with ties by index, and
// the ordered compaction (CUB DeviceSelect) of exactly k winners.
#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_select.cuh>
#include <thrust/iterator/counting_iterator.h>
#include <thrust/iterator/tabulate_output_iterator.h>

#include "topk_detail.cuh"

namespace gc_cuda {
namespace topk_detail {

namespace {

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

}  // namespace

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

}  // namespace topk_detail
}  // namespace gc_cuda
