// QSGD's encoder internals shared by the scalar encoder (qsgd.cc) and the vector ones
// (qsgd_simd.cc): one bucket's quantizer parameters and the per-range encoders.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

#include "cpu.h"
#include "gradcomp/gradcomp.h"

namespace gradcomp {
namespace qsgd_detail {

// Norms sit at byte offset 24 of a caller-provided buffer: access them without alignment UB.
inline float load_norm(const uint8_t* p, uint64_t b) { float v; std::memcpy(&v, p + 4 * b, 4); return v; }

// Quantizes elements [lo, hi) of one bucket whose norm is L into codes (one per element).
struct BucketParams {
  float L, scale, mul;
  uint32_t s, sign_shift;
  bool poisoned;
};

inline BucketParams bucket_params(float L, uint32_t s, uint32_t bits) {
  BucketParams p;
  p.L = L;
  p.s = s;
  p.sign_shift = bits - 1;
  p.poisoned = std::isnan(L);
  // Tiny norms: scale |x| and L by 2^100 (exact) so s / L cannot overflow.
  p.mul = L < 0x1p-100f ? 0x1p100f : 1.0f;
  p.scale = L > 0.0f ? static_cast<float>(s) / (L * p.mul) : 0.0f;
  return p;
}

// Writes `count` codes of `bits` bits starting at element `first` (first*bits % 8 == 0).
void pack_codes(uint8_t* codes_out, uint64_t first, const uint32_t* codes, uint64_t count, uint32_t bits);
// Codes for elements [lo, hi) into codes_out (norms already written): the scalar reference, and
// the vector versions (bit-identical; bucket_size a multiple of 16 / 8, lo a multiple of 64).
void encode_range_scalar(const gc_qsgd_desc& d, uint32_t bits, const uint8_t* norms, uint8_t* codes_out, uint64_t lo, uint64_t hi);
#if GC_X86
GC_TARGET_AVX512 void encode_range_avx512(const gc_qsgd_desc& d, uint32_t bits, const uint8_t* norms, uint8_t* codes_out, uint64_t lo,
                                          uint64_t hi);
GC_TARGET_AVX2 void encode_range_avx2(const gc_qsgd_desc& d, uint32_t bits, const uint8_t* norms, uint8_t* codes_out, uint64_t lo,
                                      uint64_t hi);
#endif

}  // namespace qsgd_detail
}  // namespace gradcomp
