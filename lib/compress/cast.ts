/**
 * fp16 / bf16 casts (2 bytes per element, 2x). Round to nearest even; fp16 saturates finite
 * values at ±65504 (with error feedback the excess stays in the residual) and keeps subnormals;
 * ±Infinity and NaN inputs stay non-finite. Use bf16 for gradients with a wide dynamic range
 * (same exponent range as fp32), fp16 where precision near 1 matters more; pre-scale (or divide by
 * the worker count first) to avoid fp16 overflow in large sums.
 */
import { halfPack, halfUnpackAdd } from '../ops/kernels';
import { StateFields } from './base';
import { CompressorDescriptor, ENVELOPE, field, numel } from './descriptor';
import { GatherCompressor, ResidualState } from './gather';
import { newPayload, readPayload } from './wire';
import type { StepContext } from './types';

export interface CastSpec { type: 'fp16' | 'bf16'; errorFeedback?: boolean }

const KINDS = { fp16: 1, bf16: 2 } as const;

export class CastCompressor extends GatherCompressor {
  readonly type: 'fp16' | 'bf16';
  protected readonly stateFields: StateFields<ResidualState> = { residual: 'array' };
  protected readonly errorFeedback: boolean;

  constructor(spec: CastSpec) {
    super();
    this.type = spec.type;
    this.errorFeedback = spec.errorFeedback ?? false;
  }

  protected encode(_name: string, p: Float32Array, _ctx: StepContext, reuse?: Uint8Array): Uint8Array {
    const n = p.length;
    const bytes = newPayload(KINDS[this.type], n, 16, 2 * n, reuse);
    // fp16 saturates finite values at ±65504: an Infinity in the payload would turn the residual
    // into NaN for good; saturated, the excess waits in the residual like any unsent value.
    halfPack(p, new Uint16Array(bytes.buffer, bytes.byteOffset + ENVELOPE, n), this.type === 'fp16' ? 2 : 1);
    return bytes;
  }

  protected decodeAdd(payload: Uint8Array, out: Float32Array): void {
    const n = out.length;
    const { body } = readPayload(payload, KINDS[this.type], n, (bits) => (bits === 16 ? 2 * n : NaN));
    const h = body.byteOffset % 2 === 0 ? new Uint16Array(body.buffer, body.byteOffset, n) : new Uint16Array(body.slice().buffer);
    halfUnpackAdd(h, out, this.type === 'fp16' ? 0 : 1);
  }
}

const cast = (type: 'fp16' | 'bf16'): CompressorDescriptor<CastSpec> => ({
  type, wireKind: KINDS[type], computeNsPerElement: 1.5, fields: { errorFeedback: field.errorFeedback() },
  capabilities: { summable: false, errorFeedback: 'optional', bareOperator: true, needsShape: false, collectives: ['allgather'] },
  expectedBytes: (_spec, shape) => ENVELOPE + 2 * numel(shape),
  create: (spec) => new CastCompressor({ ...spec, type }),
});
export const fp16 = cast('fp16');
export const bf16 = cast('bf16');
