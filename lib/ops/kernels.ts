/**
 * The kernels the compressors, optimizers and communicators run on whole tensors (internal:
 * not re-exported by the package). Each is one validated call into the op table; host arrays
 * only. The `...Async` forms run off the main thread with their inputs pinned.
 */
import { kernels as k, runAsync, runSync } from '../backend';
import type { Tensor } from '../tensor/tensor';
import { unwrap } from './validate';
const kernelOps = k; // (gemm's k is its depth)

type Seed = number | bigint;
const seed64 = (s: Seed): [number, number] => {
  const v = BigInt(s) & 0xffffffffffffffffn;
  return [Number(v & 0xffffffffn), Number(v >> 32n)];
};

/** out = a + b (out may be a or b). */
export const vecAdd = (out: Float32Array, a: Float32Array, b: Float32Array): void => { runSync(k.vecAdd, { out, a, b }); };
/** x *= s. */
export const vecScale = (x: Float32Array, s: number): void => { runSync(k.vecScale, { x, s }); };
/** y += s * x. */
export const vecAxpy = (y: Float32Array, x: Float32Array, s = 1): void => { runSync(k.vecAxpy, { y, x, s }); };
/** y = b * y + s * x in one pass (a momentum update: b the momentum, s 1). */
export const vecAxpby = (y: Float32Array, x: Float32Array, s: number, b: number): void => { runSync(k.vecAxpby, { y, x, s, b }); };
/** s += eta * x * y elementwise (each element in float64, rounded once). */
export const vecMulAdd = (s: Float32Array, x: Float32Array, y: Float32Array, eta = 1): void => { runSync(k.vecMulAdd, { s, x, y, eta }); };
/** out[r] = the sum of squares of row r of x (rows of `cols` elements), in float64. */
export const rowsSumSq = (x: Float32Array, cols: number, out: Float64Array): void => { runSync(k.rowsSumSq, { x, cols, out }); };
/**
 * TracIn's factorized score on the CPU or, with float32 CUDA tensors, the GPU (the same bits):
 * s[i m + j] += eta (a_i . b_j)(d_i . e_j), with a, d of n rows and b, e of m rows (p and c floats).
 */
