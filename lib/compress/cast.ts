/**
 * fp16 / bf16 casts (2 bytes per element, 2x). Round to nearest even; fp16 saturates finite
 * values at ±65504 (with error feedback the excess stays in the residual) and keeps subnormals;
 * ±Infinity and NaN inputs stay non-finite. Use bf16 for gradients with a wide
 * dynamic range (same exponent range as fp32), fp16 where precision near 1 matters more; pre-scale
 * (or divide by the worker count first) to avoid fp16 overflow in large sums (pytorch#57410).
 */
import { loadBinding } from '../native/loader';
import { GatherCompressor } from './gather';
import { newPayload, readPayload } from './wire';

// The JS conversions below are the reference the native kernels are tested against.
import type { StepContext } from './types';

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

export function toBf16(v: number): number {
  f32[0] = v;
  const b = u32[0];
  if ((b & 0x7fffffff) > 0x7f800000) return 0x7fc0 | ((b >>> 16) & 0x8000);
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}
export function fromBf16(h: number): number {
  u32[0] = h << 16;
  return f32[0];
}

export function toFp16(v: number): number {
  f32[0] = v;
  const b = u32[0];
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1), half = 1 << (shift - 1);
    if (rem > half || (rem === half && (h & 1))) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1))) h++;
  return sign | h;
}
export function fromFp16(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f, mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

export interface CastSpec { type: 'fp16' | 'bf16'; errorFeedback?: boolean }

export class CastCompressor extends GatherCompressor {
  readonly type: 'fp16' | 'bf16';
  protected readonly errorFeedback: boolean;

  constructor(spec: CastSpec) {
    super();
    this.type = spec.type;
    this.errorFeedback = spec.errorFeedback ?? false;
  }

  protected encode(_name: string, p: Float32Array, _ctx: StepContext): Uint8Array {
    const n = p.length;
    const { bytes } = newPayload(this.type, n, 16, 2 * n);
    // fp16 saturates finite values at ±65504: an Infinity in the payload would turn the residual
    // into NaN for good; saturated, the excess waits in the residual like any unsent value.
    loadBinding().halfPack(p, new Uint16Array(bytes.buffer, 16, n), this.type === 'fp16' ? 2 : 1);
    return bytes;
  }

  protected decodeAdd(payload: Uint8Array, out: Float32Array): void {
    const n = out.length;
    const { body } = readPayload(payload, this.type, n, (bits) => (bits === 16 ? 2 * n : NaN));
    const h = body.byteOffset % 2 === 0 ? new Uint16Array(body.buffer, body.byteOffset, n) : new Uint16Array(body.slice().buffer);
    loadBinding().halfUnpackAdd(h, out, this.type === 'fp16' ? 0 : 1);
  }
}
