/**
 * Loads the CPU addon: the only place that requires a `.node` file. node-gyp-build looks in
 * build/Release (a development checkout) and then prebuilds/<platform>-<arch>/ (the published
 * package); GRADCOMP_BINDING=/path/to/gradcomp.node overrides both.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { GradcompError, nativeError } from './errors';
import type { MpiBinding, NativeBinding } from './binding';

/** The addon ABI this TypeScript layer was written against. */
const EXPECTED_ABI = 1;

let cached: NativeBinding | undefined;

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
    `Cause: ${cause instanceof Error ? cause.message : String(cause)}`,
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
  if (binding.abi !== EXPECTED_ABI) {
    throw loadError(root, new Error(`addon ABI ${binding.abi} does not match the TypeScript layer's ${EXPECTED_ABI}`));
  }
  binding.init(nativeError);
  cached = binding;
  return binding;
}

/** The optional MPI addon (native/mpi, built only where mpicc exists); undefined with the reason. */
export function loadMpiBinding(): { binding?: MpiBinding; reason: string } {
  const file = process.env.GRADCOMP_MPI_BINDING ?? path.join(packageRoot(), 'native', 'mpi', 'build', 'Release', 'gradcomp_mpi.node');
  if (!fs.existsSync(file)) return { reason: `the MPI addon is not built (${file} is missing; install openmpi-bin libopenmpi-dev and run npm run build:mpi)` };
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return { binding: require(file) as MpiBinding, reason: `MPI addon loaded from ${file}` };
  } catch (e) {
    return { reason: `the MPI addon failed to load: ${e instanceof Error ? e.message : String(e)}` };
  }
}
