// The Open MPI communicator addon's N-API entry (the engine is engine.h). Every operation is a
// job on the communication thread, in issue order; its Promise settles through a thread-safe
// function of the JS thread that issued it. A pending operation holds references to its typed
// arrays (pinned by lib/comm), and point-to-point sends are MPI_Isend from a private copy, so a ring
// of sends followed by receives cannot deadlock the single communication thread.
//
// MPI is one per process, but a process may have several JS threads: the one that calls init()
// first owns the engine (and finalizes it); a worker thread that loads the addon and calls init()
// afterwards shares it (the TF.js optimizer's step thread acts as its rank while the training
// thread waits), with a thread-safe function of its own.
#include <cstring>
#include <future>

#include "../napi_util/napi_async.h"
#include "engine.h"
#include "instances.h"

namespace gradcomp_mpi {
namespace {

Engine* g = nullptr;

struct Pending {
  napi_deferred deferred = nullptr;
  std::vector<napi_ref> refs;
  int code = MPI_SUCCESS;
  std::string op;
  Instance* inst = nullptr;
};

void Settle(napi_env env, napi_value, void*, void* data) {
  auto* p = static_cast<Pending*>(data);
  if (env != nullptr) {
    napi_value v;
    if (p->code == MPI_SUCCESS) {
      napi_get_undefined(env, &v);
      napi_resolve_deferred(env, p->deferred, v);
    } else {
      char msg[MPI_MAX_ERROR_STRING];
      int len = 0;
      MPI_Error_string(p->code, msg, &len);
      if (gcnapi::StatusError(env, GC_ERR_COMM, p->op, std::string(msg, static_cast<size_t>(len)), &v)) napi_reject_deferred(env, p->deferred, v);
    }
    for (napi_ref r : p->refs) napi_delete_reference(env, r);
    if (--p->inst->in_flight == 0) napi_unref_threadsafe_function(env, p->inst->tsfn);
  }
  delete p;
}

// Hands a finished operation to the thread that issued it (dropped if that thread has exited).
void Deliver(Pending* p) {
  std::lock_guard<std::mutex> lock(g_instances);
  if (!p->inst->alive || napi_call_threadsafe_function(p->inst->tsfn, p, napi_tsfn_nonblocking) != napi_ok) delete p;
}

// This JS thread's instance (made, with its thread-safe function, on its first init()).
Instance* InstanceOf(napi_env env) { return InstanceFor(env, Settle); }

void Loop(Engine* e, std::promise<void> ready) {
  int provided = 0;
  MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided);
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_rank(MPI_COMM_WORLD, &e->rank);
  MPI_Comm_size(MPI_COMM_WORLD, &e->size);
  e->provided = provided;
  char buf[MPI_MAX_LIBRARY_VERSION_STRING];
  int len = 0;
  MPI_Get_library_version(buf, &len);
  e->version = std::string(buf);
  e->topology();
  ready.set_value();
  for (;;) {
    std::pair<Job, void*> item;
    {
      std::unique_lock<std::mutex> lock(e->m);
      while (e->queue.empty() && !e->stop) {
        // Idle: keep answering other ranks' "where are you" questions (a hung JS thread is named by its idle comm thread).
        e->cv.wait_for(lock, std::chrono::milliseconds(50));
        if (e->queue.empty()) { lock.unlock(); e->answer(); e->reap(); lock.lock(); }
      }
      if (e->queue.empty() && e->stop) break;
      item = std::move(e->queue.front());
      e->queue.pop_front();
    }
    e->reap();
    static_cast<Pending*>(item.second)->code = item.first(*e);
    e->current = "idle";
    Deliver(static_cast<Pending*>(item.second));
  }
  for (auto& s : e->sends) MPI_Wait(&s.first, MPI_STATUS_IGNORE);
  e->sends.clear();
  if (e->cross != MPI_COMM_NULL) MPI_Comm_free(&e->cross);
  if (e->node != MPI_COMM_NULL) MPI_Comm_free(&e->node);
  MPI_Finalize();
}

// Queues a job; `keep` are the arguments whose memory it touches. A collective job counts itself.
napi_value Post(const gcnapi::Args& a, const char* op, Job job, std::initializer_list<size_t> keep, bool collective = true) {
  if (g == nullptr || !g->started) {
    gcnapi::Throw(a.env, gcnapi::ErrKind::kError, "ERR_GRADCOMP_BACKEND_UNAVAILABLE", "gradcomp mpi: not initialized (or already finalized)");
    return nullptr;
  }
  Instance* inst = CurrentInstance(a.env);
  if (inst == nullptr) {
    gcnapi::Throw(a.env, gcnapi::ErrKind::kError, "ERR_GRADCOMP_BACKEND_UNAVAILABLE", "gradcomp mpi: init() was not called on this thread");
    return nullptr;
  }
  if (SharedUseRefused(a.env, inst)) return nullptr;
  auto* p = new Pending();
  p->op = op;
  p->inst = inst;
  napi_value promise;
  if (napi_create_promise(a.env, &p->deferred, &promise) != napi_ok) { delete p; return nullptr; }
  for (size_t i : keep) {
    napi_ref r;
    if (napi_create_reference(a.env, a.argv[i], 1, &r) == napi_ok) p->refs.push_back(r);
  }
  if (inst->in_flight++ == 0) napi_ref_threadsafe_function(a.env, inst->tsfn);
  std::string name = op;
  Job run = collective ? Job([job, name](Engine& e) { e.seq++; e.current = name; return job(e); }) : job;
  {
    std::lock_guard<std::mutex> lock(g->m);
    g->queue.emplace_back(std::move(run), p);
  }
  g->cv.notify_one();
  return promise;
}

struct Buf {
  uint8_t* data = nullptr;
  uint64_t count = 0, bytes = 0;
  MPI_Datatype type = MPI_BYTE;
};

// Argument i as a typed array of a supported kind (null allowed when optional).
bool GetBuf(const gcnapi::Args& a, size_t i, Buf* b, bool optional = false) {
  if (optional && gcnapi::IsNullish(a.env, a.argv[i])) return true;
  switch (gcnapi::TypedArrayKind(a, i)) {
    case napi_float32_array: { gcnapi::Span<float> s; if (!gcnapi::Unpack(a, i, &s)) return false; *b = {reinterpret_cast<uint8_t*>(s.data), s.len, 4 * s.len, MPI_FLOAT}; return true; }
    case napi_float64_array: { gcnapi::Span<double> s; if (!gcnapi::Unpack(a, i, &s)) return false; *b = {reinterpret_cast<uint8_t*>(s.data), s.len, 8 * s.len, MPI_DOUBLE}; return true; }
    case napi_int32_array: { gcnapi::Span<int32_t> s; if (!gcnapi::Unpack(a, i, &s)) return false; *b = {reinterpret_cast<uint8_t*>(s.data), s.len, 4 * s.len, MPI_INT32_T}; return true; }
    case napi_uint32_array: { gcnapi::Span<uint32_t> s; if (!gcnapi::Unpack(a, i, &s)) return false; *b = {reinterpret_cast<uint8_t*>(s.data), s.len, 4 * s.len, MPI_UINT32_T}; return true; }
    case napi_uint8_array: { gcnapi::Span<uint8_t> s; if (!gcnapi::Unpack(a, i, &s)) return false; *b = {s.data, s.len, s.len, MPI_UINT8_T}; return true; }
    default: gcnapi::ThrowType(a.env, "gradcomp mpi: argument " + std::to_string(i) + " must be a typed array"); return false;
  }
}

// Argument i as an array of non-negative counts (one per rank).
bool Counts(const gcnapi::Args& a, size_t i, std::vector<uint64_t>* out) {
  bool is = false;
  uint32_t n = 0;
  if (napi_is_array(a.env, a.argv[i], &is) != napi_ok || !is || napi_get_array_length(a.env, a.argv[i], &n) != napi_ok ||
      static_cast<int>(n) != g->size) {
    gcnapi::ThrowType(a.env, "gradcomp mpi: counts must be an array with one entry per rank");
    return false;
  }
  for (uint32_t k = 0; k < n; ++k) {
    napi_value v;
    double d = -1;
    if (napi_get_element(a.env, a.argv[i], k, &v) != napi_ok || napi_get_value_double(a.env, v, &d) != napi_ok || !(d >= 0) ||
        d > 2147483647.0 || d != static_cast<double>(static_cast<uint64_t>(d))) {
      gcnapi::ThrowRange(a.env, "gradcomp mpi: counts must be non-negative int32 values");
      return false;
    }
    out->push_back(static_cast<uint64_t>(d));
  }
  return true;
}

std::vector<int> Ints(const std::vector<uint64_t>& v) { return std::vector<int>(v.begin(), v.end()); }
std::vector<int> Displs(const std::vector<uint64_t>& counts) {
  std::vector<int> d(counts.size(), 0);
  for (size_t i = 1; i < counts.size(); ++i) d[i] = d[i - 1] + static_cast<int>(counts[i - 1]);
  return d;
}
int Wait1(Engine& e, MPI_Request r) { std::vector<MPI_Request> v{r}; return e.wait(v); }

// init(timeoutMs) -> { rank, size, provided, version }
GC_JS(JS_init) {
  static std::mutex starting;  // two threads calling init() at once start one engine
  std::lock_guard<std::mutex> lock(starting);
  if (g != nullptr && !g->started) {
    gcnapi::Throw(a.env, gcnapi::ErrKind::kError, "ERR_GRADCOMP_BACKEND_UNAVAILABLE", "gradcomp mpi: MPI was finalized in this process (it cannot start again)");
    return nullptr;
  }
  Instance* inst = InstanceOf(a.env);
  if (inst == nullptr) return nullptr;
  if (g != nullptr && SharedUseRefused(a.env, inst)) return nullptr;
  if (g == nullptr) {
    double timeout_ms = 60000;
    if (!gcnapi::IsNullish(a.env, a.argv[0]) && (!gcnapi::F64(a, 0, &timeout_ms) || !(timeout_ms > 0))) return nullptr;
    inst->owner = true;
    g = new Engine();
    g->timeout_s = timeout_ms / 1000.0;
    std::promise<void> ready;
    std::future<void> f = ready.get_future();
    g->thread = std::thread(Loop, g, std::move(ready));
    f.wait();
    g->started = true;
  }
  napi_value o;
  napi_create_object(a.env, &o);
  gcnapi::SetNamed(a.env, o, "rank", gcnapi::Number(a.env, g->rank));
  gcnapi::SetNamed(a.env, o, "size", gcnapi::Number(a.env, g->size));
  gcnapi::SetNamed(a.env, o, "provided", gcnapi::Number(a.env, g->provided));
  gcnapi::SetNamed(a.env, o, "version", gcnapi::String(a.env, g->version));
  gcnapi::SetNamed(a.env, o, "timeoutMs", gcnapi::Number(a.env, g->timeout_s * 1000.0));
  // The hosts as MPI sees them (ranks sharing memory), and whether allgatherv goes node by node.
  gcnapi::SetNamed(a.env, o, "nodes", gcnapi::Number(a.env, static_cast<double>(g->members.size())));
  gcnapi::SetNamed(a.env, o, "perNode", gcnapi::Number(a.env, static_cast<double>(g->members.empty() ? 0 : g->members[0].size())));
  napi_value h;
  napi_get_boolean(a.env, g->hierarchical, &h);
  gcnapi::SetNamed(a.env, o, "hierarchical", h);
  napi_value owner;
  napi_get_boolean(a.env, inst->owner, &owner);
  gcnapi::SetNamed(a.env, o, "owner", owner);  // false on a thread that shares another thread's engine
  return o;
}

// finalize(): drains the queue, finalizes MPI on the comm thread, joins it. Only the thread that
// started the engine finalizes it; on a thread that shares it this does nothing.
GC_JS(JS_finalize) {
  Instance* inst = CurrentInstance(a.env);
  if (g != nullptr && g->started && inst != nullptr && inst->owner) {
    { std::lock_guard<std::mutex> lock(g->m); g->stop = true; }
    g->cv.notify_one();
    g->thread.join();
    g->started = false;
  }
  return nullptr;
}

// lend(on): the owner lets another of its threads use the engine (on) or takes it back (off).
GC_JS(JS_lend) {
  Instance* inst = CurrentInstance(a.env);
  GC_CHECK(inst != nullptr && inst->owner, "lend() is for the thread that started the engine");
  g_lent.store(gcnapi::Bool(a, 0));
  return nullptr;
}

// abort(code): ends every rank of the job (MPI_THREAD_MULTIPLE: callable beside the comm thread).
GC_JS(JS_abort) {
  double code = 1;
  gcnapi::F64(a, 0, &code);
  MPI_Abort(MPI_COMM_WORLD, code == 0 ? 1 : static_cast<int>(code));
  return nullptr;
}

// allreduce(buf, op 0 sum | 1 max, deterministic): in place. Deterministic: the ring (ring.cc).
GC_JS(JS_allreduce) {
  Buf b;
  if (!GetBuf(a, 0, &b)) return nullptr;
  GC_U64(1, op, 1);
  GC_CHECK(b.type == MPI_FLOAT || b.type == MPI_DOUBLE, "allreduce takes Float32Array or Float64Array");
  if (gcnapi::Bool(a, 2)) return Post(a, "allreduce", [b, op](Engine& e) { return ring_allreduce(e, b.data, b.count, b.type, static_cast<int>(op)); }, {0});
  return Post(a, "allreduce", [b, op](Engine& e) {
    MPI_Request r;
    const int rc = MPI_Iallreduce(MPI_IN_PLACE, b.data, static_cast<int>(b.count), b.type, op == 1 ? MPI_MAX : MPI_SUM, MPI_COMM_WORLD, &r);
    return rc != MPI_SUCCESS ? rc : Wait1(e, r);
  }, {0});
}

// allgatherCounts(n, out Int32Array(size))
GC_JS(JS_allgatherCounts) {
  GC_U64(0, n, 2147483647);
  GC_SPAN(int32_t, 1, out);
  GC_CHECK(static_cast<int>(out.len) == g->size, "allgatherCounts needs one slot per rank");
  const int mine = static_cast<int>(n);
  return Post(a, "allgather (counts)", [mine, out](Engine& e) {
    auto m = std::make_shared<int>(mine);
    MPI_Request r;
    const int rc = MPI_Iallgather(m.get(), 1, MPI_INT, out.data, 1, MPI_INT, MPI_COMM_WORLD, &r);
    return rc != MPI_SUCCESS ? rc : Wait1(e, r);
  }, {1});
}

// allgatherv(send, recv, counts[]): ring.cc's allgatherv, hierarchical across nodes (counts in elements).
GC_JS(JS_allgatherv) {
  Buf s, r;
  std::vector<uint64_t> counts;
  if (!GetBuf(a, 0, &s) || !GetBuf(a, 1, &r) || !Counts(a, 2, &counts)) return nullptr;
  const uint64_t esz = s.count ? s.bytes / s.count : (r.count ? r.bytes / r.count : 1);
  uint64_t total = 0;
  for (auto& c : counts) { c *= esz; total += c; }
  GC_CHECK(total == r.bytes && counts[g->rank] == s.bytes, "allgatherv counts disagree with the buffers");
  return Post(a, "allgatherv", [s, r, counts](Engine& e) { return allgatherv(e, s.data, s.bytes, r.data, counts); }, {0, 1});
}

// bcast(buf, root)
GC_JS(JS_bcast) {
  Buf b;
  if (!GetBuf(a, 0, &b)) return nullptr;
  GC_U64(1, root, static_cast<uint64_t>(g->size - 1));
  return Post(a, "broadcast", [b, root](Engine& e) {
    MPI_Request r;
    const int rc = MPI_Ibcast(b.data, static_cast<int>(b.bytes), MPI_BYTE, static_cast<int>(root), MPI_COMM_WORLD, &r);
    return rc != MPI_SUCCESS ? rc : Wait1(e, r);
  }, {0});
}

// gatherv(send, recv | null, counts[], root) / scatterv(send | null, recv, counts[], root): counts in elements
GC_JS(JS_gatherv) {
  Buf s, r;
  std::vector<uint64_t> counts;
  if (!GetBuf(a, 0, &s) || !GetBuf(a, 1, &r, true) || !Counts(a, 2, &counts)) return nullptr;
  GC_U64(3, root, static_cast<uint64_t>(g->size - 1));
  return Post(a, "gatherv", [s, r, counts, root](Engine& e) {
    std::vector<int> c = Ints(counts), d = Displs(counts);
    MPI_Request q;
    const int rc = MPI_Igatherv(s.data, static_cast<int>(s.count), s.type, r.data, c.data(), d.data(), s.type, static_cast<int>(root), MPI_COMM_WORLD, &q);
    return rc != MPI_SUCCESS ? rc : Wait1(e, q);
  }, {0, 1});
}
GC_JS(JS_scatterv) {
  Buf s, r;
  std::vector<uint64_t> counts;
  if (!GetBuf(a, 0, &s, true) || !GetBuf(a, 1, &r) || !Counts(a, 2, &counts)) return nullptr;
  GC_U64(3, root, static_cast<uint64_t>(g->size - 1));
  return Post(a, "scatterv", [s, r, counts, root](Engine& e) {
    std::vector<int> c = Ints(counts), d = Displs(counts);
    MPI_Request q;
    const int rc = MPI_Iscatterv(s.data, c.data(), d.data(), r.type, r.data, static_cast<int>(r.count), r.type, static_cast<int>(root), MPI_COMM_WORLD, &q);
    return rc != MPI_SUCCESS ? rc : Wait1(e, q);
  }, {0, 1});
}

GC_JS(JS_barrier) {
  return Post(a, "barrier", [](Engine& e) {
    MPI_Request r;
    const int rc = MPI_Ibarrier(MPI_COMM_WORLD, &r);
    return rc != MPI_SUCCESS ? rc : Wait1(e, r);
  }, {});
}

// send(buf, dest): copied and sent with MPI_Isend; resolves once posted.
GC_JS(JS_send) {
  Buf b;
  if (!GetBuf(a, 0, &b)) return nullptr;
  GC_U64(1, dest, static_cast<uint64_t>(g->size - 1));
  std::shared_ptr<uint8_t[]> copy(new uint8_t[b.bytes > 0 ? b.bytes : 1]);
  std::memcpy(copy.get(), b.data, b.bytes);
  const uint64_t bytes = b.bytes;
  return Post(a, "send", [copy, bytes, dest](Engine& e) {
    MPI_Request req;
    const int rc = MPI_Isend(copy.get(), static_cast<int>(bytes), MPI_BYTE, static_cast<int>(dest), kTagUser, MPI_COMM_WORLD, &req);
    if (rc == MPI_SUCCESS) e.sends.emplace_back(req, copy);
    return rc;
  }, {}, false);
}

// recv(buf, src): waits on the comm thread (with the deadline) for the matching send.
GC_JS(JS_recv) {
  Buf b;
  if (!GetBuf(a, 0, &b)) return nullptr;
  GC_U64(1, src, static_cast<uint64_t>(g->size - 1));
  return Post(a, "recv", [b, src](Engine& e) {
    e.current = "recv from rank " + std::to_string(src);
    MPI_Request r;
    const int rc = MPI_Irecv(b.data, static_cast<int>(b.bytes), MPI_BYTE, static_cast<int>(src), kTagUser, MPI_COMM_WORLD, &r);
    return rc != MPI_SUCCESS ? rc : Wait1(e, r);
  }, {0}, false);
}

napi_value Init(napi_env env, napi_value exports) {
  gcnapi::ExportCommon(env, exports);
  const gcnapi::Fn fns[] = {{"init", JS_init}, {"finalize", JS_finalize}, {"lend", JS_lend}, {"abort", JS_abort}, {"allreduce", JS_allreduce},
                            {"allgatherCounts", JS_allgatherCounts}, {"allgatherv", JS_allgatherv}, {"bcast", JS_bcast},
                            {"gatherv", JS_gatherv}, {"scatterv", JS_scatterv}, {"barrier", JS_barrier}, {"send", JS_send},
                            {"recv", JS_recv}};
  gcnapi::Export(env, exports, fns, sizeof fns / sizeof fns[0]);
  return exports;
}

}  // namespace
}  // namespace gradcomp_mpi

NAPI_MODULE(NODE_GYP_MODULE_NAME, gradcomp_mpi::Init)
