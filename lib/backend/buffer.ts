/**
 * Host buffers as the backends see them: the dtypes, recognizing TypedArrays from any realm,
 * detachment, overlap, and pinning for asynchronous kernels.
 *
 * Pinning (why async ops cannot be handed freed memory): a kernel running on the libuv pool reads
 * and writes the TypedArray's memory after the call returns. Transferring the ArrayBuffer
 * (postMessage / structuredClone with a transfer list) would detach it and hand the memory to
 * another owner, which may free it while the kernel runs. So before an async kernel starts, every
 * ArrayBuffer it touches is marked untransferable (worker_threads.markAsUntransferable: a later
 * transfer copies instead of moving), and resizable ArrayBuffers, which can shrink under a
 * running kernel, are refused. A SharedArrayBuffer cannot be detached or shrunk and needs neither.
 */
import { markAsUntransferable } from 'node:worker_threads';
import { GradcompError, rangeError, typeError } from '../native/errors';

export type DType = 'float32' | 'float64' | 'int32' | 'uint32' | 'uint8' | 'uint16';

export interface DTypeArrays {
  float32: Float32Array;
  float64: Float64Array;
  int32: Int32Array;
  uint32: Uint32Array;
  uint8: Uint8Array;
  uint16: Uint16Array;
}
export type HostArray = DTypeArrays[DType];

const TAG_TO_DTYPE: Record<string, DType> = {
  Float32Array: 'float32', Float64Array: 'float64', Int32Array: 'int32', Uint32Array: 'uint32', Uint8Array: 'uint8', Uint16Array: 'uint16',
};

export const CTORS: { [D in DType]: new (n: number) => DTypeArrays[D] } = {
  float32: Float32Array, float64: Float64Array, int32: Int32Array, uint32: Uint32Array, uint8: Uint8Array, uint16: Uint16Array,
};

export const BYTES: { [D in DType]: number } = { float32: 4, float64: 8, int32: 4, uint32: 4, uint8: 1, uint16: 2 };

export const ARRAY_NAMES: { [D in DType]: string } = {
  float32: 'Float32Array', float64: 'Float64Array', int32: 'Int32Array', uint32: 'Uint32Array', uint8: 'Uint8Array', uint16: 'Uint16Array',
};

/** Indices are uint32: buffers hold at most 2^32 - 1 elements. */
export const MAX_ELEMENTS = 0xffffffff;

/**
 * The dtype of a TypedArray, or undefined. Uses the toString tag, not instanceof, so arrays from
 * another realm (jest's vm contexts, worker_threads) are recognized.
 */
export function dtypeOf(x: unknown): DType | undefined {
  if (!ArrayBuffer.isView(x)) return undefined;
  return TAG_TO_DTYPE[Object.prototype.toString.call(x).slice(8, -1)];
}

/** True when the ArrayBuffer behind `x` has been detached (transferred). */
export function isDetached(x: ArrayBufferView): boolean {
  const buf = x.buffer as ArrayBuffer & { detached?: boolean };
  if (typeof buf.detached === 'boolean') return buf.detached;
  if (buf.byteLength !== 0) return false;
  // Node 20 has no ArrayBuffer#detached: a view cannot be constructed on a detached buffer.
  try {
    new Uint8Array(buf, 0, 0);
    return false;
  } catch {
    return true;
  }
}

const pinned = new WeakSet<object>();

/** Makes `x`'s memory safe for a kernel that outlives this call (see the file comment). */
export function pin(x: ArrayBufferView, param: string): void {
  const buf = x.buffer as ArrayBuffer & { resizable?: boolean };
  if (Object.prototype.toString.call(buf) === '[object SharedArrayBuffer]') return;
  if (buf.resizable === true) {
    throw new GradcompError('ERR_GRADCOMP_INVALID_ARG',
      `Expected a fixed-length buffer for ${param} but its ArrayBuffer is resizable (it could shrink while the kernel runs): copy it into a plain TypedArray`, param);
  }
  if (pinned.has(buf)) return;
  markAsUntransferable(buf);
  pinned.add(buf);
}

/** A host array argument of dtype `dtype`, attached and within the element limit. */
export function hostArg<D extends DType>(value: unknown, dtype: D, param: string): DTypeArrays[D] {
  if (dtypeOf(value) !== dtype) throw typeError(param, `a ${ARRAY_NAMES[dtype]}`, value);
  const a = value as DTypeArrays[D];
  if (isDetached(a)) throw new GradcompError('ERR_GRADCOMP_DETACHED', `Expected an attached buffer for ${param} but its ArrayBuffer was detached`, param);
  if (a.length > MAX_ELEMENTS) throw rangeError(param, `at most ${MAX_ELEMENTS} elements`, a);
  return a;
}

/** Throws when two host views share memory (a kernel would read one while writing the other). */
export function noOverlap(pa: string, a: ArrayBufferView, pb: string, b: ArrayBufferView): void {
  if (a.buffer !== b.buffer) return;
  const a0 = a.byteOffset, a1 = a0 + a.byteLength, b0 = b.byteOffset, b1 = b0 + b.byteLength;
  if (a0 < b1 && b0 < a1 && a.byteLength > 0 && b.byteLength > 0) {
    throw new GradcompError('ERR_GRADCOMP_INVALID_ARG', `${pa} and ${pb} must not share memory`, pb);
  }
}
