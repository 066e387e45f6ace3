/**
 * DropIT (Chen et al., ICLR'23): cache only the largest (1 - gamma) fraction of an activation by
 * magnitude and rebuild it densely for the backward pass. k = ceil((1 - gamma) * n) entries are
 * kept with the top-k selection rule (ties to the lower index, NaN first), in ascending index
 * order, as a bitmap + values when that is smaller than uint32 indices + values (keep fraction
 * above 1/32), else indices + values.
 */
import { download, dropitPackedBytes as packedBytes, hostArg, isDeviceBuffer, kernels, runAsync, runSync } from '../backend';
import { GradcompError } from '../native/errors';
import { Tensor } from '../tensor/tensor';
import { bounded, DecodeOptions } from './qsgd';
import { Input, intArg, numberArg, onDevice, optionsArg, unwrap, wrap } from './validate';

export const DROPIT_HEADER_BYTES = 24;

/**
 * A DropIT payload's size does not grow with n when little is kept (24 bytes describe 2^32 - 1
 * zeros), so decoding without an `out` buffer allocates at most this many elements unless
 * options.maxElements says more: a hostile payload cannot make the decoder allocate gigabytes.
 */
export const DROPIT_DEFAULT_MAX_ELEMENTS = 1 << 26;

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

/** A DropIT payload on the GPU. */
export interface DeviceDropitPacked {
  /** Header (24 bytes) + bitmap or indices + values: a uint8 CUDA tensor, byte-identical to the CPU payload. */
  readonly payload: Tensor<'uint8', 'cuda'>;
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

const gammaArg = (g: unknown) => numberArg(g, 'gamma', (v) => v >= 0 && v <= 1, 'a number in [0, 1]');

/** Bytes of the payload dropitPack produces for n values at drop rate gamma. */
export function dropitPackedBytes(n: number, gamma: number): number {
  intArg(n, 'n', 0, 0xffffffff);
  return packedBytes(n, dropitKeepCount(n, gammaArg(gamma)))[0];
}

function packArgs(x: unknown, gamma: unknown, opts: unknown) {
  const xs = unwrap(x);
  const o = optionsArg(opts, 'options', ['out']);
  const g = gammaArg(gamma);
  const n = (xs as { length?: unknown })?.length;
  const ok = typeof n === 'number' && Number.isInteger(n) && n <= 0xffffffff;
  const k = ok ? dropitKeepCount(n as number, g) : 0;
  return { x: xs, k, bytes: ok ? packedBytes(n as number, k)[0] : 0, payload: unwrap(o.out) };
}

function packed(a: { x: unknown; k: unknown; payload: unknown }): DropitPacked {
  const n = (a.x as { length: number }).length, k = a.k as number;
  const payload = wrap(a.payload) as Uint8Array;
  return Object.freeze({ payload, byteLength: packedBytes(n, k)[0], n, k, layout: packedBytes(n, k)[1] === 0 ? 'bitmap' as const : 'indices' as const });
}

/**
 * @example
 * const x = new Float32Array([0.1, -5, 0.2, 3, 0, -0.3, 4, 0.05, 1, 2]);
 * const packed = await dropitPack(x, 0.7);  // keeps 3: -5, 3, 4
 * const dense = await dropitUnpack(packed); // [0, -5, 0, 3, 0, 0, 4, 0, 0, 0]
 */
export async function dropitPack(x: Tensor<'float32', 'cuda'>, gamma: number, opts?: DropitPackOptions): Promise<DeviceDropitPacked>;
export async function dropitPack(x: Input<'float32'>, gamma: number, opts?: DropitPackOptions): Promise<DropitPacked>;
export async function dropitPack(x: unknown, gamma: number, opts?: DropitPackOptions): Promise<DropitPacked | DeviceDropitPacked> {
  return packed((await runAsync(kernels.dropitPack, packArgs(x, gamma, opts))).a);
}

/** Synchronous twin of {@link dropitPack}. */
export function dropitPackSync(x: Input<'float32'>, gamma: number, opts?: DropitPackOptions): DropitPacked {
  return packed(runSync(kernels.dropitPack, packArgs(x, gamma, opts)).a);
}

function payloadOf(packedOrBytes: unknown): { v: unknown; param: string } {
  const v = packedOrBytes as { payload?: unknown } | null;
  if (v && typeof v === 'object' && !ArrayBuffer.isView(v) && !(v instanceof Tensor) && 'payload' in v) return { v: unwrap(v.payload), param: 'packed.payload' };
  return { v: unwrap(packedOrBytes), param: 'packed' };
}

/** n from a DropIT header (the rest of the payload is validated natively). */
function headerN(head: Uint8Array, size: number, opts: unknown, out: unknown): number {
  const bad = (why: string) => new GradcompError('ERR_GRADCOMP_CORRUPT_PAYLOAD', `Expected a DropIT payload for packed but ${why}`, 'packed');
  if (size < DROPIT_HEADER_BYTES || head.length < DROPIT_HEADER_BYTES) throw bad(`it has only ${size} bytes`);
  const dv = new DataView(head.buffer, head.byteOffset, DROPIT_HEADER_BYTES);
  if (dv.getUint32(0, true) !== 0x50444347) throw bad('its magic number is wrong');
  const n = dv.getBigUint64(8, true), k = dv.getBigUint64(16, true);
  if (n > 0xffffffffn || k > n) throw bad('its length fields are out of range');
  const expected = packedBytes(Number(n), Number(k))[0];
  if (expected !== size) throw bad(`it has ${size} bytes where its header implies ${expected} (truncated or padded)`);
  return out === undefined ? bounded(Number(n), opts, DROPIT_DEFAULT_MAX_ELEMENTS) : Number(n);
}

/** Host payloads are checked (and the kernel started, pinning them) synchronously, at the call: no await in between. */
function unpackArgs(packedOrBytes: unknown, out: unknown, opts: unknown) {
  const { v, param } = payloadOf(packedOrBytes);
  if (isDeviceBuffer(v)) {
    return (async () => {
      const head = new Uint8Array(Math.min(DROPIT_HEADER_BYTES, v.length));
      if (v.dtype === 'uint8') await download(v, head);
      return { packed: v as unknown, n: headerN(head, v.length, opts, out), out: unwrap(out) };
    })();
  }
  const p = hostArg(v, 'uint8', param);
  return { packed: p, n: headerN(p, p.length, opts, out), out: unwrap(out) };
}

/** Rebuilds the dense activation: kept values in place, zeros elsewhere. Validates the payload. */
export async function dropitUnpack(packed: DeviceDropitPacked | Tensor<'uint8', 'cuda'>, out?: Tensor<'float32', 'cuda'>, opts?: DecodeOptions): Promise<Tensor<'float32', 'cuda'>>;
export async function dropitUnpack(packed: DropitPacked | Uint8Array, out?: Float32Array, opts?: DecodeOptions): Promise<Float32Array>;
export async function dropitUnpack(packed: unknown, out?: unknown, opts?: DecodeOptions): Promise<Float32Array | Tensor<'float32', 'cuda'>> {
  const a = unpackArgs(packed, out, opts);
  return wrap((await runAsync(kernels.dropitUnpack, a instanceof Promise ? await a : a)).a.out) as Float32Array;
}

/** Synchronous twin of {@link dropitUnpack}. */
export function dropitUnpackSync(packed: DropitPacked | Uint8Array, out?: Float32Array, opts?: DecodeOptions): Float32Array {
  const { v, param } = payloadOf(packed);
  if (onDevice(v)) throw new GradcompError('ERR_GRADCOMP_INVALID_ARG', 'dropitUnpackSync takes CPU payloads (use dropitUnpack)', param);
  const p = hostArg(v, 'uint8', param);
  return runSync(kernels.dropitUnpack, { packed: p, n: headerN(p, p.length, opts, out), out: unwrap(out) }).a.out as Float32Array;
}
