/** Argument checks shared by the ops: each throws a coded error naming the parameter. */
import { describe, GradcompError, rangeError, typeError } from '../native/errors';
import { DType, DTypeArrays, dtypeOf, isDetached, Tensor } from '../tensor/tensor';

export type Input<D extends DType> = Tensor<D> | DTypeArrays[D];

/** Indices are uint32: tensors are limited to 2^32 - 1 elements. */
export const MAX_ELEMENTS = 0xffffffff;

/** Unwraps a Tensor or TypedArray of dtype `dtype` into its TypedArray. */
export function arrayArg<D extends DType>(value: unknown, dtype: D, param: string): DTypeArrays[D] {
  let arr: unknown = value;
  if (value instanceof Tensor && value.device === 'cuda' && !value.disposed) {
    throw new GradcompError('ERR_GRADCOMP_INVALID_ARG',
      `Expected a CPU array or tensor for ${param} but received a CUDA tensor: an op's tensors must all be on one device`, param);
  }
  if (value instanceof Tensor) arr = value.data; // throws DisposedError / detached
  const dt = dtypeOf(arr);
  if (dt !== dtype) {
    const want = { float32: 'Float32Array', float64: 'Float64Array', int32: 'Int32Array', uint32: 'Uint32Array', uint8: 'Uint8Array' }[dtype];
    throw typeError(param, `a ${want} or a ${dtype} Tensor`, value);
  }
  const a = arr as DTypeArrays[D];
  if (isDetached(a)) {
    throw new GradcompError('ERR_GRADCOMP_DETACHED', `Expected an attached buffer for ${param} but its ArrayBuffer was detached`, param);
  }
  if (a.length > MAX_ELEMENTS) throw rangeError(param, `at most ${MAX_ELEMENTS} elements`, a);
  return a;
}

export function intArg(value: unknown, param: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) throw typeError(param, 'an integer', value);
  if (value < min || value > max) throw rangeError(param, `an integer in [${min}, ${max}]`, value);
  return value;
}

export function numberArg(value: unknown, param: string, check: (v: number) => boolean, expected: string): number {
  if (typeof value !== 'number') throw typeError(param, 'a number', value);
  if (!check(value)) throw rangeError(param, expected, value);
  return value;
}

export function optionsArg(value: unknown, param: string): Record<string, unknown> {
  if (value === undefined) return {};
  if (value === null || typeof value !== 'object' || Array.isArray(value) || ArrayBuffer.isView(value)) {
    throw typeError(param, 'an options object', value);
  }
  return value as Record<string, unknown>;
}

export function lengthMatch(param: string, a: { length: number }, expected: number, what: string): void {
  if (a.length !== expected) throw rangeError(param, `length ${expected} (${what})`, a);
}

/** Throws when two views share memory: a kernel reads one while writing the other. */
export function noOverlap(pa: string, a: ArrayBufferView, pb: string, b: ArrayBufferView): void {
  if (a.buffer !== b.buffer) return;
  const a0 = a.byteOffset, a1 = a0 + a.byteLength, b0 = b.byteOffset, b1 = b0 + b.byteLength;
  if (a0 < b1 && b0 < a1 && a.byteLength > 0 && b.byteLength > 0) {
    throw new GradcompError('ERR_GRADCOMP_INVALID_ARG', `${pa} and ${pb} must not share memory`, pb);
  }
}

/** Optional caller-provided output array of exact length. */
export function outArg<D extends DType>(value: unknown, dtype: D, param: string, length: number): DTypeArrays[D] | undefined {
  if (value === undefined) return undefined;
  const a = arrayArg(value, dtype, param);
  lengthMatch(param, a, length, 'the output size');
  return a;
}

/** A 64-bit seed from a safe integer or a bigint, as two uint32 halves. */
export function seedArg(value: unknown, param: string): [lo: number, hi: number] {
  let v: bigint;
  if (typeof value === 'bigint') v = value;
  else if (typeof value === 'number' && Number.isSafeInteger(value)) v = BigInt(value);
  else throw typeError(param, 'a non-negative safe integer or a bigint', value);
  if (v < 0n || v > 0xffffffffffffffffn) throw rangeError(param, 'a value in [0, 2^64 - 1]', value);
  return [Number(v & 0xffffffffn), Number(v >> 32n)];
}

/** True for a CUDA tensor: the op then runs on the GPU. */
export function isCuda(value: unknown): value is Tensor<DType, 'cuda'> {
  return value instanceof Tensor && value.device === 'cuda';
}

/** A live CUDA tensor of dtype `dtype` (an op's tensors must all be on one device). */
export function cudaArg<D extends DType>(value: unknown, dtype: D, param: string, length?: number): Tensor<D, 'cuda'> {
  if (!(value instanceof Tensor) || value.device !== 'cuda') {
    throw new GradcompError('ERR_GRADCOMP_INVALID_ARG',
      `Expected a CUDA tensor for ${param} (the op's other tensors are on cuda) but received ${value instanceof Tensor ? 'a CPU tensor' : describe(value)}`, param);
  }
  if (value.disposed) throw new GradcompError('ERR_GRADCOMP_DISPOSED', `${param} was used after dispose()`, param);
  if (value.dtype !== dtype) throw typeError(param, `a ${dtype} CUDA tensor`, `a ${value.dtype} CUDA tensor`);
  if (length !== undefined && value.size !== length) throw rangeError(param, `${length} elements`, `${value.size} elements`);
  if (value.size > MAX_ELEMENTS) throw rangeError(param, `at most ${MAX_ELEMENTS} elements`, value.size);
  return value as Tensor<D, 'cuda'>;
}

/** Throws when two CUDA tensors share memory (a kernel would read one while writing the other). */
export function noSharedStorage(pa: string, a: Tensor<DType, 'cuda'>, pb: string, b: Tensor<DType, 'cuda'>): void {
  if (a._storage === b._storage) throw new GradcompError('ERR_GRADCOMP_INVALID_ARG', `${pa} and ${pb} must not share memory`, pb);
}
