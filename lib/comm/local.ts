/**
 * The `local` backend: N ranks as worker_threads of one process, collectives through
 * SharedArrayBuffer slots with the reductions in native code. Each rank writes its data into its
 * own slot, waits at a barrier, then reads what it needs (for allreduce each rank reduces one
 * segment into the result region, then everyone copies the result). Waits use Atomics.waitAsync,
 * so the event loop keeps running. A peer that fails, exits early or times out aborts the job:
 * every rank's pending call rejects with ERR_GRADCOMP_PEER_FAILED instead of hanging.
 */
import { GradcompError, typeError } from '../native/errors';
import { reduceInto } from '../ops/kernels';
import { dtypeOf } from '../tensor/tensor';
import { CTRL, LocalJob } from './shared';
import { dtypeCode, numericArg } from './args';
import { DerivedCollectives } from './base';
import type { AllreduceOptions, Communicator, Numeric, ReduceOp } from './types';

// Atomics.waitAsync is in Node >= 16 (V8); the ES2022 lib typings predate it.
type WaitAsync = (a: Int32Array, i: number, v: number, t?: number) => { async: boolean; value: Promise<string> | string };
const waitAsync = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync;

const OPS = { allreduce: 1, allgather: 2, allgatherv: 3, broadcast: 4, gatherv: 5, scatterv: 6, barrier: 7 } as const;

function bytesOf(a: Numeric, offset = 0, length = a.length): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset + offset * a.BYTES_PER_ELEMENT, length * a.BYTES_PER_ELEMENT);
}
function like<T extends Numeric>(a: T, length: number): T {
  return new (a.constructor as new (n: number) => T)(length);
}
function viewOf<T extends Numeric>(a: T, buf: SharedArrayBuffer, byteOffset: number, length: number): T {
  return new (a.constructor as new (b: SharedArrayBuffer, o: number, n: number) => T)(buf, byteOffset, length);
}

export class LocalCommunicator extends DerivedCollectives implements Communicator {
  readonly backend = 'local' as const;
  readonly rank: number;
  readonly size: number;
  readonly reason: string;
  readonly #ctrl: Int32Array;
  readonly #data: SharedArrayBuffer;
  readonly #slot: number;
  readonly #timeout: number;
  readonly #job: LocalJob;
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;
  readonly #inbox = new Map<number, Uint8Array[]>();
  readonly #waiting = new Map<number, () => void>();

  constructor(job: LocalJob, reason: string) {
    super();
    this.#job = job;
    this.rank = job.rank;
    this.size = job.size;
    this.reason = reason;
    this.#ctrl = new Int32Array(job.ctrl);
    this.#data = job.data;
    this.#slot = job.slotBytes;
    this.#timeout = job.timeoutMs;
    job.ports.forEach((port, src) => {
      if (!port) return;
      port.on('message', (msg: Uint8Array) => {
        const q = this.#inbox.get(src) ?? [];
        q.push(msg);
        this.#inbox.set(src, q);
        this.#waiting.get(src)?.();
      });
      port.unref();
    });
  }

  // ---- machinery ---------------------------------------------------------------------------

  /** Calls from one rank run one at a time, in issue order (collectives must match across ranks). */
  #enqueue<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(new GradcompError('ERR_GRADCOMP_INVALID_ARG', 'the communicator is closed', 'comm'));
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  #checkAbort(): void {
    const a = Atomics.load(this.#ctrl, CTRL.ABORT);
    if (a !== 0) {
      throw new GradcompError('ERR_GRADCOMP_PEER_FAILED', a - 1 === this.rank
        ? `rank ${this.rank}: this rank failed and the job is aborting`
        : `rank ${this.rank}: rank ${a - 1} failed, so the job is aborting`);
    }
  }

