/**
 * SGD with momentum and Nesterov (PyTorch's semantics, so published recipes carry over):
 *   d = g + weightDecay * w
 *   buf = d on the first step, else momentum * buf + (1 - dampening) * d
 *   d = nesterov ? d + momentum * buf : buf          (when momentum > 0)
 *   w -= lr * d
 * in float32 arithmetic, one rounding per operation (native/core/optim.h), on whole tensors.
 * Tuning guide: momentum 0.9 with lr scaled to the global batch; Nesterov usually a little better;
 * weight decay 1e-4 to 5e-4 for CNNs. With DGC the distributed optimizers move this momentum into
 * the compressor's correction (DGC applies it before sparsifying), so it is not applied twice.
 */
import { checkOptions, typeError } from '../native/errors';
import { LowRankGrad, powerSgdReconstructSgd, powerSgdReconstructSgdAsync, qsgdDecodeSgd, QuantizedGrad, SgdArgs, SparseGrad, sgdSparseStep, sgdSparseStepAsync, sgdStep,
  sgdStepAsync } from '../ops/kernels';
import { BaseOptimizer, OptimizerFields, UpdateOptions } from './optimizer';

export interface SgdOptions { lr: number; momentum?: number; nesterov?: boolean; weightDecay?: number; dampening?: number }

/** SGD's per-tensor state. momentum: the momentum buffer (absent until the tensor's first step with momentum > 0). */
export interface SgdTensorState { momentum?: Float32Array }

export class Sgd extends BaseOptimizer<SgdTensorState> {
  readonly type = 'sgd';
  protected readonly fields: OptimizerFields<SgdTensorState> = { momentum: 'array' };
  readonly momentum: number;
  readonly nesterov: boolean;
  readonly weightDecay: number;
  readonly dampening: number;

  constructor(o: SgdOptions) {
    if (o === null || typeof o !== 'object') throw typeError('options', 'an options object', o);
    super(o.lr);
    checkOptions(o, 'options', ['lr', 'momentum', 'nesterov', 'weightDecay', 'dampening']); // a misspelt momentum would be 0 without a word
    const num = BaseOptimizer.option;
    this.momentum = num(o.momentum, 'momentum', (x) => x >= 0 && x < 1, 'a number in [0, 1)') ?? 0;
    this.weightDecay = num(o.weightDecay, 'weightDecay', (x) => x >= 0 && Number.isFinite(x), 'a finite number >= 0') ?? 0;
    this.dampening = num(o.dampening, 'dampening', (x) => x >= 0 && x <= 1, 'a number in [0, 1]') ?? 0;
    if (o.nesterov !== undefined && typeof o.nesterov !== 'boolean') throw typeError('options.nesterov', 'a boolean', o.nesterov);
    this.nesterov = o.nesterov ?? false;
    if (this.nesterov && (this.momentum === 0 || this.dampening !== 0)) throw typeError('options.nesterov', 'momentum > 0 and dampening 0 for Nesterov', o.nesterov);
  }

  /**
   * Runs one update with the tensor's momentum buffer, created on its first step. A call refused by
   * the kernel's checks (sync or async) leaves no buffer behind, so the next step is still the first.
   */
  #run(t: SgdTensorState, n: number, lr: number, gradScale: number,
    kernel: (buf: Float32Array | null, o: SgdArgs, first: boolean) => void | Promise<void>): void | Promise<void> {
    const first = this.momentum > 0 && t.momentum === undefined;
    const buf = this.momentum > 0 ? (t.momentum ??= new Float32Array(n)) : null;
    const undo = (e: unknown) => { if (first && t.momentum === buf) t.momentum = undefined; throw e; };
    const o = { lr, momentum: this.momentum, dampening: this.dampening, weightDecay: this.weightDecay, nesterov: this.nesterov, gradScale };
    let r: void | Promise<void>;
    try { r = kernel(buf, o, first); } catch (e) { return undo(e); }
    return r instanceof Promise ? r.catch(undo) : r;
  }

  protected apply(t: SgdTensorState, w: Float32Array, g: Float32Array, lr: number, gradScale: number, async: boolean): void | Promise<void> {
    return this.#run(t, w.length, lr, gradScale, (buf, o, first) => (async ? sgdStepAsync(w, g, buf, o, first) : sgdStep(w, g, buf, o, first)));
  }

  /** The update from g = P Qᵀ in one pass (native/core/powersgd.h, powersgd_reconstruct_sgd): g is never written to memory. */
  updateLowRank(name: string, w: Float32Array, g: LowRankGrad, opts: UpdateOptions & { async?: boolean } = {}): void | Promise<void> {
    const { lr, gradScale } = this.rates(opts);
    if (g === null || typeof g !== 'object') throw typeError('g', 'low-rank factors { p, q, rows, cols, rank, residual }', g);
    BaseOptimizer.checkWeights(w);
    // The kernel's checks name the field: rows, cols and rank integers, p rows*rank, q cols*rank, w and residual rows*cols.
    const run = opts.async === true && w.length >= 1 << 16 ? powerSgdReconstructSgdAsync : powerSgdReconstructSgd;
    return this.#run(this.stateOf(name), w.length, lr, gradScale,
      (buf, o, first) => run(g.p, g.q, g.rows, g.cols, g.rank, g.residual, w, buf, o, first));
  }

  /**
   * The update from a sparse g (the parts' entries summed in order, as top-k's decode forms it) in
   * one pass over w and the momentum buffer: the same bits as update() on the dense g. Without
   * momentum and weight decay only the listed entries of w are touched.
   */
  updateSparse(name: string, w: Float32Array, g: SparseGrad, opts: UpdateOptions & { async?: boolean } = {}): void | Promise<void> {
    const { lr, gradScale } = this.rates(opts);
    if (g === null || typeof g !== 'object') throw typeError('g', 'sparse entries { indices, values, counts }', g);
    BaseOptimizer.checkWeights(w);
    const run = opts.async === true && w.length >= 1 << 16 ? sgdSparseStepAsync : sgdSparseStep;
    return this.#run(this.stateOf(name), w.length, lr, gradScale, (buf, o, first) => run(w, g, buf, o, first));
  }

  /**
   * The update from QSGD payloads, decoded a cache-sized tile at a time inside it: the same bits as
   * decoding their sum and calling update(). On this thread: the payloads may live in a receive
   * buffer that is reused once the call returns. A malformed payload is refused before w changes.
   */
  updateQuantized(name: string, w: Float32Array, g: QuantizedGrad, opts: UpdateOptions = {}): void {
    const { lr, gradScale } = this.rates(opts);
    if (g === null || typeof g !== 'object') throw typeError('g', 'QSGD payloads { data, spans }', g);
    BaseOptimizer.checkWeights(w);
    void this.#run(this.stateOf(name), w.length, lr, gradScale, (buf, o, first) => qsgdDecodeSgd(w, g, buf, o, first));
  }

  protected override legacyKey(k: string): string | null {
    return k === 'started' ? null : k;
  }
}
