#include <mutex>
#include <string>
#include <vector>

#include "common.cuh"

namespace gc_cuda {

namespace {
thread_local std::string t_error;
struct Buffer { void* p = nullptr; size_t bytes = 0; };
std::vector<Buffer> g_slots(static_cast<size_t>(Slot::Count));
void* g_host = nullptr;
size_t g_host_bytes = 0;
int g_sms = 0;
}  // namespace

gc_status fail(cudaError_t e, const char* where) {
  t_error = std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e) + " (" + where + ")";
  cudaGetLastError();  // clear a sticky-free error so the next op can run
  return e == cudaErrorMemoryAllocation ? GC_ERR_OUT_OF_MEMORY : GC_ERR_DEVICE;
}

const char* last_error() { return t_error.c_str(); }

gc_status read_back(void* host, const void* dev, size_t bytes, cudaStream_t s) {
  GC_CU(cudaMemcpyAsync(host, dev, bytes, cudaMemcpyDeviceToHost, s));
  GC_CU(cudaStreamSynchronize(s));
  return GC_OK;
}

void* scratch(Slot slot, size_t bytes, gc_status* st) {
  Buffer& s = g_slots.at(static_cast<size_t>(slot));
  if (bytes == 0) bytes = 256;
  if (s.bytes >= bytes) return s.p;
  if (s.p) cudaFree(s.p);
  s.p = nullptr;
  s.bytes = 0;
  size_t want = bytes + bytes / 8;  // headroom: repeated calls on growing tensors
  cudaError_t e = cudaMalloc(&s.p, want);
  if (e != cudaSuccess) {
    e = cudaMalloc(&s.p, bytes);
    want = bytes;
  }
  if (e != cudaSuccess) { *st = fail(e, "scratch cudaMalloc"); s.p = nullptr; return nullptr; }
  s.bytes = want;
  return s.p;
}

void* host_staging(size_t bytes, gc_status* st) {
  if (g_host_bytes >= bytes) return g_host;
  if (g_host) cudaFreeHost(g_host);
  g_host = nullptr;
  g_host_bytes = 0;
  size_t want = bytes < 65536 ? 65536 : bytes;
  cudaError_t e = cudaMallocHost(&g_host, want);
  if (e != cudaSuccess) { *st = fail(e, "cudaMallocHost"); return nullptr; }
  g_host_bytes = want;
  return g_host;
}

int sm_count() {
  if (g_sms == 0) {
    int dev = 0, v = 0;
    if (cudaGetDevice(&dev) == cudaSuccess && cudaDeviceGetAttribute(&v, cudaDevAttrMultiProcessorCount, dev) == cudaSuccess && v > 0) g_sms = v;
    else g_sms = 16;
  }
  return g_sms;
}

}  // namespace gc_cuda
