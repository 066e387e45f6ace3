/**
 * The `local` backend: N ranks as worker_threads of one process, collectives through
 * SharedArrayBuffer slots (local-sync.ts synchronizes them): each rank copies its data into its
 * slot, waits at a barrier, then reads what it needs, in slot-sized chunks. Buffers from alloc()
 * skip the slots (local-shared.ts). A reusable receive buffer (allgatherv's `into`) means a
 * steady state allocates nothing.
 */
import { checkOptions, GradcompError, typeError } from '../native/errors';
import { copyInto, reduceMany } from '../ops/kernels';
import { dtypeOf } from '../tensor/tensor';
import { dtypeCode, numericArg } from './args';
import { allocArgs, DerivedCollectives, NUMERIC_CTORS } from './base';
import { bytesOf, prefixes, SHARED_MIN, SharedBuffers, sum } from './local-shared';
import { JobSync } from './local-sync';
import { LocalJob } from './shared';
import type { AllgathervOptions, AllreduceOptions, Communicator, Numeric, NumericOf, NumericType, ReduceOp } from './types';

const OPS = { allreduce: 1, allgather: 2, allgatherv: 3, broadcast: 4, gatherv: 5, scatterv: 6, barrier: 7, shared: 8 } as const;
const CODES = ['float32', 'float64', 'int32', 'uint32', 'uint8'] as const;

const like = <T extends Numeric>(a: T, length: number): T => new (a.constructor as new (n: number) => T)(length);
const viewOf = <T extends Numeric>(a: T, buf: SharedArrayBuffer, byteOffset: number, length: number): T =>
  new (a.constructor as new (b: SharedArrayBuffer, o: number, n: number) => T)(buf, byteOffset, length);

/** allgatherv's options.into when it is a buffer of send's type with room for n elements (a view of its start), else a new array. */
export function receiveBuffer<T extends Numeric>(send: T, n: number, options: unknown): T {
  checkOptions(options, 'options', ['into']);
  const t = (options as { into?: T } | undefined)?.into;
  if (t !== undefined && dtypeOf(t) === dtypeOf(send) && t.length >= n) return new (t.constructor as new (b: ArrayBufferLike, o: number, n: number) => T)(t.buffer, t.byteOffset, n);
  return like(send, n);
}

export class LocalCommunicator extends DerivedCollectives implements Communicator {
  readonly backend = 'local' as const;
  readonly rank: number;
  readonly size: number;
  readonly reason: string;
  readonly #s: JobSync;
  readonly #job: LocalJob;
  readonly #inbox = new Map<number, Uint8Array[]>();
  readonly #waiting = new Map<number, () => void>();
  readonly #shared: SharedBuffers;

  constructor(job: LocalJob, reason: string) {
    super();
    this.#job = job;
    this.#s = new JobSync(job);
    this.#shared = new SharedBuffers(job, this.#s);
    this.rank = job.rank;
    this.size = job.size;
    this.reason = reason;
    job.ports.forEach((port, src) => {
      if (!port) return;
      port.on('message', (msg: unknown) => {
        if (this.#shared.onMessage(src, msg)) return;
        const q = this.#inbox.get(src) ?? [];
        q.push(msg as Uint8Array);
        this.#inbox.set(src, q);
        this.#waiting.get(src)?.();
      });
      port.unref();
    });
  }

  #root(root: unknown): number {
    if (typeof root !== 'number' || !Number.isInteger(root) || root < 0 || root >= this.size) throw typeError('root', `a rank in [0, ${this.size - 1}]`, root);
    return root;
  }

