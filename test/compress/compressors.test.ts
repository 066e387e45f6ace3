import { createCompressor, decodeCheckpoint, encodeCheckpoint, runSessions, CompressorSpec, Compressor, GradcompError, LockstepSession } from '../../lib';
import type { Session } from '../../lib';
import { powerSgdReconstruct } from '../../lib/ops/kernels';
import type { StepContext } from '../../lib';
import { freshSeed, mulberry32, sample } from '../reference/rng';
import { approx } from '../reference/powersgd';
import { adacompStep } from '../reference/adacomp';
import { refEfTopK } from '../reference/topk';

const seed = freshSeed();
const rand = mulberry32(seed);
beforeAll(() => console.log(`compress tests: GRADCOMP_TEST_SEED=${seed}`));

/** One step for N workers (one compressor each), in memory. */
async function step(cs: Compressor[], name: string, grads: Float32Array[], ctx: Omit<StepContext, 'rank' | 'workers'>) {
  const sessions = await Promise.all(cs.map((c, rank) => c.begin(name, grads[rank], { ...ctx, rank, workers: cs.length })));
  return runSessions(sessions);
}

const EF_SPECS: CompressorSpec[] = [
  { type: 'topk', ratio: 0.05 }, { type: 'randk', ratio: 0.1 }, { type: 'efsign' },
  { type: 'qsgd', levels: 3, errorFeedback: true }, { type: 'fp16', errorFeedback: true }, { type: 'bf16', errorFeedback: true },
  { type: 'powersgd', rank: 2 }, { type: 'dgc', ratio: 0.05, momentum: 0 }, { type: 'adacomp', binSize: 16 },
  { type: 'scalecom', ratio: 0.05 }, { type: 'gradiveq', sliceSize: 16, components: 4, dense: 2, compressed: 3 },
  { type: 'terngrad', errorFeedback: true }, { type: 'efsign', bucket: 64 },
];

describe('error feedback conserves mass', () => {
  test.each(EF_SPECS.map((s) => [s.type, s] as const))('%s: sum of what was sent + residual = sum of gradients', async (_t, spec) => {
    const c = createCompressor(spec);
    const rows = 37, cols = 29, n = rows * cols, steps = 25;
    const sent = new Float64Array(n), fed = new Float64Array(n);
    for (let t = 0; t < steps; t++) {
      const g = sample(t % 3 ? 'gaussian' : 'heavy', n, rand);
      g.forEach((v, i) => { fed[i] += v; });
      const [avg] = await step([c], 'w', [g], { step: t, shape: [rows, cols] });
      avg.forEach((v, i) => { sent[i] += v; });
    }
    const e = c.residual('w')!;
    expect(e).toBeDefined();
    let err = 0, scale = 0;
    for (let i = 0; i < n; i++) { err = Math.max(err, Math.abs(sent[i] + e[i] - fed[i])); scale = Math.max(scale, Math.abs(fed[i])); }
    expect(err).toBeLessThan(1e-5 * steps * Math.max(1, scale));
    expect(c.stats()[0]).toMatchObject({ name: 'w', step: steps - 1, bytesBefore: 4 * n });
  });
});

describe('unbiased compressors', () => {
  test.each([['qsgd', { type: 'qsgd', levels: 3 }], ['randk', { type: 'randk', ratio: 0.2, errorFeedback: false }], ['terngrad', { type: 'terngrad' }]] as const)(
    '%s: the mean over many steps converges to the gradient', async (_t, spec) => {
      const c = createCompressor(spec as CompressorSpec);
      const n = 256, T = 3000;
      const g = sample('gaussian', n, rand);
      const mean = new Float64Array(n);
      for (let t = 0; t < T; t++) (await step([c], 'b', [g], { step: t }))[0].forEach((v, i) => { mean[i] += v / T; });
      // Per-element standard deviation of one draw is at most |g|max * sqrt(n/k) (rand-k) or
      // max/(2s) (QSGD; TernGrad is s = 1); 6 sigma of the mean over T draws.
      const gmax = g.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      const tol = (6 * gmax * Math.sqrt(5)) / Math.sqrt(T);
      g.forEach((v, i) => expect(Math.abs(mean[i] - v)).toBeLessThan(tol));
    });
});

