/**
 * broadcastWeights: rank 0's weights on every rank. The ranks first agree that their models have
 * the same weights (how many, and each one's shape and dtype), so a model built differently on
 * one rank is a coded error naming the first weight that differs, on every rank, rather than a
 * mismatch deep inside a collective or a wrong model.
 */
import type { Communicator } from '../../comm/types';
import { GradcompError, typeError } from '../../native/errors';
import { tfCore, Tf } from './tf';
import type * as TfCore from '@tensorflow/tfjs-core';

interface Weight { read(): TfCore.Tensor; write(t: TfCore.Tensor): void; shape: number[]; name?: string; originalName?: string }

/** A 32-bit FNV-1a hash of a weight's dtype and shape (exact in a float64). */
function layoutHash(w: Weight): number {
  let h = 0x811c9dc5;
  for (const ch of `${w.read().dtype}[${w.shape.join(',')}]`) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193) >>> 0;
  return h;
}

const differ = (why: string) => new GradcompError('ERR_GRADCOMP_INVALID_ARG', `the ranks' models differ: ${why}. Build the same model on every rank ` +
  '(broadcastWeights then gives them rank 0\'s values)', 'model');

/** Rank 0's weights on every rank (call before training; every rank calls it). */
export async function broadcastWeights(model: { weights: Weight[] } | TfCore.Variable[], comm: Communicator): Promise<void> {
  const tf: Tf = tfCore();
  const list: Weight[] | undefined = Array.isArray(model)
    ? model.map((v) => ({ read: () => v as TfCore.Tensor, write: (t: TfCore.Tensor) => v.assign(t), shape: v.shape, name: v.name }))
    : model?.weights;
  if (!Array.isArray(list)) throw typeError('model', 'a tf.LayersModel or an array of tf.Variables', model);
  if (comm === null || typeof comm !== 'object' || typeof comm.broadcast !== 'function' || typeof comm.allgather !== 'function') {
    throw typeError('comm', 'the communicator init() returned', comm);
  }
  const counts = await comm.allgather(Float64Array.of(list.length));
  const other = counts.findIndex((c) => c !== counts[0]);
  if (other >= 0) throw differ(`rank 0 has ${counts[0]} weights, rank ${other} ${counts[other]}`);
  const mine = Float64Array.from(list, layoutHash), ref = mine.slice();
  await comm.broadcast(ref, 0);
  const firsts = await comm.allgather(Float64Array.of(mine.findIndex((h, i) => h !== ref[i])));
  const at = firsts.findIndex((i) => i >= 0);
  if (at >= 0) {
    const i = firsts[at], w = list[i];
    throw differ(`weight ${i} has another shape or dtype on rank ${at} than on rank 0 (here, on rank ${comm.rank}: ` +
      `${w.originalName ?? w.name ?? `weight ${i}`}, ${w.read().dtype} [${w.shape.join(', ')}])`);
  }
  for (const w of list) {
    const t = w.read();
    if (t.dtype !== 'float32') continue;
    const data = Float32Array.from(t.dataSync() as Float32Array);
    await comm.broadcast(data, 0);
    w.write(tf.tensor(data, w.shape, 'float32'));
  }
}
