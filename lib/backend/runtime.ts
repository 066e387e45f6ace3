/**
 * Runtime settings and the backend decision (specs/packaging.md §4.3).
 *
 * The backend comes from setBackend(), else GRADCOMP_BACKEND, else 'auto'. 'auto' uses CUDA when
 * the CUDA addon loads and its probe finds a usable device, falls back to the CPU silently when
 * the addon is not installed or no driver is present, and warns once (code
 * GRADCOMP_CUDA_UNAVAILABLE) when a GPU is there but unusable. 'cuda' throws
 * ERR_GRADCOMP_BACKEND_UNAVAILABLE saying why. The decision is memoized; backendInfo() reports it
 * with the reasons.
 */
import { GradcompError, rangeError, typeError } from '../native/errors';
import type { CudaBinding, CudaProbe } from '../native/binding';
import { loadBinding, loadCudaBinding, packageRoot } from '../native/loader';

export type BackendChoice = 'auto' | 'cpu' | 'cuda';

/** Threads one kernel call may use (caller included); default: all cores. */
export function setConcurrency(n: number): void {
  if (typeof n !== 'number' || !Number.isInteger(n)) throw typeError('n', 'an integer', n);
  if (n < 1 || n > 256) throw rangeError('n', 'an integer in [1, 256]', n);
  loadBinding().setConcurrency(n);
}

export function concurrency(): number {
  return loadBinding().concurrency();
}

export interface BackendInfo {
  /** The backend ops run on. */
  backend: 'cpu' | 'cuda';
  /** What was asked for: setBackend(), GRADCOMP_BACKEND, or 'auto'. */
  requested: BackendChoice;
  /** The SIMD level chosen at run time: 'avx512', 'avx2' or 'scalar' (GRADCOMP_ISA caps it). */
  isa: string;
  concurrency: number;
  /** The CUDA probe, when the CUDA addon loaded. */
  cuda: CudaProbe | null;
  /** Why each backend was chosen or skipped. */
  reasons: string[];
  versions: { gradcomp: string; node: string; napi: string };
}

interface Decision {
  backend: 'cpu' | 'cuda'; requested: BackendChoice; cuda: CudaProbe | null; cudaReason: string; binding?: CudaBinding;
}

let requestedByCall: BackendChoice | undefined;
let decided: Decision | undefined;
let warned = false;

function requested(): BackendChoice {
  const r = requestedByCall ?? process.env.GRADCOMP_BACKEND ?? 'auto';
  if (r !== 'auto' && r !== 'cpu' && r !== 'cuda') throw typeError('GRADCOMP_BACKEND', "'auto', 'cpu' or 'cuda'", r);
  return r;
}

function decide(): Decision {
  const req = requested();
  if (decided && decided.requested === req) return decided;
  let d: Decision;
  if (req === 'cpu') d = { backend: 'cpu', requested: req, cuda: null, cudaReason: "cuda: not tried (backend 'cpu' requested)" };
  else {
    const load = loadCudaBinding();
    if (!load.binding) {
      d = { backend: 'cpu', requested: req, cuda: null, cudaReason: `cuda: ${load.reason}: ${load.message}` };
      if (req === 'auto' && load.reason !== 'not-installed') warnOnce(d.cudaReason);
    } else {
      const p = load.binding.probe();
      const where = p.devices.map((x) => `${x.name} (sm_${x.cc.replace('.', '')})`).join(', ');
      if (p.status === 'ok') {
        d = { backend: 'cuda', requested: req, cuda: p, binding: load.binding,
          cudaReason: `cuda: ${where} in use (driver ${p.driverVersion}, runtime ${p.runtimeVersion}; addon ${load.from})` };
      } else {
        d = { backend: 'cpu', requested: req, cuda: p, cudaReason: `cuda: ${p.status}${p.detail ? `: ${p.detail}` : ''}` };
        if (req === 'auto' && p.status !== 'no-driver') warnOnce(d.cudaReason);
      }
    }
    if (req === 'cuda' && d.backend !== 'cuda') {
      const err = new GradcompError('ERR_GRADCOMP_BACKEND_UNAVAILABLE', `backend 'cuda' was requested but cannot be used: ${d.cudaReason.replace(/^cuda: /, '')}`, 'backend');
      throw err;
    }
  }
  decided = d;
  return d;
}

function warnOnce(message: string): void {
  if (warned) return;
  warned = true;
  process.emitWarning(`gradcomp: a GPU was found but cannot be used, running on the CPU (${message})`, { code: 'GRADCOMP_CUDA_UNAVAILABLE' });
}

/**
 * The CUDA addon, for device tensors and the ops on them; throws ERR_GRADCOMP_BACKEND_UNAVAILABLE
 * with the reason when the CUDA backend is not in use (not installed, no GPU, or setBackend('cpu')).
 */
export function cudaBackend(what: string): CudaBinding {
  const d = decide();
  if (d.backend !== 'cuda' || !d.binding) {
    throw new GradcompError('ERR_GRADCOMP_BACKEND_UNAVAILABLE',
      `${what} needs the CUDA backend, which is not in use (${d.cudaReason.replace(/^cuda: /, '')})`, 'device');
  }
  return d.binding;
}

/** Chooses the backend for this process (overrides GRADCOMP_BACKEND); 'cuda' throws if unusable. */
export function setBackend(backend: BackendChoice): BackendInfo {
  if (backend !== 'auto' && backend !== 'cpu' && backend !== 'cuda') throw typeError('backend', "'auto', 'cpu' or 'cuda'", backend);
  const before = requestedByCall;
  requestedByCall = backend;
  try {
    return backendInfo();
  } catch (e) {
    requestedByCall = before;
    throw e;
  }
}

/** What gradcomp runs on and why. */
export function backendInfo(): BackendInfo {
  const b = loadBinding();
  const d = decide();
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const version: string = require(`${packageRoot()}/package.json`).version;
  return {
    backend: d.backend,
    requested: d.requested,
    isa: b.isa(),
    concurrency: b.concurrency(),
    cuda: d.cuda,
    reasons: [`cpu: native addon loaded, ${b.isa()} kernels selected at run time`, d.cudaReason],
    versions: { gradcomp: version, node: process.versions.node, napi: String(process.versions.napi) },
  };
}
