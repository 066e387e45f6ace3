/**
 * Typed tensor handles. A CPU `Tensor` is a zero-copy view of a TypedArray with a dtype, a
 * shape and a device; `dispose()` (or `using t = ...` via `Symbol.dispose`) releases it, and any
 * later use throws a `DisposedError`. Every op accepts a Tensor or a plain TypedArray.
 *
 * A CUDA tensor (`await t.to('cuda')`, `Tensor.zeros(shape, dtype, 'cuda')`) owns device memory:
 * ops on it run on the GPU and return CUDA tensors, `await t.toArray()` copies it back, and
 * `dispose()` frees the memory once the ops already issued on it are done (a finalizer frees
 * what was never disposed). Reshaped views share the memory: disposing any of them frees it.
 *
 * @example
 * const t = Tensor.from(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]);
 * t.shape; // [2, 3]
 * t.dispose();
 */
import { BYTES, CTORS, DeviceBuffer, download, dtypeOf as backendDtypeOf, isDetached, upload } from '../backend';
import { DisposedError, GradcompError, rangeError, typeError } from '../native/errors';

export type DType = 'float32' | 'float64' | 'int32' | 'uint32' | 'uint8';
export type Device = 'cpu' | 'cuda';

export interface DTypeArrays {
  float32: Float32Array;
  float64: Float64Array;
  int32: Int32Array;
  uint32: Uint32Array;
  uint8: Uint8Array;
}
export type AnyTypedArray = DTypeArrays[DType];

/** The dtype of a TypedArray a Tensor can hold, or undefined (any realm). */
export function dtypeOf(x: unknown): DType | undefined {
  const d = backendDtypeOf(x);
  return d === 'uint16' ? undefined : d;
}
export { isDetached };

const disposeSymbol: symbol = (Symbol as { dispose?: symbol }).dispose ?? Symbol.for('nodejs.dispose');

/** The largest element count a Tensor may have (a TypedArray's limit). */
const MAX_NUMEL = 2 ** 32 - 1;

export class Tensor<D extends DType = DType, V extends Device = Device> {
  readonly dtype: D;
  readonly shape: readonly number[];
  readonly device: V;
  #data: DTypeArrays[D] | null;
  #dev: DeviceBuffer<D> | null;
  #disposed = false;

  private constructor(data: DTypeArrays[D] | null, dtype: D, shape: readonly number[], dev: DeviceBuffer<D> | null = null) {
    this.#data = data;
    this.#dev = dev;
    this.dtype = dtype;
    this.shape = Object.freeze([...shape]);
    this.device = (dev ? 'cuda' : 'cpu') as V;
  }

  /** @internal A CUDA tensor over a device buffer (the op table's outputs). */
  static _wrapDevice<T extends DType>(dev: DeviceBuffer<T>, shape?: readonly number[]): Tensor<T, 'cuda'> {
    return new Tensor<T, 'cuda'>(null, dev.dtype, shape ?? [dev.length], dev);
  }

