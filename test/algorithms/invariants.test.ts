/**
 * Laws each algorithm must keep, checked on 4 local ranks with the probe fixture (softmax
 * regression, fixed seeds): checkpoint and resume give the identical trajectory; error feedback
 * conserves mass through the whole algorithm; VRL-SGD's corrections sum to zero; the degenerate
 * periods reproduce synchronous SGD; the models of the synchronous family stay bit-identical.
 */
import { runProbe, ProbeRow } from './helpers';

const LR = 0.1, N = 4;
const bitEqual = (a: number[], b: number[]) => a.length === b.length && a.every((v, i) => Object.is(v, b[i]));
const maxAbs = (a: number[]) => a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
const sumRows = (rows: number[][]) => rows[0].map((_, i) => rows.reduce((s, r) => s + r[i], 0));

const RESUME: [string, Record<string, unknown>][] = [
  ['sync', {}], ['ef-sgd', { compressor: { type: 'topk', ratio: 0.1 } }], ['ef-sgd', { compressor: { type: 'qsgd', levels: 3 } }],
  ['signsgd', { compressor: { type: 'signum', beta: 0.9 } }], ['scalecom', { compressor: { type: 'scalecom', ratio: 0.2, beta: 0.5 } }],
  ['powersgd', { compressor: { type: 'powersgd', rank: 1 } }], ['double-squeeze', {}], ['double-squeeze', { server: 'sharded', compressor: { type: 'topk', ratio: 0.2 } }],
  ['liec', { period: 6 }], ['liec', { period: 6, server: 'sharded' }], ['local', { period: 5 }],
  ['stl', { period: 2, stageSteps: 7 }], ['vrl', { period: 5 }], ['cocod', { period: 5 }],
  ['sync', { compressor: { type: 'dgc', ratio: 0.1 } }], ['ef-sgd', { compressor: { type: 'terngrad' } }],
];

describe('checkpoint and resume give the identical trajectory', () => {
  test.each(RESUME)('%s %j', async (algo, options) => {
    // Binary checkpoint files (the JSON round trip too for one of them); momentum where it is state.
    const momentum = algo === 'local' || (options.compressor as { type?: string } | undefined)?.type === 'dgc' ? 0.9 : 0;
    const rows = await runProbe({ algo, options, steps: 41, resumeAt: 17, nonIid: true, momentum, json: algo === 'sync' && !options.compressor });
    for (const r of rows) {
      expect(r.state.step).toBe(41);
      expect(bitEqual(r.resumed!, r.params)).toBe(true);
      expect(r.params.some((v, i) => v !== r.init[i])).toBe(true);
    }
  });
});

test('the synchronous family keeps every rank\'s model bit-identical', async () => {
  for (const [algo, options] of RESUME.slice(0, 8)) {
    const rows = await runProbe({ algo, options, steps: 12 });
    for (const r of rows) expect(bitEqual(r.params, rows[0].params)).toBe(true);
  }
});

/** n (x0 - xT) / lr: the sum over steps of the applied update, times n. */
const applied = (r: ProbeRow) => r.params.map((v, i) => (N * (r.init[i] - v)) / LR);

describe('error feedback conserves mass through the whole algorithm', () => {
  test('ef-sgd (top-k): n * applied + sum of worker residuals = sum of all gradients', async () => {
    const rows = await runProbe({ algo: 'ef-sgd', options: { compressor: { type: 'topk', ratio: 0.05 } }, steps: 30 });
    const lhs = applied(rows[0]).map((v, i) => v + rows.reduce((s, r) => s + r.residuals.flat()[i], 0));
    const rhs = sumRows(rows.map((r) => r.gradSum));
    expect(maxAbs(rows[0].residuals.flat())).toBeGreaterThan(0.01); // the memory is really used
    expect(maxAbs(lhs.map((v, i) => v - rhs[i]))).toBeLessThan(1e-3 * maxAbs(rhs));
  });

  test.each([['root'], ['sharded']])('double-squeeze (%s server): + n * server error + worker errors', async (server) => {
    const rows = await runProbe({ algo: 'double-squeeze', options: { server }, steps: 30 });
    const es = server === 'root' ? rows[0].state.buffers.serverError : rows.flatMap((r) => r.state.buffers.serverError);
    const ew = sumRows(rows.map((r) => r.state.buffers.workerError));
    expect(maxAbs(es)).toBeGreaterThan(0);
    const lhs = applied(rows[0]).map((v, i) => v + N * es[i] + ew[i]);
    const rhs = sumRows(rows.map((r) => r.gradSum));
    expect(maxAbs(lhs.map((v, i) => v - rhs[i]))).toBeLessThan(1e-3 * maxAbs(rhs));
  });
});

test('VRL-SGD: the corrections sum to zero and are not trivial', async () => {
  const rows = await runProbe({ algo: 'vrl', options: { period: 5 }, steps: 40, nonIid: true });
  const deltas = rows.map((r) => r.state.buffers.delta);
  expect(maxAbs(deltas.flat())).toBeGreaterThan(0.05);
  expect(maxAbs(sumRows(deltas))).toBeLessThan(1e-5 * maxAbs(deltas.flat()) * N + 1e-6);
});

test('period 1 reproduces synchronous SGD (Local SGD, VRL-SGD, LIEC-SGD)', async () => {
  const sync = (await runProbe({ algo: 'sync', steps: 25, nonIid: true }))[0].params;
  for (const [algo, options] of [['local', { period: 1 }], ['vrl', { period: 1 }], ['liec', { period: 1 }]] as const) {
    const rows = await runProbe({ algo, options, steps: 25, nonIid: true });
    expect(maxAbs(rows[0].params.map((v, i) => v - sync[i]))).toBeLessThan(1e-5);
  }
});

test('DoubleSqueeze with an elementwise codec gives the same model with the server on rank 0 or sharded', async () => {
  const opts = { compressor: { type: 'fp16' } };
  const a = await runProbe({ algo: 'double-squeeze', options: { ...opts, server: 'root' }, steps: 20 });
  const b = await runProbe({ algo: 'double-squeeze', options: { ...opts, server: 'sharded' }, steps: 20 });
  expect(bitEqual(a[0].params, b[0].params)).toBe(true);
  // A sharded server receives only its share: every rank takes in less than the root server does.
  for (const r of b) expect(r.stats.bytesReceived).toBeLessThan(a[0].stats.bytesReceived);
});

test('LIEC-SGD and the Local SGD family: the worker models differ between syncs, averaged() agrees on every rank', async () => {
  for (const [algo, options] of [['liec', { period: 7 }], ['cocod', { period: 4 }], ['local', { period: 4 }]] as const) {
    const rows = await runProbe({ algo, options, steps: 10, nonIid: true, averaged: true });
    expect(bitEqual(rows[0].params, rows[1].params)).toBe(false);
    for (const r of rows) expect(bitEqual(r.averaged!, rows[0].averaged!)).toBe(true);
  }
});