describe('TernGrad', () => {
  test('every value is 0 or ±s with s = max|g| (one scaler per tensor, or per bucket), in 2-bit codes', async () => {
    const n = 1000, g = sample('heavy', n, rand), s = g.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    const c = createCompressor({ type: 'terngrad' });
    const [out] = await step([c], 't', [g], { step: 3 });
    out.forEach((v, i) => expect(v === 0 || (Math.abs(Math.abs(v) - s) <= 1e-6 * s && Math.sign(v) === Math.sign(g[i]))).toBe(true));
    expect(c.stats()[0].bytesAfter).toBe(16 + 24 + 4 + Math.ceil((2 * n) / 8));
    // Buckets of 100: the scaler is each bucket's own max.
    const b = createCompressor({ type: 'terngrad', bucketSize: 100 });
    const [o2] = await step([b], 't', [g], { step: 3 });
    o2.forEach((v, i) => {
      const m = g.slice(100 * Math.floor(i / 100), 100 * Math.floor(i / 100) + 100).reduce((x, y) => Math.max(x, Math.abs(y)), 0);
      expect(v === 0 || Math.abs(Math.abs(v) - m) <= 1e-6 * m).toBe(true);
    });
  });
});

describe('PowerSGD', () => {
  test('reproduces a rank-r matrix exactly at rank r', async () => {
    const rows = 48, cols = 40, r = 3;
    const m = Float32Array.from(approx(sample('gaussian', rows * r, rand), sample('gaussian', cols * r, rand), rows, cols, r));
    const c = createCompressor({ type: 'powersgd', rank: r, errorFeedback: false });
    const [out] = await step([c], 'w', [m], { step: 0, shape: [rows, cols] });
    const scale = m.reduce((a, v) => Math.max(a, Math.abs(v)), 0);
    // One power step from a random Q spans the column space; float32 orthogonalization of an
    // ill-conditioned M Q (rare draws) costs a few more digits than 1e-4.
    out.forEach((v, i) => expect(Math.abs(v - m[i])).toBeLessThan(1e-3 * scale));
  });

  test('matches the reference math across 3 workers: P = sum M_i Q, orthonormalize, Q = mean M_iᵀ P̂', async () => {
    const rows = 30, cols = 20, r = 2, N = 3;
    const cs = [0, 1, 2].map(() => createCompressor({ type: 'powersgd', rank: r, errorFeedback: false, warmStart: false, seed: 5 }));
    const grads = [0, 1, 2].map(() => sample('gaussian', rows * cols, rand));
    const outs = await step(cs, 'w', grads, { step: 4, shape: [rows, cols] });
    // Reference in float64: the projection of the mean gradient onto span(sum_i M_i Q).
    const mean = new Float64Array(rows * cols);
    grads.forEach((g) => g.forEach((v, i) => { mean[i] += v / N; }));
    // The same Q every worker drew: recover span(P) from the sum of the workers' P, i.e. mean M Q.
    const q0 = new Float32Array(cols * r);
    require('../../lib/native/loader').loadBinding().philoxFill(q0, 5, 0, 4, require('../../lib/compress/wire').streamId('w'), 1);
    const P = new Float64Array(rows * r);
    for (let i = 0; i < rows; i++) for (let k = 0; k < r; k++) { let s = 0; for (let j = 0; j < cols; j++) s += mean[i * cols + j] * q0[j * r + k]; P[i * r + k] = s; }
    // Gram-Schmidt, then out = P̂ P̂ᵀ mean.
    for (let k = 0; k < r; k++) {
      for (let c = 0; c < k; c++) { let d = 0; for (let i = 0; i < rows; i++) d += P[i * r + c] * P[i * r + k]; for (let i = 0; i < rows; i++) P[i * r + k] -= d * P[i * r + c]; }
      let nv = 0; for (let i = 0; i < rows; i++) nv += P[i * r + k] ** 2; nv = Math.sqrt(nv);
      for (let i = 0; i < rows; i++) P[i * r + k] /= nv;
    }
    const Q = new Float64Array(cols * r);
    for (let j = 0; j < cols; j++) for (let k = 0; k < r; k++) { let s = 0; for (let i = 0; i < rows; i++) s += mean[i * cols + j] * P[i * r + k]; Q[j * r + k] = s; }
    const want = approx(P, Q, rows, cols, r);
    for (const out of outs) out.forEach((v, i) => expect(Math.abs(v - want[i])).toBeLessThan(1e-4));
  });

  /** Runs N workers' sessions to the end: each allreduce round summed in rank order, in float32. */
  function allreduceAll(ss: Session[]): void {
    while (ss[0].round !== null) {
      const sum = new Float32Array(ss[0].round.data.length);
      for (const s of ss) { const d = s.round!.data as Float32Array; for (let i = 0; i < d.length; i++) sum[i] = Math.fround(sum[i] + d[i]); }
      ss.forEach((s) => s.receive(sum.slice()));
    }
  }

  test('in lockstep, several tensors (a dense fallback among them) end where they end one by one, factored or not', async () => {
    const N = 3, tensors: [string, number[]][] = [['a', [40, 24]], ['b', [17, 64]], ['small', [3, 3]]];
    const make = () => Array.from({ length: N }, () => createCompressor({ type: 'powersgd', rank: 3 }));
    const one = make(), lock = make(), fact = make();
    for (let t = 0; t < 3; t++) {
      const grads = tensors.map(([, sh]) => Array.from({ length: N }, () => sample('gaussian', sh[0] * sh[1], rand)));
      // One by one.
      const want = await Promise.all(tensors.map(async ([name, shape], k) => {
        const ss = await Promise.all(one.map((c, rank) => c.begin(name, grads[k][rank], { step: t, rank, workers: N, shape })));
        allreduceAll(ss);
        return ss.map((s) => s.result());
      }));
      // In lockstep: per worker one LockstepSession over the three tensors; and the same with factors handed over.
      for (const [cs, factored] of [[lock, false], [fact, true]] as const) {
        const subs: Session[][] = [];
        const locks = await Promise.all(cs.map(async (c, rank) => {
          const mine = [];
          for (const [k, [name, shape]] of tensors.entries()) mine.push(await c.begin(name, grads[k][rank], { step: t, rank, workers: N, shape, factored }));
          subs[rank] = mine;
          return new LockstepSession(mine);
        }));
        allreduceAll(locks);
        tensors.forEach(([name, shape], k) => cs.forEach((c, rank) => {
          const s = subs[rank][k];
          let got: Float32Array;
          if (factored && s.factors) {
            expect(() => s.result()).toThrow(expect.objectContaining({ code: 'ERR_GRADCOMP_INVALID_ARG' }));
            got = new Float32Array(shape[0] * shape[1]);
            const f = s.factors;
            powerSgdReconstruct(f.p, f.q, f.rows, f.cols, f.rank, got, f.residual);
          } else got = s.result();
          expect(Boolean(s.factors)).toBe(factored && name !== 'small'); // the small tensor goes dense, formed
          expect(Buffer.from(got.buffer, got.byteOffset, got.byteLength).equals(Buffer.from(want[k][rank].buffer, want[k][rank].byteOffset, want[k][rank].byteLength))).toBe(true);
          const r1 = one[rank].residual(name), r2 = c.residual(name);
          expect(r2 === undefined ? undefined : Array.from(r2)).toEqual(r1 === undefined ? undefined : Array.from(r1));
        }));
      }
    }
    // Only allreduce rounds can travel together: a gather compressor's session is refused.
    const gather = await createCompressor({ type: 'topk', ratio: 0.5 }).begin('x', sample('gaussian', 8, rand), { step: 0 });
    expect(() => new LockstepSession([gather])).toThrow(expect.objectContaining({ param: 'sessions' }));
  });

  test('1-D and small tensors go dense; no residual is kept for them', async () => {
    const c = createCompressor({ type: 'powersgd', rank: 4 });
    const g = sample('gaussian', 10, rand);
    const [out] = await step([c], 'bias', [g], { step: 0, shape: [10] });
    expect(Array.from(out)).toEqual(Array.from(g));
    expect(c.residual('bias')).toBeUndefined();
    const [out2] = await step([c], 'small', [sample('gaussian', 16, rand)], { step: 0, shape: [4, 4] });
    expect(out2.length).toBe(16);
    expect(c.residual('small')).toBeUndefined();
  });
});

