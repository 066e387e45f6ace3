/**
 * GradiVeQ (Yu et al., NeurIPS'18): PCA compression of gradient slices that stays summable.
 * Each tensor is cut into slices of sliceSize (the last one zero-padded). During `dense` steps out
 * of every `dense + compressed`, the gradient goes uncompressed (allreduce) and the covariance of
 * the *aggregated* slices is accumulated; every worker holds the same aggregate, so every worker
 * computes the same basis U (the top `components` eigenvectors, by cyclic Jacobi in float64) with
 * no extra traffic. Compressed steps send z = Uᵀ slice (components floats per slice); the map is
 * linear, so the allreduce sums compressed messages directly, and U z / N decodes once.
 * Deviation (flagged in the spec, §8(f)): error feedback keeps p - U Uᵀ p, the energy outside the
 * subspace, which the paper drops. Tuning guide: sliceSize 64-256; components a few percent to a
 * quarter of sliceSize; refresh often while gradients change fast (small `compressed`).
 */
import { asF32, BaseCompressor, ChainSession, deferred, outFor, StateFields, workersOf } from './base';
import { CompressorDescriptor, field } from './descriptor';
import type { Session, StepContext } from './types';

export interface GradiVeQSpec { type: 'gradiveq'; sliceSize?: number; components?: number; dense?: number; compressed?: number; errorFeedback?: boolean }

/** Top-`k` eigenvectors (as the columns of a d x k row-major matrix) of symmetric C (d x d). */
export function topEigenvectors(C: Float64Array, d: number, k: number): Float64Array {
  const A = Float64Array.from(C), V = new Float64Array(d * d);
  for (let i = 0; i < d; i++) V[i * d + i] = 1;
  for (let sweep = 0; sweep < 60; sweep++) {
    let off = 0;
    for (let p = 0; p < d; p++) for (let q = p + 1; q < d; q++) off += A[p * d + q] ** 2;
    if (off < 1e-30) break;
    for (let p = 0; p < d; p++)
      for (let q = p + 1; q < d; q++) {
        const apq = A[p * d + q];
        if (Math.abs(apq) < 1e-300) continue;
        const theta = (A[q * d + q] - A[p * d + p]) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1), s = t * c;
        for (let r = 0; r < d; r++) {
          const arp = A[r * d + p], arq = A[r * d + q];
          A[r * d + p] = c * arp - s * arq;
          A[r * d + q] = s * arp + c * arq;
        }
        for (let r = 0; r < d; r++) {
          const apr = A[p * d + r], aqr = A[q * d + r];
          A[p * d + r] = c * apr - s * aqr;
          A[q * d + r] = s * apr + c * aqr;
        }
        for (let r = 0; r < d; r++) {
          const vrp = V[r * d + p], vrq = V[r * d + q];
          V[r * d + p] = c * vrp - s * vrq;
          V[r * d + q] = s * vrp + c * vrq;
        }
      }
  }
  const order = Array.from({ length: d }, (_, i) => i).sort((a, b) => A[b * d + b] - A[a * d + a] || a - b);
  const U = new Float64Array(d * k);
  for (let j = 0; j < k; j++) for (let r = 0; r < d; r++) U[r * k + j] = V[r * d + order[j]];
  return U;
}

/**
 * GradiVeQ's per-tensor state. cov: the covariance of aggregated slices accumulated in this
 * window's dense steps (sliceSize²); basis: U, the top components (sliceSize x components);
 * residual: what the projection dropped (error feedback).
 */
export interface GradiVeQTensorState { cov?: Float32Array; basis?: Float32Array; residual?: Float32Array }

export class GradiVeQCompressor extends BaseCompressor<GradiVeQTensorState> {
  readonly type = 'gradiveq';
  readonly summable = true;
  protected readonly stateFields: StateFields<GradiVeQTensorState> = { cov: 'array', basis: 'array', residual: 'array' };
  readonly sliceSize: number;
  readonly components: number;
  readonly dense: number;
  readonly compressed: number;
  readonly errorFeedback: boolean;

  constructor(spec: GradiVeQSpec) {
    super();
    this.sliceSize = spec.sliceSize ?? 128;
    this.components = Math.min(spec.components ?? 16, this.sliceSize);
    this.dense = spec.dense ?? 4;
    this.compressed = spec.compressed ?? 36;
    this.errorFeedback = spec.errorFeedback ?? true;
  }