  /**
   * Always deterministic, in the MPI backend's deterministic ring order: of the buffer's n segments
   * ([floor(jN/n), floor((j+1)N/n))), segment j sums ((x_j + x_{j+1}) + ...) + x_{j-1} over ranks
   * mod n. Through shared memory: each rank posts its chunk, reduces its share, copies the result back.
   */
  allreduce<T extends Float32Array | Float64Array>(buf: T, op: ReduceOp = 'sum', _options?: AllreduceOptions): Promise<T> {
    const s = this.#s;
    return s.enqueue(async () => {
      buf = numericArg(buf, 'buf', true) as typeof buf;
      if (op !== 'sum' && op !== 'avg' && op !== 'max') throw typeError('op', "'sum', 'avg' or 'max'", op);
      checkOptions(_options, 'options', ['deterministic']);
      await s.agree(OPS.allreduce * 8 + dtypeCode(buf), buf.length, true);
      // Buffers from alloc() on every rank: reduce in place, reading the peers' buffers (no slots).
      const ids = op !== 'max' && buf instanceof Float32Array && buf.length >= SHARED_MIN && this.size > 1
        ? await s.agree(OPS.shared, this.#shared.idOf(buf), false) : [0];
      if (ids.every((id) => id > 0)) await this.#shared.allreduce(buf as Float32Array, ids);
      else await this.#allreduceSlots(buf, op);
      if (op === 'avg') for (let i = 0; i < buf.length; i++) buf[i] /= this.size;
      return buf;
    });
  }

  /** The slot path: each rank posts its chunk, reduces its share of it, and copies the result back. */
  async #allreduceSlots(buf: Float32Array | Float64Array, op: ReduceOp): Promise<void> {
    const s = this.#s, bpe = buf.BYTES_PER_ELEMENT, n = buf.length, size = this.size;
    const L = Math.floor(s.slot / bpe), segStart = (j: number) => Math.floor((j * n) / size);
    const whole = bpe === 8 ? new Float64Array(s.data) : new Float32Array(s.data), offsets = new Uint32Array(size);
    for (let off = 0; off < n; off += L) {
      const len = Math.min(L, n - off);
      copyInto(s.slotBytes(this.rank, 0, len * bpe), bytesOf(buf, off, len));
      await s.barrier();
      const s0 = Math.floor((len * this.rank) / size), s1 = Math.floor((len * (this.rank + 1)) / size);
      // Split this rank's share of the chunk at the global segment boundaries: each piece folds from its segment's rank.
      for (let a = off + s0; a < off + s1;) {
        let j = Math.min(size - 1, Math.floor((a * size) / n));
        while (j + 1 < size && segStart(j + 1) <= a) j++;
        while (j > 0 && segStart(j) > a) j--;
        const b = Math.min(off + s1, segStart(j + 1));
        for (let k = 0; k < size; k++) offsets[k] = ((j + k) % size) * L + (a - off);
        reduceMany(viewOf(buf, s.data, size * s.slot + (a - off) * bpe, b - a), whole, offsets, op === 'max' ? 1 : 0);
        a = b;
      }
      await s.barrier();
      copyInto(bytesOf(buf, off, len), s.slotBytes(size, 0, len * bpe));
    }
  }

