#include "engine.h"

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <cstdio>
#include <map>
#include <sstream>

namespace gradcomp_mpi {

namespace {
using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }
}  // namespace

void Engine::reap() {
  for (size_t i = 0; i < sends.size();) {
    int done = 0;
    MPI_Test(&sends[i].first, &done, MPI_STATUS_IGNORE);
    if (done) sends.erase(sends.begin() + static_cast<long>(i)); else ++i;
  }
}

void Engine::answer() {
  for (;;) {
    int flag = 0;
    MPI_Status st;
    if (MPI_Iprobe(MPI_ANY_SOURCE, kTagAsk, MPI_COMM_WORLD, &flag, &st) != MPI_SUCCESS || !flag) return;
    int64_t theirs = 0;
    MPI_Recv(&theirs, 1, MPI_INT64_T, st.MPI_SOURCE, kTagAsk, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    std::shared_ptr<uint8_t[]> copy(new uint8_t[8]);
    std::memcpy(copy.get(), &seq, 8);
    MPI_Request r;
    if (MPI_Isend(copy.get(), 8, MPI_BYTE, st.MPI_SOURCE, kTagAnswer, MPI_COMM_WORLD, &r) == MPI_SUCCESS) sends.emplace_back(r, copy);
  }
}

int Engine::wait(std::vector<MPI_Request>& reqs) {
  const auto t0 = Clock::now();
  int spins = 0;
  for (;;) {
    int flag = 0;
    const int rc = MPI_Testall(static_cast<int>(reqs.size()), reqs.data(), &flag, MPI_STATUSES_IGNORE);
    if (rc != MPI_SUCCESS) return rc;
    if (flag) return MPI_SUCCESS;
    // Spin briefly (latency), then back off (four ranks may share two cores).
    if (++spins > 2000) std::this_thread::sleep_for(std::chrono::microseconds(spins > 20000 ? 200 : 20));
    if ((spins & 255) == 0) {
      answer();
      if (since(t0) > timeout_s) timed_out();
    }
  }
}

void Engine::timed_out() {
  const int64_t mine = seq;
  std::vector<std::shared_ptr<uint8_t[]>> keep;
  for (int r = 0; r < size; ++r) {
    if (r == rank) continue;
    std::shared_ptr<uint8_t[]> copy(new uint8_t[8]);
    std::memcpy(copy.get(), &mine, 8);
    MPI_Request req;
    if (MPI_Isend(copy.get(), 8, MPI_BYTE, r, kTagAsk, MPI_COMM_WORLD, &req) == MPI_SUCCESS) sends.emplace_back(req, copy);
  }
  std::map<int, int64_t> where;
  const auto t0 = Clock::now();
  while (static_cast<int>(where.size()) < size - 1 && since(t0) < 3.0) {
    answer();
    int flag = 0;
    MPI_Status st;
    if (MPI_Iprobe(MPI_ANY_SOURCE, kTagAnswer, MPI_COMM_WORLD, &flag, &st) == MPI_SUCCESS && flag) {
      int64_t s = 0;
      MPI_Recv(&s, 8, MPI_BYTE, st.MPI_SOURCE, kTagAnswer, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      where[st.MPI_SOURCE] = s;
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  std::ostringstream late;
  for (int r = 0; r < size; ++r) {
    if (r == rank) continue;
    auto it = where.find(r);
    if (it == where.end()) late << (late.tellp() > 0 ? "; " : "") << "rank " << r << " does not answer";
    else if (it->second < mine) late << (late.tellp() > 0 ? "; " : "") << "rank " << r << " stopped at collective #" << it->second;
  }
  std::fprintf(stderr, "gradcomp (mpi): rank %d: no progress for %.0f s in %s (collective #%lld): %s; ending the job (MPI_Abort)\n",
               rank, timeout_s, current.c_str(), static_cast<long long>(mine),
               late.tellp() > 0 ? late.str().c_str() : "every rank is in a collective (mismatched collectives or a network stall)");
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, 3);
  std::abort();
}

}  // namespace gradcomp_mpi
