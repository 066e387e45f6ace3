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
import { download, hostArg, isDeviceBuffer, kernels, qsgdPayloadBytes as payloadBytes, runAsync, runSync } from '../backend';
import { describe, GradcompError, GradcompTypeError } from '../native/errors';
import type { Tensor } from '../tensor/tensor';
import { Input, intArg, optionsArg, seedArg, unwrap, wrap } from './validate';

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

const ENCODE_KEYS = ['levels', 'bucketSize', 'norm', 'seed', 'step', 'tensorId', 'out'];

function encodeArgs(x: unknown, opts: unknown) {
  if (opts === undefined) throw new GradcompTypeError('options', 'Expected an options object with levels and seed for options but received undefined');
  const o = optionsArg(opts, 'options', ENCODE_KEYS);
  const levels = intArg(o.levels, 'options.levels', 1, MAX_LEVELS);
  const bucket = o.bucketSize === undefined ? 512 : intArg(o.bucketSize, 'options.bucketSize', 1, U32);
  if (o.norm !== undefined && o.norm !== 'max' && o.norm !== 'l2') {
    throw new GradcompTypeError('options.norm', `Expected 'max' or 'l2' for options.norm but received ${describe(o.norm)}`);
  }
  const xs = unwrap(x);
  const n = (xs as { length?: unknown })?.length;
  const bytes = typeof n === 'number' && Number.isInteger(n) && n <= U32 ? payloadBytes(n, levels, bucket) : 0;
  return { x: xs, levels, bucket, norm: o.norm === 'l2' ? 1 : 0, seed: seedArg(o.seed, 'options.seed'), step: o.step, tensorId: o.tensorId,
    bytes, payload: unwrap(o.out) };
}

