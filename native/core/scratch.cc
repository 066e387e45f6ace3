#include "scratch.h"

namespace gradcomp {

size_t Carver::bytes() const {
  size_t total = 64;  // room to align the base
  for (int i = 0; i < n_ && i < kMax; ++i) total += sizes_[i];
  return total;
}

bool Carver::commit() {
  if (n_ > kMax) return false;
  const size_t need = bytes();
  if (s_.ptr == nullptr || s_.bytes < need) return need <= 64 && n_ == 0;
  auto base = reinterpret_cast<uintptr_t>(s_.ptr);
  base = (base + 63) & ~static_cast<uintptr_t>(63);
  auto* p = reinterpret_cast<uint8_t*>(base);
  for (int i = 0; i < n_; ++i) {
    *slots_[i] = sizes_[i] > 0 ? p : nullptr;
    p += sizes_[i];
  }
  return true;
}

}  // namespace gradcomp
