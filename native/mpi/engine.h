// The MPI addon's engine: one communication thread owns MPI (MPI_Init_thread on it, every call
// from it, in the order JS issued them: collectives issued from libuv pool threads arrive out of
// order and corrupt memory). Every wait is nonblocking with a deadline: a collective that makes
// no progress for the job's timeout asks the other ranks where they are, names the ones that
// never arrived, and ends the job with MPI_Abort instead of hanging forever.
#pragma once
#include <mpi.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace gradcomp_mpi {

constexpr int kTagUser = 0;     // send / recv
constexpr int kTagRing = 1;     // ring allreduce / allgatherv
constexpr int kTagAsk = 77;     // "which collective are you in?"
constexpr int kTagAnswer = 78;  // the answer: a collective sequence number

struct Engine;

// What a job returns: MPI_SUCCESS or an MPI error code.
using Job = std::function<int(Engine&)>;

struct Engine {
  std::thread thread;
  std::mutex m;
  std::condition_variable cv;
  std::deque<std::pair<Job, void*>> queue;
  bool stop = false;
  bool started = false;
  int rank = 0, size = 1, provided = 0;
  std::string version;
  double timeout_s = 60.0;
  // Collectives entered so far (comm thread only; read by the status answers).
  int64_t seq = 0;
  std::string current = "idle";
  // Sends in flight with the private copies they read (comm thread only).
  std::vector<std::pair<MPI_Request, std::shared_ptr<uint8_t[]>>> sends;
  // The hosts of the job (topology(), at start): ranks sharing memory form a node; members[k][l]
  // is the world rank of node k's l-th rank. hierarchical: more than one node, every node with the
  // same number (> 1) of ranks, and not switched off (GRADCOMP_MPI_HIERARCHICAL=0). It pays for
  // large gathers (fewer bytes on the host links) and costs for small ones (two phases, more
  // messages): used from hierarchical_min_bytes in all (8 MiB; GRADCOMP_MPI_HIERARCHICAL=1: always).
  MPI_Comm node = MPI_COMM_NULL, cross = MPI_COMM_NULL;
  int local = 0, node_index = 0;
  std::vector<std::vector<int>> members;
  bool hierarchical = false;
  uint64_t hierarchical_min_bytes = 8ULL << 20;

  // Finds the nodes and builds the node and cross-node communicators (collective over the job).
  void topology();

  // Waits for every request with the deadline; on timeout, diagnoses and aborts the job (never returns).
  int wait(std::vector<MPI_Request>& reqs);
  // Answers pending "where are you" questions from other ranks (called while waiting or idle).
  void answer();
  // Frees finished fire-and-forget sends.
  void reap();
  [[noreturn]] void timed_out();
};

// Ring algorithms (ring.cc). count: elements of `type` (MPI_FLOAT or MPI_DOUBLE for the reduce).
int ring_allreduce(Engine& e, void* buf, uint64_t count, MPI_Datatype type, int op_max);
// The allgatherv: the pipelined ring, or node by node where the job spans several nodes with the
// same number of ranks each and the gather is large (every payload crosses between two nodes once).
int allgatherv(Engine& e, const uint8_t* send, uint64_t send_bytes, uint8_t* recv, const std::vector<uint64_t>& bytes);
// A point-to-point exchange in pieces of at most 1 GiB (MPI counts are ints), waited with the deadline.
int sendrecv(Engine& e, const uint8_t* sbuf, uint64_t sbytes, int dest, uint8_t* rbuf, uint64_t rbytes, int src);

}  // namespace gradcomp_mpi
