#include "pool.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace gradcomp {

namespace {
struct Batch {
  const std::function<void(size_t)>* fn;
  size_t n_tasks;
  std::atomic<size_t> next{0};
  std::atomic<size_t> done{0};
  unsigned max_helpers;
  std::atomic<unsigned> helpers{0};
  std::mutex m;
  std::condition_variable cv;

  // Runs tasks until none are left; returns how many this thread ran.
  size_t drain() {
    size_t ran = 0;
    for (;;) {
      size_t t = next.fetch_add(1, std::memory_order_relaxed);
      if (t >= n_tasks) break;
      (*fn)(t);
      ++ran;
    }
    return ran;
  }
  void finish(size_t ran) {
    if (ran == 0) return;
    if (done.fetch_add(ran, std::memory_order_acq_rel) + ran == n_tasks) {
      std::lock_guard<std::mutex> lock(m);
      cv.notify_all();
    }
  }
};
}  // namespace

struct ThreadPool::Impl {
  std::mutex m;
  std::condition_variable cv;
  std::deque<std::shared_ptr<Batch>> queue;
  std::vector<std::thread> workers;
  std::atomic<unsigned> concurrency{1};

  void worker_loop() {
    for (;;) {
      std::shared_ptr<Batch> b;
      {
        std::unique_lock<std::mutex> lock(m);
        cv.wait(lock, [&] { return !queue.empty(); });
        b = queue.front();
        // A batch leaves the queue once it has all the helpers it asked for.
        if (b->helpers.fetch_add(1) + 1 >= b->max_helpers) queue.pop_front();
      }
      b->finish(b->drain());
    }
  }
};

ThreadPool::ThreadPool() : impl_(new Impl) {
  unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  impl_->concurrency = hw;
  // Workers live for the life of the process (detached): the pool holds no JS state, so it is
  // shared by every Node environment (main thread and worker_threads) that loads the addon.
  for (unsigned i = 1; i < hw; ++i) {
    std::thread t([this] { impl_->worker_loop(); });
    t.detach();
  }
  impl_->workers.clear();
}

ThreadPool& ThreadPool::instance() {
  static ThreadPool* pool = new ThreadPool();  // never destroyed: detached workers use it
  return *pool;
}

void ThreadPool::set_concurrency(unsigned n) {
  impl_->concurrency = std::min(256u, std::max(1u, n));
}
unsigned ThreadPool::concurrency() const { return impl_->concurrency; }

void ThreadPool::parallel_for(size_t n_tasks, const std::function<void(size_t)>& fn) {
  if (n_tasks == 0) return;
  unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  unsigned threads = std::min<unsigned>(impl_->concurrency, hw);
  if (n_tasks == 1 || threads <= 1) {
    for (size_t t = 0; t < n_tasks; ++t) fn(t);
    return;
  }
  auto b = std::make_shared<Batch>();
  b->fn = &fn;
  b->n_tasks = n_tasks;
  b->max_helpers = static_cast<unsigned>(std::min<size_t>(threads - 1, n_tasks - 1));
  {
    std::lock_guard<std::mutex> lock(impl_->m);
    impl_->queue.push_back(b);
  }
  if (b->max_helpers == 1) impl_->cv.notify_one(); else impl_->cv.notify_all();
  size_t ran = b->drain();
  // Remove the batch if no helper took it (all tasks were run here).
  {
    std::lock_guard<std::mutex> lock(impl_->m);
    auto& q = impl_->queue;
    for (auto it = q.begin(); it != q.end(); ++it) {
      if (it->get() == b.get()) { q.erase(it); break; }
    }
  }
  b->finish(ran);
  std::unique_lock<std::mutex> lock(b->m);
  b->cv.wait(lock, [&] { return b->done.load(std::memory_order_acquire) == n_tasks; });
}

}  // namespace gradcomp
