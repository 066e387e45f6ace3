/**
 * The `mpi` backend: Open MPI through the optional native/mpi addon, for jobs launched by
 * mpirun (one process per rank, across machines with a hostfile or under Slurm). Same semantics
 * as the local backend. A clean exit finalizes MPI; a failing one calls MPI_Abort, which takes
 * the whole job down instead of leaving the other ranks waiting in a collective.
 */
import { checkOptions, GradcompError, typeError } from '../native/errors';
import type { MpiBinding } from '../native/binding';
import { dtypeOf } from '../tensor/tensor';
import { dtypeCode, numericArg } from './args';
import { DerivedCollectives } from './base';
import type { AllgathervOptions, AllreduceOptions, Communicator, Numeric, ReduceOp } from './types';
import { receiveBuffer } from './local';
import { pin } from '../backend';

/** Buffers at least this large are reduced by the ring even when determinism is not required. */
export const RING_MIN_BYTES = 1 << 20;

function like<T extends Numeric>(a: T, length: number): T {
  return new (a.constructor as new (n: number) => T)(length);
}

export class MpiCommunicator extends DerivedCollectives implements Communicator {
  readonly backend = 'mpi' as const;
  readonly rank: number;
  readonly size: number;
  readonly reason: string;
  /** The hosts MPI sees (ranks that share memory form one). */
  readonly nodes: number;
  /**
   * Large allgathervs (8 MiB in all and up) go node by node, each payload crossing between two hosts once: more than one host, the
   * same number (> 1) of ranks on each. GRADCOMP_MPI_HIERARCHICAL=0 turns it off, =1 uses it at every size.
   */
  readonly hierarchical: boolean;
  readonly #b: MpiBinding;
  #closed = false;
  /** Set while a helper thread acts as this rank (lend()): this side refuses collectives. */
  #lentTo: string | undefined;
  #pending = 0;
  /** False on a thread that shares another thread's engine: MPI's end is left to that thread. */
  readonly #owner: boolean;

