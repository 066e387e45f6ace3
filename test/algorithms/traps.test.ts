/**
 * The traps a newcomer would fall into, each closed: PowerSGD on shapeless arrays (warns once and
 * says how to fix it; the `shapes` option or Tensors compress), ranks that start from different
 * parameters (refused on the first step, naming the tensor), and DGC with optimizer momentum
 * (moved into DGC, never applied twice).
 */
import * as path from 'node:path';
import { execFile } from 'node:child_process';
import { createCompressor, createDistributedOptimizer, createOptimizer, init, runSessions, Communicator, Tensor } from '../../lib';

let comm: Communicator;
beforeAll(async () => { comm = await init(); });
afterAll(async () => { await comm.close(); });

const grad = (n: number, t: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.7 + t) + Math.cos(i * 0.013));

describe('PowerSGD needs shapes', () => {
  test('plain Float32Arrays: sent dense, with one coded warning per tensor naming it', async () => {
    const spy = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    try {
      const opt = createDistributedOptimizer({ comm, algorithm: 'powersgd', compressor: { type: 'powersgd', rank: 2 }, lr: 0.1 });
      const p = { 'fc.weight': new Float32Array(4096) };
      for (let t = 0; t < 3; t++) await opt.step(p, { 'fc.weight': grad(4096, t) });
      expect(opt.stats().bytesSent).toBe(3 * 4 * 4096);
      const mine = spy.mock.calls.filter((c) => (c[1] as { code?: string } | undefined)?.code === 'GRADCOMP_POWERSGD_NO_SHAPE');
      expect(mine).toHaveLength(1);
      expect(String(mine[0][0])).toMatch(/'fc\.weight'.*shapes/);
    } finally { spy.mockRestore(); }
  });

  test.each(['shapes option', 'Tensor'])('with the %s: compressed (4 r (rows + cols) bytes per step)', async (how) => {
    const opt = createDistributedOptimizer({ comm, algorithm: 'powersgd', compressor: { type: 'powersgd', rank: 2 }, lr: 0.1,
      ...(how === 'shapes option' ? { shapes: { 'fc.weight': [64, 64] } } : {}) });
    const w = new Float32Array(4096), p = { 'fc.weight': how === 'Tensor' ? Tensor.from(w, [64, 64]) : w };
    for (let t = 0; t < 3; t++) await opt.step(p, { 'fc.weight': grad(4096, t) });
    expect(opt.stats().bytesSent).toBe(3 * 4 * 2 * (64 + 64));
  });
});

test('ranks that start from different parameters are refused on the first step, on every rank, naming the tensor', async () => {
  const run = (mode: string) => new Promise<string>((resolve) => execFile(process.execPath,
    [path.resolve(__dirname, '..', '..', 'dist', 'lib', 'cli', 'main.js'), 'run', '-n', '3', path.join(__dirname, 'fixtures', 'mismatch.js'), mode],
    { timeout: 60000 }, (_e, out) => resolve(out)));
  const out = await run('on');
  for (const r of [0, 1, 2]) expect(out).toMatch(new RegExp(`rank ${r}: ERR_GRADCOMP_PARAMS_MISMATCH params\\.b`));
  const off = await run('off');
  for (const r of [0, 1, 2]) expect(off).toContain(`rank ${r}: stepped`);
  // Another number of tensors on one rank: said as such, not as a mismatched collective.
  const count = await run('count');
  for (const r of [0, 1, 2]) expect(count).toContain(`rank ${r}: ERR_GRADCOMP_PARAMS_MISMATCH params rank ${r}: rank 0 trains 2 tensors but rank 1 3 at the first step`);
}, 60000);

describe('DGC and optimizer momentum', () => {
  test('the optimizer\'s momentum moves into DGC: the same trajectory as DGC(momentum) + plain SGD by hand', async () => {
    const n = 2000, steps = 6, lr = 0.05;
    const opt = createDistributedOptimizer({ comm, algorithm: 'sync', compressor: { type: 'dgc', ratio: 0.05 }, optimizer: { type: 'sgd', lr, momentum: 0.9 }, minCompressSize: 1 });
    const w = new Float32Array(n).fill(0.1);
    for (let t = 0; t < steps; t++) await opt.step({ w }, { w: grad(n, t) });
    // By hand: DGC with the momentum, then plain SGD on what it returns.
    const dgc = createCompressor({ type: 'dgc', ratio: 0.05, momentum: 0.9 }), sgd = createOptimizer({ type: 'sgd', lr });
    const v = new Float32Array(n).fill(0.1);
    for (let t = 0; t < steps; t++) {
      const [avg] = runSessions([await dgc.begin('w', grad(n, t), { step: t, rank: 0, workers: 1 })]);
      sgd.step({ w: v }, { w: avg });
    }
    expect(Buffer.from(w.buffer).equals(Buffer.from(v.buffer))).toBe(true);
  });

  test('momentum given to both is refused, naming the option', () => {
    expect(() => createDistributedOptimizer({ comm, algorithm: 'sync', compressor: { type: 'dgc', ratio: 0.05, momentum: 0.9 }, optimizer: { type: 'sgd', lr: 0.1, momentum: 0.9 } }))
      .toThrow(expect.objectContaining({ param: 'options.compressor.momentum' }));
  });
});

test('a state saved under other tensor names is refused on the next step, naming them (never silently dropped)', async () => {
  const mk = () => createDistributedOptimizer({ comm, algorithm: 'ef-sgd', compressor: { type: 'topk', ratio: 0.1 }, optimizer: { type: 'sgd', lr: 0.1, momentum: 0.9 }, minCompressSize: 1 });
  const a = mk();
  await a.step({ 'fc.w': new Float32Array(100) }, { 'fc.w': grad(100, 0) });
  const b = mk();
  b.load(a.state());
  await expect(b.step({ 'fc.weight': new Float32Array(100) }, { 'fc.weight': grad(100, 1) }))
    .rejects.toMatchObject({ code: 'ERR_GRADCOMP_INVALID_ARG', param: 'state', message: expect.stringMatching(/fc\.w\b.*fc\.weight/) });
  const c = mk();
  c.load(a.state());
  await c.step({ 'fc.w': new Float32Array(100) }, { 'fc.w': grad(100, 1) }); // the same names: fine
});
