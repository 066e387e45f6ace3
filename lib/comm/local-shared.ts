/**
 * Shared buffers of the local backend (internal): comm.alloc() gives a SharedArrayBuffer that is
 * posted to every other rank at once, and released on every rank when its owner drops it. An
 * allreduce or allgatherv where every rank passes such a buffer reads the peers' data in place
 * instead of copying it through the job's slots; each rank writes only its own buffer.
 */
import { GradcompError } from '../native/errors';
import { copyInto, vecAdd } from '../ops/kernels';
import type { JobSync } from './local-sync';
import type { LocalJob } from './shared';
import type { Numeric } from './types';

/** Allreduces from this many elements (allgathervs from 4x as many bytes) take the shared path when every rank passes a buffer from alloc(). */
export const SHARED_MIN = 1 << 14;
/** Elements summed per block (256 KiB: the block being summed stays in cache while each peer's is added). */
const BLOCK = 1 << 16;

export function bytesOf(a: Numeric, offset = 0, length = a.length): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset + offset * a.BYTES_PER_ELEMENT, length * a.BYTES_PER_ELEMENT);
}
export const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
export const prefixes = (counts: number[]) => counts.map((_, r) => sum(counts.slice(0, r)));

interface Posted { gradcompShared?: number; sab?: unknown; gradcompSharedGone?: number }

export class SharedBuffers {
  // This rank's buffers, by id; the peers' (posted at their alloc), by "rank:id".
  readonly #mine = new WeakMap<SharedArrayBuffer, number>();
  readonly #theirs = new Map<string, SharedArrayBuffer>();
  #nextId = 1;
  #arrived: (() => void)[] = [];
  // A buffer of this rank that is collected: the peers drop their handles to it.
  readonly #collected = new FinalizationRegistry<number>((id) => {
    for (const p of this.job.outPorts) { try { p?.postMessage({ gradcompSharedGone: id }); } catch { /* closed */ } }
  });

  constructor(private readonly job: LocalJob, private readonly s: JobSync) {}

  /** A port message from src that belongs here (a posted or released buffer): handled, true. Payloads (typed arrays): false. */
  onMessage(src: number, msg: unknown): boolean {
    if (ArrayBuffer.isView(msg) || msg === null || typeof msg !== 'object') return false;
    const m = msg as Posted;
    if (m.gradcompShared !== undefined && m.sab instanceof SharedArrayBuffer) this.#theirs.set(`${src}:${m.gradcompShared}`, m.sab);
    else if (m.gradcompSharedGone !== undefined) this.#theirs.delete(`${src}:${m.gradcompSharedGone}`);
    for (const wake of this.#arrived.splice(0)) wake();
    return true;
  }

  /** A zeroed shared array, posted to every peer; null when there is no peer to post to (one rank, or a lent communicator). */
  alloc(length: number, Ctor: { BYTES_PER_ELEMENT: number }): Numeric | null {
    const ports = this.job.outPorts.filter((p) => p !== undefined);
    if (ports.length === 0) return null;
    const bytes = length * Ctor.BYTES_PER_ELEMENT;
    let sab: SharedArrayBuffer;
    try { sab = new SharedArrayBuffer(bytes); } catch {
      throw new GradcompError('ERR_GRADCOMP_OUT_OF_MEMORY', `rank ${this.job.rank}: no memory for a shared buffer of ${bytes} bytes`, 'length');
    }
    const id = this.#nextId++;
    this.#mine.set(sab, id);
    for (const p of ports) p.postMessage({ gradcompShared: id, sab });
    this.#collected.register(sab, id);
    return new (Ctor as unknown as new (b: SharedArrayBuffer) => Numeric)(sab);
  }

  /** The id this rank posts for a collective on buf: its shared buffer's, when buf is one from its start (and every peer can be reached); else 0. */
  idOf(buf: Numeric): number {
    if (!(buf.buffer instanceof SharedArrayBuffer) || buf.byteOffset !== 0 || this.job.ports.every((p) => p === undefined)) return 0;
    return this.#mine.get(buf.buffer) ?? 0;
  }

  /** Rank r's shared buffer `id` (posted at its alloc; waits for the message if it is still on its way). */
  async #peer(r: number, id: number): Promise<SharedArrayBuffer> {
    const deadline = Date.now() + this.s.timeout;
    for (;;) {
      const sab = this.#theirs.get(`${r}:${id}`);
      if (sab) return sab;
      this.s.checkAbort();
      if (Date.now() > deadline) this.s.abort(new GradcompError('ERR_GRADCOMP_COMM_TIMEOUT', `rank ${this.job.rank}: rank ${r}'s shared buffer ${id} never arrived`));
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
   * from their owners.
   */
  async allreduce(buf: Float32Array, ids: number[]): Promise<void> {
    const s = this.s, n = buf.length, size = this.job.size, me = this.job.rank;
    const xs: Float32Array[] = [];
    for (let r = 0; r < size; r++) xs.push(r === me ? buf : new Float32Array(await this.#peer(r, ids[r]), 0, n));
    const seg = (j: number) => Math.floor((j * n) / size);
    await s.barrier(); // every rank has its peers' buffers, and every input is in place
    for (let a = seg(me); a < seg(me + 1); a += BLOCK) {
      const b = Math.min(seg(me + 1), a + BLOCK), dst = buf.subarray(a, b);
      for (let k = 1; k < size; k++) vecAdd(dst, dst, xs[(me + k) % size].subarray(a, b));
    }
    await s.barrier(); // every segment is summed
    for (let r = 0; r < size; r++) if (r !== me) copyInto(buf.subarray(seg(r), seg(r + 1)), xs[r].subarray(seg(r), seg(r + 1)));
    await s.barrier(); // nobody reads this rank's segment any more: the caller may change buf
  }

  /** allgatherv of shared sends: every rank copies each block from its owner's buffer into out. */
  async allgatherv<T extends Numeric>(send: T, counts: number[], ids: number[], out: T): Promise<void> {
    const s = this.s, prefix = prefixes(counts), bpe = send.BYTES_PER_ELEMENT, size = this.job.size, me = this.job.rank;
    const blocks: Uint8Array[] = [];
    for (let r = 0; r < size; r++) blocks.push(r === me ? bytesOf(send) : new Uint8Array(await this.#peer(r, ids[r]), 0, counts[r] * bpe));
    await s.barrier(); // every rank has its peers' buffers, and every send is in place
    for (let k = 0; k < size; k++) {
      const r = (me + k) % size; // start from a different owner on each rank
      if (counts[r] > 0) copyInto(bytesOf(out, prefix[r], counts[r]), blocks[r]);
    }
    await s.barrier(); // nobody reads this rank's send any more
  }
}
