/**
 * The internal kernels the compressors, optimizers and communicators run (lib/ops/kernels.ts)
 * against the slow references of test/reference/vector.ts, bit for bit, on every ISA level.
 */
import * as k from '../../lib/ops/kernels';
const k_ = k;
import { loadBinding } from '../../lib/native/loader';
import { freshSeed, mulberry32, sample } from '../reference/rng';
import * as ref from '../reference/vector';

const seed = freshSeed();
console.log(`kernel tests: GRADCOMP_TEST_SEED=${seed}`);
const rand = mulberry32(seed);
const ISAS = ['scalar', 'avx2', 'avx512'] as const;
const binding = loadBinding();
const bits = (a: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('hex');
const eachIsa = (fn: () => void) => { try { for (const isa of ISAS) { binding.setMaxIsa(isa); fn(); } } finally { binding.setMaxIsa('avx512'); } };
const SIZES = [0, 1, 7, 8, 17, 1000, 65536, 65536 * 2 + 37];

test.each(SIZES)('sum of squares, n = %i: the documented order, on every ISA', (n) => {
  const x = sample('heavy', n, rand);
  eachIsa(() => expect(k.sumSquares(x)).toBe(ref.sumSquares(x)));
});

test.each(SIZES)('SGD (momentum, Nesterov, weight decay, grad scale), n = %i, bit for bit', (n) => {
  for (const o of [{ lr: 0.1, momentum: 0.9, dampening: 0, weightDecay: 1e-4, nesterov: true, gradScale: 0.25 },
    { lr: 0.05, momentum: 0.5, dampening: 0.1, weightDecay: 0, nesterov: false, gradScale: 1 }, { lr: 0.3, momentum: 0, dampening: 0, weightDecay: 0.01, nesterov: false, gradScale: 1 }]) {
    const w0 = sample('gaussian', n, rand), g1 = sample('gaussian', n, rand), g2 = sample('heavy', n, rand);
    const want = w0.slice(), wb = o.momentum ? new Float32Array(n) : null;
    ref.sgd(want, g1, wb, o, true);
    ref.sgd(want, g2, wb, o, false);
    eachIsa(() => {
      const w = w0.slice(), b = o.momentum ? new Float32Array(n) : null;
      k.sgdStep(w, g1, b, o, true);
      k.sgdStep(w, g2, b, o, false);
      expect(bits(w)).toBe(bits(want));
      if (b) expect(bits(b)).toBe(bits(wb!));
    });
  }
});

test.each(SIZES)('fused efsign encode, n = %i: bits, scale and residual as the reference, on every ISA', (n) => {
  const g = sample('gaussian', n, rand), e0 = sample('uniform', n, rand).map((v) => v * 0.1);
  if (n > 8) { g[3] = -0; g[5] = 0; }
  const want = e0.slice(), wbits = new Uint8Array(Math.ceil(n / 8) + 4);
  const wscale = ref.efsign(g, want, wbits);
  eachIsa(() => {
    const e = e0.slice(), b = new Uint8Array(Math.ceil(n / 8) + 4);
    expect(k.efsignEncode(g, e, b)).toBe(wscale);
    expect(bits(b)).toBe(bits(wbits));
    expect(bits(e)).toBe(bits(want));
  });
});

test.each(SIZES)('sign pack (bits and sum |x| in efsign\'s order) and unpack-add, n = %i, on every ISA', (n) => {
  const x = sample('heavy', n, rand), x0 = x.slice();
  if (n > 8) { x[2] = -0; x[4] = 0; }
  // The reference of the pack is efsign's first half with no gradient: p = x.
  const wbits = new Uint8Array(Math.ceil(n / 8)), probe = x.slice();
  const want = ref.efsign(null, probe, wbits);
  const scale = Math.fround(0.37), base = sample('gaussian', n, rand);
  const added = base.map((v, i) => Math.fround(v + ((wbits[i >> 3] >> (i & 7)) & 1 ? -scale : scale)));
  eachIsa(() => {
    const b = new Uint8Array(Math.ceil(n / 8)).fill(0xff);
    const l1 = k.signPack(x, b);
    expect(n > 0 ? Math.fround(l1 / n) : 0).toBe(want);
    expect(bits(b)).toBe(bits(wbits));
    expect(bits(x)).toBe(bits(n > 8 ? Object.assign(x0.slice(), { 2: -0, 4: 0 }) : x0)); // read only
    const o = base.slice();
    k.signUnpackAdd(b, o, scale);
    expect(bits(o)).toBe(bits(added));
  });
});

test.each(SIZES)('all ranks\' signs decode at once, n = %i: average and majority vote', (n) => {
  const R = 5, bytes = Math.ceil(n / 8) + 4, data = new Uint8Array(R * bytes + 3);
  const bitsOf = Array.from({ length: R }, (_, r) => { const b = data.subarray(3 + r * bytes, 3 + (r + 1) * bytes); b.forEach((_, i) => { b[i] = Math.floor(rand() * 256); }); return b; });
  // Padding bits past n are zero in a valid payload.
  for (const b of bitsOf) for (let i = n; i < 8 * b.length; i++) b[i >> 3] &= ~(1 << (i & 7));
  const offsets = Uint32Array.from({ length: R }, (_, r) => 3 + r * bytes), scales = Float32Array.from({ length: R }, () => rand());
  const avg = ref.signDecode(bitsOf, Array.from(scales), n, false, R), vote = ref.signDecode(bitsOf, null, n, true, 1);
  eachIsa(() => {
    const o = new Float32Array(n);
    k.signDecodeAll(data, offsets, scales, o, 0, R);
    expect(bits(o)).toBe(bits(avg));
    k.signDecodeAll(data, offsets, null, o, 1);
    expect(bits(o)).toBe(bits(vote));
  });
});

test('scatter-add refuses indices out of range or not ascending, and leaves out untouched', () => {
  const out = Float32Array.of(1, 2, 3, 4);
  k.scatterAdd(out, Uint32Array.of(0, 3), Float32Array.of(10, 20), 0.5);
  expect(Array.from(out)).toEqual([6, 2, 3, 14]);
  for (const idx of [Uint32Array.of(3, 0), Uint32Array.of(1, 1), Uint32Array.of(0, 4)]) {
    expect(() => k.scatterAdd(out, idx, Float32Array.of(1, 1))).toThrow(expect.objectContaining({ code: 'ERR_GRADCOMP_CORRUPT_PAYLOAD' }));
    expect(Array.from(out)).toEqual([6, 2, 3, 14]);
  }
});

test('rand-k supports: k distinct ascending indices below n, the same for the same key, about uniform', () => {
  for (const [n, kk] of [[10, 10], [1000, 1], [100000, 1000], [5, 0]]) {
    const a = k.randkSupport(n, kk, 7, 3, 11);
    expect(a.length).toBe(kk);
    for (let j = 1; j < kk; j++) expect(a[j]).toBeGreaterThan(a[j - 1]);
    if (kk) expect(a[kk - 1]).toBeLessThan(n);
    expect(bits(k.randkSupport(n, kk, 7, 3, 11))).toBe(bits(a));
  }
  // Every index equally likely: counts over 2000 draws of 10 of 100 stay near 200 (6 sigma).
  const counts = new Array(100).fill(0);
  for (let s = 0; s < 2000; s++) for (const i of k.randkSupport(100, 10, 1, s, 2)) counts[i]++;
  for (const c of counts) expect(Math.abs(c - 200)).toBeLessThan(6 * Math.sqrt(200 * 0.9));
  expect(bits(k.randkSupport(1000, 10, 1, 0, 2))).not.toBe(bits(k.randkSupport(1000, 10, 1, 1, 2)));
});

test('checksum: CRC32C of the standard check string, and the 1 MiB-piece tree on large inputs', () => {
  expect(ref.crc32c(new TextEncoder().encode('123456789'))).toBe(0xe3069283);
  for (const n of [0, 9, 1 << 20, (1 << 20) + 5, 3 * (1 << 20) + 1]) {
    const x = new Uint8Array(n).map(() => Math.floor(rand() * 256));
    if (n === 9) x.set(new TextEncoder().encode('123456789'));
    expect(k.checksum(x)).toBe(ref.checksum(x));
  }
});

test('vector ops: add, scale, axpy in place, and copies through shared memory', () => {
  const a = sample('gaussian', 70000, rand), b = sample('gaussian', 70000, rand);
  eachIsa(() => {
    const out = a.slice();
    k.vecAdd(out, out, b);
    out.forEach((v, i) => expect(v).toBe(Math.fround(a[i] + b[i])));
    k.vecAxpy(out, b, -1);
    out.forEach((v, i) => expect(v).toBe(Math.fround(Math.fround(a[i] + b[i]) + Math.fround(-1 * b[i]))));
    k.vecScale(out, 0.5);
    const m = a.slice();
    k.vecAxpby(m, b, 1, 0.9); // a momentum update: the bits of scale then axpy
    const mu = Math.fround(0.9), once = Float32Array.from(a, (v, i) => Math.fround(Math.fround(mu * v) + b[i]));
    expect(bits(m)).toBe(bits(once));
    k.vecAxpby(m, a, -0.5, 0.25);
    expect(bits(m)).toBe(bits(Float32Array.from(once, (v, i) => Math.fround(Math.fround(0.25 * v) + Math.fround(-0.5 * a[i])))));
  });
  expect(() => k.vecAxpby(a.slice(), b.subarray(1), 1, 0.9)).toThrow(expect.objectContaining({ param: 'x' }));
  const sab = new Float32Array(new SharedArrayBuffer(4 * 70000));
  k.copyInto(sab, a);
  expect(bits(sab)).toBe(bits(a));
});

test.each(SIZES)('vecMulAdd (s += eta x y, float64 per element), n = %i, bit for bit on every ISA, NaN and infinities included', (n) => {
  const s0 = sample('gaussian', n, rand), x = sample('heavy', n, rand), y = sample('gaussian', n, rand);
  if (n > 8) { x[3] = NaN; y[5] = Infinity; x[7] = 3.4e38; y[7] = 3.4e38; }
  const eta = 0.05 + rand();
  const want = Float32Array.from(s0, (v, i) => eta * x[i] * y[i] + v);
  eachIsa(() => {
    const s1 = s0.slice();
    k.vecMulAdd(s1, x, y, eta);
    expect(bits(s1)).toBe(bits(want));
  });
  if (n > 0) expect(() => k.vecMulAdd(s0, x.subarray(1), y)).toThrow(expect.objectContaining({ param: 'x' }));
});

test.each([[0, 5], [1, 1], [3, 129], [1000, 10], [7, 70000]])('rowsSumSq, %i rows of %i: each row\'s sum of squares in the documented order, on every ISA', (rows, cols) => {
  const x = sample('heavy', rows * cols, rand);
  // The documented order: eight interleaved float64 partial sums over the whole row, combined pairwise.
  const rowRef = (v: Float32Array) => { const p = new Float64Array(8); v.forEach((e, i) => { p[i & 7] += e * e; }); return ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7])); };
  const want = Float64Array.from({ length: rows }, (_, r) => rowRef(x.subarray(r * cols, (r + 1) * cols)));
  eachIsa(() => {
    const out = new Float64Array(rows).fill(NaN);
    k.rowsSumSq(x, cols, out);
    expect(Array.from(out)).toEqual(Array.from(want));
  });
  expect(() => k.rowsSumSq(x, cols, new Float64Array(rows + 1))).toThrow(expect.objectContaining({ param: 'x' }));
  expect(() => k.rowsSumSq(x, 0, new Float64Array(rows))).toThrow(expect.objectContaining({ param: 'cols' }));
});

