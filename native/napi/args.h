// Argument unpacking for the raw binding. TypeScript has already validated every argument and
// written the user-facing messages; these helpers re-check the invariants that memory safety
// depends on (type, attachment, length) and throw a plain TypeError if they fail.
#pragma once
#include <napi.h>

#include <cstdint>
#include <string>

namespace gradcomp_napi {

template <typename T>
struct Span {
  T* data = nullptr;
  uint64_t len = 0;
  bool present = false;  // false when the JS value was null/undefined
};

template <typename T>
constexpr napi_typedarray_type typed_array_kind();
template <> constexpr napi_typedarray_type typed_array_kind<float>() { return napi_float32_array; }
template <> constexpr napi_typedarray_type typed_array_kind<double>() { return napi_float64_array; }
template <> constexpr napi_typedarray_type typed_array_kind<uint32_t>() { return napi_uint32_array; }
template <> constexpr napi_typedarray_type typed_array_kind<int32_t>() { return napi_int32_array; }
template <> constexpr napi_typedarray_type typed_array_kind<uint8_t>() { return napi_uint8_array; }
template <> constexpr napi_typedarray_type typed_array_kind<uint16_t>() { return napi_uint16_array; }

// Every N-API call here is raw and its failure tolerated: a worker_thread terminated in the middle
// of a call makes N-API calls fail, and node-addon-api answers such a failure with a fatal error.

// Throws a TypeError (range: a RangeError) unless an exception is pending or JS cannot run.
inline void ThrowRaw(napi_env env, bool range, const std::string& msg) {
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) != napi_ok || pending) return;
  napi_value m, e;
  if (napi_create_string_utf8(env, msg.c_str(), msg.size(), &m) != napi_ok) return;
  if ((range ? napi_create_range_error(env, nullptr, m, &e) : napi_create_type_error(env, nullptr, m, &e)) != napi_ok) return;
  napi_throw(env, e);
}

inline bool is_nullish(napi_env env, napi_value v) {
  napi_valuetype t;
  return napi_typeof(env, v, &t) == napi_ok && (t == napi_null || t == napi_undefined);
}

// Unpacks argument `i` as a typed array of element type T (nullable when `optional`).
// Returns false with a pending JS exception (or a dying environment) when it is not one.
template <typename T>
bool unpack(const Napi::CallbackInfo& info, size_t i, Span<T>* out, bool optional = false) {
  napi_env env = info.Env();
  napi_value v = info[i];
  if (optional && is_nullish(env, v)) return true;
  bool is_ta = false;
  napi_typedarray_type type;
  napi_value buffer;
  size_t length = 0, offset = 0;
  void* data = nullptr;
  if (napi_is_typedarray(env, v, &is_ta) != napi_ok || !is_ta ||
      napi_get_typedarray_info(env, v, &type, &length, &data, &buffer, &offset) != napi_ok || type != typed_array_kind<T>()) {
    ThrowRaw(env, false, "gradcomp native: argument " + std::to_string(i) + " has the wrong type");
    return false;
  }
  bool detached = false;
  if (napi_is_detached_arraybuffer(env, buffer, &detached) != napi_ok || detached || (data == nullptr && length > 0)) {
    ThrowRaw(env, false, "gradcomp native: argument " + std::to_string(i) + " is detached");
    return false;
  }
  out->data = static_cast<T*>(data);
  out->len = length;
  out->present = true;
  return true;
}

inline bool unpack_u64(const Napi::CallbackInfo& info, size_t i, uint64_t* out) {
  napi_env env = info.Env();
  double d = 0.0;
  if (napi_get_value_double(env, info[i], &d) != napi_ok) {
    ThrowRaw(env, false, "gradcomp native: argument " + std::to_string(i) + " must be a number");
    return false;
  }
  if (!(d >= 0.0 && d <= 9007199254740991.0) || d != static_cast<double>(static_cast<uint64_t>(d))) {
    ThrowRaw(env, true, "gradcomp native: argument " + std::to_string(i) + " must be a safe integer >= 0");
    return false;
  }
  *out = static_cast<uint64_t>(d);
  return true;
}

// A number argument (0 when it is not one).
inline double arg_double(const Napi::CallbackInfo& info, size_t i) {
  double d = 0.0;
  napi_value v;
  if (napi_coerce_to_number(info.Env(), info[i], &v) != napi_ok || napi_get_value_double(info.Env(), v, &d) != napi_ok) return 0.0;
  return d;
}

// The element type of a typed-array argument (napi_uint8_clamped_array + 1 when it is not one).
inline int arg_typed_array_kind(const Napi::CallbackInfo& info, size_t i) {
  bool is_ta = false;
  napi_typedarray_type type;
  size_t len, off;
  void* data;
  napi_value buf;
  if (napi_is_typedarray(info.Env(), info[i], &is_ta) != napi_ok || !is_ta ||
      napi_get_typedarray_info(info.Env(), info[i], &type, &len, &data, &buf, &off) != napi_ok) {
    return -1;
  }
  return static_cast<int>(type);
}

// A boolean argument (false when it is not one).
inline bool arg_bool(const Napi::CallbackInfo& info, size_t i) {
  bool b = false;
  napi_value v;
  if (napi_coerce_to_bool(info.Env(), info[i], &v) != napi_ok || napi_get_value_bool(info.Env(), v, &b) != napi_ok) return false;
  return b;
}

}  // namespace gradcomp_napi
