/**
 * The `local` backend: N ranks as worker_threads of one process, collectives through
 * SharedArrayBuffer slots (local-sync.ts synchronizes them). Each rank copies its data into its
 * own slot, waits at a barrier, then reads what it needs; copies run natively across the thread
 * pool, and callers may pass a reusable receive buffer (allgatherv's `into`) so a steady state
 * allocates nothing. Messages larger than a slot move in chunks.
 */
import { GradcompError, typeError } from '../native/errors';
import { copyInto, reduceMany, vecAdd } from '../ops/kernels';
import { dtypeOf } from '../tensor/tensor';
import { dtypeCode, numericArg } from './args';
import { allocArgs, DerivedCollectives } from './base';
import { JobSync } from './local-sync';
import { LocalJob } from './shared';
import type { AllgathervOptions, AllreduceOptions, Communicator, Numeric, NumericOf, NumericType, ReduceOp } from './types';

const OPS = { allreduce: 1, allgather: 2, allgatherv: 3, broadcast: 4, gatherv: 5, scatterv: 6, barrier: 7, shared: 8 } as const;
/** Allreduces from this many elements take the shared-buffer path when every rank passes a buffer from alloc(). */
const SHARED_MIN = 1 << 14;
/** Elements summed per block (256 KiB: the block being summed stays in cache while each peer's is added). */
const SHARED_BLOCK = 1 << 16;
const CTORS = { float32: Float32Array, float64: Float64Array, int32: Int32Array, uint32: Uint32Array, uint8: Uint8Array };
const CODES = ['float32', 'float64', 'int32', 'uint32', 'uint8'] as const;

function bytesOf(a: Numeric, offset = 0, length = a.length): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset + offset * a.BYTES_PER_ELEMENT, length * a.BYTES_PER_ELEMENT);
}
function like<T extends Numeric>(a: T, length: number): T {
  return new (a.constructor as new (n: number) => T)(length);
}
function viewOf<T extends Numeric>(a: T, buf: SharedArrayBuffer, byteOffset: number, length: number): T {
  return new (a.constructor as new (b: SharedArrayBuffer, o: number, n: number) => T)(buf, byteOffset, length);
}
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
const prefixes = (counts: number[]) => counts.map((_, r) => sum(counts.slice(0, r)));

