/**
 * SGD with momentum and Nesterov (PyTorch's semantics, so published recipes carry over):
 *   d = g + weightDecay * w
 *   buf = d on the first step, else momentum * buf + (1 - dampening) * d
 *   d = nesterov ? d + momentum * buf : buf          (when momentum > 0)
 *   w -= lr * d
 * Tuning guide: momentum 0.9 with lr scaled to the global batch; Nesterov usually a little better;
 * weight decay 1e-4 to 5e-4 for CNNs. With DGC the compressor already applies momentum: use
 * momentum 0 here (specs/compressors.md §1(f), "double momentum").
 */
import { typeError } from '../native/errors';
import { BaseOptimizer } from './optimizer';

export interface SgdOptions { lr: number; momentum?: number; nesterov?: boolean; weightDecay?: number; dampening?: number }

export class Sgd extends BaseOptimizer {
  readonly type = 'sgd';
  readonly momentum: number;
  readonly nesterov: boolean;
  readonly weightDecay: number;
  readonly dampening: number;

  constructor(o: SgdOptions) {
    if (o === null || typeof o !== 'object') throw typeError('options', 'an options object', o);
    super(o.lr);
    const num = BaseOptimizer.option;
    this.momentum = num(o.momentum, 'momentum', (x) => x >= 0 && x < 1, 'a number in [0, 1)') ?? 0;
    this.weightDecay = num(o.weightDecay, 'weightDecay', (x) => x >= 0 && Number.isFinite(x), 'a finite number >= 0') ?? 0;
    this.dampening = num(o.dampening, 'dampening', (x) => x >= 0 && x <= 1, 'a number in [0, 1]') ?? 0;
    if (o.nesterov !== undefined && typeof o.nesterov !== 'boolean') throw typeError('options.nesterov', 'a boolean', o.nesterov);
    this.nesterov = o.nesterov ?? false;
    if (this.nesterov && (this.momentum === 0 || this.dampening !== 0)) throw typeError('options.nesterov', 'momentum > 0 and dampening 0 for Nesterov', o.nesterov);
  }

  protected update(name: string, w: Float32Array, g: Float32Array, lr: number): void {
    const mu = this.momentum, wd = this.weightDecay, n = w.length;
    const buf = mu > 0 ? this.buffer(name, 'momentum', n) : undefined;
    const first = mu > 0 && this.scalar(name, 'started') === undefined;
    for (let i = 0; i < n; i++) {
      let d = g[i] + wd * w[i];
      if (buf) {
        buf[i] = first ? d : mu * buf[i] + (1 - this.dampening) * d;
        d = this.nesterov ? d + mu * buf[i] : buf[i];
      }
      w[i] -= lr * d;
    }
    if (first) this.setScalar(name, 'started', 1);
  }
}
