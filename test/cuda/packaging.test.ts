/**
 * The CUDA addon ships as its own optional package (packages/cuda-linux-x64), packed separately;
 * the main tarball holds no GPU code. Where the addon cannot be built (no nvcc) this skips.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const root = path.resolve(__dirname, '..', '..');
const built = path.join(root, 'build-cuda', 'Release', 'gradcomp_cuda.node');
const npm = spawnSync('npm', ['--version'], { stdio: 'ignore' }).status === 0;
const have = fs.existsSync(built) && process.platform === 'linux' && process.arch === 'x64' && npm;
const it = have ? test : test.skip;
if (!have) console.log(`CUDA packaging tests skipped: ${npm ? `${built} was not built here (nvcc missing) or this is not linux-x64` : 'npm is not installed'}`);

it('the CUDA package packs alone, and the loader finds it installed', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gradcomp-cuda-pack-'));
  try {
    const out = execFileSync(process.execPath, [path.join(root, 'scripts', 'pack-cuda.js'), '--pack-destination', tmp], { cwd: root, encoding: 'utf8' });
    const packed = JSON.parse(out.slice(out.indexOf('[')))[0];
    const files = packed.files.map((f: { path: string }) => f.path).sort();
    expect(files).toEqual(['README.md', 'gradcomp_cuda.node', 'index.js', 'package.json']);
    expect(packed.name).toBe('@gradcomp/cuda-linux-x64');
    expect(packed.unpackedSize).toBeLessThan(25 * 1024 * 1024); // the size budget of specs/packaging.md §4.1
    // Install by hand (no registry here) and resolve it the way a user's install would.
    const dest = path.join(tmp, 'node_modules', '@gradcomp', 'cuda-linux-x64');
    fs.mkdirSync(dest, { recursive: true });
    execFileSync('tar', ['-xzf', path.join(tmp, packed.filename), '-C', dest, '--strip-components=1']);
    const r = spawnSync(process.execPath, ['-e', `const l = require('./dist/lib/native/loader').loadCudaBinding(); process.stdout.write(JSON.stringify({ from: l.from, reason: l.reason, status: l.binding && l.binding.probe().status }))`],
      { cwd: root, encoding: 'utf8', env: { ...process.env, NODE_PATH: path.join(tmp, 'node_modules'), GRADCOMP_CUDA_BINDING: '' } });
    const o = JSON.parse(r.stdout);
    expect(o.from).toBe(path.join(dest, 'gradcomp_cuda.node'));
    expect(['ok', 'no-driver', 'no-device', 'driver-too-old', 'unsupported-arch', 'error']).toContain(o.status);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}, 120_000);

it('the main package carries no CUDA code and needs no compiler to pack', () => {
  const out = execFileSync('npm', ['pack', '--dry-run', '--json'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const files: string[] = JSON.parse(out.slice(out.indexOf('[')))[0].files.map((f: { path: string }) => f.path);
  expect(files.some((f) => f.startsWith('packages/') || f.startsWith('build-cuda/') || f.startsWith('cuda/') || f.endsWith('gradcomp_cuda.node'))).toBe(false);
  expect(files).toContain('dist/lib/index.js');
});