  async begin(name: string, grad: Float32Array, ctx: StepContext): Promise<Session> {
    const { workers } = workersOf(ctx);
    const n = grad.length, d = this.sliceSize, k = this.components, S = Math.ceil(n / d);
    const phase = ctx.step % (this.dense + this.compressed);
    const st = this.stateOf(name, n), out = outFor(ctx, n), s = ctx.deferScale ? 1 : 1 / workers;
    const haveBasis = st.basis !== undefined;
    if (phase < this.dense || !haveBasis) {
      // Dense step: allreduce, and learn from the aggregate (always the average, whatever the caller defers).
      out.set(grad);
      return new ChainSession({ collective: 'allreduce', data: out }, (res) => {
        const sum = asF32(res, n, `summed length-${n} gradient`);
        const avg = new Float32Array(n);
        for (let i = 0; i < n; i++) avg[i] = sum[i] / workers;
        if (s !== 1) out.set(avg); else if (sum !== out) out.set(sum);
        const cov = this.arrayOf(st, 'cov', d * d);
        for (let s = 0; s < S; s++)
          for (let a = 0; a < d; a++) {
            const va = s * d + a < n ? avg[s * d + a] : 0;
            if (va === 0) continue;
            for (let b = 0; b < d; b++) cov[a * d + b] += va * (s * d + b < n ? avg[s * d + b] : 0);
          }
        if (phase === this.dense - 1 || (!haveBasis && phase >= this.dense - 1)) {
          this.arrayOf(st, 'basis', d * k).set(topEigenvectors(Float64Array.from(cov), d, k));
          cov.fill(0);
        }
        return out;
      }, (sent) => this.record(name, ctx.step, n, sent, 0), deferred(ctx, workers));
    }
    const U = this.arrayOf(st, 'basis', d * k);
    const e = this.errorFeedback ? this.arrayOf(st, 'residual', n) : undefined;
    const p = new Float32Array(S * d);
    for (let i = 0; i < n; i++) p[i] = e ? grad[i] + e[i] : grad[i];
    const z = new Float32Array(S * k);
    for (let s = 0; s < S; s++)
      for (let j = 0; j < k; j++) {
        let acc = 0;
        for (let r = 0; r < d; r++) acc += U[r * k + j] * p[s * d + r];
        z[s * k + j] = acc;
      }
    const project = (zz: Float32Array, scale: number, into: Float32Array) => {
      for (let sl = 0; sl < S; sl++)
        for (let r = 0; r < d && sl * d + r < n; r++) {
          let acc = 0;
          for (let j = 0; j < k; j++) acc += U[r * k + j] * zz[sl * k + j];
          into[sl * d + r] = acc * scale;
        }
      return into;
    };
    if (e) {
      const mine = project(z, 1, new Float32Array(n));
      for (let i = 0; i < n; i++) e[i] = p[i] - mine[i];
    }
    return new ChainSession({ collective: 'allreduce', data: z }, (res) => project(asF32(res, S * k, `summed length-${S * k} projection`), s, out),
      (sent) => this.record(name, ctx.step, n, sent, 0), deferred(ctx, workers));
  }
}

export const descriptor: CompressorDescriptor<GradiVeQSpec> = {
  type: 'gradiveq', wireKind: null,
  fields: {
    sliceSize: field.int((v) => v >= 1 && v <= 1024, 'an integer in [1, 1024]'), components: field.int((v) => v >= 1 && v <= 1024, 'an integer in [1, 1024]'),
    dense: field.int((v) => v >= 1, 'an integer >= 1'), compressed: field.int((v) => v >= 0, 'an integer >= 0'), errorFeedback: field.errorFeedback(),
  },
  capabilities: { summable: true, errorFeedback: 'optional', bareOperator: false, needsShape: false, collectives: ['allreduce'] },
  expectedBytes: (spec, shape) => { const n = shape.reduce((a, b) => a * b, 1), d = spec.sliceSize ?? 128; return 4 * Math.ceil(n / d) * Math.min(spec.components ?? 16, d); },
  create: (spec) => new GradiVeQCompressor(spec),
};
