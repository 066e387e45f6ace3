// The CPU addon's N-API entry: the only CPU code that includes napi.h. Every JS_ function
// unpacks its arguments into a plain descriptor on the main thread; the kernel then runs either
// right here (the Sync twins) or in an AsyncWorker whose Execute() sees only the descriptor.
// Inputs are borrowed: the worker holds references to every typed array it touches until the
// promise settles. Kernels parallelize on gradcomp's own pool (native/core/pool.h), with the
// thread that runs the op taking part.
#include <napi.h>

#include <functional>
#include <new>
#include <string>
#include <vector>

#include "../core/baselines.h"
#include "../core/cast.h"
#include "../core/cpu.h"
#include "../core/dropit.h"
#include "../core/pool.h"
#include "../core/powersgd.h"
#include "../core/qsgd.h"
#include "../core/rng.h"
#include "../core/topk.h"
#include "args.h"

namespace gradcomp_napi {

using gradcomp::ThreadPool;

// Per-environment state (main thread and each worker_thread get their own): the JS factory
// that turns a status code into a coded GradcompError, handed over by lib/native at load.
struct AddonData {
  Napi::FunctionReference make_error;
};

// Builds the coded error for a failed status. Raw N-API with every failure tolerated: this also
// runs while a worker_thread's environment is being torn down, where JS cannot run and
// node-addon-api would turn a failed call into a fatal error.
bool MakeError(napi_env env, gc_status st, const std::string& op, napi_value* out) {
  void* raw = nullptr;
  if (napi_get_instance_data(env, &raw) == napi_ok && raw != nullptr) {
    auto* data = static_cast<AddonData*>(raw);
    napi_value fn, recv, args[2];
    if (!data->make_error.IsEmpty() &&
        napi_get_reference_value(env, static_cast<napi_ref>(data->make_error), &fn) == napi_ok &&
        napi_get_undefined(env, &recv) == napi_ok && napi_create_int32(env, st, &args[0]) == napi_ok &&
        napi_create_string_utf8(env, op.c_str(), op.size(), &args[1]) == napi_ok &&
        napi_call_function(env, recv, fn, 2, args, out) == napi_ok) {
      return true;
    }
  }
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) != napi_ok || pending) return false;
  std::string text = "gradcomp: " + op + " failed with status " + std::to_string(st);
  napi_value msg;
  return napi_create_string_utf8(env, text.c_str(), text.size(), &msg) == napi_ok &&
         napi_create_error(env, nullptr, msg, out) == napi_ok;
}

// Throws the coded error for a failed status (nothing pending when the status is GC_OK).
void ThrowStatus(napi_env env, gc_status st, const std::string& op) {
  napi_value err;
  if (st != GC_OK && MakeError(env, st, op, &err)) napi_throw(env, err);
}

gc_status RunGuarded(const std::function<gc_status()>& fn) {
  try {
    return fn();
  } catch (const std::bad_alloc&) {
    return GC_ERR_OUT_OF_MEMORY;
  } catch (...) {
    return GC_ERR_INTERNAL;
  }
}

class OpWorker : public Napi::AsyncWorker {
 public:
  OpWorker(Napi::Env env, std::string op, std::function<gc_status()> fn, const std::vector<Napi::Value>& keep)
      : Napi::AsyncWorker(env, "gradcomp"), op_(std::move(op)), fn_(std::move(fn)) {
    napi_create_promise(env, &deferred_, &promise_);
    for (const Napi::Value& v : keep) {
      napi_valuetype t;
      napi_ref r;
      if (napi_typeof(env, v, &t) == napi_ok && t == napi_object && napi_create_reference(env, v, 1, &r) == napi_ok)
        refs_.emplace_back(env, r);
    }
  }
  bool ok() const { return deferred_ != nullptr; }
  Napi::Value Promise() const { return Napi::Value(Env(), promise_); }
  void Execute() override { status_ = RunGuarded(fn_); }
  void OnOK() override { Settle(); }
  void OnError(const Napi::Error&) override { Settle(); }

