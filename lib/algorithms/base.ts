/**
 * What every distributed optimizer shares: argument checks, the parameter layout (names, sizes,
 * shapes), the optimizer, step counting, stats, the first-step check that every rank starts from
 * the same model, the per-tensor step hook, and state()/load() of one documented State object
 * per algorithm (its arrays and counters; the class's doc comment is its tuning guide).
 */
import { asFloat32 } from '../checkpoint/values';
import { GradcompError, GradcompRangeError, GradcompTypeError, listed, typeError } from '../native/errors';
import { Tensor, dtypeOf } from '../tensor/tensor';
import type { Compressor } from '../compress/types';
import type { Optimizer } from '../optim/optimizer';
import { BusyClock, Exchange } from './exchange';
import { checkIdentical } from './identical';
import type { AlgorithmState, BaseOptions, DistributedOptimizer, DistributedStats, Layout, StepHandle, StepInfo, TensorMap } from './types';

export type { AlgorithmState, BaseOptions, DistributedOptimizer, DistributedStats, Layout, StepHandle, StepInfo, TensorMap } from './types';

function asF32(x: unknown, param: string): Float32Array {
  if (x instanceof Tensor) {
    if (x.dtype !== 'float32') throw typeError(param, 'a float32 Tensor', x);
    if (x.device !== 'cpu') throw typeError(param, 'a CPU Float32Array or tensor (the optimizers take CPU arrays in this release)', 'a CUDA tensor');
    return x.data as Float32Array;
  }
  if (dtypeOf(x) !== 'float32') throw typeError(param, 'a Float32Array or a float32 Tensor', x);
  return x as Float32Array;
}

/** 'array': a Float32Array; 'number': a counter. */
export type StateFields<T> = { [K in keyof T]-?: 'array' | 'number' };

export abstract class BaseDistributed<S extends object = Record<string, never>> implements DistributedOptimizer {
  abstract readonly algorithm: string;
  steps = 0;
  protected layout: Layout | undefined;
  /** Wall time with compression (encode or decode) running, overlapping tasks counted once. */
  protected readonly compressClock = new BusyClock();
  /** The algorithm's mutable state (see each class's State type). */
  protected st = {} as S;
  protected abstract readonly fields: StateFields<S>;
  #checked: boolean;

  constructor(protected readonly ex: Exchange, readonly optimizer: Optimizer, readonly compressor: Compressor | undefined,
    protected readonly opts: BaseOptions = {}) {
    this.#checked = opts.checkIdentical === false;
  }

  get rank(): number { return this.ex.rank; }
  get workers(): number { return this.ex.size; }

  /** Checks params (and grads) against each other and the layout fixed by the first step. */
  protected views(params: TensorMap, grads?: TensorMap): { p: Record<string, Float32Array>; g: Record<string, Float32Array> } {
    if (params === null || typeof params !== 'object') throw typeError('params', 'an object of named Float32Arrays or Tensors', params);
    if (grads !== undefined && (grads === null || typeof grads !== 'object')) throw typeError('grads', 'an object of named Float32Arrays or Tensors', grads);
    const p: Record<string, Float32Array> = {}, g: Record<string, Float32Array> = {};
    const names = Object.keys(params);
    if (names.length === 0) throw new GradcompRangeError('params', 'Expected at least one parameter in params');
    for (const name of names) {
      p[name] = asF32(params[name], `params.${name}`);
      if (grads !== undefined) {
        if (!(name in grads)) throw typeError(`grads.${name}`, `a gradient for parameter ${name}`, undefined);
        g[name] = asF32(grads[name], `grads.${name}`);
        if (g[name].length !== p[name].length) throw new GradcompRangeError(`grads.${name}`, `Expected grads.${name} to have ${p[name].length} elements but received ${g[name].length}`);
      }
    }
    if (grads !== undefined) for (const name of Object.keys(grads)) if (!(name in params)) throw new GradcompRangeError(`grads.${name}`, `grads.${name} has no parameter of that name`);
    if (!this.layout) this.layout = this.#layoutOf(params, p, names);
    else {
      const L = this.layout;
      if (names.length !== L.names.length || names.some((n, i) => n !== L.names[i] || p[n].length !== L.sizes[i])) {
        throw new GradcompRangeError('params', `Expected the same parameters as the first step (${L.names.map((n, i) => `${n}[${L.sizes[i]}]`).join(', ')})`);
      }
    }
    return { p, g };
  }

