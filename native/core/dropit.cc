#include "dropit.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <new>
#include <vector>

#include "pool.h"
#include "topk.h"

namespace gradcomp {

namespace {

struct Header {
  uint32_t magic;
  uint8_t version, layout;
  uint16_t reserved;
  uint64_t n;
  uint64_t k;
};
static_assert(sizeof(Header) == GC_DROPIT_HEADER_BYTES, "DropIT header must be 24 bytes");

constexpr uint64_t kWordsPerTask = 4096;  // 64-bit bitmap words per task (262,144 elements)

uint64_t bitmap_bytes(uint64_t n) { return ((n + 7) / 8 + 3) & ~3ULL; }

}  // namespace

gc_dropit_layout dropit_layout(uint64_t n, uint64_t k) {
  return bitmap_bytes(n) < 4 * k ? GC_DROPIT_BITMAP : GC_DROPIT_INDICES;
}

uint64_t dropit_packed_bytes(uint64_t n, uint64_t k) {
  const uint64_t body = dropit_layout(n, k) == GC_DROPIT_BITMAP ? bitmap_bytes(n) + 4 * k : 8 * k;
  return GC_DROPIT_HEADER_BYTES + body;
}

gc_status dropit_pack(const float* x, uint64_t n, uint64_t k, uint8_t* out, uint64_t out_bytes) {
  if ((x == nullptr && n > 0) || out == nullptr || k > n || n > 0xffffffffULL) return GC_ERR_INVALID_ARG;
  if (out_bytes != dropit_packed_bytes(n, k)) return GC_ERR_INVALID_ARG;
  const gc_dropit_layout layout = dropit_layout(n, k);
  Header h{GC_DROPIT_MAGIC, GC_DROPIT_VERSION, static_cast<uint8_t>(layout), 0, n, k};
  std::memcpy(out, &h, sizeof h);
  uint8_t* body = out + GC_DROPIT_HEADER_BYTES;
  gc_topk_desc d{};
  d.residual = const_cast<float*>(x);  // plain top-k only reads it
  d.n = n;
  d.k = k;
  d.scale = 1.0f;
  if (layout == GC_DROPIT_INDICES) {
    d.out_idx = reinterpret_cast<uint32_t*>(body);
    d.out_val = reinterpret_cast<float*>(body + 4 * k);
    return topk(d);
  }
  const uint64_t bm = bitmap_bytes(n);
  std::unique_ptr<uint32_t[]> idx(new (std::nothrow) uint32_t[k > 0 ? k : 1]);
  if (!idx) return GC_ERR_OUT_OF_MEMORY;
  d.out_idx = idx.get();
  d.out_val = reinterpret_cast<float*>(body + bm);
  gc_status st = topk(d);
  if (st != GC_OK) return st;
  std::memset(body, 0, bm);
  for (uint64_t j = 0; j < k; ++j) body[idx[j] >> 3] |= static_cast<uint8_t>(1u << (idx[j] & 7));
  return GC_OK;
}

gc_status dropit_unpack(const uint8_t* in, uint64_t bytes, float* out, uint64_t out_len) {
  if (in == nullptr || bytes < GC_DROPIT_HEADER_BYTES) return GC_ERR_CORRUPT_PAYLOAD;
  Header h;
  std::memcpy(&h, in, sizeof h);
  if (h.magic != GC_DROPIT_MAGIC || h.version != GC_DROPIT_VERSION || h.reserved != 0) return GC_ERR_CORRUPT_PAYLOAD;
  if (h.n > 0xffffffffULL || h.k > h.n || h.layout != dropit_layout(h.n, h.k)) return GC_ERR_CORRUPT_PAYLOAD;
  if (bytes != dropit_packed_bytes(h.n, h.k)) return GC_ERR_CORRUPT_PAYLOAD;
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
  for (uint64_t b = (n + 7) / 8; b < bitmap_bytes(n); ++b)
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
  const uint8_t* valp = body + bitmap_bytes(n);
  pool.parallel_for(tasks, [&](size_t t) {
    uint64_t w0 = t * kWordsPerTask, w1 = std::min(words, w0 + kWordsPerTask), v = first[t];
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
