/**
 * The op table's machinery (ggml's backend registry and supports_op are the model). An op is
 * declared once, as a schema: its buffer arguments (dtype, read/write), the outputs the runner
 * allocates when the caller gives none, its scalar parameters with their ranges, and a check of
 * whatever relates them. Backends (cpu.ts, cuda.ts) register an implementation per op name.
 * run() validates every argument against the schema with errors that name the parameter, picks the
 * backend from the buffers' device (all on one device), allocates outputs there, refuses buffers
 * that share memory with a written one, pins host memory for async kernels, then dispatches.
 */
import { GradcompError, GradcompRangeError, rangeError, typeError } from '../native/errors';
import { ARRAY_NAMES, DType, DTypeArrays, CTORS, MAX_ELEMENTS, dtypeOf, hostArg, noOverlap, pin } from './buffer';
import { DeviceBuffer, isDeviceBuffer } from './device';

export type Access = 'r' | 'w' | 'rw';

export interface BufField<D extends DType = DType> { kind: 'buf'; dtype: D; access: Access; optional: boolean; param?: string }
export interface OutField<D extends DType = DType> { kind: 'out'; dtype: D; length: (a: Record<string, unknown>) => number; param?: string }
export interface IntField { kind: 'int'; min: number; max: number | ((a: Record<string, unknown>) => number); def?: number; param?: string }
export interface NumField { kind: 'num'; ok: (v: number) => boolean; expected: string; def?: number; param?: string }
export interface BoolField { kind: 'bool'; def: boolean; param?: string }
/** Passed through as given: its validation lives in the op's check(). */
export interface AnyField<T> { kind: 'any'; _t?: T }
export type Field = BufField | OutField | IntField | NumField | BoolField | AnyField<unknown>;
export type Schema = Record<string, Field>;

/** What an implementation receives for a field, on host (H) or device (D) buffers. */
type Val<F, H extends boolean> =
  F extends BufField<infer T> ? (F['optional'] extends true ? Arr<T, H> | null : Arr<T, H>)
    : F extends OutField<infer T> ? Arr<T, H>
      : F extends IntField | NumField ? number : F extends BoolField ? boolean : F extends AnyField<infer V> ? V : never;
type Arr<T extends DType, H extends boolean> = H extends true ? DTypeArrays[T] : DeviceBuffer<T>;
export type HostArgs<S extends Schema> = { [K in keyof S]: Val<S[K], true> };
export type DeviceArgs<S extends Schema> = { [K in keyof S]: Val<S[K], false> };
/** What callers hand to run(): buffers are host arrays or device buffers; absent outputs are allocated. */
export type RunArgs<S extends Schema> = { [K in keyof S]?: unknown };

export interface OpDef<S extends Schema = Schema> {
  readonly name: string;
  readonly schema: S;
  /** Cross-field checks (lengths that must agree, ...), after each field passed its own. */
  readonly check?: (a: HostArgs<S> | DeviceArgs<S>, len: (x: unknown) => number) => void;
  /** Elementwise: a written buffer may be exactly the same view as an input (in place); any other overlap is still refused. */
  readonly elementwise?: boolean;

}

export const buf = <D extends DType>(dtype: D, access: Access, param?: string): BufField<D> & { optional: false } => ({ kind: 'buf', dtype, access, optional: false, param });
export const optBuf = <D extends DType>(dtype: D, access: Access, param?: string): BufField<D> & { optional: true } => ({ kind: 'buf', dtype, access, optional: true, param });
export const out = <D extends DType>(dtype: D, length: (a: Record<string, unknown>) => number, param?: string): OutField<D> => ({ kind: 'out', dtype, length, param });
export const int = (min: number, max: IntField['max'], def?: number, param?: string): IntField => ({ kind: 'int', min, max, def, param });
export const num = (ok: (v: number) => boolean, expected: string, def?: number, param?: string): NumField => ({ kind: 'num', ok, expected, def, param });
export const bool = (def: boolean, param?: string): BoolField => ({ kind: 'bool', def, param });
export const any = <T>(): AnyField<T> => ({ kind: 'any' });

export function defineOp<S extends Schema>(name: string, schema: S, extra: Omit<OpDef<S>, 'name' | 'schema'> = {}): OpDef<S> {
  return Object.freeze({ name, schema, ...extra });
}