 private:
  // Settles with raw calls and ignores their failure (see MakeError): in a terminating
  // environment the promise is simply never settled, which nobody can observe.
  void Settle() {
    napi_env env = Env();
    napi_value v;
    if (status_ == GC_OK) {
      if (napi_get_undefined(env, &v) == napi_ok) napi_resolve_deferred(env, deferred_, v);
    } else if (MakeError(env, status_, op_, &v)) {
      napi_reject_deferred(env, deferred_, v);
    }
  }
  napi_deferred deferred_ = nullptr;
  napi_value promise_ = nullptr;
  std::string op_;
  std::function<gc_status()> fn_;
  std::vector<Napi::ObjectReference> refs_;
  gc_status status_ = GC_ERR_INTERNAL;
};

// Runs fn now (sync) or on a worker (async, returns a Promise<void>); `keep` are the JS
// objects whose memory fn touches.
Napi::Value Dispatch(const Napi::CallbackInfo& info, size_t async_arg, const char* op, std::function<gc_status()> fn,
                     const std::vector<Napi::Value>& keep) {
  Napi::Env env = info.Env();
  if (!arg_bool(info, async_arg)) {
    ThrowStatus(env, RunGuarded(fn), op);
    return env.Undefined();
  }
  auto* w = new OpWorker(env, op, std::move(fn), keep);
  if (!w->ok()) {
    delete w;
    return env.Undefined();  // napi_create_promise failed: an exception is pending
  }
  Napi::Value p = w->Promise();
  w->Queue();
  return p;
}

#define UNPACK(T, i, name, ...) \
  Span<T> name;                 \
  if (!unpack<T>(info, i, &name, ##__VA_ARGS__)) return env.Undefined();
#define UNPACK_U64(i, name) \
  uint64_t name = 0;        \
  if (!unpack_u64(info, i, &name)) return env.Undefined();

// topk(grad | null, residual, k, scale, outIdx, outVal, async)
Napi::Value JS_topk(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  UNPACK(float, 0, grad, true);
  UNPACK(float, 1, res);
  UNPACK_U64(2, k);
  UNPACK(uint32_t, 4, oidx);
  UNPACK(float, 5, oval);
  if ((grad.present && grad.len != res.len) || oidx.len != k || oval.len != k || k > res.len) {
    ThrowRaw(env, true, "gradcomp native: topk lengths disagree");
    return env.Undefined();
  }
  gc_topk_desc d{grad.present ? grad.data : nullptr, res.data, res.len, k,
                 static_cast<float>(arg_double(info, 3)), oidx.data, oval.data};
  return Dispatch(info, 6, grad.present ? "efTopK" : "topK", [d] { return gradcomp::topk(d); },
                  {info[0], info[1], info[4], info[5]});
}

// qsgdEncode(x, levels, bucket, norm, seedLo, seedHi, step, tensorId, payload, async)
Napi::Value JS_qsgdEncode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  UNPACK(float, 0, x);
  UNPACK_U64(1, levels);
  UNPACK_U64(2, bucket);
  UNPACK_U64(3, norm);
  UNPACK_U64(4, seed_lo);
  UNPACK_U64(5, seed_hi);
  UNPACK_U64(6, step);
  UNPACK_U64(7, tensor_id);
  UNPACK(uint8_t, 8, payload);
  if (levels < 1 || levels > GC_QSGD_MAX_LEVELS || bucket < 1 || bucket > 0xffffffffULL || norm > 1 ||
      seed_lo > 0xffffffffULL || seed_hi > 0xffffffffULL || step > 0xffffffffULL || tensor_id > 0xffffffffULL) {
    ThrowRaw(env, true, "gradcomp native: qsgdEncode parameter out of range");
    return env.Undefined();
  }
  gc_qsgd_desc d{x.data, x.len, static_cast<uint32_t>(levels), static_cast<uint32_t>(bucket),
                 static_cast<gc_qsgd_norm>(norm), seed_lo | (seed_hi << 32), static_cast<uint32_t>(step),
                 static_cast<uint32_t>(tensor_id), payload.data, payload.len};
  return Dispatch(info, 9, "qsgdEncode", [d] { return gradcomp::qsgd_encode(d); }, {info[0], info[8]});
}

// qsgdDecode(payload, out, async)
Napi::Value JS_qsgdDecode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  UNPACK(uint8_t, 0, payload);
  UNPACK(float, 1, out);
  return Dispatch(info, 2, "qsgdDecode",
                  [payload, out] { return gradcomp::qsgd_decode(payload.data, payload.len, out.data, out.len); },
                  {info[0], info[1]});
}

