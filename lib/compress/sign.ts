/**
 * The sign family. 'efsign' is scaled sign with error feedback (Karimireddy et al. 2019): one bit
 * per element plus the scale ||p||_1 / n, averaged over workers; encode is one fused kernel
 * (p = g + e, bits, scale, e = p - scale * sign) and every worker's payload decodes in one pass.
 * 'signum' is signSGD with majority vote (Bernstein et al., ICLR'19), with momentum beta (0 gives
 * plain signSGD): the result is the elementwise sign of the sum of the workers' signs (ties give
 * 0), to be used with a small lr.
 */
import { efsignEncode, efsignEncodeAsync, efsignEncodeBlocks, signDecodeAll, signPack, signUnpackAdd, signUnpackAddBlocks, vecScale } from '../ops/kernels';
import { StateFields } from './base';
import { CompressorDescriptor, ENVELOPE, field, numel } from './descriptor';
import { GatherCompressor } from './gather';
import { ASYNC_ELEMENTS } from './sparse';
import { checkPadding, corrupt, f32At, newPayload, readPayload, signBytes } from './wire';
import type { StepContext } from './types';

export interface SignSpec {
  type: 'efsign' | 'signum';
  beta?: number;
  /**
   * efsign: one scale per block of this many elements (rounded up to a multiple of 8) instead of
   * one per tensor: the blockwise scaled sign. Small blocks track parts of a tensor whose
   * gradients differ in size (inputs that are always zero, rows of a layer), at 32 bits per block.
   */
  bucket?: number;
}

/** efsign: residual, the error-feedback memory. signum: momentum, the running average whose sign is sent. */
export interface SignTensorState { residual?: Float32Array; momentum?: Float32Array }

const KINDS = { efsign: 4, signum: 5 } as const;

export class SignCompressor extends GatherCompressor<SignTensorState> {
  readonly type: 'efsign' | 'signum';
  protected readonly stateFields: StateFields<SignTensorState> = { residual: 'array', momentum: 'array' };
  protected readonly errorFeedback: boolean;
  readonly beta: number;
  /** efsign's block size (0: one scale per tensor). */
  readonly bucket: number;
  protected override readonly averages: boolean;
  #offsets = new Uint32Array(0);
  #blockScales = new Float32Array(0);
  #copy = new Float32Array(0);
  #scales = new Float32Array(0);

  constructor(spec: SignSpec) {
    super();
    this.type = spec.type;
    this.errorFeedback = spec.type === 'efsign';
    this.beta = spec.beta ?? (spec.type === 'signum' ? 0.9 : 0);
    this.averages = spec.type === 'efsign';
    this.bucket = spec.bucket === undefined ? 0 : Math.ceil(spec.bucket / 8) * 8;
  }

  /** Blocks of a bucketed payload: [lo, hi) of each, lo a multiple of 8. */
  #blocks(n: number, size: number): number { return n === 0 ? 0 : Math.ceil(n / size); }

