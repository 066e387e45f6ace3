/**
 * Device memory and the CUDA op queue (internal). Every CUDA call goes through one FIFO queue, so
 * ops run in the order they were issued (an op never starts before the copy that fills its input
 * is done), and a failure rejects only the call that failed. Native failures come back as coded
 * GradcompErrors with the CUDA runtime's text.
 */
import { GradcompError, nativeError } from '../native/errors';
import type { CudaBinding, DeviceHandle } from '../native/binding';
import { cudaBackend } from '../ops/runtime';

let tail: Promise<unknown> = Promise.resolve();

/** Runs fn after everything queued before it has settled. */
export function enqueue<T>(fn: () => Promise<T>): Promise<T> {
  const run = tail.then(fn, fn);
  tail = run.catch(() => undefined);
  return run;
}

/** Maps a rejection from the CUDA addon to a coded GradcompError. */
export function cudaError(e: unknown, op: string): Error {
  const err = e as { status?: unknown; detail?: unknown; message?: string };
  if (typeof err?.status !== 'number') return e instanceof Error ? e : new Error(String(e));
  const base = nativeError(err.status, op);
  const detail = typeof err.detail === 'string' && err.detail ? ` (${err.detail})` : '';
  return new GradcompError(base.code, base.message + detail, base.param);
}

/** Queues one native call and maps its failure. */
export function call(op: string, fn: (b: CudaBinding) => Promise<void>): Promise<void> {
  const b = cudaBackend(op);
  return enqueue(() => fn(b).catch((e) => { throw cudaError(e, op); }));
}

/** A device allocation shared by a tensor and its reshaped views. */
export class DeviceStorage {
  readonly bytes: number;
  #handle: DeviceHandle | null;
  readonly #binding: CudaBinding;

  constructor(binding: CudaBinding, bytes: number, zero: boolean) {
    this.#binding = binding;
    this.bytes = bytes;
    try {
      this.#handle = binding.alloc(bytes, zero);
    } catch (e) {
      throw cudaError(e, 'alloc');
    }
  }

  get freed(): boolean {
    return this.#handle === null;
  }

  /** The native handle; throws once freed. */
  get handle(): DeviceHandle {
    if (this.#handle === null) throw new GradcompError('ERR_GRADCOMP_DISPOSED', 'a CUDA tensor was used after dispose()');
    return this.#handle;
  }

  /** Frees the memory after every op queued so far (idempotent). */
  free(): void {
    const h = this.#handle;
    if (h === null) return;
    this.#handle = null;
    void enqueue(async () => this.#binding.free(h));
  }
}

/** Live device memory held by gradcomp tensors and their storage. */
export function cudaMemory(): { bytes: number; buffers: number } {
  return cudaBackend('cudaMemory()').memory();
}

/** Waits until every CUDA op issued so far has finished (their errors stay with their callers). */
export function cudaSynchronize(): Promise<void> {
  return enqueue(async () => undefined);
}
