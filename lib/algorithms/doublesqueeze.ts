/**
 * DoubleSqueeze (Tang, Yu, Lian, Zhang, Liu; ICML'19): error-compensated compression both ways.
 *   worker: p = g + e_w; c = C(p); e_w = p - c        server: v = mean(c) + e_s; q = C(v); e_s = v - q
 * Every worker applies the same q, so the models stay identical.
 *
 * Tuning guide: any bare-operator compressor works; scaled sign (efsign, the default) sends 1 bit
 * per element each way. With optimizer momentum 0.9 the sign's scale error is amplified by the
 * momentum: use momentum 0 to 0.5, or lower the lr (the accuracy table shows the safe settings).
 */
import type { GatherCompressor } from '../compress/gather';
import type { Optimizer } from '../optim/optimizer';
import { vecAdd, vecAxpy } from '../ops/kernels';
import type { StateFields } from './base';
import type { Exchange } from './exchange';
import { ServerOptions, ServerSgd } from './server';

/** workerError: e_w, what this worker's compression dropped (d floats); serverError: e_s of the chunk this rank serves. */
export interface DoubleSqueezeState { workerError?: Float32Array; serverError?: Float32Array; workerMomentum?: Float32Array }

export class DoubleSqueeze extends ServerSgd<DoubleSqueezeState> {
  readonly algorithm = 'double-squeeze';
  protected readonly fields: StateFields<DoubleSqueezeState> = { workerError: 'array', serverError: 'array', workerMomentum: 'array' };
  #mine = new Float32Array(0);
  #u = new Float32Array(0);

  constructor(ex: Exchange, optimizer: Optimizer, codec: GatherCompressor<object>, o: ServerOptions = {}) {
    super(ex, optimizer, codec, o);
  }

  protected override get identicalModels(): boolean { return true; }

  protected async doStep(p: Record<string, Float32Array>, g: Record<string, Float32Array>, t: number): Promise<{ lr: number; synced: boolean }> {
    const lr = this.optimizer.lr, d = this.layout!.total;
    if (this.#u.length !== d) { this.#mine = new Float32Array(d); this.#u = new Float32Array(d); }
    const ew = this.arr('workerError', d);
    const src = this.momentumFirst(this.flatten(g, this.scratch('grad')));
    vecAdd(src, src, ew); // p = g + e_w
    await this.roundTrip(src, t, this.#mine, this.#u);
    ew.set(src);
    vecAxpy(ew, this.#mine, -1); // e_w = p - c
    await this.apply(p, this.#u, lr);
    return { lr, synced: true };
  }
}
