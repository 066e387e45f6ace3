#include "select.h"

#include <algorithm>
#include <functional>

namespace gradcomp {

namespace {
inline uint64_t mix64(uint64_t x) {
  x ^= x >> 33; x *= 0xff51afd7ed558ccdULL; x ^= x >> 33; x *= 0xc4ceb9fe1a85ec53ULL; x ^= x >> 33;
  return x;
}
}  // namespace

std::vector<uint32_t> sample_keys(const float* g, const float* r, float scale, uint64_t n) {
  constexpr uint64_t kBlock = 64, kBlocks = 512;
  const uint64_t stride = n / kBlocks;
  std::vector<uint32_t> keys;
  keys.reserve(kBlock * kBlocks);
  for (uint64_t b = 0; b < kBlocks; ++b) {
    const uint64_t start = b * stride + mix64(b + n) % (stride - kBlock + 1);
    for (uint64_t i = start; i < start + kBlock; ++i) keys.push_back(mag_key(g ? scale * g[i] + r[i] : r[i]));
  }
  return keys;
}

uint32_t key_at_rank(std::vector<uint32_t>& keys, uint64_t j) {
  std::nth_element(keys.begin(), keys.begin() + static_cast<std::ptrdiff_t>(j), keys.end(), std::greater<uint32_t>());
  return keys[j];
}

}  // namespace gradcomp
