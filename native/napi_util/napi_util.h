// The N-API helper shared by gradcomp's three addons (CPU: native/napi, CUDA: cuda/napi, MPI:
// native/mpi): argument unpacking, coded errors, promise settling, type-tagged handles and
// export tables. Raw N-API only, every failure tolerated: a worker_thread terminated in the middle
// of a call makes N-API calls fail, and the addon must then return quietly instead of aborting.
//
// Error contract: argument errors raised here are JS TypeError/RangeError objects with a `code`
// (ERR_GRADCOMP_INVALID_ARG_TYPE / ERR_GRADCOMP_OUT_OF_RANGE); failed kernel statuses go through
// the error factory lib/native hands each addon at load (SetErrorFactory), so they become the
// same coded GradcompErrors the TypeScript layer throws.
#pragma once
#include <node_api.h>

#ifndef GC_ABI_VERSION
#error "GC_ABI_VERSION comes from package.json (gradcomp.abi) through the build: binding.gyp, CMakeLists.txt"
#endif

#include <cstdint>
#include <functional>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "gradcomp/gradcomp.h"

namespace gcnapi {

// ---- errors ------------------------------------------------------------------------------

enum class ErrKind { kError, kType, kRange };

inline bool Pending(napi_env env) {
  bool p = false;
  return napi_is_exception_pending(env, &p) != napi_ok || p;
}

// A JS error of `kind` with .code = `code`; false when it could not be made.
inline bool MakeError(napi_env env, ErrKind kind, const char* code, const std::string& msg, napi_value* out) {
  napi_value m, c;
  if (napi_create_string_utf8(env, msg.c_str(), msg.size(), &m) != napi_ok) return false;
  if (napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &c) != napi_ok) return false;
  const napi_status st = kind == ErrKind::kType ? napi_create_type_error(env, c, m, out)
                         : kind == ErrKind::kRange ? napi_create_range_error(env, c, m, out)
                                                   : napi_create_error(env, c, m, out);
  return st == napi_ok;
}

// Throws unless an exception is already pending (or JS cannot run).
inline void Throw(napi_env env, ErrKind kind, const char* code, const std::string& msg) {
  if (Pending(env)) return;
  napi_value e;
  if (MakeError(env, kind, code, msg, &e)) napi_throw(env, e);
}
inline void ThrowType(napi_env env, const std::string& msg) { Throw(env, ErrKind::kType, "ERR_GRADCOMP_INVALID_ARG_TYPE", msg); }
inline void ThrowRange(napi_env env, const std::string& msg) { Throw(env, ErrKind::kRange, "ERR_GRADCOMP_OUT_OF_RANGE", msg); }

// Per-addon, per-environment data: the JS factory (status, op, detail) -> coded Error.
struct InstanceData {
  napi_ref make_error = nullptr;
  void* addon = nullptr;  // the addon's own per-environment state, if any (not freed here)
};

inline InstanceData* Data(napi_env env) {
  void* raw = nullptr;
  if (napi_get_instance_data(env, &raw) != napi_ok) return nullptr;
  return static_cast<InstanceData*>(raw);
}

inline void InitInstance(napi_env env) {
  auto* d = new (std::nothrow) InstanceData();
  if (d == nullptr) return;
  napi_set_instance_data(env, d, [](napi_env e, void* p, void*) {
    auto* data = static_cast<InstanceData*>(p);
    if (data->make_error != nullptr) napi_delete_reference(e, data->make_error);
    delete data;
  }, nullptr);
}

// `setErrorFactory(fn)`, exported by every addon.
inline napi_value SetErrorFactory(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value fn;
  napi_valuetype t;
  if (napi_get_cb_info(env, info, &argc, &fn, nullptr, nullptr) != napi_ok || argc < 1 ||
      napi_typeof(env, fn, &t) != napi_ok || t != napi_function) {
    ThrowType(env, "gradcomp native: setErrorFactory expects a function");
    return nullptr;
  }
  InstanceData* d = Data(env);
  if (d == nullptr) return nullptr;
  if (d->make_error != nullptr) napi_delete_reference(env, d->make_error);
  d->make_error = nullptr;
  napi_create_reference(env, fn, 1, &d->make_error);
  return nullptr;
}

