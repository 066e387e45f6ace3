// Pieces shared by the selection kernels (topk.cc, dropit.cc).
#pragma once
#include <cstdint>
#include <cstring>
#include <vector>

namespace gradcomp {

// The order every selection uses: the bits of |v| (NaN > +Inf > finite; -0 == +0).
inline uint32_t mag_key(float v) {
  uint32_t b;
  std::memcpy(&b, &v, 4);
  return b & 0x7fffffffu;
}

// The sample: 512 blocks of 64 keys.
constexpr uint64_t kSampleKeys = 512 * 64;

// Keys of |scale*g + r| (or |r| when g is null) at 512 blocks of 64 contiguous elements spread
// over [0, n) with deterministic offsets; n must be >= 65536. Contiguous blocks keep the sample
// cheap (a few MB of random reads would cost more than the whole pass).
std::vector<uint32_t> sample_keys(const float* g, const float* r, float scale, uint64_t n);

// The key at descending rank j of `keys` (reorders keys).
uint32_t key_at_rank(std::vector<uint32_t>& keys, uint64_t j);

}  // namespace gradcomp
