/**
 * The CUDA kernels against the CPU kernels as oracle (themselves checked against the slow
 * TypeScript oracles in test/reference): equal selections for top-k and DropIT, byte-equal QSGD
 * payloads and decodes, PowerSGD approximations within float tolerance, device tensors'
 * lifetime. Fresh random inputs each run (GRADCOMP_TEST_SEED reproduces one). Without a usable
 * GPU every case skips and says why.
 */
import {
  backendInfo, cudaMemory, dropitPack, dropitPackSync, dropitUnpack, dropitUnpackSync, efTopK, efTopKSync, orthonormalize,
  powerSgdStep, powerSgdStepSync, qsgdDecode, qsgdDecodeSync, qsgdEncode, qsgdEncodeSync, Tensor, topK, topKSync,
} from '../../lib';
import { freshSeed, mulberry32, sample, Dist } from '../reference/rng';
import { expectBitEqual } from '../reference/compare';
import { approx } from '../reference/powersgd';
import { CUDA_CASES } from '../../bench/cuda-cases';
import { cudaSkipReason } from '../helpers/cuda';

const seed = freshSeed();
const rand = mulberry32(seed);

const reason = cudaSkipReason();
const gpu = reason === '';
const it = gpu ? test : test.skip;
beforeAll(() => {
  if (!gpu) console.log(`test/cuda skipped: no usable CUDA backend here (${reason})`);
  else console.log(`cuda tests: GRADCOMP_TEST_SEED=${seed}; ${backendInfo().reasons[1]}`);
});

const dev = (a: Float32Array) => Tensor.from(a).to('cuda');
const t0 = Date.now();
// Progress straight to stderr (jest holds console output until a file ends).
const progress = (what: string) => { if (process.env.GRADCOMP_TEST_PROGRESS) process.stderr.write(`[${((Date.now() - t0) / 1000).toFixed(1)}s] ${what}\n`); };
const big = Number(process.env.GRADCOMP_CUDA_TEST_MAX_LOG2 ?? 28);

function withSpecials(x: Float32Array): Float32Array {
  if (x.length > 8) {
    x[1] = NaN; x[3] = Infinity; x[5] = -Infinity; x[7] = -0;
  }
  return x;
}

