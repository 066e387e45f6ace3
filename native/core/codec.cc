#include "codec.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <new>
#include <vector>

#include "cpu.h"
#include "gradcomp/philox.h"
#include "pool.h"

namespace gradcomp {

namespace {

constexpr uint64_t kPiece = 1 << 16;  // a multiple of 8: pieces own whole bytes of the bitmap

// p = g + e into e, sign bits, and this piece's sum |p| (eight interleaved partial sums).
inline double efsign_pass1_body(const float* g, float* e, uint8_t* bits, uint64_t lo, uint64_t hi) {
  double s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (uint64_t i = lo; i < hi; i += 8) {
    uint32_t byte = 0;
    const uint64_t end = std::min<uint64_t>(hi, i + 8);
    for (uint64_t j = i; j < end; ++j) {
      const float p = g != nullptr ? g[j] + e[j] : e[j];
      e[j] = p;
      byte |= (p < 0.0f ? 1u : 0u) << (j - i);
      s[j - i] += std::fabs(static_cast<double>(p));
    }
    bits[i / 8] = static_cast<uint8_t>(byte);
  }
  return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

inline void efsign_pass2_body(float* e, const uint8_t* bits, float scale, uint64_t lo, uint64_t hi) {
  for (uint64_t i = lo; i < hi; ++i) e[i] = e[i] - (((bits[i / 8] >> (i % 8)) & 1u) ? -scale : scale);
}
GC_ISA_VARIANTS(efsign_pass2, (float* e, const uint8_t* bits, float scale, uint64_t lo, uint64_t hi), (e, bits, scale, lo, hi))

inline void sign_avg_body(const uint8_t* const* bits, const float* scales, uint32_t ranks, uint64_t lo, uint64_t hi,
                          float* out, float divisor) {
  for (uint64_t i = lo; i < hi; ++i) {
    float acc = 0.0f;
    for (uint32_t r = 0; r < ranks; ++r) acc = acc + (((bits[r][i / 8] >> (i % 8)) & 1u) ? -scales[r] : scales[r]);
    out[i] = acc / divisor;
  }
}
GC_ISA_VARIANTS(sign_avg, (const uint8_t* const* bits, const float* scales, uint32_t ranks, uint64_t lo, uint64_t hi, float* out,
                           float divisor), (bits, scales, ranks, lo, hi, out, divisor))

inline void sign_vote_body(const uint8_t* const* bits, uint32_t ranks, uint64_t lo, uint64_t hi, float* out) {
  for (uint64_t i = lo; i < hi; ++i) {
    int32_t votes = 0;
    for (uint32_t r = 0; r < ranks; ++r) votes += ((bits[r][i / 8] >> (i % 8)) & 1u) ? -1 : 1;
    out[i] = votes > 0 ? 1.0f : votes < 0 ? -1.0f : 0.0f;
  }
}

inline void dgc_body(const float* g, float* u, float* v, uint64_t lo, uint64_t hi, float mu, bool nesterov, float clip) {
  if (nesterov) {
    for (uint64_t i = lo; i < hi; ++i) {
      const float gi = clip == 1.0f ? g[i] : g[i] * clip;
      const float ui = mu * (u[i] + gi);
      u[i] = ui;
      v[i] = v[i] + (ui + gi);
    }
  } else {
    for (uint64_t i = lo; i < hi; ++i) {
      const float gi = clip == 1.0f ? g[i] : g[i] * clip;
      const float ui = mu * u[i] + gi;
      u[i] = ui;
      v[i] = v[i] + ui;
    }
  }
}
GC_ISA_VARIANTS(dgc, (const float* g, float* u, float* v, uint64_t lo, uint64_t hi, float mu, bool nesterov, float clip),
                (g, u, v, lo, hi, mu, nesterov, clip))

}  // namespace

gc_status efsign_encode(const float* grad, float* e, uint64_t n, uint8_t* bits, float* scale_out) {
  if ((n > 0 && (e == nullptr || bits == nullptr)) || scale_out == nullptr) return GC_ERR_INVALID_ARG;
  ThreadPool& pool = ThreadPool::instance();
  const size_t tasks = chunk_count(n, kPiece);
  std::vector<double> part(tasks, 0.0);
  pool.parallel_for(tasks, [&](size_t t) {
    const uint64_t lo = t * kPiece, hi = std::min<uint64_t>(n, lo + kPiece);
    if (lo < hi) part[t] = efsign_pass1_body(grad, e, bits, lo, hi);
  });
  double l1 = 0.0;
  for (double p : part) l1 += p;
  const float scale = n > 0 ? static_cast<float>(l1 / static_cast<double>(n)) : 0.0f;
  *scale_out = scale;
  pool.parallel_for(tasks, [&](size_t t) {
    const uint64_t lo = t * kPiece, hi = std::min<uint64_t>(n, lo + kPiece);
    if (lo < hi) efsign_pass2_run(e, bits, scale, lo, hi);
  });
  return GC_OK;
}

gc_status sign_decode_all(const uint8_t* const* bits, const float* scales, uint32_t ranks, uint64_t n, float* out, int mode,
                          float divisor) {
  if ((n > 0 && out == nullptr) || ranks == 0 || bits == nullptr || (mode == 0 && scales == nullptr) || mode < 0 || mode > 1)
    return GC_ERR_INVALID_ARG;
  ThreadPool::instance().parallel_for(chunk_count(n, kPiece), [&](size_t t) {
    const uint64_t lo = t * kPiece, hi = std::min<uint64_t>(n, lo + kPiece);
    if (lo >= hi) return;
    if (mode == 0) sign_avg_run(bits, scales, ranks, lo, hi, out, divisor);
    else sign_vote_body(bits, ranks, lo, hi, out);
  });
  return GC_OK;
}

gc_status randk_support(uint64_t n, uint64_t k, uint64_t seed, uint32_t step, uint32_t stream, uint32_t* out) {
  if (k > n || n > 0xffffffffULL || (k > 0 && out == nullptr)) return GC_ERR_INVALID_ARG;
  if (k == 0) return GC_OK;
  const uint64_t words = (n + 63) / 64;
  std::unique_ptr<uint64_t[]> taken(new (std::nothrow) uint64_t[words]());
  if (!taken) return GC_ERR_OUT_OF_MEMORY;
  for (uint64_t j = n - k; j < n; ++j) {
    const gc_u32x4 r = gc_philox_block(seed, step, stream, j);
    const uint64_t x = (static_cast<uint64_t>(r.v[1]) << 32) | r.v[0];
    const uint64_t t = static_cast<uint64_t>((static_cast<unsigned __int128>(x) * (j + 1)) >> 64);
    const uint64_t pick = (taken[t / 64] >> (t % 64)) & 1u ? j : t;
    taken[pick / 64] |= 1ULL << (pick % 64);
  }
  uint64_t o = 0;
  for (uint64_t w = 0; w < words && o < k; ++w) {
    for (uint64_t bitsw = taken[w]; bitsw != 0; bitsw &= bitsw - 1) out[o++] = static_cast<uint32_t>(w * 64 + __builtin_ctzll(bitsw));
  }
  return o == k ? GC_OK : GC_ERR_INTERNAL;
}

gc_status dgc_accumulate(const float* g, float* u, float* v, uint64_t n, float mu, bool nesterov, float clip) {
  if (n > 0 && (g == nullptr || u == nullptr || v == nullptr)) return GC_ERR_INVALID_ARG;
  ThreadPool::instance().parallel_for(chunk_count(n, kPiece), [&](size_t t) {
    const uint64_t lo = t * kPiece, hi = std::min<uint64_t>(n, lo + kPiece);
    if (lo < hi) dgc_run(g, u, v, lo, hi, mu, nesterov, clip);
  });
  return GC_OK;
}

}  // namespace gradcomp
