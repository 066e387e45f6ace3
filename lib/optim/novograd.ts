/**
 * NovoGrad (Ginsburg et al. 2019, arXiv 1905.11286): layer-wise second moments, decoupled weight
 * decay. Per parameter tensor l, with g the (globally averaged) gradient:
 *   n = ||g||²;  v = n on the tensor's first step, else beta2 v + (1 - beta2) n
 *   ĝ = g / (sqrt(v) + eps) + weightDecay * w      (decay added after normalization)
 *   ĝ *= (1 - beta1) when gradAveraging;  m = beta1 m + ĝ;  w -= lr m
 * State is m per weight plus one scalar v per tensor (half of Adam's). The first step is tracked
 * by a counter, not by v == 0, so an all-zero first gradient does not misfire. Defaults follow
 * NeMo: betas (0.95, 0.98), eps 1e-8, weight decay 0. Tuning guide: lr 0.01-0.05 for CNNs with a
 * poly decay, weight decay 1e-3 to 4e-3; no warm-up needed.
 */
import { typeError } from '../native/errors';
import { BaseOptimizer } from './optimizer';

export interface NovoGradOptions { lr: number; beta1?: number; beta2?: number; eps?: number; weightDecay?: number; gradAveraging?: boolean }

export class NovoGrad extends BaseOptimizer {
  readonly type = 'novograd';
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  readonly gradAveraging: boolean;

  constructor(o: NovoGradOptions) {
    if (o === null || typeof o !== 'object') throw typeError('options', 'an options object', o);
    super(o.lr);
    const num = BaseOptimizer.option;
    this.beta1 = num(o.beta1, 'beta1', (x) => x >= 0 && x < 1, 'a number in [0, 1)') ?? 0.95;
    this.beta2 = num(o.beta2, 'beta2', (x) => x >= 0 && x < 1, 'a number in [0, 1)') ?? 0.98;
    this.eps = num(o.eps, 'eps', (x) => x >= 0 && Number.isFinite(x), 'a finite number >= 0') ?? 1e-8;
    this.weightDecay = num(o.weightDecay, 'weightDecay', (x) => x >= 0 && Number.isFinite(x), 'a finite number >= 0') ?? 0;
    if (o.gradAveraging !== undefined && typeof o.gradAveraging !== 'boolean') throw typeError('options.gradAveraging', 'a boolean', o.gradAveraging);
    this.gradAveraging = o.gradAveraging ?? false;
  }

  protected update(name: string, w: Float32Array, g: Float32Array, lr: number): void {
    const n = w.length;
    let sq = 0;
    for (let i = 0; i < n; i++) sq += g[i] * g[i]; // float64 accumulation
    const prev = this.scalar(name, 'v');
    const v = prev === undefined ? sq : this.beta2 * prev + (1 - this.beta2) * sq;
    this.setScalar(name, 'v', v);
    const inv = 1 / (Math.sqrt(v) + this.eps), avg = this.gradAveraging ? 1 - this.beta1 : 1;
    const m = this.buffer(name, 'm', n);
    for (let i = 0; i < n; i++) {
      const gh = (g[i] * inv + this.weightDecay * w[i]) * avg;
      m[i] = this.beta1 * m[i] + gh;
      w[i] -= lr * m[i];
    }
  }
}
