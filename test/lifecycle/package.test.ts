/**
 * The published shape: `npm run prebuild` (no npm configuration, no network) writes
 * prebuilds/linux-x64 (the CPU addon and, where mpicc exists, the MPI addon), `npm pack` makes a
 * tarball, and that tarball installs with --ignore-scripts into an empty folder with CC and CXX
 * pointing at /bin/false, where require() and import run every op from the prebuilt binary, and
 * `gradcomp --version`, `doctor`, `train`, `bench --quick`, gradcomp/tfjs in model.fit under `gradcomp run`
 * and `mpirun -np 2 gradcomp train` work.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MPI_ENV, mpiSkipReason } from '../helpers/mpi';

const root = path.resolve(__dirname, '..', '..');
const run = (cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env) =>
  execFileSync(cmd, args, { cwd, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

const SMOKE = `
const g = require('gradcomp');
const x = new Float32Array(100000).map((_, i) => Math.sin(i * 12.9898) * 43758.5453 % 1);
const r = new Float32Array(100000);
const a = g.efTopKSync(x, r, 1000);
const b = g.topKSync(x, 10);
const p = g.qsgdEncodeSync(x, { levels: 127, seed: 1 });
const y = g.qsgdDecodeSync(p);
const m = g.powerSgdStepSync({ m: x.subarray(0, 1000), rows: 40, cols: 25, q: new Float32Array(50), rank: 2 });
const d = g.dropitUnpackSync(g.dropitPackSync(x, 0.9));
Promise.all([g.efTopK(x, r.slice(), 5), g.topK(x, 5), g.qsgdEncode(x, { levels: 7, seed: 2 }),
  g.powerSgdStep({ m: x.subarray(0, 1000), rows: 40, cols: 25, q: new Float32Array(50), rank: 2 }),
  g.dropitPack(x, 0.5)]).then(() => {
  const info = g.backendInfo();
  console.log(JSON.stringify({ k: a.indices.length, top: Array.from(b.indices).length, n: y.length,
    p: m.p.length, d: d.length, backend: info.backend, path: require.resolve('gradcomp') }));
});
`;

const TFJS = `
const tf = require('@tensorflow/tfjs');
const { createHash } = require('node:crypto');
const { init } = require('gradcomp');
const { createTfjsOptimizer, broadcastWeights } = require('gradcomp/tfjs');
(async () => {
  await tf.setBackend('cpu');
  const comm = await init();
  const model = tf.sequential({ layers: [tf.layers.dense({ inputShape: [8], units: 16, activation: 'relu' }), tf.layers.dense({ units: 2 })] });
  await broadcastWeights(model, comm);
  const opt = createTfjsOptimizer({ comm, algorithm: 'ef-sgd', compressor: { type: 'topk', ratio: 0.1 }, optimizer: { type: 'sgd', lr: 0.1 }, minCompressSize: 16 });
  model.compile({ optimizer: opt, loss: 'meanSquaredError' });
  await model.fit(tf.randomNormal([64, 8], 0, 1, 'float32', comm.rank), tf.randomNormal([64, 2], 0, 1, 'float32', 9 + comm.rank), { batchSize: 16, epochs: 1, verbose: 0 });
  const h = createHash('sha256');
  for (const w of model.getWeights()) h.update(Buffer.from(w.dataSync().buffer));
  console.log(JSON.stringify({ digest: h.digest('hex'), steps: opt.stepCount, path: require.resolve('gradcomp/tfjs') }));
  opt.dispose();
  await comm.close();
})();
`;

// What the stage copies: not build outputs, the CUDA binary, results other runs write, or the
// probe files the architecture test writes into lib/ and removes (they may vanish mid-copy).
const stageFilter = (src: string) => {
  const rel = path.relative(root, src);
  return !/[/\\]build([/\\]|$)/.test(rel) && !rel.endsWith('gradcomp_cuda.node') && !/zz_probe/.test(rel) && !/^bench[/\\]results/.test(rel);
};

test('the packed tarball installs with --ignore-scripts and runs every op from the prebuild', () => {
  // Stage a copy of the package: prebuildify rebuilds build/, which the other test files are
  // loading the addon from at the same time.
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gradcomp-pack-'));
  const stage = path.join(tmp, 'stage');
  fs.mkdirSync(stage);
  for (const f of ['package.json', 'binding.gyp', 'README.md', 'LICENSE', 'native', 'dist', 'bench', 'scripts', 'lib', 'docs', 'examples', 'packages']) {
    fs.cpSync(path.join(root, f), path.join(stage, f), { recursive: true, filter: stageFilter });
  }
  fs.symlinkSync(path.join(root, 'node_modules'), path.join(stage, 'node_modules'));
  // No npm configuration at all (no npm_config_nodedir), and no way to download headers.
  const bare = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)));
  run('npm', ['run', 'prebuild'], stage, { ...bare, HTTPS_PROXY: 'http://127.0.0.1:9', HTTP_PROXY: 'http://127.0.0.1:9', npm_config_offline: 'true' });
  const prebuilt = path.join(stage, 'prebuilds', `${process.platform}-${process.arch}`);
  expect(fs.readdirSync(prebuilt).some((f) => f.endsWith('.node'))).toBe(true);
  const mpiWhy = mpiSkipReason();
  if (!mpiWhy) expect(fs.existsSync(path.join(prebuilt, 'mpi', 'gradcomp_mpi.node'))).toBe(true);

  const before = fs.readFileSync(path.join(stage, 'package.json'), 'utf8');
  const packed = JSON.parse(run('npm', ['pack', '--json', '--pack-destination', tmp], stage))[0];
  const files: string[] = packed.files.map((f: { path: string }) => f.path);
  // The published manifest names the CUDA package as an optional dependency (its own manifest
  // gates it by os, cpu and libc); the checkout's package.json is left as it was.
  const cuda = JSON.parse(fs.readFileSync(path.join(root, 'packages', 'cuda-linux-x64', 'package.json'), 'utf8'));
  expect(cuda).toMatchObject({ os: ['linux'], cpu: ['x64'], libc: ['glibc'] });
  const manifest = JSON.parse(execFileSync('tar', ['-xOzf', path.join(tmp, packed.filename), 'package/package.json'], { encoding: 'utf8' }));
  expect(manifest.optionalDependencies).toEqual({ [cuda.name]: cuda.version });
  expect(fs.readFileSync(path.join(stage, 'package.json'), 'utf8')).toBe(before);
  expect(files.some((f) => f.startsWith('prebuilds/'))).toBe(true);
  // No compiled-from-source path: no build/, no root binding.gyp, no kernel sources (only what rebuilding the MPI addon needs).
  expect(files.filter((f) => f.startsWith('build/') || f === 'binding.gyp' || (f.startsWith('native/') && !/^native\/(mpi|napi_util|core\/include)\//.test(f)))).toEqual([]);
  // Source maps ship with their sources.
  for (const m of files.filter((f) => f.endsWith('.js.map'))) {
    const map = JSON.parse(fs.readFileSync(path.join(stage, m), 'utf8')) as { sources: string[] };
    for (const src of map.sources) expect(files).toContain(path.posix.normalize(path.posix.join(path.posix.dirname(m), src)));
  }

  const app = path.join(tmp, 'app');
  fs.mkdirSync(app);
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
  // No compiler may be involved: no binding.gyp ships, scripts are ignored, and CC/CXX point nowhere.
  const env = { ...process.env, PATH: `${path.dirname(process.execPath)}:/usr/bin:/bin`, CXX: '/bin/false', CC: '/bin/false' };
  run(process.execPath, [path.join(path.dirname(process.execPath), 'npm'), 'install', '--ignore-scripts', '--prefer-offline',
    '--no-audit', '--no-fund', path.join(tmp, packed.filename)], app, env);
  expect(fs.existsSync(path.join(app, 'node_modules', 'gradcomp', 'build'))).toBe(false);

  const out = JSON.parse(run(process.execPath, ['-e', SMOKE], app, env));
  expect(out).toMatchObject({ k: 1000, top: 10, n: 100000, p: 80, d: 100000, backend: 'cpu' });
  expect(out.path).toContain(path.join(app, 'node_modules', 'gradcomp'));

  const esm = run(process.execPath, ['--input-type=module', '-e',
    "import { topKSync, Tensor } from 'gradcomp'; import g from 'gradcomp'; console.log(topKSync(new Float32Array([1, -3, 2]), 1).indices[0], typeof Tensor, typeof g.efTopK);"],
  app, env);
  expect(esm.trim()).toBe('1 function function');

  // The command, from the installed package.
  const bin = path.join(app, 'node_modules', '.bin', 'gradcomp');
  expect(run(bin, ['--version'], app, env).trim()).toBe(JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).version);
  expect(run(bin, ['doctor'], app, env)).toMatch(/backend: cpu/);
  const trained = JSON.parse(run(bin, ['train', '--workers', '2', '--model', 'softmax', '--steps', '60', '--json', '--progress', 'none'], app, env));
  expect(trained).toMatchObject({ workers: 2, steps: 60, backend: 'local' });
  expect(run(bin, ['bench', '--quick'], app, env)).toMatch(/efTopK/);
  // gradcomp/tfjs from the installed package, TF.js beside it (linked from this checkout, where
  // \`npm install @tensorflow/tfjs\` would put it): model.fit on 2 ranks, the step thread included.
  fs.symlinkSync(path.join(root, 'node_modules', '@tensorflow'), path.join(app, 'node_modules', '@tensorflow'));
  fs.writeFileSync(path.join(app, 'fit.js'), TFJS);
  const fits = run(bin, ['run', '-n', '2', 'fit.js'], app, env).split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { digest: string; steps: number; path: string });
  expect(fits).toHaveLength(2);
  for (const f of fits) expect(f).toMatchObject({ digest: fits[0].digest, steps: 4, path: expect.stringContaining(path.join(app, 'node_modules', 'gradcomp')) });
  if (mpiWhy) console.log(`mpirun part skipped: ${mpiWhy}`);
  else {
    const mpi = JSON.parse(run('mpirun', ['-np', '2', bin, 'train', '--model', 'softmax', '--steps', '60', '--json', '--progress', 'none'], app, { ...MPI_ENV, ...env }));
    expect(mpi).toMatchObject({ workers: 2, steps: 60, backend: 'mpi', digest: trained.digest });
  }
  fs.rmSync(tmp, { recursive: true, force: true });
}, 600000);
