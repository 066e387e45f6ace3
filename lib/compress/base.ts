/**
 * Shared machinery: sessions, typed per-tensor state, stats, and state()/load().
 *
 * Each compressor keeps its mutable state in one documented object per tensor (its
 * `...TensorState` type, declared with `stateFields` so load() can check a snapshot field by
 * field); scratch buffers that are not state (payloads reused across steps) live beside it.
 */
import { performance } from 'node:perf_hooks';
import { asFloat32 } from '../checkpoint/values';
import { GradcompError, GradcompRangeError, typeError } from '../native/errors';
import { LowRankGrad, QuantizedGrad, SparseGrad, sumSquares } from '../ops/kernels';
import type { Compressor, CompressorState, Round, RoundResult, Session, StepContext, TensorStats } from './types';

/** A session driven by a list of rounds: `next` turns each result into a round or the final result. */
export class ChainSession implements Session {
  round: Round | null;
  #result: Float32Array | undefined;
  #index = 0;
  readonly #next: (result: RoundResult, index: number) => Round | Float32Array;
  readonly #onDone: (sent: number) => void;
  #sent: number;
  /** Set by a compressor whose last round ended with low-rank factors (StepContext.factored). */
  factors: LowRankGrad | null = null;
  /** Set by a compressor that ended with the payloads' sparse entries (StepContext.sparse). */
  sparse: SparseGrad | null = null;
  /** Set by a compressor that ended with the QSGD payloads undecoded (StepContext.quantized). */
  quantized: QuantizedGrad | null = null;

  constructor(first: Round, next: (result: RoundResult, index: number) => Round | Float32Array, onDone: (sentBytes: number) => void,
    readonly scale = 1) {
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
    if (this.factors !== null) throw new GradcompError('ERR_GRADCOMP_INVALID_ARG', 'result() called on a session that ended with low-rank factors (StepContext.factored): apply session.factors instead', 'session');
    if (this.sparse !== null || this.quantized !== null) {
      throw new GradcompError('ERR_GRADCOMP_INVALID_ARG', 'result() called on a session that ended with undecoded payloads (StepContext.sparse or quantized): apply session.sparse or session.quantized instead', 'session');
    }
    return this.#result;
  }
}

/**
 * Several sessions run in lockstep: each round is one allreduce of the concatenated rounds of the
 * sessions still running, in the order given (the same on every rank), and each session receives
 * its own slice of the sum. Only for sessions whose rounds are all allreduces of Float32Arrays
 * (Compressor.lockstep); anything else is refused. Read each session's result (or factors)
 * afterwards; this session has no result of its own.
 */
export class LockstepSession implements Session {
  round: Round | null = null;
  readonly scale = 1;
  #active: Session[] = [];
  #buffers: Float32Array[];
  #index = 0;

  /** `buffers`: the round buffers of an earlier step, reused when the lengths match (kept in `this.buffers`). */
  constructor(readonly sessions: readonly Session[], buffers: Float32Array[] = []) {
    this.#buffers = buffers;
    this.#next();
  }

