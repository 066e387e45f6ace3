/**
 * Bidirectional compression with a server: DoubleSqueeze (Tang et al., ICML'19; specs §5.3) and
 * LIEC-SGD (Cheng et al. 2024; specs §1). Workers compress up, the server averages the decoded
 * messages, adds its own error, compresses again and sends the result down.
 *
 *   DoubleSqueeze  worker: p = g + e_w; c = C(p); e_w = p - c          down: u = q
 *   LIEC-SGD       worker: c = C(g); r = g - c (not kept)              down: u = q + r (immediate
 *                  local compensation); every `period` steps a full-precision sync: models
 *                  averaged, u = mean(g) + e_s, e_s flushed to 0 (specs §1(a).3, §1(e)).
 *   server:        v = mean(c) + e_s; q = C(v); e_s = v - q
 *
 * C is applied per tensor (one scale per tensor for scaled sign: the "Blockwise-SignSGD" of the
 * LIEC code); compressors: 'efsign' (scaled sign, sign(0) = +1), 'topk', 'qsgd', 'fp16', 'bf16',
 * used as bare operators (the errors live here, not in the compressor).
 *
 * Server placement: 'root' puts the server and its d-sized error on rank 0 (gather up, broadcast
 * down: the authors' parameter-server emulation); 'sharded' makes rank j the server of the j-th
 * contiguous 1/n of the model (all-to-all up, allgather down: DeepSpeed's compressed allreduce), so
 * each rank keeps a d/n error and no rank receives more than its share. The two give the same
 * result up to the per-piece scales at chunk boundaries.
 *
 * Tuning guide: LIEC `period` (tau) 32 to 100 on IID data; non-IID data needs a small tau (8):
 * the worker models drift apart between syncs. Evaluate the averaged model (averaged()).
 */
import { GradcompError } from '../native/errors';
import type { GatherCompressor } from '../compress/gather';
import type { Optimizer } from '../optim/optimizer';
import { BaseDistributed } from './base';
import type { Exchange } from './exchange';

export interface ServerOptions {
  server?: 'root' | 'sharded';
  /** LIEC-SGD only: full-precision sync every `period` steps (default 32). */
  period?: number;
}

interface Piece { name: string; lo: number; hi: number }

const corrupt = (why: string) => new GradcompError('ERR_GRADCOMP_CORRUPT_PAYLOAD', `a server-algorithm message is corrupt: ${why}`, 'payload');

export class ServerSgd extends BaseDistributed {
  readonly server: 'root' | 'sharded';
  readonly period: number;

  constructor(readonly algorithm: 'double-squeeze' | 'liec', ex: Exchange, optimizer: Optimizer, readonly codec: GatherCompressor, o: ServerOptions = {}) {
    super(ex, optimizer);
    this.server = o.server ?? 'root';
    this.period = o.period ?? 32;
  }

  protected override get identicalModels(): boolean { return this.algorithm === 'double-squeeze'; }

