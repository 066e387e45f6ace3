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
import type { StepContext } from './types';

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
