// The Open MPI communicator addon. One communication thread per process owns MPI: it calls
// MPI_Init_thread itself and runs every operation from a FIFO, in the order JS issued them, so
// every rank enters collectives in the same order (collectives issued from libuv pool threads
// arrive out of order and corrupt memory: specs/distributed.md §1). Completions come back through
// one thread-safe function that settles the operation's Promise. Every pending operation holds
// references to its typed arrays. Point-to-point sends are MPI_Isend from a private copy, so a
// ring of sends followed by receives cannot deadlock the single communication thread.
#include <mpi.h>
#include <napi.h>

#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace gradcomp_mpi {

struct Pending;
using Job = std::function<int()>;  // runs on the comm thread; returns an MPI error code

struct Engine {
  std::thread thread;
  std::mutex m;
  std::condition_variable cv;
  std::deque<std::pair<Job, Pending*>> queue;
  bool stop = false;
  bool started = false;
  int rank = 0, size = 1, provided = 0;
  std::string version;
  Napi::ThreadSafeFunction tsfn;
  int in_flight = 0;  // main thread only
  std::vector<std::pair<MPI_Request, std::shared_ptr<uint8_t[]>>> sends;  // comm thread only: sends in flight and their buffers
};
Engine* g_engine = nullptr;

struct Pending {
  Napi::Promise::Deferred deferred;
  std::vector<Napi::ObjectReference> refs;
  int code = MPI_SUCCESS;
  explicit Pending(Napi::Env env) : deferred(Napi::Promise::Deferred::New(env)) {}
};

void ReapSends(Engine* e) {
  for (size_t i = 0; i < e->sends.size();) {
    int done = 0;
    MPI_Test(&e->sends[i].first, &done, MPI_STATUS_IGNORE);
    if (done) { e->sends.erase(e->sends.begin() + static_cast<long>(i)); } else { ++i; }
  }
}

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
  ready.set_value();
  for (;;) {
    std::pair<Job, Pending*> item;
    {
      std::unique_lock<std::mutex> lock(e->m);
      e->cv.wait(lock, [&] { return e->stop || !e->queue.empty(); });
      if (e->queue.empty() && e->stop) break;
      item = std::move(e->queue.front());
      e->queue.pop_front();
    }
    ReapSends(e);
    int code = item.first();
    item.second->code = code;
    e->tsfn.NonBlockingCall(item.second, [](Napi::Env env, Napi::Function, Pending* p) {
      if (p->code == MPI_SUCCESS) {
        p->deferred.Resolve(env.Undefined());
      } else {
        char msg[MPI_MAX_ERROR_STRING];
        int len = 0;
        MPI_Error_string(p->code, msg, &len);
        Napi::Error err = Napi::Error::New(env, std::string("MPI error: ") + msg);
        err.Set("code", Napi::String::New(env, "ERR_GRADCOMP_MPI"));
        p->deferred.Reject(err.Value());
      }
      if (--g_engine->in_flight == 0) g_engine->tsfn.Unref(env);
      delete p;
    });
  }
  for (auto& s : e->sends) MPI_Wait(&s.first, MPI_STATUS_IGNORE);
  e->sends.clear();
  MPI_Finalize();
}