describe('summable payloads really sum', () => {
  test('none and randk: the allreduced result is the mean of the workers (on the shared support)', async () => {
    const N = 4, n = 500;
    const grads = Array.from({ length: N }, () => sample('gaussian', n, rand));
    const mean = new Float32Array(n);
    grads.forEach((g) => g.forEach((v, i) => { mean[i] += v / N; }));
    const dense = await step(Array.from({ length: N }, () => createCompressor({ type: 'none' })), 'x', grads, { step: 0 });
    dense.forEach((o) => o.forEach((v, i) => expect(v).toBeCloseTo(mean[i], 5)));
    const rk = await step(Array.from({ length: N }, () => createCompressor({ type: 'randk', ratio: 0.1, seed: 9 })), 'x', grads, { step: 3 });
    const support = rk[0].reduce<number[]>((a, v, i) => (v !== 0 ? [...a, i] : a), []);
    expect(support.length).toBeGreaterThan(40);
    for (const o of rk) o.forEach((v, i) => expect(v).toBeCloseTo(support.includes(i) ? mean[i] : 0, 5));
  });
});

describe('sign compressors', () => {
  test('EF-sign residual energy is 1 - 2/pi for Gaussian input (spec §2(e)4)', async () => {
    const c = createCompressor({ type: 'efsign' });
    const g = sample('gaussian', 200000, rand);
    await step([c], 'g', [g], { step: 0 });
    const e = c.residual('g')!;
    let ee = 0, gg = 0;
    for (let i = 0; i < g.length; i++) { ee += e[i] ** 2; gg += g[i] ** 2; }
    expect(ee / gg).toBeCloseTo(1 - 2 / Math.PI, 2);
  });

  test('signum majority vote: the sign of the sum of signs, ties give 0', async () => {
    const cs = [0, 1, 2, 3].map(() => createCompressor({ type: 'signum', beta: 0 }));
    const grads = [[1, -1, 2, -3], [2, -1, -1, -3], [3, 1, -5, 4], [-1, 2, 7, -8]].map((a) => Float32Array.from(a));
    const [out] = await step(cs, 'v', grads, { step: 0 });
    expect(Array.from(out)).toEqual([1, 0, 0, -1]);
  });

  test('top-k residual energy at 1% density is about 0.915 for Gaussian input (spec §1(e)4)', async () => {
    const c = createCompressor({ type: 'topk', ratio: 0.01 });
    const g = sample('gaussian', 200000, rand);
    await step([c], 'g', [g], { step: 0 });
    const e = c.residual('g')!;
    let ee = 0, gg = 0;
    for (let i = 0; i < g.length; i++) { ee += e[i] ** 2; gg += g[i] ** 2; }
    expect(ee / gg).toBeCloseTo(0.915, 2);
  });
});

