// The CUDA addon's N-API entry. This stage exposes the ABI number and the device probe; the
// loader requires it inside try and asks probe() before any op is routed here.
#include <napi.h>

#include "../runtime/probe.h"

namespace {

constexpr int kAbi = 1;

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
  exports.Set("probe", Napi::Function::New(env, JS_probe, "probe"));
  return exports;
}

}  // namespace

NODE_API_MODULE(gradcomp_cuda, Init)
