// The CPU addon's op families: each file registers its entry points on the exports object.
// Every entry unpacks its arguments into a plain descriptor on the JS thread (TypeScript has
// already validated them and written the user-facing messages; these checks guard memory safety
// only), then runs the kernel right here or on the libuv pool (a Promise), see napi_util.h.
#pragma once
#include "../core/optim.h"
#include "../napi_util/napi_async.h"

namespace gradcomp_napi {

void ExportSelect(napi_env env, napi_value exports);    // top-k, DropIT
void ExportQuant(napi_env env, napi_value exports);     // QSGD, fp16/bf16 casts, signs
void ExportPowerSgd(napi_env env, napi_value exports);  // power steps, orthonormalization
void ExportVector(napi_env env, napi_value exports);    // elementwise, reductions, Philox, rand-k, DGC
void ExportOptim(napi_env env, napi_value exports);     // SGD, NovoGrad
void ExportRuntime(napi_env env, napi_value exports);   // threads, ISA, benchmark baselines

// SGD's hyperparameters at arguments i .. i+6: lr, momentum, dampening, weightDecay, gradScale,
// nesterov, first (sgdStep and the fused PowerSGD update take the same); false with an error thrown.
bool SgdArgs(gcnapi::Args& a, size_t i, gradcomp::SgdParams* p);

}  // namespace gradcomp_napi
