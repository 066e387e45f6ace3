// DropIT pack/unpack on the GPU, byte-identical to native/core/dropit.cc: the kept entries are
// exactly the top-k selection (topk.cu), the payload layout (header, bitmap or indices, values
// in ascending index order) is the same, and unpack validates before it writes anything that
// an index could point outside of.
#include <cub/device/device_scan.cuh>
#include <thrust/iterator/transform_iterator.h>

#include "common.cuh"
#include "ops.h"

namespace gc_cuda {

namespace {


using Header = gc_dropit_header;
static_assert(sizeof(Header) == GC_DROPIT_HEADER_BYTES, "DropIT header must be 24 bytes");



// idx is ascending, so the lanes that share a bitmap word are neighbours: OR their bits along
// the run (a segmented scan) and let the run's last lane write it: about one atomic per word.
__global__ void k_set_bits(const uint32_t* __restrict__ idx, uint64_t k, uint32_t* __restrict__ words) {
  const uint32_t lane = threadIdx.x & 31;
  for (uint64_t base = static_cast<uint64_t>(blockIdx.x) * blockDim.x + (threadIdx.x - lane); base < k;
       base += static_cast<uint64_t>(gridDim.x) * blockDim.x) {
    const uint64_t j = base + lane;
    const bool valid = j < k;
    const uint32_t i = valid ? idx[j] : 0xffffffffu;
    const uint32_t w = i >> 5;
    uint32_t v = valid ? 1u << (i & 31) : 0u;
#pragma unroll
    for (int off = 1; off < 32; off <<= 1) {
      const uint32_t ov = __shfl_up_sync(0xffffffffu, v, off);
      const uint32_t ow = __shfl_up_sync(0xffffffffu, w, off);
      if (lane >= static_cast<uint32_t>(off) && ow == w) v |= ov;
    }
    const uint32_t nw = __shfl_down_sync(0xffffffffu, w, 1);
    if (valid && (lane == 31 || nw != w)) atomicOr(words + w, v);
  }
}

__global__ void k_check_indices(const uint32_t* __restrict__ idx, uint64_t k, uint64_t n, uint32_t* bad) {
  bool err = false;
  for (uint64_t j = static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x; j < k; j += static_cast<uint64_t>(gridDim.x) * blockDim.x) {
    const uint32_t i = idx[j];
    if (i >= n || (j > 0 && i <= idx[j - 1])) err = true;
  }
  if (err) atomicOr(bad, 1u);
}

__global__ void k_scatter(const uint32_t* __restrict__ idx, const float* __restrict__ vals, uint64_t k, float* __restrict__ out) {
  for (uint64_t j = static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x; j < k; j += static_cast<uint64_t>(gridDim.x) * blockDim.x)
    out[idx[j]] = vals[j];
}

struct Popc {
  __device__ uint32_t operator()(uint32_t w) const { return static_cast<uint32_t>(__popc(w)); }
};

// Bits past n (tail of the last word, padding words) must be zero.
__global__ void k_check_tail(const uint32_t* __restrict__ words, uint64_t n, uint64_t nwords, uint32_t* bad) {
  const uint64_t w = n / 32;
  if (threadIdx.x == 0 && w < nwords) {
    const uint32_t tail = static_cast<uint32_t>(n % 32);
    if ((words[w] >> tail) != 0 && tail != 0) atomicOr(bad, 1u);
    if (tail == 0 && words[w] != 0) atomicOr(bad, 1u);
  }
}

__global__ void k_expand(const uint32_t* __restrict__ words, const uint32_t* __restrict__ scan, const float* __restrict__ vals,
                         uint64_t n, float* __restrict__ out) {
  // Four consecutive elements per thread: one bitmap word and one scan entry serve them all.
  const uint64_t quads = (n + 3) / 4;
  for (uint64_t q = static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x; q < quads; q += static_cast<uint64_t>(gridDim.x) * blockDim.x) {
    const uint64_t i0 = 4 * q;
    const uint32_t w = __ldg(words + (i0 >> 5)), base = __ldg(scan + (i0 >> 5));
    const uint32_t b0 = static_cast<uint32_t>(i0 & 31);
    uint32_t rank = __popc(w & ((1u << b0) - 1u));
    float v[4];
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      v[e] = 0.0f;
      if ((w >> (b0 + e)) & 1u) v[e] = __ldg(vals + base + rank++);
    }
    if (i0 + 4 <= n) {
      *reinterpret_cast<float4*>(out + i0) = make_float4(v[0], v[1], v[2], v[3]);
    } else {
      for (int e = 0; e < 4; ++e)
        if (i0 + e < n) out[i0 + e] = v[e];
    }
  }
}

}  // namespace

