// Scratch memory is explicit (CUB's pattern): an op reports how much temporary memory it needs
// (`<op>_scratch_bytes`, a function of its sizes only), the caller provides it in the op's
// descriptor (gc_scratch), and the op carves it up with a Carver; a kernel never allocates
// tensor-sized memory behind the caller's back. The CPU addon provides it from its backend's
// arena (native/napi/arena.h: blocks reused across calls).
#pragma once
#include <cstddef>
#include <cstdint>

#include "gradcomp/gradcomp.h"

namespace gradcomp {

// Lays out typed, 64-byte-aligned sub-arrays: first to size them (bytes()), then over the
// provided scratch (commit()). The same sequence of add() calls must do both.
class Carver {
 public:
  Carver() = default;
  explicit Carver(gc_scratch s) : s_(s) {}
  template <typename T>
  void add(T** slot, size_t count) {
    if (n_ < kMax) { slots_[n_] = reinterpret_cast<void**>(slot); sizes_[n_] = round(count * sizeof(T)); }
    ++n_;
  }
  // Bytes the added arrays need (with alignment slack).
  size_t bytes() const;
  // Points every slot into the provided scratch; false when it is too small (or missing).
  bool commit();

 private:
  static constexpr int kMax = 16;
  static size_t round(size_t b) { return (b + 63) & ~static_cast<size_t>(63); }
  gc_scratch s_{nullptr, 0};
  void** slots_[kMax] = {};
  size_t sizes_[kMax] = {};
  int n_ = 0;
};

}  // namespace gradcomp
