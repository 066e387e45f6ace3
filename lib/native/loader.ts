/**
 * Loads the CPU addon: the only place that requires a `.node` file. node-gyp-build looks in
 * build/Release (a development checkout) and then prebuilds/<platform>-<arch>/ (the published
 * package); GRADCOMP_BINDING=/path/to/gradcomp.node overrides both.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { GradcompError, nativeError } from './errors';
import type { CudaBinding, MpiBinding, NativeBinding } from './binding';


let cached: NativeBinding | undefined;
let abi: number | undefined;

/**
 * The one ABI version (package.json's gradcomp.abi): the addons compile it in (binding.gyp,
 * CMakeLists.txt), this layer reads it here, so a stale addon is refused with a clear message.
 */
export function expectedAbi(): number {
  if (abi === undefined) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    abi = Number((require(path.join(packageRoot(), 'package.json')) as { gradcomp?: { abi?: unknown } }).gradcomp?.abi);
  }
  return abi;
}

/** The package root: the nearest folder above this file whose package.json names gradcomp. */
export function packageRoot(): string {
  let dir = __dirname;
  for (;;) {
    const pj = path.join(dir, 'package.json');
    if (fs.existsSync(pj)) {
      try {
        if (JSON.parse(fs.readFileSync(pj, 'utf8')).name === 'gradcomp') return dir;
      } catch {
        /* keep looking */
      }
    }
    const up = path.dirname(dir);
    if (up === dir) throw new GradcompError('ERR_GRADCOMP_NATIVE_LOAD', `gradcomp: package.json not found above ${__dirname}`);
    dir = up;
  }
}

function loadError(root: string, cause: unknown): GradcompError {
  const dirs = ['build/Release', `prebuilds/${process.platform}-${process.arch}`]
    .map((d) => `  ${d}: ${fs.existsSync(path.join(root, d)) ? fs.readdirSync(path.join(root, d)).join(', ') || '(empty)' : '(missing)'}`)
    .join('\n');
  const msg = [
    `gradcomp could not load its native addon for ${process.platform}-${process.arch}` +
      ` (Node ${process.versions.node}, N-API ${process.versions.napi}).`,
    `Cause: ${(cause instanceof Error ? cause.message : String(cause)).split("\n")[0]}`,
    `Looked in ${root}:`,
    dirs,
    'Possible solutions:',
    '- Reinstall gradcomp: the published package ships prebuilds/linux-x64; other platforms need a build.',
    '- In a source checkout, build it: npm run build:native (needs g++, python3 and Node headers).',
    '- Point GRADCOMP_BINDING at a gradcomp.node built for this platform.',
  ].join('\n');
  const err = new GradcompError('ERR_GRADCOMP_NATIVE_LOAD', msg);
  (err as { cause?: unknown }).cause = cause;
  return err;
}

export function loadBinding(): NativeBinding {
  if (cached) return cached;
  const root = packageRoot();
  let binding: NativeBinding;
  try {
    const override = process.env.GRADCOMP_BINDING;
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    binding = override ? require(path.resolve(override)) : require('node-gyp-build')(root);
  } catch (e) {
    throw loadError(root, e);
  }
  if (binding.abi !== expectedAbi()) {
    throw loadError(root, new Error(`addon ABI ${binding.abi} does not match the TypeScript layer's ${expectedAbi()} (rebuild or reinstall so they match)`));
  }
  binding.setErrorFactory(nativeError);
  cached = binding;
  return binding;
}

/**
 * The optional MPI addon, undefined with the reason: GRADCOMP_MPI_BINDING, else a checkout's
 * build (native/mpi/build/Release), else the package's prebuilt one (prebuilds/<platform>-<arch>/mpi,
 * linked against Open MPI's libmpi.so.40).
 */
export function loadMpiBinding(): { binding?: MpiBinding; reason: string } {
  const root = packageRoot();
  const candidates = [path.join(root, 'native', 'mpi', 'build', 'Release', 'gradcomp_mpi.node'),
    path.join(root, 'prebuilds', `${process.platform}-${process.arch}`, 'mpi', 'gradcomp_mpi.node')];
  const file = process.env.GRADCOMP_MPI_BINDING ?? candidates.find((f) => fs.existsSync(f)) ?? candidates[1];
  if (!fs.existsSync(file)) {
    return { reason: `no MPI addon for ${process.platform}-${process.arch} (looked for ${candidates.join(' and ')}); build one against your MPI: ` +
      'npm run build:mpi in a checkout, or see the README (Launching: mpirun) to build it from the installed package' };
  }
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const binding = require(file) as MpiBinding;
    if (binding.abi !== expectedAbi()) return { reason: `the MPI addon ${file} has ABI ${binding.abi}; this gradcomp expects ${expectedAbi()} (rebuild it: npm run build:mpi)` };
    binding.setErrorFactory(nativeError);
    return { binding, reason: `MPI addon loaded from ${file}` };
  } catch (e) {
    const msg = e instanceof Error ? e.message.split('\n')[0] : String(e);
    const hint = /libmpi/.test(msg) ? ' (the prebuilt addon needs Open MPI 4 or 5\'s libmpi.so.40: apt-get install openmpi-bin, or rebuild it against your MPI)' : '';
    return { reason: `the MPI addon ${file} failed to load: ${msg}${hint}` };
  }
}


export type CudaLoad =
  | { binding: CudaBinding; from: string; reason?: undefined }
  | { binding?: undefined; reason: 'not-installed' | 'version-mismatch' | 'dlopen'; message: string };

/**
 * The optional CUDA addon (specs/packaging.md §4.3): GRADCOMP_CUDA_BINDING, then the
 * per-platform package @gradcomp/cuda-<platform>-<arch>, then a development build in
 * build-cuda/Release. Never throws: a missing or broken addon is a reason, not an error.
 */
export function loadCudaBinding(): CudaLoad {
  const pkg = `@gradcomp/cuda-${process.platform}-${process.arch}`;
  let file = process.env.GRADCOMP_CUDA_BINDING;
  if (!file) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      file = (require(pkg) as { bindingPath: string }).bindingPath;
    } catch {
      const dev = path.join(packageRoot(), 'build-cuda', 'Release', 'gradcomp_cuda.node');
      if (fs.existsSync(dev)) file = dev;
    }
  }
  if (!file) return { reason: 'not-installed', message: `no CUDA addon: ${pkg} is not installed and there is no development build (npm run build:cuda needs nvcc)` };
  let binding: CudaBinding;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    binding = require(path.resolve(file)) as CudaBinding;
  } catch (e) {
    return { reason: 'dlopen', message: `the CUDA addon ${file} failed to load: ${e instanceof Error ? e.message : String(e)}` };
  }
  if (binding.abi !== expectedAbi()) {
    return { reason: 'version-mismatch', message: `the CUDA addon ${file} has ABI ${binding.abi}; this gradcomp expects ${expectedAbi()} (reinstall so the versions match)` };
  }
  binding.setErrorFactory(nativeError);
  return { binding, from: file };
}
