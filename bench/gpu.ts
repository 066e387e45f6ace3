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
import { benchArgs } from './args';
import { cudaBackend } from '../lib/backend';
import { CUDA_CASES, floorBytes, qsgdBits } from './cuda-cases';

const USAGE = `npm run bench:gpu [-- --quick] [--no-torch]
  --quick     n = 2^24 and 2^28 only
  --no-torch  gradcomp's kernels only (no PyTorch baselines)`;
const values = benchArgs('bench:gpu', USAGE, { quick: { type: 'boolean', default: false }, 'no-torch': { type: 'boolean', default: false } });
const quick = values.quick === true;
const withTorch = values['no-torch'] !== true;
const reps = 15;

interface Job { id: string; op: string; n: number; a: number; b: number; c: number; reps: number; label: string; param: string; bytes: number; torch: boolean }

function median(xs: number[]): number {
  const s = [...xs].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}


function jobs(): Job[] {
  const out: Job[] = [];
  const exps = quick ? [24, 28] : [20, 22, 24, 26, 28];
  const add = (op: string, n: number, a: number, b: number, c: number, label: string, param: string, bytes: number, torch = true) =>
    out.push({ id: `${op}|${n}|${a}|${b}|${c}`, op, n, a, b, c, reps, label, param, bytes, torch });
  const { topk, qsgd, powersgd, dropit } = CUDA_CASES;
  for (const e of exps) {
    const n = 2 ** e;
    add('copy', n, 0, 0, 0, 'device copy (reference)', '', 8 * n);
    for (const f of topk.bench.fractions) add('eftopk', n, f, 0, 0, 'fused EF top-k', `k = ${f * 100}%`, floorBytes.eftopk(n, Math.round(f * n)));
    const f = topk.bench.plainFraction;
    add('topk', n, f, 0, 0, 'top-k of |x| (idx + val)', `k = ${f * 100}%`, floorBytes.topk(n, Math.round(f * n)));
    for (const [levels, bucket] of qsgd.bench.configs) {
      const bits = qsgdBits(levels);
      add('qsgd-encode', n, levels, bucket, 0, 'QSGD encode', `${bits}-bit, bucket ${bucket}`, floorBytes.qsgd(n, levels, bucket));
      add('qsgd-decode', n, levels, bucket, 0, 'QSGD decode', `${bits}-bit, bucket ${bucket}`, floorBytes.qsgd(n, levels, bucket));
    }
    for (const gamma of dropit.bench.gammas) {
      const k = n - Math.floor(gamma * n + 1e-9);
      add('dropit-pack', n, gamma, 0, 0, 'DropIT pack', `gamma ${gamma}`, floorBytes.dropit(n, k));
      add('dropit-unpack', n, gamma, 0, 0, 'DropIT unpack', `gamma ${gamma}`, floorBytes.dropit(n, k));
    }
  }
  const nb = 2 ** 28;
  for (const [c, name] of topk.bench.adversarial) {
    out.push({ id: `eftopk|${nb}|0.01|0|${c}`, op: 'eftopk', n: nb, a: 0.01, b: 0, c, reps, label: 'fused EF top-k, adversarial', param: `k = 1%, ${name}`, bytes: floorBytes.eftopk(nb, nb / 100), torch: false });
  }
  // PowerSGD: 2^28 elements as one 16384 x 16384 matrix and as 64 matrices of 2048 x 2048, rank 4.
  for (const [batch, rows, cols, rank] of powersgd.bench.configs) {
    add('powersgd', batch, rows, cols, rank, 'PowerSGD compress (P, orth, Q)', `${batch > 1 ? `${batch} x ` : ''}${rows} x ${cols}, rank ${rank}`, floorBytes.powersgd(batch, rows, cols, rank));
  }
  out.push({ id: 'powersgd-batched|64|2048|2048|4', op: 'powersgd-batched', n: 64, a: 2048, b: 2048, c: 4, reps, label: '', param: '', bytes: 0, torch: true });
  for (const [batch, rows, rank] of powersgd.bench.orth) {
    add('orth', batch, rows, 0, rank, `orthogonalize ${batch} matrices`, `${rows} x ${rank} each, one launch`, 0);
    out.push({ id: `orth-batched|${batch}|${rows}|0|${rank}`, op: 'orth-batched', n: batch, a: rows, b: 0, c: rank, reps, label: '', param: '', bytes: 0, torch: true });
  }
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
