// DropIT unpack (the pack is in dropit.cc): validates the payload, then rebuilds the dense
// activation (zeros where nothing was kept).
#include <algorithm>
#include <cstring>
#include <vector>

#include "cpu.h"
#include "dropit.h"
#include "pool.h"

#if GC_X86
#include <immintrin.h>
#endif

namespace gradcomp {

namespace {

using Header = gc_dropit_header;
constexpr uint64_t kWordsPerTask = 4096;  // 64-bit bitmap words per task (262,144 elements)

#if GC_X86
// Rebuilds full 64-element words [w0, w1) from the bitmap: each 16-bit slice expands the next
// popcount values into place (zeros elsewhere) in registers; the masked load never reads past
// the values that exist. Returns the next value index.
GC_TARGET_AVX512 uint64_t unpack_words_avx512(const uint8_t* bitmap, const float* vals, uint64_t v, uint64_t w0,
                                              uint64_t w1, float* out) {
  for (uint64_t w = w0; w < w1; ++w) {
    uint64_t word;
    std::memcpy(&word, bitmap + 8 * w, 8);
    for (int q = 0; q < 4; ++q) {
      const uint32_t m = static_cast<uint32_t>(word >> (16 * q)) & 0xffffu;
      const unsigned cnt = static_cast<unsigned>(__builtin_popcount(m));
      __m512 packed = _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << cnt) - 1), vals + v);
      _mm512_storeu_ps(out + 64 * w + 16 * q, _mm512_maskz_expand_ps(static_cast<__mmask16>(m), packed));
      v += cnt;
    }
  }
  return v;
}
#endif

}  // namespace

gc_status dropit_unpack(const uint8_t* in, uint64_t bytes, float* out, uint64_t out_len) {
  if (in == nullptr || bytes < GC_DROPIT_HEADER_BYTES) return GC_ERR_CORRUPT_PAYLOAD;
  Header h;
  std::memcpy(&h, in, sizeof h);
  if (!gc_dropit_header_ok(&h, bytes)) return GC_ERR_CORRUPT_PAYLOAD;
  if (out_len != h.n || (out == nullptr && h.n > 0)) return GC_ERR_INVALID_ARG;
  const uint8_t* body = in + GC_DROPIT_HEADER_BYTES;
  const uint64_t n = h.n, k = h.k;
  ThreadPool& pool = ThreadPool::instance();

  if (h.layout == GC_DROPIT_INDICES) {
    const uint8_t* idxp = body;
    const uint8_t* valp = body + 4 * k;
    // Validate first: strictly ascending and in range, so the scatter cannot go out of bounds.
    uint32_t prev = 0;
    for (uint64_t j = 0; j < k; ++j) {
      uint32_t i;
      std::memcpy(&i, idxp + 4 * j, 4);
      if (i >= n || (j > 0 && i <= prev)) return GC_ERR_CORRUPT_PAYLOAD;
      prev = i;
    }
    const size_t tasks = chunk_count(n, 1 << 18);
    pool.parallel_for(tasks, [&](size_t t) {
      uint64_t lo = t << 18, hi = std::min<uint64_t>(n, lo + (1 << 18));
      std::memset(out + lo, 0, (hi - lo) * 4);
    });
    for (uint64_t j = 0; j < k; ++j) {
      uint32_t i;
      std::memcpy(&i, idxp + 4 * j, 4);
      std::memcpy(out + i, valp + 4 * j, 4);
    }
    return GC_OK;
  }

  // Bitmap: per-task popcounts give each task its first value, then tasks fill in parallel.
  const uint64_t words = (n + 63) / 64;
  auto word_at = [&](uint64_t w) {
    uint64_t v = 0;
    std::memcpy(&v, body + 8 * w, std::min<uint64_t>(8, (n + 7) / 8 - 8 * w));
    return v;
  };
  const uint64_t tail = n % 64;
  if (tail != 0 && (word_at(words - 1) >> tail) != 0) return GC_ERR_CORRUPT_PAYLOAD;
  for (uint64_t b = (n + 7) / 8; b < gc_dropit_bitmap_bytes(n); ++b)
    if (body[b] != 0) return GC_ERR_CORRUPT_PAYLOAD;
  const size_t tasks = chunk_count(words, kWordsPerTask);
  std::vector<uint64_t> first(tasks + 1, 0);
  pool.parallel_for(tasks, [&](size_t t) {
    uint64_t w0 = t * kWordsPerTask, w1 = std::min(words, w0 + kWordsPerTask), c = 0;
    for (uint64_t w = w0; w < w1; ++w) c += static_cast<uint64_t>(__builtin_popcountll(word_at(w)));
    first[t + 1] = c;
  });
  for (size_t t = 0; t < tasks; ++t) first[t + 1] += first[t];
  if (first[tasks] != k) return GC_ERR_CORRUPT_PAYLOAD;
  const uint8_t* valp = body + gc_dropit_bitmap_bytes(n);
  const float* vals = reinterpret_cast<const float*>(valp);  // 4-byte aligned offset
  pool.parallel_for(tasks, [&](size_t t) {
    uint64_t w0 = t * kWordsPerTask, w1 = std::min(words, w0 + kWordsPerTask), v = first[t];
#if GC_X86
    if (active_isa() == Isa::kAvx512) {
      const uint64_t full_end = std::min(w1, n / 64);  // words lying wholly inside the tensor
      if (full_end > w0) { v = unpack_words_avx512(body, vals, v, w0, full_end, out); w0 = full_end; }
    }
#endif
    for (uint64_t w = w0; w < w1; ++w) {
      const uint64_t base = w * 64, len = std::min<uint64_t>(64, n - base);
      std::memset(out + base, 0, len * 4);
      for (uint64_t bits = word_at(w); bits; bits &= bits - 1) {
        std::memcpy(out + base + static_cast<uint64_t>(__builtin_ctzll(bits)), valp + 4 * v, 4);
        ++v;
      }
    }
  });
  return GC_OK;
}

}  // namespace gradcomp
