/**
 * The compressor payload envelope: a 16-byte little-endian header, then a kind-specific body.
 *   u32 magic "GCCP" | u8 version (1) | u8 kind | u16 reserved (0) | u32 n (tensor size) | u32 count
 * `count` is kind-specific (k for sparse payloads, bits or levels for quantized ones). Decoders
 * check everything they read against the header and the expected tensor size, so a truncated,
 * padded or foreign payload is an ERR_GRADCOMP_CORRUPT_PAYLOAD, never an out-of-bounds access.
 */
import { GradcompError } from '../native/errors';

export const HEADER_BYTES = 16;
const MAGIC = 0x50434347;

export const KIND = {
  fp16: 1, bf16: 2, topk: 3, efsign: 4, signum: 5, qsgd: 6, dgc: 7, adacomp: 8,
} as const;
export type Kind = keyof typeof KIND;

export function corrupt(why: string): GradcompError {
  return new GradcompError('ERR_GRADCOMP_CORRUPT_PAYLOAD', `Expected a valid compressor payload but ${why}`, 'payload');
}

/** A payload with room for `bodyBytes` after the header; the body is 4-byte aligned. */
export function newPayload(kind: Kind, n: number, count: number, bodyBytes: number): { bytes: Uint8Array; body: DataView } {
  const bytes = new Uint8Array(HEADER_BYTES + bodyBytes);
  const dv = new DataView(bytes.buffer);
  dv.setUint32(0, MAGIC, true);
  dv.setUint8(4, 1);
  dv.setUint8(5, KIND[kind]);
  dv.setUint32(8, n, true);
  dv.setUint32(12, count, true);
  return { bytes, body: new DataView(bytes.buffer, HEADER_BYTES) };
}

/** Checks the envelope; returns the header's count and a view of the body. */
export function readPayload(p: Uint8Array, kind: Kind, n: number, bodyBytes: (count: number) => number): { count: number; body: Uint8Array } {
  if (Object.prototype.toString.call(p) !== '[object Uint8Array]') throw corrupt('it is not a Uint8Array');
  if (p.length < HEADER_BYTES) throw corrupt(`it has only ${p.length} bytes`);
  const dv = new DataView(p.buffer, p.byteOffset, p.byteLength);
  if (dv.getUint32(0, true) !== MAGIC || dv.getUint8(4) !== 1 || dv.getUint16(6, true) !== 0) throw corrupt('its header is not a version-1 gradcomp header');
  if (dv.getUint8(5) !== KIND[kind]) throw corrupt(`it holds kind ${dv.getUint8(5)}, not ${kind}`);
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
