// QSGD decode (the encode is in qsgd.cc): validates the whole payload and writes, or adds, the
// dense values.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <numeric>
#include <vector>

#include "cpu.h"
#include "optim.h"
#include "pool.h"
#include "qsgd.h"

#if GC_X86
#include <immintrin.h>
#endif

namespace gradcomp {

namespace {

using Header = gc_qsgd_header;
inline uint32_t fbits(float v) { uint32_t b; std::memcpy(&b, &v, 4); return b; }
template <bool kAcc>
inline void put(float* out, uint64_t i, float v) { if (kAcc) out[i] = out[i] + v; else out[i] = v; }

// Codes of B bits (B = 2 or 4: whole bytes hold 8 / B of them); bucket bounds need not be
// byte-aligned. Returns nonzero when a level exceeds s.
template <uint32_t B, bool kAcc>
uint32_t decode_narrow(const uint8_t* codes, uint64_t b0, uint64_t b1, uint32_t s, float unit_v, float* out) {
  constexpr uint32_t kPer = 8 / B, kMask = (1u << B) - 1, kLevel = (1u << (B - 1)) - 1;
  uint32_t over = 0;
  for (uint64_t i = b0; i < b1; ++i) {
    const uint32_t code = (codes[i / kPer] >> ((i % kPer) * B)) & kMask;
    const uint32_t level = code & kLevel;
    over |= level > s;
    const float v = static_cast<float>(level) * unit_v;
    put<kAcc>(out, i, (code >> (B - 1)) ? -v : v);
  }
  return over;
}

#if GC_X86
// Decodes elements [b0, b1) of one bucket (b0 a multiple of 16) for 2-, 4- or 8-bit codes:
// bytes are spread to one code per byte (pdep), widened, then level * unit with the sign bit
// xored in. The tail that is not a whole 16 is left to the scalar loop. Returns the next element
// and ORs a level > s flag into *over.
template <bool kAcc>
GC_TARGET_AVX512 uint64_t decode_avx512(const uint8_t* codes, uint32_t bits, uint64_t b0, uint64_t b1, uint32_t s,
                                        float unit_v, float* out, uint32_t* over) {
  const __m512i lmask = _mm512_set1_epi32(static_cast<int>((1u << (bits - 1)) - 1));
  const __m512i vs = _mm512_set1_epi32(static_cast<int>(s));
  const __m512 unit = _mm512_set1_ps(unit_v);
  __mmask16 bad = 0;
  uint64_t i = b0;
  for (; i + 16 <= b1; i += 16) {
    __m128i bytes;
    if (bits == 8) {
      bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(codes + i));
    } else if (bits == 4) {
      uint64_t w;
      std::memcpy(&w, codes + i / 2, 8);
      bytes = _mm_set_epi64x(static_cast<long long>(_pdep_u64(w >> 32, 0x0F0F0F0F0F0F0F0FULL)),
                             static_cast<long long>(_pdep_u64(w & 0xffffffffULL, 0x0F0F0F0F0F0F0F0FULL)));
    } else {
      uint32_t w;
      std::memcpy(&w, codes + i / 4, 4);
      bytes = _mm_set_epi64x(static_cast<long long>(_pdep_u64(w >> 16, 0x0303030303030303ULL)),
                             static_cast<long long>(_pdep_u64(w & 0xffffu, 0x0303030303030303ULL)));
    }
    const __m512i c = _mm512_cvtepu8_epi32(bytes);
    const __m512i level = _mm512_and_si512(c, lmask);
    bad |= _mm512_cmpgt_epi32_mask(level, vs);
    const __m512i sign = _mm512_slli_epi32(_mm512_srli_epi32(c, bits - 1), 31);
    const __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(level), unit);
    const __m512 r = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(v), sign));
    _mm512_storeu_ps(out + i, kAcc ? _mm512_add_ps(_mm512_loadu_ps(out + i), r) : r);
  }
  *over |= bad != 0;
  return i;
}

