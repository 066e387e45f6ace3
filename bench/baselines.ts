/**
 * Baselines run in the same process and run as our kernels: plain JS (a sort-based EF top-k and a
 * fused threshold pass), the std::nth_element C++ composite, TensorFlow.js tf.topk on its pure-JS
 * CPU backend, and torch CPU composites through python3 when torch imports there.
 */
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';

/** Plain-JS EF top-k by sorting |acc| (what a JS user writes first). */
export function jsSortEfTopK(g: Float32Array, r: Float32Array, k: number): Uint32Array {
  const n = g.length;
  const acc = new Float32Array(n);
  for (let i = 0; i < n; i++) acc[i] = g[i] + r[i];
  const mags = new Float32Array(n);
  for (let i = 0; i < n; i++) mags[i] = Math.abs(acc[i]);
  mags.sort();
  const t = mags[n - k];
  const idx = new Uint32Array(k);
  let o = 0;
  for (let i = 0; i < n && o < k; i++) if (Math.abs(acc[i]) >= t) { idx[o++] = i; acc[i] = 0; }
  r.set(acc);
  return idx;
}

/** Plain-JS single pass with a known threshold (the best case for JS: no selection at all). */
export function jsThresholdPass(g: Float32Array, r: Float32Array, t: number, idx: Uint32Array): number {
  let o = 0;
  for (let i = 0; i < g.length; i++) {
    const a = g[i] + r[i];
    if (Math.abs(a) >= t && o < idx.length) { idx[o++] = i; r[i] = 0; } else r[i] = a;
  }
  return o;
}

interface TfTensor { dispose(): void }
type Tf = { topk: (x: TfTensor, k: number, sorted: boolean) => { values: TfTensor; indices: TfTensor };
  tensor1d: (x: Float32Array) => TfTensor; abs: (x: TfTensor) => TfTensor; setBackend(b: string): Promise<boolean>; ready(): Promise<void> };

/** tf.topk(|x|, k) on the pure-JS CPU backend; undefined when tfjs is not installed. */
export async function loadTfjs(): Promise<Tf | undefined> {
  const log = console.log, warn = console.warn;
  try {
    // tfjs prints an advert for its native backend on stdout: keep --json output clean.
    console.log = () => undefined;
    console.warn = () => undefined;
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const tf = require('@tensorflow/tfjs-core') as Tf;
    require('@tensorflow/tfjs-backend-cpu');
    await tf.setBackend('cpu');
    await tf.ready();
    return tf;
  } catch {
    return undefined;
  } finally {
    console.log = log;
    console.warn = warn;
  }
}

export function tfTopK(tf: Tf, x: Float32Array, k: number): void {
  const t = tf.tensor1d(x);
  const a = tf.abs(t);
  const r = tf.topk(a, k, false);
  r.values.dispose(); r.indices.dispose(); a.dispose(); t.dispose();
}

export interface TorchJob { id: string; kind: string; n: number; reps: number; k?: number; levels?: number; rows?: number; cols?: number; rank?: number }

/** Runs torch jobs in one python3 process; returns seconds by job id, or why torch is absent. */
export function runTorch(jobs: TorchJob[], threads: number): { results: Map<string, number>; note: string } {
  const results = new Map<string, number>();
  for (const py of ['/usr/bin/python3', 'python3']) {
    try {
      execFileSync(py, ['-c', 'import torch'], { stdio: 'ignore' });
    } catch {
      continue;
    }
    const out = execFileSync(py, [path.join(__dirname, '..', '..', 'bench', 'torch_baselines.py'), String(threads)], {
      input: JSON.stringify(jobs), encoding: 'utf8', maxBuffer: 1 << 24, stdio: ['pipe', 'pipe', 'inherit'],
    });
    for (const r of JSON.parse(out) as { id: string; seconds: number }[]) results.set(r.id, r.seconds);
    const version = execFileSync(py, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' }).trim();
    return { results, note: `torch ${version} (${py}, ${threads} threads)` };
  }
  return { results, note: 'torch not importable by python3: torch baselines skipped' };
}
