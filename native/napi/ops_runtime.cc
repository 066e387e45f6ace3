// Runtime settings (threads, ISA cap), introspection, and the benchmark's same-run baselines.
#include <string>

#include "../core/baselines.h"
#include "../core/cpu.h"
#include "../core/dropit.h"
#include "../core/powersgd.h"
#include "../core/topk.h"
#include "../core/pool.h"
#include "ops.h"

namespace gradcomp_napi {
namespace {

GC_JS(JS_setConcurrency) {
  GC_U64(0, n, 256);
  gradcomp::ThreadPool::instance().set_concurrency(static_cast<unsigned>(n));
  return nullptr;
}
GC_JS(JS_concurrency) { return gcnapi::Number(a.env, gradcomp::ThreadPool::instance().concurrency()); }
GC_JS(JS_isa) { return gcnapi::String(a.env, gradcomp::isa_name(gradcomp::active_isa())); }
GC_JS(JS_setMaxIsa) {
  std::string s;
  if (!gcnapi::Str(a, 0, &s)) return nullptr;
  gradcomp::set_max_isa(s == "scalar" ? gradcomp::Isa::kScalar : s == "avx2" ? gradcomp::Isa::kAvx2 : gradcomp::Isa::kAvx512);
  return nullptr;
}

// scratchBytes(op, a, b, c, d): the scratch the CPU kernel of `op` needs (the arena provides it):
// 'topk' (n, k), 'dropit' (n, k), 'powersgd' (batch, rows, cols, rank).
GC_JS(JS_scratchBytes) {
  std::string op;
  if (!gcnapi::Str(a, 0, &op)) return nullptr;
  GC_U64(1, x);
  GC_U64(2, y);
  if (op == "topk") return gcnapi::Number(a.env, static_cast<double>(gradcomp::topk_scratch_bytes(x, y)));
  if (op == "dropit") return gcnapi::Number(a.env, static_cast<double>(gradcomp::dropit_scratch_bytes(x, y)));
  GC_U64(3, z);
  GC_U64(4, w, 1024);
  GC_CHECK(op == "powersgd", "scratchBytes: unknown op " + op);
  gc_powersgd_desc d{nullptr, nullptr, nullptr, x, y, z, static_cast<uint32_t>(w), {nullptr, 0}};
  return gcnapi::Number(a.env, static_cast<double>(gradcomp::powersgd_scratch_bytes(d)));
}

// baselineNthElementEfTopK(g, r, k, outIdx, outVal)
GC_JS(JS_baselineNthElementEfTopK) {
  GC_SPAN(float, 0, g);
  GC_SPAN(float, 1, r);
  GC_U64(2, k);
  GC_SPAN(uint32_t, 3, oidx);
  GC_SPAN(float, 4, oval);
  GC_CHECK(g.len == r.len && k <= r.len && oidx.len >= k && oval.len >= k, "baselineNthElementEfTopK lengths disagree");
  gradcomp::baseline_nth_element_ef_topk(g.data, r.data, r.len, k, oidx.data, oval.data);
  return nullptr;
}
// baselineMemcpy(dst, src)
GC_JS(JS_baselineMemcpy) {
  GC_SPAN(uint8_t, 0, dst);
  GC_SPAN(uint8_t, 1, src);
  GC_CHECK(dst.len == src.len, "baselineMemcpy lengths disagree");
  gradcomp::baseline_parallel_memcpy(dst.data, src.data, dst.len);
  return nullptr;
}

}  // namespace

void ExportRuntime(napi_env env, napi_value exports) {
  const gcnapi::Fn fns[] = {{"setConcurrency", JS_setConcurrency}, {"concurrency", JS_concurrency}, {"isa", JS_isa},
                            {"setMaxIsa", JS_setMaxIsa}, {"scratchBytes", JS_scratchBytes}, {"baselineNthElementEfTopK", JS_baselineNthElementEfTopK},
                            {"baselineMemcpy", JS_baselineMemcpy}};
  gcnapi::Export(env, exports, fns, sizeof fns / sizeof fns[0]);
}

}  // namespace gradcomp_napi
