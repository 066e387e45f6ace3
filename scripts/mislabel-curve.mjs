#!/usr/bin/env node
// TracIn's mislabel check (Pruthi et al. 2020, section 5.1) on Fashion-MNIST: train the MLP with
// 4 workers and 10% of the training labels flipped (seeded), keeping 5 checkpoints; rank the
// training set by self-influence (gradcomp influence); plot the fraction of flipped examples
// found against the fraction inspected, against random inspection. Writes
// bench/results/mislabel-<machine>.json and docs/img/mislabel.svg (vega-lite).
//   node scripts/mislabel-curve.mjs [--train-limit N] [--epochs E]
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as vega from 'vega';
import * as vl from 'vega-lite';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({ options: { 'train-limit': { type: 'string' }, epochs: { type: 'string', default: '3' } } });
const cli = (args) => {
  const r = spawnSync(process.execPath, [path.join(root, 'dist', 'lib', 'cli', 'main.js'), ...args], { cwd: root, encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) { console.error(r.stderr); process.exit(1); }
  return r.stdout;
};
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gc-mislabel-'));
const train = ['train', '--data', 'fashion-mnist', '--workers', '4', '--epochs', values.epochs, '--lr', '0.05', '--momentum', '0.9', '--seed', '1',
  '--flip-labels', '0.1', '--checkpoint', dir, '--keep-checkpoints', '5', '--json', '--progress', 'none', ...(values['train-limit'] ? ['--train-limit', values['train-limit']] : [])];
// Five checkpoints spread over the run: the steps per checkpoint from a first quick count.
const steps = Number(values.epochs) * Math.ceil(Math.floor(Number(values['train-limit'] ?? 60000) / 4) / 64);
const trained = JSON.parse(cli([...train, '--checkpoint-every', String(Math.floor(steps / 6))]).trim().split('\n').pop());
const t0 = Date.now();
const inf = JSON.parse(cli(['influence', '--checkpoint', dir, '--json', '--workers', '2']).trim().split('\n').pop());
const seconds = (Date.now() - t0) / 1000;
fs.rmSync(dir, { recursive: true, force: true });
const curve = inf.flipped.curve, at = (f) => curve.find((c) => c.inspected >= f - 1e-9).found;
const doc = { machine: { cpu: os.cpus()[0]?.model, cores: os.cpus().length, date: new Date().toISOString() }, settings: train.join(' '), accuracy: trained.accuracy,
  checkpoints: inf.checkpoints, flipped: inf.flipped.count, foundInTop10: at(0.1), foundInTop20: at(0.2), influenceSeconds: seconds, curve };
const host = os.hostname().replace(/[^\w-]/g, '') || 'machine';
fs.writeFileSync(path.join(root, 'bench', 'results', `mislabel-${host}.json`), JSON.stringify(doc, null, 2) + '\n');
const spec = {
  $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
  title: { text: 'Finding flipped labels by TracIn self-influence', subtitle: `Fashion-MNIST, 10% of ${inf.trainSize} training labels flipped, ${inf.checkpoints.length} checkpoints` },
  width: 420, height: 300,
  data: { values: [...curve.map((c) => ({ inspected: c.inspected, found: c.found, ranking: 'self-influence' })), { inspected: 0, found: 0, ranking: 'random' }, { inspected: 1, found: 1, ranking: 'random' }] },
  mark: { type: 'line' },
  encoding: {
    x: { field: 'inspected', type: 'quantitative', title: 'fraction of the training set inspected', axis: { format: '%' } },
    y: { field: 'found', type: 'quantitative', title: 'fraction of flipped labels found', axis: { format: '%' } },
    color: { field: 'ranking', type: 'nominal', title: 'ranking' },
    strokeDash: { field: 'ranking', type: 'nominal', legend: null },
  },
  config: { font: 'sans-serif', background: 'white' },
};
fs.writeFileSync(path.join(root, 'docs', 'img', 'mislabel.svg'), await new vega.View(vega.parse(vl.compile(spec).spec), { renderer: 'none' }).toSVG());
console.log(`test accuracy ${(100 * trained.accuracy).toFixed(1)}%; ${inf.flipped.count} flipped; top 10% by self-influence holds ${(100 * at(0.1)).toFixed(1)}%, top 20% ${(100 * at(0.2)).toFixed(1)}%; influence ${seconds.toFixed(1)} s`);
