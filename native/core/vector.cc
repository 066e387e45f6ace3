#include "vector.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "cpu.h"
#include "pool.h"

namespace gradcomp {

namespace {

constexpr uint64_t kPiece = 1 << 16;  // elements per task

template <typename F>
void pieces(uint64_t n, F&& fn) {
  ThreadPool::instance().parallel_for(chunk_count(n, kPiece), [&](size_t t) {
    const uint64_t lo = t * kPiece, hi = std::min<uint64_t>(n, lo + kPiece);
    if (lo < hi) fn(lo, hi);
  });
}

inline void add_body(float* dst, const float* a, const float* b, uint64_t lo, uint64_t hi) {
  for (uint64_t i = lo; i < hi; ++i) dst[i] = a[i] + b[i];
}
GC_ISA_VARIANTS(add, (float* dst, const float* a, const float* b, uint64_t lo, uint64_t hi), (dst, a, b, lo, hi))

inline void scale_body(float* x, float s, uint64_t lo, uint64_t hi) {
  for (uint64_t i = lo; i < hi; ++i) x[i] = x[i] * s;
}
GC_ISA_VARIANTS(scale, (float* x, float s, uint64_t lo, uint64_t hi), (x, s, lo, hi))

inline void axpy_body(float* y, const float* x, float s, uint64_t lo, uint64_t hi) {
  if (s == 1.0f) {
    for (uint64_t i = lo; i < hi; ++i) y[i] = y[i] + x[i];
  } else {
    for (uint64_t i = lo; i < hi; ++i) y[i] = y[i] + s * x[i];
  }
}
GC_ISA_VARIANTS(axpy, (float* y, const float* x, float s, uint64_t lo, uint64_t hi), (y, x, s, lo, hi))

inline void axpby_body(float* y, const float* x, float s, float b, uint64_t lo, uint64_t hi) {
  if (s == 1.0f) {
    for (uint64_t i = lo; i < hi; ++i) y[i] = b * y[i] + x[i];
  } else {
    for (uint64_t i = lo; i < hi; ++i) y[i] = b * y[i] + s * x[i];
  }
}
GC_ISA_VARIANTS(axpby, (float* y, const float* x, float s, float b, uint64_t lo, uint64_t hi), (y, x, s, b, lo, hi))

inline void mul_add_body(float* s, const float* x, const float* y, double eta, uint64_t lo, uint64_t hi) {
  for (uint64_t i = lo; i < hi; ++i) s[i] = static_cast<float>(eta * static_cast<double>(x[i]) * static_cast<double>(y[i]) + static_cast<double>(s[i]));
}
GC_ISA_VARIANTS(mul_add, (float* s, const float* x, const float* y, double eta, uint64_t lo, uint64_t hi), (s, x, y, eta, lo, hi))

// Eight interleaved float64 partial sums, combined in a fixed order.
inline double norm_body(const float* x, uint64_t lo, uint64_t hi, int kind) {
  double s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  uint64_t i = lo;
  if (kind == 0) {
    for (; i + 8 <= hi; i += 8)
      for (int j = 0; j < 8; ++j) { const double v = x[i + j]; s[j] += v * v; }
    for (int j = 0; i < hi; ++i, ++j) { const double v = x[i]; s[j] += v * v; }
  } else {
    for (; i + 8 <= hi; i += 8)
      for (int j = 0; j < 8; ++j) s[j] += std::fabs(static_cast<double>(x[i + j]));
    for (int j = 0; i < hi; ++i, ++j) s[j] += std::fabs(static_cast<double>(x[i]));
  }
  return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

template <typename T>
void reduce_span(T* dst, const T* src, uint64_t lo, uint64_t hi, int op) {
  if (op == 0) {
    for (uint64_t i = lo; i < hi; ++i) dst[i] = dst[i] + src[i];
  } else {
    for (uint64_t i = lo; i < hi; ++i) dst[i] = (src[i] > dst[i] || dst[i] != dst[i]) ? src[i] : dst[i];
  }
}
inline void reduce_body(void* dst, const void* src, uint64_t lo, uint64_t hi, int op, int f64) {
  if (f64) reduce_span(static_cast<double*>(dst), static_cast<const double*>(src), lo, hi, op);
  else reduce_span(static_cast<float*>(dst), static_cast<const float*>(src), lo, hi, op);
}
GC_ISA_VARIANTS(reduce, (void* dst, const void* src, uint64_t lo, uint64_t hi, int op, int f64), (dst, src, lo, hi, op, f64))

uint32_t crc32c_soft(uint32_t crc, const uint8_t* p, uint64_t n) {
  static uint32_t table[256];
  static bool ready = false;
  if (!ready) {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
      table[i] = c;
    }
    ready = true;
  }
  crc = ~crc;
  for (uint64_t i = 0; i < n; ++i) crc = table[(crc ^ p[i]) & 0xffu] ^ (crc >> 8);
  return ~crc;
}

#if GC_X86
__attribute__((target("sse4.2"))) uint32_t crc32c_hw(uint32_t crc, const uint8_t* p, uint64_t n) {
  uint64_t c = ~crc;
  uint64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    c = __builtin_ia32_crc32di(c, w);
  }
  uint32_t c32 = static_cast<uint32_t>(c);
  for (; i < n; ++i) c32 = __builtin_ia32_crc32qi(c32, p[i]);
  return ~c32;
}
#endif

uint32_t crc32c(uint32_t crc, const uint8_t* p, uint64_t n) {
#if GC_X86
  static const bool hw = __builtin_cpu_supports("sse4.2");
  if (hw) return crc32c_hw(crc, p, n);
#endif
  return crc32c_soft(crc, p, n);
}

}  // namespace

