/** The binary checkpoint format: exact round trips of every state, and coded refusals of damaged files. */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  createCompressor, createOptimizer, decodeCheckpoint, encodeCheckpoint, readCheckpointFile, writeCheckpointFile, CompressorSpec, runSessions,
} from '../../lib';
import { freshSeed, mulberry32, sample } from '../reference/rng';

const seed = freshSeed();
console.log(`checkpoint tests: GRADCOMP_TEST_SEED=${seed}`);
const rand = mulberry32(seed);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gradcomp-ckpt-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const join = (parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.byteLength, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.byteLength; }
  return out;
};
const roundTrip = <T>(s: T): T => decodeCheckpoint(join(encodeCheckpoint(s))) as T;
const bits = (a: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('hex');

test('a tree of every dtype, nested objects and arrays, odd numbers and strings comes back exactly', () => {
  const f = sample('gaussian', 1001, rand);
  f[3] = NaN; f[4] = -0; f[5] = Infinity;
  const tree = { a: f, b: { c: Float64Array.of(1.5, -2), d: [Int32Array.of(-7), Uint32Array.of(7), Uint8Array.of(1, 2, 3), Uint16Array.of(65535)] },
    n: 3, s: 'x', neg: -Infinity, nan: NaN, big: 12345678901234567890n, nil: null, list: [1, 'two', { three: 3 }], empty: new Float32Array(0) };
  const back = roundTrip(tree);
  expect(bits(back.a)).toBe(bits(f));
  expect(Array.from(back.b.c)).toEqual([1.5, -2]);
  expect(back.b.d.map((x) => Array.from(x))).toEqual([[-7], [7], [1, 2, 3], [65535]]);
  expect(back.b.d.map((x) => Object.prototype.toString.call(x))).toEqual(['[object Int32Array]', '[object Uint32Array]', '[object Uint8Array]', '[object Uint16Array]']);
  expect([back.n, back.s, back.neg, back.big, back.nil, back.list]).toEqual([3, 'x', -Infinity, 12345678901234567890n, null, [1, 'two', { three: 3 }]]);
  expect(Number.isNaN(back.nan)).toBe(true);
  expect(back.empty.length).toBe(0);
});

test.each([
  { type: 'topk', ratio: 0.05 }, { type: 'efsign' }, { type: 'qsgd', levels: 7, errorFeedback: true }, { type: 'powersgd', rank: 2 },
  { type: 'dgc', ratio: 0.05 }, { type: 'scalecom', ratio: 0.1 }, { type: 'gradiveq', sliceSize: 8, components: 2, dense: 1, compressed: 3 },
  { type: 'signum', beta: 0.9 }, { type: 'terngrad', errorFeedback: true }, { type: 'adacomp' }, { type: 'randk', ratio: 0.1 },
] as CompressorSpec[])('compressor %j: a state saved to a file and loaded into a fresh one continues bit-identically', async (spec) => {
  const make = () => [0, 1].map(() => createCompressor(spec));
  const a = make(), b = make();
  const g = (t: number) => [0, 1].map((r) => sample('gaussian', 24 * 20, mulberry32(t * 7 + r + 1)));
  const run = async (cs: ReturnType<typeof make>, t: number) => runSessions(await Promise.all(cs.map((c, rank) => c.begin('w', g(t)[rank], { step: t, rank, workers: 2, shape: [24, 20] }))));
  for (let t = 0; t < 4; t++) await run(a, t);
  a.forEach((c, r) => writeCheckpointFile(path.join(dir, `c${r}.gckp`), c.state()));
  b.forEach((c, r) => c.load(readCheckpointFile(path.join(dir, `c${r}.gckp`)) as never));
  for (let t = 4; t < 7; t++) {
    const [x, y] = [await run(a, t), await run(b, t)];
    expect(x.map(bits)).toEqual(y.map(bits));
  }
});

test.each([{ type: 'sgd', lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 1e-4 }, { type: 'novograd', lr: 0.01, weightDecay: 0.01 }] as const)(
  'optimizer %j round-trips through a file bit-identically', (spec) => {
    const a = createOptimizer(spec), b = createOptimizer(spec);
    const w = sample('gaussian', 300, rand), g = () => ({ w: sample('gaussian', 300, rand) });
    for (let t = 0; t < 3; t++) a.step({ w }, g());
    writeCheckpointFile(path.join(dir, 'o.gckp'), a.state());
    b.load(readCheckpointFile(path.join(dir, 'o.gckp')) as never);
    const w2 = w.slice();
    for (let t = 0; t < 3; t++) { const x = g(); a.step({ w }, x); b.step({ w: w2 }, x); }
    expect(bits(w2)).toBe(bits(w));
  });

describe('damaged files are refused with a coded error naming the file and the tensor', () => {
  const file = path.join(dir, 'victim.gckp');
  const state = { optimizer: { tensors: { 'fc.weight': { momentum: sample('gaussian', 5000, rand) } } }, buffers: { residual: sample('gaussian', 3000, rand) }, step: 9 };
  beforeAll(() => writeCheckpointFile(file, state));
  const good = () => new Uint8Array(fs.readFileSync(file));

  test('truncated anywhere', () => {
    const full = good();
    for (const cut of [0, 3, 15, 16, 40, Math.floor(full.length / 2), full.length - 1]) {
      const f = path.join(dir, `cut${cut}.gckp`);
      fs.writeFileSync(f, full.subarray(0, cut));
      expect(() => readCheckpointFile(f)).toThrow(expect.objectContaining({ code: 'ERR_GRADCOMP_CORRUPT_CHECKPOINT', file: f }));
    }
  });

  test('a flipped bit in the header or in a tensor', () => {
    const full = good(), headerLen = new DataView(full.buffer).getUint32(8, true);
    for (const at of [0, 5, 9, 13, 20, 16 + Math.floor(headerLen / 2)]) {
      const bad = full.slice(); bad[at] ^= 0x10;
      fs.writeFileSync(path.join(dir, 'flip.gckp'), bad);
      expect(() => readCheckpointFile(path.join(dir, 'flip.gckp'))).toThrow(expect.objectContaining({ code: 'ERR_GRADCOMP_CORRUPT_CHECKPOINT' }));
    }
    const bad = full.slice(); bad[bad.length - 100] ^= 1; // inside the last tensor: buffers.residual
    fs.writeFileSync(path.join(dir, 'flip.gckp'), bad);
    expect(() => readCheckpointFile(path.join(dir, 'flip.gckp'))).toThrow(expect.objectContaining({ tensor: 'buffers.residual', message: expect.stringContaining('flip.gckp') }));
  });

  test('a missing file, and a file that is not a checkpoint', () => {
    expect(() => readCheckpointFile(path.join(dir, 'nope.gckp'))).toThrow(expect.objectContaining({ code: 'ERR_GRADCOMP_CORRUPT_CHECKPOINT', message: expect.stringContaining('nope.gckp') }));
    fs.writeFileSync(path.join(dir, 'text.gckp'), 'hello world, this is not a checkpoint');
    expect(() => readCheckpointFile(path.join(dir, 'text.gckp'))).toThrow(/not a gradcomp checkpoint/);
    const good = Buffer.concat(encodeCheckpoint({ a: new Float32Array(5) }));
    expect(() => decodeCheckpoint(new Uint8Array([...good, 0]))).toThrow(expect.objectContaining({ code: 'ERR_GRADCOMP_CORRUPT_CHECKPOINT' }));
    expect(() => decodeCheckpoint(Buffer.concat(encodeCheckpoint({ n: 3 })).subarray(0, -1))).toThrow(expect.objectContaining({ code: 'ERR_GRADCOMP_CORRUPT_CHECKPOINT' }));
    for (const x of ['GCKP', [1, 2, 3], null, 17]) expect(() => decodeCheckpoint(x as never)).toThrow(expect.objectContaining({ code: 'ERR_GRADCOMP_INVALID_ARG_TYPE', param: 'bytes' }));
  });

  test('a folder, a device or a FIFO is refused before it is read: no read without bound, no wait on a pipe', () => {
    const fifo = path.join(dir, 'pipe.gckp');
    execFileSync('mkfifo', [fifo]);
    for (const [where, why] of [['/dev/zero', 'not a regular file'], [fifo, 'not a regular file'], [dir, 'EISDIR']]) {
      expect(() => readCheckpointFile(where)).toThrow(expect.objectContaining({ code: 'ERR_GRADCOMP_CORRUPT_CHECKPOINT', message: expect.stringContaining(why) }));
    }
    fs.rmSync(fifo);
  });

  test('a path that cannot take the file is a coded error naming it (a folder, a missing folder, a file as a folder)', () => {
    const aFile = path.join(dir, 'plain-file');
    fs.writeFileSync(aFile, 'x');
    for (const where of [dir, path.join(dir, 'missing', 'c.gckp'), path.join(aFile, 'c.gckp')]) {
      expect(() => writeCheckpointFile(where, { a: new Float32Array(3) })).toThrow(expect.objectContaining({ code: 'ERR_GRADCOMP_INVALID_ARG', param: 'file', message: expect.stringContaining(where) }));
    }
    fs.rmSync(aFile);
  });

  test('a write that fails half-way leaves the previous file intact and no temporary file behind', () => {
    const before = good();
    let calls = 0;
     
    const cjsFs = require('node:fs') as typeof fs; // the module object itself (the namespace import is frozen)
    const real = cjsFs.writeSync;
    const spy = jest.spyOn(cjsFs, 'writeSync').mockImplementation(((...args: Parameters<typeof fs.writeSync>) => {
      if (++calls === 2) throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
      return (real as (...a: unknown[]) => number)(...args);
    }) as typeof fs.writeSync);
    try {
      expect(() => writeCheckpointFile(file, { other: sample('gaussian', 9000, rand) })).toThrow(expect.objectContaining({ message: expect.stringContaining('ENOSPC') }));
    } finally {
      spy.mockRestore();
    }
    expect(calls).toBe(2);
    expect(Buffer.compare(Buffer.from(good()), Buffer.from(before))).toBe(0);
    expect(fs.readdirSync(dir).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });
});
