/**
 * VRL-SGD (Liang et al. 2019): Local SGD with a per-worker correction that removes the drift of
 * non-IID shards. Worker i steps with g_i - Delta_i; at a sync, before the models are overwritten,
 * Delta_i += (mean(x) - x_i) / (sum of the lrs used in the period, each times the optimizer's
 * momentum gain 1 / (1 - momentum)). The Delta_i sum to zero; with H = 1 it is synchronous SGD.
 *
 * Tuning guide: as Local SGD; VRL-SGD pays off on non-IID data, where it allows a larger period
 * for the same accuracy.
 */
import { vecAdd, vecAxpy, vecScale } from '../ops/kernels';
import type { StateFields } from './base';
import type { Sgd } from '../optim/sgd';
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
    this.st.periodLr = (this.st.periodLr ?? 0) + lr * this.#gain();
  }

  /**
   * How far one unit of lr times gradient moves the model once the optimizer's momentum has built
   * up: (1 - dampening) / (1 - momentum) for SGD with momentum, 1 otherwise. The drift between
   * syncs is that many times plain SGD's, so Delta divides by it too; without it, momentum 0.9
   * made Delta ten times too large and VRL-SGD diverged.
   */
  #gain(): number {
    const o = this.optimizer as Partial<Sgd>;
    return o.type === 'sgd' && (o.momentum ?? 0) > 0 ? (1 - (o.dampening ?? 0)) / (1 - (o.momentum ?? 0)) : 1;
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
