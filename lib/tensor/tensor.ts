/**
 * Typed tensor handles. A CPU `Tensor` is a zero-copy view of a TypedArray with a dtype, a
 * shape and a device; `dispose()` (or `using t = ...` via `Symbol.dispose`) releases it, and any
 * later use throws a `DisposedError`. Every op accepts a Tensor or a plain TypedArray.
 *
 * @example
 * const t = Tensor.from(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]);
 * t.shape; // [2, 3]
 * t.dispose();
 */
import { DisposedError, GradcompError, rangeError, typeError } from '../native/errors';

export type DType = 'float32' | 'float64' | 'int32' | 'uint32' | 'uint8';
export type Device = 'cpu';

export interface DTypeArrays {
  float32: Float32Array;
  float64: Float64Array;
  int32: Int32Array;
  uint32: Uint32Array;
  uint8: Uint8Array;
}
export type AnyTypedArray = DTypeArrays[DType];

const TAG_TO_DTYPE: Record<string, DType> = {
  Float32Array: 'float32',
  Float64Array: 'float64',
  Int32Array: 'int32',
  Uint32Array: 'uint32',
  Uint8Array: 'uint8',
};

const CTORS: { [D in DType]: new (n: number) => DTypeArrays[D] } = {
  float32: Float32Array,
  float64: Float64Array,
  int32: Int32Array,
  uint32: Uint32Array,
  uint8: Uint8Array,
};

/**
 * The dtype of a TypedArray, or undefined. Uses the toString tag, not instanceof, so arrays from
 * another realm (jest's vm contexts, worker_threads) are recognized.
 */
export function dtypeOf(x: unknown): DType | undefined {
  if (!ArrayBuffer.isView(x)) return undefined;
  return TAG_TO_DTYPE[Object.prototype.toString.call(x).slice(8, -1)];
}

/** True when the ArrayBuffer behind `x` has been detached (transferred). */
export function isDetached(x: ArrayBufferView): boolean {
  const buf = x.buffer as ArrayBuffer & { detached?: boolean };
  if (typeof buf.detached === 'boolean') return buf.detached;
  if (buf.byteLength !== 0) return false;
  // Node 20 has no ArrayBuffer#detached: a view cannot be constructed on a detached buffer.
  try {
    new Uint8Array(buf, 0, 0);
    return false;
  } catch {
    return true;
  }
}

const disposeSymbol: symbol = (Symbol as { dispose?: symbol }).dispose ?? Symbol.for('nodejs.dispose');

export class Tensor<D extends DType = DType> {
  readonly dtype: D;
  readonly shape: readonly number[];
  readonly device: Device = 'cpu';
  #data: DTypeArrays[D] | null;

  private constructor(data: DTypeArrays[D], dtype: D, shape: readonly number[]) {
    this.#data = data;
    this.dtype = dtype;
    this.shape = Object.freeze([...shape]);
  }

  /** A zero-copy view of `data`; `shape` defaults to `[data.length]`. */
  static from<A extends AnyTypedArray>(data: A, shape?: readonly number[]): Tensor<DTypeOfArray<A>> {
    const dtype = dtypeOf(data);
    if (dtype === undefined) {
      throw typeError('data', 'a Float32Array, Float64Array, Int32Array, Uint32Array or Uint8Array', data);
    }
    if (isDetached(data)) {
      throw new GradcompError('ERR_GRADCOMP_DETACHED', 'Expected an attached buffer for data but its ArrayBuffer was detached', 'data');
    }
    const s = shape === undefined ? [data.length] : checkShape(shape, 'shape');
    if (numel(s) !== data.length) {
      throw rangeError('shape', `a shape with ${data.length} elements`, `[${s.join(', ')}]`);
    }
    return new Tensor(data as unknown as DTypeArrays[DTypeOfArray<A>], dtype as DTypeOfArray<A>, s);
  }

  /** A new zero-filled tensor. */
  static zeros<T extends DType = 'float32'>(shape: readonly number[], dtype?: T): Tensor<T> {
    const d = (dtype ?? 'float32') as T;
    if (!(d in CTORS)) throw typeError('dtype', `one of ${Object.keys(CTORS).join(', ')}`, dtype);
    const s = checkShape(shape, 'shape');
    return new Tensor(new CTORS[d](numel(s)) as DTypeArrays[T], d, s);
  }

  /** The underlying TypedArray (zero-copy). Throws DisposedError after dispose(). */
  get data(): DTypeArrays[D] {
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
    return this.#data === null;
  }

  /** A view of the same data with another shape of the same size. */
  reshape(shape: readonly number[]): Tensor<D> {
    const s = checkShape(shape, 'shape');
    if (numel(s) !== this.size) throw rangeError('shape', `a shape with ${this.size} elements`, `[${s.join(', ')}]`);
    return new Tensor(this.data, this.dtype, s);
  }

  /** A copy of the data as a new TypedArray (async for symmetry with device tensors). */
  async toArray(): Promise<DTypeArrays[D]> {
    return this.data.slice() as DTypeArrays[D];
  }

  /** Releases the handle. Idempotent; the TypedArray it viewed is left to its owner. */
  dispose(): void {
    this.#data = null;
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

type DTypeOfArray<A> = A extends Float32Array ? 'float32' : A extends Float64Array ? 'float64' : A extends Int32Array
  ? 'int32' : A extends Uint32Array ? 'uint32' : 'uint8';

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function checkShape(shape: readonly number[], param: string): number[] {
  if (!Array.isArray(shape)) throw typeError(param, 'an array of non-negative integers', shape);
  for (const d of shape) {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
      throw typeError(param, 'an array of non-negative integers', shape);
    }
  }
  return [...shape];
}
