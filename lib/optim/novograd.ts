/**
 * NovoGrad (Ginsburg et al. 2019, arXiv 1905.11286): layer-wise second moments, decoupled weight
 * decay. Per parameter tensor l, with g the (globally averaged) gradient:
 *   n = ||g||²;  v = n on the tensor's first step, else beta2 v + (1 - beta2) n
 *   ĝ = g / (sqrt(v) + eps) + weightDecay * w      (decay added after normalization)
 *   ĝ *= (1 - beta1) when gradAveraging;  m = beta1 m + ĝ;  w -= lr m
 * State is m per weight plus one scalar v per tensor (half of Adam's). The first step is known by
 * v's absence, not by v == 0, so an all-zero first gradient does not misfire. Defaults follow
 * NeMo: betas (0.95, 0.98), eps 1e-8, weight decay 0. Tuning guide: lr 0.01-0.05 for CNNs with a
 * poly decay, weight decay 1e-3 to 4e-3; no warm-up needed.
 */
import { checkOptions, typeError } from '../native/errors';
import { novogradStep } from '../ops/kernels';
import { BaseOptimizer, OptimizerFields } from './optimizer';

export interface NovoGradOptions { lr: number; beta1?: number; beta2?: number; eps?: number; weightDecay?: number; gradAveraging?: boolean }

/** NovoGrad's per-tensor state. m: the first moment (per weight); v: the layer's second moment (a scalar; absent before the first step). */
export interface NovoGradTensorState { m?: Float32Array; v?: number }

export class NovoGrad extends BaseOptimizer<NovoGradTensorState> {
  readonly type = 'novograd';
  protected readonly fields: OptimizerFields<NovoGradTensorState> = { m: 'array', v: 'number' };
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  readonly gradAveraging: boolean;

  constructor(o: NovoGradOptions) {
    if (o === null || typeof o !== 'object') throw typeError('options', 'an options object', o);
    super(o.lr);
    checkOptions(o, 'options', ['lr', 'beta1', 'beta2', 'eps', 'weightDecay', 'gradAveraging']);
    const num = BaseOptimizer.option;
    this.beta1 = num(o.beta1, 'beta1', (x) => x >= 0 && x < 1, 'a number in [0, 1)') ?? 0.95;
    this.beta2 = num(o.beta2, 'beta2', (x) => x >= 0 && x < 1, 'a number in [0, 1)') ?? 0.98;
    this.eps = num(o.eps, 'eps', (x) => x >= 0 && Number.isFinite(x), 'a finite number >= 0') ?? 1e-8;
    this.weightDecay = num(o.weightDecay, 'weightDecay', (x) => x >= 0 && Number.isFinite(x), 'a finite number >= 0') ?? 0;
    if (o.gradAveraging !== undefined && typeof o.gradAveraging !== 'boolean') throw typeError('options.gradAveraging', 'a boolean', o.gradAveraging);
    this.gradAveraging = o.gradAveraging ?? false;
  }

  protected apply(t: NovoGradTensorState, w: Float32Array, g: Float32Array, lr: number, gradScale: number): void {
    const m = t.m ??= new Float32Array(w.length);
    t.v = novogradStep(w, g, m, { lr, beta1: this.beta1, beta2: this.beta2, eps: this.eps, weightDecay: this.weightDecay,
      gradAveraging: this.gradAveraging, gradScale }, t.v ?? null);
  }
}