  get buffers(): Float32Array[] { return this.#buffers; }

  #next(): void {
    this.#active = this.sessions.filter((s) => s.round !== null);
    if (this.#active.length === 0) { this.round = null; return; }
    let total = 0;
    for (const s of this.#active) {
      const r = s.round!;
      if (r.collective !== 'allreduce' || !(r.data instanceof Float32Array)) {
        throw new GradcompError('ERR_GRADCOMP_INVALID_ARG', `a lockstep session needs allreduce rounds of Float32Arrays, not a ${r.collective} round`, 'sessions');
      }
      total += r.data.length;
    }
    let buf = this.#buffers[this.#index];
    if (buf === undefined || buf.length !== total) buf = this.#buffers[this.#index] = new Float32Array(total);
    let off = 0;
    for (const s of this.#active) { buf.set(s.round!.data as Float32Array, off); off += s.round!.data.length; }
    this.round = { collective: 'allreduce', data: buf };
  }

  receive(result: RoundResult): void {
    if (this.round === null) throw new GradcompError('ERR_GRADCOMP_INVALID_ARG', 'receive() called after the last round', 'result');
    const sum = result as Float32Array;
    if (!(sum instanceof Float32Array) || sum.length !== this.round.data.length) {
      throw new GradcompRangeError('result', `Expected the allreduced round, a Float32Array of ${this.round.data.length} elements`);
    }
    let off = 0;
    for (const s of this.#active) {
      const n = s.round!.data.length;
      s.receive(sum.subarray(off, off + n));
      off += n;
    }
    this.#index++;
    this.#next();
  }

  result(): Float32Array {
    throw new GradcompError('ERR_GRADCOMP_INVALID_ARG', 'a lockstep session has no result of its own: read each of its sessions', 'session');
  }
}

export function workersOf(ctx: StepContext): { rank: number; workers: number } {
  const c = ctx as StepContext | null | undefined;
  if (c === null || typeof c !== 'object') throw typeError('ctx', 'a step context object { step, rank, workers }', ctx);
  if (!Number.isInteger(c.step) || c.step < 0) throw typeError('ctx.step', 'an integer >= 0', c.step);
  const rank = c.rank ?? 0, workers = c.workers ?? 1;
  if (!Number.isInteger(workers) || workers < 1) throw typeError('ctx.workers', 'an integer >= 1', c.workers);
  if (!Number.isInteger(rank) || rank < 0 || rank >= workers) throw typeError('ctx.rank', `an integer in [0, ${workers - 1}]`, c.rank);
  return { rank, workers };
}

/** The output buffer of a session: ctx.out (checked) or a fresh array. */
export function outFor(ctx: StepContext, n: number): Float32Array {
  const o = ctx.out;
  if (o === undefined) return new Float32Array(n);
  if (Object.prototype.toString.call(o) !== '[object Float32Array]' || o.length !== n) throw typeError('ctx.out', `a Float32Array of ${n} elements`, o);
  return o;
}

/** The 1/workers a session leaves to its caller when ctx.deferScale is set (else 1, applied already). */
export const deferred = (ctx: StepContext, workers: number): number => (ctx.deferScale ? 1 / workers : 1);

/** An allreduce result checked against what this worker sent: a Float32Array of the same length. */
export function asF32(result: RoundResult, length: number, what: string): Float32Array {
  if (Object.prototype.toString.call(result) !== '[object Float32Array]') throw typeError('result', `the ${what} Float32Array`, result);
  const r = result as Float32Array;
  if (r.length !== length) throw new GradcompRangeError('result', `Expected the ${what} to have ${length} elements (what this worker sent) but received ${r.length}`);
  return r;
}

export function asPayloads(result: RoundResult, workers: number): Uint8Array[] {
  if (!Array.isArray(result) || result.length !== workers) throw typeError('result', `an array of ${workers} payloads (one per worker)`, result);
  return result;
}

/** 'array': a Float32Array of the tensor's size (or another fixed size); 'number': a counter or scalar. */
export type StateFields<T> = { [K in keyof T]-?: 'array' | 'number' };

interface Recorded { name: string; step: number; n: number; sent: number; ms: number }

export abstract class BaseCompressor<T extends object = { residual?: Float32Array }> implements Compressor {
  abstract readonly type: string;
  abstract readonly summable: boolean;
  /** The fields of the per-tensor state, for load()'s checks. */
  protected abstract readonly stateFields: StateFields<T>;
  /** Per tensor: the documented state object. */
  protected readonly tensors = new Map<string, T>();
  readonly #sizes = new Map<string, number>();
  readonly #stats = new Map<string, Recorded>();

  abstract begin(name: string, grad: Float32Array, ctx: StepContext): Promise<Session>;

  /** The state of tensor `name`, created empty; a tensor keeps its size across steps. */
  protected stateOf(name: string, n: number): T {
    const size = this.#sizes.get(name);
    if (size !== undefined && size !== n) throw new GradcompRangeError('grad', `Expected tensor ${name} to keep its size ${size} but received ${n} elements`);
    let t = this.tensors.get(name);
    if (!t) {
      this.tensors.set(name, (t = {} as T));
      this.#sizes.set(name, n);
    }
    return t;
  }

  /** An array field of a tensor's state, created zero-filled with length `len` on first use. */
  protected arrayOf<K extends keyof T>(t: T, key: K, len: number): Float32Array {
    const cur = t[key] as unknown;
    if (cur instanceof Float32Array) {
      if (cur.length !== len) throw new GradcompRangeError('state', `Expected ${this.type} state ${String(key)} of length ${len} but it has ${cur.length} (a state loaded for another model?)`);
      return cur;
    }
    const fresh = new Float32Array(len);
    (t as Record<K, unknown>)[key] = fresh;
    return fresh;
  }

  residual(name: string): Float32Array | undefined {
    const r = (this.tensors.get(name) as { residual?: unknown } | undefined)?.residual;
    return r instanceof Float32Array ? r : undefined;
  }

  /** Times a synchronous section. */
  protected timed<R>(fn: () => R): [R, number] {
    const t0 = performance.now();
    const v = fn();
    return [v, performance.now() - t0];
  }

  protected record(name: string, step: number, n: number, sent: number, ms: number): void {
    this.#stats.set(name, { name, step, n, sent, ms });
  }

  /** Per tensor, its latest step; the residual norm is computed now (nothing per step). */
  stats(): TensorStats[] {
    return [...this.#stats.values()].map((r) => {
      const res = this.residual(r.name);
      return { name: r.name, step: r.step, bytesBefore: 4 * r.n, bytesAfter: r.sent, ratio: r.sent > 0 ? (4 * r.n) / r.sent : Infinity,
        kernelMs: r.ms, residualNorm: res ? Math.sqrt(sumSquares(res)) : 0 };
    });
  }

  state(): CompressorState {
    const tensors: CompressorState['tensors'] = {};
    for (const [name, t] of this.tensors) {
      const copy: Record<string, Float32Array | number> = {};
      for (const [k, v] of Object.entries(t)) if (v instanceof Float32Array) copy[k] = v.slice(); else if (typeof v === 'number') copy[k] = v;
      tensors[name] = copy;
    }
    return { format: 'gradcomp.compressor-state', version: 2, type: this.type, tensors };
  }

  load(state: Parameters<Compressor['load']>[0]): void {
    if (state === null || typeof state !== 'object' || state.format !== 'gradcomp.compressor-state') throw typeError('state', 'a gradcomp.compressor-state object', state);
    if (state.version !== 1 && state.version !== 2) throw new GradcompRangeError('state.version', `Expected state version 1 or 2 but received ${String((state as { version: unknown }).version)}`);
    if (state.type !== this.type) throw new GradcompRangeError('state.type', `Expected state of a ${this.type} compressor but received ${String(state.type)}`);
    if (state.tensors === null || typeof state.tensors !== 'object') throw typeError('state.tensors', 'an object of per-tensor states', state.tensors);
    const fields = this.stateFields as Record<string, 'array' | 'number'>;
    const loaded = new Map<string, T>();
    for (const [name, slots] of Object.entries(state.tensors as Record<string, Record<string, unknown>>)) {
      const t: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(slots ?? {})) {
        const param = `state.tensors.${name}.${k}`;
        if (!(k in fields)) throw typeError(param, `one of the ${this.type} state fields (${Object.keys(fields).join(', ') || 'none'})`, k);
        if (fields[k] === 'number') {
          if (typeof v !== 'number') throw typeError(param, 'a number', v);
          t[k] = v;
        } else t[k] = asFloat32(v, param);
      }
      loaded.set(name, t as T);
    }
    this.tensors.clear();
    this.#sizes.clear();
    for (const [name, t] of loaded) this.tensors.set(name, t);
  }
}