  constructor(b: MpiBinding, reason: string, timeoutMs?: number) {
    super();
    this.#b = b;
    const info = b.init(timeoutMs ?? null);
    this.rank = info.rank;
    this.size = info.size;
    this.nodes = info.nodes;
    this.hierarchical = info.hierarchical;
    const hosts = info.nodes > 1 ? `; ${info.nodes} hosts${info.hierarchical ? ` x ${info.perNode} ranks, large allgathervs node by node` : ''}` : '';
    this.reason = `${reason}; ${info.version.split('\n')[0]}${hosts}`;
    this.#owner = info.owner;
    if (!info.owner) return; // a thread sharing another thread's engine (lend()) leaves MPI's end to that thread
    // Finalize on a clean exit; abort the whole job otherwise (specs/distributed.md §1).
    process.on('exit', (code) => {
      if (this.#closed) return;
      if (code === 0) b.finalize(); else b.abort(code);
    });
    process.on('uncaughtException', (e) => {
      process.stderr.write(`gradcomp (mpi rank ${this.rank}): ${e?.stack ?? e}\n`);
      b.abort(1);
    });
  }

  /** The comm thread works on the buffer after this call returns: it is pinned (not transferable meanwhile). */
  #queue: Promise<unknown> = Promise.resolve();

  /**
   * One operation at a time, in issue order: an operation posts several steps to the comm thread
   * (agreement, counts, data), and two operations interleaving their steps could pair up
   * differently on different ranks. Queued whole, every rank posts the same sequence.
   */
  #serial<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#lentTo !== undefined) {
      return Promise.reject(new GradcompError('ERR_GRADCOMP_COMM_LENT', `the communicator is lent to ${this.#lentTo}, which runs this rank's collectives now; dispose it first`, 'comm'));
    }
    this.#pending++;
    const run = this.#queue.then(fn, fn).finally(() => { this.#pending--; });
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /**
   * Lets a helper thread of this process act as this rank (the TF.js optimizer's step thread): that
   * thread's `init({ backend: 'mpi' })` then shares this process's Open MPI engine.
   * Until `release()`, this communicator refuses collectives (ERR_GRADCOMP_COMM_LENT), so the two
   * never interleave their operations; it must have none in flight. A thread the engine is not lent
   * to is refused (ERR_GRADCOMP_COMM_LENT).
   */
  lend(to: string): { job: { marker: 'gradcomp.mpi' }; release(): void } {
    if (this.#closed) throw new GradcompError('ERR_GRADCOMP_INVALID_ARG', 'the communicator is closed', 'comm');
    if (this.#lentTo !== undefined) throw new GradcompError('ERR_GRADCOMP_COMM_LENT', `the communicator is already lent to ${this.#lentTo}`, 'comm');
    if (this.#pending > 0) throw new GradcompError('ERR_GRADCOMP_COMM_LENT', `the communicator has ${this.#pending} operation(s) in flight: await them before lending it to ${to}`, 'comm');
    this.#lentTo = to;
    this.#b.lend(true);
    return { job: { marker: 'gradcomp.mpi' }, release: () => { this.#b.lend(false); this.#lentTo = undefined; } };
  }

  /** Hooks run by close() before it closes (a lent communicator's borrower is stopped first). */
  readonly beforeClose: (() => Promise<void>)[] = [];

  #check(a: unknown, param: string, floats = false): Numeric {
    const v = numericArg(a, param, floats);
    pin(v, param);
    return v;
  }

  #root(root: unknown): number {
    if (typeof root !== 'number' || !Number.isInteger(root) || root < 0 || root >= this.size) throw typeError('root', `a rank in [0, ${this.size - 1}]`, root);
    return root;
  }

  /**
   * Every rank posts (collective, dtype, length); one 4-value MAX allreduce of
   * [code, length, -code, -length] gives every rank the same min and max, so all ranks reject a
   * mismatch together (ERR_GRADCOMP_COLLECTIVE_MISMATCH) instead of MPI truncating or hanging.
   */
  async #agree(op: number, a: Numeric | null, length: number, sameLength: boolean): Promise<void> {
    const code = op * 8 + (a ? dtypeCode(a) : 7);
    const v = Float64Array.from([code, length, -code, -length]);
    await this.#b.allreduce(v, 1, false);
    if (v[0] !== -v[2]) throw new GradcompError('ERR_GRADCOMP_COLLECTIVE_MISMATCH', `rank ${this.rank}: ranks issued different collectives or element types`);
    if (sameLength && v[1] !== -v[3]) throw new GradcompError('ERR_GRADCOMP_COLLECTIVE_MISMATCH', `rank ${this.rank}: ranks passed different lengths (${-v[3]} to ${v[1]})`);
  }

  async #counts(n: number): Promise<number[]> {
    const out = new Int32Array(this.size);
    await this.#b.allgatherCounts(n, out);
    return Array.from(out);
  }

  allreduce<T extends Float32Array | Float64Array>(buf: T, op: ReduceOp = 'sum', options: AllreduceOptions = {}): Promise<T> {
    return this.#serial(() => this.#allreduce(buf, op, options));
  }

  async #allreduce<T extends Float32Array | Float64Array>(buf: T, op: ReduceOp, options: AllreduceOptions): Promise<T> {
    buf = this.#check(buf, 'buf', true) as typeof buf;
    if (op !== 'sum' && op !== 'avg' && op !== 'max') throw typeError('op', "'sum', 'avg' or 'max'", op);
    checkOptions(options, 'options', ['deterministic']);
    await this.#agree(1, buf, buf.length, true);
    // Large buffers always take the ring: bandwidth-optimal, and over TCP faster than Open MPI's own
    // allreduce (100 MB over a 1 Gbit/s link: 1.37 s against 2.65 s, bench/results/e2e-*.json);
    // small ones, unless determinism is asked for, MPI's latency-optimal algorithms.
    const ring = options?.deterministic === true || buf.byteLength >= RING_MIN_BYTES;
    await this.#b.allreduce(buf, op === 'max' ? 1 : 0, ring);
    if (op === 'avg') for (let i = 0; i < buf.length; i++) buf[i] /= this.size;
    return buf;
  }

  allgather<T extends Numeric>(send: T, recv?: T): Promise<T> {
    return this.#serial(() => this.#allgather(send, recv));
  }

