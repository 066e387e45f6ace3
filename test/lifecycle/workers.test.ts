/**
 * worker_threads: the addon loads in several environments at once (per-environment state only),
 * ops run there, and terminating a worker while its async ops are in flight neither crashes nor
 * corrupts the main thread's results.
 */
import { Worker } from 'node:worker_threads';
import { spawnSync } from 'node:child_process';
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

// A process whose main thread never loads the addon (what `gradcomp run` and `gradcomp train` do):
// when the last worker that loaded it exits, Node would dlclose it while the addon's kernel-pool
// threads still sleep in its code, and the next thing they run is unmapped memory (a SIGSEGV at the
// end of a job, now and then, on a busy machine). The addon must stay mapped, and loading it again
// in a later worker must work.
test('the addon stays loaded after the last worker that loaded it exits (no dlclose under its own threads)', () => {
  const script = `
const { Worker } = require('node:worker_threads');
const fs = require('node:fs');
const body = 'const g = require(' + JSON.stringify(process.argv[1]) + ');' +
  'const x = new Float32Array(1 << 20).map((_, i) => Math.sin(i * 0.37));' +
  'g.topKSync(x, 1000); g.efTopK(x, new Float32Array(x.length), 1000).then(() => {});';
const once = () => new Promise((resolve, reject) => { const w = new Worker(body, { eval: true }); w.on('error', reject); w.on('exit', resolve); });
const mapped = () => /gradcomp\\.node/.test(fs.readFileSync('/proc/self/maps', 'utf8'));
(async () => {
  const before = mapped();
  await once();
  await new Promise((r) => setTimeout(r, 100));
  const after = mapped();
  await once();
  console.log(JSON.stringify({ before, after }));
})();`;
  const r = spawnSync(process.execPath, ['-e', script, entry], { encoding: 'utf8', timeout: 60000 });
  expect({ status: r.status, signal: r.signal, err: r.stderr }).toEqual({ status: 0, signal: null, err: '' });
  expect(JSON.parse(r.stdout.trim())).toEqual({ before: false, after: true });
});
