import { createOptimizer, powerSgdStep, powerSgdStepSync, orthonormalizeSync, setConcurrency } from '../../lib';
import * as kernels from '../../lib/ops/kernels';
import * as ref from '../reference/vector';
import { expectBitEqual } from '../reference/compare';
import { approx, refPowerSgd } from '../reference/powersgd';
import { freshSeed, mulberry32, sample } from '../reference/rng';

const seed = freshSeed();
const rand = mulberry32(seed);
beforeAll(() => console.log(`powersgd tests: GRADCOMP_TEST_SEED=${seed}`));

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}
function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
/** PᵀP should be the identity on the nonzero columns and zero elsewhere. */
function gramError(p: Float32Array, rows: number, rank: number): number {
  let err = 0;
  for (let a = 0; a < rank; a++)
    for (let b = 0; b < rank; b++) {
      let s = 0;
      for (let i = 0; i < rows; i++) s += p[i * rank + a] * p[i * rank + b];
      const na = maxAbs(p.filter((_, i) => i % rank === a)) > 0;
      err = Math.max(err, Math.abs(s - (a === b && na ? 1 : 0)));
    }
  return err;
}
function lowRank(rows: number, cols: number, r: number): Float32Array {
  const u = sample('gaussian', rows * r, rand), v = sample('gaussian', cols * r, rand);
  return Float32Array.from(approx(u, v, rows, cols, r));
}

describe('powerSgdStep', () => {
  test.each([[1, 1, 1], [7, 5, 2], [64, 33, 4], [129, 257, 8], [300, 17, 3], [5, 1000, 12], [4100, 20, 4]])(
    'matches the float64 oracle: %i x %i, rank %i', (rows, cols, rank) => {
      const m = sample('gaussian', rows * cols, rand);
      const q0 = sample('gaussian', cols * rank, rand);
      const want = refPowerSgd(m, rows, cols, q0, rank);
      const q = q0.slice();
      const got = powerSgdStepSync({ m, rows, cols, q, rank });
      expect(got.q).toBe(q); // written in place
      const scale = maxAbs(approx(want.p, want.q, rows, cols, rank)) + 1e-30;
      expect(maxDiff(approx(got.p, got.q, rows, cols, rank), approx(want.p, want.q, rows, cols, rank)) / scale).toBeLessThan(2e-4);
      expect(gramError(got.p, rows, rank)).toBeLessThan(1e-5);
    });

  test('a rank-r matrix is reproduced exactly by rank r', () => {
    for (const [rows, cols, r] of [[40, 30, 1], [50, 70, 3], [256, 128, 4]]) {
      const m = lowRank(rows, cols, r);
      const q = sample('gaussian', cols * r, rand);
      const { p } = powerSgdStepSync({ m, rows, cols, q, rank: r });
      // float32 arithmetic: errors of a few 1e-6 relative are rounding; a wrong subspace is O(1).
      expect(maxDiff(approx(p, q, rows, cols, r), m) / maxAbs(m)).toBeLessThan(1e-4);
    }
  });

  test('rank above min(rows, cols), a rank-deficient M and a zero M give zero columns, never NaN', () => {
    const cases: [Float32Array, number, number, number][] = [
      [sample('gaussian', 3 * 5, rand), 3, 5, 6],
      [lowRank(20, 30, 2), 20, 30, 5],
      [new Float32Array(12 * 9), 12, 9, 4],
    ];
    for (const [m, rows, cols, rank] of cases) {
      const q = sample('gaussian', cols * rank, rand);
      const { p } = powerSgdStepSync({ m, rows, cols, q, rank });
      expect(p.every(Number.isFinite) && q.every(Number.isFinite)).toBe(true);
      expect(gramError(p, rows, rank)).toBeLessThan(1e-5);
      // The approximation is a projection of M: exact here because the rank covers M.
      expect(maxDiff(approx(p, q, rows, cols, rank), m)).toBeLessThan(1e-4 * (maxAbs(m) + 1e-30) + 1e-30);
    }
  });

  test('batched: one call equals a loop over the matrices; async equals sync', async () => {
    const batch = 7, rows = 33, cols = 65, rank = 4;
    const m = sample('gaussian', batch * rows * cols, rand);
    const q0 = sample('gaussian', batch * cols * rank, rand);
    const qa = q0.slice();
    const all = await powerSgdStep({ m, rows, cols, q: qa, rank, batch });
    for (let b = 0; b < batch; b++) {
      const qb = q0.slice(b * cols * rank, (b + 1) * cols * rank);
      const one = powerSgdStepSync({ m: m.subarray(b * rows * cols, (b + 1) * rows * cols), rows, cols, q: qb, rank });
      expect(Array.from(all.p.subarray(b * rows * rank, (b + 1) * rows * rank))).toEqual(Array.from(one.p));
      expect(Array.from(qa.subarray(b * cols * rank, (b + 1) * cols * rank))).toEqual(Array.from(qb));
    }
  });

  test('bit-identical across repeated runs and thread counts (several row slabs, ragged widths)', () => {
    // A race between tasks (e.g. a vector store past a task's accumulators) shows up here as
    // run-to-run differences, which a tolerance test only catches by luck.
    for (const [rows, cols, rank, batch] of [[4100, 20, 4, 1], [1030, 37, 3, 3], [2049, 901, 2, 1]]) {
      const m = sample('gaussian', batch * rows * cols, rand);
      const q0 = sample('gaussian', batch * cols * rank, rand);
      const run = () => { const q = q0.slice(); const { p } = powerSgdStepSync({ m, rows, cols, q, rank, batch }); return [p, q]; };
      try {
        setConcurrency(1);
        const [p1, q1] = run();
        setConcurrency(2);
        for (let t = 0; t < 6; t++) {
          const [p, q] = run();
          expectBitEqual(p, p1, `p ${rows}x${cols}`);
          expectBitEqual(q, q1, `q ${rows}x${cols}`);
        }
      } finally {
        setConcurrency(require('node:os').cpus().length);
      }
    }
  });

  test('orthonormalizeSync alone', () => {
    const p = sample('gaussian', 100 * 6, rand);
    for (let i = 0; i < 100; i++) p[i * 6 + 5] = p[i * 6 + 1] * 2; // column 5 depends on column 1
    orthonormalizeSync(p, { rows: 100, rank: 6 });
    expect(gramError(p, 100, 6)).toBeLessThan(1e-5);
    expect(maxAbs(p.filter((_, i) => i % 6 === 5))).toBe(0);
  });
});

