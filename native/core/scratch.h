// Per-calling-thread scratch memory for kernels: grown on demand and reused, so hot paths do
// not allocate (or page-fault fresh memory) on every call. Only the thread that runs an op's
// entry point owns its arena; pool workers receive plain pointers into it.
#pragma once
#include <cstddef>
#include <cstdint>

namespace gradcomp {

class Scratch {
 public:
  // Returns at least `bytes` of 64-byte-aligned memory, or nullptr on allocation failure.
  // Invalidates pointers from earlier calls on this thread.
  static void* get(size_t bytes);
  // Frees this thread's arena.
  static void release();
};

// Carves typed, 64-byte-aligned sub-arrays out of one Scratch block.
class Carver {
 public:
  template <typename T>
  void add(T** slot, size_t count) { slots_[n_] = reinterpret_cast<void**>(slot); sizes_[n_] = round(count * sizeof(T)); ++n_; }
  // Returns false on allocation failure.
  bool commit();

 private:
  static size_t round(size_t b) { return (b + 127) & ~static_cast<size_t>(63); }
  void** slots_[16];
  size_t sizes_[16];
  int n_ = 0;
};

}  // namespace gradcomp