// The same with eight codes per vector (AVX2 + BMI2), b0 a multiple of 8.
template <bool kAcc>
GC_TARGET_AVX2 uint64_t decode_avx2(const uint8_t* codes, uint32_t bits, uint64_t b0, uint64_t b1, uint32_t s,
                                    float unit_v, float* out, uint32_t* over) {
  const __m256i lmask = _mm256_set1_epi32(static_cast<int>((1u << (bits - 1)) - 1)), vs = _mm256_set1_epi32(static_cast<int>(s));
  const __m256 unit = _mm256_set1_ps(unit_v);
  __m256i bad = _mm256_setzero_si256();
  uint64_t i = b0;
  for (; i + 8 <= b1; i += 8) {
    uint64_t w8;
    if (bits == 8) {
      std::memcpy(&w8, codes + i, 8);
    } else if (bits == 4) {
      uint32_t w;
      std::memcpy(&w, codes + i / 2, 4);
      w8 = _pdep_u64(w, 0x0F0F0F0F0F0F0F0FULL);
    } else {
      uint16_t w;
      std::memcpy(&w, codes + i / 4, 2);
      w8 = _pdep_u64(w, 0x0303030303030303ULL);
    }
    const __m256i c = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<long long>(w8)));
    const __m256i level = _mm256_and_si256(c, lmask);
    bad = _mm256_or_si256(bad, _mm256_cmpgt_epi32(level, vs));
    const __m256i sign = _mm256_slli_epi32(_mm256_srli_epi32(c, static_cast<int>(bits - 1)), 31);
    const __m256 r = _mm256_castsi256_ps(_mm256_xor_si256(_mm256_castps_si256(_mm256_mul_ps(_mm256_cvtepi32_ps(level), unit)), sign));
    _mm256_storeu_ps(out + i, kAcc ? _mm256_add_ps(_mm256_loadu_ps(out + i), r) : r);
  }
  *over |= !_mm256_testz_si256(bad, bad);
  return i;
}
#endif

}  // namespace