describe('PowerSGD reconstruction fused with the SGD update (powerSgdReconstructSgd)', () => {
  const f = Math.fround;
  /** The float32 oracle of the reconstruction: g = P Qᵀ with k in order (zeros of P skipped), residual -= g. */
  function refRecon(p: Float32Array, q: Float32Array, rows: number, cols: number, r: number, residual: Float32Array | null): Float32Array {
    const g = new Float32Array(rows * cols);
    for (let i = 0; i < rows; i++)
      for (let j = 0; j < cols; j++) {
        let acc = 0;
        for (let k = 0; k < r; k++) if (p[i * r + k] !== 0) acc = f(acc + f(p[i * r + k] * q[j * r + k]));
        g[i * cols + j] = acc;
        if (residual) residual[i * cols + j] = f(residual[i * cols + j] - acc);
      }
    return g;
  }
  const opts = [
    { lr: 0.1, momentum: 0.9, dampening: 0, weightDecay: 0, nesterov: false, gradScale: 0.25 },
    { lr: 0.03, momentum: 0.5, dampening: 0.1, weightDecay: 1e-3, nesterov: false, gradScale: 1 },
    { lr: 0.2, momentum: 0.9, dampening: 0, weightDecay: 5e-4, nesterov: true, gradScale: 0.5 },
    { lr: 0.05, momentum: 0, dampening: 0, weightDecay: 0, nesterov: false, gradScale: 1 },
  ];
  test.each([[1, 1, 1], [7, 5, 2], [64, 33, 4], [130, 257, 8], [300, 17, 3], [5, 1000, 12]])(
    'matches forming g then sgd, bit for bit: %i x %i, rank %i', async (rows, cols, r) => {
      for (const [oi, o] of opts.entries()) {
        for (const withResidual of [true, false]) {
          const p = sample('gaussian', rows * r, rand), q = sample('gaussian', cols * r, rand);
          for (let i = 0; i < p.length; i += 5) p[i] = 0; // zeros of P are skipped
          const w0 = sample('gaussian', rows * cols, rand), m0 = sample('gaussian', rows * cols, rand), e0 = sample('heavy', rows * cols, rand);
          const first = oi === 1;
          const eRef = withResidual ? e0.slice() : null, wRef = w0.slice(), mRef = o.momentum > 0 ? m0.slice() : null;
          ref.sgd(wRef, refRecon(p, q, rows, cols, r, eRef), mRef, o, first);
          for (const threads of [1, 2]) {
            setConcurrency(threads);
            const e = withResidual ? e0.slice() : null, w = w0.slice(), m = o.momentum > 0 ? m0.slice() : null;
            if (threads === 1) kernels.powerSgdReconstructSgd(p, q, rows, cols, r, e, w, m, o, first);
            else await kernels.powerSgdReconstructSgdAsync(p, q, rows, cols, r, e, w, m, o, first);
            expectBitEqual(w, wRef, `w (${threads} threads, option set ${oi})`);
            if (m && mRef) expectBitEqual(m, mRef, 'momentum buffer');
            if (e && eRef) expectBitEqual(e, eRef, 'residual');
          }
        }
      }
      setConcurrency(require('node:os').cpus().length);
    });

  test('Sgd.updateLowRank is update() with the formed gradient, state included, and checks w', () => {
    const rows = 33, cols = 70, r = 3;
    const a = createOptimizer({ type: 'sgd', lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 1e-3 });
    const b = createOptimizer({ type: 'sgd', lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 1e-3 });
    const wa = sample('gaussian', rows * cols, rand), wb = wa.slice();
    const ea = sample('gaussian', rows * cols, rand), eb = ea.slice();
    for (let step = 0; step < 3; step++) {
      const p = sample('gaussian', rows * r, rand), q = sample('gaussian', cols * r, rand);
      void a.updateLowRank!('x', wa, { p, q, rows, cols, rank: r, residual: ea }, { gradScale: 0.5 });
      const g = refRecon(p, q, rows, cols, r, eb);
      void b.update('x', wb, g, { gradScale: 0.5 });
    }
    expectBitEqual(wa, wb, 'weights');
    expectBitEqual(ea, eb, 'residuals');
    expectBitEqual(a.state().tensors.x.momentum as Float32Array, b.state().tensors.x.momentum as Float32Array, 'momentum');
    const p = new Float32Array(rows * r), q = new Float32Array(cols * r);
    expect(() => a.updateLowRank!('x', new Float32Array(5), { p, q, rows, cols, rank: r, residual: null })).toThrow(expect.objectContaining({ param: 'w' }));
    expect(() => kernels.powerSgdReconstructSgd(p, q.subarray(1), rows, cols, r, null, wa, null, opts[3], false)).toThrow(expect.objectContaining({ param: 'q' }));
  });
});