describe('top-k on the GPU selects exactly what the CPU selects', () => {
  const { sizes, distributions, largeDistributions, fractions, largeFractions } = CUDA_CASES.topk.test;
  const dists = distributions as Dist[];
  it.each(sizes)('topK and efTopK, n = %i, every distribution and k from 0 to n', async (n) => {
    const large = n > 100000;
    for (const dist of large ? largeDistributions as Dist[] : dists) {
      progress(`topk n ${n} ${dist}`);
      const x = sample(dist, n, rand);
      if (dist === 'gaussian') withSpecials(x);
      const g = sample(dist, n, rand);
      if (dist === 'gaussian') withSpecials(g); // NaN and infinities in grad: the CPU's NaN bits
      const r0 = sample('gaussian', n, rand).map((v) => v * 0.1);
      const scale = dist === 'heavy' ? 0.37 : 1;
      const ks = new Set([0, 1, ...(large ? largeFractions : fractions).map((f) => Math.floor(n * f)), ...(large ? [] : [n - 1]), n]);
      const xd = await dev(x), gd = await dev(g);
      for (const k of ks) {
        if (k < 0) continue;
        const want = topKSync(x, k);
        const got = await topK(xd, k);
        expectBitEqual(await got.indices.toArray(), want.indices, `topK indices (${dist}, n ${n}, k ${k})`);
        expectBitEqual(await got.values.toArray(), want.values, `topK values (${dist}, n ${n}, k ${k})`);
        got.indices.dispose(); got.values.dispose();
        // EF: same acc, same winners, same residual.
        const r = r0.slice();
        const rd = await dev(r);
        const wantE = efTopKSync(g, r, k, { scale });
        const gotE = await efTopK(gd, rd, k, { scale });
        expectBitEqual(await gotE.indices.toArray(), wantE.indices, `efTopK indices (${dist}, n ${n}, k ${k})`);
        expectBitEqual(await gotE.values.toArray(), wantE.values, `efTopK values (${dist}, n ${n}, k ${k})`);
        expectBitEqual(await rd.toArray(), r, `efTopK residual (${dist}, n ${n}, k ${k})`);
        for (const t of [rd, gotE.indices, gotE.values]) t.dispose();
      }
      xd.dispose(); gd.dispose();
    }
  }, 600_000);

  it('caller-provided outputs are filled in place; wrong devices and sizes are named', async () => {
    const x = sample('gaussian', 5000, rand);
    const xd = await dev(x);
    const idx = Tensor.zeros([50], 'uint32', 'cuda'), val = Tensor.zeros([50], 'float32', 'cuda');
    const r = await topK(xd, 50, { out: { indices: idx, values: val } });
    expect(r.indices).toBe(idx);
    expectBitEqual(await val.toArray(), topKSync(x, 50).values, 'values');
    await expect(topK(xd, 51, { out: { indices: idx } })).rejects.toMatchObject({ param: 'options.out.indices' });
    await expect(efTopK(xd, Tensor.from(x.slice()) as never, 5)).rejects.toMatchObject({ param: 'residual' });
    await expect(topK(xd, 5001)).rejects.toMatchObject({ code: 'ERR_GRADCOMP_OUT_OF_RANGE', param: 'k' });
    await expect(efTopK(xd, xd, 5)).rejects.toMatchObject({ param: 'residual' }); // shared memory
    for (const t of [xd, idx, val]) t.dispose();
  });

  it(`n = 2^${big}: the fused EF top-k at k = 1% agrees with the CPU`, async () => {
    const n = 2 ** big;
    progress(`big n ${n}`);
    // Tiles of two random blocks of coprime lengths (JS loops over 2^28 elements are slow): every
    // value repeats, so the k-th key is tied many times over and the lower-index rule decides.
    const tile = (block: Float32Array) => {
      const out = new Float32Array(n);
      for (let o = 0; o < n; o += block.length) out.set(block.subarray(0, Math.min(block.length, n - o)), o);
      return out;
    };
    const g = tile(sample('gaussian', 1 << 20, rand));
    const r = tile(sample('gaussian', (1 << 20) - 3, rand).map((v) => v * 0.05));
    progress('big: data ready');
    const k = Math.floor(n / 100);
    const gd = await dev(g), rd = await dev(r);
    const want = await efTopK(g, r, k);
    const got = await efTopK(gd, rd, k);
    expectBitEqual(await got.indices.toArray(), want.indices, 'indices');
    expectBitEqual(await got.values.toArray(), want.values, 'values');
    expectBitEqual(await rd.toArray(), r, 'residual');
    for (const t of [gd, rd, got.indices, got.values]) t.dispose();
  }, 600_000);
});

describe('QSGD on the GPU is byte-identical to the CPU', () => {
  const { sizes, levels: levelList, buckets, largeBuckets } = CUDA_CASES.qsgd.test;
  it.each(sizes)('n = %i: payload bytes and decodes agree for levels, buckets and norms', async (n) => {
    progress(`qsgd n ${n}`);
    const base = sample(n % 2 ? 'gaussian' : 'heavy', n, rand);
    const poisoned = base.slice();
    if (n > 600) poisoned[600] = NaN; // a poisoned bucket decodes to NaN on both
    const xs = [await dev(base), await dev(poisoned)];
    for (const levels of levelList) {
      for (const bucketSize of n > 100000 ? largeBuckets : [...buckets, Math.max(1, n)]) {
        for (const norm of ['max', 'l2'] as const) {
          const which = levels === 127 ? 1 : 0;
          const x = which ? poisoned : base;
          const opts = { levels, bucketSize, norm, seed: Math.floor(rand() * 2 ** 52), step: Math.floor(rand() * 1000), tensorId: 3 };
          const want = qsgdEncodeSync(x, opts);
          const pd = await qsgdEncode(xs[which], opts);
          expectBitEqual(await pd.toArray(), want, `payload (n ${n}, s ${levels}, bucket ${bucketSize}, ${norm})`);
          const yd = await qsgdDecode(pd);
          expectBitEqual(await yd.toArray(), qsgdDecodeSync(want), `decode (n ${n}, s ${levels}, bucket ${bucketSize}, ${norm})`);
          for (const t of [pd, yd]) t.dispose();
        }
      }
    }
    xs.forEach((t) => t.dispose());
  }, 600_000);

  it('a corrupt payload on the device is rejected with a coded error', async () => {
    const x = sample('gaussian', 4096, rand);
    const p = qsgdEncodeSync(x, { levels: 5, seed: 1 });
    const bad1 = p.slice(); bad1[0] ^= 1;                      // magic
    const bad2 = p.slice(); bad2[24 + 4 * 8] = 0x77;           // two 4-bit codes of level 7 > s = 5
    const bad3 = p.slice(); new DataView(bad3.buffer).setFloat32(24, -1, true); // a negative norm
    for (const b of [bad1, bad2, bad3]) {
      expect(() => qsgdDecodeSync(b)).toThrow(expect.objectContaining({ code: 'ERR_GRADCOMP_CORRUPT_PAYLOAD' }));
      const d = await Tensor.from(b).to('cuda');
      await expect(qsgdDecode(d)).rejects.toMatchObject({ code: 'ERR_GRADCOMP_CORRUPT_PAYLOAD' });
      d.dispose();
    }
  });
});

