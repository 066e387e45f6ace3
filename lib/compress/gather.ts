/**
 * Single-round compressors whose payloads travel by allgather (supports or scales differ per
 * worker): encode once, gather every worker's payload, decode and average. Error feedback is a
 * memory any of them can wear: p = grad + e is encoded and e = p - decode(payload) keeps what was
 * not sent, so sent + kept always equals what came in (up to float rounding).
 */
import { BaseCompressor, ChainSession, asPayloads, workersOf } from './base';
import type { Session, StepContext } from './types';

export abstract class GatherCompressor extends BaseCompressor {
  readonly summable = false;
  protected abstract readonly errorFeedback: boolean;

  /** Encodes p (the gradient, plus the residual when error feedback is on) into a payload. */
  protected abstract encode(name: string, p: Float32Array, ctx: StepContext): Uint8Array;
  /** Adds the payload's dense value into `out` (validating the payload). */
  protected abstract decodeAdd(payload: Uint8Array, out: Float32Array): void;

  /** p = grad + e; encode p; e = p - decode(payload). Overridden where a kernel fuses it. */
  protected encodeWithFeedback(name: string, grad: Float32Array, e: Float32Array, ctx: StepContext): Uint8Array {
    const n = grad.length;
    const p = new Float32Array(n);
    for (let i = 0; i < n; i++) p[i] = grad[i] + e[i];
    const payload = this.encode(name, p, ctx);
    const mine = new Float32Array(n);
    this.decodeAdd(payload, mine);
    for (let i = 0; i < n; i++) e[i] = p[i] - mine[i];
    return payload;
  }

  /**
   * The bare operator, no error feedback and no state: C(v) as a payload, and its dense value
   * added into `out`. For algorithms that keep their own errors (DoubleSqueeze, LIEC-SGD's
   * worker and server sides); stateful encoders (Signum's momentum, DGC) must not be used so.
   */
  encodeRaw(name: string, v: Float32Array, ctx: StepContext): Uint8Array {
    return this.encode(name, v, ctx);
  }

  decodeRawAdd(payload: Uint8Array, out: Float32Array): void {
    this.decodeAdd(payload, out);
  }

  /** One worker's payload for `grad` (the first and only round's data). */
  async compress(name: string, grad: Float32Array, ctx: StepContext): Promise<Uint8Array> {
    return (await this.begin(name, grad, ctx)).round!.data as Uint8Array;
  }

  /** The average of the dense values of `payloads` (length n). */
  decompress(payloads: Uint8Array[], n: number, out = new Float32Array(n)): Float32Array {
    out.fill(0);
    for (const p of payloads) this.decodeAdd(p, out);
    if (payloads.length > 1) for (let i = 0; i < n; i++) out[i] /= payloads.length;
    return out;
  }

  async begin(name: string, grad: Float32Array, ctx: StepContext): Promise<Session> {
    const { workers } = workersOf(ctx);
    const n = grad.length;
    const [payload, ms] = this.timed(() =>
      this.errorFeedback ? this.encodeWithFeedback(name, grad, this.slot(name, 'residual', n), ctx) : this.encode(name, grad, ctx));
    return new ChainSession({ collective: 'allgather', data: payload },
      (result) => this.decompress(asPayloads(result, workers), n),
      (sent) => this.record(name, ctx.step, n, sent, ms));
  }
}
