/**
 * The TF.js benchmark (`npm run bench:tfjs`): under gradcomp run -n 4, (1) the optimizer's
 * overhead against a hand-written async loop with the same algorithm (same run, the two in
 * alternating rounds), (2) a small CNN
 * on Fashion-MNIST through plain model.fit with dense sync SGD, EF-SGD top-k 1%, PowerSGD rank 4,
 * and DropIT (gamma 0.9) layers: test accuracy, bytes against dense, bytes held for backward,
 * identical ranks. Writes bench/results/tfjs-<machine>.json and prints a table.
 *   npm run bench:tfjs [-- --train 24000 --epochs 3 --test 10000 --seeds 1000,2000,3000 --configs dense,topk]
 * --seeds trains every model once per initial-weight seed; the table then gives the mean accuracy
 * and each seed's difference from dense at the same seed. --configs picks among overhead, dense,
 * topk, powersgd and dropit (all by default) and dropit-sample (DropIT with selection 'sample').
 * --backend wasm trains on tfjs-backend-wasm (with gradcomp's conv weight gradient, which it
 * lacks) instead of cpu (with gradcomp's native kernels).
 * --batch sets the batch per rank (32); --shuffle gives each rank's shard a new seeded order every
 * epoch (by default every epoch goes through the shard in the same order). --init heNormal
 * initializes the kernels as gradcomp train's models do, instead of TF.js's default glorotUniform.
 * --filters sets the two convolutions' widths (8,16 by default; the README's example starts at 32).
 * --schedule cosine decays the learning rate from 0.05 to 0 over the run (set as the optimizer's
 * learningRate before each batch); constant by default.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { benchArgs, listOf, refuse } from './args';

const root = path.resolve(__dirname, '..', '..');
const USAGE = `npm run bench:tfjs [-- --train 24000 --epochs 3 --test 10000 --seeds 1000,2000,3000 --configs dense,topk]
  --train, --test   how many training / test images (24000, 10000); --epochs (3)
  --seeds           initial-weight seeds, each model trained once per seed (1000)
  --configs         overhead, dense, topk, powersgd, dropit (all five by default), dropit-sample
  --backend         cpu (gradcomp's native kernels) or wasm (4x faster here)
  --batch           batch per rank (32); --shuffle: a new seeded order of each rank's shard every epoch
  --init            glorotUniform (TF.js's default) or heNormal (as gradcomp train's models)
  --filters A,B     the two convolutions' filters (8,16)
  --schedule        constant (0.05) or cosine (0.05 decayed to 0 over the run)
  --json FILE       where the results go (bench/results/tfjs-<machine>.json by default)`;
const values = benchArgs('bench:tfjs', USAGE, { train: { type: 'string', default: '24000' }, epochs: { type: 'string', default: '3' }, test: { type: 'string', default: '10000' },
  seeds: { type: 'string', default: '1000' }, configs: { type: 'string', default: 'overhead,dense,topk,powersgd,dropit' }, json: { type: 'string' },
  backend: { type: 'string', default: 'cpu' }, batch: { type: 'string', default: '32' }, shuffle: { type: 'boolean', default: false },
  init: { type: 'string', default: 'glorotUniform' }, filters: { type: 'string', default: '8,16' },
  schedule: { type: 'string', default: 'constant' } }) as { [k: string]: string | undefined } & { shuffle: boolean };
if (values.init !== 'glorotUniform' && values.init !== 'heNormal') refuse('bench:tfjs', USAGE, `--init: expected glorotUniform or heNormal, got '${String(values.init)}'`);
if (values.schedule !== 'constant' && values.schedule !== 'cosine') refuse('bench:tfjs', USAGE, `--schedule: expected constant or cosine, got '${String(values.schedule)}'`);
if (values.backend !== 'cpu' && values.backend !== 'wasm') refuse('bench:tfjs', USAGE, `--backend: expected cpu or wasm, got '${String(values.backend)}'`);
const count = (flag: string, v: string | undefined, min: number): number => {
  const n = Number(v);
  if (v === '' || !Number.isInteger(n) || n < min) refuse('bench:tfjs', USAGE, `--${flag}: expected an integer >= ${min}, got '${String(v)}'`);
  return n;
};
const filters = (values.filters ?? '').split(',');
if (filters.length !== 2) refuse('bench:tfjs', USAGE, `--filters: expected two integers A,B, got '${String(values.filters)}'`);
const base = { train: count('train', values.train, 1), epochs: count('epochs', values.epochs, 1), test: count('test', values.test, 1), backend: values.backend,
  batch: count('batch', values.batch, 1), ...(values.shuffle ? { shuffle: true } : {}), ...(values.init !== 'glorotUniform' ? { init: values.init } : {}),
  ...(values.filters !== '8,16' ? { filters: filters.map((v) => count('filters', v, 1)) } : {}), ...(values.schedule !== 'constant' ? { schedule: values.schedule } : {}) };
const seeds = (values.seeds ?? '').split(',').map((v) => count('seeds', v, 0));
const all: Record<string, Record<string, unknown>> = {
  overhead: { mode: 'overhead', steps: 20, rounds: 10, train: 4096, test: 10, backend: values.backend },
  dense: { mode: 'fit', name: 'dense sync SGD', model: 'cnn', algo: 'sync', ...base },
  // Top-k with the optimizer's momentum applied before compression (the recommended setting: error feedback keeps the momentum-corrected update).
  topk: { mode: 'fit', name: 'EF-SGD top-k 1%, momentum before compression', model: 'cnn', algo: 'ef-sgd', compressor: { type: 'topk', ratio: 0.01 },
    options: { momentumBeforeCompression: true }, ...base },
  powersgd: { mode: 'fit', name: 'PowerSGD rank 4', model: 'cnn', algo: 'powersgd', compressor: { type: 'powersgd', rank: 4 }, ...base },
  dropit: { mode: 'fit', name: 'dense sync SGD, DropIT layers gamma 0.9', model: 'cnn', algo: 'sync', gamma: 0.9, ...base },
  // The same layers, each sample keeping its own top 10% (selection: 'sample') instead of the batch's top 10% together.
  'dropit-sample': { mode: 'fit', name: "dense sync SGD, DropIT layers gamma 0.9, selection 'sample'", model: 'cnn', algo: 'sync', gamma: 0.9, selection: 'sample', ...base },
};
const picked = listOf('bench:tfjs', USAGE, 'configs', values.configs ?? '', Object.keys(all));
const configs = Object.entries(all).filter(([k]) => picked.includes(k))
  .flatMap(([, c]) => (c.mode === 'fit' ? seeds.map((seed) => ({ ...c, seed })) : [c]));
const rows: Record<string, unknown>[] = [];
// Written again after every run, so a long benchmark stopped part-way keeps what it measured.
const file = values.json ?? path.join(root, 'bench', 'results', `tfjs-${os.hostname().replace(/[^\w-]/g, '') || 'machine'}.json`);
const save = () => fs.writeFileSync(file, JSON.stringify({ machine: { cpu: os.cpus()[0]?.model, cores: os.cpus().length, node: process.version, date: new Date().toISOString() }, rows }, null, 2) + '\n');
for (const c of configs) {
  const r = spawnSync(process.execPath, [path.join(root, 'dist', 'lib', 'cli', 'main.js'), 'run', '-n', '4', path.join(root, 'bench', 'tfjs_worker.js'), JSON.stringify(c)], {
    cwd: root, encoding: 'utf8', maxBuffer: 1 << 26,
    env: { ...process.env, GRADCOMP_ENTRY: path.join(root, 'dist', 'lib', 'index.js'), GRADCOMP_TFJS_ENTRY: path.join(root, 'dist', 'lib', 'integrations', 'tfjs', 'index.js') },
  });
  const line = r.stdout.split('\n').find((l) => l.startsWith('GRADCOMP_TFJS '));
  if (!line) { process.stderr.write(`${String(c.name ?? c.mode)}: failed: ${r.stderr.split('\n').slice(-5).join(' | ')}\n`); continue; }
  const row = JSON.parse(line.slice(14)) as Record<string, unknown>;
  rows.push(row);
  save();
  process.stderr.write(`${String(c.name ?? c.mode)}${c.seed !== undefined ? `, seed ${String(c.seed)}` : ''}: ${line.slice(14, 300)}\n`);
}
const ov = rows.find((r) => r.mode === 'overhead');
if (ov) console.log(`optimizer overhead: createTfjsOptimizer ${(ov.tfjsOptimizerMs as number).toFixed(1)} ms/step vs a hand-written async loop ${(ov.handLoopMs as number).toFixed(1)} ms/step (${(100 * (ov.overhead as number)).toFixed(1)}%; ` +
  `per round, the drivers alternating: ${(ov.roundOverheads as number[]).map((v) => `${(100 * v).toFixed(1)}%`).join(', ')})`);
// One line per config: the mean over its seeds, and each seed against dense at the same seed.
const fits = rows.filter((x) => x.mode === 'fit');
const acc = (r: Record<string, unknown>): number => 100 * (r.accuracy as number);
const pt = (v: number): string => (Math.abs(v) < 0.05 ? 0 : v).toFixed(1); // no '-0.0'
const denseAt = (seed: unknown): Record<string, unknown> | undefined => fits.find((r) => r.name === 'dense sync SGD' && r.seed === seed);
if (fits.length) {
  console.log(`| config | test accuracy${seeds.length > 1 ? ` (mean of ${seeds.length} seeds)` : ''} | vs dense | per seed | sent / dense bytes | backward bytes (kept / dense) | ranks identical | s |`);
  console.log('|---|---|---|---|---|---|---|---|');
}
for (const name of [...new Set(fits.map((r) => r.name as string))]) {
  const rs = fits.filter((r) => r.name === name), r = rs[0];
  const mean = rs.reduce((a, x) => a + acc(x), 0) / rs.length;
  const deltas = rs.map((x) => { const d = denseAt(x.seed); return d ? acc(x) - acc(d) : NaN; });
  const dMean = deltas.some(Number.isNaN) ? null : deltas.reduce((a, v) => a + v, 0) / deltas.length;
  const bb = r.backwardBytes as { kept: number; dense: number } | null;
  console.log(`| ${name} | ${mean.toFixed(1)}% | ${dMean === null ? '-' : `${pt(dMean)} pt`} | ${deltas.map((d, i) => `${String(rs[i].seed)}: ${Number.isNaN(d) ? '-' : pt(d)}`).join(', ')} | ` +
    `${((r.bytesSent as number) / (r.denseBytes as number)).toFixed(4)} | ${bb ? `${bb.kept} / ${bb.dense} (${(100 * (1 - bb.kept / bb.dense)).toFixed(0)}% less)` : '-'} | ${String(rs.every((x) => x.ranksIdentical === true))} | ` +
    `${(rs.reduce((a, x) => a + (x.seconds as number), 0) / rs.length).toFixed(0)} |`);
}
console.log(`results: ${path.relative(root, file)}`);
