/**
 * What every distributed optimizer shares: argument checks, the parameter layout (names, sizes,
 * offsets into one flat vector), the base optimizer, step counting, stats, and one serializable
 * state object (named float buffers plus counters) for state()/load().
 */
import { performance } from 'node:perf_hooks';
import { GradcompRangeError, typeError } from '../native/errors';
import { Tensor, dtypeOf } from '../tensor/tensor';
import type { Compressor, CompressorState } from '../compress/types';
import type { Optimizer, OptimizerState } from '../optim/optimizer';
import { Exchange, TrafficStats } from './exchange';

/** Named parameters or gradients: Float32Arrays or float32 CPU Tensors (used in place). */
export type TensorMap = Record<string, Float32Array | Tensor>;

export interface StepInfo {
  /** The step just taken (0-based). */
  step: number;
  /** The learning rate it used. */
  lr: number;
  /** True when this step ended with the workers' models averaged (or identical by construction). */
  synced: boolean;
}

export interface DistributedStats extends TrafficStats {
  steps: number;
  /** Wall time in compression and decompression, ms. */
  compressMs: number;
  /** What dense data-parallel SGD would have sent by now: 4 bytes x d x steps. */
  denseBytes: number;
}

export interface AlgorithmState {
  format: 'gradcomp.algorithm-state';
  version: 1;
  algorithm: string;
  rank: number;
  workers: number;
  step: number;
  optimizer: OptimizerState;
  compressor?: CompressorState;
  /** Algorithm buffers (residuals, server error, corrections, snapshots) and counters. */
  buffers: Record<string, number[]>;
  scalars: Record<string, number>;
}

export interface Layout {
  names: string[];
  sizes: number[];
  offsets: number[];
  shapes: (readonly number[])[];
  /** Whether the shape came from a Tensor (a Float32Array's [n] says nothing about its rank). */
  shaped: boolean[];
  total: number;
}

export interface DistributedOptimizer {
  readonly algorithm: string;
  /** The base optimizer (its lr may be changed between steps) and the compressor, if any. */
  readonly optimizer: Optimizer;
  readonly compressor?: Compressor;
  /** Steps taken so far. */
  readonly steps: number;
  /** One training step: updates params in place from this worker's grads. Every rank calls it. */
  step(params: TensorMap, grads: TensorMap): Promise<StepInfo>;
  /** A collective: copies of the workers' average model (params are left alone). */
  averaged(params: TensorMap): Promise<Record<string, Float32Array>>;
  /** A collective: every worker's params become the average (Local SGD family: end of training). */
  synchronize(params: TensorMap): Promise<void>;
  /** Waits for communication still in flight (CoCoD-SGD); needed before state(). */
  drain(): Promise<void>;
  stats(): DistributedStats;
  /** This rank's whole state: optimizer, compressor, algorithm buffers, schedule position. */
  state(): AlgorithmState;
  load(state: AlgorithmState): void;
}

function asF32(x: unknown, param: string): Float32Array {
  if (x instanceof Tensor) {
    if (x.dtype !== 'float32') throw typeError(param, 'a float32 Tensor', x);
    if (x.device !== 'cpu') throw typeError(param, 'a CPU Float32Array or tensor (the optimizers take CPU arrays in this release)', 'a CUDA tensor');
    return x.data as Float32Array;
  }
  if (dtypeOf(x) !== 'float32') throw typeError(param, 'a Float32Array or a float32 Tensor', x);
  return x as Float32Array;
}

export abstract class BaseDistributed implements DistributedOptimizer {
  abstract readonly algorithm: string;
  steps = 0;
  protected layout: Layout | undefined;
  protected compressMs = 0;
  protected readonly buffers = new Map<string, Float32Array>();
  protected readonly scalars = new Map<string, number>();

  constructor(protected readonly ex: Exchange, readonly optimizer: Optimizer, readonly compressor?: Compressor) {}

  get rank(): number { return this.ex.rank; }
  get workers(): number { return this.ex.size; }