// qsgdPayloadBytes(n, levels, bucket) -> number
Napi::Value JS_qsgdPayloadBytes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  UNPACK_U64(0, n);
  UNPACK_U64(1, levels);
  UNPACK_U64(2, bucket);
  if (levels < 1 || levels > GC_QSGD_MAX_LEVELS || bucket < 1 || bucket > 0xffffffffULL) return env.Undefined();
  return Napi::Number::New(env, static_cast<double>(gc_qsgd_payload_bytes(n, static_cast<uint32_t>(levels),
                                                                                   static_cast<uint32_t>(bucket))));
}

// (m, q, p, batch, rows, cols, rank, ...) into a descriptor; false with a RangeError thrown.
bool PowerSgdArgs(const Napi::CallbackInfo& info, const char* op, gc_powersgd_desc* d) {
  Napi::Env env = info.Env();
  Span<float> m, q, p;
  uint64_t batch = 0, rows = 0, cols = 0, rank = 0;
  if (!unpack<float>(info, 0, &m) || !unpack<float>(info, 1, &q) || !unpack<float>(info, 2, &p) ||
      !unpack_u64(info, 3, &batch) || !unpack_u64(info, 4, &rows) || !unpack_u64(info, 5, &cols) ||
      !unpack_u64(info, 6, &rank)) {
    return false;
  }
  if (rank < 1 || rank > 1024 || m.len != batch * rows * cols || q.len != batch * cols * rank ||
      p.len != batch * rows * rank) {
    ThrowRaw(env, true, std::string("gradcomp native: ") + op + " shapes disagree");
    return false;
  }
  *d = gc_powersgd_desc{m.data, q.data, p.data, batch, rows, cols, static_cast<uint32_t>(rank)};
  return true;
}

// powersgdStep(m, q, p, batch, rows, cols, rank, async)
Napi::Value JS_powersgdStep(const Napi::CallbackInfo& info) {
  gc_powersgd_desc d;
  if (!PowerSgdArgs(info, "powersgdStep", &d)) return info.Env().Undefined();
  return Dispatch(info, 7, "powerSgdStep", [d] { return gradcomp::powersgd_step(d); }, {info[0], info[1], info[2]});
}

// powersgdPhase(m, q, p, batch, rows, cols, rank, phase, async): phase 1 = P = M Q, 2 = Q = M^T P
Napi::Value JS_powersgdPhase(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  gc_powersgd_desc d;
  if (!PowerSgdArgs(info, "powersgdPhase", &d)) return env.Undefined();
  UNPACK_U64(7, phase);
  if (phase != 1 && phase != 2) {
    ThrowRaw(env, true, "gradcomp native: powersgdPhase phase must be 1 or 2");
    return env.Undefined();
  }
  if (phase == 1) return Dispatch(info, 8, "powerSgdMQ", [d] { return gradcomp::powersgd_mq(d); }, {info[0], info[1], info[2]});
  return Dispatch(info, 8, "powerSgdMtP", [d] { return gradcomp::powersgd_mtp(d); }, {info[0], info[1], info[2]});
}

