#include "rng.h"

#include <algorithm>
#include <cmath>

#include "gradcomp/philox.h"
#include "pool.h"

namespace gradcomp {

namespace {
inline uint32_t word_for(uint64_t seed, uint32_t step, uint32_t stream, uint64_t i, gc_u32x4* cache, uint64_t* cached) {
  const uint64_t block = (i >> 6) * 16 + (i & 15);
  if (*cached != block) {
    *cache = gc_philox_block(seed, step, stream, block);
    *cached = block;
  }
  return cache->v[(i >> 4) & 3];
}
}  // namespace

gc_status philox_fill(float* out, uint64_t n, uint64_t seed, uint32_t step, uint32_t stream, int kind) {
  if ((out == nullptr && n > 0) || kind < 0 || kind > 1) return GC_ERR_INVALID_ARG;
  constexpr uint64_t kTask = 1 << 16;
  ThreadPool::instance().parallel_for(chunk_count(n, kTask), [&](size_t t) {
    const uint64_t lo = t * kTask, hi = std::min<uint64_t>(n, lo + kTask);
    gc_u32x4 cache{};
    uint64_t cached = ~0ULL;
    for (uint64_t i = lo; i < hi; ++i) {
      if (kind == 0) {
        out[i] = gc_u24_to_unit(word_for(seed, step, stream, i, &cache, &cached));
      } else {
        // Pair (2j, 2j+1) shares two uniforms, so each element is computable on its own.
        const uint64_t a = i & ~1ULL;
        const double u1 = (static_cast<double>(word_for(seed, step, stream, a, &cache, &cached) >> 8) + 1.0) / 16777217.0;
        const double u2 = static_cast<double>(word_for(seed, step, stream, a + 1, &cache, &cached) >> 8) / 16777216.0;
        const double r = std::sqrt(-2.0 * std::log(u1));
        out[i] = static_cast<float>((i & 1) ? r * std::sin(6.283185307179586 * u2) : r * std::cos(6.283185307179586 * u2));
      }
    }
  });
  return GC_OK;
}

}  // namespace gradcomp
