// Device probe: what the CUDA runtime and driver report, classified for the loader
// (specs/packaging.md §4.3 d). No exceptions cross this boundary; the result is plain data.
#pragma once
#include <stddef.h>

namespace gc_cuda {

enum ProbeStatus { kOk = 0, kNoDriver = 1, kDriverTooOld = 2, kNoDevice = 3, kUnsupportedArch = 4, kError = 5 };

struct DeviceInfo {
  char name[256];
  int ccMajor, ccMinor;
  size_t memBytes;
};

struct Probe {
  ProbeStatus status;
  int driverVersion;   // e.g. 13000; 0 when no driver is installed
  int runtimeVersion;  // the statically linked cudart's version
  int deviceCount;
  DeviceInfo devices[16];
  char detail[256];    // the CUDA error name and string when a call failed
};

// Lowest compute capability this build carries SASS for (CMake passes GC_MIN_CC, e.g. 75).
#ifndef GC_MIN_CC
#define GC_MIN_CC 75
#endif
constexpr int kMinCc = GC_MIN_CC;

Probe probe();
const char* statusName(ProbeStatus s);

}  // namespace gc_cuda
