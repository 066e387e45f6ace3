/**
 * TracIn (Pruthi, Liu, Kale, Sundararajan, NeurIPS 2020): the influence of a training example z on
 * a test example z' as the sum over saved checkpoints c of eta_c <grad l(w_c, z), grad l(w_c, z')>
 * (TracInCP), and self-influence sum_c eta_c ||grad l(w_c, z)||^2, which ranks mislabelled and
 * rare examples first.
 *
 * Gradients are taken for a chosen layer: by default the last dense layer, whose per-example
 * gradient factorizes as delta [a; 1]ᵀ (delta = dLoss/dLogits, a = the layer's input, 1 for the
 * bias). So <g, g'> = ([a; 1] . [a'; 1]) (delta . delta') (TracInCPFast): two small matrix products
 * (native gemm) instead of one over c (p_in + 1) columns. Random projections (Gaussian entries of
 * variance 1/D, from a seeded Philox stream shared by every rank) shrink a and delta further with
 * E[<P x, P x'>] = <x, x'>. scoreGradients() is the general score for explicit gradients.
 */
import { gemm, philoxFill, rowsSumSq, tracinScoreSync } from '../ops/kernels';
import { rangeError, typeError } from '../native/errors';
import { topKSync } from '../ops/topk';

/** Per-example factors of the last dense layer's gradient, row-major: a (n x inputs), delta (n x classes). */
export interface Factors { a: Float32Array; delta: Float32Array; n: number; inputs: number; classes: number }

/** [a; 1]: the layer input with the bias's constant appended (the bias gradient is delta itself). */
export function withBias(f: Factors): Factors {
  const a = new Float32Array(f.n * (f.inputs + 1));
  for (let i = 0; i < f.n; i++) { a.set(f.a.subarray(i * f.inputs, (i + 1) * f.inputs), i * (f.inputs + 1)); a[i * (f.inputs + 1) + f.inputs] = 1; }
  return { ...f, a, inputs: f.inputs + 1 };
}

/** S (nTrain x nTest, row-major) += eta G_train G_testᵀ for explicit per-example gradients (rows of `dim`). */
export function scoreGradients(gTrain: Float32Array, gTest: Float32Array, nTrain: number, nTest: number, dim: number, eta: number, into?: Float32Array): Float32Array {
  const s = into ?? new Float32Array(nTrain * nTest);
  if (s.length !== nTrain * nTest) throw rangeError('into', `${nTrain * nTest} elements`, s.length);
  gemm(false, true, nTrain, nTest, dim, gTrain, gTest, s, eta, 1);
  return s;
}

/** S += eta (A_train A_testᵀ) ∘ (Δ_train Δ_testᵀ): TracInCPFast for the factors (give them withBias for the bias term). */
export function scoreFactors(train: Factors, test: Factors, eta: number, into?: Float32Array): Float32Array {
  if (train.inputs !== test.inputs || train.classes !== test.classes) throw rangeError('test', `factors of ${train.inputs} inputs and ${train.classes} classes like train`, `${test.inputs} and ${test.classes}`);
  const n = train.n, m = test.n, s = into ?? new Float32Array(n * m);
  tracinScoreSync(train.a, test.a, train.delta, test.delta, { n, m, p: train.inputs, c: train.classes }, eta, s);
  return s;
}

/** self[i] += eta |a_i|^2 |delta_i|^2 (float64 sums per row): self-influence from the factors. */
export function selfInfluence(f: Factors, eta: number, into?: Float64Array): Float64Array {
  const out = into ?? new Float64Array(f.n);
  const sa = new Float64Array(f.n), sd = new Float64Array(f.n);
  rowsSumSq(f.a, f.inputs, sa);
  rowsSumSq(f.delta, f.classes, sd);
  for (let i = 0; i < f.n; i++) out[i] += eta * sa[i] * sd[i];
  return out;
}

/** A D x k Gaussian projection (entries N(0, 1/D)) from a Philox stream: the same on every rank for the same seed and stream. */
export function projection(k: number, dim: number, seed: number, stream: number): Float32Array {
  const p = new Float32Array(dim * k);
  philoxFill(p, seed, 0, stream, 1);
  const s = 1 / Math.sqrt(dim);
  for (let i = 0; i < p.length; i++) p[i] *= s;
  return p;
}

/** The factors projected to dimA and dimDelta columns (x -> P x), so E[<P x, P x'>] = <x, x'>. */
export function projectFactors(f: Factors, dimA: number, dimDelta: number, seed: number): Factors {
  for (const [name, d] of [['dimA', dimA], ['dimDelta', dimDelta]] as const) if (!Number.isInteger(d) || d < 1) throw rangeError(name, 'an integer >= 1', d);
  const pa = projection(f.inputs, dimA, seed, 0x7a1), pd = projection(f.classes, dimDelta, seed, 0x7a2);
  const a = new Float32Array(f.n * dimA), delta = new Float32Array(f.n * dimDelta);
  gemm(false, true, f.n, dimA, f.inputs, f.a, pa, a);
  gemm(false, true, f.n, dimDelta, f.classes, f.delta, pd, delta);
  return { a, delta, n: f.n, inputs: dimA, classes: dimDelta };
}

export interface Ranked { index: number; score: number }

/**
 * Proponents (the k largest positive scores) and opponents (the k most negative) of one test
 * example, from its column of S, exactly (the library's top-k kernel on the positive and negative
 * parts; ties to the lower index). `offset` maps local rows to global training indices.
 */
export function proponents(scores: Float32Array, nTrain: number, nTest: number, col: number, k: number, offset = 0): { proponents: Ranked[]; opponents: Ranked[] } {
  if (!Number.isInteger(col) || col < 0 || col >= nTest) throw rangeError('col', `a test column in [0, ${nTest - 1}]`, col);
  const kk = Math.min(k, nTrain), pos = new Float32Array(nTrain), neg = new Float32Array(nTrain);
  for (let i = 0; i < nTrain; i++) { const v = scores[i * nTest + col]; if (v > 0) pos[i] = v; else if (v < 0) neg[i] = v; }
  const pick = (x: Float32Array, sign: number): Ranked[] => {
    const t = topKSync(x, kk);
    return Array.from(t.indices).map((i, j) => ({ index: i + offset, score: t.values[j] })).filter((r) => Math.sign(r.score) === sign)
      .sort((a, b) => sign * (b.score - a.score) || a.index - b.index);
  };
  return { proponents: pick(pos, 1), opponents: pick(neg, -1) };
}

/** Checks a checkpoint list: [{ params, lr }] with a positive finite lr each. */
export function checkpointsArg<T extends { lr: number }>(list: T[]): T[] {
  if (!Array.isArray(list) || list.length === 0) throw typeError('checkpoints', 'a non-empty array of { params, lr }', list);
  list.forEach((c, i) => { if (!(c?.lr > 0) || !Number.isFinite(c.lr)) throw rangeError(`checkpoints[${i}].lr`, 'a finite learning rate > 0', c?.lr); });
  return list;
}