// powersgdReconstruct(p, q, rows, cols, rank, out, m | null, residual | null)
Napi::Value JS_powersgdReconstruct(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  UNPACK(float, 0, p);
  UNPACK(float, 1, q);
  UNPACK_U64(2, rows);
  UNPACK_U64(3, cols);
  UNPACK_U64(4, rank);
  UNPACK(float, 5, out);
  UNPACK(float, 6, m, true);
  UNPACK(float, 7, res, true);
  if (rank < 1 || rank > 1024 || p.len != rows * rank || q.len != cols * rank || out.len != rows * cols ||
      m.present != res.present || (m.present && (m.len != rows * cols || res.len != rows * cols))) {
    ThrowRaw(env, true, "gradcomp native: powersgdReconstruct shapes disagree");
    return env.Undefined();
  }
  gc_powersgd_desc d{m.present ? m.data : nullptr, q.data, p.data, 1, rows, cols, static_cast<uint32_t>(rank)};
  ThrowStatus(env, RunGuarded([&] { return gradcomp::powersgd_reconstruct(d, out.data, res.present ? res.data : nullptr); }),
              "powerSgdReconstruct");
  return env.Undefined();
}

// philoxFill(out, seedLo, seedHi, step, stream, kind)
Napi::Value JS_philoxFill(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  UNPACK(float, 0, out);
  UNPACK_U64(1, seed_lo);
  UNPACK_U64(2, seed_hi);
  UNPACK_U64(3, step);
  UNPACK_U64(4, stream);
  UNPACK_U64(5, kind);
  if (seed_lo > 0xffffffffULL || seed_hi > 0xffffffffULL || step > 0xffffffffULL || stream > 0xffffffffULL || kind > 1) {
    ThrowRaw(env, true, "gradcomp native: philoxFill parameter out of range");
    return env.Undefined();
  }
  ThrowStatus(env, gradcomp::philox_fill(out.data, out.len, seed_lo | (seed_hi << 32), static_cast<uint32_t>(step),
                                         static_cast<uint32_t>(stream), static_cast<int>(kind)), "philoxFill");
  return env.Undefined();
}

// halfPack(x, out16, kind) / halfUnpackAdd(h16, out, kind): fp16 (0) or bf16 (1), synchronous.
Napi::Value JS_halfPack(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  UNPACK(float, 0, x);
  UNPACK(uint16_t, 1, h);
  UNPACK_U64(2, kind);
  if (h.len != x.len || kind > 2) {
    ThrowRaw(env, true, "gradcomp native: halfPack sizes disagree");
    return env.Undefined();
  }
  gradcomp::half_pack(x.data, x.len, h.data, static_cast<int>(kind));
  return env.Undefined();
}
Napi::Value JS_halfUnpackAdd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  UNPACK(uint16_t, 0, h);
  UNPACK(float, 1, out);
  UNPACK_U64(2, kind);
  if (h.len != out.len || kind > 1) {
    ThrowRaw(env, true, "gradcomp native: halfUnpackAdd sizes disagree");
    return env.Undefined();
  }
  gradcomp::half_unpack_add(h.data, h.len, out.data, static_cast<int>(kind));
  return env.Undefined();
}
// signPack(x, bits) -> sum |x| ; signUnpackAdd(bits, n, scale, out)
Napi::Value JS_signPack(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  UNPACK(float, 0, x);
  UNPACK(uint8_t, 1, bits);
  if (bits.len < (x.len + 7) / 8) {
    ThrowRaw(env, true, "gradcomp native: signPack bits too short");
    return env.Undefined();
  }
  double l1 = 0.0;
  gradcomp::sign_pack(x.data, x.len, bits.data, &l1);
  return Napi::Number::New(env, l1);
}
Napi::Value JS_signUnpackAdd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  UNPACK(uint8_t, 0, bits);
  UNPACK(float, 1, out);
  if (bits.len < (out.len + 7) / 8) {
    ThrowRaw(env, true, "gradcomp native: signUnpackAdd bits too short");
    return env.Undefined();
  }
  gradcomp::sign_unpack_add(bits.data, out.len, static_cast<float>(arg_double(info, 2)), out.data);
  return env.Undefined();
}

