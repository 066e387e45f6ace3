/**
 * LIEC-SGD (Cheng et al. 2024): local immediate error compensation. The worker compresses its
 * gradient, c = C(g), and applies what C dropped, r = g - c, at once on top of the server's
 * answer (u = q + r) instead of remembering it; every `period` steps (tau) a full-precision sync
 * averages the models and the gradients and flushes the server error (u = mean(g) + e_s, e_s = 0).
 *
 * Tuning guide: period (tau) 32 to 100 on IID data; non-IID data needs a small tau (8): the worker
 * models drift apart between syncs. Evaluate the averaged model (averaged()). Momentum stays local
 * (the authors' code); with momentum 0.9 and scaled sign, lower the lr as for DoubleSqueeze.
 */
import type { GatherCompressor } from '../compress/gather';
import type { Optimizer } from '../optim/optimizer';
import { vecAxpy } from '../ops/kernels';
import type { StateFields } from './base';
import type { Exchange } from './exchange';
import { ServerOptions, ServerSgd } from './server';

/** serverError: e_s of the chunk this rank serves (flushed at every full sync). */
export interface LiecState { serverError?: Float32Array; workerMomentum?: Float32Array }

export class Liec extends ServerSgd<LiecState> {
  readonly algorithm = 'liec';
  protected readonly fields: StateFields<LiecState> = { serverError: 'array', workerMomentum: 'array' };
  readonly period: number;
  #mine = new Float32Array(0);
  #u = new Float32Array(0);

  constructor(ex: Exchange, optimizer: Optimizer, codec: GatherCompressor<object>, o: ServerOptions = {}) {
    super(ex, optimizer, codec, o);
    this.period = o.period ?? 32;
  }

  protected async doStep(p: Record<string, Float32Array>, g: Record<string, Float32Array>, t: number): Promise<{ lr: number; synced: boolean }> {
    const lr = this.optimizer.lr, d = this.layout!.total;
    if ((t + 1) % this.period === 0) {
      await this.#fullSync(p, g, lr);
      return { lr, synced: true };
    }
    if (this.#u.length !== d) { this.#mine = new Float32Array(d); this.#u = new Float32Array(d); }
    const grad = this.momentumFirst(this.flatten(g, this.scratch('grad')));
    await this.roundTrip(grad, t, this.#mine, this.#u);
    vecAxpy(grad, this.#mine, -1); // r = g - c
    vecAxpy(this.#u, grad);        // u = q + r
    await this.apply(p, this.#u, lr);
    return { lr, synced: false };
  }

  /** The sync step: x = mean(x_i); u = mean(g_i) + e_s (then e_s = 0); x -= lr-step(u). */
  async #fullSync(p: Record<string, Float32Array>, g: Record<string, Float32Array>, lr: number): Promise<void> {
    const x = await this.ex.average(this.flatten(p, this.scratch('params')));
    const u = await this.ex.average(this.flatten(g, this.scratch('grad')));
    const [lo, hi] = this.chunk(this.rank);
    const es = hi > lo ? this.arr('serverError', hi - lo) : undefined;
    if (es) { vecAxpy(u.subarray(lo, hi), es); es.fill(0); }
    const mineBytes = (a: Float32Array) => new Uint8Array(a.buffer, a.byteOffset + 4 * lo, 4 * (hi - lo));
    if (this.server === 'root') {
      const b = await this.ex.broadcast(mineBytes(u), 0);
      u.set(new Float32Array(b.slice().buffer));
    } else {
      const parts = await this.ex.allgather(mineBytes(u));
      parts.forEach((b, j) => u.set(new Float32Array(b.slice().buffer), this.chunk(j)[0]));
    }
    this.unflatten(x, p);
    await this.apply(p, u, lr);
  }
}