  /** Marks the job failed (first failure wins) and wakes every waiter. */
  #abort(err: GradcompError): never {
    Atomics.compareExchange(this.#ctrl, CTRL.ABORT, 0, this.rank + 1);
    Atomics.notify(this.#ctrl, CTRL.GENERATION);
    throw err;
  }

  async #barrier(): Promise<void> {
    const c = this.#ctrl;
    this.#checkAbort();
    const gen = Atomics.load(c, CTRL.GENERATION);
    if (Atomics.add(c, CTRL.ARRIVED, 1) === this.size - 1) {
      Atomics.store(c, CTRL.ARRIVED, 0);
      Atomics.add(c, CTRL.GENERATION, 1);
      Atomics.notify(c, CTRL.GENERATION);
      return;
    }
    const deadline = Date.now() + this.#timeout;
    while (Atomics.load(c, CTRL.GENERATION) === gen) {
      this.#checkAbort();
      if (Atomics.load(c, CTRL.DEPARTED) > 0) {
        this.#abort(new GradcompError('ERR_GRADCOMP_PEER_FAILED', `rank ${this.rank}: a rank left the job while the others wait in a collective`));
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        this.#abort(new GradcompError('ERR_GRADCOMP_COMM_TIMEOUT', `rank ${this.rank}: no progress for ${this.#timeout} ms (a rank is missing from a collective, or collectives were issued in different orders)`));
      }
      const r = waitAsync(c, CTRL.GENERATION, gen, Math.min(left, 250));
      if (r.async) {
        // A pending waitAsync does not keep a Node event loop alive: without this timer a rank
        // whose only pending work is the wait would exit in the middle of the collective.
        const keepAlive = setTimeout(() => undefined, Math.min(left, 250) + 50);
        await r.value;
        clearTimeout(keepAlive);
      }
    }
    // The generation moved: the barrier completed for everyone. An abort raised after that is
    // seen by this rank's next operation, not by this one, which did succeed.
  }