// The coded error for a failed status: the factory's, else a plain Error with a code.
inline bool StatusError(napi_env env, gc_status st, const std::string& op, const std::string& detail, napi_value* out) {
  InstanceData* d = Data(env);
  napi_value fn, recv, args[3];
  if (d != nullptr && d->make_error != nullptr && napi_get_reference_value(env, d->make_error, &fn) == napi_ok &&
      fn != nullptr && napi_get_undefined(env, &recv) == napi_ok && napi_create_int32(env, st, &args[0]) == napi_ok &&
      napi_create_string_utf8(env, op.c_str(), op.size(), &args[1]) == napi_ok &&
      napi_create_string_utf8(env, detail.c_str(), detail.size(), &args[2]) == napi_ok &&
      napi_call_function(env, recv, fn, 3, args, out) == napi_ok) {
    return true;
  }
  if (Pending(env)) return false;
  return MakeError(env, ErrKind::kError, "ERR_GRADCOMP_INTERNAL",
                   "gradcomp: " + op + " failed with status " + std::to_string(st) + (detail.empty() ? "" : ": " + detail), out);
}

inline void ThrowStatus(napi_env env, gc_status st, const std::string& op, const std::string& detail = "") {
  napi_value e;
  if (st != GC_OK && !Pending(env) && StatusError(env, st, op, detail, &e)) napi_throw(env, e);
}

// Runs a kernel entry, turning C++ exceptions into statuses (nothing may unwind into N-API).
template <typename F>
gc_status Guarded(F&& fn) {
  try {
    return fn();
  } catch (const std::bad_alloc&) {
    return GC_ERR_OUT_OF_MEMORY;
  } catch (...) {
    return GC_ERR_INTERNAL;
  }
}

// ---- arguments ---------------------------------------------------------------------------

constexpr size_t kMaxArgs = 16;

struct Args {
  napi_env env = nullptr;
  size_t argc = 0;
  napi_value argv[kMaxArgs] = {};
};

// Reads the call's arguments (missing ones are undefined); false when the call cannot proceed.
inline bool GetArgs(napi_env env, napi_callback_info info, Args* a) {
  a->env = env;
  a->argc = kMaxArgs;
  return napi_get_cb_info(env, info, &a->argc, a->argv, nullptr, nullptr) == napi_ok;
}

template <typename T>
struct Span {
  T* data = nullptr;
  uint64_t len = 0;
  bool present = false;  // false when the JS value was null or undefined (optional arguments)
};

template <typename T> constexpr napi_typedarray_type KindOf();
template <> constexpr napi_typedarray_type KindOf<float>() { return napi_float32_array; }
template <> constexpr napi_typedarray_type KindOf<double>() { return napi_float64_array; }
template <> constexpr napi_typedarray_type KindOf<uint32_t>() { return napi_uint32_array; }
template <> constexpr napi_typedarray_type KindOf<int32_t>() { return napi_int32_array; }
template <> constexpr napi_typedarray_type KindOf<uint8_t>() { return napi_uint8_array; }
template <> constexpr napi_typedarray_type KindOf<uint16_t>() { return napi_uint16_array; }

inline bool IsNullish(napi_env env, napi_value v) {
  napi_valuetype t;
  return v == nullptr || (napi_typeof(env, v, &t) == napi_ok && (t == napi_null || t == napi_undefined));
}

// The element kind of a typed array argument, or -1.
inline int TypedArrayKind(const Args& a, size_t i) {
  bool is = false;
  napi_typedarray_type type;
  size_t len, off;
  void* data;
  napi_value buf;
  if (napi_is_typedarray(a.env, a.argv[i], &is) != napi_ok || !is ||
      napi_get_typedarray_info(a.env, a.argv[i], &type, &len, &data, &buf, &off) != napi_ok) {
    return -1;
  }
  return static_cast<int>(type);
}

// Argument i as a typed array of element type T (null/undefined allowed when `optional`).
template <typename T>
bool Unpack(const Args& a, size_t i, Span<T>* out, bool optional = false) {
  napi_value v = a.argv[i];
  if (optional && IsNullish(a.env, v)) return true;
  bool is = false;
  napi_typedarray_type type;
  napi_value buffer;
  size_t length = 0, offset = 0;
  void* data = nullptr;
  if (napi_is_typedarray(a.env, v, &is) != napi_ok || !is ||
      napi_get_typedarray_info(a.env, v, &type, &length, &data, &buffer, &offset) != napi_ok || type != KindOf<T>()) {
    ThrowType(a.env, "gradcomp native: argument " + std::to_string(i) + " has the wrong type");
    return false;
  }
  bool detached = false;
  if (napi_is_detached_arraybuffer(a.env, buffer, &detached) != napi_ok || detached || (data == nullptr && length > 0)) {
    Throw(a.env, ErrKind::kError, "ERR_GRADCOMP_DETACHED", "gradcomp native: argument " + std::to_string(i) + " is detached");
    return false;
  }
  out->data = static_cast<T*>(data);
  out->len = length;
  out->present = true;
  return true;
}