describe('payload validation', () => {
  test.each(['topk', 'efsign', 'signum', 'qsgd', 'fp16', 'bf16', 'dgc', 'adacomp', 'terngrad'] as const)('%s: corrupted or truncated payloads throw coded errors', async (type) => {
    const spec = (type === 'topk' ? { type, ratio: 0.1 } : type === 'qsgd' ? { type, levels: 7 } : type === 'dgc' ? { type, ratio: 0.1 } : { type }) as CompressorSpec;
    const c = createCompressor(spec) as Compressor & { compress(n: string, g: Float32Array, ctx: StepContext): Promise<Uint8Array>; decompress(p: Uint8Array[], n: number): Float32Array };
    const g = sample('gaussian', 300, rand);
    const p = await c.compress('t', g, { step: 1 });
    expect(() => c.decompress([p], 300)).not.toThrow();
    const bad = [p.subarray(0, p.length - 1), p.subarray(0, 10), new Uint8Array([...p, 0, 0, 0, 0])];
    for (const off of [0, 4, 5, 6, 8, 12]) { const q = p.slice(); q[off] ^= 0x40; bad.push(q); }
    for (const q of bad) expect(() => c.decompress([q], 300)).toThrow(expect.objectContaining({ code: 'ERR_GRADCOMP_CORRUPT_PAYLOAD' }));
    expect(() => c.decompress([p], 299)).toThrow(GradcompError);
  });
});

