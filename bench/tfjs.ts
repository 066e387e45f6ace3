/**
 * The TF.js benchmark (`npm run bench:tfjs`): under gradcomp run -n 4, (1) the optimizer's
 * overhead against a hand-written async loop with the same algorithm (same run), (2) a small CNN
 * on Fashion-MNIST through plain model.fit with dense sync SGD, EF-SGD top-k 1%, PowerSGD rank 4,
 * and DropIT (gamma 0.9) layers: test accuracy, bytes against dense, bytes held for backward,
 * identical ranks. Writes bench/results/tfjs-<machine>.json and prints a table.
 *   npm run bench:tfjs [-- --train 24000 --epochs 3 --test 10000]
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';

const root = path.resolve(__dirname, '..', '..');
const { values } = parseArgs({ options: { train: { type: 'string', default: '24000' }, epochs: { type: 'string', default: '3' }, test: { type: 'string', default: '10000' }, json: { type: 'string' } } });
const base = { train: Number(values.train), epochs: Number(values.epochs), test: Number(values.test) };
const configs: Record<string, unknown>[] = [
  { mode: 'overhead', steps: 30, train: 4096, test: 10 },
  { mode: 'fit', name: 'dense sync SGD', model: 'cnn', algo: 'sync', ...base },
  // Top-k with the optimizer's momentum applied before compression (the recommended setting: error feedback keeps the momentum-corrected update).
  { mode: 'fit', name: 'EF-SGD top-k 1%, momentum before compression', model: 'cnn', algo: 'ef-sgd', compressor: { type: 'topk', ratio: 0.01 },
    options: { momentumBeforeCompression: true }, ...base },
  { mode: 'fit', name: 'PowerSGD rank 4', model: 'cnn', algo: 'powersgd', compressor: { type: 'powersgd', rank: 4 }, ...base },
  { mode: 'fit', name: 'dense sync SGD, DropIT layers gamma 0.9', model: 'cnn', algo: 'sync', gamma: 0.9, ...base },
];
const rows: Record<string, unknown>[] = [];
for (const c of configs) {
  const r = spawnSync(process.execPath, [path.join(root, 'dist', 'lib', 'cli', 'main.js'), 'run', '-n', '4', path.join(root, 'bench', 'tfjs_worker.js'), JSON.stringify(c)], {
    cwd: root, encoding: 'utf8', maxBuffer: 1 << 26,
    env: { ...process.env, GRADCOMP_ENTRY: path.join(root, 'dist', 'lib', 'index.js'), GRADCOMP_TFJS_ENTRY: path.join(root, 'dist', 'lib', 'integrations', 'tfjs', 'index.js') },
  });
  const line = r.stdout.split('\n').find((l) => l.startsWith('GRADCOMP_TFJS '));
  if (!line) { process.stderr.write(`${String(c.name ?? c.mode)}: failed: ${r.stderr.split('\n').slice(-5).join(' | ')}\n`); continue; }
  const row = JSON.parse(line.slice(14)) as Record<string, unknown>;
  rows.push(row);
  process.stderr.write(`${String(c.name ?? c.mode)}: ${line.slice(14, 300)}\n`);
}
const file = values.json ?? path.join(root, 'bench', 'results', `tfjs-${os.hostname().replace(/[^\w-]/g, '') || 'machine'}.json`);
fs.writeFileSync(file, JSON.stringify({ machine: { cpu: os.cpus()[0]?.model, cores: os.cpus().length, node: process.version, date: new Date().toISOString() }, rows }, null, 2) + '\n');
const ov = rows.find((r) => r.mode === 'overhead');
if (ov) console.log(`optimizer overhead: createTfjsOptimizer ${(ov.tfjsOptimizerMs as number).toFixed(1)} ms/step vs a hand-written async loop ${(ov.handLoopMs as number).toFixed(1)} ms/step (${(100 * (ov.overhead as number)).toFixed(1)}%)`);
const dense = rows.find((r) => r.name === 'dense sync SGD');
console.log('| config | test accuracy | vs dense | sent / dense bytes | backward bytes (kept / dense) | ranks identical | s |');
console.log('|---|---|---|---|---|---|---|');
for (const r of rows.filter((x) => x.mode === 'fit')) {
  const bb = r.backwardBytes as { kept: number; dense: number } | null;
  console.log(`| ${String(r.name)} | ${(100 * (r.accuracy as number)).toFixed(1)}% | ${dense ? `${(100 * ((r.accuracy as number) - (dense.accuracy as number))).toFixed(1)} pt` : '-'} | ` +
    `${((r.bytesSent as number) / (r.denseBytes as number)).toFixed(4)} | ${bb ? `${bb.kept} / ${bb.dense} (${(100 * (1 - bb.kept / bb.dense)).toFixed(0)}% less)` : '-'} | ${String(r.ranksIdentical)} | ${(r.seconds as number).toFixed(0)} |`);
}
console.log(`results: ${path.relative(root, file)}`);