export type Mode = 'sync' | 'async';
export type HostImpl<S extends Schema> = (a: HostArgs<S>, async: boolean) => Promise<unknown> | unknown;
export type DeviceImpl<S extends Schema> = (a: DeviceArgs<S>) => Promise<unknown>;

/** A backend: the implementations it registered, by op name (H: on host arrays, else device buffers). */
export class Backend<H extends boolean, Impl = H extends true ? HostImpl<Schema> : DeviceImpl<Schema>> {
  readonly #impls = new Map<string, Impl>();
  readonly #scratch = new Map<string, (a: Record<string, unknown>) => number>();

  /** How much scratch this backend's kernel of `op` needs for these (validated) arguments; the backend's arena provides it. */
  registerScratch<S extends Schema>(op: OpDef<S>, bytes: (a: H extends true ? HostArgs<S> : DeviceArgs<S>) => number): void {
    this.#scratch.set(op.name, bytes as (a: Record<string, unknown>) => number);
  }
  scratchBytes(op: OpDef<Schema>, a: Record<string, unknown>): number {
    return this.#scratch.get(op.name)?.(a) ?? 0;
  }
  constructor(readonly name: 'cpu' | 'cuda') {}
  register<S extends Schema>(op: OpDef<S>, impl: H extends true ? HostImpl<S> : DeviceImpl<S>): void {
    if (this.#impls.has(op.name)) throw new GradcompError('ERR_GRADCOMP_INTERNAL', `${this.name}: ${op.name} registered twice`);
    this.#impls.set(op.name, impl as unknown as Impl);
  }
  supports(op: OpDef<Schema>): boolean {
    return this.#impls.has(op.name);
  }
  impl(op: OpDef<Schema>): Impl {
    const f = this.#impls.get(op.name);
    if (!f) throw new GradcompError('ERR_GRADCOMP_BACKEND_UNAVAILABLE', `${op.name} has no ${this.name} implementation`, 'device');
    return f;
  }
}

export const cpu = new Backend<true>('cpu');
export const cuda = new Backend<false>('cuda');

/** Length of a host array or device buffer. */
export const len = (x: unknown): number => (isDeviceBuffer(x) ? x.length : (x as { length: number }).length);

function intValue(v: unknown, f: IntField, param: string, a: Record<string, unknown>): number {
  if (v === undefined && f.def !== undefined) return f.def;
  if (typeof v !== 'number' || !Number.isInteger(v)) throw typeError(param, 'an integer', v);
  const max = typeof f.max === 'function' ? f.max(a) : f.max;
  if (v < f.min || v > max) throw rangeError(param, `an integer in [${f.min}, ${max}]`, v);
  return v;
}

/** The validated arguments (outputs allocated) and what the implementation returned. */
export interface Ran<S extends Schema> { a: HostArgs<S> | DeviceArgs<S>; value: unknown }

/** Validates `given` against the op's schema and runs it on this thread (CPU only). */
export function runSync<S extends Schema>(op: OpDef<S>, given: RunArgs<S>): Ran<S> {
  return run(op, given, 'sync') as Ran<S>;
}

/** Validates `given` (a failure rejects) and runs it off this thread, on the backend its buffers live on. */
export async function runAsync<S extends Schema>(op: OpDef<S>, given: RunArgs<S>): Promise<Ran<S>> {
  const r = run(op, given, 'async') as { a: Ran<S>['a']; value: unknown };
  return { a: r.a, value: await r.value };
}

function run<S extends Schema>(op: OpDef<S>, given: RunArgs<S>, mode: Mode): Ran<S> {
  const a: Record<string, unknown> = {};
  let device: 'cpu' | 'cuda' | undefined, deviceParam = '';
  const buffers: [string, unknown, Access][] = [];
  const place = (param: string, v: unknown) => {
    const d = isDeviceBuffer(v) ? 'cuda' : 'cpu';
    if (device === undefined) { device = d; deviceParam = param; return; }
    if (d !== device) {
      throw new GradcompError('ERR_GRADCOMP_INVALID_ARG',
        `Expected ${param} on ${device} like ${deviceParam} but it is on ${d}: an op's tensors must all be on one device`, param);
    }
  };
  const given_ = given as Record<string, unknown>;
  for (const [key, f] of Object.entries(op.schema)) {
    const param = f.kind === 'any' ? key : f.param ?? key, v = given_[key];
    switch (f.kind) {
      case 'buf':
        if (v === undefined || v === null) {
          if (!f.optional) throw typeError(param, `a ${ARRAY_NAMES[f.dtype]}`, v);
          a[key] = null;
          break;
        }
        a[key] = checkBuffer(v, f.dtype, param);
        place(param, v);
        buffers.push([param, v, f.access]);
        break;
      case 'int': a[key] = intValue(v, f, param, a); break;
      case 'num':
        if (v === undefined && f.def !== undefined) { a[key] = f.def; break; }
        if (typeof v !== 'number') throw typeError(param, 'a number', v);
        if (!f.ok(v)) throw rangeError(param, f.expected, v);
        a[key] = v;
        break;
      case 'bool':
        if (v !== undefined && typeof v !== 'boolean') throw typeError(param, 'a boolean', v);
        a[key] = v ?? f.def;
        break;
      case 'any': a[key] = v; break;
      case 'out': break; // after every input is known (lengths depend on them)
    }
  }
  for (const [key, f] of Object.entries(op.schema)) {
    if (f.kind !== 'out') continue;
    const param = f.param ?? key, v = given_[key], n = f.length(a);
    if (v === undefined) {
      a[key] = device === 'cuda' ? DeviceBuffer.alloc(f.dtype, n) : new CTORS[f.dtype](n);
    } else {
      a[key] = checkBuffer(v, f.dtype, param);
      if (len(v) !== n) throw new GradcompRangeError(param, `Expected ${param} to have length ${n} but received length ${len(v)}`);
      place(param, v);
      buffers.push([param, v, 'w']);
    }
  }
  op.check?.(a as HostArgs<S>, len);
  for (let i = 0; i < buffers.length; i++)
    for (let j = i + 1; j < buffers.length; j++)
      if ((buffers[i][2] !== 'r' || buffers[j][2] !== 'r') && !(op.elementwise && same(buffers[i][1], buffers[j][1]))) {
        disjoint(buffers[i][0], buffers[i][1], buffers[j][0], buffers[j][1]);
      }
  if (device === 'cuda') {
    if (mode === 'sync') {
      throw new GradcompError('ERR_GRADCOMP_INVALID_ARG', `${op.name}Sync takes CPU arrays: ${deviceParam} is a CUDA tensor (use the async ${op.name})`, deviceParam);
    }
    return { a: a as DeviceArgs<S>, value: cuda.impl(op as unknown as OpDef<Schema>)(a as DeviceArgs<Schema>) };
  }
  if (mode === 'async') for (const [param, v] of buffers) pin(v as ArrayBufferView, param);
  return { a: a as HostArgs<S>, value: cpu.impl(op as unknown as OpDef<Schema>)(a as HostArgs<Schema>, mode === 'async') };
}

function checkBuffer(v: unknown, dtype: DType, param: string): unknown {
  if (isDeviceBuffer(v)) {
    if (v.storage.freed) throw new GradcompError('ERR_GRADCOMP_DISPOSED', `${param} was used after dispose()`, param);
    if (v.dtype !== dtype) throw typeError(param, `a ${dtype} CUDA tensor`, `a ${v.dtype} CUDA tensor`);
    if (v.length > MAX_ELEMENTS) throw rangeError(param, `at most ${MAX_ELEMENTS} elements`, v.length);
    return v;
  }
  if (dtypeOf(v) !== dtype) throw typeError(param, `a ${ARRAY_NAMES[dtype]} or a ${dtype} Tensor`, v);
  return hostArg(v, dtype, param);
}

/** The same memory, exactly (an in-place elementwise op). */
function same(a: unknown, b: unknown): boolean {
  if (isDeviceBuffer(a) || isDeviceBuffer(b)) return a === b;
  const x = a as ArrayBufferView, y = b as ArrayBufferView;
  return x.buffer === y.buffer && x.byteOffset === y.byteOffset && x.byteLength === y.byteLength;
}

function disjoint(pa: string, a: unknown, pb: string, b: unknown): void {
  if (isDeviceBuffer(a) && isDeviceBuffer(b)) {
    if (a.storage === b.storage) throw new GradcompError('ERR_GRADCOMP_INVALID_ARG', `${pa} and ${pb} must not share memory`, pb);
  } else if (!isDeviceBuffer(a) && !isDeviceBuffer(b)) {
    noOverlap(pa, a as ArrayBufferView, pb, b as ArrayBufferView);
  }
}
