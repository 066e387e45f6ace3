/** Oracle for DropIT: keep the top-k by the top-k rule, everything else zero. */
import { refTopK } from './topk';

export function refDropitKeep(n: number, gamma: number): number {
  // ceil((1 - gamma) n) with exact rational arithmetic on the decimal gamma the tests use.
  return Math.ceil(Number(((1 - gamma) * n).toFixed(9)));
}

export function refDropit(x: Float32Array, k: number): Float32Array {
  const { indices, values } = refTopK(x, k);
  const out = new Float32Array(x.length);
  indices.forEach((i, j) => { out[i] = values[j]; });
  return out;
}
