/**
 * QSGD stochastic quantization (Alistarh et al., NeurIPS'17), bucketed, with max or L2 norms.
 *
 * Per bucket of `bucketSize` consecutive values with norm L: level = floor(s|x|/L + u) with
 * u ~ U[0, 1) drawn from Philox-4x32-10 keyed by (seed, step, tensorId, element index), so
 * E[decode(encode(x))] = x and the bytes do not depend on thread count or device.
 *
 * Payload (little-endian): a 24-byte header (magic "GCQS", version 1, norm, bits per code,
 * levels, bucketSize, n), one float32 norm per bucket, then n codes of
 * 1 + ceil(log2(levels + 1)) bits packed LSB-first (level in the low bits, sign on top):
 * levels 1 -> 2 bits, 7 -> 4 bits, 127 -> 8 bits.
 *
 * Non-finite policy: a bucket holding NaN or ±Infinity is stored with a NaN norm and decodes
 * to all NaN, so the failure stays visible instead of being rounded away.
 */
import { qsgdDecodeCuda, qsgdEncodeCuda } from '../cuda/ops';
import { describe, GradcompError, GradcompTypeError } from '../native/errors';
import { loadBinding } from '../native/loader';
import type { Tensor } from '../tensor/tensor';
import { arrayArg, Input, intArg, isCuda, noOverlap, optionsArg, outArg, seedArg } from './validate';

export interface QsgdOptions {
  /** s, the number of quantization levels (1..32767). 127 gives 8-bit codes, 7 gives 4-bit. */
  levels: number;
  /** Values per norm; default 512. Smaller buckets: lower variance, more norm bytes. */
  bucketSize?: number;
  /** 'max' (default; "QSGDinf", far lower variance at small s) or 'l2' (the paper's). */
  norm?: 'max' | 'l2';
  /** Random stream key shared by all workers that must round alike (0 .. 2^64 - 1). */
  seed: number | bigint;
  /** Training step: vary it, or every step rounds the same way. Default 0. */
  step?: number;
  /** Distinguishes tensors within a step. Default 0. */
  tensorId?: number;
  /** A caller-provided payload buffer of exactly qsgdPayloadBytes(n, options) bytes (a uint8 CUDA tensor for CUDA input). */
  out?: Uint8Array | Tensor<'uint8', 'cuda'>;
}

export const QSGD_HEADER_BYTES = 24;
const MAX_LEVELS = 32767;
const U32 = 0xffffffff;

interface Prepared { x: Float32Array; levels: number; bucket: number; norm: number; seed: [number, number];
  step: number; tensorId: number; payload: Uint8Array }

function parseOptions(opts: unknown) {
  if (opts === undefined) {
    throw new GradcompTypeError('options', 'Expected an options object with levels and seed for options but received undefined');
  }
  const o = optionsArg(opts, 'options');
  const levels = intArg(o.levels, 'options.levels', 1, MAX_LEVELS);
  const bucket = o.bucketSize === undefined ? 512 : intArg(o.bucketSize, 'options.bucketSize', 1, U32);
  let norm = 0;
  if (o.norm === 'l2') norm = 1;
  else if (o.norm !== undefined && o.norm !== 'max') {
    throw new GradcompTypeError('options.norm', `Expected 'max' or 'l2' for options.norm but received ${describe(o.norm)}`);
  }
  const seed = seedArg(o.seed, 'options.seed');
  const step = o.step === undefined ? 0 : intArg(o.step, 'options.step', 0, U32);
  const tensorId = o.tensorId === undefined ? 0 : intArg(o.tensorId, 'options.tensorId', 0, U32);
  return { o, levels, bucket, norm, seed, step, tensorId };
}

function prepare(x: unknown, opts: unknown): Prepared {
  const arr = arrayArg(x, 'float32', 'x');
  const { o, levels, bucket, norm, seed, step, tensorId } = parseOptions(opts);
  const size = loadBinding().qsgdPayloadBytes(arr.length, levels, bucket);
  const payload = outArg(o.out, 'uint8', 'options.out', size) ?? new Uint8Array(size);
  noOverlap('x', arr, 'options.out', payload);
  return { x: arr, levels, bucket, norm, seed, step, tensorId, payload };
}

/** Bytes of the payload qsgdEncode produces for n values. */
export function qsgdPayloadBytes(n: number, opts: Pick<QsgdOptions, 'levels' | 'bucketSize'>): number {
  intArg(n, 'n', 0, U32);
  const o = optionsArg(opts, 'options');
  const levels = intArg(o.levels, 'options.levels', 1, MAX_LEVELS);
  const bucket = o.bucketSize === undefined ? 512 : intArg(o.bucketSize, 'options.bucketSize', 1, U32);
  return loadBinding().qsgdPayloadBytes(n, levels, bucket);
}

/**
 * Quantizes x into a self-describing payload.
 *
 * @example
 * const x = new Float32Array([0.5, -1, 0.25, 0]);
 * const payload = await qsgdEncode(x, { levels: 127, seed: 42, step: 0 });
 * const y = await qsgdDecode(payload);   // y ≈ x; E[y] = x exactly
 */
