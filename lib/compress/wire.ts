/**
 * The compressor payload envelope: a 16-byte little-endian header, then a kind-specific body.
 *   u32 magic "GCCP" | u8 version (1) | u8 kind | u16 reserved (0) | u32 n (tensor size) | u32 count
 * `kind` is the compressor descriptor's wireKind; `count` is kind-specific (k for sparse payloads,
 * bits or levels for quantized ones). Decoders check everything they read against the header and
 * the expected tensor size, so a truncated, padded or foreign payload is an
 * ERR_GRADCOMP_CORRUPT_PAYLOAD, never an out-of-bounds access.
 */
import { GradcompError } from '../native/errors';

export const HEADER_BYTES = 16;
const MAGIC = 0x50434347;

export function corrupt(why: string): GradcompError {
  return new GradcompError('ERR_GRADCOMP_CORRUPT_PAYLOAD', `Expected a valid compressor payload but ${why}`, 'payload');
}

/**
 * A payload with room for `bodyBytes` after the header (the body is 4-byte aligned). `reuse` is
 * returned, rewritten, when it has exactly the right size: persistent buffers across steps.
 */
export function newPayload(kind: number, n: number, count: number, bodyBytes: number, reuse?: Uint8Array): Uint8Array {
  const bytes = reuse !== undefined && reuse.byteLength === HEADER_BYTES + bodyBytes && reuse.byteOffset === 0 ? reuse : new Uint8Array(HEADER_BYTES + bodyBytes);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, HEADER_BYTES);
  dv.setUint32(0, MAGIC, true);
  dv.setUint8(4, 1);
  dv.setUint8(5, kind);
  dv.setUint16(6, 0, true);
  dv.setUint32(8, n, true);
  dv.setUint32(12, count, true);
  return bytes;
}

/** Checks the envelope; returns the header's count and a view of the body. */
export function readPayload(p: Uint8Array, kind: number, n: number, bodyBytes: (count: number) => number): { count: number; body: Uint8Array } {
  if (Object.prototype.toString.call(p) !== '[object Uint8Array]') throw corrupt('it is not a Uint8Array');
  if (p.length < HEADER_BYTES) throw corrupt(`it has only ${p.length} bytes`);
  const dv = new DataView(p.buffer, p.byteOffset, p.byteLength);
  if (dv.getUint32(0, true) !== MAGIC || dv.getUint8(4) !== 1 || dv.getUint16(6, true) !== 0) throw corrupt('its header is not a version-1 gradcomp header');
  if (dv.getUint8(5) !== kind) throw corrupt(`it holds kind ${dv.getUint8(5)}, not ${kind}`);
  if (dv.getUint32(8, true) !== n) throw corrupt(`it is for ${dv.getUint32(8, true)} elements, not ${n}`);
  const count = dv.getUint32(12, true);
  const want = bodyBytes(count);
  if (!Number.isFinite(want) || p.length !== HEADER_BYTES + want) throw corrupt(`its size ${p.length} does not match its header (${HEADER_BYTES + want})`);
  return { count, body: p.subarray(HEADER_BYTES) };
}

/** A Float32Array or Uint32Array over part of a body (copying when unaligned). */
export function f32At(body: Uint8Array, offset: number, length: number): Float32Array {
  const start = body.byteOffset + offset;
  if (start % 4 === 0) return new Float32Array(body.buffer, start, length);
  return new Float32Array(body.slice(offset, offset + 4 * length).buffer);
}
export function u32At(body: Uint8Array, offset: number, length: number): Uint32Array {
  const start = body.byteOffset + offset;
  if (start % 4 === 0) return new Uint32Array(body.buffer, start, length);
  return new Uint32Array(body.slice(offset, offset + 4 * length).buffer);
}

/** FNV-1a of a tensor name: the per-tensor random stream id shared by every worker. */
export function streamId(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
  return h >>> 0;
}

/** Sign bits of n elements: ceil(n / 8) bytes padded to 4; bits past n must be zero. */
export const signBytes = (n: number): number => (Math.ceil(n / 8) + 3) & ~3;

/** Throws unless the bits past n in a sign bitmap are zero. */
export function checkPadding(bits: Uint8Array, n: number): void {
  for (let i = n; i < 8 * bits.length; i++) if ((bits[i >> 3] >> (i & 7)) & 1) throw corrupt('its padding bits are set');
}