  /** Checks params and grads against each other and the layout fixed by the first step. */
  protected views(params: TensorMap, grads?: TensorMap): { p: Record<string, Float32Array>; g: Record<string, Float32Array> } {
    if (params === null || typeof params !== 'object') throw typeError('params', 'an object of named Float32Arrays or Tensors', params);
    if (grads !== undefined && (grads === null || typeof grads !== 'object')) throw typeError('grads', 'an object of named Float32Arrays or Tensors', grads);
    const p: Record<string, Float32Array> = {}, g: Record<string, Float32Array> = {};
    const names = Object.keys(params);
    if (names.length === 0) throw new GradcompRangeError('params', 'Expected at least one parameter in params');
    const shapes: (readonly number[])[] = [], shaped: boolean[] = [];
    for (const name of names) {
      p[name] = asF32(params[name], `params.${name}`);
      const t = params[name];
      shapes.push(t instanceof Tensor ? t.shape : [p[name].length]);
      shaped.push(t instanceof Tensor);
      if (grads !== undefined) {
        g[name] = asF32(grads[name], `grads.${name}`);
        if (g[name].length !== p[name].length) throw new GradcompRangeError(`grads.${name}`, `Expected grads.${name} to have ${p[name].length} elements but received ${g[name].length}`);
      }
    }
    if (grads !== undefined) for (const name of Object.keys(grads)) if (!(name in params)) throw new GradcompRangeError(`grads.${name}`, `grads.${name} has no parameter of that name`);
    if (!this.layout) {
      const sizes = names.map((n) => p[n].length), offsets: number[] = [];
      let total = 0;
      for (const s of sizes) { offsets.push(total); total += s; }
      this.layout = { names, sizes, offsets, shapes, shaped, total };
    } else {
      const L = this.layout;
      if (names.length !== L.names.length || names.some((n, i) => n !== L.names[i] || p[n].length !== L.sizes[i])) {
        throw new GradcompRangeError('params', `Expected the same parameters as the first step (${L.names.map((n, i) => `${n}[${L.sizes[i]}]`).join(', ')})`);
      }
    }
    return { p, g };
  }

  protected flatten(m: Record<string, Float32Array>, out: Float32Array = new Float32Array(this.layout!.total)): Float32Array {
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

  /** A persistent named buffer (zeroed on creation), part of state(). */
  protected buffer(key: string, n: number): Float32Array {
    let b = this.buffers.get(key);
    if (!b || b.length !== n) this.buffers.set(key, (b = new Float32Array(n)));
    return b;
  }

  protected timedCompress<T>(fn: () => T): T {
    const t0 = performance.now();
    try { return fn(); } finally { this.compressMs += performance.now() - t0; }
  }

  protected abstract doStep(p: Record<string, Float32Array>, g: Record<string, Float32Array>, t: number): Promise<{ lr: number; synced: boolean }>;

  async step(params: TensorMap, grads: TensorMap): Promise<StepInfo> {
    const { p, g } = this.views(params, grads);
    const t = this.steps;
    const { lr, synced } = await this.doStep(p, g, t);
    this.steps = t + 1;
    return { step: t, lr, synced };
  }

  /** True when every worker holds the same model after each step (no averaging needed). */
  protected get identicalModels(): boolean { return false; }

  async averaged(params: TensorMap): Promise<Record<string, Float32Array>> {
    const { p } = this.views(params);
    await this.drain();
    const flat = this.flatten(p);
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
    return { ...this.ex.traffic, steps: this.steps, compressMs: this.compressMs, denseBytes: 4 * (this.layout?.total ?? 0) * this.steps };
  }

  protected assertIdle(): void { /* overridden where communication can be in flight */ }

  state(): AlgorithmState {
    this.assertIdle();
    return {
      format: 'gradcomp.algorithm-state', version: 1, algorithm: this.algorithm, rank: this.rank, workers: this.workers, step: this.steps,
      optimizer: this.optimizer.state(),
      ...(this.compressor ? { compressor: this.compressor.state() } : {}),
      buffers: Object.fromEntries([...this.buffers].map(([k, v]) => [k, Array.from(v)])),
      scalars: Object.fromEntries(this.scalars),
    };
  }

  load(state: AlgorithmState): void {
    if (state === null || typeof state !== 'object' || state.format !== 'gradcomp.algorithm-state') throw typeError('state', 'a gradcomp.algorithm-state object', state);
    if (state.version !== 1) throw new GradcompRangeError('state.version', `Expected state version 1 but received ${String(state.version)}`);
    if (state.algorithm !== this.algorithm) throw new GradcompRangeError('state.algorithm', `Expected the state of a ${this.algorithm} optimizer but received ${String(state.algorithm)}`);
    if (state.workers !== this.workers || state.rank !== this.rank) {
      throw new GradcompRangeError('state.rank', `This state belongs to rank ${state.rank} of ${state.workers}; this optimizer is rank ${this.rank} of ${this.workers}`);
    }
    if (!Number.isInteger(state.step) || state.step < 0) throw typeError('state.step', 'an integer >= 0', state.step);
    if (state.buffers === null || typeof state.buffers !== 'object') throw typeError('state.buffers', 'an object of number arrays', state.buffers);
    for (const [k, v] of Object.entries(state.buffers)) if (!Array.isArray(v)) throw typeError(`state.buffers.${k}`, 'an array of numbers', v);
    for (const [k, v] of Object.entries(state.scalars ?? {})) if (typeof v !== 'number') throw typeError(`state.scalars.${k}`, 'a number', v);
    if (this.compressor && state.compressor === undefined) throw typeError('state.compressor', 'the compressor state', undefined);
    this.optimizer.load(state.optimizer);
    if (this.compressor) this.compressor.load(state.compressor!);
    this.buffers.clear();
    for (const [k, v] of Object.entries(state.buffers)) this.buffers.set(k, Float32Array.from(v));
    this.scalars.clear();
    for (const [k, v] of Object.entries(state.scalars ?? {})) this.scalars.set(k, v);
    this.steps = state.step;
  }
}