describe('state', () => {
  test.each(EF_SPECS.concat([{ type: 'signum', beta: 0.9 }]).map((s) => [s.type, s] as const))(
    '%s: save at step t (JSON and the binary format), load into a fresh compressor, continue bit-identically', async (_t, spec) => {
      const rows = 24, cols = 16, n = rows * cols;
      const grads = Array.from({ length: 8 }, () => sample('gaussian', n, rand));
      const a = createCompressor(spec);
      const outA: Float32Array[] = [];
      for (let t = 0; t < 8; t++) outA.push((await step([a], 'w', [grads[t]], { step: t, shape: [rows, cols] }))[0]);
      const b = createCompressor(spec);
      for (let t = 0; t < 4; t++) await step([b], 'w', [grads[t]], { step: t, shape: [rows, cols] });
      const c = createCompressor(spec), d = createCompressor(spec);
      c.load(JSON.parse(JSON.stringify(b.state())));
      d.load(decodeCheckpoint(encodeCheckpoint(b.state())) as ReturnType<typeof b.state>);
      for (let t = 4; t < 8; t++) {
        for (const x of [c, d]) {
          const out = (await step([x], 'w', [grads[t]], { step: t, shape: [rows, cols] }))[0];
          expect(Buffer.from(out.buffer)).toEqual(Buffer.from(outA[t].buffer));
        }
      }
    });

  test('load rejects foreign or malformed state with errors naming the field', () => {
    const c = createCompressor({ type: 'topk', ratio: 0.1 });
    expect(() => c.load({ format: 'x' } as never)).toThrow(/state/);
    expect(() => c.load({ ...c.state(), type: 'qsgd' })).toThrow(expect.objectContaining({ param: 'state.type' }));
    expect(() => c.load({ ...c.state(), version: 3 as 2 })).toThrow(expect.objectContaining({ param: 'state.version' }));
  });
});

describe('createCompressor validation', () => {
  test.each([
    [{ type: 'zip' }, 'spec.type'], [{ type: 'topk' }, 'spec.ratio'], [{ type: 'topk', ratio: 0 }, 'spec.ratio'],
    [{ type: 'topk', ratio: 0.1, rank: 2 }, 'spec.rank'], [{ type: 'qsgd' }, 'spec.levels'], [{ type: 'qsgd', levels: 1.5 }, 'spec.levels'],
    [{ type: 'qsgd', levels: 7, norm: 'l1' }, 'spec.norm'], [{ type: 'powersgd', rank: 0 }, 'spec.rank'],
    [{ type: 'signum', beta: 1 }, 'spec.beta'], [{ type: 'randk', ratio: 0.1, seed: -1 }, 'spec.seed'],
    [{ type: 'fp16', errorFeedback: 'yes' }, 'spec.errorFeedback'], [null, 'spec'],
  ])('%j is rejected naming %s', (spec, param) => {
    expect(() => createCompressor(spec as never)).toThrow(expect.objectContaining({ param }));
  });

  test.each(['none', 'topk', 'qsgd', 'powersgd', 'efsign'])('%s: a gradient that is not a CPU Float32Array is a coded error naming grad', async (type) => {
    const spec = { type, ...(type === 'topk' ? { ratio: 0.1 } : {}), ...(type === 'qsgd' ? { levels: 7 } : {}) } as CompressorSpec;
    const c = createCompressor(spec);
    const ctx: StepContext = { step: 0, rank: 0, workers: 1 };
    for (const bad of [new Float64Array(8), [1, 2, 3], { length: 8 }]) {
      await expect(c.begin('w', bad as never, ctx)).rejects.toMatchObject({ code: 'ERR_GRADCOMP_INVALID_ARG_TYPE', param: 'grad' });
    }
    await expect(c.begin('w', new Float32Array(8), ctx)).resolves.toBeDefined();
  });
});

