/**
 * Optimizers over named Float32Array parameters. `step(params, grads)` updates params in place
 * through native kernels at the memory floor; `update(name, w, g, ...)` does one tensor (what the
 * distributed optimizers call per bucket, async for large tensors). Each optimizer keeps its state
 * in one documented object per tensor; state()/load() checkpoint it (typed arrays; load() also
 * takes the number arrays of version 1 snapshots), so a resumed run continues bit-identically.
 */
import { asFloat32 } from '../checkpoint/values';
import { GradcompRangeError, typeError } from '../native/errors';
import type { LowRankGrad, QuantizedGrad, SparseGrad } from '../ops/kernels';
import { dtypeOf } from '../tensor/tensor';

export interface OptimizerState<T extends object = Record<string, Float32Array | number>> {
  format: 'gradcomp.optimizer-state';
  version: 2;
  type: string;
  step: number;
  tensors: Record<string, T>;
}

export interface UpdateOptions {
  /** Learning rate of this update (default: the optimizer's lr). */
  lr?: number;
  /** g is multiplied by this first (the distributed optimizers fold 1/workers in here). */
  gradScale?: number;
}

export interface Optimizer {
  readonly type: string;
  /** Learning rate used when step() is not given one; settable for schedules. */
  lr: number;
  step(params: Record<string, Float32Array>, grads: Record<string, Float32Array>, opts?: UpdateOptions): void;
  /** One tensor's update (off the main thread for large tensors when `async`). Does not count a step. */
  update(name: string, w: Float32Array, g: Float32Array, opts?: UpdateOptions & { async?: boolean }): void | Promise<void>;
  /**
   * Optional: one tensor's update from a gradient given as low-rank factors (PowerSGD's average),
   * without forming it: the same result, bit for bit, as forming g = P Qᵀ (and residual -= g) and
   * calling update(), in one pass over memory instead of three. The distributed optimizers use it
   * when it is there.
   */
  updateLowRank?(name: string, w: Float32Array, g: LowRankGrad, opts?: UpdateOptions & { async?: boolean }): void | Promise<void>;
  /**
   * Optional: one tensor's update from a sparse gradient (top-k's payloads, summed in order)
   * without forming it: the same bits as decoding into zeros and calling update(). The
   * distributed optimizers use it when it is there.
   */
  updateSparse?(name: string, w: Float32Array, g: SparseGrad, opts?: UpdateOptions & { async?: boolean }): void | Promise<void>;
  /** Optional: one tensor's update from QSGD payloads, decoded inside it (the same bits as decoding their sum, then update()); synchronous. */
  updateQuantized?(name: string, w: Float32Array, g: QuantizedGrad, opts?: UpdateOptions): void;
  /** Counts one step (the distributed optimizers update tensor by tensor). */
  countStep(): void;
  state(): OptimizerState;
  load(state: OptimizerState | { format: 'gradcomp.optimizer-state'; version: 1; type: string; step: number; tensors: Record<string, Record<string, number[] | number>> }): void;
}

/** 'array': a Float32Array of the tensor's size; 'number': a scalar. */
export type OptimizerFields<T> = { [K in keyof T]-?: 'array' | 'number' };

export abstract class BaseOptimizer<T extends object> implements Optimizer {
  abstract readonly type: string;
  lr: number;
  protected steps = 0;
  protected readonly tensors = new Map<string, T>();
  protected abstract readonly fields: OptimizerFields<T>;

  constructor(lr: unknown) {
    if (typeof lr !== 'number' || !(lr >= 0) || !Number.isFinite(lr)) throw typeError('options.lr', 'a finite number >= 0', lr);
    this.lr = lr;
  }

