// The device probe. Static cudart loads libcuda.so lazily, so this file links and the addon loads
// on machines with no driver; the first runtime call is where a missing driver shows up.
#include "probe.h"

#include <cuda_runtime.h>
#include <stdio.h>
#include <string.h>

namespace gc_cuda {

const char* statusName(ProbeStatus s) {
  switch (s) {
    case kOk: return "ok";
    case kNoDriver: return "no-driver";
    case kDriverTooOld: return "driver-too-old";
    case kNoDevice: return "no-device";
    case kUnsupportedArch: return "unsupported-arch";
    default: return "error";
  }
}

static void setDetail(Probe& p, const char* what, cudaError_t e) {
  snprintf(p.detail, sizeof p.detail, "%s: %s (%s)", what, cudaGetErrorName(e), cudaGetErrorString(e));
}

Probe probe() {
  Probe p;
  memset(&p, 0, sizeof p);
  p.status = kError;
  cudaRuntimeGetVersion(&p.runtimeVersion);
  cudaError_t e = cudaDriverGetVersion(&p.driverVersion);
  if (e != cudaSuccess || p.driverVersion == 0) {
    p.status = kNoDriver;
    if (e != cudaSuccess) setDetail(p, "cudaDriverGetVersion", e);
    else snprintf(p.detail, sizeof p.detail, "no NVIDIA driver is installed (libcuda.so not found)");
    return p;
  }
  e = cudaGetDeviceCount(&p.deviceCount);
  if (e == cudaErrorInsufficientDriver) { p.status = kDriverTooOld; setDetail(p, "cudaGetDeviceCount", e); return p; }
  if (e == cudaErrorNoDevice || (e == cudaSuccess && p.deviceCount == 0)) {
    p.status = kNoDevice;
    p.deviceCount = 0;
    if (e != cudaSuccess) setDetail(p, "cudaGetDeviceCount", e);
    return p;
  }
  if (e != cudaSuccess) {
    // A driver that cannot initialise (no kernel module, a container without the device files).
    p.status = e == cudaErrorInitializationError ? kNoDriver : kError;
    p.deviceCount = 0;
    setDetail(p, "cudaGetDeviceCount", e);
    return p;
  }
  int usable = 0;
  for (int i = 0; i < p.deviceCount && i < 16; i++) {
    cudaDeviceProp prop;
    e = cudaGetDeviceProperties(&prop, i);
    if (e != cudaSuccess) { setDetail(p, "cudaGetDeviceProperties", e); continue; }
    DeviceInfo& d = p.devices[i];
    snprintf(d.name, sizeof d.name, "%s", prop.name);
    d.ccMajor = prop.major;
    d.ccMinor = prop.minor;
    d.memBytes = prop.totalGlobalMem;
    if (prop.major * 10 + prop.minor >= kMinCc) usable++;
  }
  p.status = usable > 0 ? kOk : kUnsupportedArch;
  if (!usable && p.detail[0] == 0) snprintf(p.detail, sizeof p.detail, "no device of compute capability >= %d.%d", kMinCc / 10, kMinCc % 10);
  return p;
}

}  // namespace gc_cuda
