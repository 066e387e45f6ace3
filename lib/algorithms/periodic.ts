/**
 * The Local SGD family: workers step on their own gradients and average models now and then.
 *
 * - 'local' (specs §2.1): average every `period` (H) steps. H = 1 is synchronous SGD.
 * - 'stl' (STL-SGD, Shen et al. AAAI'21, §2.2): stage s runs T_s = stageSteps * 2^s steps at
 *   lr * lrDecay^s with period k_s = round(period * g^s), capped at T_s; g = 2 for IID data, sqrt 2
 *   for non-IID ('growth'). Every stage ends with a sync. IID rounds per stage stay constant.
 * - 'vrl' (VRL-SGD, Liang et al. 2019, §3): worker i steps with g_i - Delta_i; at a sync, before
 *   the models are overwritten, Delta_i += (mean(x) - x_i) / (sum of the lrs used in the period).
 *   The Delta_i sum to zero; with H = 1 it is synchronous SGD.
 * - 'cocod' (CoCoD-SGD, Shen et al. IJCAI'19, §4): at a boundary, wait for the average a of the
 *   snapshots sent one period ago, merge x = a + (x - s), snapshot s = x and start averaging it,
 *   then go on stepping while that average is in flight. Merging keeps the mean of the models.
 *
 * Momentum buffers stay local (the Overlap-Local-SGD and LIEC codes); evaluate averaged().
 * Tuning guide: H 4 to 50; non-IID data wants VRL-SGD or a small H; STL's stageSteps around a
 * tenth of the run with period 2 to 8.
 */
import { GradcompError } from '../native/errors';
import type { Optimizer } from '../optim/optimizer';
import { BaseDistributed } from './base';
import type { Exchange } from './exchange';

export interface PeriodicOptions {
  /** Steps between model averages (H, or k_1 for STL-SGD; default 8). */
  period?: number;
  /** STL-SGD: steps of the first stage (default 100). */
  stageSteps?: number;
  /** STL-SGD: 'iid' doubles the period per stage, 'non-iid' multiplies it by sqrt 2 (default 'iid'). */
  growth?: 'iid' | 'non-iid';
  /** STL-SGD: learning-rate factor per stage (default 0.5). */
  lrDecay?: number;
}

export type PeriodicAlgorithm = 'local' | 'stl' | 'vrl' | 'cocod';

export interface Stage { stage: number; start: number; steps: number; period: number; lrScale: number }

/** STL-SGD's schedule: the stage holding step t. */
export function stlStage(t: number, period: number, stageSteps: number, growth: 'iid' | 'non-iid', lrDecay: number): Stage {
  let start = 0;
  for (let s = 0; ; s++) {
    const steps = stageSteps * 2 ** s;
    if (t < start + steps) {
      const k = Math.min(steps, Math.max(1, Math.round(period * (growth === 'iid' ? 2 : Math.SQRT2) ** s)));
      return { stage: s, start, steps, period: k, lrScale: lrDecay ** s };
    }
    start += steps;
  }
}

export class PeriodicSgd extends BaseDistributed {
  readonly period: number;
  readonly stageSteps: number;
  readonly growth: 'iid' | 'non-iid';
  readonly lrDecay: number;
  #inflight: Promise<Float32Array> | undefined;
  readonly #baseLr: number;

  constructor(readonly algorithm: PeriodicAlgorithm, ex: Exchange, optimizer: Optimizer, o: PeriodicOptions = {}) {
    super(ex, optimizer);
    this.period = o.period ?? 8;
    this.stageSteps = o.stageSteps ?? 100;
    this.growth = o.growth ?? 'iid';
    this.lrDecay = o.lrDecay ?? 0.5;
    this.#baseLr = optimizer.lr;
  }

  /** The learning rate of step t and whether step t ends with a sync. */
  schedule(t: number): { lr: number; sync: boolean } {
    if (this.algorithm !== 'stl') return { lr: this.optimizer.lr, sync: (t + 1) % this.period === 0 };
    const s = stlStage(t, this.period, this.stageSteps, this.growth, this.lrDecay);
    const i = t - s.start;
    return { lr: this.#baseLr * s.lrScale, sync: (i + 1) % s.period === 0 || i + 1 === s.steps };
  }

  protected async doStep(p: Record<string, Float32Array>, g: Record<string, Float32Array>, t: number): Promise<{ lr: number; synced: boolean }> {
    const { lr, sync } = this.schedule(t);
    const d = this.layout!.total;
    if (this.algorithm === 'cocod' && t === 0 && !this.buffers.has('snapshot')) {
      // Bootstrap: the first "previous average" is that of the initial models.
      const s = this.flatten(p, this.buffer('snapshot', d));
      this.#inflight = this.ex.average(s.slice());
    }
    let step = g;
    if (this.algorithm === 'vrl') {
      const delta = this.split(this.buffer('delta', d));
      step = {};
      for (const n of Object.keys(g)) {
        const gi = g[n], di = delta[n], o = (step[n] = new Float32Array(gi.length));
        for (let i = 0; i < gi.length; i++) o[i] = gi[i] - di[i];
      }
    }
    this.optimizer.step(p, step, { lr });
    this.scalars.set('periodLr', (this.scalars.get('periodLr') ?? 0) + lr);
    if (!sync) return { lr, synced: false };
    if (this.algorithm === 'cocod') await this.#merge(p);
    else await this.#average(p);
    this.scalars.set('periodLr', 0);
    return { lr, synced: this.algorithm !== 'cocod' };
  }

  async #average(p: Record<string, Float32Array>): Promise<void> {
    const x = this.flatten(p);
    const old = this.algorithm === 'vrl' ? x.slice() : undefined;
    await this.ex.average(x);
    if (old) {
      // Delta_i += (mean x - x_i) / sum(lr): computed before x_i is overwritten (specs §3(e)).
      const delta = this.buffer('delta', x.length), inv = 1 / (this.scalars.get('periodLr') ?? 1);
      for (let i = 0; i < x.length; i++) delta[i] += (x[i] - old[i]) * inv;
    }
    this.unflatten(x, p);
  }

  async #merge(p: Record<string, Float32Array>): Promise<void> {
    await this.drain();
    if (!this.buffers.has('pending')) throw new GradcompError('ERR_GRADCOMP_INTERNAL', 'CoCoD-SGD: no model average arrived for this period');
    const d = this.layout!.total, a = this.buffer('pending', d), s = this.buffer('snapshot', d);
    const x = this.flatten(p);
    for (let i = 0; i < d; i++) x[i] = a[i] + (x[i] - s[i]);
    this.unflatten(x, p);
    s.set(x);
    this.buffers.delete('pending');
    this.#inflight = this.ex.average(x.slice());
  }

  override async drain(): Promise<void> {
    if (!this.#inflight) return;
    const a = await this.#inflight;
    this.#inflight = undefined;
    this.buffer('pending', a.length).set(a);
  }

  protected override assertIdle(): void {
    if (this.#inflight) throw new GradcompError('ERR_GRADCOMP_INVALID_ARG', 'a model average is still in flight: call await opt.drain() before state()', 'state');
  }
}
