/** Oracle for top-k: order every index by (|v| bits descending, index ascending), take k. */

/** The magnitude key the contract orders by: the bits of |v| (NaN > +Inf > finite). */
export function magKey(v: number): number {
  const f = new Float32Array([v]);
  return new Uint32Array(f.buffer)[0] & 0x7fffffff;
}

export function refTopK(x: Float32Array, k: number): { indices: Uint32Array; values: Float32Array } {
  const bits = new Uint32Array(x.buffer, x.byteOffset, x.length);
  // One 64-bit sort key per element: key in the high half, (2^32 - 1 - index) in the low half,
  // so a descending sort puts larger magnitudes first and, among equals, lower indices first.
  const packed = new BigUint64Array(x.length);
  for (let i = 0; i < x.length; i++) packed[i] = (BigInt(bits[i] & 0x7fffffff) << 32n) | BigInt(0xffffffff - i);
  packed.sort();
  const chosen: number[] = [];
  for (let j = x.length - 1; j >= x.length - k; j--) chosen.push(0xffffffff - Number(packed[j] & 0xffffffffn));
  chosen.sort((a, b) => a - b);
  return { indices: Uint32Array.from(chosen), values: Float32Array.from(chosen, (i) => x[i]) };
}

/** acc = fround(fround(scale) * g) + r (float32 arithmetic); select; zero the winners. */
export function refEfTopK(g: Float32Array, r: Float32Array, k: number, scale = 1) {
  const s = Math.fround(scale);
  const acc = new Float32Array(g.length);
  for (let i = 0; i < g.length; i++) acc[i] = Math.fround(Math.fround(s * g[i]) + r[i]);
  const sel = refTopK(acc, k);
  const residual = acc.slice();
  for (const i of sel.indices) residual[i] = 0;
  return { ...sel, residual };
}
