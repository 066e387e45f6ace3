/**
 * QSGD (Alistarh et al., NeurIPS'17) as a compressor. Tuning guide: levels 127 (8-bit codes,
 * ~4x) is nearly lossless; 7 (4-bit, ~8x) or 1 (2-bit, ~16x) need error feedback or a learning
 * rate that tolerates the extra variance. Keep the default max norm: L2 at small levels has 10-80x
 * the variance. Rounding is keyed by (seed + rank, step, tensor stream), so runs are reproducible
 * and workers round independently.
 */
import { qsgdDecodeAdd, qsgdDecodeSum, qsgdEncodeInto, QuantizedGrad } from '../ops/kernels';
import { qsgdPayloadBytes } from '../ops/qsgd';
import { StateFields, workersOf } from './base';
import { CompressorDescriptor, ENVELOPE, field, numel } from './descriptor';
import { GatherCompressor, ResidualState } from './gather';
import { corrupt, newPayload, readPayload, streamId } from './wire';
import type { StepContext } from './types';

export interface QsgdSpec { type: 'qsgd'; levels: number; bucketSize?: number; norm?: 'max' | 'l2'; seed?: number; errorFeedback?: boolean }

const GOLDEN = 0x9e3779b97f4a7c15n;
const KIND = 6;

/** The rounding seed of a rank: workers round independently, reproducibly. */
export const rankSeed = (seed: number, rank: number): bigint => (BigInt(seed) + BigInt(rank) * GOLDEN) & 0xffffffffffffffffn;

/**
 * A quantizer on the QSGD kernels: QSGD itself, and TernGrad (levels 1, one scale per tensor).
 * Payload: the envelope (count = levels), then the QSGD payload (its own header, norms, codes).
 */
export class QuantCompressor extends GatherCompressor {
  protected readonly stateFields: StateFields<ResidualState> = { residual: 'array' };
  protected readonly errorFeedback: boolean;

  constructor(readonly type: string, protected readonly kind: number, readonly levels: number, readonly bucketSize: number | 'tensor',
    readonly norm: 'max' | 'l2', readonly seed: number, errorFeedback: boolean) {
    super();
    this.errorFeedback = errorFeedback;
  }

  #bucket(n: number): number {
    return this.bucketSize === 'tensor' ? Math.max(1, n) : this.bucketSize;
  }

  protected encode(name: string, p: Float32Array, ctx: StepContext, reuse?: Uint8Array): Uint8Array {
    const { rank } = workersOf(ctx);
    const n = p.length, bucket = this.#bucket(n);
    const size = qsgdPayloadBytes(n, { levels: this.levels, bucketSize: bucket });
    const bytes = newPayload(this.kind, n, this.levels, size, reuse);
    qsgdEncodeInto(p, this.levels, bucket, this.norm === 'l2' ? 1 : 0, rankSeed(this.seed, rank), ctx.step >>> 0, streamId(name),
      bytes.subarray(ENVELOPE));
    return bytes;
  }

  /** The QSGD payload inside one envelope (checked against this compressor's levels and n). */
  #body(payload: Uint8Array, n: number): Uint8Array {
    const bucket = this.#bucket(n);
    return readPayload(payload, this.kind, n, (levels) => (levels === this.levels ? qsgdPayloadBytes(n, { levels, bucketSize: bucket }) : NaN)).body;
  }

  /** Runs a native decode, which re-validates every inner payload (header, norms, every code): a malformed one is a corrupt payload. */
  #decode(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      if ((e as { code?: string }).code === 'ERR_GRADCOMP_CORRUPT_PAYLOAD') throw corrupt('its quantized body is malformed');
      throw e;
    }
  }

  /** The inner payloads' (offset, length) spans in their one buffer (envelopes checked); null when they are views of different buffers. */
  #spans(payloads: Uint8Array[], n: number): QuantizedGrad | null {
    const buffer = payloads[0].buffer;
    if (payloads.some((p) => p.buffer !== buffer)) return null;
    const spans = new Float64Array(2 * payloads.length);
    payloads.forEach((p, j) => {
      const body = this.#body(p, n);
      spans[2 * j] = body.byteOffset;
      spans[2 * j + 1] = body.byteLength;
    });
    return { data: new Uint8Array(buffer), spans };
  }

  /** All workers' payloads (views of one receive buffer) summed and scaled by one kernel, out written once. */
  protected override decodeSum(payloads: Uint8Array[], out: Float32Array, scale: number): boolean {
    const q = this.#spans(payloads, out.length);
    if (q === null) return false;
    this.#decode(() => qsgdDecodeSum(q.data, q.spans, out, scale));
    return true;
  }

  /** The payloads handed to the optimizer undecoded (it validates them before writing anything). */
  protected override quantizedSum(payloads: Uint8Array[], n: number): QuantizedGrad | null {
    return this.#spans(payloads, n);
  }

  protected decodeAdd(payload: Uint8Array, out: Float32Array): void {
    const body = this.#body(payload, out.length);
    this.#decode(() => qsgdDecodeAdd(body, out));
  }
}

export const descriptor: CompressorDescriptor<QsgdSpec> = {
  type: 'qsgd', wireKind: KIND, computeNsPerElement: 4,
  fields: {
    levels: field.int((v) => v >= 1 && v <= 32767, 'an integer in [1, 32767]', true),
    bucketSize: field.int((v) => v >= 1 && v <= 0xffffffff, 'an integer >= 1'), norm: field.oneOf(['max', 'l2']),
    seed: field.seed(), errorFeedback: field.errorFeedback(),
  },
  capabilities: { summable: false, errorFeedback: 'optional', bareOperator: true, needsShape: false, collectives: ['allgather'] },
  expectedBytes: (spec, shape) => ENVELOPE + qsgdPayloadBytes(numel(shape), { levels: spec.levels, bucketSize: spec.bucketSize }),
  create: (spec) => new QuantCompressor('qsgd', KIND, spec.levels, spec.bucketSize ?? 512, spec.norm ?? 'max', spec.seed ?? 0, spec.errorFeedback ?? false),
};
