/**
 * The ops on CUDA tensors (internal; lib/ops dispatches here when the main input is a CUDA
 * tensor). Same arguments, same validation and the same results as the CPU ops, bit for bit
 * where the CPU op is exact (top-k, QSGD payloads, DropIT); outputs are CUDA tensors, and
 * caller-provided outputs must be CUDA tensors of the right dtype and size.
 */
import { GradcompError, GradcompRangeError } from '../native/errors';
import { DType, Tensor } from '../tensor/tensor';
import { cudaArg, noSharedStorage } from '../ops/validate';
import { call } from './device';
import { cudaBackend } from '../ops/runtime';

type Cuda<D extends DType> = Tensor<D, 'cuda'>;

function outOr<D extends DType>(value: unknown, dtype: D, param: string, length: number): Cuda<D> {
  return value === undefined ? Tensor._allocCuda([length], dtype) : cudaArg(value, dtype, param, length);
}

export interface DeviceTopKResult {
  /** Selected positions, ascending (a uint32 CUDA tensor of length k). */
  indices: Tensor<'uint32', 'cuda'>;
  /** The selected values (a float32 CUDA tensor of length k). */
  values: Tensor<'float32', 'cuda'>;
}

export async function topkCuda(grad: unknown, x: unknown, k: number, scale: number,
  out: { indices?: unknown; values?: unknown }, ef: boolean): Promise<DeviceTopKResult> {
  const r = cudaArg(x, 'float32', ef ? 'residual' : 'x');
  const g = ef ? cudaArg(grad, 'float32', 'grad') : null;
  if (g && g.size !== r.size) {
    throw new GradcompRangeError('residual', `Expected residual to have the length of grad (${g.size}) but received length ${r.size}`);
  }
  if (g) noSharedStorage('grad', g, 'residual', r);
  const indices = outOr(out.indices, 'uint32', 'options.out.indices', k);
  const values = outOr(out.values, 'float32', 'options.out.values', k);
  for (const [name, t] of [['options.out.indices', indices], ['options.out.values', values]] as const) {
    noSharedStorage(ef ? 'residual' : 'x', r, name, t);
    if (g) noSharedStorage('grad', g, name, t);
  }
  noSharedStorage('options.out.indices', indices, 'options.out.values', values);
  await call(ef ? 'efTopK' : 'topK', (b) => b.topk(g ? g._storage.handle : null, r._storage.handle, r.size, k, scale,
    indices._storage.handle, values._storage.handle));
  return { indices, values };
}

export async function qsgdEncodeCuda(x: unknown, levels: number, bucket: number, norm: number, seed: [number, number],
  step: number, tensorId: number, out: unknown): Promise<Tensor<'uint8', 'cuda'>> {
  const t = cudaArg(x, 'float32', 'x');
  const bytes = cudaBackend('qsgdEncode').qsgdPayloadBytes(t.size, levels, bucket);
  const payload = outOr(out, 'uint8', 'options.out', bytes);
  noSharedStorage('x', t, 'options.out', payload);
  await call('qsgdEncode', (b) => b.qsgdEncode(t._storage.handle, t.size, levels, bucket, norm, seed[0], seed[1], step, tensorId,
    payload._storage.handle, bytes));
  return payload;
}

/** Reads the first `bytes` bytes of a CUDA tensor (a payload header). */
export async function peek(t: Tensor<'uint8', 'cuda'>, bytes: number): Promise<Uint8Array> {
  const head = new Uint8Array(Math.min(bytes, t.size));
  await call('readHeader', (b) => b.download(t._storage.handle, head, 0));
  return head;
}

export async function qsgdDecodeCuda(payload: unknown, out: unknown, header: (head: Uint8Array, size: number) => { n: number }):
Promise<Tensor<'float32', 'cuda'>> {
  const p = cudaArg(payload, 'uint8', 'payload');
  const h = header(await peek(p, 24), p.size);
  const o = outOr(out, 'float32', 'out', h.n);
  noSharedStorage('payload', p, 'out', o);
  await call('qsgdDecode', (b) => b.qsgdDecode(p._storage.handle, p.size, o._storage.handle, h.n));
  return o;
}

