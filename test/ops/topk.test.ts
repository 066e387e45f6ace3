import { efTopK, efTopKSync, topK, topKSync, Tensor, setConcurrency } from '../../lib';
import { loadBinding } from '../../lib/native/loader';
import { freshSeed, mulberry32, sample, Dist } from '../reference/rng';
import { refEfTopK, refTopK } from '../reference/topk';
import { expectBitEqual } from '../reference/compare';

const seed = freshSeed();
const rand = mulberry32(seed);
beforeAll(() => console.log(`topk tests: GRADCOMP_TEST_SEED=${seed}`));

function expectSame(got: { indices: Uint32Array; values: Float32Array }, want: { indices: Uint32Array; values: Float32Array }) {
  expectBitEqual(got.indices, want.indices, 'indices');
  expectBitEqual(got.values, want.values, 'values'); // bit equality: NaN payloads and -0 included
}

const dists: Dist[] = ['gaussian', 'uniform', 'heavy', 'equal', 'narrow', 'ties', 'zeros', 'smallint'];

describe('topK', () => {
  test.each([1, 2, 3, 15, 16, 17, 1000, 65535, 65536, 65537, 100003, 300007])('matches the oracle, n = %i', (n) => {
    for (const dist of ['gaussian', 'ties'] as Dist[]) {
      const x = sample(dist, n, rand);
      const before = x.slice();
      for (const k of new Set([0, 1, Math.floor(n * 0.001), Math.floor(n * 0.01), Math.floor(n * 0.1), Math.floor(n / 2), n - 1, n])) {
        if (k < 0) continue;
        expectSame(topKSync(x, k), refTopK(x, k));
      }
      expect(x).toEqual(before); // x untouched
    }
  });

  test.each(dists)('adversarial distribution %s at n = 2^17 + 3', (dist) => {
    const n = (1 << 17) + 3;
    const x = sample(dist, n, rand);
    for (const frac of [0.001, 0.01, 0.1, 0.5, 0.9]) {
      const k = Math.ceil(n * frac);
      expectSame(topKSync(x, k), refTopK(x, k));
    }
  });

  test('NaN ranks above Infinity above every finite value; -0 ties +0; ties to the lower index', () => {
    const x = new Float32Array([1, NaN, -Infinity, 3, -0, 0, Infinity, -3, NaN]);
    expectSame(topKSync(x, 4), { indices: Uint32Array.from([1, 2, 6, 8]), values: Float32Array.from([NaN, -Infinity, Infinity, NaN]) });
    expect(Array.from(topKSync(x, 6).indices)).toEqual([1, 2, 3, 6, 7, 8]);
    const z = new Float32Array([-0, 0, 0, -0]);
    const r = topKSync(z, 2);
    expect(Array.from(r.indices)).toEqual([0, 1]);
    expect(Object.is(r.values[0], -0)).toBe(true);
  });

  test('large inputs with NaN and Inf sprinkled in', () => {
    const n = 200001;
    const x = sample('gaussian', n, rand);
    for (let j = 0; j < 50; j++) x[Math.floor(rand() * n)] = [NaN, Infinity, -Infinity][j % 3];
    for (const k of [10, 100, 2000]) expectSame(topKSync(x, k), refTopK(x, k));
  });

  test('async and sync agree; Tensor inputs work; outputs can be passed in', async () => {
    const x = sample('gaussian', 70001, rand);
    const k = 700;
    const a = await topK(Tensor.from(x), k);
    const out = { indices: new Uint32Array(k), values: new Float32Array(k) };
    const b = topKSync(x, k, { out });
    expect(b.indices).toBe(out.indices);
    expectSame(a, b);
    expectSame(a, refTopK(x, k));
  });

  test('every path of the sampled selector is exercised and exact', () => {
    const binding = loadBinding();
    const seen = new Set<number>();
    const n = 1 << 18;
    const cases: [Dist, number][] = [['gaussian', 0.01], ['equal', 0.01], ['ties', 0.2], ['zeros', 0.5], ['narrow', 0.3], ['uniform', 0.97]];
    for (const [dist, frac] of cases) {
      const x = sample(dist, n, rand);
      const k = Math.ceil(n * frac);
      expectSame(topKSync(x, k), refTopK(x, k));
      seen.add(binding.lastTopkPath());
    }
    // A sample that misjudges (white box: the block positions of sample_threshold in
    // native/core/topk.cc): large values exactly where the sample looks, so the threshold lands
    // above the true k-th value and the selector must fall back to a full radix select.
    const mix64 = (v: bigint) => {
      const m = (1n << 64n) - 1n;
      v ^= v >> 33n; v = (v * 0xff51afd7ed558ccdn) & m; v ^= v >> 33n; v = (v * 0xc4ceb9fe1a85ec53n) & m; v ^= v >> 33n;
      return v;
    };
    const x = new Float32Array(n).fill(1);
    const stride = n / 512;
    for (let b = 0; b < 512; b++) {
      const start = b * stride + Number(mix64(BigInt(b + n)) % BigInt(stride - 64 + 1));
      x.fill(10, start, start + 64);
    }
    const k = Math.ceil(n * 0.2);
    expectSame(topKSync(x, k), refTopK(x, k));
    seen.add(binding.lastTopkPath());
    expect([...seen].sort()).toEqual([1, 2, 3]);
  });

  test('the same answer on every ISA and thread count', () => {
    const binding = loadBinding();
    const x = sample('heavy', 150001, rand);
    const want = refTopK(x, 1500);
    try {
      for (const isa of ['scalar', 'avx2', 'avx512'] as const) {
        binding.setMaxIsa(isa);
        for (const t of [1, 2, 3]) {
          setConcurrency(t);
          expectSame(topKSync(x, 1500), want);
        }
      }
    } finally {
      binding.setMaxIsa('avx512');
      setConcurrency(require('node:os').cpus().length);
    }
  });
});

