/**
 * Sgd.updateSparse and updateQuantized: the update from a gradient given undecoded (every
 * worker's top-k entries, or QSGD payloads) must give the bits of decoding it first (into zeros,
 * in worker order) and calling update() on the dense gradient; and the distributed optimizers that
 * use them must give the bits of the path that decodes.
 */
import { createDistributedOptimizer, createOptimizer, init, Communicator, Tensor, qsgdEncodeSync, qsgdDecodeSync } from '../../lib';
import type { SparseGrad } from '../../lib/ops/kernels';
import { freshSeed, mulberry32 } from '../reference/rng';

const seed = freshSeed();
const rand = mulberry32(seed);
const f = Math.fround;

/** part count r, each a sorted set of distinct indices < n (the edges of the kernel's pieces included on purpose) with values, zeros among them. */
function parts(n: number, r: number, density: number): { idx: number[]; vals: number[] }[] {
  const edges = [0, n - 1, 8191, 8192, 65535, 65536, 65537].filter((i) => i < n);
  return Array.from({ length: r }, () => {
    const set = new Set<number>();
    for (let i = 0; i < density * n; i++) set.add(Math.floor(rand() * n));
    for (const e of edges) if (rand() < 0.5) set.add(e);
    const idx = [...set].sort((a, b) => a - b);
    const vals = idx.map(() => { const u = rand(); return u < 0.05 ? 0 : u < 0.08 ? -0 : f((rand() - 0.5) * 4); });
    return { idx, vals };
  });
}

const pack = (ps: { idx: number[]; vals: number[] }[]): SparseGrad => ({
  indices: Uint32Array.from(ps.flatMap((p) => p.idx)), values: Float32Array.from(ps.flatMap((p) => p.vals)), counts: Uint32Array.from(ps.map((p) => p.idx.length)),
});

/** The oracle's gradient: zeros, then each part added in order, one float32 rounding per add. */
function dense(n: number, ps: { idx: number[]; vals: number[] }[]): Float32Array {
  const g = new Float32Array(n);
  for (const p of ps) p.idx.forEach((i, j) => { g[i] = f(g[i] + p.vals[j]); });
  return g;
}

