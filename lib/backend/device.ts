/**
 * Device memory and the CUDA op queue (internal). Every CUDA call goes through one FIFO queue, so
 * ops run in the order they were issued (an op never starts before the copy that fills its input
 * is done), and a failure rejects only the call that failed. Native failures come back as coded
 * GradcompErrors with the CUDA runtime's text.
 */
import { GradcompError } from '../native/errors';
import type { CudaBinding, DeviceHandle } from '../native/binding';
import { BYTES, DType } from './buffer';
import { cudaBackend } from './runtime';

let tail: Promise<unknown> = Promise.resolve();

/** Runs fn after everything queued before it has settled. */
export function enqueue<T>(fn: () => Promise<T>): Promise<T> {
  const run = tail.then(fn, fn);
  tail = run.catch(() => undefined);
  return run;
}

/** Queues one native call (its failures are already coded by the addon's error factory). */
export function call(op: string, fn: (b: CudaBinding) => Promise<void>): Promise<void> {
  const b = cudaBackend(op);
  return enqueue(() => fn(b));
}

/** A device allocation shared by a tensor and its reshaped views. */
export class DeviceStorage {
  readonly bytes: number;
  #handle: DeviceHandle | null;
  readonly #binding: CudaBinding;

  constructor(binding: CudaBinding, bytes: number, zero: boolean) {
    this.#binding = binding;
    this.bytes = bytes;
    this.#handle = binding.alloc(bytes, zero);
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

/** A typed view of device memory: what the CUDA backend's kernels take and return. */
export class DeviceBuffer<D extends DType = DType> {
  readonly device = 'cuda' as const;
  constructor(readonly storage: DeviceStorage, readonly dtype: D, readonly length: number) {}

  /** New device memory for `length` elements (zero-filled when `zero`). */
  static alloc<T extends DType>(dtype: T, length: number, zero = false): DeviceBuffer<T> {
    return new DeviceBuffer(new DeviceStorage(cudaBackend('a CUDA tensor'), length * BYTES[dtype], zero), dtype, length);
  }

  get handle(): DeviceHandle {
    return this.storage.handle;
  }
}

export function isDeviceBuffer(x: unknown): x is DeviceBuffer {
  return x instanceof DeviceBuffer;
}

/** Live device memory held by gradcomp tensors and their storage. */
export function cudaMemory(): { bytes: number; buffers: number } {
  return cudaBackend('cudaMemory()').memory();
}

/** Waits until every CUDA op issued so far has finished (their errors stay with their callers). */
export function cudaSynchronize(): Promise<void> {
  return enqueue(async () => undefined);
}

/** Copies between host memory and a device buffer (byteOffset into the device buffer). */
export function upload(dst: DeviceBuffer, src: ArrayBufferView, byteOffset = 0): Promise<void> {
  return call("to('cuda')", (b) => b.upload(dst.handle, src, byteOffset));
}
export function download(src: DeviceBuffer, dst: ArrayBufferView, byteOffset = 0): Promise<void> {
  return call('toArray', (b) => b.download(src.handle, dst, byteOffset));
}