describe('DGC, AdaComp, ScaleCom, GradiVeQ: hand-checked cases', () => {
  test('DGC warm-up densities for ratio 0.001 over 5 steps (spec §1(a))', () => {
    const { warmupDensity } = require('../../lib/compress/sparse');
    const got = [0, 1, 2, 3, 4, 5, 6].map((t) => warmupDensity(0.001, 5, t));
    [0.316, 0.1, 0.0316, 0.01, 0.00316, 0.001, 0.001].forEach((want, i) => expect(got[i]).toBeCloseTo(want, want < 0.01 ? 5 : 3));
  });

  test('top-k warm-up: each step keeps ratio^((t+1)/(W+1)) of the entries (then ratio), chosen as the oracle chooses', async () => {
    const W = 1 + Math.floor(rand() * 6), ratio = 0.002 + 0.05 * rand(), n = 3000 + Math.floor(rand() * 4000);
    const c = createCompressor({ type: 'topk', ratio, warmupSteps: W });
    let r = new Float32Array(n);
    for (let t = 0; t < W + 3; t++) {
      const g = sample(t % 2 ? 'heavy' : 'gaussian', n, rand);
      const density = Math.max(t < W ? ratio ** ((t + 1) / (W + 1)) : ratio, ratio);
      const k = Math.max(1, Math.ceil(n * density - 1e-9 * n));
      const want = refEfTopK(g, r, k);
      const [avg] = await step([c], 'w', [g], { step: t });
      const sent = Array.from(avg.keys()).filter((i) => avg[i] !== 0);
      expect(sent).toEqual(Array.from(want.indices));
      want.indices.forEach((i, j) => expect(avg[i]).toBe(want.values[j]));
      expect(Array.from(c.residual('w')!)).toEqual(Array.from(want.residual));
      r = want.residual;
    }
    expect(createCompressor({ type: 'topk', ratio: 0.1, warmupSteps: 3 })).toBeDefined();
    expect(() => createCompressor({ type: 'topk', ratio: 0.1, warmupSteps: -1 } as CompressorSpec)).toThrow(expect.objectContaining({ param: 'spec.warmupSteps' }));
    expect(() => createCompressor({ type: 'topk', ratio: 0.1, warmupSteps: 1.5 } as CompressorSpec)).toThrow(expect.objectContaining({ param: 'spec.warmupSteps' }));
  });

  test('DGC momentum correction and masking, by hand (mu 0.5, k = 1)', async () => {
    const c = createCompressor({ type: 'dgc', ratio: 0.25, momentum: 0.5 });
    // t0: u = v = [1, -2, .5, 0] -> send v[1] = -2; mask u[1] = v[1] = 0.
    // t1: u = .5 u + 1 = [1.5, 1, 1.25, 1]; v += u = [2.5, 1, 1.75, 1] -> send v[0] = 2.5.
    // t2: u = .5 u = [0, .5, .625, .5]; v += u = [0, 1.5, 2.375, 1.5] -> send v[2] = 2.375.
    const outs = [];
    for (const [t, g] of [[1, -2, 0.5, 0], [1, 1, 1, 1], [0, 0, 0, 0]].entries()) outs.push(Array.from((await step([c], 'w', [Float32Array.from(g)], { step: t }))[0]));
    expect(outs).toEqual([[0, -2, 0, 0], [2.5, 0, 0, 0], [0, 0, 2.375, 0]]);
    expect(Array.from(c.residual('w')!)).toEqual([0, 1.5, 0, 1.5]);
  });

  test('blockwise scaled sign: one scale per block (mean |p| of the block), the sign of every element, residue p - sent', async () => {
    const c = createCompressor({ type: 'efsign', bucket: 16 });
    const n = 100, g = sample('heavy', n, rand);
    const [out] = await step([c], 'w', [g], { step: 0 });
    const e = c.residual('w')!;
    for (let lo = 0; lo < n; lo += 16) {
      const hi = Math.min(n, lo + 16), blk = Array.from(g.subarray(lo, hi));
      const scale = Math.fround(blk.reduce((a, v) => a + Math.abs(v), 0) / blk.length);
      // Relative tolerances: a heavy-tailed sample reaches the hundreds, where one float32 ulp is ~1e-5.
      const near = (got: number, want: number) => expect(Math.abs(got - want)).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(want)));
      for (let i = lo; i < hi; i++) {
        near(Math.abs(out[i]), scale);
        expect(Math.sign(out[i])).toBe(g[i] < 0 ? -1 : 1);
        near(e[i], g[i] - out[i]);
      }
    }
    // A blockwise payload with a block size that does not match its block count is refused.
    const raw = c as unknown as { compress(n: string, g: Float32Array, ctx: StepContext): Promise<Uint8Array>; decompress(p: Uint8Array[], n: number): Float32Array };
    const p = await raw.compress('v', g, { step: 1 });
    const bad = p.slice();
    new DataView(bad.buffer).setUint32(16, 24, true);
    expect(() => raw.decompress([bad], n)).toThrow(expect.objectContaining({ code: 'ERR_GRADCOMP_CORRUPT_PAYLOAD' }));
  });

  test('AdaComp bin-local selection, ternary values and residue, by hand (bins of 4)', async () => {
    const c = createCompressor({ type: 'adacomp', binSize: 4 });
    const dW = Float32Array.from([0.1, -0.5, 0.2, 0.05, 0.3, 0.3, -0.3, 0.1]);
    // G = dW, H = 2 dW. Bin 0: max|G| = .5, |H| = [.2, 1, .4, .1] -> {1}. Bin 1: max|G| = .3,
    // |H| = [.6, .6, .6, .2] -> {4, 5, 6}. scale = mean|G| = (.5 + .3 + .3 + .3) / 4 = .35.
    const [out] = await step([c], 'w', [dW], { step: 0 });
    const s = Math.fround(0.35);
    [0, -s, 0, 0, s, s, -s, 0].forEach((v, i) => expect(out[i]).toBeCloseTo(v, 6));
    [0.1, -0.15, 0.2, 0.05, -0.05, -0.05, 0.05, 0.1].forEach((v, i) => expect(c.residual('w')![i]).toBeCloseTo(v, 6));
  });

  test.each([[37, 200_003], [50, 131_072], [1, 1000], [70_000, 150_001]])('AdaComp (bins of %i, n = %i) against the slow reference over 4 steps', async (L, n) => {
    const c = createCompressor({ type: 'adacomp', binSize: L });
    const R = new Float32Array(n);
    for (let t = 0; t < 4; t++) {
      const g = sample(t % 2 ? 'heavy' : 'gaussian', n, rand);
      if (t === 3) g.fill(0, 0, Math.min(n, 3 * L)); // bins whose max may be 0
      const ref = adacompStep(R, g, L);
      const [out] = await step([c], 'w', [g], { step: t });
      const sel: number[] = [];
      out.forEach((v, i) => { if (v !== 0) sel.push(i); });
      expect(sel).toEqual(ref.selected.filter((j) => ref.sent[j] !== 0));
      const worst = sel.reduce((w, j) => Math.max(w, Math.abs(out[j] - ref.sent[j])), 0);
      expect(worst).toBeLessThanOrEqual(1e-6 * ref.scale);
      const e = c.residual('w')!;
      for (let i = 0; i < n; i++) if (Math.abs(e[i] - R[i]) > 1e-6 * (ref.scale + Math.abs(R[i]))) throw new Error(`residual ${i}: ${e[i]} vs ${R[i]}`);
      R.set(e); // continue from the same residue (the scale may differ in its last bit: float64 sums in another order)
    }
  });

  test('ScaleCom cyclic leader, shared support and low-pass memory, by hand (2 workers, beta 0.5)', async () => {
    const cs = [0, 1].map(() => createCompressor({ type: 'scalecom', ratio: 0.25, beta: 0.5 }));
    // t0, leader 0: top-1 of u0 = [1, -3, 2, 0] is index 1; values -3 and 1 average to -1.
    const o0 = await step(cs, 'w', [Float32Array.from([1, -3, 2, 0]), Float32Array.from([4, 1, -1, 2])], { step: 0 });
    o0.forEach((o) => expect(Array.from(o)).toEqual([0, -1, 0, 0]));
    expect(Array.from(cs[0].residual('w')!)).toEqual([0.5, 0, 1, 0]);
    expect(Array.from(cs[1].residual('w')!)).toEqual([2, 0, -0.5, 1]);
    // t1, leader 1: u1 = m1 = [2, 0, -.5, 1] -> index 0; values .5 and 2 average to 1.25.
    const z = new Float32Array(4);
    const o1 = await step(cs, 'w', [z, z], { step: 1 });
    o1.forEach((o) => expect(Array.from(o)).toEqual([1.25, 0, 0, 0]));
    // m0 = .5 [.5, 0, 1, 0] + .5 ([.5, 0, 1, 0] - [.5, 0, 0, 0]) = [.25, 0, 1, 0].
    expect(Array.from(cs[0].residual('w')!)).toEqual([0.25, 0, 1, 0]);
  });

  test('GradiVeQ learns the slice subspace from aggregated gradients and then compresses exactly', async () => {
    const d = 16, k = 3, S = 20, N = 2, n = d * S;
    const B = sample('gaussian', d * k, rand); // slices live in span(B)
    const make = () => {
      const g = new Float32Array(n);
      for (let s = 0; s < S; s++) for (let j = 0; j < k; j++) { const a = rand() * 2 - 1; for (let r = 0; r < d; r++) g[s * d + r] += a * B[r * k + j]; }
      return g;
    };
    const cs = [0, 1].map(() => createCompressor({ type: 'gradiveq', sliceSize: d, components: k, dense: 2, compressed: 5 }));
    for (let t = 0; t < 7; t++) {
      const grads = [make(), make()];
      const outs = await step(cs, 'w', grads, { step: t });
      const mean = Float32Array.from(grads[0], (v, i) => (v + grads[1][i]) / N);
      for (const o of outs) o.forEach((v, i) => expect(v).toBeCloseTo(mean[i], 4));
      if (t >= 2) expect(cs[0].stats()[0].bytesAfter).toBe(4 * S * k); // compressed: k floats per slice
    }
  });

  test('GradiVeQ eigenvectors: orthonormal, ordered by eigenvalue', () => {
    const { topEigenvectors } = require('../../lib/compress/gradiveq');
    const C = Float64Array.from([4, 1, 0, 1, 3, 0, 0, 0, 9]);
    const U = topEigenvectors(C, 3, 2);
    expect(Math.abs(U[2 * 2 + 0])).toBeCloseTo(1, 10); // the top one is e3 (eigenvalue 9)
    let dot = 0, n1 = 0;
    for (let r = 0; r < 3; r++) { dot += U[r * 2] * U[r * 2 + 1]; n1 += U[r * 2 + 1] ** 2; }
    expect(dot).toBeCloseTo(0, 10);
    expect(n1).toBeCloseTo(1, 10);
  });
});


