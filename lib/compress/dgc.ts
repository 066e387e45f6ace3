/**
 * Deep Gradient Compression (Lin et al., ICLR'18), after the authors' code (synxlin/deep-gradient-
 * compression): momentum correction, momentum factor masking, local gradient clipping and a
 * sparsity warm-up around top-k.
 *
 * Per tensor, with u (momentum) and v (velocity):
 *   clip: g <- g * min(1, clipNorm / sqrt(N) / ||g||)          (only when clipNorm is set)
 *   heavy ball: u <- mu u + g, v <- v + u;  Nesterov: u <- mu (u + g), v <- v + u + g
 *   send the k = ceil(density_t n) largest |v| (exact: the fused selector samples a threshold
 *   internally and falls back to an exact select, so there is no under- or over-count to patch)
 *   masking: v_S <- 0 and u_S <- 0 at the indices actually sent
 * The optimizer must not apply momentum again to this gradient (spec §1(f), "double momentum").
 *
 * Warm-up: density_t = max(ratio^((t + 1) / (W + 1)), ratio) for t < W (the authors' code; its
 * README comment lists a different sequence). For ratio 0.001 and W = 5: 0.316, 0.1, 0.0316, 0.01,
 * 0.00316, then 0.001. Tuning guide: ratio 0.001 with momentum 0.9 as in the paper; warm up over
 * the first epochs' worth of steps when training from scratch.
 */
import { topKSync } from '../ops/topk';
import { GatherCompressor } from './gather';
import { decodeSparseAdd, encodeSparse, keepCount } from './sparse';
import { workersOf } from './base';
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

export function dgcDensity(ratio: number, warmupSteps: number, step: number): number {
  if (step >= warmupSteps) return ratio;
  return Math.max(ratio ** ((step + 1) / (warmupSteps + 1)), ratio);
}

export class DgcCompressor extends GatherCompressor {
  readonly type = 'dgc';
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

  /** DGC's memory is the velocity v: what was accumulated but not yet sent. */
  override residual(name: string): Float32Array | undefined {
    const v = this.tensors.get(name)?.velocity;
    return v instanceof Float32Array ? v : undefined;
  }

  protected encode(name: string, g: Float32Array, ctx: StepContext): Uint8Array {
    const n = g.length;
    const u = this.slot(name, 'momentum', n), v = this.slot(name, 'velocity', n);
    let c = 1;
    if (this.clipNorm !== undefined) {
      let sq = 0;
      for (let i = 0; i < n; i++) sq += g[i] * g[i];
      const limit = this.clipNorm / Math.sqrt(workersOf(ctx).workers);
      if (Math.sqrt(sq) > limit) c = limit / Math.sqrt(sq);
    }
    const mu = this.momentum;
    for (let i = 0; i < n; i++) {
      const gi = g[i] * c;
      if (this.nesterov) { u[i] = mu * (u[i] + gi); v[i] += u[i] + gi; } else { u[i] = mu * u[i] + gi; v[i] += u[i]; }
    }
    const sel = topKSync(v, keepCount(n, dgcDensity(this.ratio, this.warmupSteps, ctx.step)));
    for (const i of sel.indices) {
      v[i] = 0;
      if (this.momentumMasking) u[i] = 0;
    }
    return encodeSparse('dgc', n, sel.indices, sel.values);
  }

  protected decodeAdd(payload: Uint8Array, out: Float32Array): void {
    decodeSparseAdd('dgc', payload, out);
  }
}
