/**
 * DropIT (Chen et al., ICLR'23): cache only the largest (1 - gamma) fraction of an activation by
 * magnitude and rebuild it densely for the backward pass. k = ceil((1 - gamma) * n) entries are
 * kept with the top-k selection rule (ties to the lower index, NaN first), in ascending index
 * order, as a bitmap + values when that is smaller than uint32 indices + values (keep fraction
 * above 1/32), else indices + values.
 */
import { DeviceDropitPacked, dropitPackCuda, dropitUnpackCuda } from '../cuda/ops';
import { GradcompError } from '../native/errors';
import { loadBinding } from '../native/loader';
import type { Tensor } from '../tensor/tensor';
import { arrayArg, Input, intArg, isCuda, noOverlap, numberArg, optionsArg, outArg } from './validate';

export type { DeviceDropitPacked } from '../cuda/ops';

export const DROPIT_HEADER_BYTES = 24;

/** A packed activation: a self-describing byte payload plus what its header says. */
export interface DropitPacked {
  /** Header (24 bytes) + bitmap or indices + values. */
  readonly payload: Uint8Array;
  /** Size of the payload in bytes (what caching it costs). */
  readonly byteLength: number;
  readonly n: number;
  readonly k: number;
  readonly layout: 'bitmap' | 'indices';
}

/**
 * k = ceil((1 - gamma) n), computed as n - floor(gamma n) with gamma n snapped to the nearest
 * integer when within 1e-9 of it, so gamma = 0.7, n = 10 keeps 3 entries, not 4.
 */
export function dropitKeepCount(n: number, gamma: number): number {
  let drop = gamma * n;
  const near = Math.round(drop);
  if (Math.abs(drop - near) <= 1e-9 * Math.max(1, n)) drop = near;
  return n - Math.floor(drop);
}

export interface DropitPackOptions {
  /** A caller-provided payload buffer of exactly dropitPackedBytes(n, gamma) bytes (no allocation); a uint8 CUDA tensor for CUDA input. */
  out?: Uint8Array | Tensor<'uint8', 'cuda'>;
}

/** Bytes of the payload dropitPack produces for n values at drop rate gamma. */
export function dropitPackedBytes(n: number, gamma: number): number {
  intArg(n, 'n', 0, 0xffffffff);
  const g = numberArg(gamma, 'gamma', (v) => v >= 0 && v <= 1, 'a number in [0, 1]');
  return loadBinding().dropitPackedBytes(n, dropitKeepCount(n, g))[0];
}

function prepare(x: unknown, gamma: unknown, opts: unknown) {
  const arr = arrayArg(x, 'float32', 'x');
  const g = numberArg(gamma, 'gamma', (v) => v >= 0 && v <= 1, 'a number in [0, 1]');
  const o = optionsArg(opts, 'options');
  const k = dropitKeepCount(arr.length, g);
  const [bytes, layout] = loadBinding().dropitPackedBytes(arr.length, k);
  const payload = outArg(o.out, 'uint8', 'options.out', bytes) ?? new Uint8Array(bytes);
  noOverlap('x', arr, 'options.out', payload);
  return { x: arr, k, payload, layout: layout === 0 ? 'bitmap' as const : 'indices' as const };
}

function packed(p: ReturnType<typeof prepare>): DropitPacked {
  return Object.freeze({ payload: p.payload, byteLength: p.payload.byteLength, n: p.x.length, k: p.k, layout: p.layout });
}

/**
 * @example
 * const x = new Float32Array([0.1, -5, 0.2, 3, 0, -0.3, 4, 0.05, 1, 2]);
 * const packed = await dropitPack(x, 0.7);  // keeps 3: -5, 3, 4
 * const dense = await dropitUnpack(packed); // [0, -5, 0, 3, 0, 0, 4, 0, 0, 0]
 */
