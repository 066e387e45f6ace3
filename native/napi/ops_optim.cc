// Optimizer updates over whole tensors or buckets (native/core/optim.h).
#include <memory>

#include "../core/optim.h"
#include "ops.h"

namespace gradcomp_napi {
namespace {

// sgdStep(w, g, buf | null, lr, momentum, dampening, weightDecay, gradScale, nesterov, first, async)
GC_JS(JS_sgdStep) {
  GC_SPAN(float, 0, w);
  GC_SPAN(float, 1, g);
  GC_SPAN(float, 2, buf, true);
  gradcomp::SgdParams p;
  if (!SgdArgs(a, 3, &p)) return nullptr;
  GC_CHECK(w.len == g.len && (p.momentum == 0.0f || (buf.present && buf.len == w.len)), "sgdStep lengths disagree");
  float* bp = buf.present ? buf.data : nullptr;
  return gcnapi::Dispatch(a, gcnapi::Bool(a, 10), "sgdStep", [w, g, bp, p] { return gradcomp::sgd_step(w.data, g.data, bp, w.len, p); },
                          {a.argv[0], a.argv[1], a.argv[2]});
}

// sgdSparseStep(w, buf | null, idx, vals, counts, lr, momentum, dampening, weightDecay, gradScale, nesterov, first, async):
// the sgdStep update with g given as parts of (index, value) entries (optim.h)
GC_JS(JS_sgdSparseStep) {
  GC_SPAN(float, 0, w);
  GC_SPAN(float, 1, buf, true);
  GC_SPAN(uint32_t, 2, idx);
  GC_SPAN(float, 3, vals);
  GC_SPAN(uint32_t, 4, counts);
  gradcomp::SgdParams p;
  if (!SgdArgs(a, 5, &p)) return nullptr;
  uint64_t total = 0;
  for (uint64_t r = 0; r < counts.len; ++r) total += counts.data[r];
  GC_CHECK(idx.len == vals.len && total == idx.len && counts.len <= 0xffffffffull, "sgdSparseStep: counts must add up to the entries given");
  GC_CHECK(p.momentum == 0.0f || (buf.present && buf.len == w.len), "sgdSparseStep lengths disagree");
  float* bp = buf.present ? buf.data : nullptr;
  return gcnapi::Dispatch(a, gcnapi::Bool(a, 12), "sgdSparseStep", [w, bp, idx, vals, counts, p] {
    return gradcomp::sgd_sparse_step(w.data, bp, w.len, idx.data, vals.data, counts.data, static_cast<uint32_t>(counts.len), p);
  }, {a.argv[0], a.argv[1], a.argv[2], a.argv[3], a.argv[4]});
}

// novogradStep(w, g, m, lr, beta1, beta2, eps, weightDecay, gradScale, gradAveraging, v | null, async) -> v
GC_JS(JS_novogradStep) {
  GC_SPAN(float, 0, w);
  GC_SPAN(float, 1, g);
  GC_SPAN(float, 2, m);
  GC_F64(3, lr);
  GC_F64(4, b1);
  GC_F64(5, b2);
  GC_F64(6, eps);
  GC_F64(7, wd);
  GC_F64(8, gs);
  GC_CHECK(w.len == g.len && w.len == m.len, "novogradStep lengths disagree");
  const bool first = gcnapi::IsNullish(a.env, a.argv[10]);
  double v0 = 0.0;
  if (!first && !gcnapi::F64(a, 10, &v0)) return nullptr;
  gradcomp::NovoGradParams p{static_cast<float>(lr), static_cast<float>(b1), static_cast<float>(wd), b2, eps, static_cast<float>(gs),
                             gcnapi::Bool(a, 9), first};
  auto v = std::make_shared<double>(v0);
  if (!gcnapi::Bool(a, 11)) {
    gcnapi::ThrowStatus(a.env, gradcomp::novograd_step(w.data, g.data, m.data, w.len, p, v.get()), "novogradStep");
    return gcnapi::Number(a.env, *v);
  }
  return gcnapi::StartAsync(a.env, "novogradStep", [w, g, m, p, v](std::string*) {
    return gradcomp::novograd_step(w.data, g.data, m.data, w.len, p, v.get());
  }, {a.argv[0], a.argv[1], a.argv[2]}, [v](napi_env env) { return gcnapi::Number(env, *v); });
}

}  // namespace

bool SgdArgs(gcnapi::Args& a, size_t i, gradcomp::SgdParams* p) {
  double lr = 0.0, mu = 0.0, damp = 0.0, wd = 0.0, gs = 0.0;
  if (!gcnapi::F64(a, i, &lr) || !gcnapi::F64(a, i + 1, &mu) || !gcnapi::F64(a, i + 2, &damp) || !gcnapi::F64(a, i + 3, &wd) ||
      !gcnapi::F64(a, i + 4, &gs)) {
    return false;
  }
  *p = gradcomp::SgdParams{static_cast<float>(lr), static_cast<float>(mu), static_cast<float>(damp), static_cast<float>(wd),
                           static_cast<float>(gs), gcnapi::Bool(a, i + 5), gcnapi::Bool(a, i + 6)};
  return true;
}

void ExportOptim(napi_env env, napi_value exports) {
  const gcnapi::Fn fns[] = {{"sgdStep", JS_sgdStep}, {"sgdSparseStep", JS_sgdSparseStep}, {"novogradStep", JS_novogradStep}};
  gcnapi::Export(env, exports, fns, sizeof fns / sizeof fns[0]);
}

}  // namespace gradcomp_napi
