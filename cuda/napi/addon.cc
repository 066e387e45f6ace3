// The CUDA addon's N-API entry, on the shared helper (native/napi_util). Device memory lives in
// type-tagged External handles (a DevBuf each: a foreign External or another kind of handle is
// refused; the finalizer frees what dispose() did not). Ops take handles, run on one stream in a
// pool task (the TypeScript layer queues them, so they run in issue order; a process-wide mutex
// keeps worker_threads from sharing the kernels' scratch at once) and settle a Promise; failures
// reject with the coded error the factory makes of a gc_status, with the CUDA runtime's text.
#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <cuda_runtime.h>

#include "../../native/napi_util/napi_async.h"
#include "../kernels/common.cuh"
#include "../kernels/ops.h"
#include "../runtime/probe.h"
#include "bench.h"

namespace {

std::mutex g_mu;
std::atomic<int64_t> g_live_bytes{0};
std::atomic<int64_t> g_live_buffers{0};
cudaStream_t g_stream = nullptr;

// The tag of device-buffer handles (a random 128-bit value, fixed for this addon).
const napi_type_tag kDevBufTag = {0x6772616463756461ULL, 0x6465766275660001ULL};

struct DevBuf {
  void* ptr = nullptr;
  size_t bytes = 0;
  void release() {
    if (ptr) {
      cudaFree(ptr);
      g_live_bytes -= static_cast<int64_t>(bytes);
      g_live_buffers -= 1;
    }
    ptr = nullptr;
    bytes = 0;
  }
};

gc_status stream(cudaStream_t* s) {
  if (!g_stream) GC_CU(cudaStreamCreateWithFlags(&g_stream, cudaStreamNonBlocking));
  *s = g_stream;
  return GC_OK;
}

// Runs fn(stream) on the pool under the process-wide lock, then synchronizes the stream.
napi_value Run(const gcnapi::Args& a, const char* op, std::function<gc_status(cudaStream_t)> fn, gcnapi::ResultFn result = nullptr) {
  std::vector<napi_value> keep(a.argv, a.argv + a.argc);
  return gcnapi::StartAsync(a.env, op, [fn](std::string* detail) {
    std::lock_guard<std::mutex> lock(g_mu);
    cudaStream_t s = nullptr;
    gc_status st = stream(&s);
    if (st == GC_OK) st = gcnapi::Guarded([&] { return fn(s); });
    if (s) {
      cudaError_t e = cudaStreamSynchronize(s);
      if (st == GC_OK && e != cudaSuccess) st = gc_cuda::fail(e, "cudaStreamSynchronize");
    }
    if (st != GC_OK) *detail = gc_cuda::last_error();
    return st;
  }, keep, std::move(result));
}

DevBuf* Buf(const gcnapi::Args& a, size_t i, bool optional = false) { return gcnapi::GetHandle<DevBuf>(a, i, kDevBufTag, optional); }

#define GC_DEV(T, i, var)            \
  DevBuf* var##_buf = Buf(a, i);     \
  if (var##_buf == nullptr) return nullptr; \
  T* var = static_cast<T*>(var##_buf->ptr);

// alloc(bytes, zero) -> handle (sync: cudaMalloc, cudaMemset)
GC_JS(JS_alloc) {
  GC_U64(0, bytes0);
  const size_t bytes = bytes0 == 0 ? 4 : static_cast<size_t>(bytes0);
  auto* b = new DevBuf();
  std::lock_guard<std::mutex> lock(g_mu);
  cudaError_t e = cudaMalloc(&b->ptr, bytes);
  if (e == cudaSuccess && gcnapi::Bool(a, 1)) e = cudaMemset(b->ptr, 0, bytes);
  if (e != cudaSuccess) {
    const gc_status st = e == cudaErrorMemoryAllocation ? GC_ERR_OUT_OF_MEMORY : gc_cuda::fail(e, "cudaMalloc");
    if (b->ptr) cudaFree(b->ptr);
    delete b;
    gcnapi::ThrowStatus(a.env, st, "alloc", gc_cuda::last_error());
    return nullptr;
  }
  b->bytes = bytes;
  g_live_bytes += static_cast<int64_t>(bytes);
  g_live_buffers += 1;
  return gcnapi::NewHandle(a.env, b, kDevBufTag, [](napi_env, void* data, void*) {
    std::lock_guard<std::mutex> lock(g_mu);
    auto* d = static_cast<DevBuf*>(data);
    d->release();
    delete d;
  });
}

// free(handle): releases now (idempotent); the handle stays as an empty shell.
GC_JS(JS_free) {
  DevBuf* b = Buf(a, 0);
  if (b) {
    std::lock_guard<std::mutex> lock(g_mu);
    b->release();
  }
  return nullptr;
}

GC_JS(JS_memory) {
  napi_value o;
  napi_create_object(a.env, &o);
  gcnapi::SetNamed(a.env, o, "bytes", gcnapi::Number(a.env, static_cast<double>(g_live_bytes.load())));
  gcnapi::SetNamed(a.env, o, "buffers", gcnapi::Number(a.env, static_cast<double>(g_live_buffers.load())));
  return o;
}

// upload(handle, typedArray, byteOffset) / download(handle, typedArray, byteOffset)
napi_value Copy(gcnapi::Args& a, bool up) {
  DevBuf* b = Buf(a, 0);
  if (b == nullptr) return nullptr;
  bool is = false;
  napi_typedarray_type type;
  size_t length = 0, offset = 0;
  void* data = nullptr;
  napi_value ab;
  if (napi_is_typedarray(a.env, a.argv[1], &is) != napi_ok || !is ||
      napi_get_typedarray_info(a.env, a.argv[1], &type, &length, &data, &ab, &offset) != napi_ok) {
    gcnapi::ThrowType(a.env, "gradcomp cuda: argument 1 must be a typed array");
    return nullptr;
  }
  size_t elem = 1;
  switch (type) {
    case napi_float64_array: elem = 8; break;
    case napi_float32_array: case napi_int32_array: case napi_uint32_array: elem = 4; break;
    case napi_uint16_array: case napi_int16_array: elem = 2; break;
    default: elem = 1;
  }
  const size_t bytes = length * elem;
  GC_U64(2, off);
  GC_CHECK(off + bytes <= b->bytes && b->ptr != nullptr, "copy out of bounds");
  return Run(a, up ? "upload" : "download", [b, data, bytes, off, up](cudaStream_t s) -> gc_status {
    if (!b->ptr) return GC_ERR_INVALID_ARG;
    if (bytes == 0) return GC_OK;
    uint8_t* dev = static_cast<uint8_t*>(b->ptr) + off;
    GC_CU(cudaMemcpyAsync(up ? static_cast<void*>(dev) : data, up ? data : static_cast<const void*>(dev), bytes,
                          up ? cudaMemcpyHostToDevice : cudaMemcpyDeviceToHost, s));
    return GC_OK;
  });
}
GC_JS(JS_upload) { return Copy(a, true); }
GC_JS(JS_download) { return Copy(a, false); }

// copyDevice(dst, src, bytes)
GC_JS(JS_copyDevice) {
  DevBuf* d = Buf(a, 0);
  DevBuf* s0 = Buf(a, 1);
  if (!d || !s0) return nullptr;
  GC_U64(2, bytes);
  GC_CHECK(bytes <= d->bytes && bytes <= s0->bytes, "copyDevice out of bounds");
  return Run(a, "copy", [d, s0, bytes](cudaStream_t s) -> gc_status {
    if (!d->ptr || !s0->ptr) return GC_ERR_INVALID_ARG;
    GC_CU(cudaMemcpyAsync(d->ptr, s0->ptr, bytes, cudaMemcpyDeviceToDevice, s));
    return GC_OK;
  });
}

// Bounds: a handle must hold `elems` elements of `size` bytes.
#define GC_FITS(var, elems, size) GC_CHECK(var##_buf->bytes >= (elems) * (size), #var " is smaller than the op needs")

// topk(grad | null, x, n, k, scale, outIdx, outVal)
GC_JS(JS_topk) {
  DevBuf* gb = Buf(a, 0, true);
  if (gb == nullptr && !gcnapi::IsNullish(a.env, a.argv[0])) return nullptr;
  GC_DEV(float, 1, x);
  GC_U64(2, n);
  GC_U64(3, k);
  GC_F64(4, scale);
  GC_DEV(uint32_t, 5, oi);
  GC_DEV(float, 6, ov);
  GC_FITS(x, n, 4);
  GC_FITS(oi, k, 4);
  GC_FITS(ov, k, 4);
  GC_CHECK(k <= n && (gb == nullptr || gb->bytes >= n * 4), "topk sizes disagree");
  const float* g = gb ? static_cast<const float*>(gb->ptr) : nullptr;
  const bool ef = gb != nullptr;
  const float sc = static_cast<float>(scale);
  return Run(a, ef ? "efTopK" : "topK", [=](cudaStream_t s) { return gc_cuda::topk(g, x, n, k, sc, oi, ov, s); });
}

// qsgdEncode(x, n, levels, bucket, norm, seedLo, seedHi, step, tensorId, payload, payloadBytes)
GC_JS(JS_qsgdEncode) {
  GC_DEV(float, 0, x);
  GC_U64(1, n);
  GC_U64(2, levels, GC_QSGD_MAX_LEVELS);
  GC_U64(3, bucket, 0xffffffffULL);
  GC_U64(4, norm, 1);
  GC_U64(5, seed_lo, 0xffffffffULL);
  GC_U64(6, seed_hi, 0xffffffffULL);
  GC_U64(7, step, 0xffffffffULL);
  GC_U64(8, tensor_id, 0xffffffffULL);
  GC_DEV(uint8_t, 9, payload);
  GC_U64(10, payload_bytes);
  GC_FITS(x, n, 4);
  GC_FITS(payload, payload_bytes, 1);
  GC_CHECK(levels >= 1 && bucket >= 1, "qsgdEncode parameter out of range");
  gc_qsgd_desc d{x, n, static_cast<uint32_t>(levels), static_cast<uint32_t>(bucket), norm == 1 ? GC_QSGD_NORM_L2 : GC_QSGD_NORM_MAX,
                 seed_lo | (seed_hi << 32), static_cast<uint32_t>(step), static_cast<uint32_t>(tensor_id), payload, payload_bytes};
  return Run(a, "qsgdEncode", [d](cudaStream_t s) { return gc_cuda::qsgd_encode(d, s); });
}

// qsgdDecode(payload, payloadBytes, out, n)
GC_JS(JS_qsgdDecode) {
  GC_DEV(uint8_t, 0, p);
  GC_U64(1, bytes);
  GC_DEV(float, 2, out);
  GC_U64(3, n);
  GC_FITS(p, bytes, 1);
  GC_FITS(out, n, 4);
  return Run(a, "qsgdDecode", [=](cudaStream_t s) { return gc_cuda::qsgd_decode(p, bytes, out, n, s); });
}

// powersgdStep(m, q, p, batch, rows, cols, rank) / orthonormalize(p, batch, rows, rank)
GC_JS(JS_powersgdStep) {
  GC_DEV(float, 0, m);
  GC_DEV(float, 1, q);
  GC_DEV(float, 2, p);
  GC_U64(3, batch, 0xffffffffULL);
  GC_U64(4, rows, 0xffffffffULL);
  GC_U64(5, cols, 0xffffffffULL);
  GC_U64(6, rank, gc_cuda::kMaxRank);
  GC_CHECK(rank >= 1, "rank must be >= 1");
  GC_FITS(m, batch * rows * cols, 4);
  GC_FITS(q, batch * cols * rank, 4);
  GC_FITS(p, batch * rows * rank, 4);
  gc_powersgd_desc d{m, q, p, batch, rows, cols, static_cast<uint32_t>(rank)};
  return Run(a, "powerSgdStep", [d](cudaStream_t s) { return gc_cuda::powersgd_step(d, s); });
}
GC_JS(JS_orthonormalize) {
  GC_DEV(float, 0, p);
  GC_U64(1, batch, 0xffffffffULL);
  GC_U64(2, rows, 0xffffffffULL);
  GC_U64(3, rank, gc_cuda::kMaxRank);
  GC_CHECK(rank >= 1, "rank must be >= 1");
  GC_FITS(p, batch * rows * rank, 4);
  const uint32_t r = static_cast<uint32_t>(rank);
  return Run(a, "orthonormalize", [=](cudaStream_t s) { return gc_cuda::orthonormalize(p, batch, rows, r, s); });
}

// dropitPack(x, n, k, payload, bytes) / dropitUnpack(payload, bytes, out, n)
GC_JS(JS_dropitPack) {
  GC_DEV(float, 0, x);
  GC_U64(1, n);
  GC_U64(2, k);
  GC_DEV(uint8_t, 3, out);
  GC_U64(4, bytes);
  GC_FITS(x, n, 4);
  GC_FITS(out, bytes, 1);
  GC_CHECK(k <= n, "dropitPack k > n");
  return Run(a, "dropitPack", [=](cudaStream_t s) { return gc_cuda::dropit_pack(x, n, k, out, bytes, s); });
}
GC_JS(JS_dropitUnpack) {
  GC_DEV(uint8_t, 0, p);
  GC_U64(1, bytes);
  GC_DEV(float, 2, out);
  GC_U64(3, n);
  GC_FITS(p, bytes, 1);
  GC_FITS(out, n, 4);
  return Run(a, "dropitUnpack", [=](cudaStream_t s) { return gc_cuda::dropit_unpack(p, bytes, out, n, s); });
}
GC_JS(JS_dropitPackedBytes) {
  GC_U64(0, n);
  GC_U64(1, k);
  napi_value arr;
  if (napi_create_array_with_length(a.env, 2, &arr) != napi_ok) return nullptr;
  napi_set_element(a.env, arr, 0, gcnapi::Number(a.env, static_cast<double>(gc_dropit_packed_bytes(n, k))));
  napi_set_element(a.env, arr, 1, gcnapi::Number(a.env, gc_dropit_layout_for(n, k)));
  return arr;
}
GC_JS(JS_qsgdPayloadBytes) {
  GC_U64(0, n, 0xffffffffULL);
  GC_U64(1, levels, GC_QSGD_MAX_LEVELS);
  GC_U64(2, bucket, 0xffffffffULL);
  GC_CHECK(levels >= 1 && bucket >= 1, "qsgdPayloadBytes parameter out of range");
  return gcnapi::Number(a.env, static_cast<double>(gc_qsgd_payload_bytes(n, static_cast<uint32_t>(levels), static_cast<uint32_t>(bucket))));
}
// tracinScore(a, b, d, e, n, m, p, c, eta, s): s[i m + j] += eta (a_i . b_j)(d_i . e_j)
GC_JS(JS_tracinScore) {
  GC_DEV(float, 0, ta);
  GC_DEV(float, 1, tb);
  GC_DEV(float, 2, td);
  GC_DEV(float, 3, te);
  GC_U64(4, n, 0xffffffffULL);
  GC_U64(5, m, 0xffffffffULL);
  GC_U64(6, p, 0xffffffffULL);
  GC_U64(7, c, 0xffffffffULL);
  GC_F64(8, eta);
  GC_DEV(float, 9, ts);
  GC_CHECK(n < (1ULL << 31) && m < (1ULL << 31) && p < (1ULL << 31) && c < (1ULL << 31), "tracinScore: a dimension is 2^31 or more");
  GC_FITS(ta, n * p, 4);
  GC_FITS(tb, m * p, 4);
  GC_FITS(td, n * c, 4);
  GC_FITS(te, m * c, 4);
  GC_FITS(ts, n * m, 4);
  return Run(a, "tracinScore", [=](cudaStream_t s) { return gc_cuda::tracin_score(ta, tb, td, te, n, m, p, c, eta, ts, s); });
}
// rowsSumSq(x, rows, cols, out): out[r] = |row r|^2 in float64
GC_JS(JS_rowsSumSq) {
  GC_DEV(float, 0, x);
  GC_U64(1, rows, 0xffffffffULL);
  GC_U64(2, cols, 0xffffffffULL);
  GC_DEV(double, 3, out);
  GC_CHECK(cols < (1ULL << 31), "rowsSumSq: cols is 2^31 or more");
  GC_FITS(x, rows * cols, 4);
  GC_FITS(out, rows, 8);
  return Run(a, "rowsSumSq", [=](cudaStream_t s) { return gc_cuda::rows_sumsq(x, rows, cols, out, s); });
}
GC_JS(JS_lastTopkPath) { return gcnapi::Number(a.env, gc_cuda::last_topk_path()); }

// bench(op, n, a, b, c, reps) -> Promise<number[]> (ms per rep, CUDA events; see bench.h)
GC_JS(JS_bench) {
  std::string op;
  if (!gcnapi::Str(a, 0, &op)) return nullptr;
  GC_U64(1, n);
  GC_F64(2, pa);
  GC_F64(3, pb);
  GC_F64(4, pc);
  GC_U64(5, reps, 100000);
  auto times = std::make_shared<std::vector<double>>();
  const int r = static_cast<int>(reps);
  return gcnapi::StartAsync(a.env, "bench", [=](std::string* detail) {
    std::lock_guard<std::mutex> lock(g_mu);
    cudaStream_t s = nullptr;
    gc_status st = stream(&s);
    if (st == GC_OK) st = gc_cuda::bench(op, n, pa, pb, pc, r, s, times.get());
    if (st != GC_OK) *detail = gc_cuda::last_error();
    return st;
  }, {}, [times](napi_env env) {
    napi_value arr;
    if (napi_create_array_with_length(env, times->size(), &arr) != napi_ok) return static_cast<napi_value>(nullptr);
    for (size_t i = 0; i < times->size(); ++i) napi_set_element(env, arr, static_cast<uint32_t>(i), gcnapi::Number(env, (*times)[i]));
    return arr;
  });
}

GC_JS(JS_probe) {
  const gc_cuda::Probe p = gc_cuda::probe();
  napi_value o, devs;
  napi_create_object(a.env, &o);
  gcnapi::SetNamed(a.env, o, "status", gcnapi::String(a.env, gc_cuda::statusName(p.status)));
  gcnapi::SetNamed(a.env, o, "driverVersion", gcnapi::Number(a.env, p.driverVersion));
  gcnapi::SetNamed(a.env, o, "runtimeVersion", gcnapi::Number(a.env, p.runtimeVersion));
  gcnapi::SetNamed(a.env, o, "detail", gcnapi::String(a.env, p.detail));
  napi_create_array(a.env, &devs);
  for (int i = 0; i < p.deviceCount && i < 16; i++) {
    napi_value d;
    napi_create_object(a.env, &d);
    gcnapi::SetNamed(a.env, d, "name", gcnapi::String(a.env, p.devices[i].name));
    gcnapi::SetNamed(a.env, d, "cc", gcnapi::String(a.env, std::to_string(p.devices[i].ccMajor) + "." + std::to_string(p.devices[i].ccMinor)));
    gcnapi::SetNamed(a.env, d, "memBytes", gcnapi::Number(a.env, static_cast<double>(p.devices[i].memBytes)));
    napi_set_element(a.env, devs, static_cast<uint32_t>(i), d);
  }
  gcnapi::SetNamed(a.env, o, "devices", devs);
  return o;
}

napi_value Init(napi_env env, napi_value exports) {
  gcnapi::ExportCommon(env, exports);
  gcnapi::SetNamed(env, exports, "maxRank", gcnapi::Number(env, gc_cuda::kMaxRank));
  const gcnapi::Fn fns[] = {{"probe", JS_probe}, {"alloc", JS_alloc}, {"free", JS_free}, {"memory", JS_memory}, {"upload", JS_upload},
                            {"download", JS_download}, {"copyDevice", JS_copyDevice}, {"topk", JS_topk}, {"qsgdEncode", JS_qsgdEncode},
                            {"qsgdDecode", JS_qsgdDecode}, {"qsgdPayloadBytes", JS_qsgdPayloadBytes}, {"powersgdStep", JS_powersgdStep},
                            {"orthonormalize", JS_orthonormalize}, {"dropitPack", JS_dropitPack}, {"dropitUnpack", JS_dropitUnpack},
                            {"dropitPackedBytes", JS_dropitPackedBytes}, {"lastTopkPath", JS_lastTopkPath}, {"tracinScore", JS_tracinScore},
                            {"rowsSumSq", JS_rowsSumSq}, {"bench", JS_bench}};
  gcnapi::Export(env, exports, fns, sizeof fns / sizeof fns[0]);
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
