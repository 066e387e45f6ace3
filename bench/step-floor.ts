/**
 * One rank, no communication (`npm run bench:step-floor`): a whole ef-sgd top-k 1% step of the
 * 25.2M-parameter layout of bench:e2e (createDistributedOptimizer, SGD momentum 0.9, the same
 * worker as bench:e2e with a world of one) against the memory-traffic floor of the kernels the step
 * runs, with this machine's memory bandwidth measured in the same run.
 *
 * The floor, per parameter: the fused error-feedback top-k reads the gradient and the residual and
 * writes the residual back (12 bytes; the selection reads the corrected values again: 4 more);
 * SGD with momentum reads the parameter and the momentum buffer and writes both (16): the
 * workers' k entries each are summed into it piece by piece, never as a dense vector
 * (Optimizer.updateSparse): 32 bytes x 25,174,016 parameters. The bandwidth is the best of a copy and an axpy over arrays of
 * the model's size (GB/s counted as bytes read + written). Writes bench/results/step-floor-<machine>.json.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { vecAxpy } from '../lib/ops/kernels';

const root = path.resolve(__dirname, '..', '..');
const N = 25174016, FLOOR_BYTES_PER_PARAM = 32;
const med = (xs: number[]) => xs.slice().sort((a, b) => a - b)[xs.length >> 1];
const time = (fn: () => void, reps = 7) => { fn(); const ts: number[] = []; for (let r = 0; r < reps; r++) { const t0 = performance.now(); fn(); ts.push(performance.now() - t0); } return med(ts); };

function bandwidth(): { copyGBs: number; axpyGBs: number; bestGBs: number } {
  const a = new Float32Array(N).fill(1), b = new Float32Array(N).fill(2);
  const copyMs = time(() => b.set(a)), axpyMs = time(() => vecAxpy(b, a, 0.5));
  const copyGBs = (8 * N) / copyMs / 1e6, axpyGBs = (12 * N) / axpyMs / 1e6;
  return { copyGBs, axpyGBs, bestGBs: Math.max(copyGBs, axpyGBs) };
}

function step(): { wallMs: number; compressMs: number; optimizerMs: number; otherMs: number } {
  const cfg = { algo: 'ef-sgd', compressor: { type: 'topk', ratio: 0.01 }, warmup: 2, steps: 9 };
  const r = spawnSync(process.execPath, [path.join(root, 'bench', 'e2e_worker.js'), JSON.stringify(cfg)],
    { cwd: root, encoding: 'utf8', env: { ...process.env, GRADCOMP_ENTRY: path.join(root, 'dist', 'lib', 'index.js') }, maxBuffer: 1 << 24 });
  const line = r.stdout.split('\n').find((l) => l.startsWith('GRADCOMP_E2E '));
  if (!line) throw new Error(`the step worker failed: ${r.stderr.slice(-800)}`);
  return JSON.parse(line.slice('GRADCOMP_E2E '.length));
}

const bw = bandwidth();
const s = step();
const floorMs = (FLOOR_BYTES_PER_PARAM * N) / bw.bestGBs / 1e6;
const doc = {
  machine: { cpu: os.cpus()[0]?.model, cores: os.cpus().length, node: process.version, date: new Date().toISOString() },
  parameters: N, floorBytesPerParam: FLOOR_BYTES_PER_PARAM, bandwidth: bw, floorMs, step: s, ofFloor: s.wallMs / floorMs,
};
const file = path.join(root, 'bench', 'results', `step-floor-${os.hostname().replace(/[^\w-]/g, '') || 'machine'}.json`);
fs.writeFileSync(file, JSON.stringify(doc, null, 2) + '\n');
console.log(`memory bandwidth: copy ${bw.copyGBs.toFixed(1)} GB/s, axpy ${bw.axpyGBs.toFixed(1)} GB/s`);
console.log(`floor of an ef-sgd top-k 1% step (${FLOOR_BYTES_PER_PARAM} B x ${N} parameters at ${bw.bestGBs.toFixed(1)} GB/s): ${floorMs.toFixed(0)} ms`);
console.log(`one-rank step: ${s.wallMs.toFixed(0)} ms (compress ${s.compressMs.toFixed(0)}, optimizer ${s.optimizerMs.toFixed(0)}, other ${s.otherMs.toFixed(0)}): ${(s.wallMs / floorMs).toFixed(2)}x the floor`);
console.log(`results: ${path.relative(root, file)}`);
