#!/usr/bin/env node
// Runs `gradcomp train --json` once per algorithm (the default job: MLP, 4 workers, 600 steps)
// and writes the README's algorithm table between <!-- algo-table:start --> and
// <!-- algo-table:end -->, plus the raw results to bench/results/train-<tag>.json.
//   node scripts/algo-table.js [tag]
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const cli = path.join(root, 'dist', 'lib', 'cli', 'main.js');
const tag = process.argv[2] || 'cpu-2core-epyc';
// [label, flags, what each worker sends, collective, bytes per worker per step (d parameters, n workers)]
const ROWS = [
  ['sync', ['--algo', 'sync'], 'its gradient', 'allreduce (dense buckets)', '4d'],
  ['sync + fp16', ['--algo', 'sync', '--compressor', 'fp16'], 'fp16 gradient (EF optional)', 'allgather', '2d'],
  ['sync + qsgd', ['--algo', 'sync', '--compressor', 'qsgd', '--levels', '15'], 'QSGD codes + bucket norms', 'allgather', '≈ d/2 + 4d/512'],
  ['ef-sgd (top-k)', ['--algo', 'ef-sgd', '--compressor', 'topk', '--ratio', '0.01'], 'top-k of g + e (index, value)', 'allgather', '8k'],
  ['ef-sgd (sign)', ['--algo', 'ef-sgd'], 'sign bits + one l1 scale per tensor', 'allgather', 'd/8 + 4'],
  ['signsgd', ['--algo', 'signsgd', '--lr', '0.003'], 'sign bits (majority vote)', 'allgather', 'd/8'],
  ['scalecom', ['--algo', 'scalecom'], "values at the leader's top-k indices", 'broadcast + allreduce', '4k (+ 4k at the leader)'],
  ['powersgd', ['--algo', 'powersgd'], 'P = MQ, then Q = MᵀP (rank r)', '2 allreduces', '4r(rows + cols)'],
  ['double-squeeze', ['--algo', 'double-squeeze'], 'C(g + e_w) up, C(mean + e_s) down', 'gather + broadcast (or all-to-all + allgather)', 'd/8 up, d/8 down'],
  ['liec', ['--algo', 'liec'], 'C(g) up, C(mean + e_s) down; a dense sync every τ', 'as double-squeeze; 3 dense rounds per sync', '≈ d/8 + 9d/τ (n = 4)'],
  ['local', ['--algo', 'local'], 'its model, every H steps', 'allreduce', '4d/H'],
  ['stl', ['--algo', 'stl', '--period', '4', '--stage-steps', '200', '--lr', '0.2'], 'its model, every k_s steps (k_s grows per stage)', 'allreduce', '4d / k_s'],
  ['local', ['--algo', 'local', '--non-iid'], 'its model, every H steps', 'allreduce', '4d/H'],
  ['vrl', ['--algo', 'vrl', '--non-iid'], 'its model, every H steps (Δ stays local)', 'allreduce', '4d/H'],
  ['cocod', ['--algo', 'cocod'], 'its model snapshot, overlapped with H steps', 'allreduce (in flight)', '4d/H'],
];
const fmt = (b) => (b >= 1e6 ? `${(b / 1e6).toFixed(2)} MB` : `${(b / 1e3).toFixed(1)} kB`);
const results = ROWS.map(([label, flags, sends, coll, bytes]) => {
  const r = JSON.parse(execFileSync(process.execPath, [cli, 'train', '--json', '--progress', 'none', ...flags], { encoding: 'utf8' }));
  process.stderr.write(`${label}: loss ${r.finalLoss.toFixed(4)}\n`);
  return { label, flags, sends, coll, bytes, r };
});
const head = '| algorithm | each worker sends | collective | bytes / worker / step | final loss | test acc | sent / worker | vs dense | rounds | time |\n|---|---|---|---|---|---|---|---|---|---|';
const body = results.map(({ label, sends, coll, bytes, r }) =>
  `| ${label}${r.nonIid ? ' (non-IID)' : ''} | ${sends} | ${coll} | ${bytes} | ${r.finalLoss.toFixed(4)} | ${(100 * r.accuracy).toFixed(1)}% | ${fmt(r.bytesPerWorker)} | ${(r.denseBytesPerWorker / r.bytesPerWorker).toFixed(1)}x | ${Math.round(r.rounds)} | ${r.seconds.toFixed(2)} s |`).join('\n');
const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
const note = `\nMeasured with \`node scripts/algo-table.js\` on ${os.cpus().length} x ${cpu.trim()}, Node ${process.versions.node}: \`gradcomp train\` defaults (MLP with ${results[0].r.parameters} parameters, 4 workers on the local backend, 600 steps, batch 32 per worker, lr 0.1, seed 1) with only the flags in the algorithm's row changed (signSGD: lr 0.003; STL-SGD: lr 0.2 halved per stage, stages of 200 and 400 steps, period 4 then 8; the second Local SGD row and VRL-SGD: non-IID shards). Dense SGD sends ${fmt(results[0].r.denseBytesPerWorker)} per worker over the run.\n`;
const table = `${head}\n${body}\n${note}`;
const readme = path.join(root, 'README.md');
const text = fs.readFileSync(readme, 'utf8');
const re = /(<!-- algo-table:start -->\n)[\s\S]*?(<!-- algo-table:end -->)/;
if (!re.test(text)) throw new Error('README.md has no algo-table markers');
fs.writeFileSync(readme, text.replace(re, `$1${table}$2`));
fs.mkdirSync(path.join(root, 'bench', 'results'), { recursive: true });
fs.writeFileSync(path.join(root, 'bench', 'results', `train-${tag}.json`), JSON.stringify({ machine: { cpu, cores: os.cpus().length, node: process.versions.node }, rows: results.map(({ label, flags, r }) => ({ label, flags, ...r })) }, null, 2) + '\n');