Napi::Value Post(const Napi::CallbackInfo& info, Job job, std::initializer_list<size_t> keep) {
  Napi::Env env = info.Env();
  if (g_engine == nullptr || !g_engine->started) {
    Napi::Error::New(env, "gradcomp mpi: not initialized").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  auto* p = new Pending(env);
  for (size_t i : keep)
    if (info[i].IsObject()) p->refs.push_back(Napi::Persistent(info[i].As<Napi::Object>()));
  if (g_engine->in_flight++ == 0) g_engine->tsfn.Ref(env);
  Napi::Promise promise = p->deferred.Promise();
  {
    std::lock_guard<std::mutex> lock(g_engine->m);
    g_engine->queue.emplace_back(std::move(job), p);
  }
  g_engine->cv.notify_one();
  return promise;
}

struct Buf {
  void* data = nullptr;
  size_t count = 0;
  MPI_Datatype type = MPI_BYTE;
  bool ok = false;
};

Buf Unpack(const Napi::Value& v) {
  Buf b;
  if (!v.IsTypedArray()) return b;
  auto ta = v.As<Napi::TypedArray>();
  b.data = static_cast<uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
  b.count = ta.ElementLength();
  switch (ta.TypedArrayType()) {
    case napi_float32_array: b.type = MPI_FLOAT; break;
    case napi_float64_array: b.type = MPI_DOUBLE; break;
    case napi_int32_array: b.type = MPI_INT32_T; break;
    case napi_uint32_array: b.type = MPI_UINT32_T; break;
    case napi_uint8_array: b.type = MPI_UINT8_T; break;
    default: return b;
  }
  b.ok = true;
  return b;
}

#define BUF(i, name)                                                                          \
  Buf name = Unpack(info[i]);                                                                 \
  if (!name.ok) {                                                                             \
    Napi::TypeError::New(env, "gradcomp mpi: argument " #i " must be a typed array").ThrowAsJavaScriptException(); \
    return env.Undefined();                                                                   \
  }

std::vector<int> Ints(const Napi::Value& v) {
  std::vector<int> out;
  if (!v.IsArray()) return out;
  auto a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); ++i) out.push_back(a.Get(i).As<Napi::Number>().Int32Value());
  return out;
}
std::vector<int> Displs(const std::vector<int>& counts) {
  std::vector<int> d(counts.size(), 0);
  for (size_t i = 1; i < counts.size(); ++i) d[i] = d[i - 1] + counts[i - 1];
  return d;
}

// init() -> { rank, size, provided, version }
Napi::Value JS_init(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (g_engine != nullptr) {
    Napi::Object r = Napi::Object::New(env);
    r.Set("rank", g_engine->rank);
    r.Set("size", g_engine->size);
    r.Set("provided", g_engine->provided);
    r.Set("version", g_engine->version);
    return r;
  }
  g_engine = new Engine();
  g_engine->tsfn = Napi::ThreadSafeFunction::New(env, Napi::Function::New(env, [](const Napi::CallbackInfo&) {}), "gradcomp-mpi", 0, 1);
  g_engine->tsfn.Unref(env);
  std::promise<void> ready;
  std::future<void> f = ready.get_future();
  g_engine->thread = std::thread(Loop, g_engine, std::move(ready));
  f.wait();
  g_engine->started = true;
  return JS_init(info);
}

// finalize(): drains the queue, finalizes MPI on the comm thread, joins it.
Napi::Value JS_finalize(const Napi::CallbackInfo& info) {
  if (g_engine != nullptr && g_engine->started) {
    {
      std::lock_guard<std::mutex> lock(g_engine->m);
      g_engine->stop = true;
    }
    g_engine->cv.notify_one();
    g_engine->thread.join();
    g_engine->started = false;
    g_engine->tsfn.Release();
  }
  return info.Env().Undefined();
}

// abort(code): ends every rank of the job (MPI_THREAD_MULTIPLE: callable beside the comm thread).
Napi::Value JS_abort(const Napi::CallbackInfo& info) {
  int code = info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : 1;
  MPI_Abort(MPI_COMM_WORLD, code == 0 ? 1 : code);
  return info.Env().Undefined();
}

// allreduce(buf, op 0 sum | 1 max): in place.
Napi::Value JS_allreduce(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  BUF(0, b);
  MPI_Op op = info[1].As<Napi::Number>().Int32Value() == 1 ? MPI_MAX : MPI_SUM;
  return Post(info, [b, op] { return MPI_Allreduce(MPI_IN_PLACE, b.data, static_cast<int>(b.count), b.type, op, MPI_COMM_WORLD); }, {0});
}

// allgatherCounts(n, out Int32Array(size))
Napi::Value JS_allgatherCounts(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  BUF(1, out);
  int n = info[0].As<Napi::Number>().Int32Value();
  return Post(info, [n, out] { int mine = n; return MPI_Allgather(&mine, 1, MPI_INT, out.data, 1, MPI_INT, MPI_COMM_WORLD); }, {1});
}

// allgatherv(send, recv, counts[])
Napi::Value JS_allgatherv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  BUF(0, s);
  BUF(1, r);
  std::vector<int> counts = Ints(info[2]);
  return Post(info, [s, r, counts] {
    std::vector<int> displs = Displs(counts);
    return MPI_Allgatherv(s.data, static_cast<int>(s.count), s.type, r.data, counts.data(), displs.data(), r.type, MPI_COMM_WORLD);
  }, {0, 1});
}

