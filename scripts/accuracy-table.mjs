#!/usr/bin/env node
// The accuracy table: every algorithm and compressor trained by `gradcomp train` on Fashion-MNIST
// (4 workers, MLP 784-256-128-10 and the small CNN, batch 64 per worker, 3 epochs, SGD lr 0.05 with
// momentum 0.9 for dense and compressed alike unless the row says, seed 1), dense sync SGD as the
// baseline in the same run; the non-IID comparisons of Local SGD, VRL-SGD and STL-SGD. Writes
// bench/results/accuracy-<machine>.json, docs/img/accuracy.svg (vega-lite: test accuracy against
// bytes sent) and the table between the accuracy markers of docs/training.md.
//   node scripts/accuracy-table.mjs [--only substring] [--quick]   (--quick: 8000 images, 1 epoch)
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as vega from 'vega';
import * as vl from 'vega-lite';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({ options: { only: { type: 'string' }, quick: { type: 'boolean', default: false } } });
const base = ['--data', 'fashion-mnist', '--workers', '4', '--batch', '64', '--lr', '0.05', '--momentum', '0.9', '--seed', '1', '--json', '--progress', 'none',
  ...(values.quick ? ['--train-limit', '8000', '--epochs', '1'] : ['--epochs', '3'])];
const R = (group, name, args) => ({ group, name, args });
const runs = [
  R('mlp', 'sync dense (baseline)', ['--algo', 'sync']),
  R('mlp', 'ef-sgd, top-k 1%', ['--algo', 'ef-sgd', '--compressor', 'topk', '--ratio', '0.01']),
  R('mlp', 'ef-sgd, top-k 1%, global (scope model)', ['--algo', 'ef-sgd', '--compressor', 'topk', '--ratio', '0.01', '--scope', 'model']),
  R('mlp', 'sync + DGC 1% (warm-up 1 epoch)', ['--algo', 'sync', '--compressor', 'dgc', '--ratio', '0.01']),
  R('mlp', 'PowerSGD rank 4', ['--algo', 'powersgd', '--rank', '4']),
  R('mlp', 'sync + QSGD 4-bit (7 levels)', ['--algo', 'sync', '--compressor', 'qsgd', '--levels', '7']),
  R('mlp', 'ScaleCom 1%', ['--algo', 'scalecom', '--ratio', '0.01']),
  R('mlp', 'ef-sgd, scaled sign, blocks of 256', ['--algo', 'ef-sgd', '--compressor', 'efsign', '--bucket', '256']),
  R('mlp', 'LIEC-SGD (scaled sign, blocks of 256, tau 32)', ['--algo', 'liec', '--compressor', 'efsign', '--bucket', '256']),
  R('mlp', 'DoubleSqueeze (scaled sign, blocks of 256, sharded)', ['--algo', 'double-squeeze', '--compressor', 'efsign', '--bucket', '256', '--server', 'sharded']),
  R('mlp', 'Local SGD, H = 8', ['--algo', 'local', '--period', '8']),
  R('mlp', 'CoCoD-SGD, H = 8', ['--algo', 'cocod', '--period', '8']),
  R('mlp non-IID', 'Local SGD, H = 8, non-IID', ['--algo', 'local', '--period', '8', '--non-iid']),
  R('mlp non-IID', 'VRL-SGD, H = 8, non-IID', ['--algo', 'vrl', '--period', '8', '--non-iid']),
  R('mlp non-IID', 'STL-SGD, k1 = 4, non-IID', ['--algo', 'stl', '--period', '4', '--non-iid']),
  R('cnn', 'CNN: sync dense (baseline)', ['--model', 'cnn', '--algo', 'sync']),
  R('cnn', 'CNN: ef-sgd, top-k 1%', ['--model', 'cnn', '--algo', 'ef-sgd', '--compressor', 'topk', '--ratio', '0.01', '--scope', 'model']),
  R('cnn', 'CNN: PowerSGD rank 4', ['--model', 'cnn', '--algo', 'powersgd', '--rank', '4']),
  R('cnn', 'CNN: sync + QSGD 4-bit', ['--model', 'cnn', '--algo', 'sync', '--compressor', 'qsgd', '--levels', '7']),
].filter((r) => !values.only || r.name.includes(values.only));