uint32_t checksum(const uint8_t* data, uint64_t bytes) {
  constexpr uint64_t kPieceBytes = 1 << 20;
  const size_t pieces_n = chunk_count(bytes, kPieceBytes);
  std::vector<uint32_t> crcs(pieces_n, 0);
  ThreadPool::instance().parallel_for(pieces_n, [&](size_t t) {
    const uint64_t lo = t * kPieceBytes, hi = std::min<uint64_t>(bytes, lo + kPieceBytes);
    crcs[t] = lo < hi ? crc32c(0, data + lo, hi - lo) : 0;
  });
  return crc32c(0, reinterpret_cast<const uint8_t*>(crcs.data()), 4 * crcs.size());
}

gc_status vec_add(float* dst, const float* a, const float* b, uint64_t n) {
  if (n > 0 && (dst == nullptr || a == nullptr || b == nullptr)) return GC_ERR_INVALID_ARG;
  pieces(n, [&](uint64_t lo, uint64_t hi) { add_run(dst, a, b, lo, hi); });
  return GC_OK;
}

gc_status vec_scale(float* x, uint64_t n, float s) {
  if (n > 0 && x == nullptr) return GC_ERR_INVALID_ARG;
  pieces(n, [&](uint64_t lo, uint64_t hi) { scale_run(x, s, lo, hi); });
  return GC_OK;
}

gc_status vec_axpy(float* y, const float* x, uint64_t n, float s) {
  if (n > 0 && (y == nullptr || x == nullptr)) return GC_ERR_INVALID_ARG;
  pieces(n, [&](uint64_t lo, uint64_t hi) { axpy_run(y, x, s, lo, hi); });
  return GC_OK;
}

gc_status vec_axpby(float* y, const float* x, uint64_t n, float s, float b) {
  if (n > 0 && (y == nullptr || x == nullptr)) return GC_ERR_INVALID_ARG;
  pieces(n, [&](uint64_t lo, uint64_t hi) { axpby_run(y, x, s, b, lo, hi); });
  return GC_OK;
}

gc_status vec_mul_add(float* s, const float* x, const float* y, uint64_t n, double eta) {
  if (n > 0 && (s == nullptr || x == nullptr || y == nullptr)) return GC_ERR_INVALID_ARG;
  pieces(n, [&](uint64_t lo, uint64_t hi) { mul_add_run(s, x, y, eta, lo, hi); });
  return GC_OK;
}