  /** Fused: p = grad + e, bits, scale, e = p - scale * sign(p), straight into the payload. */
  protected override async encodeWithFeedback(_name: string, grad: Float32Array, e: Float32Array, _ctx: StepContext, reuse?: Uint8Array): Promise<Uint8Array> {
    const n = grad.length;
    if (this.bucket > 0 && n > this.bucket) {
      // Blockwise: [block size u32][one scale per block][bits]; each block through the fused kernel.
      const B = this.bucket, nb = this.#blocks(n, B);
      const bytes = newPayload(KINDS.efsign, n, nb, 4 + 4 * nb + signBytes(n), reuse);
      const dv = new DataView(bytes.buffer, bytes.byteOffset);
      dv.setUint32(ENVELOPE, B, true);
      const bits = bytes.subarray(ENVELOPE + 4 + 4 * nb);
      if (this.#blockScales.length < nb) this.#blockScales = new Float32Array(nb);
      const scales = this.#blockScales.subarray(0, nb);
      efsignEncodeBlocks(grad, e, B, bits, scales);
      new Uint8Array(bytes.buffer, bytes.byteOffset + ENVELOPE + 4, 4 * nb).set(new Uint8Array(scales.buffer, scales.byteOffset, 4 * nb));
      return bytes;
    }
    const bytes = newPayload(KINDS.efsign, n, 1, 4 + signBytes(n), reuse);
    const bits = bytes.subarray(ENVELOPE + 4);
    const scale = n >= ASYNC_ELEMENTS ? await efsignEncodeAsync(grad, e, bits) : efsignEncode(grad, e, bits);
    new DataView(bytes.buffer, bytes.byteOffset).setFloat32(ENVELOPE, scale, true);
    return bytes;
  }

  protected encode(name: string, p: Float32Array, _ctx: StepContext, reuse?: Uint8Array): Uint8Array {
    const n = p.length;
    if (this.type === 'efsign' && this.bucket > 0 && n > this.bucket) {
      // The bare blockwise operator: the fused kernel on a copy (its residual update is discarded).
      if (this.#copy.length < n) this.#copy = new Float32Array(n);
      const c = this.#copy.subarray(0, n);
      c.set(p);
      const B = this.bucket, nb = this.#blocks(n, B);
      const bytes = newPayload(KINDS.efsign, n, nb, 4 + 4 * nb + signBytes(n), reuse);
      new DataView(bytes.buffer, bytes.byteOffset).setUint32(ENVELOPE, B, true);
      if (this.#blockScales.length < nb) this.#blockScales = new Float32Array(nb);
      const scales = this.#blockScales.subarray(0, nb);
      efsignEncodeBlocks(null, c, B, bytes.subarray(ENVELOPE + 4 + 4 * nb), scales);
      new Uint8Array(bytes.buffer, bytes.byteOffset + ENVELOPE + 4, 4 * nb).set(new Uint8Array(scales.buffer, scales.byteOffset, 4 * nb));
      return bytes;
    }
    let src = p;
    if (this.type === 'signum' && this.beta > 0) {
      // m <- beta m + (1 - beta) g; the sign of the momentum is sent.
      const m = this.arrayOf(this.stateOf(name, n), 'momentum', n);
      for (let i = 0; i < n; i++) m[i] = this.beta * m[i] + (1 - this.beta) * p[i];
      src = m;
    }
    const bytes = newPayload(KINDS[this.type], n, 1, 4 + signBytes(n), reuse);
    const bits = bytes.subarray(ENVELOPE + 4);
    bits.fill(0);
    const l1 = signPack(src, bits);
    new DataView(bytes.buffer, bytes.byteOffset).setFloat32(ENVELOPE, this.type === 'efsign' ? (n > 0 ? l1 / n : 0) : 1, true);
    return bytes;
  }

  /** The scale(s) and bits of a payload, validated: one scale, or (efsign, bucketed) a block size and one scale per block. */
  #read(payload: Uint8Array, n: number): { scale: number; bits: Uint8Array; block?: number; scales?: Float32Array } {
    const { count, body } = readPayload(payload, KINDS[this.type], n, (c) => (c === 1 ? 4 + signBytes(n) : this.type === 'efsign' && c > 1 ? 4 + 4 * c + signBytes(n) : NaN));
    if (count > 1) {
      const block = new DataView(body.buffer, body.byteOffset).getUint32(0, true);
      if (block === 0 || block % 8 !== 0 || this.#blocks(n, block) !== count) throw corrupt('its block size does not match its block count');
      const scales = f32At(body, 4, count);
      if (!scales.every((x) => x >= 0 && Number.isFinite(x))) throw corrupt('a block scale is negative or not finite');
      const bits = body.subarray(4 + 4 * count);
      checkPadding(bits, n);
      return { scale: NaN, bits, block, scales };
    }
    const scale = f32At(body, 0, 1)[0];
    if (!(scale >= 0) || !Number.isFinite(scale)) throw corrupt('its scale is negative or not finite');
    const bits = body.subarray(4);
    checkPadding(bits, n);
    return { scale, bits };
  }

  /** Adds a bucketed payload's blocks (scale_b * sign) into out. */
  #addBlocks(r: { bits: Uint8Array; block?: number; scales?: Float32Array }, out: Float32Array): void {
    signUnpackAddBlocks(r.bits, r.block!, r.scales!, out);
  }

  /** Adds scale * sign (efsign) or the raw sign (signum: the vote is taken in decompress()). */
  protected decodeAdd(payload: Uint8Array, out: Float32Array): void {
    const r = this.#read(payload, out.length);
    if (r.scales) this.#addBlocks(r, out);
    else signUnpackAdd(r.bits, out, r.scale);
  }

  /** Every worker's payload in one pass: efsign the average of scale * sign, signum the majority vote. */
  override decompress(payloads: Uint8Array[], n: number, out: Float32Array = new Float32Array(n), average = true): Float32Array {
    const R = payloads.length;
    if (R === 0) return out.fill(0);
    if (this.type === 'efsign' && this.bucket > 0 && n > this.bucket) {
      // Bucketed: every rank's blocks added in rank order, then the average.
      out.fill(0);
      for (const p of payloads) this.#addBlocks(this.#read(p, n), out);
      if (average && R > 1) vecScale(out, 1 / R);
      return out;
    }
    if (this.#offsets.length !== R) { this.#offsets = new Uint32Array(R); this.#scales = new Float32Array(R); }
    // The payloads are views of one allgather buffer when they come from a communicator; otherwise join them.
    const base = payloads[0].buffer, same = payloads.every((p) => p.buffer === base);
    const data = same ? new Uint8Array(base) : new Uint8Array(payloads.reduce((a, p) => a + p.byteLength, 0));
    let off = 0;
    payloads.forEach((p, r) => {
      const { scale, bits } = this.#read(p, n);
      if (!same) { data.set(bits, off); this.#offsets[r] = off; off += bits.byteLength; } else this.#offsets[r] = bits.byteOffset;
      this.#scales[r] = scale;
    });
    const vote = this.type === 'signum';
    signDecodeAll(data, this.#offsets, vote ? null : this.#scales, out, vote ? 1 : 0, vote || !average ? 1 : R);
    return out;
  }
}

const sign = (type: 'efsign' | 'signum'): CompressorDescriptor<SignSpec> => ({
  type, wireKind: KINDS[type],
  fields: type === 'signum' ? { beta: field.num((v) => v >= 0 && v < 1, 'a number in [0, 1)') } : { bucket: field.int((v) => v >= 8 && v <= 1 << 30, 'an integer >= 8') },
  capabilities: { summable: false, errorFeedback: type === 'efsign' ? 'always' : 'never', bareOperator: type === 'efsign', needsShape: false, collectives: ['allgather'] },
  expectedBytes: (spec, shape) => {
    const n = numel(shape), B = spec.bucket ? Math.ceil(spec.bucket / 8) * 8 : 0;
    return B > 0 && n > B ? ENVELOPE + 4 + 4 * Math.ceil(n / B) + signBytes(n) : ENVELOPE + 4 + signBytes(n);
  },
  create: (spec) => new SignCompressor({ ...spec, type }),
});
export const efsign = sign('efsign');
export const signum = sign('signum');
