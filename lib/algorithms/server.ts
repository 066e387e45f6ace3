/**
 * Bidirectional compression with a server, the machinery DoubleSqueeze and LIEC-SGD share:
 * workers compress up, the server averages the decoded messages, adds its own error, compresses
 * again and sends the result down (server: v = mean(c) + e_s; q = C(v); e_s = v - q).
 *
 * C is applied per tensor (one scale per tensor for scaled sign: the "Blockwise-SignSGD" of the
 * LIEC code), used as a bare operator (the errors live in the algorithm's State, not in the
 * compressor): 'efsign' (scaled sign), 'topk', 'qsgd', 'fp16', 'bf16', 'terngrad'.
 *
 * Server placement: 'root' puts the server and its d-sized error on rank 0 (gather up, broadcast
 * down: the authors' parameter-server emulation); 'sharded' makes rank j the server of the j-th
 * contiguous 1/n of the model (all-to-all up, allgather down: DeepSpeed's compressed allreduce), so
 * each rank keeps a d/n error and no rank receives more than its share. The two give the same
 * result up to the per-piece scales at chunk boundaries.
 */
import { GradcompError } from '../native/errors';
import type { GatherCompressor } from '../compress/gather';
import type { Optimizer } from '../optim/optimizer';
import { vecAxpy, vecScale } from '../ops/kernels';
import { BaseDistributed, BaseOptions } from './base';
import type { Exchange } from './exchange';

export interface ServerOptions extends BaseOptions {
  server?: 'root' | 'sharded';
  /** LIEC-SGD only: full-precision sync every `period` steps (default 32). */
  period?: number;
  /** Momentum applied on the worker before compression (the optimizer then runs plain SGD). */
  workerMomentum?: { momentum: number; nesterov: boolean };
}

interface Piece { name: string; lo: number; hi: number }

const corrupt = (why: string) => new GradcompError('ERR_GRADCOMP_CORRUPT_PAYLOAD', `a server-algorithm message is corrupt: ${why}`, 'payload');

/**
 * The State both algorithms keep: serverError, e_s of this rank's chunk (all of it on rank 0 with a
 * root server); workerMomentum, the worker-side momentum when it runs before compression.
 */
export interface ServerState { serverError?: Float32Array; workerMomentum?: Float32Array }

export abstract class ServerSgd<S extends ServerState> extends BaseDistributed<S> {
  readonly server: 'root' | 'sharded';

  protected readonly opts2: ServerOptions;

  constructor(ex: Exchange, optimizer: Optimizer, readonly codec: GatherCompressor<object>, o: ServerOptions = {}) {
    super(ex, optimizer, undefined, o);
    this.server = o.server ?? 'root';
    this.opts2 = o;
  }

  /**
   * The worker's update before compression: the flat gradient itself, or with worker momentum
   * m = mu m + g (heavy ball; Nesterov: g + mu m), written into `g` in place.
   */
  protected momentumFirst(g: Float32Array): Float32Array {
    const wm = this.opts2.workerMomentum;
    if (!wm) return g;
    const m = this.arr('workerMomentum' as keyof S, g.length);
    vecScale(m, wm.momentum);
    vecAxpy(m, g);
    if (wm.nesterov) vecAxpy(g, m, wm.momentum); else g.set(m);
    return g;
  }

  /** [lo, hi) of the flat model that rank j serves. */
  protected chunk(j: number): [number, number] {
    const d = this.layout!.total, n = this.workers;
    if (this.server === 'root') return j === 0 ? [0, d] : [0, 0];
    return [Math.floor((j * d) / n), Math.floor(((j + 1) * d) / n)];
  }