export const tracinScore = async (a: F32, b: F32, d: F32, e: F32, dims: { n: number; m: number; p: number; c: number }, eta: number, s: F32): Promise<void> => {
  await runAsync(k.tracinScore, { a: unwrap(a), b: unwrap(b), d: unwrap(d), e: unwrap(e), ...dims, eta, s: unwrap(s) } as never);
};
/** tracinScore on host arrays, on this thread. */
export const tracinScoreSync = (a: Float32Array, b: Float32Array, d: Float32Array, e: Float32Array, dims: { n: number; m: number; p: number; c: number }, eta: number, s: Float32Array): void => {
  runSync(k.tracinScore, { a, b, d, e, ...dims, eta, s });
};
/** Row sums of squares on the CPU or, with CUDA tensors (float32 in, float64 out), the GPU. */
export const rowsSumSqAsync = async (x: F32, cols: number, out: Float64Array | Tensor<'float64', 'cuda'>): Promise<void> => {
  await runAsync(k.rowsSumSq, { x: unwrap(x), cols, out: unwrap(out) } as never);
};
type F32 = Float32Array | Tensor<'float32', 'cuda'>;
/** Sum of squares (float64, the same bits on any thread count). */
export const sumSquares = (x: Float32Array): number => runSync(k.normSum, { x, kind: 0 }).value as number;
/** Sum of |x| (float64, fixed order). */
export const sumAbs = (x: Float32Array): number => runSync(k.normSum, { x, kind: 1 }).value as number;
/** out[idx[j]] += scale * vals[j]; throws ERR_GRADCOMP_CORRUPT_PAYLOAD unless idx is strictly ascending and in range. */
export const scatterAdd = (out: Float32Array, idx: Uint32Array, vals: Float32Array, scale = 1): void => {
  runSync(k.scatterAdd, { out, idx, vals, scale });
};
/** c = alpha op(a) op(b) + beta c, row-major (a: m x k or k x m when ta; b: k x n or n x k when tb); each element summed over k in order. */
export const gemm = (ta: boolean, tb: boolean, m: number, n: number, k: number, a: Float32Array, b: Float32Array, c: Float32Array, alpha = 1, beta = 0): void => {
  runSync(kernelOps.gemm, { ta, tb, m, n, k, alpha, a, b, beta, c });
};
/** dst = ((data[o_0 + i] op data[o_1 + i]) op ...) for the element offsets o_j, in order, in one pass. */
export const reduceMany = (dst: Float32Array | Float64Array, data: Float32Array | Float64Array, offsets: Uint32Array, op: 0 | 1): void => {
  runSync(k.reduceMany, { dst, data, offsets, op });
};
/** dst = dst + src (op 0) or max (op 1), elementwise. */
export const reduceInto = (dst: Float32Array | Float64Array, src: Float32Array | Float64Array, op: 0 | 1): void => {
  runSync(k.reduceInto, { dst, src, op });
};
/** Copies src's bytes into dst (same byte length; views of shared memory welcome), split across the pool. */
export const copyInto = (dst: ArrayBufferView, src: ArrayBufferView): void => {
  if (dst.byteLength < 1 << 16) { new Uint8Array(dst.buffer, dst.byteOffset, dst.byteLength).set(new Uint8Array(src.buffer, src.byteOffset, src.byteLength)); return; }
  runSync(k.copyBytes, { dst: new Uint8Array(dst.buffer, dst.byteOffset, dst.byteLength), src: new Uint8Array(src.buffer, src.byteOffset, src.byteLength) });
};
/** A thread-count independent CRC32C tree of the bytes of any typed array (checkpoints, identical-model checks). */
export const checksum = (x: ArrayBufferView): number => runSync(k.checksum, { bytes: new Uint8Array(x.buffer, x.byteOffset, x.byteLength) }).value as number;
/** Philox fill: kind 0 uniform [0, 1), 1 standard normal. */
export const philoxFill = (out: Float32Array, seed: Seed, step: number, stream: number, kind: 0 | 1): void => {
  runSync(k.philoxFill, { out, seed: seed64(seed), step, stream, kind });
};
/** k distinct ascending indices in [0, n), the same for every worker sharing (seed, step, stream). */
export const randkSupport = (n: number, kk: number, seed: Seed, step: number, stream: number): Uint32Array =>
  runSync(k.randkSupport, { n, k: kk, seed: seed64(seed), step, stream }).a.out as Uint32Array;
export const dgcAccumulate = (g: Float32Array, u: Float32Array, v: Float32Array, momentum: number, nesterov: boolean, clip: number): void => {
  runSync(k.dgcAccumulate, { g, u, v, momentum, nesterov, clip });
};

/** Scaled sign with error feedback, fused; returns the float32 scale. grad null: encode the residual alone. */
export const efsignEncode = (grad: Float32Array | null, residual: Float32Array, bits: Uint8Array): number =>
  runSync(k.efsignEncode, { grad, residual, bits }).value as number;
export const efsignEncodeAsync = async (grad: Float32Array | null, residual: Float32Array, bits: Uint8Array): Promise<number> =>
  (await runAsync(k.efsignEncode, { grad, residual, bits })).value as number;
/** bit i = x[i] < 0; returns sum |x|. */
/** Blockwise scaled sign with error feedback (see the op table). */
export const efsignEncodeBlocks = (grad: Float32Array | null, residual: Float32Array, block: number, bits: Uint8Array, scales: Float32Array): void => {
  runSync(k.efsignEncodeBlocks, { grad, residual, block, bits, scales });
};
export const signUnpackAddBlocks = (bits: Uint8Array, block: number, scales: Float32Array, out: Float32Array): void => {
  runSync(k.signUnpackAddBlocks, { bits, block, scales, out });
};
/** AdaComp's selection (R += dW, bin-local rule); returns the count and sum |G| over the selected. */
export const adacompSelect = (dW: Float32Array, R: Float32Array, bin: number, sel: Uint32Array): [number, number] =>
  runSync(k.adacompSelect, { dW, R, bin, sel }).value as [number, number];
