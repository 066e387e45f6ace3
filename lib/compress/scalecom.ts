/**
 * ScaleCom (Chen et al., NeurIPS'20): cyclic local top-k with a low-pass-filtered memory. The
 * leader of step t is rank t mod N; it picks the k largest |u| of its own u = m + g and broadcasts
 * the indices; every worker then sends u at those same indices, so the values travel by an
 * allreduce whose size does not grow with N. Memory: m <- (1 - beta) m + beta (u - c), where c
 * is u on the sent indices and 0 elsewhere. beta = 1 (the default) is plain error feedback and
 * conserves mass; beta < 1 is the paper's low-pass filter, which the paper lowers for large
 * batches, and it does not conserve mass (spec §7(f)). Tuning guide: ratio as for top-k.
 */
import { topKSync } from '../ops/topk';
import { BaseCompressor, ChainSession, asF32, workersOf } from './base';
import { keepCount } from './sparse';
import { scatter } from './kernels';
import { corrupt } from './wire';
import type { Round, RoundResult, Session, StepContext } from './types';

export interface ScaleComSpec { type: 'scalecom'; ratio: number; beta?: number }

export class ScaleComCompressor extends BaseCompressor {
  readonly type = 'scalecom';
  readonly summable = true;
  readonly ratio: number;
  readonly beta: number;

  constructor(spec: ScaleComSpec) {
    super();
    this.ratio = spec.ratio;
    this.beta = spec.beta ?? 1;
  }

  async begin(name: string, grad: Float32Array, ctx: StepContext): Promise<Session> {
    const { rank, workers } = workersOf(ctx);
    const n = grad.length, k = keepCount(n, this.ratio);
    const leader = ctx.step % workers;
    const m = this.slot(name, 'residual', n);
    const u = new Float32Array(n);
    for (let i = 0; i < n; i++) u[i] = m[i] + grad[i];
    const mine = rank === leader ? topKSync(u, k).indices : new Uint32Array(0);
    const first: Round = { collective: 'broadcast', root: leader, data: new Uint8Array(mine.buffer, mine.byteOffset, mine.byteLength) };
    let idx = new Uint32Array(0);
    const next = (res: RoundResult, index: number): Round | Float32Array => {
      if (index === 0) {
        const bytes = res as Uint8Array;
        if (Object.prototype.toString.call(bytes) !== '[object Uint8Array]' || bytes.length !== 4 * k) throw corrupt(`the leader's indices are not ${k} uint32`);
        idx = new Uint32Array(bytes.slice().buffer);
        for (let j = 0; j < k; j++) if (idx[j] >= n || (j > 0 && idx[j] <= idx[j - 1])) throw corrupt("the leader's indices are out of range or not ascending");
        const c = new Float32Array(k);
        idx.forEach((i, j) => { c[j] = u[i]; });
        // Memory update: m <- (1 - beta) m + beta (u - c); u - c is 0 on the sent indices.
        const b = this.beta;
        const onSupport = Float32Array.from(idx, (i) => (1 - b) * m[i]);
        for (let i = 0; i < n; i++) m[i] = b === 1 ? u[i] : (1 - b) * m[i] + b * u[i];
        idx.forEach((i, j) => { m[i] = onSupport[j]; });
        return { collective: 'allreduce', data: c };
      }
      return scatter(n, idx, asF32(res, `summed length-${k}`), 1 / workers);
    };
    return new ChainSession(first, next, (sent) => this.record(name, ctx.step, n, sent, 0));
  }
}
