/** Argument checks shared by the communicators: Tensors unwrap to their data; every error is coded. */
import { GradcompError, typeError } from '../native/errors';
import { dtypeOf, isDetached, Tensor } from '../tensor/tensor';
import type { Numeric } from './types';

export const DTYPE_CODES = ['float32', 'float64', 'int32', 'uint32', 'uint8'] as const;

/** The TypedArray behind a Tensor or TypedArray argument (floats only when `floats`). */
export function numericArg(a: unknown, param: string, floats = false): Numeric {
  const v = a instanceof Tensor ? a.data : a;
  const dt = dtypeOf(v);
  if (dt === undefined || (floats && dt !== 'float32' && dt !== 'float64')) {
    throw typeError(param, floats ? 'a Float32Array or Float64Array (or Tensor)' : 'a Float32Array, Float64Array, Int32Array, Uint32Array or Uint8Array (or Tensor)', a);
  }
  if (isDetached(v as ArrayBufferView)) {
    throw new GradcompError('ERR_GRADCOMP_DETACHED', `Expected an attached buffer for ${param} but its ArrayBuffer was detached`, param);
  }
  return v as Numeric;
}

export function dtypeCode(a: Numeric): number {
  return DTYPE_CODES.indexOf(dtypeOf(a)!);
}