// reduceInto(dst, src, op): dst = dst op src elementwise (op 0 sum, 1 max) for two Float32Arrays or
// two Float64Arrays of one length. Used by the local communicator on SharedArrayBuffer views.
template <typename T>
void ReduceSpan(T* dst, const T* src, uint64_t n, uint64_t op) {
  if (op == 0) {
    for (uint64_t i = 0; i < n; ++i) dst[i] += src[i];
  } else {
    for (uint64_t i = 0; i < n; ++i) dst[i] = (src[i] > dst[i] || dst[i] != dst[i]) ? src[i] : dst[i];
  }
}
Napi::Value JS_reduceInto(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  UNPACK_U64(2, op);
  if (arg_typed_array_kind(info, 0) == napi_float64_array) {
    UNPACK(double, 0, dst);
    UNPACK(double, 1, src);
    if (dst.len != src.len || op > 1) { ThrowRaw(env, true, "gradcomp native: reduceInto lengths disagree"); return env.Undefined(); }
    ReduceSpan(dst.data, src.data, dst.len, op);
    return env.Undefined();
  }
  UNPACK(float, 0, dst);
  UNPACK(float, 1, src);
  if (dst.len != src.len || op > 1) { ThrowRaw(env, true, "gradcomp native: reduceInto lengths disagree"); return env.Undefined(); }
  ReduceSpan(dst.data, src.data, dst.len, op);
  return env.Undefined();
}

// orthonormalize(p, batch, rows, rank, async)
Napi::Value JS_orthonormalize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  UNPACK(float, 0, p);
  UNPACK_U64(1, batch);
  UNPACK_U64(2, rows);
  UNPACK_U64(3, rank);
  if (rank < 1 || rank > 1024 || p.len != batch * rows * rank) {
    ThrowRaw(env, true, "gradcomp native: orthonormalize shapes disagree");
    return env.Undefined();
  }
  float* pd = p.data;
  return Dispatch(info, 4, "orthonormalize",
                  [pd, batch, rows, rank] { return gradcomp::orthonormalize(pd, batch, rows, static_cast<uint32_t>(rank)); },
                  {info[0]});
}

// dropitPack(x, k, out, async)
Napi::Value JS_dropitPack(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  UNPACK(float, 0, x);
  UNPACK_U64(1, k);
  UNPACK(uint8_t, 2, out);
  if (k > x.len || out.len != gc_dropit_packed_bytes(x.len, k)) {
    ThrowRaw(env, true, "gradcomp native: dropitPack sizes disagree");
    return env.Undefined();
  }
  return Dispatch(info, 3, "dropitPack",
                  [x, k, out] { return gradcomp::dropit_pack(x.data, x.len, k, out.data, out.len); },
                  {info[0], info[2]});
}

// dropitPackedBytes(n, k) -> [bytes, layout]
Napi::Value JS_dropitPackedBytes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  UNPACK_U64(0, n);
  UNPACK_U64(1, k);
  Napi::Array r = Napi::Array::New(env, 2);
  r.Set(0u, Napi::Number::New(env, static_cast<double>(gc_dropit_packed_bytes(n, k))));
  r.Set(1u, Napi::Number::New(env, gc_dropit_layout_for(n, k)));
  return r;
}

// dropitUnpack(payload, out, async)
Napi::Value JS_dropitUnpack(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  UNPACK(uint8_t, 0, in);
  UNPACK(float, 1, out);
  return Dispatch(info, 2, "dropitUnpack",
                  [in, out] { return gradcomp::dropit_unpack(in.data, in.len, out.data, out.len); },
                  {info[0], info[1]});
}

// Runtime settings and introspection.
Napi::Value JS_setConcurrency(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  UNPACK_U64(0, n);
  ThreadPool::instance().set_concurrency(static_cast<unsigned>(n > 256 ? 256 : n));
  return env.Undefined();
}
Napi::Value JS_concurrency(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), ThreadPool::instance().concurrency());
}
Napi::Value JS_isa(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), gradcomp::isa_name(gradcomp::active_isa()));
}
Napi::Value JS_setMaxIsa(const Napi::CallbackInfo& info) {
  std::string s = info[0].ToString().Utf8Value();
  gradcomp::set_max_isa(s == "scalar" ? gradcomp::Isa::kScalar : s == "avx2" ? gradcomp::Isa::kAvx2 : gradcomp::Isa::kAvx512);
  return info.Env().Undefined();
}
Napi::Value JS_lastTopkPath(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), gradcomp::last_topk_path());
}
Napi::Value JS_lastDropitPath(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), gradcomp::last_dropit_path());
}
Napi::Value JS_init(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsFunction()) {
    ThrowRaw(env, false, "gradcomp native: init expects the error factory");
    return env.Undefined();
  }
  void* raw = nullptr;
  if (napi_get_instance_data(env, &raw) == napi_ok && raw != nullptr)
    static_cast<AddonData*>(raw)->make_error = Napi::Persistent(info[0].As<Napi::Function>());
  return env.Undefined();
}

