// The JS threads of one process that use the MPI addon's engine (addon.cc): the thread that starts
// it owns it; another thread may use it only while the owner lends it (lend(true)), so the two never
// post collectives at once, which ranks would pair up differently.
#pragma once
#include <atomic>
#include <mutex>

#include "../napi_util/napi_async.h"

namespace gradcomp_mpi {

// One per JS thread that calls init(): where its operations settle. A thread that exits marks its
// instance dead first (an env cleanup hook, which runs before Node tears the thread-safe function
// down), so the comm thread never calls into a thread that is gone.
struct Instance {
  napi_threadsafe_function tsfn = nullptr;
  int in_flight = 0;  // its JS thread only
  bool alive = true;  // under g_instances
  bool owner = false;
};
inline std::mutex g_instances;
// Set by the owner while it lends the engine (lend(true)).
inline std::atomic<bool> g_lent{false};

inline bool SharedUseRefused(napi_env env, const Instance* inst) {
  if (inst->owner || g_lent.load()) return false;
  gcnapi::Throw(env, gcnapi::ErrKind::kError, "ERR_GRADCOMP_COMM_LENT", "gradcomp mpi: another thread of this process runs this rank's Open MPI "
                "communicator; a second thread may use it only while that one lends it (as createTfjsOptimizer does for its step thread)");
  return true;
}

// This JS thread's instance, or null before its first init().
inline Instance* CurrentInstance(napi_env env) {
  gcnapi::InstanceData* d = gcnapi::Data(env);
  return d == nullptr ? nullptr : static_cast<Instance*>(d->addon);
}

// This JS thread's instance (made, with its thread-safe function calling `settle`, on its first init()).
inline Instance* InstanceFor(napi_env env, napi_threadsafe_function_call_js settle) {
  if (Instance* known = CurrentInstance(env)) return known;
  gcnapi::InstanceData* d = gcnapi::Data(env);
  if (d == nullptr) return nullptr;
  auto* inst = new Instance();
  napi_value name, fn;
  napi_create_string_utf8(env, "gradcomp-mpi", NAPI_AUTO_LENGTH, &name);
  napi_create_function(env, "settle", NAPI_AUTO_LENGTH, [](napi_env, napi_callback_info) -> napi_value { return nullptr; }, nullptr, &fn);
  if (napi_create_threadsafe_function(env, fn, nullptr, name, 0, 1, nullptr, nullptr, nullptr, settle, &inst->tsfn) != napi_ok) { delete inst; return nullptr; }
  napi_unref_threadsafe_function(env, inst->tsfn);
  napi_add_env_cleanup_hook(env, [](void* arg) {
    std::lock_guard<std::mutex> lock(g_instances);
    static_cast<Instance*>(arg)->alive = false;  // the Instance itself stays: a queued Pending may still point at it
  }, inst);
  d->addon = inst;
  return inst;
}

}  // namespace gradcomp_mpi
