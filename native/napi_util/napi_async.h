// The N-API helper, part 2: kernels on the libuv pool settling Promises, type-tagged handles,
// and export tables (part 1, napi_util.h, has errors and argument unpacking).
#pragma once
#include <dlfcn.h>

#include <atomic>

#include "napi_util.h"

namespace gcnapi {

// ---- async ops: a kernel on the libuv pool, settling a Promise -----------------------------

// fn runs off the JS thread and may fill `detail` (a runtime's error text) on failure; result,
// when given, builds the resolved value on the JS thread.
using OpFn = std::function<gc_status(std::string* detail)>;
using ResultFn = std::function<napi_value(napi_env)>;

struct AsyncOp {
  napi_async_work work = nullptr;
  napi_deferred deferred = nullptr;
  std::vector<napi_ref> keep;  // the JS objects whose memory fn touches, alive until settled
  OpFn fn;
  ResultFn result;
  std::string op, detail;
  gc_status status = GC_ERR_INTERNAL;

  static void Execute(napi_env, void* data) {
    auto* self = static_cast<AsyncOp*>(data);
    self->status = Guarded([&] { return self->fn(&self->detail); });
  }
  // Settles with raw calls and ignores their failure: in a terminating environment the promise
  // is simply never settled, which nobody can observe.
  static void Complete(napi_env env, napi_status, void* data) {
    auto* self = static_cast<AsyncOp*>(data);
    napi_value v = nullptr;
    if (self->status == GC_OK) {
      v = self->result ? self->result(env) : Undefined(env);
      if (v != nullptr) napi_resolve_deferred(env, self->deferred, v);
    } else if (StatusError(env, self->status, self->op, self->detail, &v)) {
      napi_reject_deferred(env, self->deferred, v);
    }
    for (napi_ref r : self->keep) napi_delete_reference(env, r);
    napi_delete_async_work(env, self->work);
    delete self;
  }
};

// Queues fn on the libuv pool and returns its Promise; `keep` are the arguments whose memory it
// touches. Returns nullptr (with an exception pending, or a dying environment) on failure.
inline napi_value StartAsync(napi_env env, const std::string& op, OpFn fn, const std::vector<napi_value>& keep,
                             ResultFn result = nullptr) {
  auto* self = new (std::nothrow) AsyncOp();
  if (self == nullptr) {
    Throw(env, ErrKind::kError, "ERR_GRADCOMP_OUT_OF_MEMORY", "gradcomp: out of memory starting " + op);
    return nullptr;
  }
  self->fn = std::move(fn);
  self->result = std::move(result);
  self->op = op;
  napi_value promise = nullptr, name = nullptr;
  if (napi_create_promise(env, &self->deferred, &promise) != napi_ok ||
      napi_create_string_utf8(env, "gradcomp", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_async_work(env, nullptr, name, AsyncOp::Execute, AsyncOp::Complete, self, &self->work) != napi_ok) {
    delete self;
    return nullptr;
  }
  for (napi_value v : keep) {
    napi_valuetype t;
    napi_ref r;
    if (v != nullptr && napi_typeof(env, v, &t) == napi_ok && (t == napi_object || t == napi_external) &&
        napi_create_reference(env, v, 1, &r) == napi_ok) {
      self->keep.push_back(r);
    }
  }
  if (napi_queue_async_work(env, self->work) != napi_ok) {
    for (napi_ref r : self->keep) napi_delete_reference(env, r);
    napi_delete_async_work(env, self->work);
    delete self;
    return nullptr;
  }
  return promise;
}

// The common shape of a kernel entry: run now (sync twin, throwing a failed status) or on the
// pool (a Promise). `keep` are the JS arguments whose memory the kernel touches.
inline napi_value Dispatch(const Args& a, bool async, const char* op, std::function<gc_status()> fn,
                           const std::vector<napi_value>& keep) {
  if (!async) {
    ThrowStatus(a.env, Guarded(fn), op);
    return Undefined(a.env);
  }
  return StartAsync(a.env, op, [fn](std::string*) { return fn(); }, keep);
}

// ---- type-tagged handles -----------------------------------------------------------------

// An External carrying `ptr`, tagged so that only this addon's own handles of this kind are
// accepted back (napi_type_tag_object): a foreign External or a plain object is refused.
template <typename T>
napi_value NewHandle(napi_env env, T* ptr, const napi_type_tag& tag, napi_finalize fin) {
  napi_value v = nullptr;
  if (napi_create_external(env, ptr, fin, nullptr, &v) != napi_ok) return nullptr;
  if (napi_type_tag_object(env, v, &tag) != napi_ok) return nullptr;
  return v;
}

// The pointer of a handle made by NewHandle with `tag`, or nullptr (with a TypeError thrown).
template <typename T>
T* GetHandle(const Args& a, size_t i, const napi_type_tag& tag, bool optional = false) {
  napi_value v = a.argv[i];
  if (optional && IsNullish(a.env, v)) return nullptr;
  napi_valuetype t;
  bool ok = false;
  void* p = nullptr;
  if (napi_typeof(a.env, v, &t) != napi_ok || t != napi_external || napi_check_object_type_tag(a.env, v, &tag, &ok) != napi_ok ||
      !ok || napi_get_value_external(a.env, v, &p) != napi_ok || p == nullptr) {
    ThrowType(a.env, "gradcomp native: argument " + std::to_string(i) + " is not a gradcomp handle of the expected kind");
    return nullptr;
  }
  return static_cast<T*>(p);
}

// ---- export tables -----------------------------------------------------------------------

struct Fn {
  const char* name;
  napi_callback cb;
};

inline void Export(napi_env env, napi_value exports, const Fn* fns, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    napi_value f;
    if (napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].cb, nullptr, &f) == napi_ok)
      napi_set_named_property(env, exports, fns[i].name, f);
  }
}

// Node unloads an addon (dlclose) when the last worker_thread that loaded it exits, while threads
// the addon started (its kernel pool, a comm thread) still run or sleep in its code: their next
// instruction is then unmapped memory (seen as a SIGSEGV at the end of jobs on a busy machine).
// An addon keeps itself loaded for the life of the process instead: RTLD_NODELETE on its own path.
inline void PinLibrary() {
  static std::atomic<bool> pinned{false};
  if (pinned.load(std::memory_order_acquire)) return;
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&PinLibrary), &info) != 0 && info.dli_fname != nullptr &&
      dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE) != nullptr)
    pinned.store(true, std::memory_order_release);
}

// Every addon exports `abi` (GC_ABI_VERSION, from package.json's gradcomp.abi at build time) and
// `setErrorFactory`.
inline void ExportCommon(napi_env env, napi_value exports) {
  PinLibrary();
  InitInstance(env);
  SetNamed(env, exports, "abi", Number(env, GC_ABI_VERSION));
  const Fn common[] = {{"setErrorFactory", SetErrorFactory}};
  Export(env, exports, common, 1);
}

}  // namespace gcnapi
