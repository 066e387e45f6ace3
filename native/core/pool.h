// The one internal thread pool. parallel_for splits [0, n_tasks) across the workers and the
// calling thread; any number of threads may call it at once (each call is its own batch and
// the caller always works on its own batch, so nested or concurrent calls cannot deadlock).
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>

namespace gradcomp {

class ThreadPool {
 public:
  // The process-wide pool, created on first use with hardware_concurrency() threads in all
  // (the caller counts as one).
  static ThreadPool& instance();
  // Threads used by one parallel_for, caller included; clamped to [1, 256].
  void set_concurrency(unsigned n);
  unsigned concurrency() const;
  // Runs fn(task) for every task in [0, n_tasks); returns when all are done.
  void parallel_for(size_t n_tasks, const std::function<void(size_t)>& fn);

 private:
  ThreadPool();
  struct Impl;
  Impl* impl_;
};

// Splits n items into chunks of about `grain` items for parallel_for; at least one chunk.
inline size_t chunk_count(uint64_t n, uint64_t grain) {
  uint64_t c = (n + grain - 1) / grain;
  return c == 0 ? 1 : static_cast<size_t>(c);
}

}  // namespace gradcomp
