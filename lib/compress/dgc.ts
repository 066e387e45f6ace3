/**
 * Deep Gradient Compression (Lin et al., ICLR'18), after the authors' code (synxlin/deep-gradient-
 * compression): momentum correction, momentum factor masking, local gradient clipping and a
 * sparsity warm-up around top-k.
 *
 * Per tensor, with u (momentum) and v (velocity):
 *   clip: g <- g * min(1, clipNorm / sqrt(N) / ||g||)          (only when clipNorm is set)
 *   heavy ball: u <- mu u + g, v <- v + u;  Nesterov: u <- mu (u + g), v <- v + (u + g)
 *   send the k = ceil(density_t n) largest |v| (exact)
 *   masking: v_S <- 0 and u_S <- 0 at the indices actually sent
 * The optimizer must not apply momentum again to this gradient ("double momentum"): with the
 * distributed optimizers, the optimizer's own momentum moves into DGC (see lib/algorithms).
 *
 * Warm-up: density_t = max(ratio^((t + 1) / (W + 1)), ratio) for t < W (the authors' code). For
 * ratio 0.001 and W = 5: 0.316, 0.1, 0.0316, 0.01, 0.00316, then 0.001. Tuning guide: ratio 0.001
 * with momentum 0.9 as in the paper; warm up over the first epochs' worth of steps.
 */
import { dgcAccumulate, sumSquares } from '../ops/kernels';
import { topK, topKSync } from '../ops/topk';
import { StateFields, workersOf } from './base';
import { CompressorDescriptor, ENVELOPE, field, numel } from './descriptor';
import { GatherCompressor } from './gather';
import { ASYNC_ELEMENTS, decodeSparseAdd, keepCount, sparseEntries, sparseViews, warmupDensity } from './sparse';
import { newPayload } from './wire';
import type { StepContext } from './types';

export interface DgcSpec {
  type: 'dgc';
  ratio?: number;
  momentum?: number;
  nesterov?: boolean;
  momentumMasking?: boolean;
  clipNorm?: number;
  warmupSteps?: number;
}

/** DGC's per-tensor state. momentum: u, the corrected momentum; velocity: v, what was accumulated but not sent (its error memory). */
export interface DgcTensorState { momentum?: Float32Array; velocity?: Float32Array }

const KIND = 7;

export class DgcCompressor extends GatherCompressor<DgcTensorState> {
  readonly type = 'dgc';
  protected readonly stateFields: StateFields<DgcTensorState> = { momentum: 'array', velocity: 'array' };
  protected readonly errorFeedback = false; // v is the memory; handled in encode
  readonly ratio: number;
  readonly momentum: number;
  readonly nesterov: boolean;
  readonly momentumMasking: boolean;
  readonly clipNorm: number | undefined;
  readonly warmupSteps: number;

  constructor(spec: DgcSpec) {
    super();
    this.ratio = spec.ratio ?? 0.001;
    this.momentum = spec.momentum ?? 0.9;
    this.nesterov = spec.nesterov ?? false;
    this.momentumMasking = spec.momentumMasking ?? true;
    this.clipNorm = spec.clipNorm;
    this.warmupSteps = spec.warmupSteps ?? 0;
  }

  override residual(name: string): Float32Array | undefined {
    return this.tensors.get(name)?.velocity;
  }

  protected async encode(name: string, g: Float32Array, ctx: StepContext, reuse?: Uint8Array): Promise<Uint8Array> {
    const n = g.length, t = this.stateOf(name, n);
    const u = this.arrayOf(t, 'momentum', n), v = this.arrayOf(t, 'velocity', n);
    let clip = 1;
    if (this.clipNorm !== undefined) {
      const norm = Math.sqrt(sumSquares(g)), limit = this.clipNorm / Math.sqrt(workersOf(ctx).workers);
      if (norm > limit) clip = limit / norm;
    }
    dgcAccumulate(g, u, v, this.momentum, this.nesterov, clip);
    const k = keepCount(n, warmupDensity(this.ratio, this.warmupSteps, ctx.step));
    const bytes = newPayload(KIND, n, k, 8 * k, reuse);
    const out = sparseViews(bytes, k);
    if (n >= ASYNC_ELEMENTS) await topK(v, k, { out }); else topKSync(v, k, { out });
    for (let j = 0; j < k; j++) {
      const i = out.indices[j];
      v[i] = 0;
      if (this.momentumMasking) u[i] = 0;
    }
    return bytes;
  }

  protected decodeAdd(payload: Uint8Array, out: Float32Array): void {
    decodeSparseAdd(KIND, payload, out);
  }

  protected override sparseEntries(payload: Uint8Array, n: number): { indices: Uint32Array; values: Float32Array } {
    return sparseEntries(KIND, payload, n);
  }
}

export const descriptor: CompressorDescriptor<DgcSpec> = {
  type: 'dgc', wireKind: KIND,
  fields: {
    ratio: field.ratio(false), momentum: field.num((v) => v >= 0 && v < 1, 'a number in [0, 1)'), nesterov: field.bool(),
    momentumMasking: field.bool(), clipNorm: field.num((v) => v > 0 && Number.isFinite(v), 'a finite number > 0'),
    warmupSteps: field.int((v) => v >= 0, 'an integer >= 0'),
  },
  capabilities: { summable: false, errorFeedback: 'always', bareOperator: false, needsShape: false, collectives: ['allgather'] },
  expectedBytes: (spec, shape) => ENVELOPE + 8 * keepCount(numel(shape), spec.ratio ?? 0.001),
  create: (spec) => new DgcCompressor(spec),
};