export const adacompEmit = (R: Float32Array, sel: Uint32Array, m: number, scale: number, idx: Uint32Array, signs: Uint8Array): void => {
  runSync(k.adacompEmit, { R, sel, m, scale, idx, signs });
};
export const adacompDecodeAdd = (idx: Uint32Array, signs: Uint8Array, scale: number, out: Float32Array): void => {
  runSync(k.adacompDecodeAdd, { idx, signs, scale, out });
};
export const signPack = (x: Float32Array, bits: Uint8Array): number => runSync(k.signPack, { x, bits }).value as number;
export const signUnpackAdd = (bits: Uint8Array, out: Float32Array, scale: number): void => { runSync(k.signUnpackAdd, { bits, out, scale }); };
/** Every rank's sign bits at once: mode 0 the average of scale * sign, mode 1 the majority vote. */
export const signDecodeAll = (data: Uint8Array, offsets: Uint32Array, scales: Float32Array | null, out: Float32Array, mode: 0 | 1,
  divisor = 1): void => { runSync(k.signDecodeAll, { data, offsets, scales, out, mode, divisor }); };
/** kind 0 fp16, 1 bf16, 2 fp16 saturating. */
export const halfPack = (x: Float32Array, out: Uint16Array, kind: 0 | 1 | 2): void => { runSync(k.halfPack, { x, out, kind }); };
export const halfUnpackAdd = (h: Uint16Array, out: Float32Array, kind: 0 | 1): void => { runSync(k.halfUnpackAdd, { h, out, kind }); };

/** QSGD payload (as written by qsgdEncode) decoded and added into out. */
export const qsgdDecodeAdd = (payload: Uint8Array, out: Float32Array): void => {
  runSync(k.qsgdDecode, { payload, n: out.length, out, accumulate: true });
};
/** out = scale * the sum of the QSGD payloads data[spans[2j] .. + spans[2j + 1]] in order (each validated; out written once). */
export const qsgdDecodeSum = (data: Uint8Array, spans: Float64Array, out: Float32Array, scale: number): void => {
  runSync(k.qsgdDecodeSum, { data, spans, n: out.length, out, scale });
};
export const qsgdEncodeInto = (x: Float32Array, levels: number, bucket: number, norm: 0 | 1, seed: Seed, step: number, tensorId: number,
  payload: Uint8Array): void => {
  runSync(k.qsgdEncode, { x, levels, bucket, norm, seed: seed64(seed), step, tensorId, bytes: payload.length, payload });
};

/** PowerSGD halves: phase 1 P = M Q; phase 2 Q = Mᵀ P. */
export const powerSgdPhase = (m: Float32Array, q: Float32Array, p: Float32Array, batch: number, rows: number, cols: number, rank: number,
  phase: 1 | 2): void => { runSync(k.powerSgdPhase, { m, q, p, batch, rows, cols, rank, phase }); };
/** e = g + e, then P = e Q (PowerSGD's first half with the error-feedback sum fused in). */
export const powerSgdMqAdd = (e: Float32Array, g: Float32Array, q: Float32Array, p: Float32Array, rows: number, cols: number, rank: number): void => {
  runSync(k.powerSgdMqAdd, { m: e, g, q, p, batch: 1, rows, cols, rank });
};
export const orthonormalizeInPlace = (p: Float32Array, batch: number, rows: number, rank: number): void => {
  runSync(k.orthonormalize, { p, batch, rows, rank });
};
/** out = P Qᵀ; with a residual holding M: residual = M - out, in the same pass. */
export const powerSgdReconstruct = (p: Float32Array, q: Float32Array, rows: number, cols: number, rank: number, out: Float32Array,
  residual: Float32Array | null): void => {
  runSync(k.powerSgdReconstruct, { p, q, rows, cols, rank, out, m: null, residual, inPlace: residual !== null });
};

export interface SgdArgs { lr: number; momentum: number; dampening: number; weightDecay: number; nesterov: boolean; gradScale?: number }
/**
 * A gradient given as its low-rank factors, g = P Qᵀ, not yet formed (PowerSGD's average): P is
 * rows x rank and Q cols x rank, row-major. `residual`, when given, is the error-feedback memory:
 * whoever forms or applies g also does residual -= g in the same pass.
 */