export async function dropitPack(x: Tensor<'float32', 'cuda'>, gamma: number, opts?: DropitPackOptions): Promise<DeviceDropitPacked>;
export async function dropitPack(x: Input<'float32'>, gamma: number, opts?: DropitPackOptions): Promise<DropitPacked>;
export async function dropitPack(x: Input<'float32'>, gamma: number, opts?: DropitPackOptions): Promise<DropitPacked | DeviceDropitPacked> {
  if (isCuda(x)) {
    const g = numberArg(gamma, 'gamma', (v) => v >= 0 && v <= 1, 'a number in [0, 1]');
    const o = optionsArg(opts, 'options');
    return dropitPackCuda(x, dropitKeepCount(x.size, g), o.out);
  }
  const p = prepare(x, gamma, opts);
  await loadBinding().dropitPack(p.x, p.k, p.payload, true);
  return packed(p);
}

/** Synchronous twin of {@link dropitPack}. */
export function dropitPackSync(x: Input<'float32'>, gamma: number, opts?: DropitPackOptions): DropitPacked {
  const p = prepare(x, gamma, opts);
  loadBinding().dropitPack(p.x, p.k, p.payload, false);
  return packed(p);
}

function payloadOf(packedOrBytes: unknown): Uint8Array {
  const v = packedOrBytes as { payload?: unknown } | null;
  if (v && typeof v === 'object' && !ArrayBuffer.isView(v) && 'payload' in v) return arrayArg(v.payload, 'uint8', 'packed.payload');
  return arrayArg(packedOrBytes, 'uint8', 'packed');
}

function prepareUnpack(packedOrBytes: unknown, out: unknown) {
  const payload = payloadOf(packedOrBytes);
  if (payload.length < DROPIT_HEADER_BYTES) {
    throw new GradcompError('ERR_GRADCOMP_CORRUPT_PAYLOAD', `Expected a DropIT payload for packed but it has only ${payload.length} bytes`, 'packed');
  }
  const dv = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  if (dv.getUint32(0, true) !== 0x50444347) {
    throw new GradcompError('ERR_GRADCOMP_CORRUPT_PAYLOAD', 'Expected a DropIT payload for packed but its magic number is wrong', 'packed');
  }
  const n = dv.getBigUint64(8, true);
  if (n > 0xffffffffn) throw new GradcompError('ERR_GRADCOMP_CORRUPT_PAYLOAD', 'Expected a DropIT payload for packed but its length field is out of range', 'packed');
  const o = outArg(out, 'float32', 'out', Number(n)) ?? new Float32Array(Number(n));
  noOverlap('packed', payload, 'out', o);
  return { payload, out: o };
}

/** Rebuilds the dense activation: kept values in place, zeros elsewhere. Validates the payload. */
export async function dropitUnpack(packed: DeviceDropitPacked | Tensor<'uint8', 'cuda'>, out?: Tensor<'float32', 'cuda'>): Promise<Tensor<'float32', 'cuda'>>;
export async function dropitUnpack(packed: DropitPacked | Uint8Array, out?: Float32Array): Promise<Float32Array>;
export async function dropitUnpack(packed: DropitPacked | Uint8Array | DeviceDropitPacked | Tensor<'uint8', 'cuda'>,
  out?: Float32Array | Tensor<'float32', 'cuda'>): Promise<Float32Array | Tensor<'float32', 'cuda'>> {
  const pl = packed !== null && typeof packed === 'object' && 'payload' in packed ? packed.payload : packed;
  if (isCuda(pl)) return dropitUnpackCuda(packed, out);
  const u = prepareUnpack(packed, out);
  await loadBinding().dropitUnpack(u.payload, u.out, true);
  return u.out;
}

/** Synchronous twin of {@link dropitUnpack}. */
export function dropitUnpackSync(packed: DropitPacked | Uint8Array, out?: Float32Array): Float32Array {
  const u = prepareUnpack(packed, out);
  loadBinding().dropitUnpack(u.payload, u.out, false);
  return u.out;
}

