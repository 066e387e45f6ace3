/**
 * Single-round compressors whose payloads travel by allgather (supports or scales differ per
 * worker): encode once, gather every worker's payload, decode and average. Error feedback is a
 * memory any of them can wear: p = grad + e is encoded and e = p - decode(payload) keeps what was
 * not sent, so sent + kept always equals what came in (up to float rounding). With ctx.out (the
 * algorithms' fast path) payload buffers are kept per tensor and reused across steps, and decoding
 * adds every payload into ctx.out in rank order; a round's data is then valid until the tensor's
 * next begin().
 */
import { performance } from 'node:perf_hooks';
import { vecAdd, vecAxpy, vecScale } from '../ops/kernels';
import { asPayloads, BaseCompressor, ChainSession, deferred, outFor, workersOf } from './base';
import type { Session, StepContext } from './types';
import type { QuantizedGrad, SparseGrad } from '../ops/kernels';

export interface ResidualState {
  /** e: what error feedback has not sent yet, in gradient units. */
  residual?: Float32Array;
}

export abstract class GatherCompressor<T extends object = ResidualState> extends BaseCompressor<T> {
  readonly summable = false;
  /** Whether p = grad + e is encoded (and e updated) rather than grad alone. */
  protected abstract readonly errorFeedback: boolean;
  /** Whether the result is the workers' average (false: a vote, already final). */
  protected readonly averages: boolean = true;
  readonly #payloads = new Map<string, Uint8Array>();
  /** Per tensor: the concatenated entries a sparse result hands over (StepContext.sparse), reused across steps. */
  readonly #entries = new Map<string, { indices: Uint32Array; values: Float32Array }>();
  #mine: Float32Array = new Float32Array(0);

  /** Encodes p into a payload; `reuse` is the tensor's payload of the previous step (rewrite it when the size fits). */
  protected abstract encode(name: string, p: Float32Array, ctx: StepContext, reuse?: Uint8Array): Uint8Array | Promise<Uint8Array>;
  /** Adds the payload's dense value into `out` (validating the payload). */
  protected abstract decodeAdd(payload: Uint8Array, out: Float32Array): void;

  /** p = grad + e; encode p; e = p - decode(payload). Overridden where a kernel fuses it. */
  protected async encodeWithFeedback(name: string, grad: Float32Array, e: Float32Array, ctx: StepContext, reuse?: Uint8Array): Promise<Uint8Array> {
    const n = grad.length;
    vecAdd(e, grad, e); // e now holds p
    const payload = await this.encode(name, e, ctx, reuse);
    if (this.#mine.length < n) this.#mine = new Float32Array(n);
    const mine = this.#mine.subarray(0, n);
    mine.fill(0);
    this.decodeAdd(payload, mine);
    vecAxpy(e, mine, -1);
    return payload;
  }

  /**
   * The bare operator, no error feedback and no state: C(v) as a payload, and its dense value
   * added into `out`. For algorithms that keep their own errors (DoubleSqueeze, LIEC-SGD's
   * worker and server sides); stateful encoders (Signum's momentum, DGC) must not be used so.
   */
  encodeRaw(name: string, v: Float32Array, ctx: StepContext): Uint8Array | Promise<Uint8Array> {
    return this.encode(name, v, ctx);
  }

  decodeRawAdd(payload: Uint8Array, out: Float32Array): void {
    this.decodeAdd(payload, out);
  }

  /**
   * A sparse compressor's payload as its (index, value) entries (the envelope checked; the indices'
   * order and range are checked by whoever applies them); null: the payloads are not sparse.
   */
  protected sparseEntries(_payload: Uint8Array, _n: number): { indices: Uint32Array; values: Float32Array } | null { return null; }

  /** QSGD payloads as the (offset, length) spans an optimizer decodes itself (their envelopes checked); null: not QSGD or not one buffer. */
  protected quantizedSum(_payloads: Uint8Array[], _n: number): QuantizedGrad | null { return null; }

  /** The payloads' entries concatenated into the tensor's reused buffers, or null where they are not sparse. */
  #sparse(name: string, payloads: Uint8Array[], n: number): SparseGrad | null {
    const parts: { indices: Uint32Array; values: Float32Array }[] = [];
    for (const p of payloads) {
      const e = this.sparseEntries(p, n);
      if (e === null) return null;
      parts.push(e);
    }
    const total = parts.reduce((a, e) => a + e.indices.length, 0);
    let buf = this.#entries.get(name);
    if (!buf || buf.indices.length < total) {
      const cap = Math.ceil(total * 1.25);
      buf = { indices: new Uint32Array(cap), values: new Float32Array(cap) };
      this.#entries.set(name, buf);
    }
    const counts = new Uint32Array(parts.length);
    let off = 0;
    parts.forEach((e, r) => { buf!.indices.set(e.indices, off); buf!.values.set(e.values, off); counts[r] = e.indices.length; off += e.indices.length; });
    return { indices: buf.indices.subarray(0, total), values: buf.values.subarray(0, total), counts };
  }

  /** One worker's payload for `grad` (the first and only round's data). */
  async compress(name: string, grad: Float32Array, ctx: StepContext): Promise<Uint8Array> {
    return (await this.begin(name, grad, ctx)).round!.data as Uint8Array;
  }

  /**
   * Writes scale * the sum of the payloads into out in one fused pass where a kernel does it
   * (the payloads are views of one receive buffer); false to take the generic path. Must give the
   * bits of the generic path: zero-fill, decodeAdd each in order, then scale.
   */
  protected decodeSum(_payloads: Uint8Array[], _out: Float32Array, _scale: number): boolean { return false; }

  /** The dense sum of `payloads` (length n) into out; divided by their count unless `average` is false. */
  decompress(payloads: Uint8Array[], n: number, out: Float32Array = new Float32Array(n), average = true): Float32Array {
    if (out.length === n && payloads.length > 0 && this.decodeSum(payloads, out, average && payloads.length > 1 ? 1 / payloads.length : 1)) return out;
    out.fill(0);
    for (const p of payloads) this.decodeAdd(p, out);
    if (average && payloads.length > 1) vecScale(out, 1 / payloads.length);
    return out;
  }

  async begin(name: string, grad: Float32Array, ctx: StepContext): Promise<Session> {
    const { workers } = workersOf(ctx);
    const n = grad.length;
    const out = outFor(ctx, n);
    const t0 = performance.now();
    const reuse = ctx.out !== undefined ? this.#payloads.get(name) : undefined;
    const payload = this.errorFeedback
      ? await this.encodeWithFeedback(name, grad, this.arrayOf(this.stateOf(name, n), 'residual' as keyof T, n), ctx, reuse)
      : await this.encode(name, grad, ctx, reuse);
    if (ctx.out !== undefined) this.#payloads.set(name, payload);
    const ms = performance.now() - t0;
    // With a caller that applies sparse entries (Optimizer.updateSparse), the average is never formed here.
    const handOff = ctx.deferScale === true && this.averages;
    const session: ChainSession = new ChainSession({ collective: 'allgather', data: payload },
      (result) => {
        const payloads = asPayloads(result, workers);
        if (handOff && ctx.sparse === true && (session.sparse = this.#sparse(name, payloads, n)) !== null) return out;
        if (handOff && ctx.quantized === true && (session.quantized = this.quantizedSum(payloads, n)) !== null) return out;
        return this.decompress(payloads, n, out, !ctx.deferScale);
      },
      (sent) => this.record(name, ctx.step, n, sent, ms), this.averages ? deferred(ctx, workers) : 1);
    return session;
  }
}
