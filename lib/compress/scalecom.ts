/**
 * ScaleCom (Chen et al., NeurIPS'20): cyclic local top-k with a low-pass-filtered memory. The
 * leader of step t is rank t mod N; it picks the k largest |u| of its own u = m + g and broadcasts
 * the indices; every worker then sends u at those same indices, so the values travel by an
 * allreduce whose size does not grow with N. Memory: m <- (1 - beta) m + beta (u - c), where c
 * is u on the sent indices and 0 elsewhere. beta = 1 (the default) is plain error feedback and
 * conserves mass (u is formed in m's own buffer and the sent entries are zeroed); beta < 1 is the
 * paper's low-pass filter, which the paper lowers for large batches, and it does not conserve mass.
 * Tuning guide: ratio as for top-k.
 */
import { performance } from 'node:perf_hooks';
import { vecAdd } from '../ops/kernels';
import { topK, topKSync } from '../ops/topk';
import { asF32, BaseCompressor, ChainSession, deferred, outFor, StateFields, workersOf } from './base';
import { CompressorDescriptor, field, numel } from './descriptor';
import type { ResidualState } from './gather';
import { ASYNC_ELEMENTS, keepCount } from './sparse';
import { corrupt } from './wire';
import type { Round, RoundResult, Session, StepContext } from './types';

export interface ScaleComSpec { type: 'scalecom'; ratio: number; beta?: number }

export class ScaleComCompressor extends BaseCompressor<ResidualState> {
  readonly type = 'scalecom';
  readonly summable = true;
  protected readonly stateFields: StateFields<ResidualState> = { residual: 'array' };
  readonly ratio: number;
  readonly beta: number;
  #u = new Float32Array(0);

  constructor(spec: ScaleComSpec) {
    super();
    this.ratio = spec.ratio;
    this.beta = spec.beta ?? 1;
  }

  async begin(name: string, grad: Float32Array, ctx: StepContext): Promise<Session> {
    const { rank, workers } = workersOf(ctx);
    const n = grad.length, k = keepCount(n, this.ratio), out = outFor(ctx, n);
    const t0 = performance.now();
    const leader = ctx.step % workers;
    const m = this.arrayOf(this.stateOf(name, n), 'residual', n);
    // u = m + g: in m's buffer when beta = 1 (m becomes u minus what is sent), else in scratch.
    let u = m;
    if (this.beta !== 1) {
      if (this.#u.length < n) this.#u = new Float32Array(n);
      u = this.#u.subarray(0, n);
    }
    vecAdd(u, m, grad);
    const mine = rank !== leader ? new Uint32Array(0) : n >= ASYNC_ELEMENTS ? (await topK(u, k)).indices : topKSync(u, k).indices;
    const first: Round = { collective: 'broadcast', root: leader, data: new Uint8Array(mine.buffer, mine.byteOffset, mine.byteLength) };
    let idx = new Uint32Array(0);
    let ms = performance.now() - t0;
    const next = (res: RoundResult, index: number): Round | Float32Array => {
      const t1 = performance.now();
      if (index === 0) {
        const bytes = res as Uint8Array;
        if (Object.prototype.toString.call(bytes) !== '[object Uint8Array]' || bytes.length !== 4 * k) throw corrupt(`the leader's indices are not ${k} uint32`);
        idx = new Uint32Array(bytes.slice().buffer);
        for (let j = 0; j < k; j++) if (idx[j] >= n || (j > 0 && idx[j] <= idx[j - 1])) throw corrupt("the leader's indices are out of range or not ascending");
        const c = new Float32Array(k);
        for (let j = 0; j < k; j++) c[j] = u[idx[j]];
        const b = this.beta;
        if (b === 1) {
          for (let j = 0; j < k; j++) m[idx[j]] = 0; // m = u - c
        } else {
          // m <- (1 - b) m + b (u - c); u - c is 0 on the sent indices.
          const onSupport = Float32Array.from(idx, (i) => (1 - b) * m[i]);
          for (let i = 0; i < n; i++) m[i] = (1 - b) * m[i] + b * u[i];
          for (let j = 0; j < k; j++) m[idx[j]] = onSupport[j];
        }
        ms += performance.now() - t1;
        return { collective: 'allreduce', data: c };
      }
      const sum = asF32(res, k, `summed length-${k} values`);
      const s = ctx.deferScale ? 1 : 1 / workers;
      out.fill(0);
      for (let j = 0; j < k; j++) out[idx[j]] = s === 1 ? sum[j] : sum[j] * s;
      ms += performance.now() - t1;
      return out;
    };
    return new ChainSession(first, next, (sent) => this.record(name, ctx.step, n, sent, ms), deferred(ctx, workers));
  }
}

export const descriptor: CompressorDescriptor<ScaleComSpec> = {
  type: 'scalecom', wireKind: null,
  fields: { ratio: field.ratio(true), beta: field.num((v) => v > 0 && v <= 1, 'a number in (0, 1]') },
  capabilities: { summable: true, errorFeedback: 'always', bareOperator: false, needsShape: false, collectives: ['broadcast', 'allreduce'] },
  expectedBytes: (spec, shape) => 4 * keepCount(numel(shape), spec.ratio),
  create: (spec) => new ScaleComCompressor(spec),
};