test.each(SIZES)('reduceMany (k sources in one pass), n = %i: the sequential fold, sum and max (NaN wins), float32 and float64', (n) => {
  for (const m of [1, 2, 5]) {
    for (const Arr of [Float32Array, Float64Array]) {
      const stride = n + 3, data = new Arr(m * stride + 5);
      data.forEach((_, i) => { data[i] = (rand() - 0.5) * 10 ** Math.floor(rand() * 6); });
      if (n > 10) { data[7] = NaN; data[stride + 9] = NaN; }
      const offsets = Uint32Array.from({ length: m }, (_, j) => ((j * 2 + 1) % m) * stride + 1);
      for (const op of [0, 1] as const) {
        const want = new Arr(n);
        for (let i = 0; i < n; i++) {
          let acc = data[offsets[0] + i];
          for (let j = 1; j < m; j++) {
            const v = data[offsets[j] + i];
            acc = op === 0 ? (Arr === Float32Array ? Math.fround(acc + v) : acc + v) : (v > acc || Number.isNaN(acc) ? v : acc);
          }
          want[i] = acc;
        }
        eachIsa(() => {
          const dst = new Arr(n);
          k.reduceMany(dst, data, offsets, op);
          expect(bits(dst)).toBe(bits(want));
        });
      }
    }
  }
});

