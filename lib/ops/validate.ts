/** Argument helpers shared by the public ops: Tensors unwrap to what the op table takes. */
import { DeviceBuffer, isDeviceBuffer } from '../backend';
import { checkOptions, rangeError, typeError } from '../native/errors';
import { DType, Tensor } from '../tensor/tensor';

export type Input<D extends DType> = Tensor<D> | import('../tensor/tensor').DTypeArrays[D];

/**
 * A Tensor becomes its TypedArray (CPU; throws DisposedError or ERR_GRADCOMP_DETACHED) or its
 * device buffer (CUDA); anything else is passed on for the op table to check.
 */
export function unwrap(value: unknown): unknown {
  if (value instanceof Tensor) return value.device === 'cuda' ? value._device : value.data;
  return value;
}

/** True for a CUDA tensor or device buffer: the op then runs on the GPU. */
export function onDevice(value: unknown): boolean {
  return (value instanceof Tensor && value.device === 'cuda') || isDeviceBuffer(value);
}

/** Wraps an op's device outputs as CUDA tensors (host arrays pass through). */
export function wrap<T>(value: T): T | Tensor {
  return isDeviceBuffer(value) ? Tensor._wrapDevice(value as DeviceBuffer<DType>) : value;
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

export function optionsArg(value: unknown, param: string, keys?: readonly string[]): Record<string, unknown> {
  if (value === undefined) return {};
  if (value === null || typeof value !== 'object' || Array.isArray(value) || ArrayBuffer.isView(value)) {
    throw typeError(param, 'an options object', value);
  }
  // With `keys`, a misspelt option is refused rather than silently left at its default.
  if (keys) checkOptions(value, param, keys);
  return value as Record<string, unknown>;
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
