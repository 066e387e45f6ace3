// PowerSGD's power step, its two halves, the reconstruction with the error-feedback update, and
// the orthonormalization on its own.
#include <string>

#include "../core/powersgd.h"
#include "arena.h"
#include "ops.h"

namespace gradcomp_napi {
namespace {

// (m, q, p, batch, rows, cols, rank, ...) into a descriptor; false with an error thrown.
bool PowerSgdArgs(gcnapi::Args& a, const char* op, gc_powersgd_desc* d) {
  gcnapi::Span<float> m, q, p;
  uint64_t batch = 0, rows = 0, cols = 0, rank = 0;
  if (!gcnapi::Unpack<float>(a, 0, &m) || !gcnapi::Unpack<float>(a, 1, &q) || !gcnapi::Unpack<float>(a, 2, &p) ||
      !gcnapi::U64(a, 3, &batch, 0xffffffffULL) || !gcnapi::U64(a, 4, &rows, 0xffffffffULL) ||
      !gcnapi::U64(a, 5, &cols, 0xffffffffULL) || !gcnapi::U64(a, 6, &rank, 1024)) {
    return false;
  }
  const unsigned __int128 mn = static_cast<unsigned __int128>(batch) * rows * cols;
  if (rank < 1 || mn != m.len || static_cast<unsigned __int128>(batch) * cols * rank != q.len ||
      static_cast<unsigned __int128>(batch) * rows * rank != p.len) {
    gcnapi::ThrowRange(a.env, std::string("gradcomp native: ") + op + " shapes disagree");
    return false;
  }
  *d = gc_powersgd_desc{m.data, q.data, p.data, batch, rows, cols, static_cast<uint32_t>(rank), {nullptr, 0}};
  return true;
}

// Runs a power-step kernel with its scratch leased from the arena.
gc_status WithScratch(gc_powersgd_desc& d, gc_status (*fn)(const gc_powersgd_desc&)) {
  Lease lease(gradcomp::powersgd_scratch_bytes(d));
  if (!lease.ok()) return GC_ERR_OUT_OF_MEMORY;
  d.scratch = lease.scratch();
  return fn(d);
}

// powersgdStep(m, q, p, batch, rows, cols, rank, async)
GC_JS(JS_powersgdStep) {
  gc_powersgd_desc d;
  if (!PowerSgdArgs(a, "powersgdStep", &d)) return nullptr;
  return gcnapi::Dispatch(a, gcnapi::Bool(a, 7), "powerSgdStep", [d]() mutable { return WithScratch(d, gradcomp::powersgd_step); },
                          {a.argv[0], a.argv[1], a.argv[2]});
}

// powersgdPhase(m, q, p, batch, rows, cols, rank, phase, async): 1: P = M Q; 2: Q = M^T P
GC_JS(JS_powersgdPhase) {
  gc_powersgd_desc d;
  if (!PowerSgdArgs(a, "powersgdPhase", &d)) return nullptr;
  GC_U64(7, phase, 2);
  GC_CHECK(phase == 1 || phase == 2, "powersgdPhase phase must be 1 or 2");
  const bool async = gcnapi::Bool(a, 8);
  if (phase == 1) return gcnapi::Dispatch(a, async, "powerSgdMQ", [d]() mutable { return WithScratch(d, gradcomp::powersgd_mq); }, {a.argv[0], a.argv[1], a.argv[2]});
  return gcnapi::Dispatch(a, async, "powerSgdMtP", [d]() mutable { return WithScratch(d, gradcomp::powersgd_mtp); }, {a.argv[0], a.argv[1], a.argv[2]});
}

// powersgdMqAdd(e, q, p, batch, rows, cols, rank, g, async): e = g + e, then P = e Q (fused, e written)
GC_JS(JS_powersgdMqAdd) {
  gc_powersgd_desc d;
  if (!PowerSgdArgs(a, "powersgdMqAdd", &d)) return nullptr;
  GC_SPAN(float, 7, g);
  GC_CHECK(g.len == d.batch * d.rows * d.cols, "powersgdMqAdd g has the wrong length");
  const float* gp = g.data;
  return gcnapi::Dispatch(a, gcnapi::Bool(a, 8), "powerSgdMqAdd", [d, gp]() mutable {
    Lease lease(gradcomp::powersgd_scratch_bytes(d));
    if (!lease.ok()) return GC_ERR_OUT_OF_MEMORY;
    d.scratch = lease.scratch();
    return gradcomp::powersgd_mq_add(d, gp);
  }, {a.argv[0], a.argv[1], a.argv[2], a.argv[7]});
}

// powersgdReconstruct(p, q, rows, cols, rank, out, m | null, residual | null, async)
GC_JS(JS_powersgdReconstruct) {
  GC_SPAN(float, 0, p);
  GC_SPAN(float, 1, q);
  GC_U64(2, rows, 0xffffffffULL);
  GC_U64(3, cols, 0xffffffffULL);
  GC_U64(4, rank, 1024);
  GC_SPAN(float, 5, out);
  GC_SPAN(float, 6, m, true);
  GC_SPAN(float, 7, res, true);
  const unsigned __int128 mn = static_cast<unsigned __int128>(rows) * cols;
  GC_CHECK(rank >= 1 && p.len == rows * rank && q.len == cols * rank && out.len == mn && m.present == res.present &&
               (!m.present || (m.len == mn && res.len == mn)),
           "powersgdReconstruct shapes disagree");
  gc_powersgd_desc d{m.present ? m.data : nullptr, q.data, p.data, 1, rows, cols, static_cast<uint32_t>(rank), {nullptr, 0}};
  float* o = out.data;
  float* r = res.present ? res.data : nullptr;
  return gcnapi::Dispatch(a, gcnapi::Bool(a, 8), "powerSgdReconstruct", [d, o, r] { return gradcomp::powersgd_reconstruct(d, o, r); },
                          {a.argv[0], a.argv[1], a.argv[5], a.argv[6], a.argv[7]});
}

// powersgdReconstructSgd(p, q, rows, cols, rank, residual | null, w, buf | null, lr, momentum, dampening, weightDecay,
//                        gradScale, nesterov, first, async): g = P Qᵀ row by row, residual -= g, SGD on w with g.
GC_JS(JS_powersgdReconstructSgd) {
  GC_SPAN(float, 0, p);
  GC_SPAN(float, 1, q);
  GC_U64(2, rows, 0xffffffffULL);
  GC_U64(3, cols, 0xffffffffULL);
  GC_U64(4, rank, 1024);
  GC_SPAN(float, 5, res, true);
  GC_SPAN(float, 6, w);
  GC_SPAN(float, 7, buf, true);
  gradcomp::SgdParams sp;
  if (!SgdArgs(a, 8, &sp)) return nullptr;
  const unsigned __int128 mn = static_cast<unsigned __int128>(rows) * cols;
  GC_CHECK(rank >= 1 && p.len == rows * rank && q.len == cols * rank && w.len == mn && (!res.present || res.len == mn) &&
               (sp.momentum == 0.0f || (buf.present && buf.len == mn)),
           "powersgdReconstructSgd shapes disagree");
  float* r = res.present ? res.data : nullptr;
  gc_powersgd_desc d{r, q.data, p.data, 1, rows, cols, static_cast<uint32_t>(rank), {nullptr, 0}};
  float* wp = w.data;
  float* bp = buf.present ? buf.data : nullptr;
  return gcnapi::Dispatch(a, gcnapi::Bool(a, 15), "powerSgdReconstructSgd",
                          [d, r, wp, bp, sp] { return gradcomp::powersgd_reconstruct_sgd(d, r, wp, bp, sp); },
                          {a.argv[0], a.argv[1], a.argv[5], a.argv[6], a.argv[7]});
}

// orthonormalize(p, batch, rows, rank, async)
GC_JS(JS_orthonormalize) {
  GC_SPAN(float, 0, p);
  GC_U64(1, batch, 0xffffffffULL);
  GC_U64(2, rows, 0xffffffffULL);
  GC_U64(3, rank, 1024);
  GC_CHECK(rank >= 1 && static_cast<unsigned __int128>(batch) * rows * rank == p.len, "orthonormalize shapes disagree");
  float* pd = p.data;
  return gcnapi::Dispatch(a, gcnapi::Bool(a, 4), "orthonormalize",
                          [pd, batch, rows, rank] { return gradcomp::orthonormalize(pd, batch, rows, static_cast<uint32_t>(rank)); },
                          {a.argv[0]});
}

}  // namespace

void ExportPowerSgd(napi_env env, napi_value exports) {
  const gcnapi::Fn fns[] = {{"powersgdStep", JS_powersgdStep}, {"powersgdPhase", JS_powersgdPhase}, {"powersgdMqAdd", JS_powersgdMqAdd},
                            {"powersgdReconstruct", JS_powersgdReconstruct}, {"powersgdReconstructSgd", JS_powersgdReconstructSgd},
                            {"orthonormalize", JS_orthonormalize}};
  gcnapi::Export(env, exports, fns, sizeof fns / sizeof fns[0]);
}

}  // namespace gradcomp_napi