  #layoutOf(params: TensorMap, p: Record<string, Float32Array>, names: string[]): Layout {
    const given = this.opts.shapes ?? {};
    const sizes = names.map((n) => p[n].length), offsets: number[] = [], shapes: (readonly number[])[] = [], shaped: boolean[] = [];
    let total = 0;
    names.forEach((n, i) => {
      offsets.push(total);
      total += sizes[i];
      const t = params[n], s = given[n];
      if (s !== undefined && s.reduce((a, b) => a * b, 1) !== sizes[i]) throw new GradcompRangeError(`options.shapes.${n}`, `Expected a shape of ${sizes[i]} elements for ${n} but received [${s.join(', ')}]`);
      shapes.push(t instanceof Tensor ? t.shape : s ?? [sizes[i]]);
      shaped.push(t instanceof Tensor || s !== undefined);
    });
    const stray = Object.keys(given).find((n) => !names.includes(n));
    if (stray !== undefined) throw new GradcompTypeError(`options.shapes.${stray}`, `options.shapes has ${stray}, which is not one of the parameters (${listed(names)})`);
    return { names, sizes, offsets, shapes, shaped, total };
  }

  readonly #scratch = new Map<string, Float32Array>();

  /**
   * A scratch buffer of n floats kept across steps under `key` (not state): a step allocates
   * nothing (a fresh 100 MB buffer per step costs page faults and garbage collection).
   */
  protected scratch(key: string, n = this.layout!.total): Float32Array {
    let b = this.#scratch.get(key);
    if (!b || b.length !== n) this.#scratch.set(key, (b = this.ex.alloc(n)));
    return b;
  }

  /** The tensors of m, one after another, in `out` (default: the 'flat' scratch buffer). */
  protected flatten(m: Record<string, Float32Array>, out: Float32Array = this.scratch('flat')): Float32Array {
    const L = this.layout!;
    L.names.forEach((n, i) => out.set(m[n], L.offsets[i]));
    return out;
  }

  protected unflatten(flat: Float32Array, into: Record<string, Float32Array>): void {
    const L = this.layout!;
    L.names.forEach((n, i) => into[n].set(flat.subarray(L.offsets[i], L.offsets[i] + L.sizes[i])));
  }

  protected split(flat: Float32Array): Record<string, Float32Array> {
    const L = this.layout!, out: Record<string, Float32Array> = {};
    L.names.forEach((n, i) => { out[n] = flat.subarray(L.offsets[i], L.offsets[i] + L.sizes[i]); });
    return out;
  }

  /** A persistent array of the State (zeroed on creation). */
  protected arr<K extends keyof S>(key: K, n: number): Float32Array {
    const cur = this.st[key] as unknown;
    if (cur instanceof Float32Array) {
      if (cur.length !== n) throw new GradcompRangeError('state', `Expected ${this.algorithm} state ${String(key)} of length ${n} but it has ${cur.length} (a state of another model?)`);
      return cur;
    }
    const fresh = new Float32Array(n);
    (this.st as Record<K, unknown>)[key] = fresh;
    return fresh;
  }

  protected timedCompress<T>(fn: () => T): T {
    this.compressClock.enter();
    try { return fn(); } finally { this.compressClock.leave(); }
  }

  protected abstract doStep(p: Record<string, Float32Array>, g: Record<string, Float32Array>, t: number): Promise<{ lr: number; synced: boolean }>;

  async step(params: TensorMap, grads: TensorMap): Promise<StepInfo> {
    const { p, g } = this.views(params, grads);
    await this.#checkStart(p);
    const t = this.steps;
    const { lr, synced } = await this.doStep(p, g, t);
    this.steps = t + 1;
    this.optimizer.countStep();
    return { step: t, lr, synced };
  }

  /** The first step's check that every rank starts from the same parameters. */
  async #checkStart(p: Record<string, Float32Array>): Promise<void> {
    this.checkLoadedNames();
    if (this.#checked) return;
    this.#checked = true;
    await checkIdentical(this.ex, this.layout!.names.map((n) => [n, p[n]] as const));
  }

  /** By default the hook collects the gradients and runs step(); SyncSgd overlaps buckets instead. */
  beginStep(params: TensorMap): StepHandle {
    const grads: TensorMap = {};
    let ended = false;
    return {
      ready: (name, grad) => {
        if (ended) throw new GradcompError('ERR_GRADCOMP_INVALID_ARG', 'ready() after end()', 'name');
        if (!(name in params)) throw new GradcompRangeError('name', `${name} is not one of the parameters`);
        grads[name] = grad;
      },
      end: () => { ended = true; return this.step(params, grads); },
    };
  }

  /** True when every worker holds the same model after each step (no averaging needed). */
  protected get identicalModels(): boolean { return false; }

  async averaged(params: TensorMap): Promise<Record<string, Float32Array>> {
    const { p } = this.views(params);
    await this.drain();
    const flat = this.flatten(p, new Float32Array(this.layout!.total)); // the caller keeps it: a fresh copy
    if (!this.identicalModels) await this.ex.average(flat);
    return this.split(flat);
  }

  async synchronize(params: TensorMap): Promise<void> {
    const { p } = this.views(params);
    const avg = await this.averaged(params);
    for (const n of Object.keys(p)) p[n].set(avg[n]);
  }

  async drain(): Promise<void> { /* nothing in flight by default */ }

  stats(): DistributedStats {
    return { ...this.ex.traffic, steps: this.steps, compressMs: this.compressClock.total, denseBytes: 4 * (this.layout?.total ?? 0) * this.steps };
  }

  protected assertIdle(): void { /* overridden where communication can be in flight */ }

  state(): AlgorithmState {
    this.assertIdle();
    const buffers: Record<string, Float32Array> = {}, scalars: Record<string, number> = {};
    for (const [k, v] of Object.entries(this.st)) if (v instanceof Float32Array) buffers[k] = v.slice(); else if (typeof v === 'number') scalars[k] = v;
    return {
      format: 'gradcomp.algorithm-state', version: 2, algorithm: this.algorithm, rank: this.rank, workers: this.workers, step: this.steps,
      optimizer: this.optimizer.state(), ...(this.compressor ? { compressor: this.compressor.state() } : {}), buffers, scalars,
    };
  }

  load(state: AlgorithmState): void {
    if (state === null || typeof state !== 'object' || state.format !== 'gradcomp.algorithm-state') throw typeError('state', 'a gradcomp.algorithm-state object', state);
    if (state.version !== 1 && state.version !== 2) throw new GradcompRangeError('state.version', `Expected state version 1 or 2 but received ${String(state.version)}`);
    if (state.algorithm !== this.algorithm) throw new GradcompRangeError('state.algorithm', `Expected the state of a ${this.algorithm} optimizer but received ${String(state.algorithm)}`);
    if (state.workers !== this.workers || state.rank !== this.rank) {
      throw new GradcompRangeError('state.rank', `This state belongs to rank ${state.rank} of ${state.workers}; this optimizer is rank ${this.rank} of ${this.workers}`);
    }
    if (!Number.isInteger(state.step) || state.step < 0) throw typeError('state.step', 'an integer >= 0', state.step);
    if (state.buffers === null || typeof state.buffers !== 'object') throw typeError('state.buffers', 'an object of Float32Arrays', state.buffers);
    const fields = this.fields as Record<string, 'array' | 'number'>, next: Record<string, Float32Array | number> = {};
    for (const [k, v] of Object.entries(state.buffers)) {
      if (fields[k] !== 'array') throw typeError(`state.buffers.${k}`, `one of the ${this.algorithm} arrays (${Object.keys(fields).join(', ') || 'none'})`, k);
      next[k] = asFloat32(v, `state.buffers.${k}`);
    }
    for (const [k, v] of Object.entries(state.scalars ?? {})) {
      if (fields[k] !== 'number') throw typeError(`state.scalars.${k}`, `one of the ${this.algorithm} counters`, k);
      if (typeof v !== 'number') throw typeError(`state.scalars.${k}`, 'a number', v);
      next[k] = v;
    }
    if (this.compressor && state.compressor === undefined) throw typeError('state.compressor', 'the compressor state', undefined);
    this.optimizer.load(state.optimizer);
    if (this.compressor) this.compressor.load(state.compressor!);
    this.st = next as S;
    this.steps = state.step;
    this.#checked = true;
    this.#loadedNames = [...Object.keys(state.optimizer?.tensors ?? {}), ...Object.keys((state.compressor as { tensors?: object } | undefined)?.tensors ?? {})];
  }

  /** Tensor names a loaded state carries: checked against the layout on the next step, so renamed tensors are not silently dropped. */
  #loadedNames: string[] | undefined;

  protected checkLoadedNames(): void {
    if (!this.#loadedNames || !this.layout) return;
    const known = new Set(this.layout.names), unknown = [...new Set(this.#loadedNames.filter((n) => !known.has(n)))];
    this.#loadedNames = undefined;
    if (unknown.length) {
      throw new GradcompError('ERR_GRADCOMP_INVALID_ARG', `the loaded state holds tensors this model does not have (${unknown.slice(0, 5).join(', ')}${unknown.length > 5 ? ', ...' : ''}): ` +
        `its tensors were saved under other names (the model's are ${this.layout.names.slice(0, 5).join(', ')}${this.layout.names.length > 5 ? ', ...' : ''})`, 'state');
    }
  }
}
