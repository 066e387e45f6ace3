import { qsgdDecode, qsgdDecodeSync, qsgdEncode, qsgdEncodeSync, qsgdPayloadBytes, setConcurrency, GradcompError } from '../../lib';
import { loadBinding } from '../../lib/native/loader';
import { qsgdDecodeSum } from '../../lib/ops/kernels';
import { QuantCompressor } from '../../lib/compress/qsgd';
import { expectBitEqual } from '../reference/compare';
import { bitsFor, philox4x32_10, refQsgdDecode, refQsgdEncode } from '../reference/qsgd';
import { freshSeed, mulberry32, sample } from '../reference/rng';

const seed = freshSeed();
const rand = mulberry32(seed);
beforeAll(() => console.log(`qsgd tests: GRADCOMP_TEST_SEED=${seed}`));

describe('Philox-4x32-10 (the oracle)', () => {
  test('matches the Random123 known-answer vectors', () => {
    expect(philox4x32_10([0, 0, 0, 0], [0, 0])).toEqual([0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]);
    expect(philox4x32_10([0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff], [0xffffffff, 0xffffffff]))
      .toEqual([0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]);
  });
});

describe('qsgdEncode / qsgdDecode', () => {
  test('bit widths: 1 + ceil(log2(levels + 1))', () => {
    expect([1, 2, 3, 7, 8, 127, 128, 255, 32767].map(bitsFor)).toEqual([2, 3, 3, 4, 5, 8, 9, 9, 16]);
    for (const [n, levels, bucketSize] of [[0, 1, 1], [1, 127, 512], [1000, 7, 512], [1025, 255, 100]]) {
      const x = new Float32Array(n);
      expect(qsgdEncodeSync(x, { levels, bucketSize, seed: 1 }).length).toBe(qsgdPayloadBytes(n, { levels, bucketSize }));
      expect(qsgdPayloadBytes(n, { levels, bucketSize })).toBe(24 + 4 * Math.ceil(n / bucketSize) + Math.ceil((n * bitsFor(levels)) / 8));
    }
  });

  const configs: [number, number, 'max' | 'l2'][] = [
    [1, 512, 'max'], [7, 512, 'max'], [127, 512, 'max'], [127, 512, 'l2'], [3, 100, 'l2'], [255, 128, 'max'],
    [32767, 64, 'max'], [15, 1, 'max'], [5, 7777, 'l2'],
  ];
  test.each(configs)('payload bytes equal the oracle: levels %i, bucket %i, %s norm', (levels, bucketSize, norm) => {
    for (const n of [1, 63, 64, 65, 511, 1000, 4099, 70001]) {
      const x = sample(n % 2 ? 'gaussian' : 'heavy', n, rand);
      const opts = { levels, bucketSize, norm, seed: (BigInt(Math.floor(rand() * 2 ** 52)) * 4099n) & 0xffffffffffffffffn, step: n, tensorId: 3 };
      const got = qsgdEncodeSync(x, opts);
      const want = refQsgdEncode(x, { ...opts, seed: BigInt(opts.seed) });
      expectBitEqual(got, want, `payload n=${n}`);
      expectBitEqual(qsgdDecodeSync(got), refQsgdDecode(want), `decode n=${n}`);
    }
  });

  test('the same bytes for any thread count and ISA', async () => {
    const binding = loadBinding();
    const x = sample('gaussian', 300001, rand);
    try {
      // 2-, 4- and 8-bit codes (the vector paths pack these straight from registers) and 9-bit ones.
      for (const levels of [1, 7, 127, 255]) {
        const opts = { levels, seed: 99, step: 4 };
        binding.setMaxIsa('scalar');
        const want = await qsgdEncode(x, opts);
        for (const isa of ['scalar', 'avx2', 'avx512'] as const) {
          binding.setMaxIsa(isa);
          for (const t of [1, 2, 4]) {
            setConcurrency(t);
            expectBitEqual(qsgdEncodeSync(x, opts), want, `levels ${levels} ${isa} x${t}`);
          }
        }
      }
    } finally {
      binding.setMaxIsa('avx512');
      setConcurrency(require('node:os').cpus().length);
    }
  });

  test('zeros, tiny norms, NaN and Inf policy', () => {
    const x = new Float32Array(1024);
    x.fill(1e-38, 0, 10); // a subnormal-range bucket still quantizes without overflow
    x[600] = NaN; // second bucket is poisoned
    const p = qsgdEncodeSync(x, { levels: 7, seed: 5 });
    expectBitEqual(p, refQsgdEncode(x, { levels: 7, bucketSize: 512, norm: 'max', seed: 5n, step: 0, tensorId: 0 }));
    const y = qsgdDecodeSync(p);
    expect(y.slice(0, 512).every((v) => Number.isFinite(v))).toBe(true);
    expect(y[0]).toBeCloseTo(1e-38, 44);
    expect(y.slice(512).every((v) => Number.isNaN(v))).toBe(true);
    const inf = new Float32Array([1, -Infinity, 2]);
    expect(qsgdDecodeSync(qsgdEncodeSync(inf, { levels: 3, seed: 1 })).every(Number.isNaN)).toBe(true);
    expect(Array.from(qsgdDecodeSync(qsgdEncodeSync(new Float32Array(5), { levels: 3, seed: 1 })))).toEqual([0, 0, 0, 0, 0]);
    // The max-norm element is exact: level s, no rounding.
    const m = new Float32Array([0.25, -4, 1]);
    expect(qsgdDecodeSync(qsgdEncodeSync(m, { levels: 127, seed: 2 }))[1]).toBe(-4);
  });

  test('decode into a caller buffer, async and sync agree', async () => {
    const x = sample('uniform', 5000, rand);
    const p = await qsgdEncode(x, { levels: 15, seed: 7, step: 1, tensorId: 2 });
    const out = new Float32Array(5000);
    expect(await qsgdDecode(p, out)).toBe(out);
    expectBitEqual(out, qsgdDecodeSync(p));
  });

  test('unbiased: the mean of decodes over many steps converges to x', () => {
    // Per element, decode(encode(x)) - x has variance <= (L/s)^2 / 4, so the mean over T steps
    // has standard deviation <= L/(2 s sqrt(T)); 6 sigma keeps the test from flaking.
    const n = 2048, T = 4000, s = 3;
    const x = sample('gaussian', n, rand);
    const sum = new Float64Array(n);
    for (let step = 0; step < T; step++) {
      const y = qsgdDecodeSync(qsgdEncodeSync(x, { levels: s, bucketSize: 256, seed: seed, step }));
      for (let i = 0; i < n; i++) sum[i] += y[i];
    }
    for (let b = 0; b < n / 256; b++) {
      const bucket = x.subarray(b * 256, (b + 1) * 256);
      const L = bucket.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      const tol = (6 * L) / (2 * s * Math.sqrt(T));
      for (let i = b * 256; i < (b + 1) * 256; i++) expect(Math.abs(sum[i] / T - x[i])).toBeLessThan(tol);
    }
  });

  test('variance: within the Lemma 3.1 bound and near the spec table (§3(e))', () => {
    // Rows of specs/compressors.md §3(e): i.i.d. N(0,1), n = 4096, mean over trials of ||Q - v||^2 / ||v||^2.
    const rows: [number, number, 'l2' | 'max', number, number][] = [
      [4096, 1, 'l2', 49.5, 64], [512, 4, 'l2', 3.52, 5.66], [512, 22, 'l2', 0.176, 1.03], [128, 4, 'max', 0.084, Infinity],
    ];
    for (const [d, s, norm, expected, bound] of rows) {
      let rel = 0;
      const trials = 40;
      for (let t = 0; t < trials; t++) {
        const v = sample('gaussian', 4096, rand);
        const q = qsgdDecodeSync(qsgdEncodeSync(v, { levels: s, bucketSize: d, norm, seed: 11, step: t }));
        let num = 0, den = 0;
        for (let i = 0; i < v.length; i++) { num += (q[i] - v[i]) ** 2; den += v[i] ** 2; }
        rel += num / den / trials;
      }
      expect(rel).toBeLessThan(bound);
      expect(Math.abs(rel - expected) / expected).toBeLessThan(0.15);
    }
  });

  describe('qsgdDecodeSum (all workers\' payloads at once, out written once)', () => {
    /** k payloads of n elements at odd offsets of one buffer, with their spans. */
    const packed = (n: number, k: number, opts: { levels: number; bucketSize?: number; norm?: 'max' | 'l2' }) => {
      const ps = Array.from({ length: k }, (_, j) => qsgdEncodeSync(sample(j % 2 ? 'heavy' : 'gaussian', n, rand), { ...opts, seed: Math.floor(rand() * 1e9), step: j }));
      const data = new Uint8Array(ps.reduce((a, p) => a + p.length + 3, 5)), spans = new Float64Array(2 * k);
      let at = 5;
      ps.forEach((p, j) => { data.set(p, at); spans[2 * j] = at; spans[2 * j + 1] = p.length; at += p.length + 3; });
      return { ps, data, spans };
    };
    /** The oracle: the float32 sum of the reference decodes in payload order, then the scale. */
    const oracle = (ps: Uint8Array[], n: number, scale: number) => {
      const acc = new Float32Array(n);
      for (const p of ps) { const d = refQsgdDecode(p); for (let i = 0; i < n; i++) acc[i] = acc[i] + d[i]; }
      if (scale !== 1) for (let i = 0; i < n; i++) acc[i] = acc[i] * Math.fround(scale);
      return acc;
    };
    test.each([[7, 512, 'max'], [127, 100, 'max'], [3, 4096, 'l2'], [1, 64, 'max']] as const)('equals the oracle on every ISA: levels %i, bucket %i, %s norm', (levels, bucketSize, norm) => {
      const binding = loadBinding();
      try {
        for (const n of [1, 100, 8193, 70001]) {
          for (const k of [1, 3, 4]) {
            const { ps, data, spans } = packed(n, k, { levels, bucketSize, norm });
            const scale = k > 1 ? 1 / k : 1, want = oracle(ps, n, scale);
            for (const isa of ['scalar', 'avx2', 'avx512'] as const) {
              binding.setMaxIsa(isa);
              const out = new Float32Array(n).fill(NaN); // every element is written
              qsgdDecodeSum(data, spans, out, scale);
              expectBitEqual(out, want, `n=${n} k=${k} ${isa}`);
            }
            binding.setMaxIsa('avx512');
          }
        }
      } finally {
        binding.setMaxIsa('avx512');
      }
    });
    test('a corrupt payload, a span past the data or the wrong length is refused with a code', () => {
      const { data, spans } = packed(1000, 3, { levels: 7 });
      const bad = data.slice();
      new DataView(bad.buffer).setFloat32(spans[2] + 24, -1, true); // the second payload's first norm
      expect(() => qsgdDecodeSum(bad, spans, new Float32Array(1000), 1)).toThrow(expect.objectContaining({ code: 'ERR_GRADCOMP_CORRUPT_PAYLOAD' }));
      const past = spans.slice(); past[5] += 1;
      expect(() => qsgdDecodeSum(data, past, new Float32Array(1000), 1)).toThrow(expect.objectContaining({ code: expect.stringMatching(/^ERR_GRADCOMP_/) }));
      expect(() => qsgdDecodeSum(data, spans, new Float32Array(999), 1)).toThrow(expect.objectContaining({ code: expect.stringMatching(/^ERR_GRADCOMP_/) }));
      expect(() => qsgdDecodeSum(data, new Float64Array(0), new Float32Array(1000), 1)).toThrow(expect.objectContaining({ code: expect.stringMatching(/^ERR_GRADCOMP_/) }));
    });
    test('the compressor decodes views of one receive buffer (the fused kernel) to the bits of separate payloads (one at a time)', async () => {
      const c = new QuantCompressor('qsgd', 6, 7, 512, 'max', 5, false);
      for (const n of [1, 4097, 30000]) {
        const parts: Uint8Array[] = [];
        for (let r = 0; r < 4; r++) parts.push(await c.compress('w', sample('gaussian', n, rand), { step: 1, rank: r, workers: 4 }));
        const whole = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
        let at = 0;
        const views = parts.map((p) => { whole.set(p, at); at += p.length; return whole.subarray(at - p.length, at); });
        for (const average of [true, false]) {
          expectBitEqual(c.decompress(views, n, new Float32Array(n), average), c.decompress(parts.map((p) => p.slice()), n, new Float32Array(n), average), `n=${n} average=${average}`);
        }
      }
    });
  });

  describe('malformed payloads get ERR_GRADCOMP_CORRUPT_PAYLOAD', () => {
    const x = sample('gaussian', 1000, rand);
    const good = qsgdEncodeSync(x, { levels: 7, seed: 3 });
    const expectCorrupt = (p: Uint8Array) => {
      let err: unknown;
      try { qsgdDecodeSync(p); } catch (e) { err = e; }
      expect(err).toBeInstanceOf(GradcompError);
      expect((err as GradcompError).code).toBe('ERR_GRADCOMP_CORRUPT_PAYLOAD');
    };
    test('truncated at every length and padded', () => {
      for (let len = 0; len < good.length; len += 7) expectCorrupt(good.slice(0, len));
      const padded = new Uint8Array(good.length + 1);
      padded.set(good);
      expectCorrupt(padded);
    });
    test('header fields', () => {
      // magic, version, norm kind, bits, reserved, levels, bucket size, n: each changed alone.
      for (const [off, flip] of [[0, 1], [4, 3], [5, 2], [6, 1], [7, 1], [8, 7], [13, 2], [16, 1], [20, 1]] as const) {
        const p = good.slice();
        p[off] ^= flip;
        expectCorrupt(p);
      }
    });
    test('a code above levels, set pad bits, a negative or infinite norm', () => {
      const p1 = good.slice();
      p1[24 + 4 * 2] = 0x77; // first code byte: level 7 = s is fine ...
      expect(() => qsgdDecodeSync(p1)).not.toThrow();
      const p2 = qsgdEncodeSync(new Float32Array(3), { levels: 5, seed: 1 }); // 4-bit codes, 3 of them
      const q2 = p2.slice(); q2[q2.length - 1] |= 0x60; // pad bits
      expectCorrupt(q2);
      const q3 = p2.slice(); q3[24 + 4] = 0x06; // level 6 > s = 5
      expectCorrupt(q3);
      const q4 = good.slice(); new DataView(q4.buffer).setFloat32(24, -1, true);
      expectCorrupt(q4);
      const q5 = good.slice(); new DataView(q5.buffer).setFloat32(24, Infinity, true);
      expectCorrupt(q5);
    });
  });
});