// Baselines for bench/ (same machine, same run).
Napi::Value JS_baselineNthElementEfTopK(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  UNPACK(float, 0, g);
  UNPACK(float, 1, r);
  UNPACK_U64(2, k);
  UNPACK(uint32_t, 3, oidx);
  UNPACK(float, 4, oval);
  if (g.len != r.len || k > r.len || oidx.len < k || oval.len < k) return env.Undefined();
  gradcomp::baseline_nth_element_ef_topk(g.data, r.data, r.len, k, oidx.data, oval.data);
  return env.Undefined();
}
Napi::Value JS_baselineMemcpy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  UNPACK(uint8_t, 0, dst);
  UNPACK(uint8_t, 1, src);
  if (dst.len != src.len) return env.Undefined();
  gradcomp::baseline_parallel_memcpy(dst.data, src.data, dst.len);
  return env.Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData(new AddonData());
  exports.Set("init", Napi::Function::New(env, JS_init));
  exports.Set("topk", Napi::Function::New(env, JS_topk));
  exports.Set("qsgdEncode", Napi::Function::New(env, JS_qsgdEncode));
  exports.Set("qsgdDecode", Napi::Function::New(env, JS_qsgdDecode));
  exports.Set("qsgdPayloadBytes", Napi::Function::New(env, JS_qsgdPayloadBytes));
  exports.Set("powersgdStep", Napi::Function::New(env, JS_powersgdStep));
  exports.Set("orthonormalize", Napi::Function::New(env, JS_orthonormalize));
  exports.Set("powersgdPhase", Napi::Function::New(env, JS_powersgdPhase));
  exports.Set("philoxFill", Napi::Function::New(env, JS_philoxFill));
  exports.Set("reduceInto", Napi::Function::New(env, JS_reduceInto));
  exports.Set("powersgdReconstruct", Napi::Function::New(env, JS_powersgdReconstruct));
  exports.Set("halfPack", Napi::Function::New(env, JS_halfPack));
  exports.Set("halfUnpackAdd", Napi::Function::New(env, JS_halfUnpackAdd));
  exports.Set("signPack", Napi::Function::New(env, JS_signPack));
  exports.Set("signUnpackAdd", Napi::Function::New(env, JS_signUnpackAdd));
  exports.Set("dropitPack", Napi::Function::New(env, JS_dropitPack));
  exports.Set("dropitPackedBytes", Napi::Function::New(env, JS_dropitPackedBytes));
  exports.Set("dropitUnpack", Napi::Function::New(env, JS_dropitUnpack));
  exports.Set("setConcurrency", Napi::Function::New(env, JS_setConcurrency));
  exports.Set("concurrency", Napi::Function::New(env, JS_concurrency));
  exports.Set("isa", Napi::Function::New(env, JS_isa));
  exports.Set("setMaxIsa", Napi::Function::New(env, JS_setMaxIsa));
  exports.Set("lastTopkPath", Napi::Function::New(env, JS_lastTopkPath));
  exports.Set("lastDropitPath", Napi::Function::New(env, JS_lastDropitPath));
  exports.Set("baselineNthElementEfTopK", Napi::Function::New(env, JS_baselineNthElementEfTopK));
  exports.Set("baselineMemcpy", Napi::Function::New(env, JS_baselineMemcpy));
  exports.Set("abi", Napi::Number::New(env, 1));
  return exports;
}

}  // namespace gradcomp_napi

namespace {
Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return gradcomp_napi::Init(env, exports); }
}  // namespace

NODE_API_MODULE(gradcomp, InitModule)