describe('efTopK', () => {
  test.each([1, 5, 16, 33, 4097, 65536, 99991, 262147])('matches the oracle and updates the residual, n = %i', (n) => {
    for (const scale of [1, 0.1, -2.5]) {
      const g = sample('gaussian', n, rand), r = sample('uniform', n, rand);
      for (const k of [0, 1, Math.ceil(n * 0.01), Math.ceil(n * 0.3), n]) {
        const rr = r.slice();
        const want = refEfTopK(g, rr, k, scale);
        const got = efTopKSync(g, rr, k, { scale });
        expectSame(got, want);
        expectBitEqual(rr, want.residual, 'residual');
      }
    }
  });

  test('error feedback conserves mass over many steps', async () => {
    const n = 100003, k = 1000, steps = 30;
    const residual = new Float32Array(n);
    const sentSum = new Float64Array(n), gradSum = new Float64Array(n);
    for (let t = 0; t < steps; t++) {
      const g = sample(t % 2 ? 'heavy' : 'gaussian', n, rand);
      g.forEach((v, i) => { gradSum[i] += v; });
      const { indices, values } = await efTopK(g, residual, k);
      indices.forEach((i, j) => { sentSum[i] += values[j]; });
    }
    let maxErr = 0, scaleRef = 0;
    for (let i = 0; i < n; i++) {
      maxErr = Math.max(maxErr, Math.abs(sentSum[i] + residual[i] - gradSum[i]));
      scaleRef = Math.max(scaleRef, Math.abs(gradSum[i]));
    }
    expect(maxErr).toBeLessThan(1e-5 * steps * Math.max(1, scaleRef));
  });

  test('adversarial distributions in the fused path', () => {
    const n = (1 << 17) + 5;
    for (const dist of dists) {
      const g = sample(dist, n, rand), r = sample('zeros', n, rand);
      for (const k of [Math.ceil(n * 0.001), Math.ceil(n * 0.05)]) {
        const rr = r.slice();
        const want = refEfTopK(g, rr, k);
        expectSame(efTopKSync(g, rr, k), want);
        expectBitEqual(rr, want.residual, 'residual');
      }
    }
  });
});

describe('scratch is explicit', () => {
  test('the kernel reports what it needs, a function of n and k only, well under the tensor for small k', () => {
     
    const { cpu, kernels } = require('../../lib/backend') as typeof import('../../lib/backend');
    const bytes = (n: number, k: number) => cpu.scratchBytes(kernels.efTopK as never, { residual: { length: n }, k: Math.floor(k) });
    const n = 1 << 22;
    expect(bytes(n, n / 1000)).toBeGreaterThan(0);
    expect(bytes(n, n / 1000)).toBeLessThan(n / 2); // slabs sized by the sampled threshold, not by n
    expect(bytes(n, n / 100)).toBeGreaterThan(bytes(n, n / 1000));
    expect(bytes(1000, 10)).toBeLessThan(4096); // small tensors: the chunk records only
  });
});