namespace {

// A validated payload: its header, norms and codes.
struct Parsed {
  Header h;
  const uint8_t* normp;
  const uint8_t* codes;
  uint64_t code_bytes;
};

gc_status parse(const uint8_t* payload, uint64_t bytes, uint64_t out_len, bool have_out, Parsed* p) {
  if (payload == nullptr || bytes < GC_QSGD_HEADER_BYTES) return GC_ERR_CORRUPT_PAYLOAD;
  std::memcpy(&p->h, payload, sizeof p->h);
  if (!gc_qsgd_header_ok(&p->h, bytes)) return GC_ERR_CORRUPT_PAYLOAD;
  if (out_len != p->h.n || (!have_out && p->h.n > 0)) return GC_ERR_INVALID_ARG;
  const uint64_t buckets = (p->h.n + p->h.bucket - 1) / p->h.bucket;
  p->normp = payload + GC_QSGD_HEADER_BYTES;
  p->codes = p->normp + 4 * buckets;
  p->code_bytes = (p->h.n * p->h.bits + 7) / 8;
  const uint32_t tail_bits = static_cast<uint32_t>((p->h.n * p->h.bits) % 8);
  if (tail_bits != 0 && (p->codes[p->code_bytes - 1] >> tail_bits) != 0) return GC_ERR_CORRUPT_PAYLOAD;
  return GC_OK;
}

// A bucket norm a payload may carry: >= 0 and finite, or NaN (a poisoned input), never -0.
inline bool norm_ok(float L) { return (L >= 0.0f || std::isnan(L)) && !std::isinf(L) && fbits(L) != 0x80000000u; }

// Decodes elements [lo, hi) of a parsed payload into (or onto) out; false when a norm or a level
// is invalid. lo a multiple of 16 keeps the AVX-512 path on (with buckets a multiple of 16).
template <bool kAcc>
bool decode_range(const Parsed& p, uint64_t lo, uint64_t hi, float* out) {
  const Header& h = p.h;
  const uint32_t bits = h.bits, s = h.levels, level_mask = (1u << (bits - 1)) - 1;
  const uint8_t* codes = p.codes;
#if GC_X86
  const bool simd = active_isa() == Isa::kAvx512 && h.bucket % 16 == 0 && lo % 16 == 0 && (bits == 2 || bits == 4 || bits == 8);
  const bool simd2 = active_isa() == Isa::kAvx2 && h.bucket % 8 == 0 && lo % 8 == 0 && (bits == 2 || bits == 4 || bits == 8);
#endif
  for (uint64_t b = lo / h.bucket; b * h.bucket < hi; ++b) {
    float L;
    std::memcpy(&L, p.normp + 4 * b, 4);
    if (!norm_ok(L)) return false;
    const float unit_v = L / static_cast<float>(s);
    uint64_t b0 = std::max(lo, b * h.bucket), b1 = std::min<uint64_t>(hi, (b + 1) * h.bucket);
    uint32_t over = 0;
#if GC_X86
    if (simd) b0 = decode_avx512<kAcc>(codes, bits, b0, b1, s, unit_v, out, &over);
    if (simd2) b0 = decode_avx2<kAcc>(codes, bits, b0, b1, s, unit_v, out, &over);
#endif
    if (bits == 8) {
      const uint8_t* c = codes + b0;
      for (uint64_t i = b0; i < b1; ++i, ++c) {
        uint32_t level = *c & 0x7fu;
        over |= level > s;
        float v = static_cast<float>(level) * unit_v;
        put<kAcc>(out, i, (*c & 0x80u) ? -v : v);
      }
    } else if (bits == 4) {
      over |= decode_narrow<4, kAcc>(codes, b0, b1, s, unit_v, out);
    } else if (bits == 2) {
      over |= decode_narrow<2, kAcc>(codes, b0, b1, s, unit_v, out);
    } else {
      for (uint64_t i = b0; i < b1; ++i) {
        uint64_t bit = i * bits;
        uint32_t word = 0;
        std::memcpy(&word, codes + bit / 8, std::min<uint64_t>(4, p.code_bytes - bit / 8));
        uint32_t code = (word >> (bit % 8)) & ((1u << bits) - 1);
        uint32_t level = code & level_mask;
        over |= level > s;
        float v = static_cast<float>(level) * unit_v;
        put<kAcc>(out, i, (code >> (bits - 1)) ? -v : v);
      }
    }
    if (over) return false;
  }
  return true;
}

template <bool kAcc>
gc_status decode_impl(const uint8_t* payload, uint64_t bytes, float* out, uint64_t out_len) {
  Parsed p;
  const gc_status st = parse(payload, bytes, out_len, out != nullptr, &p);
  if (st != GC_OK) return st;
  const uint64_t unit = std::lcm<uint64_t>(p.h.bucket, 8);
  const uint64_t per_task = std::max<uint64_t>(unit, (32768 / unit) * unit);
  const size_t tasks = chunk_count(p.h.n, per_task);
  std::vector<uint8_t> bad(tasks, 0);
  ThreadPool::instance().parallel_for(tasks, [&](size_t t) {
    const uint64_t lo = t * per_task, hi = std::min<uint64_t>(p.h.n, lo + per_task);
    if (!decode_range<kAcc>(p, lo, hi, out)) bad[t] = 1;
  });
  for (uint8_t b : bad) if (b) return GC_ERR_CORRUPT_PAYLOAD;
  return GC_OK;
}

}  // namespace

gc_status qsgd_decode(const uint8_t* payload, uint64_t bytes, float* out, uint64_t out_len, bool accumulate) {
  return accumulate ? decode_impl<true>(payload, bytes, out, out_len) : decode_impl<false>(payload, bytes, out, out_len);
}

