/**
 * TracIn against float64 references: explicit per-example gradients and their dot products, the
 * factorized last-layer score (TracInCPFast) against the full one, self-influence, unbiased random
 * projections, exact proponents, the model's last-layer factors against its own gradient, and the
 * command: the same answer on 1 and 3 ranks, and mislabelled examples found by self-influence.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Factors, projectFactors, proponents, scoreFactors, scoreGradients, selfInfluence, withBias } from '../../lib/analysis/tracin';
import { makeDataset } from '../../lib/train/data';
import { tracinScore } from '../../lib/ops/kernels';
import { createModel } from '../../lib/train/model';
import { freshSeed, mulberry32, sample } from '../reference/rng';

const seed = freshSeed();
const rand = mulberry32(seed);
beforeAll(() => console.log(`tracin tests: GRADCOMP_TEST_SEED=${seed}`));

function factors(n: number, inputs: number, classes: number): Factors {
  return { a: sample('gaussian', n * inputs, rand), delta: sample('gaussian', n * classes, rand), n, inputs, classes };
}
/** The explicit per-example gradient of a dense layer with bias: vec(delta [a; 1]ᵀ), in float64. */
function explicit(f: Factors): Float64Array[] {
  return Array.from({ length: f.n }, (_, i) => {
    const g = new Float64Array(f.classes * (f.inputs + 1));
    for (let c = 0; c < f.classes; c++) for (let j = 0; j <= f.inputs; j++) g[c * (f.inputs + 1) + j] = f.delta[i * f.classes + c] * (j < f.inputs ? f.a[i * f.inputs + j] : 1);
    return g;
  });
}
const dot = (x: Float64Array, y: Float64Array) => x.reduce((s, v, i) => s + v * y[i], 0);
const near = (got: number, want: number, scale: number) => Math.abs(got - want) <= 1e-4 * (1 + Math.abs(scale));

test('TracInCPFast (factorized) equals TracInCP on explicit gradients, and both equal a float64 reference', () => {
  const tr = factors(37, 13, 5), te = factors(6, 13, 5), eta = [0.1, 0.03];
  const gt = explicit(tr), ge = explicit(te), dim = 5 * 14;
  const fast = new Float32Array(37 * 6), full = new Float32Array(37 * 6);
  const flat = (gs: Float64Array[]) => Float32Array.from(gs.flatMap((g) => Array.from(g)));
  for (const e of eta) {
    scoreFactors(withBias(tr), withBias(te), e, fast);
    scoreGradients(flat(gt), flat(ge), 37, 6, dim, e, full);
  }
  for (let i = 0; i < 37; i++) for (let j = 0; j < 6; j++) {
    const want = (eta[0] + eta[1]) * dot(gt[i], ge[j]);
    expect(near(fast[i * 6 + j], want, want)).toBe(true);
    expect(near(full[i * 6 + j], want, want)).toBe(true);
  }
  const self = selfInfluence(withBias(tr), 0.5);
  gt.forEach((g, i) => expect(near(self[i], 0.5 * dot(g, g), dot(g, g))).toBe(true));
});

test('the tracinScore op (any device) gives scoreFactors\' bits, and the reference within float tolerance', async () => {
  const tr = factors(57, 19, 6), te = factors(13, 19, 6), eta = 0.05 + rand();
  const want = scoreFactors(tr, te, eta, new Float32Array(57 * 13).fill(0.5));
  const got = new Float32Array(57 * 13).fill(0.5);
  await tracinScore(tr.a, te.a, tr.delta, te.delta, { n: 57, m: 13, p: 19, c: 6 }, eta, got);
  expect(Buffer.from(got.buffer).equals(Buffer.from(want.buffer))).toBe(true);
  const gTr = explicit({ ...tr }), gTe = explicit({ ...te });
  // explicit() adds the bias column; the op scores the factors as given: compare without it.
  const noBias = (g: Float64Array, f: Factors) => Float64Array.from({ length: f.classes * f.inputs }, (_, i) => g[Math.floor(i / f.inputs) * (f.inputs + 1) + (i % f.inputs)]);
  for (const i of [0, 28, 56]) for (const j of [0, 12]) {
    const ref = 0.5 + eta * dot(noBias(gTr[i], tr), noBias(gTe[j], te));
    expect(near(got[i * 13 + j], ref, ref)).toBe(true);
  }
  await expect(tracinScore(tr.a, te.a, tr.delta, te.delta, { n: 57, m: 14, p: 19, c: 6 }, eta, got)).rejects.toMatchObject({ param: 'b' });
});

