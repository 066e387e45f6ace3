// Argument unpacking for the raw binding. TypeScript has already validated every argument and
// written the user-facing messages; these helpers re-check the invariants that memory safety
// depends on (type, attachment, length) and throw a plain TypeError if they fail.
#pragma once
#include <napi.h>

#include <cstdint>

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

// Unpacks argument `i` as a typed array of element type T (nullable when `optional`).
// Returns false with a pending JS exception when it is not one.
template <typename T>
bool unpack(const Napi::CallbackInfo& info, size_t i, Span<T>* out, bool optional = false) {
  Napi::Env env = info.Env();
  Napi::Value v = info[i];
  if (optional && (v.IsNull() || v.IsUndefined())) return true;
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != typed_array_kind<T>()) {
    Napi::TypeError::New(env, "gradcomp native: argument " + std::to_string(i) + " has the wrong type")
        .ThrowAsJavaScriptException();
    return false;
  }
  napi_value buffer;
  napi_typedarray_type type;
  size_t length, offset;
  void* data;
  if (napi_get_typedarray_info(env, v, &type, &length, &data, &buffer, &offset) != napi_ok) return false;
  bool detached = false;
  if (napi_is_detached_arraybuffer(env, buffer, &detached) != napi_ok || detached || (data == nullptr && length > 0)) {
    Napi::TypeError::New(env, "gradcomp native: argument " + std::to_string(i) + " is detached")
        .ThrowAsJavaScriptException();
    return false;
  }
  out->data = static_cast<T*>(data);
  out->len = length;
  out->present = true;
  return true;
}

inline bool unpack_u64(const Napi::CallbackInfo& info, size_t i, uint64_t* out) {
  Napi::Value v = info[i];
  if (!v.IsNumber()) {
    Napi::TypeError::New(info.Env(), "gradcomp native: argument " + std::to_string(i) + " must be a number")
        .ThrowAsJavaScriptException();
    return false;
  }
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0.0 && d <= 9007199254740991.0) || d != static_cast<double>(static_cast<uint64_t>(d))) {
    Napi::RangeError::New(info.Env(), "gradcomp native: argument " + std::to_string(i) + " must be a safe integer >= 0")
        .ThrowAsJavaScriptException();
    return false;
  }
  *out = static_cast<uint64_t>(d);
  return true;
}

}  // namespace gradcomp_napi
