// QSGD encode/decode on the GPU, byte-identical to native/core/qsgd.cc: the same 24-byte
// header, per-bucket norms in the same fixed order (L2: 32 sequential fp64 lane sums, lane j
// taking bucket elements j, j+32, ..., then a halving tree, which is a warp's shuffle-down
// reduction), the same Philox mapping (element i of 64-element group g uses word (i>>4)&3 of
// block g*16 + (i&15)) and the same float rounding (explicit _rn intrinsics: no FMA contraction).
#include <cfloat>
#include "common.cuh"
#include "gradcomp/philox.h"
#include "ops.h"

namespace gc_cuda {

namespace {

constexpr int kEncThreads = 256;  // 256 threads x 4 elements: 16 groups of 64 per block

using Header = gc_qsgd_header;
static_assert(sizeof(Header) == GC_QSGD_HEADER_BYTES, "QSGD header must be 24 bytes");


// One bucket's norm by one warp, in the CPU's fixed order: lane j sums elements j, j+32, ...
// sequentially in fp64 (squares of floats are exact there), then the halving tree
// part[j] += part[j + off] for off = 16 .. 1, which is a shuffle-down reduction. NaN marks a
// bucket holding a non-finite value. Every lane returns the norm.
__device__ __forceinline__ float warp_norm(const float* v, uint64_t len, bool l2) {
  const uint32_t lane = threadIdx.x & 31;
  uint32_t maxkey = 0;
  double part = 0.0;
  for (uint64_t i = lane; i < len; i += 32) {
    const float x = v[i];
    maxkey = max(maxkey, mag_key(x));
    if (l2) {
      const double d = static_cast<double>(x);
      part = __dadd_rn(part, __dmul_rn(d, d));
    }
  }
  for (int off = 16; off >= 1; off >>= 1) {
    maxkey = max(maxkey, __shfl_xor_sync(0xffffffffu, maxkey, off));
    part = __dadd_rn(part, __shfl_down_sync(0xffffffffu, part, off));
  }
  part = __shfl_sync(0xffffffffu, part, 0);
  if (maxkey >= 0x7f800000u) return __uint_as_float(0x7fc00000u);
  if (!l2) return __uint_as_float(maxkey);
  return static_cast<float>(fmin(sqrt(part), static_cast<double>(FLT_MAX)));  // as the CPU: finite buckets stay decodable
}

// Packs the 1024 codes c[] of the span starting at element `base` (a multiple of 1024, so its
// bits start on a 32-bit boundary) LSB-first into `codes`; the block's threads write whole
// words, bytewise at the payload's end.
__device__ __forceinline__ void pack_span(const uint32_t* c, uint32_t bits, uint64_t base, uint8_t* codes, uint64_t code_bytes) {
  const uint32_t words = bits * 32;  // 1024 codes * bits / 32
  const uint64_t byte0 = base * bits / 8;
  for (uint32_t wd = threadIdx.x; wd < words; wd += blockDim.x) {
    const uint32_t lo = wd * 32, hi = lo + 32;
    uint32_t v = 0;
    for (uint32_t j = lo / bits; j * bits < hi && j < 1024; ++j) {
      const int sh = static_cast<int>(j * bits) - static_cast<int>(lo);
      v |= sh >= 0 ? (c[j] << sh) : (c[j] >> -sh);
    }
    const uint64_t at = byte0 + 4ull * wd;
    if (at + 4 <= code_bytes) {
      *reinterpret_cast<uint32_t*>(codes + at) = v;
    } else {
      for (uint32_t b = 0; b < 4 && at + b < code_bytes; ++b) codes[at + b] = static_cast<uint8_t>(v >> (8 * b));
    }
  }
}

// One warp per bucket.
__global__ void k_norms(const float* __restrict__ x, uint64_t n, uint32_t bucket, uint64_t buckets, bool l2,
                        float* __restrict__ norms) {
  const uint32_t lane = threadIdx.x & 31;
  const uint64_t warps = static_cast<uint64_t>(gridDim.x) * (blockDim.x / 32);
  for (uint64_t b = static_cast<uint64_t>(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32; b < buckets; b += warps) {
    const uint64_t b0 = b * bucket;
    const uint64_t len = (n - b0) < bucket ? (n - b0) : bucket;
    const float L = warp_norm(x + b0, len, l2);
    if (lane == 0) norms[b] = L;
  }
}

struct Params {
  float mul, scale;  // scale == 0: the bucket encodes as zeros (zero or NaN norm)
};

__device__ __forceinline__ Params params(float L, uint32_t s) {
  Params p;
  p.mul = L < 0x1p-100f ? 0x1p100f : 1.0f;
  p.scale = (!isnan(L) && L > 0.0f) ? __fdiv_rn(static_cast<float>(s), __fmul_rn(L, p.mul)) : 0.0f;
  return p;
}

__device__ __forceinline__ uint32_t quantize_one(float x, uint32_t word, Params q, uint32_t s, uint32_t sign_shift) {
  const float mul = q.mul, scale = q.scale;
  if (scale == 0.0f) return 0;
  const float r = __fmul_rn(__fmul_rn(fabsf(x), mul), scale);
  const float l = floorf(r);
  const float frac = __fsub_rn(r, l);
  uint32_t level = static_cast<uint32_t>(l) + (gc_u24_to_unit(word) < frac ? 1u : 0u);
  if (level > s) level = s;
  const uint32_t sign = (level > 0 && x < 0.0f) ? 1u : 0u;
  return level | (sign << sign_shift);
}

// Thread t of a block owns Philox block (16 * group + L) and so elements g*64 + 16k + L, k < 4.
// Codes meet in shared memory, then each thread packs whole 32-bit words of the block's span.
__global__ void __launch_bounds__(kEncThreads) k_encode(const float* __restrict__ x, uint64_t n, uint32_t s, uint32_t bucket,
                                                        uint32_t bits, uint64_t seed, uint32_t step, uint32_t tensor_id,
                                                        const float* __restrict__ norms, uint8_t* __restrict__ codes,
                                                        uint64_t code_bytes) {
  __shared__ uint32_t c[kEncThreads * 4];
  const uint64_t blk_elems = kEncThreads * 4;
  for (uint64_t base = static_cast<uint64_t>(blockIdx.x) * blk_elems; base < n; base += static_cast<uint64_t>(gridDim.x) * blk_elems) {
    const uint32_t t = threadIdx.x, grp = t >> 4, L = t & 15;
    const uint64_t g0 = base + 64ull * grp;
    const gc_u32x4 w = gc_philox_block(seed, step, tensor_id, (g0 >> 6) * 16 + L);
    uint32_t cur = ~0u;
    Params q{1.0f, 0.0f};
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      const uint64_t i = g0 + 16 * k + L;
      uint32_t code = 0;
      if (i < n) {
        const uint32_t b = static_cast<uint32_t>(i) / bucket;  // n < 2^32
        if (b != cur) { cur = b; q = params(__ldg(norms + b), s); }
        code = quantize_one(__ldg(x + i), w.v[k], q, s, bits - 1);
      }
      c[grp * 64 + 16 * k + L] = code;
    }
    __syncthreads();
    pack_span(c, bits, base, codes, code_bytes);
    __syncthreads();
  }
}

// Fused norms + codes when the bucket divides the 1024-element span (and is >= 32): x is read
// once; each warp computes its buckets' norms from shared memory in the CPU's order.
__global__ void __launch_bounds__(kEncThreads) k_encode_fused(const float* __restrict__ x, uint64_t n, uint32_t s, uint32_t bucket,
                                                              uint32_t bits, bool l2, uint64_t seed, uint32_t step, uint32_t tensor_id,
                                                              float* __restrict__ norms, uint8_t* __restrict__ codes, uint64_t code_bytes) {
  __shared__ float xs[kEncThreads * 4];
  __shared__ uint32_t c[kEncThreads * 4];
  __shared__ Params ps[kEncThreads * 4 / 32];
  const uint32_t t = threadIdx.x, lane = t & 31, warp = t >> 5;
  const uint64_t span = kEncThreads * 4;
  for (uint64_t base = static_cast<uint64_t>(blockIdx.x) * span; base < n; base += static_cast<uint64_t>(gridDim.x) * span) {
    const uint64_t i4 = base + 4ull * t;
    if (i4 + 4 <= n) {
      const float4 v = __ldg(reinterpret_cast<const float4*>(x + i4));
      xs[4 * t] = v.x; xs[4 * t + 1] = v.y; xs[4 * t + 2] = v.z; xs[4 * t + 3] = v.w;
    } else {
      for (int e = 0; e < 4; ++e) xs[4 * t + e] = i4 + e < n ? x[i4 + e] : 0.0f;
    }
    __syncthreads();
    const uint32_t nb = static_cast<uint32_t>(span / bucket);
    for (uint32_t b = warp; b < nb; b += blockDim.x / 32) {
      const uint64_t b0 = base + static_cast<uint64_t>(b) * bucket;
      if (b0 >= n) break;
      const uint32_t len = static_cast<uint32_t>((n - b0) < bucket ? (n - b0) : bucket);
      const float L = warp_norm(xs + b * bucket, len, l2);
      if (lane == 0) {
        norms[b0 / bucket] = L;
        ps[b] = params(L, s);
      }
    }
    __syncthreads();
    const uint32_t grp = t >> 4, L = t & 15;
    const uint64_t g0 = base + 64ull * grp;
    const gc_u32x4 w = gc_philox_block(seed, step, tensor_id, (g0 >> 6) * 16 + L);
    if (bits == 8 || bits == 4 || bits == 2) {
      // Whole bytes straight from registers: lanes L, L+1 (, L+2, L+3) hold adjacent elements.
      const uint32_t per = 8 / bits;
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        const uint32_t e = grp * 64 + 16 * k + L;
        uint32_t code = base + e < n ? quantize_one(xs[e], w.v[k], ps[e / bucket], s, bits - 1) : 0u;
        for (uint32_t off = 1; off < per; off <<= 1) {
          const uint32_t o = __shfl_down_sync(0xffffffffu, code, off * 1);
          code |= o << (off * bits);
        }
        const uint64_t at = (base + e) * bits / 8;
        if (L % per == 0 && at < code_bytes) codes[at] = static_cast<uint8_t>(code);
      }
      __syncthreads();
      continue;
    }
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      const uint32_t e = grp * 64 + 16 * k + L;
      c[e] = base + e < n ? quantize_one(xs[e], w.v[k], ps[e / bucket], s, bits - 1) : 0u;
    }
    __syncthreads();
    pack_span(c, bits, base, codes, code_bytes);
    __syncthreads();
  }
}

