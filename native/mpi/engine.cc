#include "engine.h"

#include <algorithm>
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

void Engine::topology() {
  hierarchical = false;
  members.assign(1, std::vector<int>());
  for (int r = 0; r < size; ++r) members[0].push_back(r);
  node_index = 0;
  local = rank;
  if (size == 1 || MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node) != MPI_SUCCESS) return;
  int leader = rank;
  MPI_Comm_rank(node, &local);
  // Every rank learns (its node's first world rank, its local index); nodes are numbered by their first rank.
  MPI_Bcast(&leader, 1, MPI_INT, 0, node);
  std::vector<int> pairs(2 * static_cast<size_t>(size));
  int mine[2] = {leader, local};
  if (MPI_Allgather(mine, 2, MPI_INT, pairs.data(), 2, MPI_INT, MPI_COMM_WORLD) != MPI_SUCCESS) return;
  std::map<int, int> index_of;
  for (int r = 0; r < size; ++r) index_of.emplace(pairs[2 * r], 0);
  int k = 0;
  for (auto& kv : index_of) kv.second = k++;
  members.assign(index_of.size(), std::vector<int>());
  for (int r = 0; r < size; ++r) {
    auto& m = members[index_of[pairs[2 * r]]];
    if (static_cast<int>(m.size()) <= pairs[2 * r + 1]) m.resize(pairs[2 * r + 1] + 1, -1);
    m[pairs[2 * r + 1]] = r;
  }
  node_index = index_of[leader];
  bool uniform = true;
  for (auto& m : members) uniform = uniform && m.size() == members[0].size() && std::find(m.begin(), m.end(), -1) == m.end();
  const char* env = std::getenv("GRADCOMP_MPI_HIERARCHICAL");
  const bool off = env != nullptr && std::strcmp(env, "0") == 0;
  if (env != nullptr && std::strcmp(env, "1") == 0) hierarchical_min_bytes = 0;
  // Every rank sees the same members and (mpirun passes one environment) the same switch: the same decision.
  if (members.size() < 2 || members[0].size() < 2 || !uniform || off) return;
  if (MPI_Comm_split(MPI_COMM_WORLD, local, node_index, &cross) != MPI_SUCCESS) return;
  MPI_Comm_set_errhandler(node, MPI_ERRORS_RETURN);
  MPI_Comm_set_errhandler(cross, MPI_ERRORS_RETURN);
  hierarchical = true;
}

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
    // Spin briefly (latency), then sleep in growing steps, 10 us doubling to 320 us: ranks may share
    // cores, and every wake-up of a waiting rank takes a core from the ranks still computing.
    if (++spins > 200) std::this_thread::sleep_for(std::chrono::microseconds(10 << std::min(5, (spins - 200) / 64)));
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