// bcast(buf, root)
Napi::Value JS_bcast(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  BUF(0, b);
  int root = info[1].As<Napi::Number>().Int32Value();
  return Post(info, [b, root] { return MPI_Bcast(b.data, static_cast<int>(b.count), b.type, root, MPI_COMM_WORLD); }, {0});
}

// gatherv(send, recv | null, counts[], root)
Napi::Value JS_gatherv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  BUF(0, s);
  Buf r = Unpack(info[1]);
  std::vector<int> counts = Ints(info[2]);
  int root = info[3].As<Napi::Number>().Int32Value();
  return Post(info, [s, r, counts, root] {
    std::vector<int> displs = Displs(counts);
    return MPI_Gatherv(s.data, static_cast<int>(s.count), s.type, r.data, counts.data(), displs.data(), s.type, root, MPI_COMM_WORLD);
  }, {0, 1});
}

// scatterv(send | null, recv, counts[], root)
Napi::Value JS_scatterv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Buf s = Unpack(info[0]);
  BUF(1, r);
  std::vector<int> counts = Ints(info[2]);
  int root = info[3].As<Napi::Number>().Int32Value();
  return Post(info, [s, r, counts, root] {
    std::vector<int> displs = Displs(counts);
    return MPI_Scatterv(s.data, counts.data(), displs.data(), r.type, r.data, static_cast<int>(r.count), r.type, root, MPI_COMM_WORLD);
  }, {0, 1});
}

Napi::Value JS_barrier(const Napi::CallbackInfo& info) {
  return Post(info, [] { return MPI_Barrier(MPI_COMM_WORLD); }, {});
}

// send(buf, dest): copied and sent with MPI_Isend; resolves once posted.
Napi::Value JS_send(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  BUF(0, b);
  int dest = info[1].As<Napi::Number>().Int32Value();
  int bytes = 0;
  MPI_Type_size(b.type, &bytes);
  const size_t nbytes = b.count * static_cast<size_t>(bytes);
  std::shared_ptr<uint8_t[]> copy(new uint8_t[nbytes > 0 ? nbytes : 1]);
  std::memcpy(copy.get(), b.data, nbytes);
  return Post(info, [copy, nbytes, dest] {
    MPI_Request req;
    int rc = MPI_Isend(copy.get(), static_cast<int>(nbytes), MPI_BYTE, dest, 0, MPI_COMM_WORLD, &req);
    // The copy stays alive beside its request until the send completes (ReapSends / finalize).
    if (rc == MPI_SUCCESS) g_engine->sends.emplace_back(req, copy);
    return rc;
  }, {});
}

// recv(buf, src): blocking on the comm thread (the matching send is already posted).
Napi::Value JS_recv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  BUF(0, b);
  int src = info[1].As<Napi::Number>().Int32Value();
  int bytes = 0;
  MPI_Type_size(b.type, &bytes);
  const int nbytes = static_cast<int>(b.count) * bytes;
  return Post(info, [b, src, nbytes] { return MPI_Recv(b.data, nbytes, MPI_BYTE, src, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE); }, {0});
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("init", Napi::Function::New(env, JS_init));
  exports.Set("finalize", Napi::Function::New(env, JS_finalize));
  exports.Set("abort", Napi::Function::New(env, JS_abort));
  exports.Set("allreduce", Napi::Function::New(env, JS_allreduce));
  exports.Set("allgatherCounts", Napi::Function::New(env, JS_allgatherCounts));
  exports.Set("allgatherv", Napi::Function::New(env, JS_allgatherv));
  exports.Set("bcast", Napi::Function::New(env, JS_bcast));
  exports.Set("gatherv", Napi::Function::New(env, JS_gatherv));
  exports.Set("scatterv", Napi::Function::New(env, JS_scatterv));
  exports.Set("barrier", Napi::Function::New(env, JS_barrier));
  exports.Set("send", Napi::Function::New(env, JS_send));
  exports.Set("recv", Napi::Function::New(env, JS_recv));
  exports.Set("abi", Napi::Number::New(env, 1));
  return exports;
}

}  // namespace gradcomp_mpi

namespace {
Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return gradcomp_mpi::Init(env, exports); }
}  // namespace

NODE_API_MODULE(gradcomp_mpi, InitModule)