gc_status rows_sumsq(const float* x, uint64_t rows, uint64_t cols, double* out) {
  if (rows > 0 && (out == nullptr || (cols > 0 && x == nullptr))) return GC_ERR_INVALID_ARG;
  const uint64_t per = std::max<uint64_t>(1, kPiece / std::max<uint64_t>(1, cols));  // rows per task
  ThreadPool::instance().parallel_for(chunk_count(rows, per), [&](size_t t) {
    const uint64_t lo = t * per, hi = std::min<uint64_t>(rows, lo + per);
    for (uint64_t r = lo; r < hi; ++r) out[r] = norm_body(x + r * cols, 0, cols, 0);
  });
  return GC_OK;
}

double vec_norm_sum(const float* x, uint64_t n, int kind) {
  if (n == 0 || x == nullptr) return 0.0;
  const size_t tasks = chunk_count(n, kPiece);
  std::vector<double> part(tasks, 0.0);
  ThreadPool::instance().parallel_for(tasks, [&](size_t t) {
    const uint64_t lo = t * kPiece, hi = std::min<uint64_t>(n, lo + kPiece);
    part[t] = norm_body(x, lo, hi, kind);
  });
  double total = 0.0;
  for (double p : part) total += p;
  return total;
}

gc_status scatter_add(float* out, uint64_t n, const uint32_t* idx, const float* vals, uint64_t k, float scale) {
  if (k > 0 && (out == nullptr || idx == nullptr || vals == nullptr)) return GC_ERR_INVALID_ARG;
  for (uint64_t j = 0; j < k; ++j)
    if (idx[j] >= n || (j > 0 && idx[j] <= idx[j - 1])) return GC_ERR_CORRUPT_PAYLOAD;
  if (scale == 1.0f) {
    for (uint64_t j = 0; j < k; ++j) out[idx[j]] = out[idx[j]] + vals[j];
  } else {
    for (uint64_t j = 0; j < k; ++j) out[idx[j]] = out[idx[j]] + scale * vals[j];
  }
  return GC_OK;
}

gc_status reduce_into(void* dst, const void* src, uint64_t n, int op, gc_dtype dtype) {
  if ((n > 0 && (dst == nullptr || src == nullptr)) || op < 0 || op > 1) return GC_ERR_INVALID_ARG;
  if (dtype != GC_FLOAT32 && dtype != GC_FLOAT64) return GC_ERR_INVALID_ARG;
  const int f64 = dtype == GC_FLOAT64;
  pieces(n, [&](uint64_t lo, uint64_t hi) { reduce_run(dst, src, lo, hi, op, f64); });
  return GC_OK;
}

gc_status reduce_many(void* dst, const void* const* srcs, uint32_t k, uint64_t n, int op, gc_dtype dtype) {
  if (k == 0 || srcs == nullptr || (n > 0 && dst == nullptr) || op < 0 || op > 1) return GC_ERR_INVALID_ARG;
  if (dtype != GC_FLOAT32 && dtype != GC_FLOAT64) return GC_ERR_INVALID_ARG;
  for (uint32_t j = 0; j < k; ++j) if (n > 0 && srcs[j] == nullptr) return GC_ERR_INVALID_ARG;
  const int f64 = dtype == GC_FLOAT64;
  const size_t esz = f64 ? 8 : 4;
  // Blocks small enough that dst stays in L1 while every source folds into it: one read of each
  // source and one write of dst, the same operations in the same order as k - 1 reduce_into calls.
  constexpr uint64_t kBlock = 2048;
  pieces(n, [&](uint64_t lo, uint64_t hi) {
    for (uint64_t b = lo; b < hi; b += kBlock) {
      const uint64_t e = std::min(hi, b + kBlock);
      std::memcpy(static_cast<uint8_t*>(dst) + b * esz, static_cast<const uint8_t*>(srcs[0]) + b * esz, (e - b) * esz);
      for (uint32_t j = 1; j < k; ++j) reduce_run(dst, srcs[j], b, e, op, f64);
    }
  });
  return GC_OK;
}

}  // namespace gradcomp
