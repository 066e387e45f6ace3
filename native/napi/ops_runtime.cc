// Runtime settings (threads, ISA cap), introspection, and the benchmark's same-run baselines.
#include <string>

#include "../core/baselines.h"
#include "../core/cpu.h"
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
                            {"setMaxIsa", JS_setMaxIsa}, {"baselineNthElementEfTopK", JS_baselineNthElementEfTopK},
                            {"baselineMemcpy", JS_baselineMemcpy}};
  gcnapi::Export(env, exports, fns, sizeof fns / sizeof fns[0]);
}

}  // namespace gradcomp_napi