  #pieces(j: number): Piece[] {
    const [lo, hi] = this.chunk(j), L = this.layout!, out: Piece[] = [];
    L.names.forEach((name, i) => {
      const a = Math.max(lo, L.offsets[i]), b = Math.min(hi, L.offsets[i] + L.sizes[i]);
      if (a < b) out.push({ name, lo: a, hi: b });
    });
    return out;
  }

  /** C applied to each piece of chunk j of v (flat); the pieces framed as [count, lengths..., bytes...]. */
  protected async encode(v: Float32Array, j: number, t: number, role: number): Promise<Uint8Array> {
    const parts: Uint8Array[] = [];
    for (const pc of this.#pieces(j)) parts.push(await this.codec.encodeRaw(`${pc.name}@${pc.lo}`, v.subarray(pc.lo, pc.hi), { step: t, rank: role, workers: this.workers + 1 }));
    const head = 4 * (1 + parts.length), body = parts.reduce((s, p) => s + p.byteLength, 0);
    const out = new Uint8Array(head + body), dv = new DataView(out.buffer);
    dv.setUint32(0, parts.length, true);
    let off = head;
    parts.forEach((p, k) => { dv.setUint32(4 + 4 * k, p.byteLength, true); out.set(p, off); off += p.byteLength; });
    return out;
  }

  /** Adds the dense value of a chunk-j message into out (flat, full length). */
  protected decodeAdd(msg: Uint8Array, j: number, out: Float32Array): void {
    const pieces = this.#pieces(j);
    if (msg.byteLength < 4) throw corrupt('shorter than its header');
    const dv = new DataView(msg.buffer, msg.byteOffset, msg.byteLength);
    if (dv.getUint32(0, true) !== pieces.length) throw corrupt(`expected ${pieces.length} pieces`);
    const head = 4 * (1 + pieces.length);
    if (msg.byteLength < head) throw corrupt('shorter than its piece table');
    let off = head;
    pieces.forEach((pc, k) => {
      const len = dv.getUint32(4 + 4 * k, true);
      if (off + len > msg.byteLength) throw corrupt('a piece runs past the end');
      this.codec.decodeRawAdd(msg.subarray(off, off + len), out.subarray(pc.lo, pc.hi));
      off += len;
    });
    if (off !== msg.byteLength) throw corrupt('trailing bytes');
  }

  /**
   * One up-and-down round: `up` (flat, full length) is compressed chunk by chunk and sent to the
   * servers; each server adds its error to the mean it received, compresses, and every rank gets
   * the decoded result back in `u` (flat). `mine` receives this rank's decoded upload (what C kept).
   */
  protected async roundTrip(up: Float32Array, t: number, mine: Float32Array, u: Float32Array): Promise<void> {
    const n = this.workers, me = this.rank;
    mine.fill(0);
    const msgs: Uint8Array[] = [];
    for (let j = 0; j < n; j++) {
      const m = await this.compressClock.time(() => this.encode(up, j, t, me));
      this.timedCompress(() => this.decodeAdd(m, j, mine));
      msgs.push(m);
    }
    const received = this.server === 'root' ? await this.ex.gather(msgs[0], 0) : await this.ex.alltoall(msgs);
    const [lo, hi] = this.chunk(me), serving = hi > lo && received !== null;
    u.fill(0);
    let down: Uint8Array = new Uint8Array(0);
    if (serving) {
      this.compressClock.enter();
      try {
      const v = this.scratch('server'), es = this.arr('serverError' as keyof S, hi - lo);
      v.subarray(lo, hi).fill(0);
      for (const msg of received!) this.decodeAdd(msg, me, v);
      const vs = v.subarray(lo, hi);
      vecScale(vs, 1 / n);
      vecAxpy(vs, es);
      down = await this.encode(v, me, t, n);
      this.decodeAdd(down, me, u);
      es.set(vs);
      vecAxpy(es, u.subarray(lo, hi), -1); // e_s = v - q
      } finally { this.compressClock.leave(); }
    }
    if (this.server === 'root') {
      const q = await this.ex.broadcast(down, 0);
      if (!serving) this.timedCompress(() => this.decodeAdd(q, 0, u));
    } else {
      const qs = await this.ex.allgather(down);
      this.timedCompress(() => qs.forEach((q, j) => { if (!(serving && j === me)) this.decodeAdd(q, j, u); }));
    }
  }

  /** Applies the optimizer to every tensor with the flat update u. */
  protected async apply(p: Record<string, Float32Array>, u: Float32Array, lr: number): Promise<void> {
    const g = this.split(u);
    await Promise.all(this.layout!.names.map((n) => this.optimizer.update(n, p[n], g[n], { lr, async: true })));
  }
}
