/**
 * Top-k by magnitude, alone or fused with error feedback.
 *
 * Selection rule (the same on every backend): the k entries of largest |v|, compared by the bits
 * of |v|, so NaN ranks above +Infinity, which ranks above every finite value; -0 and +0 tie;
 * ties go to the lower index. Results come back in ascending index order, exactly k of them.
 * NaN policy: a NaN is selected first rather than left to sit in the residual forever, so a
 * diverging run shows up in what is sent.
 */
import { DeviceTopKResult, topkCuda } from '../cuda/ops';
import { GradcompRangeError } from '../native/errors';
import { loadBinding } from '../native/loader';
import type { Tensor } from '../tensor/tensor';
import { arrayArg, cudaArg, Input, intArg, isCuda, noOverlap, numberArg, optionsArg, outArg } from './validate';

export type { DeviceTopKResult } from '../cuda/ops';
type CudaF32 = Tensor<'float32', 'cuda'>;

export interface TopKResult {
  /** Selected positions, ascending. */
  indices: Uint32Array;
  /** The selected values (for efTopK: of acc = scale * grad + residual). */
  values: Float32Array;
}

export interface TopKOptions {
  /** Caller-provided outputs of length k, filled in place (no allocation); CUDA tensors for CUDA inputs. */
  out?: { indices?: Uint32Array | Tensor<'uint32', 'cuda'>; values?: Float32Array | Tensor<'float32', 'cuda'> };
}

export interface EfTopKOptions extends TopKOptions {
  /** Multiplies grad before it joins the residual (e.g. a learning rate); default 1. */
  scale?: number;
}

interface Prepared {
  grad: Float32Array | null;
  residual: Float32Array;
  k: number;
  scale: number;
  indices: Uint32Array;
  values: Float32Array;
}

function prepare(grad: unknown, residual: unknown, k: unknown, opts: unknown, ef: boolean): Prepared {
  const o = optionsArg(opts, 'options');
  const r = arrayArg(residual, 'float32', ef ? 'residual' : 'x');
  const g = ef ? arrayArg(grad, 'float32', 'grad') : null;
  if (g && g.length !== r.length) {
    throw new GradcompRangeError('residual',
      `Expected residual to have the length of grad (${g.length}) but received length ${r.length}`);
  }
  const kk = intArg(k, 'k', 0, r.length);
  const scale = o.scale === undefined ? 1 : numberArg(o.scale, 'options.scale', Number.isFinite, 'a finite number');
  const out = optionsArg(o.out, 'options.out');
  const indices = outArg(out.indices, 'uint32', 'options.out.indices', kk) ?? new Uint32Array(kk);
  const values = outArg(out.values, 'float32', 'options.out.values', kk) ?? new Float32Array(kk);
  if (g) noOverlap('grad', g, 'residual', r);
  for (const [name, a] of [['options.out.indices', indices], ['options.out.values', values]] as const) {
    noOverlap(ef ? 'residual' : 'x', r, name, a);
    if (g) noOverlap('grad', g, name, a);
  }
  noOverlap('options.out.indices', indices, 'options.out.values', values);
  return { grad: g, residual: r, k: kk, scale, indices, values };
}

function onCuda(grad: unknown, x: unknown, k: unknown, opts: unknown, ef: boolean): Promise<DeviceTopKResult> {
  const o = optionsArg(opts, 'options');
  const size = cudaArg(x, 'float32', ef ? 'residual' : 'x').size;
  const kk = intArg(k, 'k', 0, size);
  const scale = o.scale === undefined ? 1 : numberArg(o.scale, 'options.scale', Number.isFinite, 'a finite number');
  const out = optionsArg(o.out, 'options.out');
  return topkCuda(grad, x, kk, scale, out, ef);
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
export async function efTopK(grad: Input<'float32'>, residual: Input<'float32'>, k: number,
  opts?: EfTopKOptions): Promise<TopKResult | DeviceTopKResult> {
  if (isCuda(residual) || isCuda(grad)) return onCuda(grad, residual, k, opts, true);
  const p = prepare(grad, residual, k, opts, true);
  await loadBinding().topk(p.grad, p.residual, p.k, p.scale, p.indices, p.values, true);
  return { indices: p.indices, values: p.values };
}

/** Synchronous twin of {@link efTopK}: for small tensors (under ~64K elements) or worker code. */
export function efTopKSync(grad: Input<'float32'>, residual: Input<'float32'>, k: number,
  opts?: EfTopKOptions): TopKResult {
  const p = prepare(grad, residual, k, opts, true);
  loadBinding().topk(p.grad, p.residual, p.k, p.scale, p.indices, p.values, false);
  return { indices: p.indices, values: p.values };
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
export async function topK(x: Input<'float32'>, k: number, opts?: TopKOptions): Promise<TopKResult | DeviceTopKResult> {
  if (isCuda(x)) return onCuda(null, x, k, opts, false);
  const p = prepare(null, x, k, opts, false);
  await loadBinding().topk(null, p.residual, p.k, 1, p.indices, p.values, true);
  return { indices: p.indices, values: p.values };
}

/** Synchronous twin of {@link topK}. */
export function topKSync(x: Input<'float32'>, k: number, opts?: TopKOptions): TopKResult {
  const p = prepare(null, x, k, opts, false);
  loadBinding().topk(null, p.residual, p.k, 1, p.indices, p.values, false);
  return { indices: p.indices, values: p.values };
}
