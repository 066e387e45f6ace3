// The CPU backend's scratch arena: the kernels report the scratch they need (topk_scratch_bytes,
// ...), and the entry points lease a block of at least that size for the call's duration. Blocks
// are kept and reused (the smallest free block that fits), so a steady state allocates nothing;
// concurrent async ops get different blocks; at most kKeep free blocks stay held.
#pragma once
#include <cstdlib>
#include <mutex>
#include <vector>

#include "gradcomp/gradcomp.h"

namespace gradcomp_napi {

class ScratchArena {
 public:
  struct Block { void* ptr = nullptr; uint64_t bytes = 0; };
  static ScratchArena& instance() {
    static ScratchArena* a = new ScratchArena();  // never destroyed: pool threads may still return blocks
    return *a;
  }
  Block acquire(uint64_t bytes) {
    if (bytes == 0) return {};
    {
      std::lock_guard<std::mutex> lock(m_);
      size_t best = free_.size();
      for (size_t i = 0; i < free_.size(); ++i)
        if (free_[i].bytes >= bytes && (best == free_.size() || free_[i].bytes < free_[best].bytes)) best = i;
      if (best < free_.size()) {
        Block b = free_[best];
        free_.erase(free_.begin() + static_cast<long>(best));
        return b;
      }
    }
    const uint64_t size = (bytes + 4095) & ~4095ULL;
    void* p = std::aligned_alloc(64, size);
    return p ? Block{p, size} : Block{};
  }
  void release(Block b) {
    if (b.ptr == nullptr) return;
    std::lock_guard<std::mutex> lock(m_);
    free_.push_back(b);
    if (free_.size() > kKeep) {
      size_t smallest = 0;
      for (size_t i = 1; i < free_.size(); ++i) if (free_[i].bytes < free_[smallest].bytes) smallest = i;
      std::free(free_[smallest].ptr);
      free_.erase(free_.begin() + static_cast<long>(smallest));
    }
  }

 private:
  static constexpr size_t kKeep = 4;
  std::mutex m_;
  std::vector<Block> free_;
};

// A block held for one call: ok() is false when `bytes` could not be allocated.
class Lease {
 public:
  explicit Lease(uint64_t bytes) : need_(bytes), b_(ScratchArena::instance().acquire(bytes)) {}
  ~Lease() { ScratchArena::instance().release(b_); }
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;
  bool ok() const { return need_ == 0 || b_.ptr != nullptr; }
  gc_scratch scratch() const { return gc_scratch{b_.ptr, b_.bytes}; }

 private:
  uint64_t need_;
  ScratchArena::Block b_;
};

}  // namespace gradcomp_napi