__global__ void k_decode(const uint8_t* __restrict__ codes, uint64_t code_bytes, const float* __restrict__ norms, uint64_t n,
                         uint32_t bits, uint32_t s, uint32_t bucket, float* __restrict__ out, uint32_t* bad) {
  const uint32_t level_mask = (1u << (bits - 1)) - 1, mask = (1u << bits) - 1;
  bool err = false;
  const uint64_t quads = (n + 3) / 4;
  for (uint64_t q = static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x; q < quads; q += static_cast<uint64_t>(gridDim.x) * blockDim.x) {
    const uint64_t i0 = 4 * q;
    float v[4];
    uint32_t cur = ~0u;
    float unit = 0.0f;
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      v[e] = 0.0f;
      const uint64_t i = i0 + e;
      if (i >= n) continue;
      uint32_t code;
      if (bits == 8) {
        code = __ldg(codes + i);
      } else {
        const uint64_t bit = i * bits, byte = bit >> 3;
        uint32_t w = __ldg(codes + byte);
        if (byte + 1 < code_bytes) w |= static_cast<uint32_t>(__ldg(codes + byte + 1)) << 8;
        if (byte + 2 < code_bytes) w |= static_cast<uint32_t>(__ldg(codes + byte + 2)) << 16;
        code = (w >> (bit & 7)) & mask;
      }
      const uint32_t level = code & level_mask;
      const uint32_t b = static_cast<uint32_t>(i) / bucket;
      if (b != cur) {
        cur = b;
        const float Ln = __ldg(norms + b);
        // A norm must be >= 0 or NaN; never infinite, never -0.
        if (isinf(Ln) || (!(Ln >= 0.0f) && !isnan(Ln)) || __float_as_uint(Ln) == 0x80000000u) err = true;
        // A NaN norm (a poisoned bucket) propagates its bits quieted, as on x86 (not CUDA's 0x7fffffff).
        unit = isnan(Ln) ? __uint_as_float(__float_as_uint(Ln) | 0x400000u) : __fdiv_rn(Ln, static_cast<float>(s));
      }
      if (level > s) err = true;
      const float x = isnan(unit) ? unit : __fmul_rn(static_cast<float>(level), unit);
      v[e] = (code >> (bits - 1)) ? -x : x;
    }
    if (i0 + 4 <= n && (reinterpret_cast<uintptr_t>(out + i0) & 15) == 0) {
      *reinterpret_cast<float4*>(out + i0) = make_float4(v[0], v[1], v[2], v[3]);
    } else {
      for (int e = 0; e < 4; ++e)
        if (i0 + e < n) out[i0 + e] = v[e];
    }
  }
  if (err) atomicOr(bad, 1u);
}