  /** An optional numeric option: undefined when absent, else checked with `ok`. */
  protected static option(v: unknown, name: string, ok: (x: number) => boolean, what: string): number | undefined {
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !ok(v)) throw typeError(`options.${name}`, what, v);
    return v;
  }

  /** The update of one tensor with validated arguments. */
  protected abstract apply(t: T, w: Float32Array, g: Float32Array, lr: number, gradScale: number, async: boolean): void | Promise<void>;

  protected stateOf(name: string): T {
    let t = this.tensors.get(name);
    if (!t) this.tensors.set(name, (t = {} as T));
    return t;
  }

  protected rates(opts: UpdateOptions): { lr: number; gradScale: number } {
    const lr = opts.lr ?? this.lr, gradScale = opts.gradScale ?? 1;
    if (typeof lr !== 'number' || !(lr >= 0) || !Number.isFinite(lr)) throw typeError('opts.lr', 'a finite number >= 0', lr);
    if (typeof gradScale !== 'number' || !Number.isFinite(gradScale)) throw typeError('opts.gradScale', 'a finite number', gradScale);
    return { lr, gradScale };
  }

  update(name: string, w: Float32Array, g: Float32Array, opts: UpdateOptions & { async?: boolean } = {}): void | Promise<void> {
    const { lr, gradScale } = this.rates(opts);
    BaseOptimizer.checkWeights(w);
    return this.apply(this.stateOf(name), w, g, lr, gradScale, opts.async === true && w.length >= 1 << 16);
  }

  /** w must be a Float32Array (before any state is sized from it). */
  protected static checkWeights(w: unknown): asserts w is Float32Array {
    if (dtypeOf(w) !== 'float32') throw typeError('w', 'a Float32Array', w);
  }

  countStep(): void {
    this.steps++;
  }

  step(params: Record<string, Float32Array>, grads: Record<string, Float32Array>, opts: UpdateOptions = {}): void {
    if (params === null || typeof params !== 'object') throw typeError('params', 'an object of named Float32Arrays', params);
    if (grads === null || typeof grads !== 'object') throw typeError('grads', 'an object of named Float32Arrays', grads);
    if (Array.isArray(params)) throw typeError('params', 'an object of named Float32Arrays', params);
    if (Array.isArray(grads)) throw typeError('grads', 'an object of named Float32Arrays', grads);
    // A gradient with no parameter would be dropped without a word: refuse it (a typo in a name, a missing tensor).
    for (const name of Object.keys(grads)) {
      if (!Object.prototype.hasOwnProperty.call(params, name)) throw typeError(`grads.${name}`, `a gradient of one of the params (${Object.keys(params).join(', ') || 'none given'})`, grads[name]);
    }
    const { lr, gradScale } = this.rates(opts);
    for (const [name, w] of Object.entries(params)) {
      const g = grads[name];
      if (dtypeOf(w) !== 'float32') throw typeError(`params.${name}`, 'a Float32Array', w);
      if (dtypeOf(g) !== 'float32') throw typeError(`grads.${name}`, 'a Float32Array', g);
      if (g.length !== w.length) throw new GradcompRangeError(`grads.${name}`, `Expected grads.${name} to have ${w.length} elements but received ${g.length}`);
    }
    this.steps++;
    for (const [name, w] of Object.entries(params)) void this.apply(this.stateOf(name), w, grads[name], lr, gradScale, false);
  }

  state(): OptimizerState {
    const tensors: OptimizerState['tensors'] = {};
    for (const [name, t] of this.tensors) {
      tensors[name] = Object.fromEntries(Object.entries(t).filter(([, v]) => v !== undefined).map(([k, v]) => [k, v instanceof Float32Array ? v.slice() : v]));
    }
    return { format: 'gradcomp.optimizer-state', version: 2, type: this.type, step: this.steps, tensors };
  }

  load(state: Parameters<Optimizer['load']>[0]): void {
    if (state === null || typeof state !== 'object' || state.format !== 'gradcomp.optimizer-state') throw typeError('state', 'a gradcomp.optimizer-state object', state);
    if (state.version !== 1 && state.version !== 2) throw new GradcompRangeError('state.version', `Expected state version 1 or 2 but received ${String((state as { version: unknown }).version)}`);
    if (state.type !== this.type) throw new GradcompRangeError('state.type', `Expected state of a ${this.type} optimizer but received ${String(state.type)}`);
    if (!Number.isInteger(state.step) || state.step < 0) throw typeError('state.step', 'an integer >= 0', state.step);
    const fields = this.fields as Record<string, 'array' | 'number'>, loaded = new Map<string, T>();
    for (const [name, t] of Object.entries((state.tensors ?? {}) as Record<string, Record<string, unknown>>)) {
      const o: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(t ?? {})) {
        const param = `state.tensors.${name}.${k}`, key = this.legacyKey(k);
        if (key === null) continue;
        if (!(key in fields)) throw typeError(param, `one of the ${this.type} state fields (${Object.keys(fields).join(', ')})`, k);
        if (fields[key] === 'number') {
          if (typeof v !== 'number') throw typeError(param, 'a number', v);
          o[key] = v;
        } else o[key] = asFloat32(v, param);
      }
      loaded.set(name, o as T);
    }
    this.tensors.clear();
    for (const [n, t] of loaded) this.tensors.set(n, t);
    this.steps = state.step;
  }

  /** Version 1 snapshots used other key names: map them (null drops a key). */
  protected legacyKey(k: string): string | null {
    return k;
  }
}
