/**
 * PowerSGD's rank-r power step (Vogels, Karimireddy, Jaggi, NeurIPS'19), the compute half of
 * one compression round: P = M Q, orthonormalize P's columns, Q = Mᵀ P. The approximation of M
 * is P Qᵀ. Communication is not done here: in a distributed step P is allreduced between the
 * two halves (lib/compress runs those rounds).
 *
 * Orthonormalization: modified Gram-Schmidt applied twice with fp64 dot products. A column of P
 * that is zero or lies in the span of the previous ones (rank > min(rows, cols), a rank-deficient
 * or all-zero M) becomes an exact zero column, never NaN (specs/compressors.md §4(f)).
 */
import { orthonormalizeCuda, powerSgdCuda } from '../cuda/ops';
import { rangeError } from '../native/errors';
import { loadBinding } from '../native/loader';
import type { Tensor } from '../tensor/tensor';
import { arrayArg, Input, intArg, isCuda, noOverlap, optionsArg, outArg } from './validate';

export interface PowerSgdStepArgs {
  /** batch x rows x cols, row-major (one matrix when batch is 1). */
  m: Input<'float32'>;
  rows: number;
  cols: number;
  /** batch x cols x rank, row-major: the warm start in, Mᵀ P out (written in place). */
  q: Input<'float32'>;
  rank: number;
  /** Matrices of this one shape stored back to back; default 1. */
  batch?: number;
  /** Optional output for P (batch x rows x rank); a CUDA tensor when m is one. */
  p?: Float32Array | Tensor<'float32', 'cuda'>;
}

/** PowerSgdStepArgs with CUDA tensors: the step runs on the GPU (rank <= 32) and P, Q stay there. */
export interface DevicePowerSgdStepArgs extends Omit<PowerSgdStepArgs, 'm' | 'q' | 'p'> {
  m: Tensor<'float32', 'cuda'>;
  q: Tensor<'float32', 'cuda'>;
  p?: Tensor<'float32', 'cuda'>;
}

export interface PowerSgdStepResult {
  /** batch x rows x rank, orthonormal columns (zero columns where P was rank-deficient). */
  p: Float32Array;
  /** The same array as args.q, now holding Mᵀ P. */
  q: Float32Array;
}

const MAX_DIM = 0xffffffff;

function dims(args: unknown) {
  const a = optionsArg(args, 'args');
  const rows = intArg(a.rows, 'rows', 0, MAX_DIM);
  const cols = intArg(a.cols, 'cols', 0, MAX_DIM);
  const rank = intArg(a.rank, 'rank', 1, 1024);
  const batch = a.batch === undefined ? 1 : intArg(a.batch, 'batch', 0, MAX_DIM);
  return { a, rows, cols, rank, batch };
}

function prepare(args: unknown) {
  const { a, rows, cols, rank, batch } = dims(args);
  const m = arrayArg(a.m, 'float32', 'm');
  const q = arrayArg(a.q, 'float32', 'q');
  if (m.length !== batch * rows * cols) throw rangeError('m', `length batch*rows*cols = ${batch * rows * cols}`, m);
  if (q.length !== batch * cols * rank) throw rangeError('q', `length batch*cols*rank = ${batch * cols * rank}`, q);
  const p = outArg(a.p, 'float32', 'p', batch * rows * rank) ?? new Float32Array(batch * rows * rank);
  noOverlap('m', m, 'q', q);
  noOverlap('m', m, 'p', p);
  noOverlap('q', q, 'p', p);
  return { m, q, p, rows, cols, rank, batch };
}

/**
 * One power step; q is updated in place.
 *
 * @example
 * // A rank-1 4x3 matrix is recovered exactly at rank 1: P Qᵀ = M.
 * const m = new Float32Array([1, 2, 3, 2, 4, 6, 3, 6, 9, 4, 8, 12]);
 * const q = new Float32Array([1, 1, 1]);
 * const { p } = await powerSgdStep({ m, rows: 4, cols: 3, q, rank: 1 });
 */
export async function powerSgdStep(args: DevicePowerSgdStepArgs): Promise<{ p: Tensor<'float32', 'cuda'>; q: Tensor<'float32', 'cuda'> }>;
export async function powerSgdStep(args: PowerSgdStepArgs): Promise<PowerSgdStepResult>;
export async function powerSgdStep(args: PowerSgdStepArgs | DevicePowerSgdStepArgs):
Promise<PowerSgdStepResult | { p: Tensor<'float32', 'cuda'>; q: Tensor<'float32', 'cuda'> }> {
  if (args !== null && typeof args === 'object' && isCuda((args as { m?: unknown }).m)) {
    const d = dims(args);
    return powerSgdCuda(d.a.m, d.a.q, d.a.p, d.batch, d.rows, d.cols, d.rank);
  }
  const a = prepare(args);
  await loadBinding().powersgdStep(a.m, a.q, a.p, a.batch, a.rows, a.cols, a.rank, true);
  return { p: a.p, q: a.q };
}

/** Synchronous twin of {@link powerSgdStep}. */
export function powerSgdStepSync(args: PowerSgdStepArgs): PowerSgdStepResult {
  const a = prepare(args);
  loadBinding().powersgdStep(a.m, a.q, a.p, a.batch, a.rows, a.cols, a.rank, false);
  return { p: a.p, q: a.q };
}

/** Orthonormalizes the columns of batch x (rows x rank) matrices in place (the guarded MGS above). */
export function orthonormalizeSync(p: Float32Array, shape: { rows: number; rank: number; batch?: number }): Float32Array {
  const arr = arrayArg(p, 'float32', 'p');
  const s = optionsArg(shape, 'shape');
  const rows = intArg(s.rows, 'shape.rows', 0, MAX_DIM);
  const rank = intArg(s.rank, 'shape.rank', 1, 1024);
  const batch = s.batch === undefined ? 1 : intArg(s.batch, 'shape.batch', 0, MAX_DIM);
  if (arr.length !== batch * rows * rank) throw rangeError('p', `length batch*rows*rank = ${batch * rows * rank}`, arr);
  loadBinding().orthonormalize(arr, batch, rows, rank, false);
  return arr;
}

/** Orthonormalizes the columns of batch x (rows x rank) CUDA matrices in place, all in one launch (rank <= 32). */
export async function orthonormalize(p: Tensor<'float32', 'cuda'>, shape: { rows: number; rank: number; batch?: number }):
Promise<Tensor<'float32', 'cuda'>> {
  const s = optionsArg(shape, 'shape');
  const rows = intArg(s.rows, 'shape.rows', 0, MAX_DIM);
  const rank = intArg(s.rank, 'shape.rank', 1, 1024);
  const batch = s.batch === undefined ? 1 : intArg(s.batch, 'shape.batch', 0, MAX_DIM);
  if (!isCuda(p)) return orthonormalizeSync(arrayArg(p, 'float32', 'p'), { rows, rank, batch }) as never;
  return orthonormalizeCuda(p, batch, rows, rank);
}