gc_status dropit_pack(const float* x, uint64_t n, uint64_t k, uint8_t* out, uint64_t out_bytes, cudaStream_t s) {
  if ((x == nullptr && n > 0) || out == nullptr || k > n || n > 0xffffffffULL) return GC_ERR_INVALID_ARG;
  if (out_bytes != gc_dropit_packed_bytes(n, k)) return GC_ERR_INVALID_ARG;
  const int layout = gc_dropit_layout_for(n, k);
  Header h{GC_DROPIT_MAGIC, GC_DROPIT_VERSION, static_cast<uint8_t>(layout), 0, n, k};
  k_write_struct<<<1, 32, 0, s>>>(out, h);
  GC_LAUNCHED(k_write_struct);
  uint8_t* body = out + GC_DROPIT_HEADER_BYTES;
  float* xs = const_cast<float*>(x);  // plain top-k only reads it
  if (layout == GC_DROPIT_INDICES)
    return topk(nullptr, xs, n, k, 1.0f, reinterpret_cast<uint32_t*>(body), reinterpret_cast<float*>(body + 4 * k), s);
  const uint64_t bm = gc_dropit_bitmap_bytes(n);
  gc_status st = GC_OK;
  auto* idx = static_cast<uint32_t*>(scratch(Slot::DropitIdx, k * 4, &st));
  if (st != GC_OK) return st;
  GC_TRY(topk(nullptr, xs, n, k, 1.0f, idx, reinterpret_cast<float*>(body + bm), s));
  GC_CU(cudaMemsetAsync(body, 0, bm, s));
  if (k > 0) {
    k_set_bits<<<grid_for(k, 256), 256, 0, s>>>(idx, k, reinterpret_cast<uint32_t*>(body));
    GC_LAUNCHED(k_set_bits);
  }
  return GC_OK;
}

gc_status dropit_unpack(const uint8_t* in, uint64_t bytes, float* out, uint64_t out_len, cudaStream_t s) {
  if (in == nullptr || bytes < GC_DROPIT_HEADER_BYTES) return GC_ERR_CORRUPT_PAYLOAD;
  Header h;
  GC_TRY(read_back(&h, in, sizeof h, s));
  if (!gc_dropit_header_ok(&h, bytes)) return GC_ERR_CORRUPT_PAYLOAD;
  if (out_len != h.n || (out == nullptr && h.n > 0)) return GC_ERR_INVALID_ARG;
  const uint64_t n = h.n, k = h.k;
  if (n == 0) return GC_OK;
  const uint8_t* body = in + GC_DROPIT_HEADER_BYTES;
  gc_status st = GC_OK;
  auto* flag = static_cast<uint32_t*>(scratch(Slot::DropitFlag, 16, &st));
  if (st != GC_OK) return st;
  GC_CU(cudaMemsetAsync(flag, 0, 16, s));
  if (h.layout == GC_DROPIT_INDICES) {
    const auto* idx = reinterpret_cast<const uint32_t*>(body);
    if (k > 0) {
      k_check_indices<<<grid_for(k, 256), 256, 0, s>>>(idx, k, n, flag);
      GC_LAUNCHED(k_check_indices);
    }
    uint32_t bad = 0;
    GC_TRY(read_back(&bad, flag, 4, s));
    if (bad) return GC_ERR_CORRUPT_PAYLOAD;
    GC_CU(cudaMemsetAsync(out, 0, n * 4, s));
    if (k > 0) {
      k_scatter<<<grid_for(k, 256), 256, 0, s>>>(idx, reinterpret_cast<const float*>(body + 4 * k), k, out);
      GC_LAUNCHED(k_scatter);
    }
    return GC_OK;
  }
  const uint64_t nwords = gc_dropit_bitmap_bytes(n) / 4;
  const auto* words = reinterpret_cast<const uint32_t*>(body);
  auto* scan = static_cast<uint32_t*>(scratch(Slot::DropitScan, nwords * 4, &st));
  if (st != GC_OK) return st;
  auto pop = thrust::make_transform_iterator(words, Popc{});
  GC_TRY(cub_run([&](void* temp, size_t& tb) {
    return cub::DeviceScan::ExclusiveSum(temp, tb, pop, scan, static_cast<int64_t>(nwords), s);
  }));
  k_check_tail<<<1, 32, 0, s>>>(words, n, nwords, flag);
  GC_LAUNCHED(k_check_tail);
  uint32_t host[3] = {0, 0, 0};
  GC_CU(cudaMemcpyAsync(host, flag, 4, cudaMemcpyDeviceToHost, s));
  GC_CU(cudaMemcpyAsync(host + 1, scan + (nwords - 1), 4, cudaMemcpyDeviceToHost, s));
  GC_CU(cudaMemcpyAsync(host + 2, words + (nwords - 1), 4, cudaMemcpyDeviceToHost, s));
  GC_CU(cudaStreamSynchronize(s));
  const uint64_t total = static_cast<uint64_t>(host[1]) + static_cast<uint64_t>(__builtin_popcount(host[2]));
  if (host[0] || total != k) return GC_ERR_CORRUPT_PAYLOAD;
  k_expand<<<grid_for((n + 3) / 4, 256, 8), 256, 0, s>>>(words, scan, reinterpret_cast<const float*>(body + gc_dropit_bitmap_bytes(n)), n, out);
  GC_LAUNCHED(k_expand);
  return GC_OK;
}

}  // namespace gc_cuda
