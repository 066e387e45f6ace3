#include "optim.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include "cpu.h"
#include "pool.h"

namespace gradcomp {

namespace {

constexpr uint64_t kPiece = 1 << 16;

inline void sgd_body(float* w, const float* g, float* buf, uint64_t lo, uint64_t hi, const SgdParams* pp) {
  const SgdParams p = *pp;
  const float keep = 1.0f - p.dampening;
  for (uint64_t i = lo; i < hi; ++i) {
    float d = g[i];
    if (p.grad_scale != 1.0f) d = d * p.grad_scale;
    if (p.weight_decay != 0.0f) d = d + p.weight_decay * w[i];
    if (buf != nullptr) {
      const float b = p.first ? d : p.momentum * buf[i] + keep * d;
      buf[i] = b;
      d = p.nesterov ? d + p.momentum * b : b;
    }
    w[i] = w[i] - p.lr * d;
  }
}
GC_ISA_VARIANTS(sgd, (float* w, const float* g, float* buf, uint64_t lo, uint64_t hi, const SgdParams* p), (w, g, buf, lo, hi, p))

inline void novograd_body(float* w, const float* g, float* m, uint64_t lo, uint64_t hi, float gs, float inv, float wd,
                          float avg, float b1, float lr) {
  for (uint64_t i = lo; i < hi; ++i) {
    float gh = g[i];
    if (gs != 1.0f) gh = gh * gs;
    gh = gh * inv;
    if (wd != 0.0f) gh = gh + wd * w[i];
    if (avg != 1.0f) gh = gh * avg;
    const float mm = b1 * m[i] + gh;
    m[i] = mm;
    w[i] = w[i] - lr * mm;
  }
}
GC_ISA_VARIANTS(novograd, (float* w, const float* g, float* m, uint64_t lo, uint64_t hi, float gs, float inv, float wd, float avg,
                           float b1, float lr), (w, g, m, lo, hi, gs, inv, wd, avg, b1, lr))

double scaled_sq(const float* g, uint64_t n, float gs) {
  const size_t tasks = chunk_count(n, kPiece);
  std::vector<double> part(tasks, 0.0);
  ThreadPool::instance().parallel_for(tasks, [&](size_t t) {
    const uint64_t lo = t * kPiece, hi = std::min<uint64_t>(n, lo + kPiece);
    double s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (uint64_t i = lo; i < hi; ++i) {
      const double v = gs == 1.0f ? g[i] : static_cast<float>(g[i] * gs);
      s[(i - lo) & 7] += v * v;
    }
    part[t] = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
  });
  double total = 0.0;
  for (double p : part) total += p;
  return total;
}

}  // namespace

gc_status sgd_step(float* w, const float* g, float* buf, uint64_t n, const SgdParams& p) {
  if (n > 0 && (w == nullptr || g == nullptr)) return GC_ERR_INVALID_ARG;
  if (p.momentum == 0.0f) buf = nullptr;
  else if (n > 0 && buf == nullptr) return GC_ERR_INVALID_ARG;
  ThreadPool::instance().parallel_for(chunk_count(n, kPiece), [&](size_t t) {
    const uint64_t lo = t * kPiece, hi = std::min<uint64_t>(n, lo + kPiece);
    if (lo < hi) sgd_run(w, g, buf, lo, hi, &p);
  });
  return GC_OK;
}

void sgd_span(float* w, const float* g, float* buf, uint64_t n, const SgdParams& p) {
  if (n > 0) sgd_run(w, g, p.momentum == 0.0f ? nullptr : buf, 0, n, &p);
}

gc_status novograd_step(float* w, const float* g, float* m, uint64_t n, const NovoGradParams& p, double* v) {
  if ((n > 0 && (w == nullptr || g == nullptr || m == nullptr)) || v == nullptr) return GC_ERR_INVALID_ARG;
  const double n2 = scaled_sq(g, n, p.grad_scale);
  const double nv = p.first ? n2 : p.beta2 * *v + (1.0 - p.beta2) * n2;
  *v = nv;
  const float inv = static_cast<float>(1.0 / (std::sqrt(nv) + p.eps));
  const float avg = p.grad_averaging ? 1.0f - p.beta1 : 1.0f;
  ThreadPool::instance().parallel_for(chunk_count(n, kPiece), [&](size_t t) {
    const uint64_t lo = t * kPiece, hi = std::min<uint64_t>(n, lo + kPiece);
    if (lo < hi) novograd_run(w, g, m, lo, hi, p.grad_scale, inv, p.weight_decay, avg, p.beta1, p.lr);
  });
  return GC_OK;
}

namespace {

constexpr uint64_t kTile = 8192;  // a piece of g formed in cache (32 KiB), then consumed by the update

// The sparse update where only the listed entries change: a merge of the parts in index order,
// each g summed over the parts in part order.
void sgd_sparse_touch(float* w, const uint32_t* idx, const float* vals, const std::vector<uint64_t>& start, const SgdParams& p) {
  const size_t parts = start.size() - 1;
  std::vector<uint64_t> pos(start.begin(), start.end() - 1);
  for (;;) {
    bool any = false;
    uint32_t m = 0;
    for (size_t r = 0; r < parts; ++r) {
      if (pos[r] < start[r + 1] && (!any || idx[pos[r]] < m)) { m = idx[pos[r]]; any = true; }
    }
    if (!any) return;
    float g = 0.0f;
    for (size_t r = 0; r < parts; ++r) {
      if (pos[r] < start[r + 1] && idx[pos[r]] == m) g = g + vals[pos[r]++];
    }
    float d = g;
    if (p.grad_scale != 1.0f) d = d * p.grad_scale;
    w[m] = w[m] - p.lr * d;
  }
}

}  // namespace

void sgd_tiles(float* w, float* buf, uint64_t n, const SgdParams& p, const std::function<void(uint64_t, uint64_t, float*)>& form) {
  if (p.momentum == 0.0f) buf = nullptr;
  ThreadPool::instance().parallel_for(chunk_count(n, kTile), [&](size_t t) {
    const uint64_t lo = t * kTile, hi = std::min<uint64_t>(n, lo + kTile);
    thread_local std::vector<float> g;
    g.assign(kTile, 0.0f);
    form(lo, hi, g.data());
    sgd_run(w + lo, g.data(), buf == nullptr ? nullptr : buf + lo, 0, hi - lo, &p);
  });
}

gc_status sgd_sparse_step(float* w, float* buf, uint64_t n, const uint32_t* idx, const float* vals, const uint32_t* counts,
                          uint32_t parts, const SgdParams& p) {
  if ((n > 0 && w == nullptr) || (parts > 0 && counts == nullptr)) return GC_ERR_INVALID_ARG;
  if (p.momentum == 0.0f) buf = nullptr;
  else if (n > 0 && buf == nullptr) return GC_ERR_INVALID_ARG;
  std::vector<uint64_t> start(parts + 1, 0);
  for (uint32_t r = 0; r < parts; ++r) start[r + 1] = start[r] + counts[r];
  if (start[parts] > 0 && (idx == nullptr || vals == nullptr)) return GC_ERR_INVALID_ARG;
  // Every part checked before anything is written: a corrupt payload leaves w and buf as they were.
  for (uint32_t r = 0; r < parts; ++r) {
    for (uint64_t j = start[r]; j < start[r + 1]; ++j) {
      if (idx[j] >= n || (j > start[r] && idx[j] <= idx[j - 1])) return GC_ERR_CORRUPT_PAYLOAD;
    }
  }
  if (buf == nullptr && p.weight_decay == 0.0f && !(p.grad_scale < 0.0f)) {
    sgd_sparse_touch(w, idx, vals, start, p);
    return GC_OK;
  }
  sgd_tiles(w, buf, n, p, [&](uint64_t lo, uint64_t hi, float* g) {
    if (lo > 0xffffffffull) return;  // indices are 32-bit: none this far
    for (uint32_t r = 0; r < parts; ++r) {
      const uint32_t* e = idx + start[r + 1];
      for (const uint32_t* q = std::lower_bound(idx + start[r], e, static_cast<uint32_t>(lo)); q < e && *q < hi; ++q) {
        g[*q - lo] = g[*q - lo] + vals[q - idx];
      }
    }
  });
  return GC_OK;
}

}  // namespace gradcomp
