/**
 * The defects a hostile review found, one test each (they failed before their fixes): memory an
 * async kernel reads cannot be detached under it, decoders are bounded before they allocate,
 * collective results of the wrong length are refused, every error carries a code, and a finite
 * QSGD input always gives a decodable payload.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import * as gc from '../../lib';
import { freshSeed, mulberry32, sample } from '../reference/rng';

const rand = mulberry32(freshSeed());
const root = path.resolve(__dirname, '..', '..');
const coded = (code: string, param?: string) => expect.objectContaining(param ? { code, param } : { code });

describe('1. an async kernel\'s inputs cannot be freed under it', () => {
  test('transferring the buffers of topK, efTopK, qsgdEncode and qsgdDecode while they run, then a GC: no crash, the right answers', () => {
    // In a child process: before the fix this was a SIGSEGV (heap-use-after-free under ASan).
    const script = `
      const g = require(${JSON.stringify(path.join(root, 'dist', 'lib', 'index.js'))});
      const n = 1 << 22, x = new Float32Array(n).map((_, i) => Math.sin(i * 12.9898) * 43758.5453 % 1);
      const steal = (a) => { try { structuredClone(a.buffer, { transfer: [a.buffer] }); } catch (e) { return e.name; } return a.byteLength === 0 ? 'detached' : 'copied'; };
      (async () => {
        const want = g.topKSync(x.slice(), 1000), wq = g.qsgdEncodeSync(x.slice(), { levels: 7, seed: 3 });
        const a = x.slice(), p1 = g.topK(a, 1000); const s1 = steal(a);
        const b = x.slice(), p2 = g.qsgdEncode(b, { levels: 7, seed: 3 }); const s2 = steal(b);
        const c = wq.slice(), p3 = g.qsgdDecode(c); const s3 = steal(c);
        const e = x.slice(), r = new Float32Array(n), p4 = g.efTopK(e, r, 1000); const s4 = steal(r);
        global.gc(); global.gc();
        const [t, q, d] = await Promise.all([p1, p2, p3, p4]);
        const same = (u, v) => u.length === v.length && u.every((z, i) => Object.is(z, v[i]));
        if (!same(t.indices, want.indices) || !same(t.values, want.values)) throw new Error('topK changed');
        if (!same(q, wq)) throw new Error('qsgdEncode changed');
        if (!same(d, g.qsgdDecodeSync(wq))) throw new Error('qsgdDecode changed');
        for (const s of [s1, s2, s3, s4]) if (s === 'detached') throw new Error('a buffer in use was detached');
        console.log('ok', s1, s2, s3, s4);
      })().catch((err) => { console.error(err); process.exit(2); });`;
    const r = spawnSync(process.execPath, ['--expose-gc', '-e', script], { encoding: 'utf8', timeout: 60000 });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^ok /);
  });

  test('a buffer already detached, or a resizable one, is refused before the kernel starts', async () => {
    const x = sample('gaussian', 1000, rand);
    structuredClone(x.buffer, { transfer: [x.buffer as ArrayBuffer] });
    await expect(gc.topK(x, 10)).rejects.toThrow(coded('ERR_GRADCOMP_DETACHED'));
    const rb = new (ArrayBuffer as unknown as new (n: number, o: object) => ArrayBuffer)(4000, { maxByteLength: 8000 });
    await expect(gc.topK(new Float32Array(rb), 10)).rejects.toThrow(coded('ERR_GRADCOMP_INVALID_ARG'));
  });
});

describe('2. DropIT\'s AVX-512 pack and unpack write only their own bytes', () => {
  // The report: wrong results and a bad free under ASan at -O1 from n = 65536 up. Not reproduced
  // (npm run test:asan passes the DropIT suite on AVX-512 at this commit and at the reported one);
  // this checks the stores directly: canaries around caller-provided payloads and outputs, sizes
  // on both sides of every vector and chunk boundary, both layouts, every ISA.
  const binding = (require('../../lib/native/loader') as { loadBinding(): { setMaxIsa(i: string): void } }).loadBinding();
  test.each([1, 15, 16, 17, 4096, 65535, 65536, 65537, 131073, 262161])('n = %i', (n) => {
    for (const isa of ['avx512', 'avx2', 'scalar']) {
      binding.setMaxIsa(isa);
      try {
        for (const gamma of [0.05, 0.5, 0.97]) {
          const x = sample('gaussian', n, rand);
          const bytes = gc.dropitPackedBytes(n, gamma);
          const room = new Uint8Array(bytes + 128).fill(0xa5), out = room.subarray(64, 64 + bytes);
          const want = gc.dropitPackSync(x, gamma).payload;
          const got = gc.dropitPackSync(x, gamma, { out }).payload;
          expect(Buffer.from(got).equals(Buffer.from(want))).toBe(true);
          expect(room.subarray(0, 64).every((b) => b === 0xa5) && room.subarray(64 + bytes).every((b) => b === 0xa5)).toBe(true);
          const dense = new Float32Array(n + 32).fill(7), view = dense.subarray(16, 16 + n);
          gc.dropitUnpackSync(want, view);
          expect(dense.subarray(0, 16).every((v) => v === 7) && dense.subarray(16 + n).every((v) => v === 7)).toBe(true);
          expect(view.filter((v) => v !== 0).length).toBe(gc.dropitKeepCount(n, gamma)); // gaussian: no kept value is 0
        }
      } finally { binding.setMaxIsa('avx512'); }
    }
  });
});

describe('3. decoders are bounded before they allocate', () => {
  const bomb = () => {
    const { payload } = gc.dropitPackSync(new Float32Array(64), 1); // k = 0: the 24-byte header alone
    const b = payload.slice(0, 24), dv = new DataView(b.buffer);
    dv.setBigUint64(8, 0xffffffffn, true); // n = 2^32 - 1 (the indices layout needs no body for k = 0)
    return b;
  };
  test('a 24-byte DropIT payload claiming 2^32 - 1 elements is refused at once, sync and async', async () => {
    const t0 = Date.now();
    expect(() => gc.dropitUnpackSync(bomb())).toThrow(coded('ERR_GRADCOMP_CORRUPT_PAYLOAD'));
    await expect(gc.dropitUnpack(bomb())).rejects.toThrow(coded('ERR_GRADCOMP_CORRUPT_PAYLOAD'));
    expect(Date.now() - t0).toBeLessThan(5000); // not a timing benchmark: allocating 16 GiB took 24-34 s
  });
  test('maxElements raises or lowers the bound; with out given, out\'s length is the bound', () => {
    const x = sample('gaussian', 5000, rand);
    const { payload } = gc.dropitPackSync(x, 0.5);
    expect(() => gc.dropitUnpackSync(payload, undefined, { maxElements: 4999 })).toThrow(coded('ERR_GRADCOMP_CORRUPT_PAYLOAD'));
    expect(gc.dropitUnpackSync(payload, undefined, { maxElements: 5000 }).length).toBe(5000);
    const q = gc.qsgdEncodeSync(x, { levels: 3, seed: 1 });
    expect(() => gc.qsgdDecodeSync(q, undefined, { maxElements: 100 })).toThrow(coded('ERR_GRADCOMP_CORRUPT_PAYLOAD'));
    expect(() => gc.qsgdDecodeSync(q, new Float32Array(4999))).toThrow(coded('ERR_GRADCOMP_OUT_OF_RANGE'));
    // A misspelt bound would leave the default in force without a word: refused, naming it.
    for (const f of [() => gc.qsgdDecodeSync(q, undefined, { maxElement: 100 } as never), () => gc.dropitUnpackSync(payload, undefined, { maxelements: 10 } as never)]) {
      expect(f).toThrow(expect.objectContaining({ code: 'ERR_GRADCOMP_INVALID_ARG_TYPE', param: expect.stringMatching(/^options\.max/) }));
    }
    // The same for the other ops' option objects.
    expect(() => gc.qsgdEncodeSync(x, { levels: 3, seed: 1, bucketsize: 64 } as never)).toThrow(expect.objectContaining({ param: 'options.bucketsize' }));
    expect(() => gc.efTopKSync(x, new Float32Array(5000), 3, { scal: 2 } as never)).toThrow(expect.objectContaining({ param: 'options.scal' }));
    expect(() => gc.dropitPackSync(x, 0.5, { output: new Uint8Array(1) } as never)).toThrow(expect.objectContaining({ param: 'options.output' }));
  });
  test('a compressor refuses a payload for more elements than the tensor it decodes into', () => {
    const c = gc.createCompressor({ type: 'topk', ratio: 0.1 }) as gc.Compressor & { decompress(p: Uint8Array[], n: number): Float32Array };
    const other = gc.createCompressor({ type: 'topk', ratio: 0.1 }) as typeof c & { compress(n: string, g: Float32Array, ctx: gc.StepContext): Promise<Uint8Array> };
    return other.compress('w', sample('gaussian', 4096, rand), { step: 0 }).then((p) => {
      expect(() => c.decompress([p], 100)).toThrow(coded('ERR_GRADCOMP_CORRUPT_PAYLOAD'));
    });
  });
});

describe('4. collective results of the wrong length are refused', () => {
  const SPECS: gc.CompressorSpec[] = [{ type: 'none' }, { type: 'randk', ratio: 0.1 }, { type: 'scalecom', ratio: 0.1 }, { type: 'powersgd', rank: 2 },
    { type: 'gradiveq', sliceSize: 16, components: 4, dense: 1, compressed: 3 }, { type: 'qsgd', levels: 3 }, { type: 'topk', ratio: 0.1 }];
  test.each(SPECS.flatMap((s) => [[s.type, s, -1], [s.type, s, 1]] as const))('%s, off by %i', async (_t, spec, delta) => {
    const c = gc.createCompressor(spec);
    let refused = false;
    for (let step = 0; step < 3 && !refused; step++) {
      const s = await c.begin('w', sample('gaussian', 256, rand), { step, rank: 0, workers: 2, shape: [16, 16] });
      try {
        while (s.round) {
          const d = s.round.data;
          if (s.round.collective === 'allreduce') s.receive(new Float32Array(d.length + delta));
          else s.receive((delta < 0 ? [d] : [d, d, d]) as Uint8Array[]); // gathers: too few or too many ranks
        }
        const r = s.result();
        expect(r.length).toBe(256);
      } catch (e) {
        expect(e).toEqual(expect.objectContaining({ code: expect.stringMatching(/^ERR_GRADCOMP_(OUT_OF_RANGE|CORRUPT_PAYLOAD|INVALID_ARG_TYPE)$/) }));
        refused = true;
      }
    }
    expect(refused).toBe(true);
  });
});

describe('5. every error has a code and names its parameter', () => {
  test('begin with a null context', async () => {
    await expect(gc.createCompressor({ type: 'topk', ratio: 0.1 }).begin('w', new Float32Array(10), null as never)).rejects.toThrow(coded('ERR_GRADCOMP_INVALID_ARG_TYPE', 'ctx'));
  });
  test('Tensor.zeros of 2^62 elements', () => {
    expect(() => gc.Tensor.zeros([2 ** 31, 2 ** 31])).toThrow(coded('ERR_GRADCOMP_OUT_OF_RANGE', 'shape'));
  });
  test('powerSgdStepSync with rows or cols 0', () => {
    expect(() => gc.powerSgdStepSync({ m: new Float32Array(0), rows: 0, cols: 8, q: new Float32Array(16), rank: 2 })).toThrow(coded('ERR_GRADCOMP_OUT_OF_RANGE', 'rows'));
    expect(() => gc.powerSgdStepSync({ m: new Float32Array(0), rows: 8, cols: 0, q: new Float32Array(0), rank: 2 })).toThrow(coded('ERR_GRADCOMP_OUT_OF_RANGE', 'cols'));
  });
  test('an optimizer step without gradients', () => {
    const opt = gc.createOptimizer({ type: 'sgd', lr: 0.1 });
    expect(() => (opt.step as (p: object) => void)({ w: new Float32Array(4) })).toThrow(coded('ERR_GRADCOMP_INVALID_ARG_TYPE', 'grads'));
  });
  test('an optimizer step with a gradient for no parameter (a typo, a missing tensor) is refused, naming it', () => {
    const opt = gc.createOptimizer({ type: 'sgd', lr: 0.1 });
    expect(() => opt.step({ w: new Float32Array(4) }, { w: new Float32Array(4), wieght: new Float32Array(4) })).toThrow(coded('ERR_GRADCOMP_INVALID_ARG_TYPE', 'grads.wieght'));
    expect(() => opt.step({}, { w: new Float32Array(4) })).toThrow(coded('ERR_GRADCOMP_INVALID_ARG_TYPE', 'grads.w'));
  });

  test('a PowerSGD session handed a short Q result', async () => {
    const c = gc.createCompressor({ type: 'powersgd', rank: 2 });
    const s = await c.begin('w', sample('gaussian', 256, rand), { step: 0, rank: 0, workers: 2, shape: [16, 16] });
    s.receive(new Float32Array((s.round!.data as Float32Array).length));
    expect(() => s.receive(new Float32Array(3))).toThrow(coded('ERR_GRADCOMP_OUT_OF_RANGE'));
  });
});

describe('6. QSGD: a finite input always gives a decodable payload', () => {
  test.each(['l2', 'max'] as const)('values near the float32 maximum, norm %s', (norm) => {
    for (const v of [3.4e38, -3.4e38, 3.4028234663852886e38]) {
      const x = new Float32Array(100).fill(v);
      x[7] = -x[7];
      const p = gc.qsgdEncodeSync(x, { levels: 7, seed: 1, norm });
      const d = gc.qsgdDecodeSync(p);
      expect(d.every(Number.isFinite)).toBe(true);
      // Unbiased as long as the stored norm >= max |x|: the signs survive, magnitudes stay in range.
      d.forEach((y, i) => { if (y !== 0) expect(Math.sign(y)).toBe(Math.sign(x[i])); });
    }
  });
  test('the mean of many l2 draws of a huge bucket is still the input (unbiased with the saturated norm)', () => {
    const x = Float32Array.from({ length: 64 }, (_, i) => (i % 3 === 0 ? -1 : 1) * 6e37 * (1 + (i % 5)));
    const acc = new Float64Array(64), T = 400;
    for (let t = 0; t < T; t++) gc.qsgdDecodeSync(gc.qsgdEncodeSync(x, { levels: 7, seed: 9, step: t, norm: 'l2' })).forEach((y, i) => { acc[i] += y / T; });
    // Per element variance <= (norm/s)^2 / 4 with norm = FLT_MAX, s = 7: 6 sigma over T draws.
    const tol = (6 * 3.4028234663852886e38) / 7 / 2 / Math.sqrt(T);
    acc.forEach((m, i) => expect(Math.abs(m - x[i])).toBeLessThan(tol));
  });
});