  async #allgather<T extends Numeric>(send: T, recv?: T): Promise<T> {
    send = this.#check(send, 'send') as typeof send;
    const out = recv ?? like(send, send.length * this.size);
    if (dtypeOf(out) !== dtypeOf(send) || out.length !== send.length * this.size) throw typeError('recv', `a ${dtypeOf(send)} array of ${send.length * this.size} elements`, recv);
    await this.#agree(2, send, send.length, true);
    await this.#b.allgatherv(send, out, Array(this.size).fill(send.length));
    return out;
  }

  allgatherv<T extends Numeric>(send: T, options?: AllgathervOptions<T>): Promise<{ data: T; counts: number[] }> {
    return this.#serial(() => this.#allgatherv(send, options));
  }

  async #allgatherv<T extends Numeric>(send: T, options?: AllgathervOptions<T>): Promise<{ data: T; counts: number[] }> {
    send = this.#check(send, 'send') as typeof send;
    await this.#agree(3, send, send.length, false);
    const counts = await this.#counts(send.length);
    const out = this.#check(receiveBuffer(send, counts.reduce((a, b) => a + b, 0), options), 'options.into') as T;
    await this.#b.allgatherv(send, out, counts);
    return { data: out, counts };
  }



  broadcast<T extends Numeric>(buf: T, root: number): Promise<T> {
    return this.#serial(() => this.#broadcast(buf, root));
  }

  async #broadcast<T extends Numeric>(buf: T, root: number): Promise<T> {
    buf = this.#check(buf, 'buf') as typeof buf;
    const rt = this.#root(root);
    await this.#agree(4, buf, buf.length, true);
    await this.#b.bcast(buf, rt);
    return buf;
  }

  gatherv<T extends Numeric>(send: T, root: number): Promise<{ data: T; counts: number[] } | null> {
    return this.#serial(() => this.#gatherv(send, root));
  }

  async #gatherv<T extends Numeric>(send: T, root: number): Promise<{ data: T; counts: number[] } | null> {
    send = this.#check(send, 'send') as typeof send;
    const rt = this.#root(root);
    await this.#agree(5, send, send.length, false);
    const counts = await this.#counts(send.length);
    const out = this.rank === rt ? like(send, counts.reduce((a, b) => a + b, 0)) : null;
    await this.#b.gatherv(send, out, counts, rt);
    return out ? { data: out, counts } : null;
  }

  scatterv<T extends Numeric>(send: T | null, counts: number[], root: number): Promise<T> {
    return this.#serial(() => this.#scatterv(send, counts, root));
  }

  async #scatterv<T extends Numeric>(send: T | null, counts: number[], root: number): Promise<T> {
    const rt = this.#root(root);
    if (!Array.isArray(counts) || counts.length !== this.size || counts.some((c) => !Number.isInteger(c) || c < 0)) {
      throw typeError('counts', `${this.size} non-negative integers`, counts);
    }
    // Every rank needs the element type: the root broadcasts its code first.
    const codes = ['float32', 'float64', 'int32', 'uint32', 'uint8'] as const;
    if (this.rank === rt) send = this.#check(send, 'send') as T;
    const code = new Int32Array([this.rank === rt ? codes.indexOf(dtypeOf(send)!) : -1]);
    await this.#b.bcast(code, rt);
    const ctor = { float32: Float32Array, float64: Float64Array, int32: Int32Array, uint32: Uint32Array, uint8: Uint8Array }[codes[code[0]]];
    const out = new ctor(counts[this.rank]) as unknown as T;
    await this.#b.scatterv(this.rank === rt ? send : null, out, counts, rt);
    return out;
  }


  send(buf: Numeric, dest: number): Promise<void> {
    return this.#serial(() => this.#send(buf, dest));
  }

  async #send(buf: Numeric, dest: number): Promise<void> {
    buf = this.#check(buf, 'buf') as typeof buf;
    if (dest === this.rank) throw typeError('dest', 'another rank', dest);
    await this.#b.send(buf, this.#root(dest));
  }

  recv<T extends Numeric>(buf: T, src: number): Promise<T> {
    return this.#serial(() => this.#recv(buf, src));
  }

  async #recv<T extends Numeric>(buf: T, src: number): Promise<T> {
    buf = this.#check(buf, 'buf') as typeof buf;
    if (src === this.rank) throw typeError('src', 'another rank', src);
    await this.#b.recv(buf, this.#root(src));
    return buf;
  }

  barrier(): Promise<void> {
    return this.#serial(() => this.#barrier());
  }

  async #barrier(): Promise<void> {
    await this.#agree(7, null, 0, true);
  }

  async close(): Promise<void> {
    for (const hook of this.beforeClose.splice(0)) await hook();
    if (this.#closed) return;
    this.#closed = true;
    await this.#queue;
    if (this.#owner) this.#b.finalize();
  }
}