export async function powerSgdCuda(m: unknown, q: unknown, p: unknown, batch: number, rows: number, cols: number, rank: number):
Promise<{ p: Tensor<'float32', 'cuda'>; q: Tensor<'float32', 'cuda'> }> {
  const b = cudaBackend('powerSgdStep');
  if (rank > b.maxRank) throw new GradcompRangeError('rank', `Expected rank <= ${b.maxRank} on the CUDA backend but received ${rank}`);
  const mt = cudaArg(m, 'float32', 'm', batch * rows * cols);
  const qt = cudaArg(q, 'float32', 'q', batch * cols * rank);
  const pt = outOr(p, 'float32', 'p', batch * rows * rank);
  noSharedStorage('m', mt, 'q', qt);
  noSharedStorage('m', mt, 'p', pt);
  noSharedStorage('q', qt, 'p', pt);
  await call('powerSgdStep', (x) => x.powersgdStep(mt._storage.handle, qt._storage.handle, pt._storage.handle, batch, rows, cols, rank));
  return { p: pt, q: qt };
}

export async function orthonormalizeCuda(p: unknown, batch: number, rows: number, rank: number): Promise<Tensor<'float32', 'cuda'>> {
  const b = cudaBackend('orthonormalize');
  if (rank > b.maxRank) throw new GradcompRangeError('shape.rank', `Expected rank <= ${b.maxRank} on the CUDA backend but received ${rank}`);
  const pt = cudaArg(p, 'float32', 'p', batch * rows * rank);
  await call('orthonormalize', (x) => x.orthonormalize(pt._storage.handle, batch, rows, rank));
  return pt;
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

export async function dropitPackCuda(x: unknown, k: number, out: unknown): Promise<DeviceDropitPacked> {
  const t = cudaArg(x, 'float32', 'x');
  const [bytes, layout] = cudaBackend('dropitPack').dropitPackedBytes(t.size, k);
  const payload = outOr(out, 'uint8', 'options.out', bytes);
  noSharedStorage('x', t, 'options.out', payload);
  await call('dropitPack', (b) => b.dropitPack(t._storage.handle, t.size, k, payload._storage.handle, bytes));
  return Object.freeze({ payload, byteLength: bytes, n: t.size, k, layout: layout === 0 ? 'bitmap' as const : 'indices' as const });
}

export async function dropitUnpackCuda(packed: unknown, out: unknown): Promise<Tensor<'float32', 'cuda'>> {
  const v = packed as { payload?: unknown } | null;
  const isPacked = v !== null && typeof v === 'object' && !(v instanceof Tensor) && 'payload' in v;
  const p = cudaArg(isPacked ? v.payload : packed, 'uint8', isPacked ? 'packed.payload' : 'packed');
  if (p.size < 24) throw new GradcompError('ERR_GRADCOMP_CORRUPT_PAYLOAD', `Expected a DropIT payload for packed but it has only ${p.size} bytes`, 'packed');
  const head = await peek(p, 24);
  const dv = new DataView(head.buffer);
  if (dv.getUint32(0, true) !== 0x50444347) {
    throw new GradcompError('ERR_GRADCOMP_CORRUPT_PAYLOAD', 'Expected a DropIT payload for packed but its magic number is wrong', 'packed');
  }
  const n = dv.getBigUint64(8, true);
  if (n > 0xffffffffn) throw new GradcompError('ERR_GRADCOMP_CORRUPT_PAYLOAD', 'Expected a DropIT payload for packed but its length field is out of range', 'packed');
  const o = outOr(out, 'float32', 'out', Number(n));
  noSharedStorage('packed', p, 'out', o);
  await call('dropitUnpack', (b) => b.dropitUnpack(p._storage.handle, p.size, o._storage.handle, Number(n)));
  return o;
}