/** Bytes of the payload qsgdEncode produces for n values. */
export function qsgdPayloadBytes(n: number, opts: Pick<QsgdOptions, 'levels' | 'bucketSize'>): number {
  intArg(n, 'n', 0, U32);
  const o = optionsArg(opts, 'options', ENCODE_KEYS);
  const levels = intArg(o.levels, 'options.levels', 1, MAX_LEVELS);
  const bucket = o.bucketSize === undefined ? 512 : intArg(o.bucketSize, 'options.bucketSize', 1, U32);
  return payloadBytes(n, levels, bucket);
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
export async function qsgdEncode(x: unknown, opts: QsgdOptions): Promise<Uint8Array | Tensor<'uint8', 'cuda'>> {
  return wrap((await runAsync(kernels.qsgdEncode, encodeArgs(x, opts))).a.payload) as Uint8Array;
}

/** Synchronous twin of {@link qsgdEncode}. */
export function qsgdEncodeSync(x: Input<'float32'>, opts: QsgdOptions): Uint8Array {
  return runSync(kernels.qsgdEncode, encodeArgs(x, opts)).a.payload as Uint8Array;
}

/** What a QSGD payload's header says (validated against the payload's size). */
export interface QsgdHeader { n: number; levels: number; bucketSize: number; norm: 'max' | 'l2'; bits: number }

function corrupt(why: string): GradcompError {
  return new GradcompError('ERR_GRADCOMP_CORRUPT_PAYLOAD', `Expected a QSGD payload for payload but ${why}`, 'payload');
}

/** Reads and checks a payload's header; throws ERR_GRADCOMP_CORRUPT_PAYLOAD when malformed. */
export function qsgdReadHeader(payload: Uint8Array): QsgdHeader {
  const p = hostArg(unwrap(payload), 'uint8', 'payload');
  return parseHeader(p, p.length);
}

/** The header fields of `head` (the payload's first bytes), checked against the payload's size. */
function parseHeader(p: Uint8Array, size: number): QsgdHeader {
  if (Object.prototype.toString.call(p) !== '[object Uint8Array]') throw new GradcompTypeError('payload', `Expected a Uint8Array for payload but received ${describe(p)}`);
  if (size < QSGD_HEADER_BYTES || p.length < QSGD_HEADER_BYTES) throw corrupt(`it has only ${size} bytes`);
  const dv = new DataView(p.buffer, p.byteOffset, QSGD_HEADER_BYTES);
  if (dv.getUint32(0, true) !== 0x53514347) throw corrupt('its magic number is wrong');
  if (dv.getUint8(4) !== 1) throw corrupt(`its version ${dv.getUint8(4)} is not supported`);
  const normCode = dv.getUint8(5), bits = dv.getUint8(6), levels = dv.getUint32(8, true), bucket = dv.getUint32(12, true);
  const n = Number(dv.getBigUint64(16, true));
  if (normCode > 1 || levels < 1 || levels > MAX_LEVELS || bucket < 1 || n > U32) throw corrupt('its header fields are out of range');
  const expected = payloadBytes(n, levels, bucket);
  if (expected !== size) throw corrupt(`it has ${size} bytes where its header implies ${expected} (truncated or padded)`);
  return { n, levels, bucketSize: bucket, norm: normCode === 1 ? 'l2' : 'max', bits };
}

/** Options of the decoders: where to write and how large a payload may claim to be. */
export interface DecodeOptions {
  /** Refuse (ERR_GRADCOMP_CORRUPT_PAYLOAD) a payload whose header claims more elements, before allocating. */
  maxElements?: number;
}

/** Host payloads are checked (and the kernel started, pinning them) synchronously, at the call: no await in between. */
function decodeArgs(payload: unknown, out: unknown, opts: unknown) {
  const p = unwrap(payload);
  if (isDeviceBuffer(p)) {
    return (async () => {
      const head = new Uint8Array(Math.min(QSGD_HEADER_BYTES, p.length));
      if (p.dtype === 'uint8') await download(p, head);
      const h: QsgdHeader = parseHeader(head, p.length);
      return { payload: p as unknown, n: bounded(h.n, opts), out: unwrap(out) };
    })();
  }
  const host = hostArg(p, 'uint8', 'payload');
  return { payload: host as unknown, n: bounded(parseHeader(host, host.length).n, opts), out: unwrap(out) };
}

/** n, unless it exceeds options.maxElements (default `def`), checked before any allocation. */
export function bounded(n: number, opts: unknown, def = U32): number {
  const o = optionsArg(opts, 'options', ['maxElements']);
  const max = o.maxElements === undefined ? def : intArg(o.maxElements, 'options.maxElements', 0, U32);
  if (n > max) {
    throw new GradcompError('ERR_GRADCOMP_CORRUPT_PAYLOAD', `Expected a payload of at most ${max} elements (options.maxElements) but its header claims ${n}`, 'payload');
  }
  return n;
}

/**
 * Decodes a payload into a Float32Array (or into `out`, which must have the payload's length).
 * A payload in a uint8 CUDA tensor decodes on the GPU into a CUDA tensor.
 */
export async function qsgdDecode(payload: Tensor<'uint8', 'cuda'>, out?: Tensor<'float32', 'cuda'>, opts?: DecodeOptions): Promise<Tensor<'float32', 'cuda'>>;
export async function qsgdDecode(payload: Uint8Array, out?: Float32Array, opts?: DecodeOptions): Promise<Float32Array>;
export async function qsgdDecode(payload: unknown, out?: unknown, opts?: DecodeOptions): Promise<Float32Array | Tensor<'float32', 'cuda'>> {
  const a = decodeArgs(payload, out, opts);
  return wrap((await runAsync(kernels.qsgdDecode, a instanceof Promise ? await a : a)).a.out) as Float32Array;
}

/** Synchronous twin of {@link qsgdDecode}. */
export function qsgdDecodeSync(payload: Uint8Array, out?: Float32Array, opts?: DecodeOptions): Float32Array {
  const p = hostArg(unwrap(payload), 'uint8', 'payload');
  const h = parseHeader(p, p.length);
  return runSync(kernels.qsgdDecode, { payload: p, n: bounded(h.n, opts), out: unwrap(out) }).a.out as Float32Array;
}
