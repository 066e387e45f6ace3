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
import { performance } from 'node:perf_hooks';
import { randkSupport, vecAdd, vecScale } from '../ops/kernels';
import { asF32, BaseCompressor, ChainSession, deferred, outFor, StateFields, workersOf } from './base';
import { CompressorDescriptor, field, numel } from './descriptor';
import type { ResidualState } from './gather';
import { keepCount } from './sparse';
import { streamId } from './wire';
import type { Session, StepContext } from './types';

export interface NoneSpec { type: 'none' }

/** The dense gradient: the round's buffer is the output (the transport sums it in place). */
export class NoneCompressor extends BaseCompressor<Record<string, never>> {
  readonly type = 'none';
  readonly summable = true;
  protected readonly stateFields: StateFields<Record<string, never>> = {};

  async begin(name: string, grad: Float32Array, ctx: StepContext): Promise<Session> {
    const { workers } = workersOf(ctx);
    const n = grad.length, out = outFor(ctx, n);
    out.set(grad);
    return new ChainSession({ collective: 'allreduce', data: out }, (result) => {
      const sum = asF32(result, n, `summed length-${n} gradient`);
      if (sum !== out) out.set(sum);
      if (!ctx.deferScale && workers > 1) vecScale(out, 1 / workers);
      return out;
    }, (sent) => this.record(name, ctx.step, n, sent, 0), deferred(ctx, workers));
  }
}

export interface RandKSpec { type: 'randk'; ratio: number; seed?: number; errorFeedback?: boolean }

export class RandKCompressor extends BaseCompressor<ResidualState> {
  readonly type = 'randk';
  readonly summable = true;
  protected readonly stateFields: StateFields<ResidualState> = { residual: 'array' };
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
    const n = grad.length, k = keepCount(n, this.ratio), out = outFor(ctx, n);
    const t0 = performance.now();
    const idx = randkSupport(n, k, this.seed, ctx.step >>> 0, streamId(name));
    const vals = new Float32Array(k);
    if (this.errorFeedback) {
      const e = this.arrayOf(this.stateOf(name, n), 'residual', n);
      vecAdd(e, e, grad);
      for (let j = 0; j < k; j++) { const i = idx[j]; vals[j] = e[i]; e[i] = 0; }
    } else {
      const scale = n / k;
      for (let j = 0; j < k; j++) vals[j] = grad[idx[j]] * scale;
    }
    const ms = performance.now() - t0;
    const s = ctx.deferScale ? 1 : 1 / workers;
    return new ChainSession({ collective: 'allreduce', data: vals }, (result) => {
      const sum = asF32(result, k, `summed length-${k} values`);
      out.fill(0);
      for (let j = 0; j < k; j++) out[idx[j]] = s === 1 ? sum[j] : sum[j] * s;
      return out;
    }, (sent) => this.record(name, ctx.step, n, sent, ms), deferred(ctx, workers));
  }
}

export const none: CompressorDescriptor<NoneSpec> = {
  type: 'none', wireKind: null, computeNsPerElement: 0, fields: {},
  capabilities: { summable: true, errorFeedback: 'never', bareOperator: false, needsShape: false, collectives: ['allreduce'] },
  expectedBytes: (_spec, shape) => 4 * numel(shape),
  create: () => new NoneCompressor(),
};

export const randk: CompressorDescriptor<RandKSpec> = {
  type: 'randk', wireKind: null,
  fields: { ratio: field.ratio(true), seed: field.seed(), errorFeedback: field.errorFeedback() },
  capabilities: { summable: true, errorFeedback: 'optional', bareOperator: false, needsShape: false, collectives: ['allreduce'] },
  expectedBytes: (spec, shape) => 4 * keepCount(numel(shape), spec.ratio),
  create: (spec) => new RandKCompressor(spec),
};
