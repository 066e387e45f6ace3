// The CUDA addon's N-API entry. Device memory lives in External handles (a DevBuf each; the
// external's finalizer frees what dispose() did not). Ops take handles, run on one stream in an
// AsyncWorker (the TypeScript layer queues them, so they run in issue order; a process-wide
// mutex keeps worker_threads from sharing the kernels' scratch at once) and settle a Promise;
// failures reject with an Error carrying `status` (a gc_status) and the CUDA runtime's text.
#include <napi.h>

#include <atomic>
#include <cmath>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include <cuda_runtime.h>

#include "../kernels/common.cuh"
#include "../kernels/ops.h"
#include "../runtime/probe.h"
#include "bench.h"

namespace {

constexpr int kAbi = 2;

std::mutex g_mu;
std::atomic<int64_t> g_live_bytes{0};
std::atomic<int64_t> g_live_buffers{0};
cudaStream_t g_stream = nullptr;

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

Napi::Error MakeError(Napi::Env env, gc_status st, const std::string& op, const std::string& detail) {
  Napi::Error e = Napi::Error::New(env, op + (detail.empty() ? "" : ": " + detail));
  e.Set("status", Napi::Number::New(env, st));
  e.Set("op", Napi::String::New(env, op));
  e.Set("detail", Napi::String::New(env, detail));
  return e;
}

class OpWorker : public Napi::AsyncWorker {
 public:
  OpWorker(Napi::Env env, std::string op, std::function<gc_status(cudaStream_t)> fn, const std::vector<Napi::Value>& keep)
      : Napi::AsyncWorker(env, "gradcomp-cuda"), deferred_(Napi::Promise::Deferred::New(env)), op_(std::move(op)), fn_(std::move(fn)) {
    for (const Napi::Value& v : keep)
      if (v.IsObject() || v.IsExternal()) refs_.push_back(Napi::Persistent(v.As<Napi::Object>()));
  }
  Napi::Promise Promise() const { return deferred_.Promise(); }
  void Execute() override {
    std::lock_guard<std::mutex> lock(g_mu);
    cudaStream_t s = nullptr;
    status_ = stream(&s);
    if (status_ == GC_OK) {
      try {
        status_ = fn_(s);
      } catch (...) {
        status_ = GC_ERR_INTERNAL;
      }
    }
    if (s) {
      cudaError_t e = cudaStreamSynchronize(s);
      if (status_ == GC_OK && e != cudaSuccess) status_ = gc_cuda::fail(e, "cudaStreamSynchronize");
    }
    if (status_ != GC_OK) detail_ = gc_cuda::last_error();
  }
  void OnOK() override {
    if (status_ == GC_OK) deferred_.Resolve(Env().Undefined());
    else deferred_.Reject(MakeError(Env(), status_, op_, detail_).Value());
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::string op_;
  std::function<gc_status(cudaStream_t)> fn_;
  std::vector<Napi::ObjectReference> refs_;
  gc_status status_ = GC_ERR_INTERNAL;
  std::string detail_;
};

Napi::Value Run(const Napi::CallbackInfo& info, const char* op, std::function<gc_status(cudaStream_t)> fn) {
  std::vector<Napi::Value> keep;
  for (size_t i = 0; i < info.Length(); ++i)
    if (info[i].IsExternal() || info[i].IsTypedArray()) keep.push_back(info[i]);
  auto* w = new OpWorker(info.Env(), op, std::move(fn), keep);
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

DevBuf* Buf(const Napi::Value& v) {
  if (!v.IsExternal()) return nullptr;
  return v.As<Napi::External<DevBuf>>().Data();
}
template <typename T>
T* Ptr(const Napi::Value& v) {
  DevBuf* b = Buf(v);
  return b ? static_cast<T*>(b->ptr) : nullptr;
}
uint64_t U64(const Napi::Value& v) { return static_cast<uint64_t>(v.As<Napi::Number>().DoubleValue()); }

bool CheckArgs(const Napi::CallbackInfo& info, size_t n) {
  if (info.Length() < n) {
    Napi::TypeError::New(info.Env(), "gradcomp cuda: missing arguments").ThrowAsJavaScriptException();
    return false;
  }
  return true;
}

// alloc(bytes, zero) -> External (sync: cudaMalloc, cudaMemset)
Napi::Value JS_alloc(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckArgs(info, 2)) return env.Undefined();
  const size_t bytes = static_cast<size_t>(U64(info[0]));
  auto* b = new DevBuf();
  std::lock_guard<std::mutex> lock(g_mu);
  cudaError_t e = cudaMalloc(&b->ptr, bytes == 0 ? 4 : bytes);
  if (e == cudaSuccess && info[1].ToBoolean().Value()) e = cudaMemset(b->ptr, 0, bytes == 0 ? 4 : bytes);
  if (e != cudaSuccess) {
    const gc_status st = gc_cuda::fail(e, "cudaMalloc");
    if (b->ptr) cudaFree(b->ptr);
    delete b;
    MakeError(env, st, "alloc", gc_cuda::last_error()).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  b->bytes = bytes == 0 ? 4 : bytes;
  g_live_bytes += static_cast<int64_t>(b->bytes);
  g_live_buffers += 1;
  return Napi::External<DevBuf>::New(env, b, [](Napi::Env, DevBuf* d) {
    std::lock_guard<std::mutex> lock(g_mu);
    d->release();
    delete d;
  });
}

// free(handle): releases now (idempotent); the External stays as an empty shell.
Napi::Value JS_free(const Napi::CallbackInfo& info) {
  DevBuf* b = info.Length() > 0 ? Buf(info[0]) : nullptr;
  if (b) {
    std::lock_guard<std::mutex> lock(g_mu);
    b->release();
  }
  return info.Env().Undefined();
}

Napi::Value JS_memory(const Napi::CallbackInfo& info) {
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("bytes", static_cast<double>(g_live_bytes.load()));
  o.Set("buffers", static_cast<double>(g_live_buffers.load()));
  return o;
}

// upload(handle, typedArray, byteOffset) / download(handle, typedArray, byteOffset)
Napi::Value Copy(const Napi::CallbackInfo& info, bool up) {
  Napi::Env env = info.Env();
  if (!CheckArgs(info, 3)) return env.Undefined();
  DevBuf* b = Buf(info[0]);
  Napi::TypedArray ta = info[1].As<Napi::TypedArray>();
  void* host = static_cast<uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
  const size_t bytes = ta.ByteLength();
  const size_t off = static_cast<size_t>(U64(info[2]));
  if (!b || off + bytes > b->bytes) {
    Napi::RangeError::New(env, "gradcomp cuda: copy out of bounds").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Run(info, up ? "upload" : "download", [b, host, bytes, off, up](cudaStream_t s) -> gc_status {
    if (!b->ptr) return GC_ERR_INVALID_ARG;
    if (bytes == 0) return GC_OK;
    uint8_t* dev = static_cast<uint8_t*>(b->ptr) + off;
    GC_CU(cudaMemcpyAsync(up ? static_cast<void*>(dev) : host, up ? host : static_cast<const void*>(dev), bytes,
                          up ? cudaMemcpyHostToDevice : cudaMemcpyDeviceToHost, s));
    return GC_OK;
  });
}
Napi::Value JS_upload(const Napi::CallbackInfo& info) { return Copy(info, true); }
Napi::Value JS_download(const Napi::CallbackInfo& info) { return Copy(info, false); }

// copyDevice(dst, src, bytes)
Napi::Value JS_copyDevice(const Napi::CallbackInfo& info) {
  if (!CheckArgs(info, 3)) return info.Env().Undefined();
  DevBuf* d = Buf(info[0]);
  DevBuf* s0 = Buf(info[1]);
  const size_t bytes = static_cast<size_t>(U64(info[2]));
  return Run(info, "copy", [d, s0, bytes](cudaStream_t s) -> gc_status {
    if (!d || !s0 || !d->ptr || !s0->ptr || bytes > d->bytes || bytes > s0->bytes) return GC_ERR_INVALID_ARG;
    GC_CU(cudaMemcpyAsync(d->ptr, s0->ptr, bytes, cudaMemcpyDeviceToDevice, s));
    return GC_OK;
  });
}

// topk(grad | null, x, n, k, scale, outIdx, outVal)
Napi::Value JS_topk(const Napi::CallbackInfo& info) {
  if (!CheckArgs(info, 7)) return info.Env().Undefined();
  const float* g = Ptr<float>(info[0]);
  float* x = Ptr<float>(info[1]);
  const uint64_t n = U64(info[2]), k = U64(info[3]);
  const float scale = static_cast<float>(info[4].As<Napi::Number>().DoubleValue());
  uint32_t* oi = Ptr<uint32_t>(info[5]);
  float* ov = Ptr<float>(info[6]);
  const bool ef = !info[0].IsNull() && !info[0].IsUndefined();
  return Run(info, ef ? "efTopK" : "topK", [=](cudaStream_t s) {
    if (ef && !g) return GC_ERR_INVALID_ARG;
    return gc_cuda::topk(ef ? g : nullptr, x, n, k, scale, oi, ov, s);
  });
}

// qsgdEncode(x, n, levels, bucket, norm, seedLo, seedHi, step, tensorId, payload, payloadBytes)
Napi::Value JS_qsgdEncode(const Napi::CallbackInfo& info) {
  if (!CheckArgs(info, 11)) return info.Env().Undefined();
  gc_qsgd_desc d{};
  d.x = Ptr<float>(info[0]);
  d.n = U64(info[1]);
  d.levels = static_cast<uint32_t>(U64(info[2]));
  d.bucket_size = static_cast<uint32_t>(U64(info[3]));
  d.norm = U64(info[4]) == 1 ? GC_QSGD_NORM_L2 : GC_QSGD_NORM_MAX;
  d.seed = U64(info[5]) | (U64(info[6]) << 32);
  d.step = static_cast<uint32_t>(U64(info[7]));
  d.tensor_id = static_cast<uint32_t>(U64(info[8]));
  d.payload = Ptr<uint8_t>(info[9]);
  d.payload_bytes = U64(info[10]);
  return Run(info, "qsgdEncode", [d](cudaStream_t s) { return gc_cuda::qsgd_encode(d, s); });
}

Napi::Value JS_qsgdPayloadBytes(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(gc_qsgd_payload_bytes(U64(info[0]), static_cast<uint32_t>(U64(info[1])), static_cast<uint32_t>(U64(info[2])))));
}

// qsgdDecode(payload, payloadBytes, out, n)
Napi::Value JS_qsgdDecode(const Napi::CallbackInfo& info) {
  if (!CheckArgs(info, 4)) return info.Env().Undefined();
  const uint8_t* p = Ptr<uint8_t>(info[0]);
  const uint64_t bytes = U64(info[1]);
  float* out = Ptr<float>(info[2]);
  const uint64_t n = U64(info[3]);
  return Run(info, "qsgdDecode", [=](cudaStream_t s) { return gc_cuda::qsgd_decode(p, bytes, out, n, s); });
}

// powersgdStep(m, q, p, batch, rows, cols, rank)
Napi::Value JS_powersgdStep(const Napi::CallbackInfo& info) {
  if (!CheckArgs(info, 7)) return info.Env().Undefined();
  gc_powersgd_desc d{};
  d.m = Ptr<float>(info[0]);
  d.q = Ptr<float>(info[1]);
  d.p = Ptr<float>(info[2]);
  d.batch = U64(info[3]);
  d.rows = U64(info[4]);
  d.cols = U64(info[5]);
  d.rank = static_cast<uint32_t>(U64(info[6]));
  return Run(info, "powerSgdStep", [d](cudaStream_t s) { return gc_cuda::powersgd_step(d, s); });
}

// orthonormalize(p, batch, rows, rank)
Napi::Value JS_orthonormalize(const Napi::CallbackInfo& info) {
  if (!CheckArgs(info, 4)) return info.Env().Undefined();
  float* p = Ptr<float>(info[0]);
  const uint64_t batch = U64(info[1]), rows = U64(info[2]);
  const uint32_t rank = static_cast<uint32_t>(U64(info[3]));
  return Run(info, "orthonormalize", [=](cudaStream_t s) { return gc_cuda::orthonormalize(p, batch, rows, rank, s); });
}

// dropitPack(x, n, k, payload, bytes) / dropitUnpack(payload, bytes, out, n)
Napi::Value JS_dropitPack(const Napi::CallbackInfo& info) {
  if (!CheckArgs(info, 5)) return info.Env().Undefined();
  const float* x = Ptr<float>(info[0]);
  const uint64_t n = U64(info[1]), k = U64(info[2]);
  uint8_t* out = Ptr<uint8_t>(info[3]);
  const uint64_t bytes = U64(info[4]);
  return Run(info, "dropitPack", [=](cudaStream_t s) { return gc_cuda::dropit_pack(x, n, k, out, bytes, s); });
}
Napi::Value JS_dropitUnpack(const Napi::CallbackInfo& info) {
  if (!CheckArgs(info, 4)) return info.Env().Undefined();
  const uint8_t* p = Ptr<uint8_t>(info[0]);
  const uint64_t bytes = U64(info[1]);
  float* out = Ptr<float>(info[2]);
  const uint64_t n = U64(info[3]);
  return Run(info, "dropitUnpack", [=](cudaStream_t s) { return gc_cuda::dropit_unpack(p, bytes, out, n, s); });
}
Napi::Value JS_dropitPackedBytes(const Napi::CallbackInfo& info) {
  Napi::Array a = Napi::Array::New(info.Env(), 2);
  const uint64_t n = U64(info[0]), k = U64(info[1]);
  a.Set(0u, static_cast<double>(gc_dropit_packed_bytes(n, k)));
  a.Set(1u, static_cast<double>(gc_dropit_layout_for(n, k)));
  return a;
}

Napi::Value JS_lastTopkPath(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), gc_cuda::last_topk_path()); }

// bench(op, n, a, b, c, reps) -> Promise<number[]> (ms per rep, CUDA events; see bench.h)
Napi::Value JS_bench(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckArgs(info, 6)) return env.Undefined();
  std::string op = info[0].As<Napi::String>().Utf8Value();
  const uint64_t n = U64(info[1]);
  const double a = info[2].As<Napi::Number>().DoubleValue(), b = info[3].As<Napi::Number>().DoubleValue();
  const double c = info[4].As<Napi::Number>().DoubleValue();
  const int reps = static_cast<int>(U64(info[5]));
  auto times = std::make_shared<std::vector<double>>();
  auto deferred = Napi::Promise::Deferred::New(env);
  struct W : Napi::AsyncWorker {
    W(Napi::Env e, Napi::Promise::Deferred d, std::function<gc_status()> f, std::shared_ptr<std::vector<double>> t)
        : Napi::AsyncWorker(e, "gradcomp-bench"), d(d), f(std::move(f)), t(std::move(t)) {}
    Napi::Promise::Deferred d;
    std::function<gc_status()> f;
    std::shared_ptr<std::vector<double>> t;
    gc_status st = GC_OK;
    std::string detail;
    void Execute() override {
      std::lock_guard<std::mutex> lock(g_mu);
      st = f();
      if (st != GC_OK) detail = gc_cuda::last_error();
    }
    void OnOK() override {
      if (st != GC_OK) { d.Reject(MakeError(Env(), st, "bench", detail).Value()); return; }
      Napi::Array arr = Napi::Array::New(Env(), t->size());
      for (size_t i = 0; i < t->size(); ++i) arr.Set(static_cast<uint32_t>(i), (*t)[i]);
      d.Resolve(arr);
    }
  };
  auto* w = new W(env, deferred, [=]() {
    cudaStream_t s = nullptr;
    GC_TRY(stream(&s));
    return gc_cuda::bench(op, n, a, b, c, reps, s, times.get());
  }, times);
  w->Queue();
  return deferred.Promise();
}

