/**
 * CoCoD-SGD (Shen et al., IJCAI'19): computation and communication decoupled. At a period's end
 * the worker waits for the average a of the snapshots sent one period ago, merges x = a + (x - s),
 * snapshots s = x and starts averaging it, then goes on stepping while that average is in flight.
 * Merging keeps the mean of the models. Call drain() before state().
 *
 * Tuning guide: as Local SGD; the overlap pays where the average takes as long as a few local
 * steps (the MPI backend's communication thread makes it real; the local backend progresses it
 * between steps).
 */
import { GradcompError } from '../native/errors';
import type { StateFields } from './base';
import { PeriodicSgd } from './periodic';

/** snapshot: s, the model sent for averaging at the last boundary; pending: the average that arrived for it (until merged). */
export interface CocodState { snapshot?: Float32Array; pending?: Float32Array }

export class CocodSgd extends PeriodicSgd<CocodState> {
  readonly algorithm = 'cocod';
  protected readonly fields: StateFields<CocodState> = { snapshot: 'array', pending: 'array' };
  #inflight: Promise<Float32Array> | undefined;

  protected override async doStep(p: Record<string, Float32Array>, g: Record<string, Float32Array>, t: number): Promise<{ lr: number; synced: boolean }> {
    if (t === 0 && this.st.snapshot === undefined) {
      // Bootstrap: the first "previous average" is that of the initial models.
      const s = this.flatten(p, this.arr('snapshot', this.layout!.total));
      const fly = this.scratch('inflight');
      fly.set(s);
      this.#inflight = this.ex.average(fly);
    }
    return super.doStep(p, g, t);
  }

  protected override async sync(p: Record<string, Float32Array>): Promise<void> {
    await this.drain();
    if (this.st.pending === undefined) throw new GradcompError('ERR_GRADCOMP_INTERNAL', 'CoCoD-SGD: no model average arrived for this period');
    const d = this.layout!.total, a = this.st.pending, s = this.arr('snapshot', d);
    const x = this.flatten(p);
    for (let i = 0; i < d; i++) x[i] = a[i] + (x[i] - s[i]);
    this.unflatten(x, p);
    s.set(x);
    delete this.st.pending;
    const fly = this.scratch('inflight');
    fly.set(x);
    this.#inflight = this.ex.average(fly);
  }

  override async drain(): Promise<void> {
    if (!this.#inflight) return;
    const a = await this.#inflight;
    this.#inflight = undefined;
    this.arr('pending', a.length).set(a);
  }

  protected override get syncAverages(): boolean { return false; }

  protected override assertIdle(): void {
    if (this.#inflight) throw new GradcompError('ERR_GRADCOMP_INVALID_ARG', 'a model average is still in flight: call await opt.drain() before state()', 'state');
  }
}