  /** [lo, hi) of the flat model that rank j serves. */
  #chunk(j: number): [number, number] {
    const d = this.layout!.total, n = this.workers;
    if (this.server === 'root') return j === 0 ? [0, d] : [0, 0];
    return [Math.floor((j * d) / n), Math.floor(((j + 1) * d) / n)];
  }

  #pieces(j: number): Piece[] {
    const [lo, hi] = this.#chunk(j), L = this.layout!, out: Piece[] = [];
    L.names.forEach((name, i) => {
      const a = Math.max(lo, L.offsets[i]), b = Math.min(hi, L.offsets[i] + L.sizes[i]);
      if (a < b) out.push({ name, lo: a, hi: b });
    });
    return out;
  }

  /** C applied to each piece of chunk j of v (flat); the pieces framed as [count, lengths..., bytes...]. */
  #encode(v: Float32Array, j: number, t: number, role: number): Uint8Array {
    const parts = this.#pieces(j).map((pc) => this.codec.encodeRaw(`${pc.name}@${pc.lo}`, v.subarray(pc.lo, pc.hi), { step: t, rank: role, workers: this.workers + 1 }));
    const head = 4 * (1 + parts.length), body = parts.reduce((s, p) => s + p.byteLength, 0);
    const out = new Uint8Array(head + body), dv = new DataView(out.buffer);
    dv.setUint32(0, parts.length, true);
    let off = head;
    parts.forEach((p, k) => { dv.setUint32(4 + 4 * k, p.byteLength, true); out.set(p, off); off += p.byteLength; });
    return out;
  }

  /** Adds the dense value of a chunk-j message into out (flat, full length). */
  #decodeAdd(msg: Uint8Array, j: number, out: Float32Array): void {
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

  protected async doStep(p: Record<string, Float32Array>, g: Record<string, Float32Array>, t: number): Promise<{ lr: number; synced: boolean }> {
    const lr = this.optimizer.lr;
    if (this.algorithm === 'liec' && (t + 1) % this.period === 0) {
      await this.#fullSync(p, g);
      return { lr, synced: true };
    }
    const d = this.layout!.total, n = this.workers, me = this.rank;
    const grad = this.flatten(g);
    // Worker: compress up, keep (DoubleSqueeze) or apply at once (LIEC) what C dropped.
    const src = grad;
    const ew = this.algorithm === 'double-squeeze' ? this.buffer('workerError', d) : undefined;
    if (ew) for (let i = 0; i < d; i++) src[i] += ew[i];
    const mine = new Float32Array(d);
    const up = this.timedCompress(() => Array.from({ length: n }, (_, j) => {
      const m = this.#encode(src, j, t, me);
      this.#decodeAdd(m, j, mine);
      return m;
    }));
    const local = ew ?? grad; // e_w = p - c (DoubleSqueeze) or r = g - c (LIEC), in place
    for (let i = 0; i < d; i++) local[i] = src[i] - mine[i];
    const received = this.server === 'root' ? await this.ex.gather(up[0], 0) : await this.ex.alltoall(up);
    // Server: my chunk of mean(c) + e_s, compressed again.
    // u collects the decoded server messages; the server decodes its own chunk once, here.
    const [lo, hi] = this.#chunk(me), serving = hi > lo && received !== null, u = new Float32Array(d);
    let down: Uint8Array = new Uint8Array(0);
    if (serving) {
      const v = new Float32Array(d), es = this.buffer('serverError', hi - lo);
      this.timedCompress(() => {
        for (const msg of received!) this.#decodeAdd(msg, me, v);
        for (let i = lo; i < hi; i++) v[i] = v[i] / n + es[i - lo];
        down = this.#encode(v, me, t, n);
        this.#decodeAdd(down, me, u);
        for (let i = lo; i < hi; i++) es[i - lo] = v[i] - u[i];
      });
    }
    if (this.server === 'root') {
      const q = await this.ex.broadcast(down, 0);
      if (!serving) this.timedCompress(() => this.#decodeAdd(q, 0, u));
    } else {
      const qs = await this.ex.allgather(down);
      this.timedCompress(() => qs.forEach((q, j) => { if (!(serving && j === me)) this.#decodeAdd(q, j, u); }));
    }
    if (this.algorithm === 'liec') for (let i = 0; i < d; i++) u[i] += local[i];
    this.optimizer.step(p, this.split(u), { lr });
    return { lr, synced: this.algorithm === 'double-squeeze' };
  }

  /** LIEC's sync step: x = mean(x_i); u = mean(g_i) + e_s (then e_s = 0); x -= lr-step(u). */
  async #fullSync(p: Record<string, Float32Array>, g: Record<string, Float32Array>): Promise<void> {
    const x = await this.ex.average(this.flatten(p));
    const u = await this.ex.average(this.flatten(g));
    const [lo, hi] = this.#chunk(this.rank);
    const es = hi > lo ? this.buffer('serverError', hi - lo) : undefined;
    if (es) { for (let i = lo; i < hi; i++) u[i] += es[i - lo]; es.fill(0); }
    const mineBytes = (a: Float32Array) => new Uint8Array(a.buffer, a.byteOffset + 4 * lo, 4 * (hi - lo));
    if (this.server === 'root') {
      const b = await this.ex.broadcast(mineBytes(u), 0);
      u.set(new Float32Array(b.slice().buffer));
    } else {
      const parts = await this.ex.allgather(mineBytes(u));
      parts.forEach((b, j) => u.set(new Float32Array(b.slice().buffer), this.#chunk(j)[0]));
    }
    this.unflatten(x, p);
    this.optimizer.step(p, this.split(u), { lr: this.optimizer.lr });
  }
}
