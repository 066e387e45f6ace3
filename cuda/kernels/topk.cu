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
// This file holds the entry point and the sampled pass; topk_select.cu the exact cut (steps 1-4
// over the tensor or the candidates); topk_detail.cuh what they share.
#include <cub/device/device_radix_sort.cuh>

#include <cmath>

#include "topk_detail.cuh"

namespace gc_cuda {
namespace topk_detail {

thread_local int t_path = -1;

namespace {

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

}  // namespace
}  // namespace topk_detail

using namespace topk_detail;

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