describe('PowerSGD on the GPU', () => {
  const { shapes, ranks, largeRanks } = CUDA_CASES.powersgd.test;
  // P Qᵀ on a subset of rows (all of them for small matrices): the JS oracle loops are slow.
  const rowsOf = (rows: number) => Math.min(rows, 40);
  it.each(shapes)('batch %i of %i x %i: P Qᵀ within float tolerance of the CPU, orthonormal P, every rank to 32', async (batch, rows, cols) => {
    progress(`powersgd ${batch} x ${rows} x ${cols}`);
    const rank1 = new Float32Array(batch * rows * cols);
    const row = Float32Array.from({ length: cols }, (_, j) => Math.sin(j));
    for (let b = 0; b < batch; b++) for (let i = 0; i < rows; i++) rank1.set(row.map((v) => v * (i + 1 + b)), (b * rows + i) * cols);
    const inputs: Record<string, Float32Array> = {
      gaussian: sample('gaussian', batch * rows * cols, rand), rank1, zeros: new Float32Array(batch * rows * cols),
    };
    for (const rank of rows * cols > 100000 ? largeRanks : ranks) {
      for (const kind of ['gaussian', 'rank1', 'zeros']) {
        const m = inputs[kind];
        const q = sample('gaussian', batch * cols * rank, rand);
        const want = powerSgdStepSync({ m, rows, cols, q: q.slice(), rank, batch });
        const md = await dev(m), qd = await dev(q);
        const got = await powerSgdStep({ m: md, rows, cols, q: qd, rank, batch });
        const p = await got.p.toArray(), qq = await got.q.toArray();
        expect(p.every(Number.isFinite) && qq.every(Number.isFinite)).toBe(true);
        for (let b = 0; b < batch; b++) {
          const pb = p.subarray(b * rows * rank, (b + 1) * rows * rank), qb = qq.subarray(b * cols * rank, (b + 1) * cols * rank);
          const sr = rowsOf(rows);
          const a = approx(pb.subarray(0, sr * rank), qb, sr, cols, rank);
          const w = approx(want.p.subarray(b * rows * rank, b * rows * rank + sr * rank), want.q.subarray(b * cols * rank, (b + 1) * cols * rank), sr, cols, rank);
          let num = 0, den = 0;
          for (let e = 0; e < a.length; e++) { num += (a[e] - w[e]) ** 2; den += w[e] ** 2; }
          const tol = kind === 'gaussian' ? 2e-4 : 1e-4;
          if (den > 0) expect(Math.sqrt(num / den)).toBeLessThan(tol);
          else expect(num).toBe(0);
          // Columns: unit or exactly zero, mutually orthogonal.
          for (let c1 = 0; c1 < rank; c1++) for (let c2 = c1; c2 < (rows > 1000 ? Math.min(rank, c1 + 2) : rank); c2++) {
            let d = 0, z1 = 0;
            for (let i = 0; i < rows; i++) { d += pb[i * rank + c1] * pb[i * rank + c2]; z1 += pb[i * rank + c1] ** 2; }
            if (c1 === c2) expect(z1 === 0 || Math.abs(z1 - 1) < 1e-4).toBe(true);
            else expect(Math.abs(d)).toBeLessThan(1e-4);
          }
        }
        for (const t of [md, qd, got.p]) t.dispose();
      }
    }
  }, 600_000);

  it('orthonormalize: 100 matrices in one call, the CPU guard for dependent columns', async () => {
    const rows = 512, rank = 8, batch = 100;
    const p = sample('gaussian', batch * rows * rank, rand);
    for (let i = 0; i < rows; i++) p[i * rank + 3] = 2 * p[i * rank + 1]; // matrix 0: column 3 depends on column 1
    const d = await dev(p);
    const got = await (await orthonormalize(d, { rows, rank, batch })).toArray();
    let z = 0;
    for (let i = 0; i < rows; i++) z += got[i * rank + 3] ** 2;
    expect(z).toBe(0);
    d.dispose();
    await expect(powerSgdStep({ m: d, rows: 1, cols: 1, q: d, rank: 33 })).rejects.toMatchObject({ param: 'rank' });
  });
});

