// Shared pieces of the CUDA kernels: error capture, the selection key, the scratch arena and
// warp-aggregated appends. Every entry in ops.h is a checked host function: it launches on the
// stream it is given, checks each launch, and returns a gc_status (never throws).
#pragma once
#include <cuda_runtime.h>
#include <stddef.h>
#include <stdint.h>

#include "gradcomp/gradcomp.h"

namespace gc_cuda {

// Records a CUDA failure (its text is kept for the error message) and maps it to a status.
gc_status fail(cudaError_t e, const char* where);
// The text of the last failure on this thread ("" when none).
const char* last_error();

#define GC_CU(call)                                   \
  do {                                                \
    cudaError_t gc_e_ = (call);                       \
    if (gc_e_ != cudaSuccess) return ::gc_cuda::fail(gc_e_, #call); \
  } while (0)
// After a kernel launch: a bad configuration shows up here, not at the next sync.
#define GC_LAUNCHED(name) GC_CU(cudaGetLastError())
#define GC_TRY(st)                         \
  do {                                     \
    gc_status gc_s_ = (st);                \
    if (gc_s_ != GC_OK) return gc_s_;      \
  } while (0)

// The order every selection uses: the bits of |v| (NaN > +Inf > finite; -0 == +0).
__device__ __forceinline__ uint32_t mag_key(float v) { return __float_as_uint(v) & 0x7fffffffu; }

// The CUDA backend's scratch arena: one device buffer per named slot, grown on demand and kept
// (ops run one at a time on the stream, so a slot is never shared by two ops in flight). Every
// slot is named here, once, with the op that uses it: no numbers coordinated by comments.
enum class Slot : int {
  TopkCounters, TopkCandKey, TopkCandIdx, TopkTies, TopkTiesSorted, TopkSortIdx, TopkSortVal, TopkSample,
  CubTemp, QsgdBadFlag, DropitIdx, DropitScan, DropitFlag, PowersgdQt, PowersgdPart,
  Count
};
void* scratch(Slot slot, size_t bytes, gc_status* st);

// Copies `bytes` from the device to the host and waits for them (small read-backs).
gc_status read_back(void* host, const void* dev, size_t bytes, cudaStream_t s);

// Runs a CUB device algorithm: f(temp, bytes) is called once to size its temporary storage
// (temp == nullptr) and once to run it in the CubTemp slot.
template <typename F>
gc_status cub_run(F&& f) {
  size_t bytes = 0;
  GC_CU(f(nullptr, bytes));
  gc_status st = GC_OK;
  void* temp = scratch(Slot::CubTemp, bytes, &st);
  if (st != GC_OK) return st;
  GC_CU(f(temp, bytes));
  return GC_OK;
}
// Pinned host staging for small read-backs (4 KiB .. 64 KiB).
void* host_staging(size_t bytes, gc_status* st);
int sm_count();

// Blocks for a grid-stride pass over n elements.
inline unsigned grid_for(uint64_t n, unsigned threads, unsigned per_sm = 4) {
  uint64_t want = (n + threads - 1) / threads;
  uint64_t cap = static_cast<uint64_t>(sm_count()) * per_sm;
  if (want > cap) want = cap;
  return static_cast<unsigned>(want < 1 ? 1 : want);
}

// Warp-aggregated append: every lane of the (converged) warp calls it; lanes with `take` get
// consecutive slots of *counter. Returns the slot, or ~0 for lanes that do not take one.
__device__ __forceinline__ uint32_t warp_append(bool take, uint32_t* counter) {
  const unsigned mask = __ballot_sync(0xffffffffu, take);
  if (mask == 0) return ~0u;
  const int lane = threadIdx.x & 31;
  const int leader = __ffs(mask) - 1;
  uint32_t base = 0;
  if (lane == leader) base = atomicAdd(counter, static_cast<uint32_t>(__popc(mask)));
  base = __shfl_sync(0xffffffffu, base, leader);
  return take ? base + static_cast<uint32_t>(__popc(mask & ((1u << lane) - 1u))) : ~0u;
}

// Writes a small struct (a payload header) to device memory from a kernel argument.
template <typename T>
__global__ void k_write_struct(uint8_t* dst, T v) {
  const uint8_t* src = reinterpret_cast<const uint8_t*>(&v);
  for (unsigned i = threadIdx.x; i < sizeof(T); i += blockDim.x) dst[i] = src[i];
}

}  // namespace gc_cuda