__global__ void k_check_tail(const uint8_t* codes, uint64_t code_bytes, uint32_t tail_bits, uint32_t* bad) {
  if (tail_bits != 0 && (codes[code_bytes - 1] >> tail_bits) != 0) atomicOr(bad, 1u);
}

}  // namespace

gc_status qsgd_encode(const gc_qsgd_desc& d, cudaStream_t s) {
  if (d.levels < 1 || d.levels > GC_QSGD_MAX_LEVELS || d.bucket_size < 1) return GC_ERR_INVALID_ARG;
  if (d.norm != GC_QSGD_NORM_MAX && d.norm != GC_QSGD_NORM_L2) return GC_ERR_INVALID_ARG;
  if (d.payload == nullptr || (d.x == nullptr && d.n > 0) || d.n > 0xffffffffULL) return GC_ERR_INVALID_ARG;
  if (d.payload_bytes != gc_qsgd_payload_bytes(d.n, d.levels, d.bucket_size)) return GC_ERR_INVALID_ARG;
  const uint32_t bits = gc_qsgd_bits(d.levels);
  Header h{GC_QSGD_MAGIC, GC_QSGD_VERSION, static_cast<uint8_t>(d.norm), static_cast<uint8_t>(bits), 0,
           d.levels, d.bucket_size, d.n};
  k_write_struct<<<1, 32, 0, s>>>(d.payload, h);
  GC_LAUNCHED(k_write_struct);
  if (d.n == 0) return GC_OK;
  const uint64_t buckets = (d.n + d.bucket_size - 1) / d.bucket_size;
  auto* norms = reinterpret_cast<float*>(d.payload + GC_QSGD_HEADER_BYTES);
  uint8_t* codes = d.payload + GC_QSGD_HEADER_BYTES + 4 * buckets;
  const uint64_t code_bytes = (d.n * bits + 7) / 8;
  const uint64_t spans = (d.n + kEncThreads * 4 - 1) / (kEncThreads * 4);
  const unsigned grid = static_cast<unsigned>(spans < static_cast<uint64_t>(sm_count()) * 8 ? spans : static_cast<uint64_t>(sm_count()) * 8);
  const bool l2 = d.norm == GC_QSGD_NORM_L2;
  if (d.bucket_size >= 32 && (kEncThreads * 4) % d.bucket_size == 0 && (reinterpret_cast<uintptr_t>(d.x) & 15) == 0) {
    k_encode_fused<<<grid, kEncThreads, 0, s>>>(d.x, d.n, d.levels, d.bucket_size, bits, l2, d.seed, d.step, d.tensor_id, norms, codes, code_bytes);
    GC_LAUNCHED(k_encode_fused);
    return GC_OK;
  }
  k_norms<<<grid_for(buckets * 32, 256, 8), 256, 0, s>>>(d.x, d.n, d.bucket_size, buckets, l2, norms);
  GC_LAUNCHED(k_norms);
  k_encode<<<grid, kEncThreads, 0, s>>>(d.x, d.n, d.levels, d.bucket_size, bits, d.seed, d.step, d.tensor_id, norms, codes, code_bytes);
  GC_LAUNCHED(k_encode);
  return GC_OK;
}

