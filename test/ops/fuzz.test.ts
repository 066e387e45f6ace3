/**
 * Thousands of random bad calls at every export: each must throw (Sync) or reject (async) with
 * a coded error, and the process must survive. Good calls with random shapes are mixed in to
 * check that valid calls keep working between bad ones.
 */
import * as gc from '../../lib';
import { freshSeed, mulberry32 } from '../reference/rng';

const seed = freshSeed();
const rand = mulberry32(seed);
const pick = <T,>(xs: T[]): T => xs[Math.floor(rand() * xs.length)];
beforeAll(() => console.log(`fuzz: GRADCOMP_TEST_SEED=${seed}`));

function detached(): Float32Array {
  const a = new Float32Array(8);
  structuredClone(a.buffer, { transfer: [a.buffer] });
  return a;
}
// Pools of values that are always invalid for the parameter kind they are drawn for.
const notArray = () => pick<() => unknown>([() => undefined, () => null, () => NaN, () => 'x', () => ({}), () => [1, 2],
  () => 10n, () => Symbol('s'), () => () => 1, () => detached(), () => new Int16Array(4)])();
const notF32 = () => (rand() < 0.7 ? notArray() : pick<() => unknown>([() => new Float64Array(64), () => new Int32Array(64), () => new Uint8Array(64)])());
const notU8 = () => (rand() < 0.7 ? notArray() : pick<() => unknown>([() => new Float32Array(8), () => new Uint32Array(8)])());
const badInt = (lo: number, hi: number) => pick<unknown>([lo - 1, hi + 1, lo + 0.5, NaN, Infinity, -Infinity, '3', null, 10n, {}, 2 ** 60]);
const badNum = () => pick<unknown>([NaN, Infinity, -Infinity, '1', null, 10n, {}, []]);

const CODES = new Set(['ERR_GRADCOMP_INVALID_ARG_TYPE', 'ERR_GRADCOMP_OUT_OF_RANGE', 'ERR_GRADCOMP_CORRUPT_PAYLOAD',
  'ERR_GRADCOMP_DETACHED', 'ERR_GRADCOMP_DISPOSED', 'ERR_GRADCOMP_INVALID_ARG']);

