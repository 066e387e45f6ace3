/** Runtime settings and the backend report. */
import { loadBinding, packageRoot } from '../native/loader';
import { intArg } from './validate';

/** Threads one kernel call may use (caller included); default: all cores. */
export function setConcurrency(n: number): void {
  loadBinding().setConcurrency(intArg(n, 'n', 1, 256));
}

export function concurrency(): number {
  return loadBinding().concurrency();
}

export interface BackendInfo {
  /** The backend ops run on. */
  backend: 'cpu';
  /** The SIMD level chosen at run time: 'avx512', 'avx2' or 'scalar' (GRADCOMP_ISA caps it). */
  isa: string;
  concurrency: number;
  /** Why each backend was chosen or skipped. */
  reasons: string[];
  versions: { gradcomp: string; node: string; napi: string };
}

/** What gradcomp runs on and why. */
export function backendInfo(): BackendInfo {
  const b = loadBinding();
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const version: string = require(`${packageRoot()}/package.json`).version;
  return {
    backend: 'cpu',
    isa: b.isa(),
    concurrency: b.concurrency(),
    reasons: [
      `cpu: native addon loaded, ${b.isa()} kernels selected at run time`,
      'cuda: no CUDA addon is part of this build',
    ],
    versions: { gradcomp: version, node: process.versions.node, napi: String(process.versions.napi) },
  };
}