export interface LowRankGrad { p: Float32Array; q: Float32Array; rows: number; cols: number; rank: number; residual: Float32Array | null }
/** g = P Qᵀ, residual -= g (when given) and the SGD update of w with g, in one pass (g never written): off the main thread. */
export const powerSgdReconstructSgdAsync = async (p: Float32Array, q: Float32Array, rows: number, cols: number, rank: number,
  residual: Float32Array | null, w: Float32Array, buf: Float32Array | null, o: SgdArgs, first: boolean): Promise<void> => {
  await runAsync(k.powerSgdReconstructSgd, { p, q, rows, cols, rank, residual, w, buf, ...o, first });
};
/** Synchronous twin of {@link powerSgdReconstructSgdAsync}. */
export const powerSgdReconstructSgd = (p: Float32Array, q: Float32Array, rows: number, cols: number, rank: number,
  residual: Float32Array | null, w: Float32Array, buf: Float32Array | null, o: SgdArgs, first: boolean): void => {
  runSync(k.powerSgdReconstructSgd, { p, q, rows, cols, rank, residual, w, buf, ...o, first });
};
/** One SGD update of w from g (momentum buffer `buf` when momentum > 0; `first` starts it). */
export const sgdStep = (w: Float32Array, g: Float32Array, buf: Float32Array | null, o: SgdArgs, first: boolean): void => {
  runSync(k.sgdStep, { w, g, buf, ...o, first });
};
export const sgdStepAsync = async (w: Float32Array, g: Float32Array, buf: Float32Array | null, o: SgdArgs, first: boolean): Promise<void> => {
  await runAsync(k.sgdStep, { w, g, buf, ...o, first });
};
/**
 * A gradient given sparse, not yet formed: the parts' (index, value) entries concatenated,
 * `counts[r]` of them in part r, each part's indices strictly ascending; g is their sum in part
 * order (what decoding every worker's top-k payload into zeros gives).
 */
export interface SparseGrad { indices: Uint32Array; values: Float32Array; counts: Uint32Array }
/** The SGD update of w with a sparse g (sgdStep's bits; g never written): off the main thread. */
export const sgdSparseStepAsync = async (w: Float32Array, g: SparseGrad, buf: Float32Array | null, o: SgdArgs, first: boolean): Promise<void> => {
  await runAsync(k.sgdSparseStep, { w, buf, indices: g.indices, values: g.values, counts: g.counts, ...o, first });
};
/** Synchronous twin of {@link sgdSparseStepAsync}. */
export const sgdSparseStep = (w: Float32Array, g: SparseGrad, buf: Float32Array | null, o: SgdArgs, first: boolean): void => {
  runSync(k.sgdSparseStep, { w, buf, indices: g.indices, values: g.values, counts: g.counts, ...o, first });
};
/**
 * A gradient given as QSGD payloads, not yet decoded: their (byte offset, length) pairs in `data`
 * (the kernels' qsgdDecodeSum layout); g is their sum in payload order.
 */
export interface QuantizedGrad { data: Uint8Array; spans: Float64Array }
/** The SGD update of w with g decoded a tile at a time inside it (qsgdDecodeSum + sgdStep's bits). */
export const qsgdDecodeSgd = (w: Float32Array, g: QuantizedGrad, buf: Float32Array | null, o: SgdArgs, first: boolean): void => {
  runSync(k.qsgdDecodeSgd, { data: g.data, spans: g.spans, w, buf, ...o, first });
};
export interface NovoGradArgs { lr: number; beta1: number; beta2: number; eps: number; weightDecay: number; gradAveraging: boolean; gradScale?: number }
/** One NovoGrad update; v is the tensor's second moment (null on its first step); returns the new v. */
export const novogradStep = (w: Float32Array, g: Float32Array, m: Float32Array, o: NovoGradArgs, v: number | null): number =>
  runSync(k.novogradStep, { w, g, m, ...o, v }).value as number;
