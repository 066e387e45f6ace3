/**
 * Top-k by magnitude, alone or fused with error feedback.
 *
 * Selection rule (the same on every backend): the k entries of largest |v|, compared by the bits
 * of |v|, so NaN ranks above +Infinity, which ranks above every finite value; -0 and +0 tie;
 * ties go to the lower index. Results come back in ascending index order, exactly k of them.
 * NaN policy: a NaN is selected first rather than left to sit in the residual forever, so a
 * diverging run shows up in what is sent.
 */
import { kernels, runAsync, runSync } from '../backend';
import type { Tensor } from '../tensor/tensor';
import { Input, optionsArg, unwrap, wrap } from './validate';

type CudaF32 = Tensor<'float32', 'cuda'>;

export interface TopKResult {
  /** Selected positions, ascending. */
  indices: Uint32Array;
  /** The selected values (for efTopK: of acc = scale * grad + residual). */
  values: Float32Array;
}

export interface DeviceTopKResult {
  /** Selected positions, ascending (a uint32 CUDA tensor of length k). */
  indices: Tensor<'uint32', 'cuda'>;
  /** The selected values (a float32 CUDA tensor of length k). */
  values: Tensor<'float32', 'cuda'>;
}

export interface TopKOptions {
  /** Caller-provided outputs of length k, filled in place (no allocation); CUDA tensors for CUDA inputs. */
  out?: { indices?: Uint32Array | Tensor<'uint32', 'cuda'>; values?: Float32Array | Tensor<'float32', 'cuda'> };
}

export interface EfTopKOptions extends TopKOptions {
  /** Multiplies grad before it joins the residual (e.g. a learning rate); default 1. */
  scale?: number;
}

function args(opts: unknown) {
  const o = optionsArg(opts, 'options', ['out', 'scale']);
  const out = optionsArg(o.out, 'options.out', ['indices', 'values']);
  return { scale: o.scale, indices: unwrap(out.indices), values: unwrap(out.values) };
}

function result(r: { a: { indices: unknown; values: unknown } }): TopKResult {
  return { indices: wrap(r.a.indices), values: wrap(r.a.values) } as TopKResult;
}

/**
 * Fused error-feedback top-k, in one pass over grad and residual:
 * `acc = scale * grad + residual`; returns the k entries of largest |acc| (see the selection
 * rule above) and leaves `residual = acc` with those entries set to 0. So after every call,
 * sent + residual = scale * grad + old residual, exactly.
 *
 * Runs off the main thread; `grad` and `residual` must not be modified until it settles.
 * With CUDA tensors it runs on the GPU (the residual stays there) and returns CUDA tensors.
 *
 * @example
 * const grad = new Float32Array([0.5, -3, 0.25, 2]);
 * const residual = new Float32Array([0.5, 0, 0, -1.5]);
 * const { indices, values } = await efTopK(grad, residual, 2);
 * // indices: [0, 1]  values: [1, -3]  residual: [0, 0, 0.25, 0.5]
 */
export async function efTopK(grad: CudaF32, residual: CudaF32, k: number, opts?: EfTopKOptions): Promise<DeviceTopKResult>;
export async function efTopK(grad: Input<'float32'>, residual: Input<'float32'>, k: number, opts?: EfTopKOptions): Promise<TopKResult>;
export async function efTopK(grad: unknown, residual: unknown, k: number, opts?: EfTopKOptions): Promise<TopKResult | DeviceTopKResult> {
  return result(await runAsync(kernels.efTopK, { grad: unwrap(grad), residual: unwrap(residual), k, ...args(opts) }));
}

/** Synchronous twin of {@link efTopK}: for small tensors (under ~64K elements) or worker code. */
export function efTopKSync(grad: Input<'float32'>, residual: Input<'float32'>, k: number, opts?: EfTopKOptions): TopKResult {
  return result(runSync(kernels.efTopK, { grad: unwrap(grad), residual: unwrap(residual), k, ...args(opts) }));
}

/**
 * The k entries of largest |x| (same rule as efTopK); x is not modified.
 *
 * @example
 * const { indices, values } = await topK(new Float32Array([1, -4, 4, 2]), 2);
 * // indices: [1, 2]  values: [-4, 4]   (|-4| ties |4|: both fit)
 */
export async function topK(x: CudaF32, k: number, opts?: TopKOptions): Promise<DeviceTopKResult>;
export async function topK(x: Input<'float32'>, k: number, opts?: TopKOptions): Promise<TopKResult>;
export async function topK(x: unknown, k: number, opts?: TopKOptions): Promise<TopKResult | DeviceTopKResult> {
  const { indices, values } = args(opts);
  return result(await runAsync(kernels.topK, { x: unwrap(x), k, indices, values }));
}

/** Synchronous twin of {@link topK}. */
export function topKSync(x: Input<'float32'>, k: number, opts?: TopKOptions): TopKResult {
  const { indices, values } = args(opts);
  return result(runSync(kernels.topK, { x: unwrap(x), k, indices, values }));
}
