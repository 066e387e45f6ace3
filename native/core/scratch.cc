#include "scratch.h"

#include <cstdlib>

namespace gradcomp {

namespace {
struct Arena {
  void* ptr = nullptr;
  size_t size = 0;
  ~Arena() { std::free(ptr); }
};
thread_local Arena t_arena;
}  // namespace

void* Scratch::get(size_t bytes) {
  if (bytes == 0) bytes = 64;
  Arena& a = t_arena;
  if (a.size >= bytes) return a.ptr;
  std::free(a.ptr);
  a.ptr = nullptr;
  a.size = 0;
  size_t want = (bytes + 4095) & ~static_cast<size_t>(4095);
  void* p = std::aligned_alloc(64, want);
  if (p == nullptr) return nullptr;
  a.ptr = p;
  a.size = want;
  return p;
}

void Scratch::release() {
  std::free(t_arena.ptr);
  t_arena.ptr = nullptr;
  t_arena.size = 0;
}

bool Carver::commit() {
  size_t total = 0;
  for (int i = 0; i < n_; ++i) total += sizes_[i];
  auto* base = static_cast<uint8_t*>(Scratch::get(total));
  if (base == nullptr) return false;
  for (int i = 0; i < n_; ++i) {
    *slots_[i] = base;
    base += sizes_[i];
  }
  return true;
}

}  // namespace gradcomp
