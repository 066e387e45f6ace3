/**
 * The binary checkpoint format: any state tree (an optimizer's, a compressor's, a whole
 * distributed optimizer's, a model's parameters) with its typed arrays stored raw.
 *
 *   offset 0   "GCKP" (4 bytes) | u32 version (1) | u32 header bytes H | u32 CRC32C of the header
 *   offset 16  header: UTF-8 JSON { meta, tensors: [{ name, dtype, shape, offset, bytes, checksum }] }
 *              where meta is the tree with every typed array replaced by { "$tensor": index }
 *   then       each tensor's bytes at its offset (relative to the data start: 16 + H rounded up to
 *              64), 64-byte aligned, in the order of the table
 *
 * Checksums are gradcomp's CRC32C tree (1 MiB pieces, then their CRCs; native, multithreaded). A
 * decoder checks the magic, the version, the header's CRC, every tensor's bounds, dtype, shape and
 * checksum, and names the tensor (its path in the tree) in the error; nothing is trusted before it
 * is checked, and nothing is allocated from a size the file claims before the bounds check.
 */
import { GradcompError, typeError } from '../native/errors';
import { checksum } from '../ops/kernels';

export const CHECKPOINT_MAGIC = 0x504b4347; // "GCKP" little-endian
export const CHECKPOINT_VERSION = 1;
const ALIGN = 64;

type Ctor = new (buffer: ArrayBufferLike, byteOffset: number, length: number) => ArrayBufferView & { length: number };
const DTYPES: Record<string, { ctor: Ctor; bytes: number }> = {
  float32: { ctor: Float32Array as unknown as Ctor, bytes: 4 }, float64: { ctor: Float64Array as unknown as Ctor, bytes: 8 },
  int32: { ctor: Int32Array as unknown as Ctor, bytes: 4 }, uint32: { ctor: Uint32Array as unknown as Ctor, bytes: 4 },
  uint8: { ctor: Uint8Array as unknown as Ctor, bytes: 1 }, uint16: { ctor: Uint16Array as unknown as Ctor, bytes: 2 },
};
const TAGS: Record<string, string> = {
  Float32Array: 'float32', Float64Array: 'float64', Int32Array: 'int32', Uint32Array: 'uint32', Uint8Array: 'uint8', Uint16Array: 'uint16',
};

export interface TensorEntry { name: string; dtype: string; shape: number[]; offset: number; bytes: number; checksum: number }

const align = (x: number) => Math.ceil(x / ALIGN) * ALIGN;

export class CheckpointError extends GradcompError {
  constructor(message: string, readonly file?: string, readonly tensor?: string) {
    super('ERR_GRADCOMP_CORRUPT_CHECKPOINT', message, 'file');
    this.name = 'CheckpointError';
  }
}

/** The pieces to write, in order: the 16-byte prefix + header (+ padding), then each tensor's bytes (+ padding). */
export function encodeCheckpoint(state: unknown): Uint8Array[] {
  const tensors: TensorEntry[] = [], views: ArrayBufferView[] = [];
  let offset = 0;
  const walk = (v: unknown, path: string): unknown => {
    if (ArrayBuffer.isView(v) && !(v instanceof DataView)) {
      const dtype = TAGS[Object.prototype.toString.call(v).slice(8, -1)];
      if (!dtype) throw new GradcompError('ERR_GRADCOMP_INVALID_ARG', `a checkpoint cannot hold ${Object.prototype.toString.call(v)} at ${path}`, 'state');
      const t = v as ArrayBufferView & { length: number };
      tensors.push({ name: path, dtype, shape: [t.length], offset, bytes: t.byteLength, checksum: checksum(t) });
      views.push(t);
      offset = align(offset + t.byteLength);
      return { $tensor: tensors.length - 1 };
    }
    if (Array.isArray(v)) return v.map((x, i) => walk(x, `${path}[${i}]`));
    if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x, path ? `${path}.${k}` : k)]));
    if (typeof v === 'number' && !Number.isFinite(v)) return { $number: String(v) };
    if (typeof v === 'bigint') return { $bigint: v.toString() };
    return v;
  };
  const meta = walk(state, '');
  const header = new TextEncoder().encode(JSON.stringify({ meta, tensors }));
  const head = new Uint8Array(align(16 + header.byteLength));
  const dv = new DataView(head.buffer);
  dv.setUint32(0, CHECKPOINT_MAGIC, true);
  dv.setUint32(4, CHECKPOINT_VERSION, true);
  dv.setUint32(8, header.byteLength, true);
  dv.setUint32(12, checksum(header), true);
  head.set(header, 16);
  const out: Uint8Array[] = [head];
  views.forEach((t, i) => {
    out.push(new Uint8Array(t.buffer, t.byteOffset, t.byteLength));
    const pad = align(tensors[i].offset + t.byteLength) - (tensors[i].offset + t.byteLength);
    if (pad > 0 && i < views.length - 1) out.push(new Uint8Array(pad));
  });
  return out;
}

