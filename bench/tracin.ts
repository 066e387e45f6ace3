/**
 * The TracIn benchmark (`npm run bench:tracin`): the score kernel (two gemm products and their
 * elementwise product, TracInCPFast on the last dense layer) against this machine's measured fp32
 * gemm peak (the best of large square products in the same run), the same products in torch
 * (`G_train @ G_test.T`, Debian's python3-torch) when python3 imports it, and self-influence of
 * 60000 examples over 5 checkpoints. Writes bench/results/tracin-<machine>.json.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { scoreFactors, selfInfluence } from '../lib/analysis/tracin';
import { gemm } from '../lib/ops/kernels';

const root = path.resolve(__dirname, '..', '..');
const med = (xs: number[]) => xs.slice().sort((a, b) => a - b)[xs.length >> 1];
const rnd = (n: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898) * 0.5);
const time = (fn: () => void, reps: number) => { fn(); const ts: number[] = []; for (let r = 0; r < reps; r++) { const t0 = performance.now(); fn(); ts.push(performance.now() - t0); } return med(ts); };

const peakShapes = [[1024, 1024, 1024], [2048, 2048, 512]];
let peak = 0;
const peaks = peakShapes.map(([m, n, k]) => {
  const a = rnd(m * k), b = rnd(k * n), c = new Float32Array(m * n);
  const ms = time(() => gemm(false, false, m, n, k, a, b, c), 3), gf = (2 * m * n * k) / ms / 1e6;
  peak = Math.max(peak, gf);
  return { m, n, k, ms, gflops: gf };
});

// Score shapes: nTrain x nTest with the MLP's last layer (128 inputs + bias, 10 classes).
const scores = [[8192, 256, 129, 10], [16384, 128, 129, 10]].map(([n, m, p, c]) => {
  const tr = { a: rnd(n * p), delta: rnd(n * c), n, inputs: p, classes: c }, te = { a: rnd(m * p), delta: rnd(m * c), n: m, inputs: p, classes: c };
  const s = new Float32Array(n * m);
  const ms = time(() => scoreFactors(tr, te, 0.1, s), 5), flops = 2 * n * m * (p + c);
  return { nTrain: n, nTest: m, inputs: p, classes: c, ms, gflops: flops / ms / 1e6, ofPeak: flops / ms / 1e6 / peak };
});

// Self-influence: 60000 examples, 5 checkpoints.
const n = 60000, f = { a: rnd(n * 129), delta: rnd(n * 10), n, inputs: 129, classes: 10 };
const selfMs = time(() => { const out = new Float64Array(n); for (let c = 0; c < 5; c++) selfInfluence(f, 0.05, out); }, 3);

// torch, same products (float32), same run.
let torch: unknown = 'python3 with torch not found';
const py = `
import time, torch, json, sys
torch.set_num_threads(${os.cpus().length})
out = []
for n, m, p, c in [(8192, 256, 129, 10), (16384, 128, 129, 10)]:
    A, A2, D, D2 = torch.randn(n, p), torch.randn(m, p), torch.randn(n, c), torch.randn(m, c)
    f = lambda: (A @ A2.T) * (D @ D2.T)
    f(); ts = []
    for _ in range(5):
        t0 = time.perf_counter(); f(); ts.append((time.perf_counter() - t0) * 1000)
    ts.sort(); ms = ts[len(ts) // 2]
    out.append({'nTrain': n, 'nTest': m, 'ms': ms, 'gflops': 2 * n * m * (p + c) / ms / 1e6})
print(json.dumps({'version': torch.__version__, 'rows': out}))`;
const r = spawnSync('/usr/bin/python3', ['-c', py], { encoding: 'utf8' });
if (r.status === 0) torch = JSON.parse(r.stdout.trim().split('\n').pop()!);

const doc = { machine: { cpu: os.cpus()[0]?.model, cores: os.cpus().length, node: process.version, date: new Date().toISOString() }, peakGflops: peak, peaks, scores, selfInfluence60k5ckMs: selfMs, torch };
const file = path.join(root, 'bench', 'results', `tracin-${os.hostname().replace(/[^\w-]/g, '') || 'machine'}.json`);
fs.writeFileSync(file, JSON.stringify(doc, null, 2) + '\n');
console.log(`gemm peak (best of ${peakShapes.map((s) => s.join('x')).join(', ')}): ${peak.toFixed(1)} GFLOPS`);
for (const s of scores) console.log(`score ${s.nTrain} x ${s.nTest} (last layer ${s.inputs} + ${s.classes}): ${s.ms.toFixed(1)} ms, ${s.gflops.toFixed(1)} GFLOPS, ${(100 * s.ofPeak).toFixed(0)}% of peak`);
if (typeof torch === 'object') for (const t of (torch as { rows: { nTrain: number; nTest: number; ms: number; gflops: number }[] }).rows) console.log(`torch ${t.nTrain} x ${t.nTest}: ${t.ms.toFixed(1)} ms, ${t.gflops.toFixed(1)} GFLOPS`);
else console.log(`torch: ${String(torch)}`);
console.log(`self-influence, 60000 examples x 5 checkpoints: ${selfMs.toFixed(0)} ms`);
console.log(`results: ${path.relative(root, file)}`);
