// Ring collectives over point-to-point messages: bandwidth-optimal (each rank sends and receives
// (n-1)/n of the buffer per phase, every link busy at once) and deterministic by construction.
// The allreduce is a reduce-scatter then an allgather over n segments (segment j: elements
// [floor(jN/n), floor((j+1)N/n))); segment j is summed ((x_j + x_{j+1}) + ...) + x_{j-1} over
// ranks mod n, the order the local backend uses too, so both give the same bits.
#include <algorithm>
#include <cstring>
#include <functional>

#include "engine.h"

namespace gradcomp_mpi {

namespace {
constexpr uint64_t kPiece = 1ULL << 30;  // bytes per MPI message (counts are ints)
constexpr uint64_t kChunk = 1ULL << 20;  // the pipelined ring's unit

template <typename T>
void fold(T* acc, const T* in, uint64_t n, int op_max) {
  if (!op_max) {
    for (uint64_t i = 0; i < n; ++i) acc[i] = in[i] + acc[i];  // the partial arriving, then this rank's value
  } else {
    for (uint64_t i = 0; i < n; ++i) acc[i] = (in[i] > acc[i] || acc[i] != acc[i]) ? in[i] : acc[i];
  }
}

// Posts a nonblocking send or receive of `len` bytes in pieces of at most 1 GiB (MPI counts are
// ints). Nothing for 0 bytes, unless `empty` asks for one empty message (both sides must agree).
int post(bool send, const uint8_t* p, uint64_t len, int peer, MPI_Comm comm, std::vector<MPI_Request>& reqs, bool empty = false) {
  for (uint64_t off = 0; off < len || (empty && off == 0); off += kPiece) {
    const int m = static_cast<int>(std::min(kPiece, len - off));
    uint8_t* q8 = const_cast<uint8_t*>(p) + off;  // MPI_Isend takes a const buffer; MPI_Irecv writes this one
    MPI_Request q;
    const int rc = send ? MPI_Isend(q8, m, MPI_BYTE, peer, kTagRing, comm, &q) : MPI_Irecv(q8, m, MPI_BYTE, peer, kTagRing, comm, &q);
    if (rc != MPI_SUCCESS) return rc;
    reqs.push_back(q);
    if (len == 0) break;
  }
  return MPI_SUCCESS;
}
}  // namespace

int sendrecv(Engine& e, const uint8_t* sbuf, uint64_t sbytes, int dest, uint8_t* rbuf, uint64_t rbytes, int src) {
  std::vector<MPI_Request> reqs;
  int rc = post(true, sbuf, sbytes, dest, MPI_COMM_WORLD, reqs, true);
  if (rc == MPI_SUCCESS) rc = post(false, rbuf, rbytes, src, MPI_COMM_WORLD, reqs, true);
  return rc != MPI_SUCCESS ? rc : e.wait(reqs);
}

int ring_allreduce(Engine& e, void* buf, uint64_t count, MPI_Datatype type, int op_max) {
  const int n = e.size, r = e.rank;
  if (n == 1 || count == 0) return MPI_SUCCESS;
  const uint64_t esz = type == MPI_DOUBLE ? 8 : 4;
  auto start = [&](int j) { return count * static_cast<uint64_t>(j) / static_cast<uint64_t>(n); };
  auto len = [&](int j) { return start(j + 1) - start(j); };
  uint64_t max_seg = 0;
  for (int j = 0; j < n; ++j) max_seg = std::max(max_seg, len(j));
  std::unique_ptr<uint8_t[]> tmp(new uint8_t[max_seg * esz + 1]);
  uint8_t* b = static_cast<uint8_t*>(buf);
  const int right = (r + 1) % n, left = (r + n - 1) % n;
  for (int s = 0; s < n - 1; ++s) {
    const int send = ((r - s) % n + n) % n, recv = ((r - s - 1) % n + n) % n;
    const int rc = sendrecv(e, b + start(send) * esz, len(send) * esz, right, tmp.get(), len(recv) * esz, left);
    if (rc != MPI_SUCCESS) return rc;
    if (esz == 8) fold(reinterpret_cast<double*>(b) + start(recv), reinterpret_cast<const double*>(tmp.get()), len(recv), op_max);
    else fold(reinterpret_cast<float*>(b) + start(recv), reinterpret_cast<const float*>(tmp.get()), len(recv), op_max);
  }
  for (int s = 0; s < n - 1; ++s) {
    const int send = ((r + 1 - s) % n + n) % n, recv = ((r - s) % n + n) % n;
    const int rc = sendrecv(e, b + start(send) * esz, len(send) * esz, right, b + start(recv) * esz, len(recv) * esz, left);
    if (rc != MPI_SUCCESS) return rc;
  }
  return MPI_SUCCESS;
}

// Pipelined: every block travels n - 1 hops to the right in chunks of kChunk bytes, and a rank
// forwards each chunk as soon as it has it (no hop waits for a whole block), so the links stay
// busy from the first chunk to the last. Member r receives, in order, blocks r-1, r-2, ..., r-n+1
// (mod n) from its left and forwards all of them but the last (its right neighbour's own block).
// Block j lies at recv + at[j] (bytes[j] long); member r's own block is already there. on_recv
// (if set) is called with each chunk as it arrives.
int ring_blocks(Engine& e, MPI_Comm comm, int r, int n, uint8_t* recv, const std::vector<uint64_t>& at, const std::vector<uint64_t>& bytes,
                const std::function<int(uint64_t at, uint64_t len)>& on_recv) {
  if (n == 1) return MPI_SUCCESS;
  const int right = (r + 1) % n, left = (r + n - 1) % n;
  struct Chunk { int block; uint64_t at, len; };
  auto chunks_of = [&](int blk, std::vector<Chunk>& out) {
    for (uint64_t a = 0; a < bytes[blk]; a += kChunk) out.push_back({blk, at[blk] + a, std::min(kChunk, bytes[blk] - a)});
  };
  std::vector<Chunk> in;
  for (int s = 1; s < n; ++s) chunks_of(((r - s) % n + n) % n, in);
  std::vector<MPI_Request> rreq(in.size()), sreq;
  for (size_t c = 0; c < in.size(); ++c) {
    const int rc = MPI_Irecv(recv + in[c].at, static_cast<int>(in[c].len), MPI_BYTE, left, kTagRing, comm, &rreq[c]);
    if (rc != MPI_SUCCESS) return rc;
  }
  auto forward = [&](const Chunk& ch) {
    MPI_Request q;
    const int rc = MPI_Isend(recv + ch.at, static_cast<int>(ch.len), MPI_BYTE, right, kTagRing, comm, &q);
    if (rc == MPI_SUCCESS) sreq.push_back(q);
    return rc;
  };
  std::vector<Chunk> mine;
  chunks_of(r, mine);
  for (const Chunk& ch : mine) {
    const int rc = forward(ch);
    if (rc != MPI_SUCCESS) return rc;
  }
  for (size_t c = 0; c < in.size(); ++c) {
    std::vector<MPI_Request> one{rreq[c]};
    int rc = e.wait(one);
    if (rc != MPI_SUCCESS) return rc;
    if (in[c].block != right && (rc = forward(in[c])) != MPI_SUCCESS) return rc;
    if (on_recv && (rc = on_recv(in[c].at, in[c].len)) != MPI_SUCCESS) return rc;
  }
  return e.wait(sreq);
}

namespace {
// Byte offsets of every rank's block in recv (n + 1 of them); copies this rank's own block into
// place. False when send's size disagrees with its count.
bool place_own(const Engine& e, const uint8_t* send, uint64_t send_bytes, uint8_t* recv, const std::vector<uint64_t>& bytes, std::vector<uint64_t>* off) {
  off->assign(e.size + 1, 0);
  for (int j = 0; j < e.size; ++j) (*off)[j + 1] = (*off)[j] + bytes[j];
  if (send_bytes != bytes[e.rank]) return false;
  if (send_bytes > 0 && recv + (*off)[e.rank] != send) std::memcpy(recv + (*off)[e.rank], send, send_bytes);
  return true;
}
}  // namespace

// Two levels, so that each payload crosses between two nodes once (a ring over all ranks sends
// n - 1 payloads over each node boundary: with 2 ranks per host, 1.5x the bytes a host link
// must carry). The ranks with the same local index l on every node (the cross communicator,
// ordered by node) ring-allgather their own payloads, and local rank l hands its node peers each
// chunk of that ring as it arrives; the peers' own payloads are exchanged at the start. Every
// rank of a node is at the same place in its ring, so a peer knows the order in which chunks come
// from l (own payload, then the ring's blocks in arrival order, 1 MiB chunks) and posts its
// receives in that order: sends and receives between two peers match in order. The bytes are
// those of any allgatherv: only the routes differ. Small gathers take the ring (Engine's
// hierarchical_min_bytes): on 2 hosts x 2 ranks at 1 Gbit/s, 4 x 12.8 MB took 226 ms node by node
// against 328 ms by the ring, but top-k's 4 x 0.5 MB steps were slower node by node.
int allgatherv(Engine& e, const uint8_t* send, uint64_t send_bytes, uint8_t* recv, const std::vector<uint64_t>& bytes) {
  std::vector<uint64_t> off;
  if (!place_own(e, send, send_bytes, recv, bytes, &off)) return MPI_ERR_COUNT;
  if (!e.hierarchical || off[e.size] < e.hierarchical_min_bytes) {
    off.pop_back();
    return ring_blocks(e, MPI_COMM_WORLD, e.rank, e.size, recv, off, bytes, nullptr);
  }
  const int me = e.node_index, l = e.local, N = static_cast<int>(e.members.size()), L = static_cast<int>(e.members[0].size());
  auto who = [&](int k, int p) { return e.members[k][p]; };
  std::vector<MPI_Request> local_reqs;
  for (int p = 0; p < L; ++p) {
    if (p == l) continue;
    // From peer p: its own payload, then the chunks of its ring (blocks me-1, me-2, ... of index p).
    int rc = post(false, recv + off[who(me, p)], bytes[who(me, p)], p, e.node, local_reqs);
    for (int s = 1; s < N && rc == MPI_SUCCESS; ++s) {
      const int g = who(((me - s) % N + N) % N, p);
      for (uint64_t a = 0; a < bytes[g] && rc == MPI_SUCCESS; a += kChunk) rc = post(false, recv + off[g] + a, std::min(kChunk, bytes[g] - a), p, e.node, local_reqs);
    }
    if (rc == MPI_SUCCESS) rc = post(true, recv + off[who(me, l)], bytes[who(me, l)], p, e.node, local_reqs);
    if (rc != MPI_SUCCESS) return rc;
  }
  std::vector<uint64_t> at(N), len(N);
  for (int k = 0; k < N; ++k) { at[k] = off[who(k, l)]; len[k] = bytes[who(k, l)]; }
  const int rc = ring_blocks(e, e.cross, me, N, recv, at, len, [&](uint64_t a, uint64_t m) {
    for (int p = 0; p < L; ++p) {
      if (p == l) continue;
      const int r2 = post(true, recv + a, m, p, e.node, local_reqs);
      if (r2 != MPI_SUCCESS) return r2;
    }
    return MPI_SUCCESS;
  });
  if (rc != MPI_SUCCESS) return rc;
  return e.wait(local_reqs);
}

}  // namespace gradcomp_mpi