describe('DropIT on the GPU is byte-identical to the CPU', () => {
  const { sizes, gammas } = CUDA_CASES.dropit.test;
  it.each(sizes)('n = %i: payloads for gamma 0 .. 1 and the dense rebuild agree', async (n) => {
    for (const dist of (n > 100000 ? ['gaussian', 'ties'] : ['gaussian', 'ties', 'zeros', 'equal']) as Dist[]) {
      progress(`dropit n ${n} ${dist}`);
      const x = withSpecials(sample(dist, n, rand));
      const xd = await dev(x);
      for (const gamma of gammas) {
        const want = dropitPackSync(x, gamma);
        const got = await dropitPack(xd, gamma);
        expect(got.layout).toBe(want.layout);
        expectBitEqual(await got.payload.toArray(), want.payload, `payload (${dist}, n ${n}, gamma ${gamma})`);
        const dense = await dropitUnpack(got);
        expectBitEqual(await dense.toArray(), dropitUnpackSync(want), `unpack (${dist}, n ${n}, gamma ${gamma})`);
        got.payload.dispose(); dense.dispose();
      }
      xd.dispose();
    }
  }, 600_000);

  it('a corrupt payload is rejected before anything is written out of place', async () => {
    const x = sample('gaussian', 10000, rand);
    for (const gamma of [0.5, 0.99]) {
      const p = dropitPackSync(x, gamma).payload.slice();
      const bad = p.slice();
      if (gamma === 0.99) new DataView(bad.buffer).setUint32(24, 999999, true); // an index out of range
      else bad[24] ^= 0x10;                                                    // a bitmap popcount off by one
      const d = await Tensor.from(bad).to('cuda');
      await expect(dropitUnpack(d)).rejects.toMatchObject({ code: 'ERR_GRADCOMP_CORRUPT_PAYLOAD' });
      d.dispose();
    }
  });
});

describe('device tensors', () => {
  it('round-trip every dtype, reshape shares memory, dispose frees it, use after dispose throws', async () => {
    const before = cudaMemory().bytes;
    const arrays = [new Float32Array([1.5, -0, NaN]), new Float64Array([1e300, -2]), new Int32Array([-7, 8]), new Uint32Array([4e9]), new Uint8Array([0, 255, 7])];
    for (const a of arrays) {
      const t = await Tensor.from(a).to('cuda');
      expect(t.device).toBe('cuda');
      expect(t.toString()).toMatch(/cuda/);
      expectBitEqual(await t.toArray(), a, t.dtype);
      const v = t.reshape([1, a.length]);
      expect(v.shape).toEqual([1, a.length]);
      expect(() => t.data).toThrow(expect.objectContaining({ param: 'data' }));
      t.dispose();
      expect(v.disposed).toBe(true);
      await expect(v.toArray()).rejects.toMatchObject({ code: 'ERR_GRADCOMP_DISPOSED' });
    }
    const z = Tensor.zeros([3, 5], 'float32', 'cuda');
    expect(Array.from(await z.toArray())).toEqual(new Array(15).fill(0));
    const back = await z.to('cpu');
    expect(back.device).toBe('cpu');
    z.dispose();
    await (await Tensor.from(new Float32Array(4)).to('cuda')).toArray(); // a leaked one: the finalizer's job
    const { cudaSynchronize } = await import('../../lib');
    await cudaSynchronize();
    expect(cudaMemory().bytes - before).toBeLessThanOrEqual(16);
  });

  it('a CPU array beside a CUDA tensor is named, not copied', async () => {
    const xd = await dev(new Float32Array(100));
    await expect(efTopK(new Float32Array(100), xd, 1)).rejects.toMatchObject({ param: 'grad' });
    expect(() => efTopKSync(xd, xd, 1)).toThrow(expect.objectContaining({ param: 'residual' }));
    await expect(dropitUnpack(dropitPackSync(new Float32Array(100), 0.5), xd as never)).rejects.toMatchObject({ param: 'out' });
    xd.dispose();
  });
});
