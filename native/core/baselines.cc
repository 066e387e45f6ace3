#include "baselines.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "pool.h"

namespace gradcomp {

void baseline_nth_element_ef_topk(const float* g, float* r, uint64_t n, uint64_t k, uint32_t* out_idx,
                                  float* out_val) {
  if (k == 0 || n == 0) return;
  for (uint64_t i = 0; i < n; ++i) r[i] = g[i] + r[i];
  std::vector<float> mag(n);
  for (uint64_t i = 0; i < n; ++i) mag[i] = std::fabs(r[i]);
  std::nth_element(mag.begin(), mag.begin() + (k - 1), mag.end(), std::greater<float>());
  const float t = mag[k - 1];
  uint64_t o = 0;
  for (uint64_t i = 0; i < n && o < k; ++i) {
    if (std::fabs(r[i]) >= t) {
      out_idx[o] = static_cast<uint32_t>(i);
      out_val[o] = r[i];
      r[i] = 0.0f;
      ++o;
    }
  }
}

void baseline_parallel_memcpy(void* dst, const void* src, size_t bytes) {
  constexpr size_t kPiece = 1 << 20;
  const size_t pieces = chunk_count(bytes, kPiece);
  ThreadPool::instance().parallel_for(pieces, [&](size_t p) {
    size_t lo = p * kPiece, len = std::min(kPiece, bytes - lo);
    std::memcpy(static_cast<char*>(dst) + lo, static_cast<const char*>(src) + lo, len);
  });
}

}  // namespace gradcomp