test.each([[1, 1, 1], [3, 5, 7], [17, 33, 129], [64, 130, 600]])('gemm m=%i n=%i k=%i: all four transposes, alpha and beta, bit for bit on every ISA', (m, n, k) => {
  const f = Math.fround;
  for (const [ta, tb] of [[false, false], [true, false], [false, true], [true, true]] as const) {
    const a = sample('gaussian', m * k, rand), b = sample('gaussian', k * n, rand), c0 = sample('gaussian', m * n, rand);
    const A = (i: number, kk: number) => (ta ? a[kk * m + i] : a[i * k + kk]), B = (kk: number, j: number) => (tb ? b[j * k + kk] : b[kk * n + j]);
    for (const [alpha, beta] of [[1, 0], [0.5, 1], [-2, 0.25]]) {
      const want = new Float32Array(m * n);
      for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
        let acc = beta === 0 ? 0 : beta === 1 ? c0[i * n + j] : f(beta * c0[i * n + j]);
        for (let kk = 0; kk < k; kk++) acc = f(acc + f(f(alpha * A(i, kk)) * B(kk, j)));
        want[i * n + j] = acc;
      }
      eachIsa(() => {
        const c = c0.slice();
        k_.gemm(ta, tb, m, n, k, a, b, c, alpha, beta);
        expect(bits(c)).toBe(bits(want));
      });
    }
  }
});
