/**
 * worker_threads: the addon loads in several environments at once (per-environment state only),
 * ops run there, and terminating a worker while its async ops are in flight neither crashes nor
 * corrupts the main thread's results.
 */
import { Worker } from 'node:worker_threads';
import * as path from 'node:path';
import { topKSync } from '../../lib';
import { refTopK } from '../reference/topk';

const entry = path.resolve(__dirname, '..', '..', 'dist', 'lib', 'index.js');

const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const g = require(workerData.entry);
const x = new Float32Array(200000).map((_, i) => Math.sin(i * 0.37) * (i % 101));
(async () => {
  const r = g.topKSync(x, 100);
  const a = await g.efTopK(x, new Float32Array(x.length), 100);
  parentPort.postMessage({ sum: Array.from(r.indices).reduce((s, v) => s + v, 0), same: a.indices.every((v, i) => v === r.indices[i]) });
  if (workerData.spin) for (;;) await g.qsgdEncode(x, { levels: 127, seed: 1 });
})();
`;

function runWorker(spin: boolean): Promise<{ w: Worker; msg: { sum: number; same: boolean } }> {
  return new Promise((resolve, reject) => {
    const w = new Worker(WORKER, { eval: true, workerData: { entry, spin } });
    w.once('message', (msg) => resolve({ w, msg }));
    w.once('error', reject);
  });
}

test('ops run in several worker_threads and match the main thread', async () => {
  const x = new Float32Array(200000).map((_, i) => Math.sin(i * 0.37) * (i % 101));
  const want = Array.from(refTopK(x, 100).indices).reduce((s, v) => s + v, 0);
  const results = await Promise.all([runWorker(false), runWorker(false), runWorker(false)]);
  for (const { w, msg } of results) {
    expect(msg).toEqual({ sum: want, same: true });
    await w.terminate();
  }
  expect(Array.from(topKSync(x, 100).indices).reduce((s, v) => s + v, 0)).toBe(want);
});

test('terminating a worker with async ops in flight is safe', async () => {
  for (let i = 0; i < 5; i++) {
    const { w } = await runWorker(true);
    await new Promise((r) => setTimeout(r, 20 + i * 10));
    await w.terminate();
  }
  const x = new Float32Array([5, -1, 7, 3]);
  expect(Array.from(topKSync(x, 2).indices)).toEqual([0, 2]);
});
