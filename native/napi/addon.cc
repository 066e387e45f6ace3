// The CPU addon's module entry: the op families register themselves (ops.h); every addon also
// exports `abi` and `setErrorFactory` (napi_util.h).
#include "ops.h"

namespace {
napi_value Init(napi_env env, napi_value exports) {
  gcnapi::ExportCommon(env, exports);
  gradcomp_napi::ExportSelect(env, exports);
  gradcomp_napi::ExportQuant(env, exports);
  gradcomp_napi::ExportPowerSgd(env, exports);
  gradcomp_napi::ExportVector(env, exports);
  gradcomp_napi::ExportOptim(env, exports);
  gradcomp_napi::ExportRuntime(env, exports);
  return exports;
}
}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