type Call = () => unknown;
function badCalls(): [string, Call][] {
  const x = new Float32Array(64).map(() => rand() - 0.5);
  const payload = gc.qsgdEncodeSync(x, { levels: 7, seed: 1 });
  const packed = gc.dropitPackSync(x, 0.5).payload;
  // Always invalid: a wrong size (truncated or padded) or a changed magic, version, bit width or
  // length byte (the norm kind, a bucket size change within one bucket, or levels with the same
  // bit width can give another valid payload, so those bytes are not flipped here).
  const corrupt = (p: Uint8Array, headerBytes: number[]) => {
    const mode = rand();
    if (mode < 0.4) return p.slice(0, Math.floor(rand() * p.length));
    if (mode < 0.6) { const c = new Uint8Array(p.length + 1 + Math.floor(rand() * 9)); c.set(p); return c; }
    const c = p.slice();
    c[pick(headerBytes)] ^= 1 << Math.floor(rand() * 8);
    return c;
  };
  const q = () => new Float32Array(16);
  const disposed = () => { const t = gc.Tensor.from(x.slice()); t.dispose(); return t; };
  return [
    ['efTopK', () => gc.efTopKSync(notF32() as Float32Array, x.slice(), 3)],
    ['efTopK', () => gc.efTopKSync(x, notF32() as Float32Array, 3)],
    ['efTopK', () => gc.efTopKSync(x, x.slice(), badInt(0, 64) as number)],
    ['efTopK', () => gc.efTopKSync(x, new Float32Array(63 - Math.floor(rand() * 10)), 3)],
    ['efTopK', () => gc.efTopKSync(x, x, 3)],
    ['efTopK', () => gc.efTopKSync(disposed(), x.slice(), 3)],
    ['efTopK', () => gc.efTopKSync(x, x.slice(), 3, { scale: badNum() } as never)],
    ['efTopK', () => gc.efTopKSync(x, x.slice(), 3, { out: { indices: new Uint32Array(2 + Math.floor(rand() * 2) * 2) } })],
    ['efTopK', () => gc.efTopK(x, x.slice(), badInt(0, 64) as number)],
    ['topK', () => gc.topKSync(notF32() as Float32Array, 1)],
    ['topK', () => gc.topKSync(x, badInt(0, 64) as number)],
    ['topK', () => gc.topK(x, -1)],
    ['topK', () => gc.topKSync(x, 2, pick<unknown>([null, 3, 'x', [], new Float32Array(2)]) as never)],
    ['qsgdEncode', () => gc.qsgdEncodeSync(notF32() as Float32Array, { levels: 3, seed: 1 })],
    ['qsgdEncode', () => gc.qsgdEncodeSync(x, { levels: badInt(1, 32767), seed: 1 } as never)],
    ['qsgdEncode', () => gc.qsgdEncodeSync(x, { levels: 3, seed: pick<unknown>([-1, 1.5, 'x', undefined, null, NaN, 2n ** 64n, -1n]) } as never)],
    ['qsgdEncode', () => gc.qsgdEncodeSync(x, { levels: 3, seed: 1, bucketSize: badInt(1, 2 ** 32 - 1) } as never)],
    ['qsgdEncode', () => gc.qsgdEncodeSync(x, { levels: 3, seed: 1, norm: pick<unknown>(['L2', 'inf', 1, null]) } as never)],
    ['qsgdEncode', () => gc.qsgdEncodeSync(x, { levels: 3, seed: 1, step: badInt(0, 2 ** 32 - 1) } as never)],
    ['qsgdEncode', () => gc.qsgdEncodeSync(x, pick<unknown>([undefined, null, 3, 'x', {}]) as never)],
    ['qsgdEncode', () => gc.qsgdEncode(x, { levels: 40000, seed: 1 })],
    ['qsgdDecode', () => gc.qsgdDecodeSync(corrupt(payload, [0, 1, 4, 6, 7, 9, 16, 17, 20]))],
    ['qsgdDecode', () => gc.qsgdDecodeSync(notU8() as Uint8Array)],
    ['qsgdDecode', () => gc.qsgdDecodeSync(payload, (notF32() ?? new Float32Array(63)) as Float32Array)],  // out is optional: never undefined here
    ['qsgdDecode', () => gc.qsgdDecode(corrupt(payload, [0, 4, 6, 16]))],
    ['powerSgdStep', () => gc.powerSgdStepSync({ m: x, rows: 8, cols: 8, q: q(), rank: badInt(1, 1024) } as never)],
    ['powerSgdStep', () => gc.powerSgdStepSync({ m: x, rows: badInt(0, 2 ** 32 - 1), cols: 8, q: q(), rank: 2 } as never)],
    ['powerSgdStep', () => gc.powerSgdStepSync({ m: notF32(), rows: 8, cols: 8, q: q(), rank: 2 } as never)],
    ['powerSgdStep', () => gc.powerSgdStepSync({ m: x, rows: 8, cols: 8, q: new Float32Array(15), rank: 2 })],
    ['powerSgdStep', () => gc.powerSgdStepSync(pick<unknown>([undefined, null, 3, 'x', []]) as never)],
    ['powerSgdStep', () => gc.powerSgdStep({ m: x, rows: 8, cols: 8, q: x.subarray(0, 16), rank: 2 })],
    ['dropitPack', () => gc.dropitPackSync(x, pick<unknown>([-0.1, 1.1, NaN, 'x', undefined, Infinity, null]) as number)],
    ['dropitPack', () => gc.dropitPackSync(notF32() as Float32Array, 0.5)],
    ['dropitPack', () => gc.dropitPack(x, pick([-0.1, 1.1, NaN]))],
    ['dropitUnpack', () => gc.dropitUnpackSync(corrupt(packed, [0, 1, 4, 5, 6, 9, 16, 17]))],
    ['dropitUnpack', () => gc.dropitUnpackSync(notU8() as Uint8Array)],
    ['dropitUnpack', () => gc.dropitUnpack(packed, pick<unknown>([new Float32Array(63), new Float64Array(64), 'x']) as Float32Array)],
    ['setConcurrency', () => gc.setConcurrency(pick([0, -1, 1.5, 300, NaN]))],
    ['Tensor.from', () => gc.Tensor.from(notArray() as Float32Array)],
  ];
}

test('every bad call throws or rejects with a coded error and the process survives', async () => {
  const stats = new Map<string, number>();
  let calls = 0;
  for (let round = 0; round < 100; round++) {
    for (const [name, call] of badCalls()) {
      calls++;
      let err: unknown;
      try {
        const r = call();
        if (r && typeof (r as Promise<unknown>).then === 'function') await r;
      } catch (e) {
        err = e;
      }
      if (err === undefined) throw new Error(`${name}: a bad call did not throw (round ${round}, seed ${seed})`);
      const code = (err as { code?: string }).code;
      if (!CODES.has(String(code))) throw new Error(`${name}: uncoded error ${String(err)}`);
      stats.set(name, (stats.get(name) ?? 0) + 1);
    }
  }
  expect(calls).toBeGreaterThan(3000);
  for (const name of ['efTopK', 'topK', 'qsgdEncode', 'qsgdDecode', 'powerSgdStep', 'dropitPack', 'dropitUnpack']) {
    expect(stats.get(name) ?? 0).toBeGreaterThan(200);
  }
  // And the addon still computes correctly afterwards.
  const r = gc.topKSync(new Float32Array([3, -1, 2]), 2);
  expect(Array.from(r.indices)).toEqual([0, 2]);
});