/** `into` when it is a buffer of send's type with room for n elements (a view of its start), else a new array. */
export function receiveBuffer<T extends Numeric>(send: T, n: number, into: unknown): T {
  if (into !== undefined && dtypeOf(into) === dtypeOf(send) && (into as T).length >= n) {
    const t = into as T;
    return new (t.constructor as new (b: ArrayBufferLike, o: number, n: number) => T)(t.buffer, t.byteOffset, n);
  }
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
  // Shared buffers (alloc): this rank's, by id; the peers' (posted to this rank at their alloc), by "rank:id".
  readonly #mine = new WeakMap<SharedArrayBuffer, number>();
  readonly #theirs = new Map<string, SharedArrayBuffer>();
  #nextId = 1;
  #arrived: (() => void)[] = [];
  // A buffer of this rank that is collected: the peers drop their handles to it.
  readonly #collected = new FinalizationRegistry<number>((id) => {
    for (const p of this.#job.outPorts) { try { p?.postMessage({ gradcompSharedGone: id }); } catch { /* closed */ } }
  });

  constructor(job: LocalJob, reason: string) {
    super();
    this.#job = job;
    this.#s = new JobSync(job);
    this.rank = job.rank;
    this.size = job.size;
    this.reason = reason;
    job.ports.forEach((port, src) => {
      if (!port) return;
      port.on('message', (msg: Uint8Array | { gradcompShared?: number; sab?: SharedArrayBuffer; gradcompSharedGone?: number }) => {
        if (!ArrayBuffer.isView(msg)) {
          if (msg?.gradcompShared !== undefined && msg.sab instanceof SharedArrayBuffer) this.#theirs.set(`${src}:${msg.gradcompShared}`, msg.sab);
          else if (msg?.gradcompSharedGone !== undefined) this.#theirs.delete(`${src}:${msg.gradcompSharedGone}`);
          for (const wake of this.#arrived.splice(0)) wake();
          return;
        }
        const q = this.#inbox.get(src) ?? [];
        q.push(msg);
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
   * Always deterministic, in the ring order the MPI backend's deterministic allreduce uses: the
   * buffer's n segments (segment j: [floor(jN/n), floor((j+1)N/n))), each element of segment j
   * summed as ((x_j + x_{j+1}) + ...) + x_{j-1} over ranks mod n. Through shared memory: each rank
   * posts its chunk, reduces its share of it, and copies the result back.
   */
  allreduce<T extends Float32Array | Float64Array>(buf: T, op: ReduceOp = 'sum', _options?: AllreduceOptions): Promise<T> {
    const s = this.#s;
    return s.enqueue(async () => {
      buf = numericArg(buf, 'buf', true) as typeof buf;
      if (op !== 'sum' && op !== 'avg' && op !== 'max') throw typeError('op', "'sum', 'avg' or 'max'", op);
      await s.agree(OPS.allreduce * 8 + dtypeCode(buf), buf.length, true);
      if (op !== 'max' && buf instanceof Float32Array && buf.length >= SHARED_MIN && this.size > 1) {
        // Buffers from alloc() on every rank: reduce in place, reading the peers' buffers (no slots).
        const ids = await s.agree(OPS.shared, this.#sharedId(buf), false);
        if (ids.every((id) => id > 0)) {
          await this.#allreduceShared(buf, ids);
          if (op === 'avg') for (let i = 0; i < buf.length; i++) buf[i] /= this.size;
          return buf;
        }
      }
      const bpe = buf.BYTES_PER_ELEMENT, n = buf.length, size = this.size;
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
      if (op === 'avg') for (let i = 0; i < n; i++) buf[i] /= size;
      return buf;
    });
  }

  /**
   * A zeroed Float32Array or Float64Array in shared memory: its SharedArrayBuffer is posted to every
   * other rank now, so that an allreduce where every rank passes such a buffer (whole, from its
   * start) reads the peers' data in place. Dropped buffers are released on every rank.
   */
  override alloc<D extends NumericType = 'float32'>(length: number, dtype?: D): NumericOf<D> {
    const a = allocArgs(length, dtype);
    const ports = this.#job.outPorts.filter((p) => p !== undefined);
    if (ports.length === 0) return super.alloc(length, dtype); // a lent communicator (no ports) or one rank: nothing to share with
    let sab: SharedArrayBuffer;
    try { sab = new SharedArrayBuffer(a.length * a.Ctor.BYTES_PER_ELEMENT); } catch {
      throw new GradcompError('ERR_GRADCOMP_OUT_OF_MEMORY', `rank ${this.rank}: no memory for a shared buffer of ${a.length * a.Ctor.BYTES_PER_ELEMENT} bytes`, 'length');
    }
    const id = this.#nextId++;
    this.#mine.set(sab, id);
    for (const p of ports) p.postMessage({ gradcompShared: id, sab });
    this.#collected.register(sab, id);
    return new (a.Ctor as unknown as new (b: SharedArrayBuffer) => Numeric)(sab) as NumericOf<D>;
  }

  /** The id this rank posts for a collective on buf: its shared buffer's, when buf is one from its start (and every peer can be reached); else 0. */
  #sharedId(buf: Numeric): number {
    if (!(buf.buffer instanceof SharedArrayBuffer) || buf.byteOffset !== 0 || this.#job.ports.every((p) => p === undefined)) return 0;
    return this.#mine.get(buf.buffer) ?? 0;
  }

  /** Rank r's shared buffer `id` (posted at its alloc; waits for the message if it is still on its way). */
  async #peerBuffer(r: number, id: number): Promise<SharedArrayBuffer> {
    const deadline = Date.now() + this.#s.timeout;
    for (;;) {
      const sab = this.#theirs.get(`${r}:${id}`);
      if (sab) return sab;
      this.#s.checkAbort();
      if (Date.now() > deadline) this.#s.abort(new GradcompError('ERR_GRADCOMP_COMM_TIMEOUT', `rank ${this.rank}: rank ${r}'s shared buffer ${id} never arrived`));
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 100);
        this.#arrived.push(() => { clearTimeout(t); resolve(); });
      });
    }
  }

  /**
   * The allreduce of shared buffers, in the ring order of the slot path (segment j summed as
   * ((x_j + x_{j+1}) + ...) + x_{j-1}), so the bits are the same: each rank sums its own segment in
   * place from the peers' buffers, a cache-sized block at a time, then copies the other segments
   * from their owners. Each rank writes only its own buffer.
   */
  async #allreduceShared(buf: Float32Array, ids: number[]): Promise<void> {
    const s = this.#s, n = buf.length, size = this.size, me = this.rank;
    const xs: Float32Array[] = [];
    for (let r = 0; r < size; r++) xs.push(r === me ? buf : new Float32Array(await this.#peerBuffer(r, ids[r]), 0, n));
    const seg = (j: number) => Math.floor((j * n) / size);
    await s.barrier(); // every rank has its peers' buffers, and every input is in place
    for (let a = seg(me); a < seg(me + 1); a += SHARED_BLOCK) {
      const b = Math.min(seg(me + 1), a + SHARED_BLOCK), dst = buf.subarray(a, b);
      for (let k = 1; k < size; k++) vecAdd(dst, dst, xs[(me + k) % size].subarray(a, b));
    }
    await s.barrier(); // every segment is summed
    for (let r = 0; r < size; r++) if (r !== me) copyInto(buf.subarray(seg(r), seg(r + 1)), xs[r].subarray(seg(r), seg(r + 1)));
    await s.barrier(); // nobody reads this rank's segment any more: the caller may change buf
  }

  /** allgatherv of shared sends: every rank copies each block from its owner's buffer into out. */
  async #gatherShared<T extends Numeric>(send: T, counts: number[], ids: number[], out: T): Promise<void> {
    const s = this.#s, prefix = prefixes(counts), bpe = send.BYTES_PER_ELEMENT;
    const blocks: Uint8Array[] = [];
    for (let r = 0; r < this.size; r++) {
      blocks.push(r === this.rank ? bytesOf(send) : new Uint8Array(await this.#peerBuffer(r, ids[r]), 0, counts[r] * bpe));
    }
    await s.barrier(); // every rank has its peers' buffers, and every send is in place
    for (let k = 0; k < this.size; k++) {
      const r = (this.rank + k) % this.size; // start from a different owner on each rank
      if (counts[r] > 0) copyInto(bytesOf(out, prefix[r], counts[r]), blocks[r]);
    }
    await s.barrier(); // nobody reads this rank's send any more
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
      const out = receiveBuffer(send, sum(counts), options?.into);
      if (sum(counts) * send.BYTES_PER_ELEMENT >= 4 * SHARED_MIN && this.size > 1) {
        // Sends from alloc() on every rank: copy each block straight from its owner's buffer (no slots).
        const ids = await s.agree(OPS.shared, this.#sharedId(send), false);
        if (ids.every((id) => id > 0)) {
          await this.#gatherShared(send, counts, ids, out);
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
      const out = new CTORS[CODES[posted[rt]]](counts[this.rank]) as unknown as T;
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
