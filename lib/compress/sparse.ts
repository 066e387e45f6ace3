/**
 * Top-k sparsification with error feedback (Stich et al. 2018, "sparsified SGD with memory";
 * Karimireddy et al. 2019). Tuning guide: ratio 0.1%-1% of each tensor; always keep error
 * feedback on (without it top-k is biased and stalls); the residual is in gradient units, so
 * rescale it if the learning rate jumps. Payload: k uint32 indices (ascending) + k float32 values,
 * 8k bytes; it travels by allgather, and beyond about 1/N density a dense allreduce moves fewer
 * bytes (specs/compressors.md §1(c)).
 */
import { efTopKSync, topKSync } from '../ops/topk';
import { GatherCompressor } from './gather';
import { corrupt, f32At, newPayload, readPayload, u32At } from './wire';
import type { StepContext } from './types';

export interface TopKSpec { type: 'topk'; ratio: number; errorFeedback?: boolean }

/** k = max(1, ceil(ratio * n)) for n > 0: tiny tensors still send something. */
export function keepCount(n: number, ratio: number): number {
  return n === 0 ? 0 : Math.min(n, Math.max(1, Math.ceil(ratio * n - 1e-9 * n)));
}

/** Sparse (index, value) payload shared by top-k style compressors. */
export function encodeSparse(kind: 'topk' | 'dgc', n: number, indices: Uint32Array, values: Float32Array): Uint8Array {
  const k = indices.length;
  const { bytes } = newPayload(kind, n, k, 8 * k);
  new Uint32Array(bytes.buffer, 16, k).set(indices);
  new Float32Array(bytes.buffer, 16 + 4 * k, k).set(values);
  return bytes;
}

export function decodeSparseAdd(kind: 'topk' | 'dgc', payload: Uint8Array, out: Float32Array): void {
  const n = out.length;
  const { count: k, body } = readPayload(payload, kind, n, (c) => (c <= n ? 8 * c : NaN));
  const idx = u32At(body, 0, k), val = f32At(body, 4 * k, k);
  for (let j = 0; j < k; j++) {
    if (idx[j] >= n || (j > 0 && idx[j] <= idx[j - 1])) throw corrupt('its indices are out of range or not ascending');
  }
  for (let j = 0; j < k; j++) out[idx[j]] += val[j];
}

export class TopKCompressor extends GatherCompressor {
  readonly type = 'topk';
  protected readonly errorFeedback: boolean;
  readonly ratio: number;

  constructor(spec: TopKSpec) {
    super();
    this.ratio = spec.ratio;
    this.errorFeedback = spec.errorFeedback ?? true;
  }

  /** The fused kernel: one pass forms grad + residual, selects, and zeroes the winners. */
  protected override encodeWithFeedback(_name: string, grad: Float32Array, e: Float32Array): Uint8Array {
    const sel = efTopKSync(grad, e, keepCount(grad.length, this.ratio));
    return encodeSparse('topk', grad.length, sel.indices, sel.values);
  }

  protected encode(_name: string, p: Float32Array, _ctx: StepContext): Uint8Array {
    const sel = topKSync(p, keepCount(p.length, this.ratio));
    return encodeSparse('topk', p.length, sel.indices, sel.values);
  }

  protected decodeAdd(payload: Uint8Array, out: Float32Array): void {
    decodeSparseAdd('topk', payload, out);
  }
}
