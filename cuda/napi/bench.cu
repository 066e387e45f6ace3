#include <cmath>
#include <functional>

#include "../kernels/common.cuh"
#include "../kernels/ops.h"
#include "bench.h"
#include "gradcomp/philox.h"

namespace gc_cuda {

namespace {

// dist 0: N(0, 1); 1: all equal (1.0); 2: narrow [1, 1.00003]; 3: 16 distinct magnitudes (ties
// at the k-th value); 4: N(0, 0.1) (a residual).
__global__ void k_fill(float* x, uint64_t n, uint32_t seed, int dist) {
  for (uint64_t i = static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += static_cast<uint64_t>(gridDim.x) * blockDim.x) {
    const gc_u32x4 w = gc_philox_block(seed, 7, 11, i);
    const float u1 = (static_cast<float>(w.v[0] >> 8) + 0.5f) * (1.0f / 16777216.0f);
    const float u2 = static_cast<float>(w.v[1] >> 8) * (1.0f / 16777216.0f);
    const float g = sqrtf(-2.0f * logf(u1)) * cospif(2.0f * u2);
    float v;
    switch (dist) {
      case 1: v = 1.0f; break;
      case 2: v = 1.0f + 0.00003f * u2; break;
      case 3: v = static_cast<float>((w.v[2] >> 28) + 1) * ((w.v[3] & 1) ? -1.0f : 1.0f); break;
      case 4: v = 0.1f * g; break;
      default: v = g;
    }
    x[i] = v;
  }
}

struct Buffers {
  std::vector<void*> ptrs;
  ~Buffers() { for (void* p : ptrs) cudaFree(p); }
  template <typename T>
  T* get(size_t count, gc_status* st) {
    void* p = nullptr;
    cudaError_t e = cudaMalloc(&p, count * sizeof(T) + 16);
    if (e != cudaSuccess) { *st = fail(e, "bench cudaMalloc"); return nullptr; }
    ptrs.push_back(p);
    return static_cast<T*>(p);
  }
};

gc_status fill(float* x, uint64_t n, uint32_t seed, int dist, cudaStream_t s) {
  k_fill<<<grid_for(n, 256, 8), 256, 0, s>>>(x, n, seed, dist);
  GC_LAUNCHED(k_fill);
  return GC_OK;
}

}  // namespace

gc_status bench(const std::string& op, uint64_t n, double a, double b, double c, int reps, cudaStream_t s,
                std::vector<double>* times) {
  gc_status st = GC_OK;
  Buffers buf;
  const size_t flush_bytes = 256u << 20;
  auto* flush = buf.get<uint8_t>(flush_bytes, &st);
  if (st != GC_OK) return st;
  std::function<gc_status()> prep = [] { return GC_OK; };
  std::function<gc_status()> run;
  const int dist = static_cast<int>(c);

  if (op == "copy") {
    float* x = buf.get<float>(n, &st);
    float* y = buf.get<float>(n, &st);
    if (st != GC_OK) return st;
    GC_TRY(fill(x, n, 1, 0, s));
    run = [=] { GC_CU(cudaMemcpyAsync(y, x, n * 4, cudaMemcpyDeviceToDevice, s)); return GC_OK; };
  } else if (op == "eftopk" || op == "topk") {
    const uint64_t k = static_cast<uint64_t>(std::llround(a * static_cast<double>(n)));
    const bool ef = op == "eftopk";
    float* g = buf.get<float>(n, &st);
    float* r = buf.get<float>(n, &st);
    float* r0 = buf.get<float>(n, &st);
    auto* oi = buf.get<uint32_t>(k + 1, &st);
    float* ov = buf.get<float>(k + 1, &st);
    if (st != GC_OK) return st;
    GC_TRY(fill(g, n, 2, dist, s));
    GC_TRY(fill(r0, n, 3, dist == 0 ? 4 : dist, s));
    if (ef) prep = [=] { GC_CU(cudaMemcpyAsync(r, r0, n * 4, cudaMemcpyDeviceToDevice, s)); return GC_OK; };
    run = [=] { return topk(ef ? g : nullptr, ef ? r : g, n, k, 1.0f, oi, ov, s); };
  } else if (op == "qsgd-encode" || op == "qsgd-decode") {
    gc_qsgd_desc d{};
    d.n = n;
    d.levels = static_cast<uint32_t>(a);
    d.bucket_size = static_cast<uint32_t>(b);
    d.norm = GC_QSGD_NORM_MAX;
    d.seed = 42;
    d.payload_bytes = gc_qsgd_payload_bytes(n, d.levels, d.bucket_size);
    float* x = buf.get<float>(n, &st);
    float* y = buf.get<float>(n, &st);
    auto* pay = buf.get<uint8_t>(d.payload_bytes, &st);
    if (st != GC_OK) return st;
    GC_TRY(fill(x, n, 4, dist, s));
    d.x = x;
    d.payload = pay;
    if (op == "qsgd-encode") {
      run = [=] { return qsgd_encode(d, s); };
    } else {
      GC_TRY(qsgd_encode(d, s));
      run = [=] { return qsgd_decode(pay, d.payload_bytes, y, n, s); };
    }
  } else if (op == "powersgd" || op == "orth") {
    gc_powersgd_desc d{};
    d.batch = n;
    d.rows = static_cast<uint64_t>(a);
    d.cols = static_cast<uint64_t>(b);
    d.rank = static_cast<uint32_t>(c);
    float* m = buf.get<float>(op == "orth" ? 1 : d.batch * d.rows * d.cols, &st);
    float* q = buf.get<float>(d.batch * d.cols * d.rank, &st);
    float* q0 = buf.get<float>(d.batch * d.cols * d.rank, &st);
    float* p = buf.get<float>(d.batch * d.rows * d.rank, &st);
    float* p0 = buf.get<float>(d.batch * d.rows * d.rank, &st);
    if (st != GC_OK) return st;
    if (op == "powersgd") GC_TRY(fill(m, d.batch * d.rows * d.cols, 5, 0, s));
    GC_TRY(fill(q0, d.batch * d.cols * d.rank, 6, 0, s));
    GC_TRY(fill(p0, d.batch * d.rows * d.rank, 8, 0, s));
    d.m = m;
    d.q = q;
    d.p = p;
    if (op == "powersgd") {
      prep = [=] { GC_CU(cudaMemcpyAsync(q, q0, d.batch * d.cols * d.rank * 4, cudaMemcpyDeviceToDevice, s)); return GC_OK; };
      run = [=] { return powersgd_step(d, s); };
    } else {
      prep = [=] { GC_CU(cudaMemcpyAsync(p, p0, d.batch * d.rows * d.rank * 4, cudaMemcpyDeviceToDevice, s)); return GC_OK; };
      run = [=] { return orthonormalize(p, d.batch, d.rows, d.rank, s); };
    }
  } else if (op == "dropit-pack" || op == "dropit-unpack") {
    const double gamma = a;
    const uint64_t k = n - static_cast<uint64_t>(std::floor(gamma * static_cast<double>(n) + 1e-9));
    const uint64_t bytes = gc_dropit_packed_bytes(n, k);
    float* x = buf.get<float>(n, &st);
    float* y = buf.get<float>(n, &st);
    auto* pay = buf.get<uint8_t>(bytes, &st);
    if (st != GC_OK) return st;
    GC_TRY(fill(x, n, 9, dist, s));
    if (op == "dropit-pack") {
      run = [=] { return dropit_pack(x, n, k, pay, bytes, s); };
    } else {
      GC_TRY(dropit_pack(x, n, k, pay, bytes, s));
      run = [=] { return dropit_unpack(pay, bytes, y, n, s); };
    }
  } else {
    return GC_ERR_INVALID_ARG;
  }

  cudaEvent_t e0, e1;
  GC_CU(cudaEventCreate(&e0));
  GC_CU(cudaEventCreate(&e1));
  gc_status out = GC_OK;
  for (int i = -3; i < reps && out == GC_OK; ++i) {
    out = prep();
    if (out != GC_OK) break;
    if (cudaMemsetAsync(flush, i & 0xff, flush_bytes, s) != cudaSuccess) { out = fail(cudaGetLastError(), "flush"); break; }
    cudaEventRecord(e0, s);
    out = run();
    cudaEventRecord(e1, s);
    cudaError_t e = cudaEventSynchronize(e1);
    if (out == GC_OK && e != cudaSuccess) out = fail(e, "cudaEventSynchronize");
    float ms = 0.0f;
    cudaEventElapsedTime(&ms, e0, e1);
    if (i >= 0) times->push_back(ms);
  }
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  if (out == GC_OK) GC_CU(cudaStreamSynchronize(s));
  return out;
}

}  // namespace gc_cuda
