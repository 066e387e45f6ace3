// Optimizer updates over whole tensors or buckets, at the memory floor. float32 arithmetic, one
// rounding per operation in the order written below (no FMA contraction), so the bits are the
// same on every ISA and thread count; test/reference/optim.ts is the oracle.
#pragma once
#include <functional>

#include "gradcomp/gradcomp.h"

namespace gradcomp {

struct SgdParams {
  float lr, momentum, dampening, weight_decay;
  float grad_scale;  // g is multiplied by this first (1 / workers turns a sum into the mean)
  bool nesterov;
  bool first;  // the momentum buffer starts as d (PyTorch's first step)
};

// SGD with momentum / Nesterov / weight decay (PyTorch's semantics), per element:
//   d = g * grad_scale;  d = d + wd * w
//   buf = first ? d : momentum * buf + (1 - dampening) * d            (momentum > 0)
//   d = nesterov ? d + momentum * buf : buf
//   w = w - lr * d
// buf may be null when momentum is 0.
gc_status sgd_step(float* w, const float* g, float* buf, uint64_t n, const SgdParams& p);
// The same update on one span, on the calling thread (for kernels that form g a piece at a time and
// update straight away, e.g. PowerSGD's reconstruction: g never goes through memory).
void sgd_span(float* w, const float* g, float* buf, uint64_t n, const SgdParams& p);

// The same update with g given sparse: `parts` lists of (index, value) entries, concatenated in idx
// and vals, counts[r] entries in part r, each part's indices strictly ascending and < n (else
// GC_ERR_CORRUPT_PAYLOAD, before anything is written). g[i] is the sum of the parts' values at i in
// part order, starting from +0 (0 where no part has i): the bits of zero-filling a dense g,
// scatter-adding the parts in order and calling sgd_step, without g going through memory. With no
// momentum buffer, no weight decay and grad_scale >= 0, only the listed entries of w are touched
// (w - lr * 0 is w there).
gc_status sgd_sparse_step(float* w, float* buf, uint64_t n, const uint32_t* idx, const float* vals, const uint32_t* counts,
                          uint32_t parts, const SgdParams& p);

// The same update with g formed a tile at a time: form(lo, hi, g) writes g[i - lo] for i in
// [lo, hi) (at most 8192 elements, g zeroed on entry and held in cache), then the tile is updated:
// for kernels whose gradient arrives encoded (sparse entries, QSGD payloads), which never write
// it to memory. Tiles run in parallel; form must be safe to call concurrently.
void sgd_tiles(float* w, float* buf, uint64_t n, const SgdParams& p, const std::function<void(uint64_t, uint64_t, float*)>& form);

struct NovoGradParams {
  float lr, beta1, weight_decay;
  double beta2, eps;
  float grad_scale;
  bool grad_averaging;
  bool first;  // v starts as ||g||^2
};

// NovoGrad (Ginsburg et al. 2019), one tensor: n2 = ||g * grad_scale||^2 (float64, fixed order);
// v = first ? n2 : beta2 v + (1 - beta2) n2;  inv = 1 / (sqrt(v) + eps)  (float64, then float32);
//   gh = (g * grad_scale * inv + wd * w) * (grad_averaging ? 1 - beta1 : 1)
//   m = beta1 m + gh;  w = w - lr * m
// *v is read (unless first) and written.
gc_status novograd_step(float* w, const float* g, float* m, uint64_t n, const NovoGradParams& p, double* v);

}  // namespace gradcomp
