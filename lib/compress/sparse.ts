/**
 * Top-k sparsification with error feedback (Stich et al. 2018, "sparsified SGD with memory";
 * Karimireddy et al. 2019). Tuning guide: ratio 0.1%-1% of each tensor; always keep error
 * feedback on (without it top-k is biased and stalls); the residual is in gradient units, so
 * rescale it if the learning rate jumps. Payload: k uint32 indices (ascending) + k float32 values,
 * 8k bytes; it travels by allgather, and beyond about 1/N density a dense allreduce moves fewer
 * bytes.
 */
import { efTopK, efTopKSync, topK, topKSync } from '../ops/topk';
import { scatterAdd } from '../ops/kernels';
import { CompressorDescriptor, ENVELOPE, field, numel } from './descriptor';
import { GatherCompressor, ResidualState } from './gather';
import { StateFields } from './base';
import { corrupt, f32At, newPayload, readPayload, u32At } from './wire';
import type { StepContext } from './types';

export interface TopKSpec {
  type: 'topk';
  ratio: number;
  errorFeedback?: boolean;
  /**
   * DGC's warm-up of sparsity (Lin et al. 2018), for top-k too: over the first warmupSteps steps
   * the density falls exponentially from nearly dense to `ratio` (ratio^((t+1)/(W+1)) at step t),
   * so the early, fast-changing steps lose little to the residual. Default 0 (none).
   */
  warmupSteps?: number;
}

/** The density at step `step` of a warm-up over `warmupSteps` steps towards `ratio` (DGC's exponential schedule). */
export function warmupDensity(ratio: number, warmupSteps: number, step: number): number {
  if (step >= warmupSteps) return ratio;
  return Math.max(ratio ** ((step + 1) / (warmupSteps + 1)), ratio);
}

/** k = max(1, ceil(ratio * n)) for n > 0: tiny tensors still send something. */
export function keepCount(n: number, ratio: number): number {
  return n === 0 ? 0 : Math.min(n, Math.max(1, Math.ceil(ratio * n - 1e-9 * n)));
}

/** Kernels this large run off the main thread; smaller ones are cheaper inline. */
export const ASYNC_ELEMENTS = 1 << 16;

/** Sparse (index, value) payload views: k uint32 indices then k float32 values after the envelope. */
export function sparseViews(bytes: Uint8Array, k: number): { indices: Uint32Array; values: Float32Array } {
  return { indices: new Uint32Array(bytes.buffer, bytes.byteOffset + ENVELOPE, k), values: new Float32Array(bytes.buffer, bytes.byteOffset + ENVELOPE + 4 * k, k) };
}

/** A sparse payload of `kind` for n elements as its entries (the envelope checked, not the indices' order). */
export function sparseEntries(kind: number, payload: Uint8Array, n: number): { indices: Uint32Array; values: Float32Array } {
  const { count: k, body } = readPayload(payload, kind, n, (c) => (c <= n ? 8 * c : NaN));
  return { indices: u32At(body, 0, k), values: f32At(body, 4 * k, k) };
}

/** Adds a sparse payload of `kind` into out (indices strictly ascending and in range, else corrupt). */
export function decodeSparseAdd(kind: number, payload: Uint8Array, out: Float32Array): void {
  const { indices, values } = sparseEntries(kind, payload, out.length);
  try {
    scatterAdd(out, indices, values);
  } catch (e) {
    if ((e as { code?: string }).code === 'ERR_GRADCOMP_CORRUPT_PAYLOAD') throw corrupt('its indices are out of range or not ascending');
    throw e;
  }
}

const KIND = 3;

export class TopKCompressor extends GatherCompressor {
  readonly type = 'topk';
  protected readonly stateFields: StateFields<ResidualState> = { residual: 'array' };
  protected readonly errorFeedback: boolean;
  readonly ratio: number;
  readonly warmupSteps: number;

  constructor(spec: TopKSpec) {
    super();
    this.ratio = spec.ratio;
    this.errorFeedback = spec.errorFeedback ?? true;
    this.warmupSteps = spec.warmupSteps ?? 0;
  }

  /** Entries kept of n at this step (the warm-up's density, then `ratio`). */
  #keep(n: number, ctx: StepContext): number {
    return keepCount(n, warmupDensity(this.ratio, this.warmupSteps, ctx.step));
  }

  /** The fused kernel: one pass forms grad + residual, selects, zeroes the winners, and writes them into the payload. */
  protected override async encodeWithFeedback(_name: string, grad: Float32Array, e: Float32Array, ctx: StepContext, reuse?: Uint8Array): Promise<Uint8Array> {
    const n = grad.length, k = this.#keep(n, ctx);
    const bytes = newPayload(KIND, n, k, 8 * k, reuse);
    const out = sparseViews(bytes, k);
    if (n >= ASYNC_ELEMENTS) await efTopK(grad, e, k, { out }); else efTopKSync(grad, e, k, { out });
    return bytes;
  }

  protected async encode(_name: string, p: Float32Array, ctx: StepContext, reuse?: Uint8Array): Promise<Uint8Array> {
    const n = p.length, k = this.#keep(n, ctx);
    const bytes = newPayload(KIND, n, k, 8 * k, reuse);
    const out = sparseViews(bytes, k);
    if (n >= ASYNC_ELEMENTS) await topK(p, k, { out }); else topKSync(p, k, { out });
    return bytes;
  }

  protected decodeAdd(payload: Uint8Array, out: Float32Array): void {
    decodeSparseAdd(KIND, payload, out);
  }

  protected override sparseEntries(payload: Uint8Array, n: number): { indices: Uint32Array; values: Float32Array } {
    return sparseEntries(KIND, payload, n);
  }
}

export const descriptor: CompressorDescriptor<TopKSpec> = {
  type: 'topk', wireKind: KIND,
  fields: { ratio: field.ratio(true), errorFeedback: field.errorFeedback(), warmupSteps: field.int((v) => v >= 0, 'an integer >= 0') },
  capabilities: { summable: false, errorFeedback: 'optional', bareOperator: true, needsShape: false, collectives: ['allgather'] },
  expectedBytes: (spec, shape) => ENVELOPE + 8 * keepCount(numel(shape), spec.ratio),
  create: (spec) => new TopKCompressor(spec),
};
