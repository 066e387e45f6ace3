// top-k (plain and fused with error feedback) and DropIT pack/unpack.
#include "../core/dropit.h"
#include "../core/topk.h"
#include "arena.h"
#include "ops.h"

namespace gradcomp_napi {
namespace {

// topk(grad | null, residual, k, scale, outIdx, outVal, async)
GC_JS(JS_topk) {
  GC_SPAN(float, 0, grad, true);
  GC_SPAN(float, 1, res);
  GC_U64(2, k);
  GC_F64(3, scale);
  GC_SPAN(uint32_t, 4, oidx);
  GC_SPAN(float, 5, oval);
  GC_CHECK(!(grad.present && grad.len != res.len) && oidx.len == k && oval.len == k && k <= res.len, "topk lengths disagree");
  gc_topk_desc d{grad.present ? grad.data : nullptr, res.data, res.len, k, static_cast<float>(scale), oidx.data, oval.data, {nullptr, 0}};
  const uint64_t need = gradcomp::topk_scratch_bytes(res.len, k);
  return gcnapi::Dispatch(a, gcnapi::Bool(a, 6), grad.present ? "efTopK" : "topK", [d, need]() mutable {
    Lease lease(need);
    if (!lease.ok()) return GC_ERR_OUT_OF_MEMORY;
    d.scratch = lease.scratch();
    return gradcomp::topk(d);
  },
                          {a.argv[0], a.argv[1], a.argv[4], a.argv[5]});
}

// dropitPack(x, k, out, async)
GC_JS(JS_dropitPack) {
  GC_SPAN(float, 0, x);
  GC_U64(1, k);
  GC_SPAN(uint8_t, 2, out);
  GC_CHECK(k <= x.len && out.len == gc_dropit_packed_bytes(x.len, k), "dropitPack sizes disagree");
  const uint64_t need = gradcomp::dropit_scratch_bytes(x.len, k);
  return gcnapi::Dispatch(a, gcnapi::Bool(a, 3), "dropitPack", [x, k, out, need] {
    Lease lease(need);
    if (!lease.ok()) return GC_ERR_OUT_OF_MEMORY;
    return gradcomp::dropit_pack(x.data, x.len, k, out.data, out.len, lease.scratch());
  },
                          {a.argv[0], a.argv[2]});
}

// dropitUnpack(payload, out, async)
GC_JS(JS_dropitUnpack) {
  GC_SPAN(uint8_t, 0, in);
  GC_SPAN(float, 1, out);
  return gcnapi::Dispatch(a, gcnapi::Bool(a, 2), "dropitUnpack",
                          [in, out] { return gradcomp::dropit_unpack(in.data, in.len, out.data, out.len); }, {a.argv[0], a.argv[1]});
}

// dropitPackedBytes(n, k) -> [bytes, layout]
GC_JS(JS_dropitPackedBytes) {
  GC_U64(0, n);
  GC_U64(1, k);
  napi_value arr;
  if (napi_create_array_with_length(a.env, 2, &arr) != napi_ok) return nullptr;
  napi_set_element(a.env, arr, 0, gcnapi::Number(a.env, static_cast<double>(gc_dropit_packed_bytes(n, k))));
  napi_set_element(a.env, arr, 1, gcnapi::Number(a.env, gc_dropit_layout_for(n, k)));
  return arr;
}

GC_JS(JS_lastTopkPath) { return gcnapi::Number(a.env, gradcomp::last_topk_path()); }
GC_JS(JS_lastDropitPath) { return gcnapi::Number(a.env, gradcomp::last_dropit_path()); }

}  // namespace

void ExportSelect(napi_env env, napi_value exports) {
  const gcnapi::Fn fns[] = {{"topk", JS_topk}, {"dropitPack", JS_dropitPack}, {"dropitUnpack", JS_dropitUnpack},
                            {"dropitPackedBytes", JS_dropitPackedBytes}, {"lastTopkPath", JS_lastTopkPath},
                            {"lastDropitPath", JS_lastDropitPath}};
  gcnapi::Export(env, exports, fns, sizeof fns / sizeof fns[0]);
}

}  // namespace gradcomp_napi
