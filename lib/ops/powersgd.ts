/**
 * PowerSGD's rank-r power step (Vogels, Karimireddy, Jaggi, NeurIPS'19), the compute half of
 * one compression round: P = M Q, orthonormalize P's columns, Q = Mᵀ P. The approximation of M
 * is P Qᵀ. Communication is not done here: in a distributed step P is allreduced between the
 * two halves (lib/compress runs those rounds).
 *
 * Orthonormalization: modified Gram-Schmidt applied twice with fp64 dot products. A column of P
 * that is zero or lies in the span of the previous ones (rank > min(rows, cols), a rank-deficient
 * or all-zero M) becomes an exact zero column, never NaN.
 */
import { kernels, runAsync, runSync } from '../backend';
import type { Tensor } from '../tensor/tensor';
import { Input, onDevice, optionsArg, unwrap, wrap } from './validate';

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

function stepArgs(args: unknown) {
  const a = optionsArg(args, 'args', ['m', 'q', 'rows', 'cols', 'rank', 'batch', 'p']);
  return { m: unwrap(a.m), q: unwrap(a.q), rows: a.rows, cols: a.cols, rank: a.rank, batch: a.batch, p: unwrap(a.p) };
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
  const q = (args as { q?: unknown } | null)?.q;
  const r = await runAsync(kernels.powerSgdStep, stepArgs(args));
  return { p: wrap(r.a.p), q: onDevice(q) ? q : r.a.q } as PowerSgdStepResult;
}

/** Synchronous twin of {@link powerSgdStep}. */
export function powerSgdStepSync(args: PowerSgdStepArgs): PowerSgdStepResult {
  const r = runSync(kernels.powerSgdStep, stepArgs(args));
  return { p: r.a.p as Float32Array, q: r.a.q as Float32Array };
}

function orthoArgs(p: unknown, shape: unknown) {
  const s = optionsArg(shape, 'shape', ['rows', 'rank', 'batch']);
  return { p: unwrap(p), rows: s.rows, rank: s.rank, batch: s.batch };
}

/** Orthonormalizes the columns of batch x (rows x rank) matrices in place (the guarded MGS above). */
export function orthonormalizeSync(p: Float32Array, shape: { rows: number; rank: number; batch?: number }): Float32Array {
  return runSync(kernels.orthonormalize, orthoArgs(p, shape)).a.p as Float32Array;
}

/** Orthonormalizes the columns of batch x (rows x rank) matrices in place; CUDA tensors in one launch (rank <= 32). */
export async function orthonormalize(p: Tensor<'float32', 'cuda'>, shape: { rows: number; rank: number; batch?: number }): Promise<Tensor<'float32', 'cuda'>>;
export async function orthonormalize(p: Float32Array, shape: { rows: number; rank: number; batch?: number }): Promise<Float32Array>;
export async function orthonormalize(p: unknown, shape: { rows: number; rank: number; batch?: number }): Promise<unknown> {
  await runAsync(kernels.orthonormalize, orthoArgs(p, shape));
  return p;
}
