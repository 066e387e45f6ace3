// PowerSGD's rank-r power step on the GPU, batched over matrices of one shape:
// P = M Q (a warp per row), orthonormalize every P in one launch (CholeskyQR2 with fp64 Gram
// matrices, a block per matrix), Q = Mᵀ P (a thread per column over row slabs, partial sums
// reduced in a fixed order: deterministic). The rank-deficiency guard is the CPU's
// (native/core/powersgd.cc): a column whose part outside the span of the previous ones is
// zero, non-finite or at most 1e-6 of its norm becomes an exact zero column, never NaN.
#include "common.cuh"
#include "ops.h"

namespace gc_cuda {

namespace {


__global__ void k_transpose_q(const float* __restrict__ q, uint64_t batch, uint64_t cols, uint32_t r, float* __restrict__ qt) {
  const uint64_t total = batch * cols * r;
  for (uint64_t e = static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total; e += static_cast<uint64_t>(gridDim.x) * blockDim.x) {
    const uint64_t b = e / (cols * r), rem = e % (cols * r), j = rem / r, k = rem % r;
    qt[(b * r + k) * cols + j] = q[e];
  }
}

// P[b, i, :] = M[b, i, :] Q[b]: one warp per row, lanes across columns.
template <int R>
__global__ void k_mq(const float* __restrict__ m, const float* __restrict__ qt, float* __restrict__ p, uint64_t batch,
                     uint64_t rows, uint64_t cols, uint32_t r) {
  const uint32_t lane = threadIdx.x & 31;
  const uint64_t warps = static_cast<uint64_t>(gridDim.x) * (blockDim.x / 32);
  for (uint64_t w = static_cast<uint64_t>(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32; w < batch * rows; w += warps) {
    const uint64_t b = w / rows;
    const float* row = m + w * cols;
    const float* Q = qt + b * r * cols;
    float acc[R];
#pragma unroll
    for (int k = 0; k < R; ++k) acc[k] = 0.0f;
    uint64_t j0 = 0;
    if ((cols & 3) == 0 && ((reinterpret_cast<uintptr_t>(m) | reinterpret_cast<uintptr_t>(qt)) & 15) == 0) {
      // 16-byte loads: a quarter of the load instructions for M and Qt.
      const float4* row4 = reinterpret_cast<const float4*>(row);
      const float4* Q4 = reinterpret_cast<const float4*>(Q);
      const uint64_t c4 = cols / 4;
      for (uint64_t j = lane; j < c4; j += 32) {
        const float4 v = __ldg(row4 + j);
#pragma unroll
        for (int k = 0; k < R; ++k) {
          if (k < static_cast<int>(r)) {
            const float4 q = __ldg(Q4 + k * c4 + j);
            acc[k] = fmaf(v.x, q.x, fmaf(v.y, q.y, fmaf(v.z, q.z, fmaf(v.w, q.w, acc[k]))));
          }
        }
      }
      j0 = cols;
    }
    for (uint64_t j = j0 + lane; j < cols; j += 32) {
      const float v = __ldg(row + j);
#pragma unroll
      for (int k = 0; k < R; ++k)
        if (k < static_cast<int>(r)) acc[k] = fmaf(v, __ldg(Q + k * cols + j), acc[k]);
    }
#pragma unroll
    for (int k = 0; k < R; ++k) {
      float v = acc[k];
      for (int off = 16; off >= 1; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
      if (lane == 0 && k < static_cast<int>(r)) p[w * r + k] = v;
    }
  }
}

// Partial Q sums: block (column tile, slab, matrix); each thread owns one column.
template <int R>
__global__ void k_mtp(const float* __restrict__ m, const float* __restrict__ p, float* __restrict__ out, uint64_t rows,
                      uint64_t cols, uint32_t r, uint64_t slab_rows, uint32_t slabs) {
  __shared__ float ps[64 * R];
  const uint64_t b = blockIdx.z, s = blockIdx.y;
  const uint64_t j = static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const uint64_t i0 = s * slab_rows, i1 = (i0 + slab_rows) < rows ? (i0 + slab_rows) : rows;
  const float* M = m + b * rows * cols;
  const float* P = p + b * rows * r;
  float acc[R];
#pragma unroll
  for (int k = 0; k < R; ++k) acc[k] = 0.0f;
  for (uint64_t t0 = i0; t0 < i1; t0 += 64) {
    const uint64_t tn = (i1 - t0) < 64 ? (i1 - t0) : 64;
    __syncthreads();
    for (uint32_t e = threadIdx.x; e < tn * r; e += blockDim.x) ps[(e / r) * R + (e % r)] = P[t0 * r + e];
    __syncthreads();
    if (j < cols) {
#pragma unroll 8
      for (uint64_t t = 0; t < tn; ++t) {
        const float v = __ldg(M + (t0 + t) * cols + j);
#pragma unroll
        for (int k = 0; k < R; ++k)
          if (k < static_cast<int>(r)) acc[k] = fmaf(v, ps[t * R + k], acc[k]);
      }
    }
  }
  if (j < cols) {
    float* o = out + ((b * slabs + s) * cols + j) * r;
#pragma unroll
    for (int k = 0; k < R; ++k)
      if (k < static_cast<int>(r)) o[k] = acc[k];
  }
}

__global__ void k_reduce_slabs(const float* __restrict__ part, float* __restrict__ q, uint64_t batch, uint64_t cols,
                               uint32_t r, uint32_t slabs) {
  const uint64_t per = cols * r, total = batch * per;
  for (uint64_t e = static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total; e += static_cast<uint64_t>(gridDim.x) * blockDim.x) {
    const uint64_t b = e / per, rem = e % per;
    float v = 0.0f;
    for (uint32_t s = 0; s < slabs; ++s) v += part[(b * slabs + s) * per + rem];
    q[e] = v;
  }
}

constexpr int kOrthThreads = 256;

// CholeskyQR2 for one matrix per block: twice { G = PᵀP in fp64; G = L Lᵀ with the guard;
// P <- P L⁻ᵀ }.
template <int R>
__global__ void __launch_bounds__(kOrthThreads) k_orth(float* __restrict__ p, uint64_t rows, uint32_t r) {
  constexpr uint32_t kTileRows = 4096 / R;  // 16 KiB of P per tile: few barriers per pass
  __shared__ float tile[kTileRows * R];
  __shared__ double red[kOrthThreads * 2];  // group partials (at most 2 pairs per thread at r = 32)
  __shared__ double G[kMaxRank * kMaxRank];
  __shared__ double Lm[kMaxRank * kMaxRank];
  __shared__ double inv[kMaxRank];
  float* P = p + static_cast<uint64_t>(blockIdx.x) * rows * r;
  const uint32_t pairs = r * (r + 1) / 2;
  const uint32_t t = threadIdx.x;
  // Threads form `groups` groups of `pairs` threads (or one group cycling over pairs when
  // pairs > blockDim); group gi sums rows gi, gi + groups, ... of each tile.
  const uint32_t groups = pairs <= kOrthThreads ? kOrthThreads / pairs : 1;
  for (int pass = 0; pass < 2; ++pass) {
    double acc[3] = {0.0, 0.0, 0.0};  // pairs <= 528 = 3 * 176: at most 3 per thread in one group
    uint32_t pa[3], pb[3];
    int mine = 0;
    const uint32_t gi = pairs <= kOrthThreads ? t / pairs : 0;
    if (gi < groups) {
      for (uint32_t pp = pairs <= kOrthThreads ? t % pairs : t; pp < pairs && mine < 3; pp += (pairs <= kOrthThreads ? pairs : kOrthThreads)) {
        // pair index -> (a, b), a <= b, row-major over the upper triangle
        uint32_t a = 0, rem = pp;
        while (rem >= r - a) { rem -= r - a; ++a; }
        pa[mine] = a;
        pb[mine] = a + rem;
        ++mine;
      }
    }
    for (uint64_t t0 = 0; t0 < rows; t0 += kTileRows) {
      const uint32_t tn = static_cast<uint32_t>((rows - t0) < kTileRows ? (rows - t0) : kTileRows);
      __syncthreads();
      for (uint32_t e = t; e < tn * r; e += blockDim.x) tile[e] = P[t0 * r + e];
      __syncthreads();
      for (int q = 0; q < mine; ++q) {
        // Two chains per pair: more FMAs in flight (the order is fixed: deterministic).
        double a0 = 0.0, a1 = 0.0;
        uint32_t i = gi;
        for (; i + groups < tn; i += 2 * groups) {
          a0 = fma(static_cast<double>(tile[i * r + pa[q]]), static_cast<double>(tile[i * r + pb[q]]), a0);
          a1 = fma(static_cast<double>(tile[(i + groups) * r + pa[q]]), static_cast<double>(tile[(i + groups) * r + pb[q]]), a1);
        }
        if (i < tn) a0 = fma(static_cast<double>(tile[i * r + pa[q]]), static_cast<double>(tile[i * r + pb[q]]), a0);
        acc[q] += a0 + a1;
      }
    }
    // Reduce the groups: G[a][b] = sum over groups, in group order.
    __syncthreads();
    for (uint32_t e = t; e < r * r; e += blockDim.x) G[e] = 0.0;
    __syncthreads();
    if (pairs <= kOrthThreads) {
      if (gi < groups && mine > 0) red[t] = acc[0];
      __syncthreads();
      if (t < pairs) {
        double sum = 0.0;
        for (uint32_t g = 0; g < groups; ++g) sum += red[g * pairs + t];
        G[pa[0] * r + pb[0]] = sum;
      }
    } else {
      for (int q = 0; q < mine; ++q) G[pa[q] * r + pb[q]] = acc[q];
    }
    __syncthreads();
    if (t == 0) {
      // Cholesky G = L Lᵀ, column by column, dropping dependent columns.
      for (uint32_t j = 0; j < r; ++j) {
        double d = G[j * r + j];
        const double norm2 = d;
        for (uint32_t c = 0; c < j; ++c) d -= Lm[j * r + c] * Lm[j * r + c];
        const double nv = d > 0.0 ? sqrt(d) : 0.0;
        const bool keep = isfinite(nv) && isfinite(norm2) && nv > 0.0 && nv > 1e-6 * sqrt(norm2);
        for (uint32_t c = 0; c < r; ++c) Lm[c * r + j] = 0.0;  // column j of L below the diagonal, filled next
        if (!keep) { inv[j] = 0.0; Lm[j * r + j] = 0.0; continue; }
        Lm[j * r + j] = nv;
        inv[j] = 1.0 / nv;
        for (uint32_t i = j + 1; i < r; ++i) {
          double v = G[j * r + i];  // G is upper-triangular storage: G[min][max]
          for (uint32_t c = 0; c < j; ++c) v -= Lm[i * r + c] * Lm[j * r + c];
          Lm[i * r + j] = v * inv[j];
        }
      }
    }
    __syncthreads();
    // P <- P L⁻ᵀ row by row: y_j = (x_j - sum_{c<j} y_c L[j][c]) / L[j][j].
    for (uint64_t i = t; i < rows; i += blockDim.x) {
      double y[R];
#pragma unroll
      for (int j = 0; j < R; ++j) {
        y[j] = 0.0;
        if (j < static_cast<int>(r)) {
          double v = static_cast<double>(P[i * r + j]);
#pragma unroll
          for (int c = 0; c < R; ++c)
            if (c < j) v -= y[c] * Lm[j * r + c];
          y[j] = inv[j] == 0.0 ? 0.0 : v * inv[j];
        }
      }
#pragma unroll
      for (int j = 0; j < R; ++j)
        if (j < static_cast<int>(r)) P[i * r + j] = static_cast<float>(y[j]);
    }
    __syncthreads();
  }
}

template <int R>
gc_status run_step(const gc_powersgd_desc& d, cudaStream_t s) {
  const uint64_t B = d.batch, rows = d.rows, cols = d.cols;
  const uint32_t r = d.rank;
  gc_status st = GC_OK;
  auto* qt = static_cast<float*>(scratch(Slot::PowersgdQt, B * cols * r * 4, &st));
  if (st != GC_OK) return st;
  k_transpose_q<<<grid_for(B * cols * r, 256), 256, 0, s>>>(d.q, B, cols, r, qt);
  GC_LAUNCHED(k_transpose_q);
  k_mq<R><<<grid_for(B * rows * 32, 256, 8), 256, 0, s>>>(d.m, qt, d.p, B, rows, cols, r);
  GC_LAUNCHED(k_mq);
  GC_TRY(orthonormalize(d.p, B, rows, r, s));
  const uint64_t ctiles = (cols + 255) / 256;
  uint64_t slabs = (static_cast<uint64_t>(sm_count()) * 4 + B * ctiles - 1) / (B * ctiles);
  const uint64_t max_slabs = (rows + 63) / 64;
  if (slabs > max_slabs) slabs = max_slabs;
  if (slabs < 1) slabs = 1;
  if (slabs > 65535) slabs = 65535;
  const uint64_t slab_rows = (rows + slabs - 1) / slabs;
  slabs = (rows + slab_rows - 1) / slab_rows;
  if (B > 65535 || ctiles > 0x7fffffffULL) return GC_ERR_INVALID_ARG;
  float* out = d.q;
  if (slabs > 1) {
    out = static_cast<float*>(scratch(Slot::PowersgdPart, B * slabs * cols * r * 4, &st));
    if (st != GC_OK) return st;
  }
  dim3 grid(static_cast<unsigned>(ctiles), static_cast<unsigned>(slabs), static_cast<unsigned>(B));
  k_mtp<R><<<grid, 256, 0, s>>>(d.m, d.p, out, rows, cols, r, slab_rows, static_cast<uint32_t>(slabs));
  GC_LAUNCHED(k_mtp);
  if (slabs > 1) {
    k_reduce_slabs<<<grid_for(B * cols * r, 256), 256, 0, s>>>(out, d.q, B, cols, r, static_cast<uint32_t>(slabs));
    GC_LAUNCHED(k_reduce_slabs);
  }
  return GC_OK;
}

}  // namespace

gc_status orthonormalize(float* p, uint64_t batch, uint64_t rows, uint32_t rank, cudaStream_t s) {
  if (rank == 0 || rank > kMaxRank || (p == nullptr && batch * rows > 0)) return GC_ERR_INVALID_ARG;
  if (batch == 0 || rows == 0) return GC_OK;
  if (batch > 0x7fffffffULL) return GC_ERR_INVALID_ARG;
  const unsigned grid = static_cast<unsigned>(batch);
  if (rank <= 2) k_orth<2><<<grid, kOrthThreads, 0, s>>>(p, rows, rank);
  else if (rank <= 4) k_orth<4><<<grid, kOrthThreads, 0, s>>>(p, rows, rank);
  else if (rank <= 8) k_orth<8><<<grid, kOrthThreads, 0, s>>>(p, rows, rank);
  else if (rank <= 16) k_orth<16><<<grid, kOrthThreads, 0, s>>>(p, rows, rank);
  else k_orth<32><<<grid, kOrthThreads, 0, s>>>(p, rows, rank);
  GC_LAUNCHED(k_orth);
  return GC_OK;
}

gc_status powersgd_step(const gc_powersgd_desc& d, cudaStream_t s) {
  if (d.rank == 0 || d.rank > kMaxRank || d.m == nullptr || d.q == nullptr || d.p == nullptr) return GC_ERR_INVALID_ARG;
  if (d.batch == 0 || d.rows == 0 || d.cols == 0) return GC_OK;
  if (d.rank <= 1) return run_step<1>(d, s);
  if (d.rank <= 2) return run_step<2>(d, s);
  if (d.rank <= 4) return run_step<4>(d, s);
  if (d.rank <= 8) return run_step<8>(d, s);
  if (d.rank <= 16) return run_step<16>(d, s);
  return run_step<32>(d, s);
}

}  // namespace gc_cuda
