/** Small monomorphic loops shared by the compressors (V8 keeps these fast; mixed array types
 * or per-element callbacks in a hot loop do not). */

export function addInto(acc: Float32Array, x: Float32Array): void {
  for (let i = 0; i < acc.length; i++) acc[i] += x[i];
}

export function scaled(x: Float32Array, s: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = x[i] * s;
  return out;
}

/** out[idx[j]] = vals[j] * s, zeros elsewhere. */
export function scatter(n: number, idx: Uint32Array, vals: Float32Array, s: number): Float32Array {
  const out = new Float32Array(n);
  for (let j = 0; j < idx.length; j++) out[idx[j]] = vals[j] * s;
  return out;
}
