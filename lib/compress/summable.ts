/**
 * Compressors whose payloads can be summed by an allreduce.
 *
 * 'none': the dense fp32 gradient (the baseline every other compressor is measured against).
 *
 * 'randk': k = ratio * n coordinates chosen by a Philox stream keyed by (seed, step, tensor), the
 * same on every worker, so only the k values travel (4k bytes) and a plain allreduce sums them.
 * With error feedback (default) the values are sent unscaled and the rest stays in the residual;
 * without it they are scaled by n / k, which makes the estimate unbiased. Tuning guide: rand-k
 * needs a larger ratio than top-k for the same accuracy; it wins where allgather is expensive.
 */
import { loadBinding } from '../native/loader';
import { topKSync } from '../ops/topk';
import { asF32, BaseCompressor, ChainSession, workersOf } from './base';
import { keepCount } from './sparse';
import { scaled, scatter } from './kernels';
import { streamId } from './wire';
import type { Session, StepContext } from './types';

export class NoneCompressor extends BaseCompressor {
  readonly type = 'none';
  readonly summable = true;

  async begin(name: string, grad: Float32Array, ctx: StepContext): Promise<Session> {
    const { workers } = workersOf(ctx);
    const n = grad.length;
    return new ChainSession({ collective: 'allreduce', data: grad.slice() }, (result) => {
      return scaled(asF32(result, `summed length-${n}`), 1 / workers);
    }, (sent) => this.record(name, ctx.step, n, sent, 0));
  }
}

export interface RandKSpec { type: 'randk'; ratio: number; seed?: number; errorFeedback?: boolean }

/** The k coordinates every worker picks for (seed, step, tensor): the k smallest of n Philox
 * uniforms (ties to the lower index), in ascending order, so they are distinct. */
export function randkSupport(n: number, k: number, seed: number, step: number, stream: number): Uint32Array {
  const u = new Float32Array(n);
  const s = BigInt(seed);
  loadBinding().philoxFill(u, Number(s & 0xffffffffn), Number(s >> 32n), step >>> 0, stream, 0);
  for (let i = 0; i < n; i++) u[i] = 1 - u[i]; // largest of 1 - u = smallest of u; all in (0, 1]
  return topKSync(u, k).indices;
}

export class RandKCompressor extends BaseCompressor {
  readonly type = 'randk';
  readonly summable = true;
  readonly ratio: number;
  readonly seed: number;
  readonly errorFeedback: boolean;

  constructor(spec: RandKSpec) {
    super();
    this.ratio = spec.ratio;
    this.seed = spec.seed ?? 0;
    this.errorFeedback = spec.errorFeedback ?? true;
  }

  async begin(name: string, grad: Float32Array, ctx: StepContext): Promise<Session> {
    const { workers } = workersOf(ctx);
    const n = grad.length, k = keepCount(n, this.ratio);
    const [[idx, values], ms] = this.timed(() => {
      const support = randkSupport(n, k, this.seed, ctx.step, streamId(name));
      const vals = new Float32Array(k);
      if (this.errorFeedback) {
        const e = this.slot(name, 'residual', n);
        for (let i = 0; i < n; i++) e[i] += grad[i];
        for (let j = 0; j < k; j++) { const i = support[j]; vals[j] = e[i]; e[i] = 0; }
      } else {
        const scale = n / k;
        for (let j = 0; j < k; j++) vals[j] = grad[support[j]] * scale;
      }
      return [support, vals] as const;
    });
    return new ChainSession({ collective: 'allreduce', data: values }, (result) => {
      return scatter(n, idx, asF32(result, `summed length-${k}`), 1 / workers);
    }, (sent) => this.record(name, ctx.step, n, sent, ms));
  }
}