const rows = [];
for (const r of runs) {
  const t0 = Date.now();
  const p = spawnSync(process.execPath, [path.join(root, 'dist', 'lib', 'cli', 'main.js'), 'train', ...base, ...r.args], { cwd: root, encoding: 'utf8', maxBuffer: 1 << 24 });
  const line = p.stdout.trim().split('\n').pop();
  let res;
  try { res = JSON.parse(line); } catch { console.error(`${r.name}: failed: ${p.stderr.split('\n').slice(-4).join(' | ')}`); continue; }
  rows.push({ ...r, accuracy: res.accuracy, finalLoss: res.finalLoss, ratio: res.denseBytesPerWorker / Math.max(1, res.bytesPerWorker), rounds: res.rounds, steps: res.steps,
    epochs: res.epochs, parameters: res.parameters, seconds: res.seconds, digest: res.digest });
  console.error(`${r.name}: ${(100 * res.accuracy).toFixed(1)}% (${(rows.at(-1).ratio).toFixed(1)}x fewer bytes) in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
}
const host = os.hostname().replace(/[^\w-]/g, '') || 'machine';
const doc = { machine: { cpu: os.cpus()[0]?.model, cores: os.cpus().length, node: process.version, date: new Date().toISOString() }, settings: base.join(' '), rows };
fs.writeFileSync(path.join(root, 'bench', 'results', `accuracy-${host}${values.quick ? '-quick' : ''}.json`), JSON.stringify(doc, null, 2) + '\n');

// Table: each row against its group's baseline.
const baseOf = (g) => rows.find((x) => x.group === g.replace(' non-IID', '') && /baseline/.test(x.name)) ?? rows.find((x) => x.group === 'mlp' && /baseline/.test(x.name));
const lines = [`Settings: \`gradcomp train ${base.filter((a) => a !== '--json').join(' ')}\` plus each row's flags; measured ${doc.machine.date.slice(0, 10)} on ${doc.machine.cpu}, ${doc.machine.cores} cores, Node ${doc.machine.node}.`, '',
  '| run | test accuracy | vs dense | bytes: dense / sent | final training loss | rounds |', '|---|---|---|---|---|---|'];
for (const r of rows) {
  const b = baseOf(r.group);
  lines.push(`| ${r.name} | ${(100 * r.accuracy).toFixed(1)}% | ${b && b !== r ? `${(100 * (r.accuracy - b.accuracy)) >= 0 ? '+' : ''}${(100 * (r.accuracy - b.accuracy)).toFixed(1)} pt` : '-'} | ${r.ratio.toFixed(1)}x | ${r.finalLoss.toFixed(4)} | ${Math.round(r.rounds)} |`);
}
const file = path.join(root, 'docs', 'training.md');
const md = fs.readFileSync(file, 'utf8'), a = '<!-- accuracy:begin -->', z = '<!-- accuracy:end -->';
if (md.includes(a) && !values.quick && !values.only) fs.writeFileSync(file, md.slice(0, md.indexOf(a) + a.length) + '\n' + lines.join('\n') + '\n' + md.slice(md.indexOf(z)));

// Chart: accuracy against the bytes ratio, one point per run.
const spec = {
  $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
  title: { text: 'Fashion-MNIST test accuracy against communication saved', subtitle: '4 workers, 3 epochs, same lr and momentum as dense' },
  data: { values: rows.map((r) => ({ run: r.name, model: r.group, accuracy: Math.round(1000 * r.accuracy) / 10, ratio: Math.round(10 * r.ratio) / 10 })) },
  width: 520, height: 320,
  mark: { type: 'point', filled: true, size: 70 },
  encoding: {
    x: { field: 'ratio', type: 'quantitative', scale: { type: 'log' }, title: 'bytes: dense / sent (log scale)' },
    y: { field: 'accuracy', type: 'quantitative', scale: { zero: false }, title: 'test accuracy (%)' },
    color: { field: 'model', type: 'nominal', title: 'model' },
    tooltip: [{ field: 'run' }, { field: 'accuracy' }, { field: 'ratio' }],
  },
  config: { font: 'sans-serif', background: 'white' },
};
const svg = await new vega.View(vega.parse(vl.compile(spec).spec), { renderer: 'none' }).toSVG();
if (!values.quick && !values.only) fs.writeFileSync(path.join(root, 'docs', 'img', 'accuracy.svg'), svg);
console.log(lines.join('\n'));