/**
 * The state tree of a checkpoint's bytes (typed arrays are views of `bytes` where aligned, else
 * copies). Takes one Uint8Array or the pieces encodeCheckpoint returned.
 */
export function decodeCheckpoint(input: Uint8Array | readonly Uint8Array[], file = 'checkpoint'): unknown {
  let bytes: Uint8Array;
  if (Array.isArray(input) && input.every((c) => c instanceof Uint8Array)) bytes = Buffer.concat(input as Uint8Array[]);
  else if (input instanceof Uint8Array) bytes = input;
  else throw typeError('bytes', 'a Uint8Array (or the array of pieces encodeCheckpoint returns)', input);
  const bad = (why: string, tensor?: string) => new CheckpointError(`${file}: ${why}${tensor ? ` (tensor ${tensor})` : ''}`, file, tensor);
  if (bytes.byteLength < 16) throw bad(`it has only ${bytes.byteLength} bytes (truncated)`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (dv.getUint32(0, true) !== CHECKPOINT_MAGIC) throw bad('it is not a gradcomp checkpoint (wrong magic number)');
  if (dv.getUint32(4, true) !== CHECKPOINT_VERSION) throw bad(`its format version ${dv.getUint32(4, true)} is not supported (this gradcomp reads ${CHECKPOINT_VERSION})`);
  const hlen = dv.getUint32(8, true);
  if (16 + hlen > bytes.byteLength) throw bad('its header runs past the end (truncated)');
  const header = bytes.subarray(16, 16 + hlen);
  if (checksum(header) !== dv.getUint32(12, true)) throw bad('its header checksum does not match (corrupted)');
  let parsed: { meta: unknown; tensors: TensorEntry[] };
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(header));
  } catch {
    throw bad('its header is not valid JSON (corrupted)');
  }
  if (parsed === null || typeof parsed !== 'object' || !Array.isArray(parsed.tensors)) throw bad('its header has no tensor table');
  const base = align(16 + hlen);
  const arrays = parsed.tensors.map((t, i) => {
    const name = typeof t?.name === 'string' ? t.name : `#${i}`;
    const d = DTYPES[t?.dtype];
    if (!d || !Array.isArray(t.shape) || t.shape.length !== 1 || !Number.isSafeInteger(t.offset) || !Number.isSafeInteger(t.bytes) ||
      t.offset < 0 || t.bytes !== t.shape[0] * d.bytes) throw bad('its tensor table entry is malformed', name);
    const start = base + t.offset;
    if (start + t.bytes > bytes.byteLength) throw bad('the file ends before this tensor does (truncated)', name);
    const raw = bytes.subarray(start, start + t.bytes);
    if (checksum(raw) !== t.checksum) throw bad('its data checksum does not match (corrupted)', name);
    const aligned = (bytes.byteOffset + start) % d.bytes === 0;
    return aligned ? new d.ctor(bytes.buffer, bytes.byteOffset + start, t.shape[0]) : new d.ctor(raw.slice().buffer, 0, t.shape[0]);
  });
  // Exactly as long as its last tensor (or its padded header): appended bytes mean a damaged or foreign file.
  const end = parsed.tensors.reduce((m, t) => Math.max(m, base + (t.offset as number) + (t.bytes as number)), parsed.tensors.length ? 0 : base);
  if (bytes.byteLength !== end) throw bad(`it is ${bytes.byteLength} bytes long where its table says ${end} (damaged)`);
  const build = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(build);
    if (v !== null && typeof v === 'object') {
      const o = v as Record<string, unknown>;
      if (typeof o.$tensor === 'number' && Object.keys(o).length === 1) {
        const a = arrays[o.$tensor];
        if (!a) throw bad(`its metadata refers to a missing tensor ${o.$tensor}`);
        return a;
      }
      if (typeof o.$number === 'string' && Object.keys(o).length === 1) return Number(o.$number);
      if (typeof o.$bigint === 'string' && Object.keys(o).length === 1) return BigInt(o.$bigint);
      return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, build(x)]));
    }
    return v;
  };
  return build(parsed.meta);
}
