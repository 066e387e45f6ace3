/**
 * Optimizers over named Float32Array parameters. `step(params, grads)` updates params in place;
 * state()/load() checkpoint every buffer and counter by parameter name (JSON-safe; float32
 * values round-trip exactly), so a resumed run continues bit-identically.
 */
import { GradcompRangeError, typeError } from '../native/errors';
import { dtypeOf } from '../tensor/tensor';

export interface OptimizerState {
  format: 'gradcomp.optimizer-state';
  version: 1;
  type: string;
  step: number;
  tensors: Record<string, Record<string, number[] | number>>;
}

export interface Optimizer {
  readonly type: string;
  /** Learning rate used when step() is not given one; settable for schedules. */
  lr: number;
  step(params: Record<string, Float32Array>, grads: Record<string, Float32Array>, opts?: { lr?: number }): void;
  state(): OptimizerState;
  load(state: OptimizerState): void;
}

export abstract class BaseOptimizer implements Optimizer {
  abstract readonly type: string;
  lr: number;
  protected steps = 0;
  protected readonly tensors = new Map<string, Record<string, Float32Array | number>>();

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

  protected abstract update(name: string, w: Float32Array, g: Float32Array, lr: number): void;

  step(params: Record<string, Float32Array>, grads: Record<string, Float32Array>, opts: { lr?: number } = {}): void {
    if (params === null || typeof params !== 'object') throw typeError('params', 'an object of named Float32Arrays', params);
    if (grads === null || typeof grads !== 'object') throw typeError('grads', 'an object of named Float32Arrays', grads);
    const lr = opts.lr ?? this.lr;
    if (typeof lr !== 'number' || !(lr >= 0) || !Number.isFinite(lr)) throw typeError('opts.lr', 'a finite number >= 0', lr);
    for (const [name, w] of Object.entries(params)) {
      const g = grads[name];
      if (dtypeOf(w) !== 'float32') throw typeError(`params.${name}`, 'a Float32Array', w);
      if (dtypeOf(g) !== 'float32') throw typeError(`grads.${name}`, 'a Float32Array', g);
      if (g.length !== w.length) throw new GradcompRangeError(`grads.${name}`, `Expected grads.${name} to have ${w.length} elements but received ${g.length}`);
    }
    this.steps++;
    for (const [name, w] of Object.entries(params)) this.update(name, w, grads[name], lr);
  }

  protected buffer(name: string, key: string, n: number): Float32Array {
    let t = this.tensors.get(name);
    if (!t) this.tensors.set(name, (t = {}));
    const cur = t[key];
    if (cur instanceof Float32Array && cur.length === n) return cur;
    const fresh = new Float32Array(n);
    t[key] = fresh;
    return fresh;
  }

  protected scalar(name: string, key: string): number | undefined {
    const v = this.tensors.get(name)?.[key];
    return typeof v === 'number' ? v : undefined;
  }

  protected setScalar(name: string, key: string, v: number): void {
    let t = this.tensors.get(name);
    if (!t) this.tensors.set(name, (t = {}));
    t[key] = v;
  }

  state(): OptimizerState {
    const tensors: OptimizerState['tensors'] = {};
    for (const [name, t] of this.tensors) {
      tensors[name] = Object.fromEntries(Object.entries(t).map(([k, v]) => [k, v instanceof Float32Array ? Array.from(v) : v]));
    }
    return { format: 'gradcomp.optimizer-state', version: 1, type: this.type, step: this.steps, tensors };
  }

  load(state: OptimizerState): void {
    if (state === null || typeof state !== 'object' || state.format !== 'gradcomp.optimizer-state') throw typeError('state', 'a gradcomp.optimizer-state object', state);
    if (state.version !== 1) throw new GradcompRangeError('state.version', `Expected state version 1 but received ${String(state.version)}`);
    if (state.type !== this.type) throw new GradcompRangeError('state.type', `Expected state of a ${this.type} optimizer but received ${String(state.type)}`);
    this.tensors.clear();
    this.steps = state.step;
    for (const [name, t] of Object.entries(state.tensors)) {
      this.tensors.set(name, Object.fromEntries(Object.entries(t).map(([k, v]) => {
        if (typeof v === 'number') return [k, v];
        if (Array.isArray(v)) return [k, Float32Array.from(v)];
        throw typeError(`state.tensors.${name}.${k}`, 'a number or an array of numbers', v);
      })));
    }
  }
}