const same = (a: Float32Array, b: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

describe(`Sgd.updateSparse against update() on the decoded gradient (seed ${seed})`, () => {
  const specs = [
    { type: 'sgd' as const, lr: 0.1, momentum: 0.9, nesterov: true },
    { type: 'sgd' as const, lr: 0.05, momentum: 0.9, dampening: 0.3, weightDecay: 1e-3 },
    { type: 'sgd' as const, lr: 0.2 }, // no momentum, no decay: only the listed entries are touched
    { type: 'sgd' as const, lr: 0.2, weightDecay: 0.01 },
  ];
  test.each(specs.flatMap((s) => [[s, 1, 0.25], [s, 4, 1], [s, 3, -0.5]] as const))('%j, %d parts, gradScale %d', async (spec, r, gradScale) => {
    for (const n of [1, 37, 8192, 200003]) {
      const w0 = Float32Array.from({ length: n }, () => f(rand() - 0.5));
      if (n > 5) { w0[1] = -0; w0[2] = 0; }
      const a = createOptimizer(spec), b = createOptimizer(spec), wa = w0.slice(), wb = w0.slice();
      for (let t = 0; t < 3; t++) {
        const ps = parts(n, r, t === 1 ? 0 : 0.02);
        const sparse = pack(ps);
        if (t === 2) await a.updateSparse!('x', wa, sparse, { gradScale, async: true });
        else a.updateSparse!('x', wa, sparse, { gradScale });
        b.update('x', wb, dense(n, ps), { gradScale });
        expect(same(wa, wb)).toBe(true);
        const ma = a.state().tensors.x?.momentum as Float32Array | undefined, mb = b.state().tensors.x?.momentum as Float32Array | undefined;
        expect(ma === undefined).toBe(mb === undefined);
        if (ma && mb) expect(same(ma, mb)).toBe(true);
      }
    }
  });

  test('a part out of order or out of range is refused before anything is written (no momentum buffer either)', async () => {
    const n = 100000, w0 = Float32Array.from({ length: n }, rand);
    for (const bad of [
      { indices: Uint32Array.of(5, 9, 9), values: new Float32Array(3), counts: Uint32Array.of(3) },
      { indices: Uint32Array.of(5, 9, 3), values: new Float32Array(3), counts: Uint32Array.of(3) },
      { indices: Uint32Array.of(5, 9, 70000, 4, n), values: new Float32Array(5), counts: Uint32Array.of(3, 2) },
    ]) {
      for (const async of [false, true]) {
        const o = createOptimizer({ type: 'sgd', lr: 0.1, momentum: 0.9 }), w = w0.slice();
        await expect((async () => o.updateSparse!('x', w, bad, { async }))()).rejects.toMatchObject({ code: 'ERR_GRADCOMP_CORRUPT_PAYLOAD' });
        expect(same(w, w0)).toBe(true);
        expect(o.state().tensors.x?.momentum).toBeUndefined();
      }
    }
    // Two parts may repeat each other's indices (their values add): not corrupt.
    const o = createOptimizer({ type: 'sgd', lr: 1 }), w = new Float32Array(10);
    o.updateSparse!('x', w, { indices: Uint32Array.of(3, 3), values: Float32Array.of(1, 2), counts: Uint32Array.of(1, 1) });
    expect(Array.from(w)).toEqual([0, 0, 0, -3, 0, 0, 0, 0, 0, 0]);
  });

  test('counts that do not add up to the entries, or values of another length, name the argument', () => {
    const o = createOptimizer({ type: 'sgd', lr: 0.1 }), w = new Float32Array(10);
    expect(() => o.updateSparse!('x', w, { indices: Uint32Array.of(1, 2), values: Float32Array.of(1, 2), counts: Uint32Array.of(1) })).toThrow(expect.objectContaining({ param: 'counts' }));
    expect(() => o.updateSparse!('x', w, { indices: Uint32Array.of(1, 2), values: Float32Array.of(1), counts: Uint32Array.of(2) })).toThrow(expect.objectContaining({ param: 'values' }));
    expect(() => o.updateSparse!('x', w, null as never)).toThrow(expect.objectContaining({ param: 'g' }));
  });
});

describe(`Sgd.updateQuantized against update() on the decoded sum (seed ${seed})`, () => {
  /** count payloads of n elements in one buffer, at uneven offsets, and the oracle's sum. */
  function payloads(n: number, count: number, levels: number, bucketSize: number) {
    const ps = Array.from({ length: count }, (_, j) => qsgdEncodeSync(Float32Array.from({ length: n }, () => rand() - 0.5), { levels, bucketSize, seed: j + 1 }));
    const data = new Uint8Array(ps.reduce((a, p) => a + p.length + 3, 0)), spans = new Float64Array(2 * count);
    let off = 0;
    ps.forEach((p, j) => { off += 3; data.set(p, off); spans[2 * j] = off; spans[2 * j + 1] = p.length; off += p.length; });
    const sum = new Float32Array(n);
    for (const p of ps) qsgdDecodeSync(p).forEach((v, i) => { sum[i] = f(sum[i] + v); });
    return { g: { data, spans }, sum };
  }

  test.each([[7, 512], [5, 100], [1, 64], [127, 512], [255, 128]])('levels %i, bucket %i: the bits of decoding first, every momentum setting', (levels, bucketSize) => {
    for (const spec of [{ type: 'sgd' as const, lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 1e-3 }, { type: 'sgd' as const, lr: 0.2 }]) {
      for (const n of [1, 8191, 30001]) {
        const a = createOptimizer(spec), b = createOptimizer(spec), wa = Float32Array.from({ length: n }, () => rand() - 0.5), wb = wa.slice();
        for (let t = 0; t < 2; t++) {
          const { g, sum } = payloads(n, 1 + (t + n) % 4, levels, bucketSize);
          a.updateQuantized!('x', wa, g, { gradScale: 0.25 });
          b.update('x', wb, sum, { gradScale: 0.25 });
          expect(same(wa, wb)).toBe(true);
        }
      }
    }
  });

  test('a bad norm, or a level above the levels, is refused before anything is written', () => {
    for (const [levels, at] of [[7, 'norm'], [5, 'code']] as const) {
      const n = 20000, { g } = payloads(n, 3, levels, 512);
      const second = g.spans[2];
      if (at === 'norm') new DataView(g.data.buffer).setFloat32(second + 24 + 4 * 5, -1, true); // the second payload's sixth norm
      else g.data[g.spans[4] + g.spans[5] - 1] = 0x77; // the third payload's last two codes: level 7 > 5
      const o = createOptimizer({ type: 'sgd', lr: 0.1, momentum: 0.9 }), w0 = Float32Array.from({ length: n }, rand), w = w0.slice();
      expect(() => o.updateQuantized!('x', w, g)).toThrow(expect.objectContaining({ code: 'ERR_GRADCOMP_CORRUPT_PAYLOAD' }));
      expect(same(w, w0)).toBe(true);
      expect(o.state().tensors.x?.momentum).toBeUndefined();
    }
    const o = createOptimizer({ type: 'sgd', lr: 0.1 }), w = new Float32Array(10);
    expect(() => o.updateQuantized!('x', w, { data: new Uint8Array(100), spans: Float64Array.of(90, 20) })).toThrow(expect.objectContaining({ code: 'ERR_GRADCOMP_OUT_OF_RANGE' }));
    expect(() => o.updateQuantized!('x', w, { data: qsgdEncodeSync(new Float32Array(11), { levels: 7, seed: 1 }), spans: Float64Array.of(0, 0) })).toThrow(expect.objectContaining({ code: 'ERR_GRADCOMP_CORRUPT_PAYLOAD' }));
  });
});

describe('the distributed optimizers apply top-k, DGC and QSGD payloads undecoded', () => {
  let comm: Communicator;
  beforeAll(async () => { comm = await init(); });
  afterAll(async () => { await comm.close(); });

  test.each([
    ['ef-sgd', { type: 'topk', ratio: 0.02 }, { type: 'sgd', lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 1e-3 }],
    ['sync', { type: 'dgc', ratio: 0.02 }, { type: 'sgd', lr: 0.05, momentum: 0.9 }],
    ['sync', { type: 'dgc', ratio: 0.02 }, { type: 'sgd', lr: 0.05 }],
    ['sync', { type: 'qsgd', levels: 7 }, { type: 'sgd', lr: 0.05, momentum: 0.9 }],
    ['sync', { type: 'qsgd', levels: 5, bucketSize: 100 }, { type: 'sgd', lr: 0.05 }],
  ] as const)('%s %j with %j: bit-identical to decoding into a dense average', async (algorithm, compressor, spec) => {
    const shapes: Record<string, number[]> = { a: [300, 257], b: [64, 70], bias: [257] };
    const init0 = Object.fromEntries(Object.entries(shapes).map(([k, sh]) => [k, Float32Array.from({ length: sh.reduce((x, y) => x * y, 1) }, () => rand() - 0.5)]));
    let spied = 0;
    const runs = [true, false].map((fast) => {
      const optimizer = createOptimizer(spec);
      const opt = createDistributedOptimizer({ comm, algorithm, compressor, optimizer } as never);
      const inner = opt as unknown as { o?: { compressedOptimizer?: object }; optimizer: object };
      for (const o of [inner.optimizer, inner.o?.compressedOptimizer]) {
        if (!o) continue;
        const x = o as Record<string, unknown>, key = compressor.type === 'qsgd' ? 'updateQuantized' : 'updateSparse';
        if (!fast) x[key] = undefined; // decodes every payload into the dense average, then update()
        else { const real = (x[key] as (...a: unknown[]) => unknown).bind(o); x[key] = (...a: unknown[]) => { spied++; return real(...a); }; }
      }
      const params = Object.fromEntries(Object.entries(init0).map(([k, v]) => [k, Tensor.from(v.slice(), shapes[k])]));
      return { opt, params };
    });
    for (let t = 0; t < 4; t++) {
      const g = Object.fromEntries(Object.entries(init0).map(([k, v]) => [k, Float32Array.from({ length: v.length }, () => rand() - 0.5)]));
      for (const r of runs) await r.opt.step(r.params, g);
    }
    expect(spied).toBe(4 * 2); // two compressed matrices a step
    for (const k of Object.keys(shapes)) expect(same(runs[0].params[k].data as Float32Array, runs[1].params[k].data as Float32Array)).toBe(true);
  });
});