// Argument i as a safe integer >= 0 (at most `max`).
inline bool U64(const Args& a, size_t i, uint64_t* out, uint64_t max = 9007199254740991ULL) {
  double d = 0.0;
  if (napi_get_value_double(a.env, a.argv[i], &d) != napi_ok) {
    ThrowType(a.env, "gradcomp native: argument " + std::to_string(i) + " must be a number");
    return false;
  }
  if (!(d >= 0.0 && d <= 9007199254740991.0) || d != static_cast<double>(static_cast<uint64_t>(d)) ||
      static_cast<uint64_t>(d) > max) {
    ThrowRange(a.env, "gradcomp native: argument " + std::to_string(i) + " is out of range");
    return false;
  }
  *out = static_cast<uint64_t>(d);
  return true;
}

// Argument i as a finite or infinite number (NaN refused).
inline bool F64(const Args& a, size_t i, double* out) {
  if (napi_get_value_double(a.env, a.argv[i], out) != napi_ok || *out != *out) {
    ThrowType(a.env, "gradcomp native: argument " + std::to_string(i) + " must be a number");
    return false;
  }
  return true;
}

inline bool Bool(const Args& a, size_t i) {
  bool b = false;
  napi_value v;
  if (napi_coerce_to_bool(a.env, a.argv[i], &v) != napi_ok || napi_get_value_bool(a.env, v, &b) != napi_ok) return false;
  return b;
}

inline bool Str(const Args& a, size_t i, std::string* out) {
  size_t len = 0;
  if (napi_get_value_string_utf8(a.env, a.argv[i], nullptr, 0, &len) != napi_ok) {
    ThrowType(a.env, "gradcomp native: argument " + std::to_string(i) + " must be a string");
    return false;
  }
  out->assign(len, '\0');
  return napi_get_value_string_utf8(a.env, a.argv[i], &(*out)[0], len + 1, &len) == napi_ok;
}

// ---- results -----------------------------------------------------------------------------

inline napi_value Undefined(napi_env env) {
  napi_value v = nullptr;
  napi_get_undefined(env, &v);
  return v;
}
inline napi_value Number(napi_env env, double d) {
  napi_value v = nullptr;
  napi_create_double(env, d, &v);
  return v;
}
inline napi_value String(napi_env env, const std::string& s) {
  napi_value v = nullptr;
  napi_create_string_utf8(env, s.c_str(), s.size(), &v);
  return v;
}
inline void SetNamed(napi_env env, napi_value obj, const char* key, napi_value v) {
  if (v != nullptr) napi_set_named_property(env, obj, key, v);
}

}  // namespace gcnapi

// Declares a JS entry point `name` with `a` (gcnapi::Args) in scope.
#define GC_JS(name)                                                      \
  static napi_value name##_impl(gcnapi::Args& a);                        \
  napi_value name(napi_env env, napi_callback_info info) {               \
    gcnapi::Args a;                                                      \
    if (!gcnapi::GetArgs(env, info, &a)) return nullptr;                 \
    return name##_impl(a);                                               \
  }                                                                      \
  static napi_value name##_impl(gcnapi::Args& a)

#define GC_SPAN(T, i, var, ...)            \
  gcnapi::Span<T> var;                     \
  if (!gcnapi::Unpack<T>(a, i, &var, ##__VA_ARGS__)) return nullptr;
#define GC_U64(i, var, ...)                \
  uint64_t var = 0;                        \
  if (!gcnapi::U64(a, i, &var, ##__VA_ARGS__)) return nullptr;
#define GC_F64(i, var)                     \
  double var = 0.0;                        \
  if (!gcnapi::F64(a, i, &var)) return nullptr;
#define GC_CHECK(cond, msg)                \
  if (!(cond)) {                           \
    gcnapi::ThrowRange(a.env, std::string("gradcomp native: ") + (msg)); \
    return nullptr;                        \
  }