gc_status qsgd_decode_sum(const uint8_t* const* payloads, const uint64_t* bytes, uint32_t count, float* out, uint64_t n, float scale) {
  if (count == 0 || (n > 0 && out == nullptr)) return GC_ERR_INVALID_ARG;
  std::vector<Parsed> ps(count);
  for (uint32_t j = 0; j < count; ++j) {
    const gc_status st = parse(payloads[j], bytes[j], n, true, &ps[j]);
    if (st != GC_OK) return st;
  }
  // Tiles small enough to stay in cache while every payload is added onto them: out is written
  // once instead of read and written once per payload. The order per element is the plain one
  // (0 + p_0) + p_1 + ..., then the scale: the same bits as zero-fill, decode-add each, scale.
  constexpr uint64_t kTile = 8192;
  const size_t tasks = chunk_count(n, kTile);
  std::vector<uint8_t> bad(tasks, 0);
  ThreadPool::instance().parallel_for(tasks, [&](size_t t) {
    const uint64_t lo = t * kTile, hi = std::min<uint64_t>(n, lo + kTile);
    std::fill(out + lo, out + hi, 0.0f);
    for (const Parsed& p : ps) {
      if (!decode_range<true>(p, lo, hi, out)) { bad[t] = 1; return; }
    }
    if (scale != 1.0f) for (uint64_t i = lo; i < hi; ++i) out[i] = out[i] * scale;
  });
  for (uint8_t b : bad) if (b) return GC_ERR_CORRUPT_PAYLOAD;
  return GC_OK;
}

namespace {

// A pointer p' with p'[i] == p[i - lo] for i in [lo, lo + tile): decode_range writes element i at
// out[i], and a tile's scratch holds elements [lo, hi) from its start.
inline float* rebase(float* p, uint64_t lo) { return reinterpret_cast<float*>(reinterpret_cast<uintptr_t>(p) - lo * sizeof(float)); }

}  // namespace

gc_status qsgd_decode_sgd(const uint8_t* const* payloads, const uint64_t* bytes, uint32_t count, uint64_t n, float* w, float* buf,
                          const SgdParams& sp) {
  if (count == 0 || (n > 0 && w == nullptr)) return GC_ERR_INVALID_ARG;
  if (sp.momentum == 0.0f) buf = nullptr;
  else if (n > 0 && buf == nullptr) return GC_ERR_INVALID_ARG;
  std::vector<Parsed> ps(count);
  bool codes_ok = true;  // every code valid by construction: the level field cannot exceed the levels
  for (uint32_t j = 0; j < count; ++j) {
    const gc_status st = parse(payloads[j], bytes[j], n, true, &ps[j]);
    if (st != GC_OK) return st;
    codes_ok = codes_ok && ps[j].h.levels == (1u << (ps[j].h.bits - 1)) - 1;
  }
  constexpr uint64_t kTile = 8192;
  const size_t tasks = chunk_count(n, kTile);
  std::vector<uint8_t> bad(tasks, 0);
  if (codes_ok) {
    // Only the norms can be bad: checked as decode_range checks them.
    for (const Parsed& p : ps) {
      for (uint64_t b = 0, nb = (p.h.n + p.h.bucket - 1) / p.h.bucket; b < nb; ++b) {
        float L;
        std::memcpy(&L, p.normp + 4 * b, 4);
        if (!norm_ok(L)) return GC_ERR_CORRUPT_PAYLOAD;
      }
    }
  } else {
    ThreadPool::instance().parallel_for(tasks, [&](size_t t) {
      const uint64_t lo = t * kTile, hi = std::min<uint64_t>(n, lo + kTile);
      thread_local std::vector<float> check;
      if (check.size() < kTile) check.resize(kTile);
      for (const Parsed& p : ps) if (!decode_range<false>(p, lo, hi, rebase(check.data(), lo))) { bad[t] = 1; return; }
    });
    for (uint8_t b : bad) if (b) return GC_ERR_CORRUPT_PAYLOAD;
  }
  // The order per element of qsgd_decode_sum: (0 + p_0) + p_1 + ...
  std::atomic<bool> failed{false};
  sgd_tiles(w, buf, n, sp, [&](uint64_t lo, uint64_t hi, float* g) {
    for (const Parsed& p : ps) if (!decode_range<true>(p, lo, hi, rebase(g, lo))) failed = true;  // validated above: cannot fail
  });
  return failed ? GC_ERR_INTERNAL : GC_OK;
}

}  // namespace gradcomp
