/**
 * QSGD (Alistarh et al., NeurIPS'17) as a compressor, and the sign family.
 *
 * QSGD tuning guide: levels 127 (8-bit codes, ~4x) is nearly lossless; 7 (4-bit, ~8x) or 1
 * (2-bit, ~16x) need error feedback or a learning rate that tolerates the extra variance. Keep the
 * default max norm: L2 at small levels has 10-80x the variance (specs/compressors.md §3(e)).
 * Rounding is keyed by (seed + rank, step, tensor stream), so runs are reproducible and workers
 * round independently.
 *
 * Sign family: 'efsign' is scaled sign with error feedback (Karimireddy et al. 2019): one bit per
 * element plus the scale ||p||_1 / n, averaged over workers. 'signum' is signSGD with majority
 * vote (Bernstein et al., ICLR'19), with momentum beta (0 gives plain signSGD): the result is the
 * elementwise sign of the sum of the workers' signs (ties give 0), to be used with a small lr.
 */
import { loadBinding } from '../native/loader';
import { qsgdPayloadBytes } from '../ops/qsgd';
import { GatherCompressor } from './gather';
import { corrupt, f32At, newPayload, readPayload, streamId } from './wire';
import { workersOf } from './base';
import type { StepContext } from './types';

export interface QsgdSpec { type: 'qsgd'; levels: number; bucketSize?: number; norm?: 'max' | 'l2'; seed?: number; errorFeedback?: boolean }

const GOLDEN = 0x9e3779b97f4a7c15n;

export class QsgdCompressor extends GatherCompressor {
  readonly type = 'qsgd';
  protected readonly errorFeedback: boolean;
  readonly levels: number;
  readonly bucketSize: number;
  readonly norm: 'max' | 'l2';
  readonly seed: number;

  constructor(spec: QsgdSpec) {
    super();
    this.levels = spec.levels;
    this.bucketSize = spec.bucketSize ?? 512;
    this.norm = spec.norm ?? 'max';
    this.seed = spec.seed ?? 0;
    this.errorFeedback = spec.errorFeedback ?? false;
  }

  protected encode(name: string, p: Float32Array, ctx: StepContext): Uint8Array {
    const { rank } = workersOf(ctx);
    const seed = (BigInt(this.seed) + BigInt(rank) * GOLDEN) & 0xffffffffffffffffn;
    const size = qsgdPayloadBytes(p.length, { levels: this.levels, bucketSize: this.bucketSize });
    const { bytes } = newPayload('qsgd', p.length, this.levels, size);
    const inner = bytes.subarray(16);
    const b = loadBinding();
    b.qsgdEncode(p, this.levels, this.bucketSize, this.norm === 'l2' ? 1 : 0, Number(seed & 0xffffffffn), Number(seed >> 32n),
      ctx.step >>> 0, streamId(name), inner, false);
    return bytes;
  }

  protected decodeAdd(payload: Uint8Array, out: Float32Array): void {
    const n = out.length;
    const { body } = readPayload(payload, 'qsgd', n, (levels) =>
      levels >= 1 && levels <= 32767 ? qsgdPayloadBytes(n, { levels, bucketSize: this.bucketSize }) : NaN);
    const dense = new Float32Array(n);
    // qsgdDecode re-validates the inner payload (header, norms, every code).
    loadBinding().qsgdDecode(body.slice(), dense, false);
    for (let i = 0; i < n; i++) out[i] += dense[i];
  }
}

export interface SignSpec { type: 'efsign' | 'signum'; beta?: number }

// Sign bits: 1 = negative (x < 0, so -0 and NaN count as positive), LSB-first, padded to 4 bytes.
const signBytes = (n: number) => (Math.ceil(n / 8) + 3) & ~3;

export class SignCompressor extends GatherCompressor {
  readonly type: 'efsign' | 'signum';
  protected readonly errorFeedback: boolean;
  readonly beta: number;

  constructor(spec: SignSpec) {
    super();
    this.type = spec.type;
    this.errorFeedback = spec.type === 'efsign';
    this.beta = spec.beta ?? (spec.type === 'signum' ? 0.9 : 0);
  }

  protected encode(name: string, p: Float32Array, _ctx: StepContext): Uint8Array {
    const n = p.length;
    let src = p;
    if (this.type === 'signum' && this.beta > 0) {
      // m <- beta m + (1 - beta) g; the sign of the momentum is sent.
      const m = this.slot(name, 'momentum', n);
      for (let i = 0; i < n; i++) m[i] = this.beta * m[i] + (1 - this.beta) * p[i];
      src = m;
    }
    const { bytes } = newPayload(this.type, n, 1, 4 + signBytes(n));
    const l1 = loadBinding().signPack(src, bytes.subarray(20));
    new DataView(bytes.buffer).setFloat32(16, this.type === 'efsign' ? (n > 0 ? l1 / n : 0) : 1, true);
    return bytes;
  }

  /** Adds scale * sign (efsign) or the raw sign (signum: the vote is taken in begin()). */
  protected decodeAdd(payload: Uint8Array, out: Float32Array): void {
    const n = out.length;
    const { body } = readPayload(payload, this.type, n, (c) => (c === 1 ? 4 + signBytes(n) : NaN));
    const scale = f32At(body, 0, 1)[0];
    if (!(scale >= 0) || !Number.isFinite(scale)) throw corrupt('its scale is negative or not finite');
    const bits = body.subarray(4);
    for (let i = n; i < 8 * bits.length; i++) if ((bits[i >> 3] >> (i & 7)) & 1) throw corrupt('its padding bits are set');
    loadBinding().signUnpackAdd(bits, out, scale);
  }

  /** efsign: the average of the workers' scale * sign. signum: the majority vote, sign of the
   * sum of signs (a tie gives 0). */
  override decompress(payloads: Uint8Array[], n: number, out = new Float32Array(n)): Float32Array {
    if (this.type === 'efsign') return super.decompress(payloads, n, out);
    out.fill(0);
    for (const p of payloads) this.decodeAdd(p, out);
    for (let i = 0; i < n; i++) out[i] = Math.sign(out[i]);
    return out;
  }
}
