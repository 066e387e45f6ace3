/**
 * The Local SGD family: workers step on their own gradients and average models now and then.
 * This file has the shared flow and the two plain schedules; VRL-SGD and CoCoD-SGD (vrl.ts,
 * cocod.ts) change what a local step uses and what a sync does.
 *
 * - 'local' (Local SGD, FedAvg with full participation): average every `period` (H) steps.
 *   H = 1 is synchronous SGD.
 * - 'stl' (STL-SGD, Shen et al. AAAI'21): stage s runs T_s = stageSteps * 2^s steps at
 *   lr * lrDecay^s with period k_s = round(period * g^s), capped at T_s; g = 2 for IID data,
 *   sqrt 2 for non-IID ('growth'). Every stage ends with a sync. IID rounds per stage stay constant.
 *
 * Momentum buffers stay local (the Overlap-Local-SGD and LIEC codes); evaluate averaged().
 * Tuning guide: H 4 to 50; non-IID data wants VRL-SGD or a small H; STL's stageSteps around a
 * tenth of the run with period 2 to 8.
 */
import type { Optimizer } from '../optim/optimizer';
import { BaseDistributed, BaseOptions, StateFields } from './base';
import type { Exchange } from './exchange';

export interface PeriodicOptions extends BaseOptions {
  /** Steps between model averages (H, or k_1 for STL-SGD; default 8). */
  period?: number;
  /** STL-SGD: steps of the first stage (default 100). */
  stageSteps?: number;
  /**
   * STL-SGD: 'iid' doubles the period per stage, 'non-iid' multiplies it by sqrt 2 (default 'iid');
   * 'fixed' keeps it: Local SGD on STL-SGD's stagewise learning rate, the baseline of its claim.
   */
  growth?: 'iid' | 'non-iid' | 'fixed';
  /** STL-SGD: learning-rate factor per stage (default 0.5). */
  lrDecay?: number;
}

export interface Stage { stage: number; start: number; steps: number; period: number; lrScale: number }

/** STL-SGD's schedule: the stage holding step t. */
export function stlStage(t: number, period: number, stageSteps: number, growth: 'iid' | 'non-iid' | 'fixed', lrDecay: number): Stage {
  let start = 0;
  for (let s = 0; ; s++) {
    const steps = stageSteps * 2 ** s;
    if (t < start + steps) {
      const k = Math.min(steps, Math.max(1, Math.round(period * (growth === 'iid' ? 2 : growth === 'fixed' ? 1 : Math.SQRT2) ** s)));
      return { stage: s, start, steps, period: k, lrScale: lrDecay ** s };
    }
    start += steps;
  }
}

export abstract class PeriodicSgd<S extends object> extends BaseDistributed<S> {
  readonly period: number;

  constructor(ex: Exchange, optimizer: Optimizer, readonly o: PeriodicOptions = {}) {
    super(ex, optimizer, undefined, o);
    this.period = o.period ?? 8;
  }

  /** The learning rate of step t and whether step t ends with a sync. */
  schedule(t: number): { lr: number; sync: boolean } {
    return { lr: this.optimizer.lr, sync: (t + 1) % this.period === 0 };
  }

  /** One local step (VRL-SGD corrects the gradient first). */
  protected async localStep(p: Record<string, Float32Array>, g: Record<string, Float32Array>, lr: number, _t: number): Promise<void> {
    await Promise.all(this.layout!.names.map((n) => this.optimizer.update(n, p[n], g[n], { lr, async: true })));
  }

  /** The end of a period: the models become their average (CoCoD-SGD merges instead). */
  protected async sync(p: Record<string, Float32Array>): Promise<void> {
    const x = this.flatten(p);
    await this.ex.average(x);
    this.unflatten(x, p);
  }

  protected async doStep(p: Record<string, Float32Array>, g: Record<string, Float32Array>, t: number): Promise<{ lr: number; synced: boolean }> {
    const { lr, sync } = this.schedule(t);
    await this.localStep(p, g, lr, t);
    if (!sync) return { lr, synced: false };
    await this.sync(p);
    return { lr, synced: this.syncAverages };
  }

  /** Whether a sync leaves every worker with the average model (CoCoD-SGD's merge does not). */
  protected get syncAverages(): boolean { return true; }
}

/** Local SGD: no state beyond the optimizer's. */
export class LocalSgd extends PeriodicSgd<Record<string, never>> {
  readonly algorithm: string = 'local';
  protected readonly fields: StateFields<Record<string, never>> = {};
}

/** STL-SGD: the period grows and the lr falls stage by stage (the stage follows from the step counter; no other state). */
export class StlSgd extends PeriodicSgd<Record<string, never>> {
  readonly algorithm = 'stl';
  protected readonly fields: StateFields<Record<string, never>> = {};
  readonly #baseLr: number;

  constructor(ex: Exchange, optimizer: Optimizer, o: PeriodicOptions = {}) {
    super(ex, optimizer, o);
    this.#baseLr = optimizer.lr;
  }

  override schedule(t: number): { lr: number; sync: boolean } {
    const s = stlStage(t, this.period, this.o.stageSteps ?? 100, this.o.growth ?? 'iid', this.o.lrDecay ?? 0.5);
    const i = t - s.start;
    return { lr: this.#baseLr * s.lrScale, sync: (i + 1) % s.period === 0 || i + 1 === s.steps };
  }
}
