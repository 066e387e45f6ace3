/** Collectives derived from the primitive ones, shared by every backend. */
import { GradcompError, typeError } from '../native/errors';
import type { Communicator, Numeric, NumericOf, NumericType, ReduceOp } from './types';

/** The array constructor of each element type. */
export const NUMERIC_CTORS = { float32: Float32Array, float64: Float64Array, int32: Int32Array, uint32: Uint32Array, uint8: Uint8Array } as const;

/** alloc()'s checks: an integer length a typed array can hold, and one of the element types. Returns the constructor. */
export function allocArgs(length: unknown, dtype: unknown): { length: number; Ctor: (typeof NUMERIC_CTORS)[NumericType] } {
  if (typeof length !== 'number' || !Number.isInteger(length) || length < 0 || length > 2 ** 32 - 1) throw typeError('length', 'an integer in [0, 2^32 - 1]', length);
  if (dtype !== undefined && (typeof dtype !== 'string' || !Object.prototype.hasOwnProperty.call(NUMERIC_CTORS, dtype))) {
    throw typeError('dtype', Object.keys(NUMERIC_CTORS).map((k) => `'${k}'`).join(', '), dtype);
  }
  return { length, Ctor: NUMERIC_CTORS[(dtype ?? 'float32') as NumericType] };
}

export abstract class DerivedCollectives implements Pick<Communicator, 'gather' | 'scatter' | 'reduceScatter' | 'alloc'> {
  abstract readonly rank: number;
  abstract readonly size: number;
  abstract allreduce<T extends Float32Array | Float64Array>(buf: T, op?: ReduceOp): Promise<T>;
  abstract gatherv<T extends Numeric>(send: T, root: number): Promise<{ data: T; counts: number[] } | null>;
  abstract scatterv<T extends Numeric>(send: T | null, counts: number[], root: number): Promise<T>;

  /** A plain zeroed array (the local backend overrides this with shared memory). */
  alloc<D extends NumericType = 'float32'>(length: number, dtype?: D): NumericOf<D> {
    const a = allocArgs(length, dtype);
    try { return new a.Ctor(a.length) as NumericOf<D>; } catch {
      throw new GradcompError('ERR_GRADCOMP_OUT_OF_MEMORY', `no memory for a buffer of ${a.length * a.Ctor.BYTES_PER_ELEMENT} bytes`, 'length');
    }
  }

  async gather<T extends Numeric>(send: T, root: number): Promise<T | null> {
    const r = await this.gatherv(send, root);
    if (r && r.counts.some((c) => c !== r.counts[0])) {
      throw new GradcompError('ERR_GRADCOMP_COLLECTIVE_MISMATCH', `rank ${this.rank}: gather needs one count on every rank, got ${r.counts.join(', ')}`, 'send');
    }
    return r ? r.data : null;
  }

  async scatter<T extends Numeric>(send: T | null, count: number, root: number): Promise<T> {
    if (!Number.isInteger(count) || count < 0) throw typeError('count', 'a non-negative integer', count);
    return this.scatterv(send, Array(this.size).fill(count), root);
  }

  /** Reduce buf over ranks; rank r keeps the part counts[r] (equal split when omitted). */
  async reduceScatter<T extends Float32Array | Float64Array>(buf: T, op: ReduceOp = 'sum', counts?: number[]): Promise<T> {
    const c = counts ?? Array.from({ length: this.size }, (_, r) => Math.floor((buf.length * (r + 1)) / this.size) - Math.floor((buf.length * r) / this.size));
    if (c.length !== this.size || c.reduce((a, b) => a + b, 0) !== buf.length) throw typeError('counts', `${this.size} counts summing to ${buf.length}`, counts);
    const all = buf.slice() as T;
    await this.allreduce(all, op);
    const start = c.slice(0, this.rank).reduce((a, b) => a + b, 0);
    return all.slice(start, start + c[this.rank]) as T;
  }
}
