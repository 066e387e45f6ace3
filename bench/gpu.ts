/**
 * The benchmark suite's GPU section: every CUDA kernel from n = 2^20 to 2^28 against its
 * memory floor and against PyTorch on the same GPU, measured in the same run.
 *   npm run bench:gpu                      table on stdout, JSON to bench/results/<gpu>.json
 *   npm run bench:gpu -- --quick           2^24 and 2^28 only
 *   npm run bench:gpu -- --no-torch        gradcomp only
 * Times are medians of CUDA-event timings (3 warm-ups; a 256 MiB buffer is written between runs,
 * so L2 never holds the previous run's data). "floor" is the op's minimal bytes
 * (specs/performance.md §0.3) over the device-to-device copy bandwidth measured here (read +
 * write bytes), divided by the time: 100% means at the copy-bandwidth floor.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { backendInfo } from '../lib';
import { cudaBackend } from '../lib/backend';

const args = new Set(process.argv.slice(2));
const quick = args.has('--quick');
const withTorch = !args.has('--no-torch');
const reps = 15;

interface Job { id: string; op: string; n: number; a: number; b: number; c: number; reps: number; label: string; param: string; bytes: number; torch: boolean }

function median(xs: number[]): number {
  const s = [...xs].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function qsgdBits(levels: number): number {
  let b = 0;
  while (2 ** b < levels + 1) b++;
  return b + 1;
}

function jobs(): Job[] {
  const out: Job[] = [];
  const exps = quick ? [24, 28] : [20, 22, 24, 26, 28];
  const add = (op: string, n: number, a: number, b: number, c: number, label: string, param: string, bytes: number, torch = true) =>
    out.push({ id: `${op}|${n}|${a}|${b}|${c}`, op, n, a, b, c, reps, label, param, bytes, torch });
  for (const e of exps) {
    const n = 2 ** e;
    add('copy', n, 0, 0, 0, 'device copy (reference)', '', 8 * n);
    for (const f of [0.001, 0.01, 0.1]) {
      const k = Math.round(f * n);
      add('eftopk', n, f, 0, 0, 'fused EF top-k', `k = ${f * 100}%`, 12 * n + 8 * k);
    }
    add('topk', n, 0.01, 0, 0, 'top-k of |x| (idx + val)', 'k = 1%', 4 * n + 8 * Math.round(0.01 * n));
    for (const [levels, bucket] of [[127, 512], [7, 512]]) {
      const bits = qsgdBits(levels);
      const payload = 24 + 4 * Math.ceil(n / bucket) + Math.ceil((n * bits) / 8);
      add('qsgd-encode', n, levels, bucket, 0, 'QSGD encode', `${bits}-bit, bucket ${bucket}`, 4 * n + payload);
      add('qsgd-decode', n, levels, bucket, 0, 'QSGD decode', `${bits}-bit, bucket ${bucket}`, 4 * n + payload);
    }
    const k = n - Math.floor(0.9 * n + 1e-9);
    const packed = 24 + Math.ceil(n / 32) * 4 + 4 * k;
    add('dropit-pack', n, 0.9, 0, 0, 'DropIT pack', 'gamma 0.9', 4 * n + packed);
    add('dropit-unpack', n, 0.9, 0, 0, 'DropIT unpack', 'gamma 0.9', 4 * n + packed);
  }
  const nb = 2 ** 28;
  for (const [c, name] of [[1, 'all equal'], [2, 'narrow [1, 1.00003]'], [3, 'ties at the k-th value']] as const) {
    out.push({ id: `eftopk|${nb}|0.01|0|${c}`, op: 'eftopk', n: nb, a: 0.01, b: 0, c, reps, label: 'fused EF top-k, adversarial', param: `k = 1%, ${name}`, bytes: 12 * nb + 8 * nb / 100, torch: false });
  }
  // PowerSGD: 2^28 elements as one 16384 x 16384 matrix and as 64 matrices of 2048 x 2048, rank 4.
  const psgd = (batch: number, rows: number, cols: number, rank: number) => 8 * batch * rows * cols + 4 * batch * (rows + cols) * rank * 4;
  add('powersgd', 1, 16384, 16384, 4, 'PowerSGD compress (P, orth, Q)', '16384 x 16384, rank 4', psgd(1, 16384, 16384, 4));
  add('powersgd', 64, 2048, 2048, 4, 'PowerSGD compress (P, orth, Q)', '64 x 2048 x 2048, rank 4', psgd(64, 2048, 2048, 4));
  out.push({ id: 'powersgd-batched|64|2048|2048|4', op: 'powersgd-batched', n: 64, a: 2048, b: 2048, c: 4, reps, label: '', param: '', bytes: 0, torch: true });
  add('orth', 100, 1024, 0, 8, 'orthogonalize 100 matrices', '1024 x 8 each, one launch', 0);
  add('orth', 100, 4096, 0, 4, 'orthogonalize 100 matrices', '4096 x 4 each, one launch', 0);
  out.push({ id: 'orth-batched|100|1024|0|8', op: 'orth-batched', n: 100, a: 1024, b: 0, c: 8, reps, label: '', param: '', bytes: 0, torch: true });
  out.push({ id: 'orth-batched|100|4096|0|4', op: 'orth-batched', n: 100, a: 4096, b: 0, c: 4, reps, label: '', param: '', bytes: 0, torch: true });
  return out;
}

function torchTimes(list: Job[]): Map<string, number | string> {
  const res = new Map<string, number | string>();
  if (!withTorch) return res;
  const script = path.join(__dirname, '..', '..', 'bench', 'torch_gpu_baselines.py');
  const r = spawnSync('python3', [script], { input: JSON.stringify(list.filter((j) => j.torch)), encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.status !== 0) process.stderr.write(`torch baselines failed: ${r.stderr.slice(-2000)}\n`);
  for (const line of (r.stdout ?? '').split('\n')) {
    if (!line.trim()) continue;
    const o = JSON.parse(line) as { id: string; ms?: number; error?: string };
    res.set(o.id, o.ms ?? `error: ${o.error}`);
  }
  return res;
}

async function main() {
  const info = backendInfo();
  if (info.backend !== 'cuda') {
    console.log(`GPU benchmark skipped: no usable CUDA backend (${info.reasons[1]})`);
    return;
  }
  const b = cudaBackend('the GPU benchmark');
  const list = jobs();
  const ours = new Map<string, number>();
  for (const j of list) {
    if (!j.label) continue;
    const t = await b.bench(j.op, j.n, j.a, j.b, j.c, j.reps);
    ours.set(j.id, median(t));
    process.stderr.write(`${j.op} n=${j.n} ${j.param}: ${median(t).toFixed(4)} ms\n`);
  }
  const torch = torchTimes(list);
  const copyMs = (n: number) => ours.get(`copy|${n}|0|0|0`);
  const big = 2 ** 28;
  const copyGBs = (8 * big) / (copyMs(big)! * 1e6);
  const rows = list.filter((j) => j.label).map((j) => {
    const ms = ours.get(j.id)!;
    const nRef = j.op.startsWith('powersgd') || j.op === 'orth' ? big : j.n;
    const bw = copyMs(nRef) ? (8 * nRef) / (copyMs(nRef)! * 1e6) : copyGBs;
    const gbps = j.bytes ? j.bytes / (ms * 1e6) : null;
    const t = torch.get(j.id);
    const tb = j.op === 'powersgd' && j.n === 64 ? torch.get('powersgd-batched|64|2048|2048|4') : j.op === 'orth' ? torch.get(`orth-batched|${j.n}|${j.a}|0|${j.c}`) : undefined;
    return {
      op: j.op, label: j.label, n: j.op === 'powersgd' ? j.n * j.a * j.b : j.n, param: j.param, ms, bytes: j.bytes,
      gbps, floorFraction: gbps ? gbps / bw : null,
      torchMs: typeof t === 'number' ? t : null, torchError: typeof t === 'string' ? t : undefined,
      speedup: typeof t === 'number' ? t / ms : null,
      torchBatchedMs: typeof tb === 'number' ? tb : null,
    };
  });
  const dev = info.cuda?.devices[0];
  const doc = {
    when: new Date().toISOString(), device: dev, driverVersion: info.cuda?.driverVersion, runtimeVersion: info.cuda?.runtimeVersion,
    copyGBs, reps, method: 'median of CUDA-event timings after 3 warm-ups; 256 MiB written between runs (no L2 reuse); torch baselines in the same run on the same GPU',
    torch: withTorch ? spawnSync('python3', ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' }).stdout.trim() : null,
    rows,
  };
  const slug = (dev?.name ?? 'gpu').toLowerCase().replace(/nvidia\s*/, '').replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
  const outFile = path.join(__dirname, '..', '..', 'bench', 'results', `${slug}.json`);
  fs.mkdirSync(path.dirname(outFile), { recursive: true });
  fs.writeFileSync(outFile, JSON.stringify(doc, null, 2) + '\n');
  console.log(`${dev?.name}, driver ${info.cuda?.driverVersion}; device copy ${copyGBs.toFixed(0)} GB/s (read + write) at 2^28`);
  console.log('| op | n | params | ms | GB/s | floor | torch ms | speedup |');
  console.log('|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    console.log(`| ${r.label} | 2^${Math.log2(r.n).toFixed(0)} | ${r.param} | ${r.ms < 0.1 ? r.ms.toFixed(4) : r.ms.toFixed(3)} | ${r.gbps ? r.gbps.toFixed(0) : ''} | ${r.floorFraction ? (100 * r.floorFraction).toFixed(0) + '%' : ''} | ${r.torchMs?.toFixed(3) ?? r.torchError ?? ''}${r.torchBatchedMs ? ` (batched ${r.torchBatchedMs.toFixed(3)})` : ''} | ${r.speedup ? r.speedup.toFixed(1) + 'x' : ''} |`);
  }
  console.log(`written: ${outFile}`);
}

main().catch((e) => { console.error(e); process.exit(1); });