  /** @internal The device buffer of a live CUDA tensor (throws DisposedError otherwise). */
  get _device(): DeviceBuffer<D> {
    if (this.#disposed || this.#dev === null || this.#dev.storage.freed) throw new DisposedError('Tensor');
    return this.#dev;
  }

  /** A zero-copy view of `data`; `shape` defaults to `[data.length]`. */
  static from<A extends AnyTypedArray>(data: A, shape?: readonly number[]): Tensor<DTypeOfArray<A>, 'cpu'> {
    const dtype = dtypeOf(data);
    if (dtype === undefined) throw typeError('data', 'a Float32Array, Float64Array, Int32Array, Uint32Array or Uint8Array', data);
    if (isDetached(data)) throw new GradcompError('ERR_GRADCOMP_DETACHED', 'Expected an attached buffer for data but its ArrayBuffer was detached', 'data');
    const s = shape === undefined ? [data.length] : checkShape(shape, 'shape');
    if (numel(s) !== data.length) throw rangeError('shape', `a shape with ${data.length} elements`, `[${s.join(', ')}]`);
    return new Tensor(data as unknown as DTypeArrays[DTypeOfArray<A>], dtype as DTypeOfArray<A>, s);
  }

  /** A new zero-filled tensor, on the CPU (default) or on the GPU (`device` 'cuda'). */
  static zeros<T extends DType = 'float32', W extends Device = 'cpu'>(shape: readonly number[], dtype?: T, device?: W): Tensor<T, W> {
    const d = (dtype ?? 'float32') as T;
    if (!(d in BYTES) || (d as string) === 'uint16') throw typeError('dtype', 'one of float32, float64, int32, uint32, uint8', dtype);
    if (device !== undefined && device !== 'cpu' && device !== 'cuda') throw typeError('device', "'cpu' or 'cuda'", device);
    const s = checkShape(shape, 'shape');
    if (device === 'cuda') return Tensor._wrapDevice(DeviceBuffer.alloc(d, numel(s), true), s) as unknown as Tensor<T, W>;
    return new Tensor(new CTORS[d](numel(s)) as DTypeArrays[T], d, s) as unknown as Tensor<T, W>;
  }

  /** The underlying TypedArray (zero-copy) of a CPU tensor. Throws DisposedError after dispose(). */
  get data(): DTypeArrays[D] {
    if (this.#disposed) throw new DisposedError('Tensor');
    if (this.#dev !== null) {
      throw new GradcompError('ERR_GRADCOMP_INVALID_ARG',
        'Expected a CPU tensor for data but this Tensor lives on cuda: use await tensor.toArray() or await tensor.to(\'cpu\')', 'data');
    }
    if (this.#data === null) throw new DisposedError('Tensor');
    if (isDetached(this.#data) && this.#data.length === 0 && numel(this.shape) > 0) {
      throw new GradcompError('ERR_GRADCOMP_DETACHED', 'the ArrayBuffer behind this Tensor was detached', 'data');
    }
    return this.#data;
  }

  get size(): number {
    return numel(this.shape);
  }

  get disposed(): boolean {
    return this.#disposed || (this.#dev !== null && this.#dev.storage.freed);
  }

  /** Bytes of memory the tensor's elements take. */
  get byteLength(): number {
    return this.size * BYTES[this.dtype];
  }

  /** A view of the same data (same device, same memory) with another shape of the same size. */
  reshape(shape: readonly number[]): Tensor<D, V> {
    const s = checkShape(shape, 'shape');
    if (numel(s) !== this.size) throw rangeError('shape', `a shape with ${this.size} elements`, `[${s.join(', ')}]`);
    if (this.#dev !== null) return new Tensor<D, V>(null, this.dtype, s, this._device);
    return new Tensor<D, V>(this.data, this.dtype, s);
  }

  /** A copy of the data as a new TypedArray (for a CUDA tensor: after the ops issued on it). */
  async toArray(): Promise<DTypeArrays[D]> {
    if (this.#dev === null) return this.data.slice() as DTypeArrays[D];
    const dev = this._device;
    const out = new CTORS[this.dtype](this.size) as DTypeArrays[D];
    await download(dev, out);
    return out;
  }

  /**
   * This tensor on `device`: the same tensor when it is already there, else a copy (CPU to GPU
   * or back). The source must not be modified until the promise settles.
   *
   * @example
   * const g = await Tensor.from(new Float32Array(1 << 20)).to('cuda');
   * const back = await g.to('cpu');
   */
  async to<W extends Device>(device: W): Promise<Tensor<D, W>> {
    if (device !== 'cpu' && device !== 'cuda') throw typeError('device', "'cpu' or 'cuda'", device);
    if ((device as Device) === this.device) {
      if (this.disposed) throw new DisposedError('Tensor');
      return this as unknown as Tensor<D, W>;
    }
    if (device === 'cpu') return Tensor.from(await this.toArray(), this.shape) as unknown as Tensor<D, W>;
    const src = this.data;
    const t = Tensor._wrapDevice(DeviceBuffer.alloc(this.dtype, this.size), this.shape);
    try {
      await upload(t._device, src);
    } catch (e) {
      t.dispose();
      throw e;
    }
    return t as unknown as Tensor<D, W>;
  }

  /**
   * Releases the handle. Idempotent. A CPU tensor leaves its TypedArray to its owner; a CUDA
   * tensor frees its device memory once the ops already issued on it are done.
   */
  dispose(): void {
    this.#disposed = true;
    this.#data = null;
    if (this.#dev !== null) this.#dev.storage.free();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  toString(): string {
    return `Tensor(${this.dtype}, [${this.shape.join(', ')}], ${this.device}${this.disposed ? ', disposed' : ''})`;
  }
}

// Node versions whose Symbol.dispose is missing still get a working `using` via the fallback.
if (disposeSymbol !== (Symbol as { dispose?: symbol }).dispose) {
  Object.defineProperty(Tensor.prototype, disposeSymbol, { value: Tensor.prototype.dispose });
}

export type DTypeOfArray<A> = A extends Float32Array ? 'float32' : A extends Float64Array ? 'float64' : A extends Int32Array
  ? 'int32' : A extends Uint32Array ? 'uint32' : 'uint8';

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function checkShape(shape: readonly number[], param: string): number[] {
  if (!Array.isArray(shape)) throw typeError(param, 'an array of non-negative integers', shape);
  for (const d of shape) {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) throw typeError(param, 'an array of non-negative integers', shape);
  }
  const n = numel(shape);
  if (!Number.isSafeInteger(n) || n > MAX_NUMEL) throw rangeError(param, `a shape with at most ${MAX_NUMEL} elements`, `[${shape.join(', ')}]`);
  return [...shape];
}
