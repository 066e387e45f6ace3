/**
 * The algorithms' one door to the Communicator: every byte an algorithm moves goes through here,
 * so traffic and time are counted in one place and the float reductions have one order.
 *
 * Byte accounting ("payload bytes"): a worker sends what it puts into a collective and receives
 * what comes out that it did not already have. An allreduce of B bytes counts B sent and B
 * received; an allgather counts this worker's payload sent and the others' payloads received;
 * a broadcast counts B sent at the root and B received elsewhere. Dense data-parallel SGD is then
 * 4d bytes sent per worker per step, the yardstick `gradcomp train` compares against. (A ring
 * allreduce physically moves about 2(n-1)/n of that in each direction; the ratio is the same.)
 *
 * Reductions: with `deterministic` (the default) a float sum is the communicators' ring allreduce
 * (reduce-scatter, then allgather), which adds the ranks' values in one fixed order per element
 * on every backend, so a job is bit-identical under `gradcomp run` and mpirun, at the bandwidth
 * of a ring (each rank sends and receives about 2B). Off, the MPI backend uses MPI_Allreduce,
 * whose order depends on the message size and the library.
 */
import { performance } from 'node:perf_hooks';
import { GradcompError } from '../native/errors';
import type { Communicator } from '../comm/types';
import type { Round, RoundResult, Session } from '../compress/types';
import { vecScale } from '../ops/kernels';

export interface TrafficStats {
  /** Payload bytes this worker sent / received (see the accounting rule above). */
  bytesSent: number;
  bytesReceived: number;
  /** Collective calls issued. */
  rounds: number;
  /** Wall time inside communication calls, ms. */
  commMs: number;
}

export class Exchange {
  readonly traffic: TrafficStats = { bytesSent: 0, bytesReceived: 0, rounds: 0, commMs: 0 };

  constructor(readonly comm: Communicator, readonly deterministic = true) {}

  /** A zeroed buffer for collectives from the communicator (shared memory on the local backend: its allreduce then reads the peers in place). */
  alloc(n: number): Float32Array {
    return typeof this.comm.alloc === 'function' && this.size > 1 ? this.comm.alloc(n) : new Float32Array(n);
  }

  get rank(): number { return this.comm.rank; }
  get size(): number { return this.comm.size; }

  /** Wall time inside collectives; overlapping ones (a pipelined step) count once. */
  readonly #clock = new BusyClock();