test('random projections are unbiased: the mean of <P x, P y> over seeds approaches <x, y>', () => {
  const f = withBias(factors(2, 40, 10)), g = explicit({ ...f, inputs: 39, a: Float32Array.from([...f.a.subarray(0, 39), ...f.a.subarray(40, 79)]) });
  void g;
  const want = scoreFactors(f, f, 1)[1]; // <g_0, g_1>, exact
  let sum = 0, sq = 0;
  const T = 400;
  for (let s = 0; s < T; s++) {
    const p = projectFactors(f, 16, 8, 1000 + s), v = scoreFactors(p, p, 1)[1];
    sum += v; sq += v * v;
  }
  const mean = sum / T, sd = Math.sqrt(Math.max(0, sq / T - mean * mean));
  expect(Math.abs(mean - want)).toBeLessThan(5 * sd / Math.sqrt(T) + 1e-6);
  // One projection with a fixed seed is the same on every call (every rank draws the same matrix).
  expect(Array.from(projectFactors(f, 16, 8, 7).a)).toEqual(Array.from(projectFactors(f, 16, 8, 7).a));
});

test('proponents and opponents are the exact top k of a column, both signs, ties to the lower index', () => {
  const n = 500, m = 3, s = sample('gaussian', n * m, rand);
  s[7 * m + 1] = s[9 * m + 1] = 10; // a tie at the top
  for (let col = 0; col < m; col++) {
    const r = proponents(s, n, m, col, 5, 1000);
    const c = Array.from({ length: n }, (_, i) => ({ index: i + 1000, score: s[i * m + col] }));
    expect(r.proponents).toEqual(c.filter((x) => x.score > 0).sort((a, b) => b.score - a.score || a.index - b.index).slice(0, 5));
    expect(r.opponents).toEqual(c.filter((x) => x.score < 0).sort((a, b) => a.score - b.score || a.index - b.index).slice(0, 5));
  }
});

test.each(['mlp', 'softmax'] as const)('%s: the last-layer factors give the last layer\'s own per-example gradient', (kind) => {
  const { train } = makeDataset({ samples: 40, features: 12, classes: 4, separation: 1, seed: 3 });
  const model = createModel({ kind, features: 12, classes: 4, hidden: [8], seed: 5 });
  const p = Object.fromEntries(Object.entries(model.params).map(([n, t]) => [n, t.data]));
  if (kind === 'softmax') p['fc.weight'].forEach((_, i, w) => { w[i] = Math.sin(i); });
  for (const i of [0, 17, 39]) {
    const f = model.lastLayer(p, train, [i]), g = model.lossAndGrad(p, train, [i]).grads;
    for (let c = 0; c < f.classes; c++) {
      expect(g[f.bias][c]).toBeCloseTo(f.delta[c], 5);
      for (let j = 0; j < f.inputs; j++) expect(g[f.weight][c * f.inputs + j]).toBeCloseTo(f.delta[c] * f.a[j], 5);
    }
  }
});

const cli = path.resolve(__dirname, '..', '..', 'dist', 'lib', 'cli', 'main.js');
const run = (args: string[]) => new Promise<{ code: number; out: string; err: string }>((resolve) =>
  execFile(process.execPath, [cli, ...args], { timeout: 600000, maxBuffer: 1 << 24 }, (e, out, err) => resolve({ code: e ? (typeof e.code === 'number' ? e.code : 1) : 0, out, err })));
const haveFashion = fs.existsSync('/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz');

(haveFashion ? test : test.skip)('gradcomp influence: the same answer on 1 and 3 ranks, and flipped labels found at the top of self-influence', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gc-tracin-'));
  try {
    const t = await run(['train', '--data', 'fashion-mnist', '--train-limit', '6000', '--epochs', '2', '--workers', '2', '--lr', '0.05', '--momentum', '0.9',
      '--flip-labels', '0.1', '--checkpoint', dir, '--checkpoint-every', '20', '--keep-checkpoints', '4', '--progress', 'none']);
    expect(t.code).toBe(0);
    const one = await run(['influence', '--checkpoint', dir, '--test', '0,3', '--top', '4', '--json']);
    const three = await run(['influence', '--checkpoint', dir, '--test', '0,3', '--top', '4', '--json', '--workers', '3']);
    expect(one.code).toBe(0);
    const a = JSON.parse(one.out), b = JSON.parse(three.out);
    expect(b.explained).toEqual(a.explained);
    expect(b.topSelf).toEqual(a.topSelf);
    expect(a.checkpoints).toHaveLength(4);
    // 10% flipped: random inspection finds 10% of them in the top 10%; self-influence finds far more.
    const at10 = a.flipped.curve.find((c: { inspected: number }) => c.inspected >= 0.1 - 1e-9).found;
    expect(at10).toBeGreaterThan(0.35);
  } finally { fs.rmSync(dir, { recursive: true, force: true }); }
}, 600000);