Napi::Value JS_probe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const gc_cuda::Probe p = gc_cuda::probe();
  Napi::Object o = Napi::Object::New(env);
  o.Set("status", gc_cuda::statusName(p.status));
  o.Set("driverVersion", p.driverVersion);
  o.Set("runtimeVersion", p.runtimeVersion);
  o.Set("detail", p.detail);
  Napi::Array devs = Napi::Array::New(env);
  for (int i = 0; i < p.deviceCount && i < 16; i++) {
    Napi::Object d = Napi::Object::New(env);
    d.Set("name", p.devices[i].name);
    d.Set("cc", std::to_string(p.devices[i].ccMajor) + "." + std::to_string(p.devices[i].ccMinor));
    d.Set("memBytes", static_cast<double>(p.devices[i].memBytes));
    devs.Set(static_cast<uint32_t>(i), d);
  }
  o.Set("devices", devs);
  return o;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("abi", kAbi);
  exports.Set("maxRank", static_cast<double>(gc_cuda::kMaxRank));
  exports.Set("probe", Napi::Function::New(env, JS_probe, "probe"));
  exports.Set("alloc", Napi::Function::New(env, JS_alloc, "alloc"));
  exports.Set("free", Napi::Function::New(env, JS_free, "free"));
  exports.Set("memory", Napi::Function::New(env, JS_memory, "memory"));
  exports.Set("upload", Napi::Function::New(env, JS_upload, "upload"));
  exports.Set("download", Napi::Function::New(env, JS_download, "download"));
  exports.Set("copyDevice", Napi::Function::New(env, JS_copyDevice, "copyDevice"));
  exports.Set("topk", Napi::Function::New(env, JS_topk, "topk"));
  exports.Set("qsgdEncode", Napi::Function::New(env, JS_qsgdEncode, "qsgdEncode"));
  exports.Set("qsgdDecode", Napi::Function::New(env, JS_qsgdDecode, "qsgdDecode"));
  exports.Set("qsgdPayloadBytes", Napi::Function::New(env, JS_qsgdPayloadBytes, "qsgdPayloadBytes"));
  exports.Set("powersgdStep", Napi::Function::New(env, JS_powersgdStep, "powersgdStep"));
  exports.Set("orthonormalize", Napi::Function::New(env, JS_orthonormalize, "orthonormalize"));
  exports.Set("dropitPack", Napi::Function::New(env, JS_dropitPack, "dropitPack"));
  exports.Set("dropitUnpack", Napi::Function::New(env, JS_dropitUnpack, "dropitUnpack"));
  exports.Set("dropitPackedBytes", Napi::Function::New(env, JS_dropitPackedBytes, "dropitPackedBytes"));
  exports.Set("lastTopkPath", Napi::Function::New(env, JS_lastTopkPath, "lastTopkPath"));
  exports.Set("bench", Napi::Function::New(env, JS_bench, "bench"));
  return exports;
}

}  // namespace

NODE_API_MODULE(gradcomp_cuda, Init)