export async function qsgdEncode(x: Tensor<'float32', 'cuda'>, opts: QsgdOptions): Promise<Tensor<'uint8', 'cuda'>>;
export async function qsgdEncode(x: Input<'float32'>, opts: QsgdOptions): Promise<Uint8Array>;
export async function qsgdEncode(x: Input<'float32'>, opts: QsgdOptions): Promise<Uint8Array | Tensor<'uint8', 'cuda'>> {
  if (isCuda(x)) {
    const q = parseOptions(opts);
    return qsgdEncodeCuda(x, q.levels, q.bucket, q.norm, q.seed, q.step, q.tensorId, q.o.out);
  }
  const p = prepare(x, opts);
  await loadBinding().qsgdEncode(p.x, p.levels, p.bucket, p.norm, p.seed[0], p.seed[1], p.step, p.tensorId, p.payload, true);
  return p.payload;
}

/** Synchronous twin of {@link qsgdEncode}. */
export function qsgdEncodeSync(x: Input<'float32'>, opts: QsgdOptions): Uint8Array {
  const p = prepare(x, opts);
  loadBinding().qsgdEncode(p.x, p.levels, p.bucket, p.norm, p.seed[0], p.seed[1], p.step, p.tensorId, p.payload, false);
  return p.payload;
}

/** What a QSGD payload's header says (validated against the payload's size). */
export interface QsgdHeader { n: number; levels: number; bucketSize: number; norm: 'max' | 'l2'; bits: number }

function corrupt(why: string): GradcompError {
  return new GradcompError('ERR_GRADCOMP_CORRUPT_PAYLOAD', `Expected a QSGD payload for payload but ${why}`, 'payload');
}

/** Reads and checks a payload's header; throws ERR_GRADCOMP_CORRUPT_PAYLOAD when malformed. */
export function qsgdReadHeader(payload: Uint8Array): QsgdHeader {
  const p = arrayArg(payload, 'uint8', 'payload');
  return parseHeader(p, p.length);
}

/** The header fields of `head` (the payload's first bytes), checked against the payload's size. */
function parseHeader(p: Uint8Array, size: number): QsgdHeader {
  if (size < QSGD_HEADER_BYTES || p.length < QSGD_HEADER_BYTES) throw corrupt(`it has only ${size} bytes`);
  const dv = new DataView(p.buffer, p.byteOffset, QSGD_HEADER_BYTES);
  if (dv.getUint32(0, true) !== 0x53514347) throw corrupt('its magic number is wrong');
  if (dv.getUint8(4) !== 1) throw corrupt(`its version ${dv.getUint8(4)} is not supported`);
  const normCode = dv.getUint8(5), bits = dv.getUint8(6), levels = dv.getUint32(8, true), bucket = dv.getUint32(12, true);
  const n = Number(dv.getBigUint64(16, true));
  if (normCode > 1 || levels < 1 || levels > MAX_LEVELS || bucket < 1 || n > U32) throw corrupt('its header fields are out of range');
  const expected = loadBinding().qsgdPayloadBytes(n, levels, bucket);
  if (expected !== size) throw corrupt(`it has ${size} bytes where its header implies ${expected} (truncated or padded)`);
  return { n, levels, bucketSize: bucket, norm: normCode === 1 ? 'l2' : 'max', bits };
}

function prepareDecode(payload: unknown, out: unknown): { p: Uint8Array; out: Float32Array } {
  const p = arrayArg(payload, 'uint8', 'payload');
  const h = qsgdReadHeader(p);
  const o = outArg(out, 'float32', 'out', h.n) ?? new Float32Array(h.n);
  noOverlap('payload', p, 'out', o);
  return { p, out: o };
}

/**
 * Decodes a payload into a Float32Array (or into `out`, which must have the payload's length).
 * A payload in a uint8 CUDA tensor decodes on the GPU into a CUDA tensor.
 */
export async function qsgdDecode(payload: Tensor<'uint8', 'cuda'>, out?: Tensor<'float32', 'cuda'>): Promise<Tensor<'float32', 'cuda'>>;
export async function qsgdDecode(payload: Uint8Array, out?: Float32Array): Promise<Float32Array>;
export async function qsgdDecode(payload: Uint8Array | Tensor<'uint8', 'cuda'>, out?: Float32Array | Tensor<'float32', 'cuda'>):
Promise<Float32Array | Tensor<'float32', 'cuda'>> {
  if (isCuda(payload)) return qsgdDecodeCuda(payload, out, parseHeader);
  const d = prepareDecode(payload, out);
  await loadBinding().qsgdDecode(d.p, d.out, true);
  return d.out;
}

/** Synchronous twin of {@link qsgdDecode}. */
export function qsgdDecodeSync(payload: Uint8Array, out?: Float32Array): Float32Array {
  const d = prepareDecode(payload, out);
  loadBinding().qsgdDecode(d.p, d.out, false);
  return d.out;
}
