/**
 * VRL-SGD (Liang et al. 2019): Local SGD with a per-worker correction that removes the drift of
 * non-IID shards. Worker i steps with g_i - Delta_i; at a sync, before the models are overwritten,
 * Delta_i += (mean(x) - x_i) / (sum of the lrs used in the period). The Delta_i sum to zero; with
 * H = 1 it is synchronous SGD.
 *
 * Tuning guide: as Local SGD; VRL-SGD pays off on non-IID data, where it allows a larger period
 * for the same accuracy.
 */
import { vecAdd, vecAxpy, vecScale } from '../ops/kernels';
import type { StateFields } from './base';
import { PeriodicSgd } from './periodic';

/** delta: Delta_i, this worker's correction (d floats); periodLr: the sum of the lrs used since the last sync. */
export interface VrlState { delta?: Float32Array; periodLr?: number }

export class VrlSgd extends PeriodicSgd<VrlState> {
  readonly algorithm = 'vrl';
  protected readonly fields: StateFields<VrlState> = { delta: 'array', periodLr: 'number' };
  #corrected = new Float32Array(0);

  protected override async localStep(p: Record<string, Float32Array>, g: Record<string, Float32Array>, lr: number, t: number): Promise<void> {
    const d = this.layout!.total;
    const delta = this.arr('delta', d);
    if (this.#corrected.length !== d) this.#corrected = new Float32Array(d);
    const step = this.flatten(g, this.#corrected);
    vecAxpy(step, delta, -1); // g - Delta
    await super.localStep(p, this.split(step), lr, t);
    this.st.periodLr = (this.st.periodLr ?? 0) + lr;
  }

  protected override async sync(p: Record<string, Float32Array>): Promise<void> {
    const x = this.flatten(p), old = this.scratch('old');
    old.set(x);
    await this.ex.average(x);
    // Delta_i += (mean x - x_i) / sum(lr): computed before x_i is overwritten.
    const delta = this.arr('delta', x.length), diff = old;
    vecScale(diff, -1);
    vecAdd(diff, diff, x);
    vecAxpy(delta, diff, 1 / (this.st.periodLr ?? 1));
    this.unflatten(x, p);
    this.st.periodLr = 0;
  }
}