gc_status qsgd_decode(const uint8_t* payload, uint64_t bytes, float* out, uint64_t out_len, cudaStream_t s) {
  if (payload == nullptr || bytes < GC_QSGD_HEADER_BYTES) return GC_ERR_CORRUPT_PAYLOAD;
  Header h;
  GC_TRY(read_back(&h, payload, sizeof h, s));
  if (!gc_qsgd_header_ok(&h, bytes)) return GC_ERR_CORRUPT_PAYLOAD;
  if (out_len != h.n || (out == nullptr && h.n > 0)) return GC_ERR_INVALID_ARG;
  if (h.n == 0) return GC_OK;
  const uint64_t buckets = (h.n + h.bucket - 1) / h.bucket;
  const auto* norms = reinterpret_cast<const float*>(payload + GC_QSGD_HEADER_BYTES);
  const uint8_t* codes = payload + GC_QSGD_HEADER_BYTES + 4 * buckets;
  const uint64_t code_bytes = (h.n * h.bits + 7) / 8;
  gc_status st = GC_OK;
  auto* bad = static_cast<uint32_t*>(scratch(Slot::QsgdBadFlag, 4, &st));
  if (st != GC_OK) return st;
  GC_CU(cudaMemsetAsync(bad, 0, 4, s));
  k_check_tail<<<1, 1, 0, s>>>(codes, code_bytes, static_cast<uint32_t>((h.n * h.bits) % 8), bad);
  GC_LAUNCHED(k_check_tail);
  k_decode<<<grid_for((h.n + 3) / 4, 256, 8), 256, 0, s>>>(codes, code_bytes, norms, h.n, h.bits, h.levels, h.bucket, out, bad);
  GC_LAUNCHED(k_decode);
  uint32_t flag = 0;
  GC_TRY(read_back(&flag, bad, 4, s));
  return flag ? GC_ERR_CORRUPT_PAYLOAD : GC_OK;
}

}  // namespace gc_cuda
