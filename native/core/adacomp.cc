#include "adacomp.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <vector>

#include "pool.h"

namespace gradcomp {

namespace {
constexpr uint64_t kPiece = 1 << 16;  // about this many elements per task, a whole number of bins
}  // namespace

gc_status adacomp_select(const float* dW, float* R, uint64_t n, uint32_t bin, uint32_t* sel, uint64_t* m, double* abs_sum) {
  if (bin == 0 || (n > 0 && (dW == nullptr || R == nullptr || sel == nullptr))) return GC_ERR_INVALID_ARG;
  const uint64_t piece = std::max<uint64_t>(bin, kPiece / bin * bin);
  const size_t tasks = chunk_count(n, piece);
  std::vector<uint64_t> count(tasks, 0);
  std::vector<double> sum(tasks, 0.0);
  // Each piece writes its selection at its own start in sel (it selects at most its length).
  ThreadPool::instance().parallel_for(tasks, [&](size_t t) {
    const uint64_t lo = t * piece, hi = std::min<uint64_t>(n, lo + piece);
    uint64_t c = lo;
    double s = 0.0;
    for (uint64_t b0 = lo; b0 < hi; b0 += bin) {
      const uint64_t b1 = std::min<uint64_t>(hi, b0 + bin);
      float gmax = 0.0f;
      for (uint64_t j = b0; j < b1; ++j) {
        const float g = R[j] + dW[j];
        R[j] = g;
        gmax = std::max(gmax, std::fabs(g));
      }
      if (!(gmax > 0.0f)) continue;
      for (uint64_t j = b0; j < b1; ++j) {
        if (std::fabs(R[j] + dW[j]) >= gmax) {
          sel[c++] = static_cast<uint32_t>(j);
          s += std::fabs(static_cast<double>(R[j]));
        }
      }
    }
    count[t] = c - lo;
    sum[t] = s;
  });
  uint64_t total = 0;
  double s = 0.0;
  for (size_t t = 0; t < tasks; ++t) {
    if (total != t * piece && count[t] > 0) std::memmove(sel + total, sel + t * piece, count[t] * sizeof(uint32_t));
    total += count[t];
    s += sum[t];
  }
  *m = total;
  *abs_sum = s;
  return GC_OK;
}

gc_status adacomp_emit(float* R, const uint32_t* sel, uint64_t m, float scale, uint32_t* idx, uint8_t* signs) {
  if (m > 0 && (R == nullptr || sel == nullptr || idx == nullptr || signs == nullptr)) return GC_ERR_INVALID_ARG;
  ThreadPool::instance().parallel_for(chunk_count(m, kPiece), [&](size_t t) {
    const uint64_t lo = t * kPiece, hi = std::min<uint64_t>(m, lo + kPiece);  // kPiece is a multiple of 8
    for (uint64_t i = lo; i < hi; i += 8) {
      uint32_t byte = 0;
      for (uint64_t j = i; j < i + 8 && j < hi; ++j) {
        const uint32_t k = sel[j];
        idx[j] = k;
        const bool neg = R[k] < 0.0f;
        byte |= (neg ? 1u : 0u) << (j - i);
        R[k] -= neg ? -scale : scale;
      }
      signs[i / 8] = static_cast<uint8_t>(byte);
    }
  });
  return GC_OK;
}

gc_status adacomp_decode_add(const uint32_t* idx, const uint8_t* signs, uint64_t m, float scale, float* out, uint64_t n) {
  if (m > 0 && (idx == nullptr || signs == nullptr || out == nullptr)) return GC_ERR_INVALID_ARG;
  const size_t tasks = chunk_count(m, kPiece);
  std::atomic<bool> bad{false};
  ThreadPool::instance().parallel_for(tasks, [&](size_t t) {
    const uint64_t lo = t * kPiece, hi = std::min<uint64_t>(m, lo + kPiece);
    for (uint64_t j = lo; j < hi; ++j) {
      if (idx[j] >= n || (j > 0 && idx[j] <= idx[j - 1])) { bad.store(true, std::memory_order_relaxed); return; }
    }
  });
  if (bad.load()) return GC_ERR_CORRUPT_PAYLOAD;
  ThreadPool::instance().parallel_for(tasks, [&](size_t t) {
    const uint64_t lo = t * kPiece, hi = std::min<uint64_t>(m, lo + kPiece);
    for (uint64_t j = lo; j < hi; ++j) out[idx[j]] += ((signs[j / 8] >> (j % 8)) & 1u) ? -scale : scale;
  });
  return GC_OK;
}

}  // namespace gradcomp