  /** Every rank posts (op, a) and (op, b); all must agree on op and on `a` when `sameA`. */
  async #agree(op: number, a: number, sameA: boolean): Promise<number[]> {
    const c = this.#ctrl, base = CTRL.COUNTS;
    Atomics.store(c, base + 2 * this.rank, op);
    Atomics.store(c, base + 2 * this.rank + 1, a);
    await this.#barrier();
    const vals: number[] = [];
    for (let r = 0; r < this.size; r++) {
      const o = Atomics.load(c, base + 2 * r), v = Atomics.load(c, base + 2 * r + 1);
      if (o !== op) this.#abort(new GradcompError('ERR_GRADCOMP_COLLECTIVE_MISMATCH', `rank ${this.rank}: rank ${r} issued a different collective or element type`));
      if (sameA && v !== a) this.#abort(new GradcompError('ERR_GRADCOMP_COLLECTIVE_MISMATCH', `rank ${this.rank}: rank ${r} passed ${v} elements where this rank passed ${a}`));
      vals.push(v);
    }
    await this.#barrier(); // everyone has read the posted values before they are reused
    return vals;
  }

  #slotBytes(r: number): Uint8Array {
    return new Uint8Array(this.#data, r * this.#slot, this.#slot);
  }

  #check(a: unknown, param: string, floats = false): Numeric {
    return numericArg(a, param, floats);
  }

  #root(root: unknown): number {
    if (typeof root !== 'number' || !Number.isInteger(root) || root < 0 || root >= this.size) {
      throw typeError('root', `a rank in [0, ${this.size - 1}]`, root);
    }
    return root;
  }

  // ---- collectives -------------------------------------------------------------------------

  /**
   * Always deterministic, in the ring order the MPI backend's deterministic allreduce uses: the
   * buffer's n segments (segment j: [floor(jN/n), floor((j+1)N/n))), each element of segment j
   * summed as ((x_j + x_{j+1}) + ...) + x_{j-1} over ranks mod n. Through shared memory: each rank
   * posts its chunk, reduces its share of it, and copies the result back.
   */
  allreduce<T extends Float32Array | Float64Array>(buf: T, op: ReduceOp = 'sum', _options?: AllreduceOptions): Promise<T> {
    return this.#enqueue(async () => {
      buf = this.#check(buf, 'buf', true) as typeof buf;
      if (op !== 'sum' && op !== 'avg' && op !== 'max') throw typeError('op', "'sum', 'avg' or 'max'", op);
      await this.#agree(OPS.allreduce * 8 + dtypeCode(buf), buf.length, true);
      const bpe = buf.BYTES_PER_ELEMENT, n = buf.length, size = this.size;
      const L = Math.floor(this.#slot / bpe), segStart = (j: number) => Math.floor((j * n) / size);
      for (let off = 0; off < n; off += L) {
        const len = Math.min(L, n - off);
        this.#slotBytes(this.rank).set(bytesOf(buf, off, len));
        await this.#barrier();
        const s0 = Math.floor((len * this.rank) / size), s1 = Math.floor((len * (this.rank + 1)) / size);
        // Split this rank's share of the chunk at the global segment boundaries: each piece folds from its segment's rank.
        for (let a = off + s0; a < off + s1;) {
          let j = Math.min(size - 1, Math.floor((a * size) / n));
          while (j + 1 < size && segStart(j + 1) <= a) j++;
          while (j > 0 && segStart(j) > a) j--;
          const b = Math.min(off + s1, segStart(j + 1));
          const at = (r: number) => viewOf(buf, this.#data, r * this.#slot + (a - off) * bpe, b - a);
          const dst = viewOf(buf, this.#data, size * this.#slot + (a - off) * bpe, b - a);
          dst.set(at(j));
          for (let k = 1; k < size; k++) reduceInto(dst, at((j + k) % size), op === 'max' ? 1 : 0);
          a = b;
        }
        await this.#barrier();
        bytesOf(buf, off, len).set(new Uint8Array(this.#data, size * this.#slot, len * bpe));
      }
      if (op === 'avg') for (let i = 0; i < n; i++) buf[i] /= size;
      return buf;
    });
  }

  allgather<T extends Numeric>(send: T, recv?: T): Promise<T> {
    return this.#enqueue(async () => {
      send = this.#check(send, 'send') as typeof send;
      const m = send.length;
      const out = recv ?? like(send, m * this.size);
      if (dtypeOf(out) !== dtypeOf(send) || out.length !== m * this.size) throw typeError('recv', `a ${dtypeOf(send)} array of ${m * this.size} elements`, recv);
      await this.#agree(OPS.allgather * 8 + dtypeCode(send), m, true);
      await this.#gatherChunks(send, Array(this.size).fill(m), out, true);
      return out;
    });
  }

  allgatherv<T extends Numeric>(send: T): Promise<{ data: T; counts: number[] }> {
    return this.#enqueue(async () => {
      send = this.#check(send, 'send') as typeof send;
      const counts = await this.#agree(OPS.allgatherv * 8 + dtypeCode(send), send.length, false);
      const out = like(send, counts.reduce((a, b) => a + b, 0));
      await this.#gatherChunks(send, counts, out, true);
      return { data: out, counts };
    });
  }

  gatherv<T extends Numeric>(send: T, root: number): Promise<{ data: T; counts: number[] } | null> {
    return this.#enqueue(async () => {
      send = this.#check(send, 'send') as typeof send;
      const rt = this.#root(root);
      const counts = await this.#agree(OPS.gatherv * 8 + dtypeCode(send), send.length, false);
      const out = this.rank === rt ? like(send, counts.reduce((a, b) => a + b, 0)) : null;
      await this.#gatherChunks(send, counts, out, false, rt);
      return out ? { data: out, counts } : null;
    });
  }

  /** Moves counts[r] elements of rank r's send into out at prefix offsets, slot-sized chunks. */
  async #gatherChunks<T extends Numeric>(send: T, counts: number[], out: T | null, all: boolean, root = 0): Promise<void> {
    const bpe = send.BYTES_PER_ELEMENT, L = Math.floor(this.#slot / bpe), max = Math.max(0, ...counts);
    const prefix = counts.map((_, r) => counts.slice(0, r).reduce((a, b) => a + b, 0));
    for (let off = 0; off < max; off += L) {
      const mine = Math.max(0, Math.min(L, counts[this.rank] - off));
      if (mine > 0) this.#slotBytes(this.rank).set(bytesOf(send, off, mine));
      await this.#barrier();
      if (out && (all || this.rank === root)) {
        for (let r = 0; r < this.size; r++) {
          const len = Math.max(0, Math.min(L, counts[r] - off));
          if (len > 0) bytesOf(out, prefix[r] + off, len).set(new Uint8Array(this.#data, r * this.#slot, len * bpe));
        }
      }
      await this.#barrier();
    }
  }



  broadcast<T extends Numeric>(buf: T, root: number): Promise<T> {
    return this.#enqueue(async () => {
      buf = this.#check(buf, 'buf') as typeof buf;
      const rt = this.#root(root);
      await this.#agree(OPS.broadcast * 8 + dtypeCode(buf), buf.length, true);
      const bpe = buf.BYTES_PER_ELEMENT, L = Math.floor(this.#slot / bpe);
      for (let off = 0; off < buf.length; off += L) {
        const len = Math.min(L, buf.length - off);
        if (this.rank === rt) this.#slotBytes(rt).set(bytesOf(buf, off, len));
        await this.#barrier();
        if (this.rank !== rt) bytesOf(buf, off, len).set(new Uint8Array(this.#data, rt * this.#slot, len * bpe));
        await this.#barrier();
      }
      return buf;
    });
  }

  scatterv<T extends Numeric>(send: T | null, counts: number[], root: number): Promise<T> {
    return this.#enqueue(async () => {
      const rt = this.#root(root);
      if (!Array.isArray(counts) || counts.length !== this.size || counts.some((c) => !Number.isInteger(c) || c < 0)) {
        throw typeError('counts', `${this.size} non-negative integers`, counts);
      }
      const total = counts.reduce((a, b) => a + b, 0);
      if (this.rank === rt) {
        send = this.#check(send, 'send') as T;
        if (send.length !== total) throw typeError('send', `${total} elements (the sum of counts)`, send);
      }
      // Every rank needs the dtype: the root announces it in the agreement word.
      const codes = ['float32', 'float64', 'int32', 'uint32', 'uint8'];
      const posted = await this.#agree(OPS.scatterv, this.rank === rt ? codes.indexOf(dtypeOf(send)!) : -1, false);
      const dt = codes[posted[rt]];
      const ctor = { float32: Float32Array, float64: Float64Array, int32: Int32Array, uint32: Uint32Array, uint8: Uint8Array }[dt as 'float32']!;
      const out = new ctor(counts[this.rank]) as unknown as T;
      const bpe = out.BYTES_PER_ELEMENT, L = Math.floor(this.#slot / bpe), max = Math.max(0, ...counts);
      const prefix = counts.map((_, r) => counts.slice(0, r).reduce((a, b) => a + b, 0));
      for (let off = 0; off < max; off += L) {
        if (this.rank === rt) {
          for (let r = 0; r < this.size; r++) {
            const len = Math.max(0, Math.min(L, counts[r] - off));
            if (len > 0) this.#slotBytes(r).set(bytesOf(send!, prefix[r] + off, len));
          }
        }
        await this.#barrier();
        const len = Math.max(0, Math.min(L, counts[this.rank] - off));
        if (len > 0) bytesOf(out, off, len).set(new Uint8Array(this.#data, this.rank * this.#slot, len * bpe));
        await this.#barrier();
      }
      return out;
    });
  }


  async send(buf: Numeric, dest: number): Promise<void> {
    buf = this.#check(buf, 'buf') as typeof buf;
    if (dest === this.rank || !this.#job.outPorts[dest]) throw typeError('dest', `another rank in [0, ${this.size - 1}]`, dest);
    this.#checkAbort();
    this.#job.outPorts[dest]!.postMessage(bytesOf(buf).slice());
  }

  async recv<T extends Numeric>(buf: T, src: number): Promise<T> {
    buf = this.#check(buf, 'buf') as typeof buf;
    if (src === this.rank || !this.#job.ports[src]) throw typeError('src', `another rank in [0, ${this.size - 1}]`, src);
    const deadline = Date.now() + this.#timeout;
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
      this.#checkAbort();
      if (Atomics.load(this.#ctrl, CTRL.DEPARTED) > 0) throw new GradcompError('ERR_GRADCOMP_PEER_FAILED', `rank ${this.rank}: a rank left the job while this rank waits in recv`);
      if (Date.now() > deadline) this.#abort(new GradcompError('ERR_GRADCOMP_COMM_TIMEOUT', `rank ${this.rank}: nothing arrived from rank ${src} in ${this.#timeout} ms`));
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => { this.#waiting.delete(src); resolve(); }, 100);
        this.#waiting.set(src, () => { clearTimeout(t); this.#waiting.delete(src); resolve(); });
      });
    }
  }

  barrier(): Promise<void> {
    return this.#enqueue(async () => { await this.#agree(OPS.barrier, 0, true); });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    await this.#queue;
    this.#closed = true;
    Atomics.add(this.#ctrl, CTRL.CLOSED, 1);
    for (const p of [...this.#job.ports, ...this.#job.outPorts]) p?.close();
  }
}