  async #timed<T>(fn: () => Promise<T>): Promise<T> {
    this.#clock.enter();
    try {
      return await fn();
    } finally {
      this.#clock.leave();
      this.traffic.commMs = this.#clock.total;
      this.traffic.rounds++;
    }
  }

  #count(sent: number, received: number): void {
    this.traffic.bytesSent += sent;
    this.traffic.bytesReceived += received;
  }

  /** In place: buf becomes the elementwise sum over workers (rank order when deterministic). */
  async sum(buf: Float32Array): Promise<Float32Array> {
    this.#count(buf.byteLength, buf.byteLength);
    if (this.size === 1) return buf;
    return this.#timed(() => this.comm.allreduce(buf, 'sum', { deterministic: this.deterministic }));
  }

  /** In place: buf becomes the elementwise mean over workers. */
  async average(buf: Float32Array): Promise<Float32Array> {
    await this.sum(buf);
    if (this.size > 1) vecScale(buf, 1 / this.size);
    return buf;
  }

  /** Fixed-size allgather of a small control message (a one-off check, not payload: not counted in the traffic). */
  async allgatherFixed<T extends Uint32Array | Float64Array>(mine: T): Promise<T> {
    if (this.size === 1) return mine;
    return this.comm.allgather(mine);
  }

  // Receive buffers reused across calls, in rotation: a pipelined step has at most two allgathers
  // in flight while a third's result is still being decoded.
  readonly #recv: Uint8Array[] = [new Uint8Array(0), new Uint8Array(0), new Uint8Array(0)];
  #next = 0;

  /**
   * Every worker's bytes, in rank order (lengths may differ). The parts are views of a receive
   * buffer reused in rotation: valid until the third allgather after this one.
   */
  async allgather(bytes: Uint8Array): Promise<Uint8Array[]> {
    if (this.size === 1) { this.#count(bytes.byteLength, 0); return [bytes]; }
    const slot = this.#next;
    this.#next = (slot + 1) % this.#recv.length;
    const into = this.#recv[slot];
    const { data, counts } = await this.#timed(() => this.comm.allgatherv(bytes, { into }));
    if (data.buffer !== into.buffer && data.byteLength > into.byteLength) this.#recv[slot] = new Uint8Array(Math.ceil(data.byteLength * 1.25));
    const parts: Uint8Array[] = [];
    let off = 0, others = 0;
    counts.forEach((c, r) => { parts.push(data.subarray(off, off + c)); off += c; if (r !== this.rank) others += c; });
    this.#count(bytes.byteLength, others);
    return parts;
  }

  /** Root's bytes on every rank; others pass anything (their data is not sent). */
  async broadcast(bytes: Uint8Array, root: number): Promise<Uint8Array> {
    const parts = await this.allgather(this.rank === root ? bytes : new Uint8Array(0));
    return parts[root];
  }

  /** Root gets every worker's bytes in rank order; the others get null. */
  async gather(bytes: Uint8Array, root: number): Promise<Uint8Array[] | null> {
    if (this.size === 1) { this.#count(bytes.byteLength, 0); return [bytes]; }
    const got = await this.#timed(() => this.comm.gatherv(bytes, root));
    if (got === null) { this.#count(bytes.byteLength, 0); return null; }
    const parts: Uint8Array[] = [];
    let off = 0, others = 0;
    got.counts.forEach((c, r) => { parts.push(got.data.subarray(off, off + c)); off += c; if (r !== this.rank) others += c; });
    this.#count(0, others);
    return parts;
  }

  /**
   * All-to-all of byte strings: parts[j] goes to rank j; returns what every rank sent to this
   * one, in rank order. Point-to-point (a length, then the bytes), so each worker receives only
   * its share, as in DeepSpeed's compressed allreduce.
   */
  async alltoall(parts: Uint8Array[]): Promise<Uint8Array[]> {
    if (parts.length !== this.size) throw new GradcompError('ERR_GRADCOMP_INTERNAL', `alltoall needs ${this.size} parts, got ${parts.length}`);
    if (this.size === 1) return [parts[0]];
    return this.#timed(async () => {
      const me = this.rank;
      for (let j = 0; j < this.size; j++) {
        if (j === me) continue;
        await this.comm.send(Uint32Array.of(parts[j].byteLength), j);
        if (parts[j].byteLength > 0) await this.comm.send(parts[j], j);
        this.#count(parts[j].byteLength, 0);
      }
      const out: Uint8Array[] = [];
      for (let j = 0; j < this.size; j++) {
        if (j === me) { out.push(parts[me]); continue; }
        const len = (await this.comm.recv(new Uint32Array(1), j))[0];
        out.push(len > 0 ? await this.comm.recv(new Uint8Array(len), j) : new Uint8Array(0));
        this.#count(0, len);
      }
      return out;
    });
  }

  /** Issues one round's collective (an allreduce round's buffer belongs to the session: it is summed in place). */
  issue(r: Round): Promise<RoundResult> {
    if (r.collective === 'allreduce') return this.sum(r.data as Float32Array);
    if (r.collective === 'allgather') return this.allgather(r.data as Uint8Array);
    const d = r.data;
    return this.broadcast(new Uint8Array(d.buffer, d.byteOffset, d.byteLength), r.root ?? 0);
  }

  /**
   * Runs a compressor session's rounds (its result() or factors then hold the average). `first`, when
   * given, is the first round already issued (so it could fly while the caller did other work);
   * `clock` times the decoding (receive).
   */
  async run(session: Session, clock?: BusyClock, first?: Promise<RoundResult>): Promise<void> {
    let pending = first;
    while (session.round !== null) {
      const got = await (pending ?? this.issue(session.round));
      pending = undefined;
      clock?.enter();
      try { session.receive(got); } finally { clock?.leave(); }
    }
  }
}

/**
 * Wall time during which at least one of possibly overlapping tasks ran (the union of their
 * intervals): compression of several units at once counts once.
 */
export class BusyClock {
  #depth = 0;
  #since = 0;
  total = 0;
  enter(): void { if (this.#depth++ === 0) this.#since = performance.now(); }
  leave(): void { if (--this.#depth === 0) this.total += performance.now() - this.#since; }
  /** Times fn (sync or async) as busy. */
  async time<T>(fn: () => Promise<T> | T): Promise<T> {
    this.enter();
    try { return await fn(); } finally { this.leave(); }
  }
}
