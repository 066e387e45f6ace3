/** Bit-exact comparison of typed arrays that reports the first difference, not a 1M-line diff. */
export function firstDiff(a: ArrayBufferView, b: ArrayBufferView): string | null {
  if (a.byteLength !== b.byteLength) return `byteLength ${a.byteLength} vs ${b.byteLength}`;
  const x = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const y = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  if (Buffer.from(x.buffer, x.byteOffset, x.byteLength).equals(Buffer.from(y.buffer, y.byteOffset, y.byteLength))) return null;
  for (let i = 0; i < x.length; i++) {
    if (x[i] !== y[i]) return `first difference at byte ${i}: ${x[i]} vs ${y[i]}`;
  }
  return null;
}

export function expectBitEqual(a: ArrayBufferView, b: ArrayBufferView, what = 'arrays'): void {
  const d = firstDiff(a, b);
  if (d !== null) throw new Error(`${what} differ: ${d}`);
}