test('DGC with momentum (masking off): sent + velocity = the sum of the momentum accumulations', async () => {
  const c = createCompressor({ type: 'dgc', ratio: 0.02, momentum: 0.9, momentumMasking: false });
  const n = 2000, mu = 0.9;
  const u = new Float64Array(n), sumU = new Float64Array(n), sent = new Float64Array(n);
  for (let t = 0; t < 30; t++) {
    const g = sample('gaussian', n, rand);
    for (let i = 0; i < n; i++) { u[i] = mu * u[i] + g[i]; sumU[i] += u[i]; }
    (await step([c], 'w', [g], { step: t }))[0].forEach((v, i) => { sent[i] += v; });
  }
  const v = c.residual('w')!;
  for (let i = 0; i < n; i++) expect(Math.abs(sent[i] + v[i] - sumU[i])).toBeLessThan(1e-3 * (1 + Math.abs(sumU[i])));
});

test('native fp16/bf16 casts equal the JS reference conversions bit for bit', () => {
  const { toFp16, toBf16 } = require('../reference/half');
  const { loadBinding } = require('../../lib/native/loader');
  const edge = [0, -0, 1, -1, 65504, 65519, 65520, 1e9, -1e9, 6.1e-5, 5.96e-8, 2.98e-8, 1e-10, Infinity, -Infinity, NaN, -NaN,
    1 + 2 ** -11, 1 + 3 * 2 ** -11, 3.3895e38, 1.00390625, 1.01171875];
  const x = Float32Array.from([...edge, ...sample('heavy', 5000, rand), ...sample('gaussian', 5000, rand).map((v) => v * 1e-6)]);
  for (const [kind, ref] of [[0, toFp16], [1, toBf16]] as const) {
    const h = new Uint16Array(x.length);
    loadBinding().halfPack(x, h, kind);
    x.forEach((v, i) => { if (h[i] !== ref(v)) throw new Error(`kind ${kind}: ${v} -> ${h[i]} vs ${ref(v)}`); });
  }
});

test('fp16 with error feedback saturates instead of poisoning the residual with Infinity', async () => {
  const c = createCompressor({ type: 'fp16', errorFeedback: true });
  const g = Float32Array.from([1e6, -3e5, 0.5, 70000, -65519]);
  const sent = new Float64Array(5);
  for (let t = 0; t < 40; t++) (await step([c], 'w', [t === 0 ? g : new Float32Array(5)], { step: t }))[0].forEach((v, i) => { sent[i] += v; });
  const e = c.residual('w')!;
  expect(e.every(Number.isFinite)).toBe(true);
  g.forEach((v, i) => expect(Math.abs(sent[i] + e[i] - v)).toBeLessThan(1e-3 * Math.abs(v) + 1e-6));
  expect(Array.from(e)).toEqual([0, 0, 0, 0, 0]); // the excess drained at 65504 per step
});