  /**
   * A zeroed array in shared memory (lib/comm/local-shared.ts): an allreduce or allgatherv where
   * every rank passes such a buffer (whole, from its start) reads the peers' data in place.
   */
  override alloc<D extends NumericType = 'float32'>(length: number, dtype?: D): NumericOf<D> {
    const a = allocArgs(length, dtype);
    return (this.#shared.alloc(a.length, a.Ctor) ?? super.alloc(length, dtype)) as NumericOf<D>;
  }

  allgather<T extends Numeric>(send: T, recv?: T): Promise<T> {
    const s = this.#s;
    return s.enqueue(async () => {
      send = numericArg(send, 'send') as typeof send;
      const m = send.length;
      const out = recv ?? like(send, m * this.size);
      if (dtypeOf(out) !== dtypeOf(send) || out.length !== m * this.size) throw typeError('recv', `a ${dtypeOf(send)} array of ${m * this.size} elements`, recv);
      await s.agree(OPS.allgather * 8 + dtypeCode(send), m, true);
      await this.#gatherChunks(send, Array(this.size).fill(m), out, true);
      return out;
    });
  }

  allgatherv<T extends Numeric>(send: T, options?: AllgathervOptions<T>): Promise<{ data: T; counts: number[] }> {
    const s = this.#s;
    return s.enqueue(async () => {
      send = numericArg(send, 'send') as typeof send;
      const counts = await s.agree(OPS.allgatherv * 8 + dtypeCode(send), send.length, false);
      const out = receiveBuffer(send, sum(counts), options);
      if (sum(counts) * send.BYTES_PER_ELEMENT >= 4 * SHARED_MIN && this.size > 1) {
        // Sends from alloc() on every rank: copy each block straight from its owner's buffer (no slots).
        const ids = await s.agree(OPS.shared, this.#shared.idOf(send), false);
        if (ids.every((id) => id > 0)) {
          await this.#shared.allgatherv(send, counts, ids, out);
          return { data: out, counts };
        }
      }
      await this.#gatherChunks(send, counts, out, true);
      return { data: out, counts };
    });
  }

  gatherv<T extends Numeric>(send: T, root: number): Promise<{ data: T; counts: number[] } | null> {
    const s = this.#s;
    return s.enqueue(async () => {
      send = numericArg(send, 'send') as typeof send;
      const rt = this.#root(root);
      const counts = await s.agree(OPS.gatherv * 8 + dtypeCode(send), send.length, false);
      const out = this.rank === rt ? like(send, sum(counts)) : null;
      await this.#gatherChunks(send, counts, out, false, rt);
      return out ? { data: out, counts } : null;
    });
  }

  /** Moves counts[r] elements of rank r's send into out at prefix offsets, slot-sized chunks. */
  async #gatherChunks<T extends Numeric>(send: T, counts: number[], out: T | null, all: boolean, root = 0): Promise<void> {
    const s = this.#s, bpe = send.BYTES_PER_ELEMENT, L = Math.floor(s.slot / bpe), max = Math.max(0, ...counts), prefix = prefixes(counts);
    for (let off = 0; off < max; off += L) {
      const mine = Math.max(0, Math.min(L, counts[this.rank] - off));
      if (mine > 0) copyInto(s.slotBytes(this.rank, 0, mine * bpe), bytesOf(send, off, mine));
      await s.barrier();
      if (out && (all || this.rank === root)) {
        for (let r = 0; r < this.size; r++) {
          const len = Math.max(0, Math.min(L, counts[r] - off));
          if (len > 0) copyInto(bytesOf(out, prefix[r] + off, len), s.slotBytes(r, 0, len * bpe));
        }
      }
      await s.barrier();
    }
  }

  broadcast<T extends Numeric>(buf: T, root: number): Promise<T> {
    const s = this.#s;
    return s.enqueue(async () => {
      buf = numericArg(buf, 'buf') as typeof buf;
      const rt = this.#root(root);
      await s.agree(OPS.broadcast * 8 + dtypeCode(buf), buf.length, true);
      const bpe = buf.BYTES_PER_ELEMENT, L = Math.floor(s.slot / bpe);
      for (let off = 0; off < buf.length; off += L) {
        const len = Math.min(L, buf.length - off);
        if (this.rank === rt) copyInto(s.slotBytes(rt, 0, len * bpe), bytesOf(buf, off, len));
        await s.barrier();
        if (this.rank !== rt) copyInto(bytesOf(buf, off, len), s.slotBytes(rt, 0, len * bpe));
        await s.barrier();
      }
      return buf;
    });
  }

  scatterv<T extends Numeric>(send: T | null, counts: number[], root: number): Promise<T> {
    const s = this.#s;
    return s.enqueue(async () => {
      const rt = this.#root(root);
      if (!Array.isArray(counts) || counts.length !== this.size || counts.some((c) => !Number.isInteger(c) || c < 0)) {
        throw typeError('counts', `${this.size} non-negative integers`, counts);
      }
      if (this.rank === rt) {
        send = numericArg(send, 'send') as T;
        if (send.length !== sum(counts)) throw typeError('send', `${sum(counts)} elements (the sum of counts)`, send);
      }
      // Every rank needs the dtype: the root announces it in the agreement word.
      const posted = await s.agree(OPS.scatterv, this.rank === rt ? CODES.indexOf(dtypeOf(send)!) : -1, false);
      const out = new NUMERIC_CTORS[CODES[posted[rt]]](counts[this.rank]) as unknown as T;
      const bpe = out.BYTES_PER_ELEMENT, L = Math.floor(s.slot / bpe), max = Math.max(0, ...counts), prefix = prefixes(counts);
      for (let off = 0; off < max; off += L) {
        if (this.rank === rt) {
          for (let r = 0; r < this.size; r++) {
            const len = Math.max(0, Math.min(L, counts[r] - off));
            if (len > 0) copyInto(s.slotBytes(r, 0, len * bpe), bytesOf(send!, prefix[r] + off, len));
          }
        }
        await s.barrier();
        const len = Math.max(0, Math.min(L, counts[this.rank] - off));
        if (len > 0) copyInto(bytesOf(out, off, len), s.slotBytes(this.rank, 0, len * bpe));
        await s.barrier();
      }
      return out;
    });
  }

  async send(buf: Numeric, dest: number): Promise<void> {
    buf = numericArg(buf, 'buf');
    if (dest === this.rank || !this.#job.outPorts[dest]) throw typeError('dest', `another rank in [0, ${this.size - 1}]`, dest);
    this.#s.checkAbort();
    this.#job.outPorts[dest]!.postMessage(bytesOf(buf).slice());
  }

  async recv<T extends Numeric>(buf: T, src: number): Promise<T> {
    buf = numericArg(buf, 'buf') as typeof buf;
    if (src === this.rank || !this.#job.ports[src]) throw typeError('src', `another rank in [0, ${this.size - 1}]`, src);
    const deadline = Date.now() + this.#s.timeout;
    for (;;) {
      const q = this.#inbox.get(src);
      if (q && q.length > 0) {
        const msg = q.shift()!;
        if (msg.byteLength !== buf.byteLength) {
          throw new GradcompError('ERR_GRADCOMP_COLLECTIVE_MISMATCH', `rank ${this.rank}: rank ${src} sent ${msg.byteLength} bytes into a ${buf.byteLength}-byte buffer`, 'buf');
        }
        bytesOf(buf).set(msg);
        return buf;
      }
      this.#s.checkAbort();
      if (this.#s.departed().includes(src)) throw new GradcompError('ERR_GRADCOMP_PEER_FAILED', `rank ${this.rank}: rank ${src} left the job while this rank waits in recv`);
      if (Date.now() > deadline) this.#s.abort(new GradcompError('ERR_GRADCOMP_COMM_TIMEOUT', `rank ${this.rank}: nothing arrived from rank ${src} in ${this.#s.timeout} ms`));
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => { this.#waiting.delete(src); resolve(); }, 100);
        this.#waiting.set(src, () => { clearTimeout(t); this.#waiting.delete(src); resolve(); });
      });
    }
  }

  barrier(): Promise<void> {
    return this.#s.enqueue(async () => { await this.#s.agree(OPS.barrier, 0, true); });
  }

  /**
   * Lets a helper thread act as this rank (the TF.js optimizer's step thread): returns this rank's
   * job without its point-to-point ports (collectives only) for `new LocalCommunicator(job)` in that
   * thread. Until `release()`, this communicator refuses collectives (ERR_GRADCOMP_COMM_LENT); it
   * must have no operation in flight.
   */
  lend(to: string): { job: LocalJob; release(): void } {
    if (this.#s.closed) throw new GradcompError('ERR_GRADCOMP_INVALID_ARG', 'the communicator is closed', 'comm');
    if (this.#s.lentTo !== undefined) throw new GradcompError('ERR_GRADCOMP_COMM_LENT', `the communicator is already lent to ${this.#s.lentTo}`, 'comm');
    if (this.#s.pending > 0) throw new GradcompError('ERR_GRADCOMP_COMM_LENT', `the communicator has ${this.#s.pending} operation(s) in flight: await them before lending it to ${to}`, 'comm');
    this.#s.lentTo = to;
    const j = this.#job;
    const job: LocalJob = { marker: j.marker, rank: j.rank, size: j.size, ctrl: j.ctrl, data: j.data, slotBytes: j.slotBytes, timeoutMs: j.timeoutMs,
      ports: Array(j.size).fill(undefined), outPorts: Array(j.size).fill(undefined) };
    return { job, release: () => { this.#s.lentTo = undefined; } };
  }

  /** Hooks run by close() before it closes (a lent communicator's borrower is stopped first). */
  readonly beforeClose: (() => Promise<void>)[] = [];

  async close(): Promise<void> {
    for (const hook of this.beforeClose.splice(0)) await hook();
    if (this.#s.closed) return;
    await this.#s.idle();
    this.#s.closed = true;
    Atomics.add(this.#s.ctrl, 4, 1); // CTRL.CLOSED
    for (const p of [...this.#job.ports, ...this.#job.outPorts]) p?.close();
  }
}
