/** Shared machinery: sessions, per-tensor state slots, error-feedback memory, state and stats. */
import { performance } from 'node:perf_hooks';
import { GradcompError, GradcompRangeError, typeError } from '../native/errors';
import type { Compressor, CompressorState, Round, RoundResult, Session, StepContext, TensorStats } from './types';

/** A session driven by a list of rounds: `next` turns each result into a round or the final result. */
export class ChainSession implements Session {
  round: Round | null;
  #result: Float32Array | undefined;
  #index = 0;
  readonly #next: (result: RoundResult, index: number) => Round | Float32Array;
  readonly #onDone: (sent: number) => void;
  #sent: number;

  constructor(first: Round, next: (result: RoundResult, index: number) => Round | Float32Array, onDone: (sentBytes: number) => void) {
    this.round = first;
    this.#next = next;
    this.#onDone = onDone;
    this.#sent = first.data.byteLength;
  }

  receive(result: RoundResult): void {
    if (this.round === null) throw new GradcompError('ERR_GRADCOMP_INVALID_ARG', 'receive() called after the last round', 'result');
    const out = this.#next(result, this.#index++);
    if (out instanceof Float32Array) {
      this.round = null;
      this.#result = out;
      this.#onDone(this.#sent);
    } else {
      this.round = out;
      this.#sent += out.data.byteLength;
    }
  }

  result(): Float32Array {
    if (this.#result === undefined) throw new GradcompError('ERR_GRADCOMP_INVALID_ARG', 'result() called before every round was received', 'session');
    return this.#result;
  }
}

export function workersOf(ctx: StepContext): { rank: number; workers: number } {
  return { rank: ctx.rank ?? 0, workers: ctx.workers ?? 1 };
}

export function asF32(result: RoundResult, what: string): Float32Array {
  if (Object.prototype.toString.call(result) !== '[object Float32Array]') throw typeError('result', `the ${what} Float32Array`, result);
  return result as Float32Array;
}

export function asPayloads(result: RoundResult, workers: number): Uint8Array[] {
  if (!Array.isArray(result) || result.length !== workers) {
    throw typeError('result', `an array of ${workers} payloads (one per worker)`, result);
  }
  return result;
}

type Slot = Float32Array | number;

export abstract class BaseCompressor implements Compressor {
  abstract readonly type: string;
  abstract readonly summable: boolean;
  /** Per tensor: named Float32Array slots ('residual', 'q', 'momentum', ...) and counters. */
  protected readonly tensors = new Map<string, Record<string, Slot>>();
  readonly #stats = new Map<string, TensorStats>();

  abstract begin(name: string, grad: Float32Array, ctx: StepContext): Promise<Session>;

  residual(name: string): Float32Array | undefined {
    const r = this.tensors.get(name)?.residual;
    return r instanceof Float32Array ? r : undefined;
  }

  /** The Float32Array slot `key` of tensor `name`, created zero-filled with length n. */
  protected slot(name: string, key: string, n: number): Float32Array {
    let t = this.tensors.get(name);
    if (!t) this.tensors.set(name, (t = {}));
    const cur = t[key];
    if (cur instanceof Float32Array) {
      if (cur.length !== n) throw new GradcompRangeError('grad', `Expected tensor ${name} to keep its size ${cur.length} but received ${n} elements`);
      return cur;
    }
    const fresh = new Float32Array(n);
    t[key] = fresh;
    return fresh;
  }

  protected hasSlot(name: string, key: string): boolean {
    return this.tensors.get(name)?.[key] instanceof Float32Array;
  }

  protected counter(name: string, key: string): number {
    const v = this.tensors.get(name)?.[key];
    return typeof v === 'number' ? v : 0;
  }

  protected setCounter(name: string, key: string, value: number): void {
    let t = this.tensors.get(name);
    if (!t) this.tensors.set(name, (t = {}));
    t[key] = value;
  }

  /** Times a synchronous kernel section. */
  protected timed<T>(fn: () => T): [T, number] {
    const t0 = performance.now();
    const v = fn();
    return [v, performance.now() - t0];
  }

  protected record(name: string, step: number, n: number, sentBytes: number, kernelMs: number): void {
    const r = this.residual(name);
    let sq = 0;
    if (r) for (let i = 0; i < r.length; i++) sq += r[i] * r[i];
    this.#stats.set(name, {
      name, step, bytesBefore: 4 * n, bytesAfter: sentBytes, ratio: sentBytes > 0 ? (4 * n) / sentBytes : Infinity,
      kernelMs, residualNorm: Math.sqrt(sq),
    });
  }

  stats(): TensorStats[] {
    return [...this.#stats.values()];
  }

  state(): CompressorState {
    const tensors: CompressorState['tensors'] = {};
    for (const [name, slots] of this.tensors) {
      tensors[name] = {};
      for (const [k, v] of Object.entries(slots)) tensors[name][k] = v instanceof Float32Array ? Array.from(v) : v;
    }
    return { format: 'gradcomp.compressor-state', version: 1, type: this.type, tensors };
  }

  load(state: CompressorState): void {
    if (state === null || typeof state !== 'object' || state.format !== 'gradcomp.compressor-state') {
      throw typeError('state', 'a gradcomp.compressor-state object', state);
    }
    if (state.version !== 1) throw new GradcompRangeError('state.version', `Expected state version 1 but received ${String(state.version)}`);
    if (state.type !== this.type) throw new GradcompRangeError('state.type', `Expected state of a ${this.type} compressor but received ${String(state.type)}`);
    this.tensors.clear();
    for (const [name, slots] of Object.entries(state.tensors ?? {})) {
      const t: Record<string, Slot> = {};
      for (const [k, v] of Object.entries(slots)) {
        if (typeof v === 'number') t[k] = v;
        else if (Array.isArray(v) && v.every((x) => typeof x === 'number')) t[k] = Float32Array.from(v);
        else throw typeError(`state.tensors.${name}.${k}`, 'a number or an array of numbers', v);
      }
      this.tensors.set(name, t);
    }
  }
}
