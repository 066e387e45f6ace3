/**
 * Slow, obvious references for the vector, optimizer and codec kernels (native/core/vector.h,
 * optim.h, codec.h): element by element in float32 (Math.fround after every operation, in the
 * documented order), sums in float64 in the documented order.
 */
const f = Math.fround;

/** Sum of squares over 64K pieces, eight partials j mod 8 within a piece, pieces in order. */
export function sumSquares(x: Float32Array): number {
  let total = 0;
  for (let lo = 0; lo < x.length; lo += 1 << 16) {
    const s = new Float64Array(8);
    for (let i = lo; i < Math.min(x.length, lo + (1 << 16)); i++) s[(i - lo) & 7] += x[i] * x[i];
    total += ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
  }
  return total;
}

/** SGD (PyTorch semantics, float32 operations in order): see native/core/optim.h. */
export function sgd(w: Float32Array, g: Float32Array, buf: Float32Array | null, o: { lr: number; momentum: number; dampening: number;
  weightDecay: number; nesterov: boolean; gradScale: number }, first: boolean): void {
  const lr = f(o.lr), mu = f(o.momentum), wd = f(o.weightDecay), gs = f(o.gradScale), keep = f(1 - f(o.dampening));
  for (let i = 0; i < w.length; i++) {
    let d = g[i];
    if (gs !== 1) d = f(d * gs);
    if (wd !== 0) d = f(d + f(wd * w[i]));
    if (buf && mu !== 0) {
      const b = first ? d : f(f(mu * buf[i]) + f(keep * d));
      buf[i] = b;
      d = o.nesterov ? f(d + f(mu * b)) : b;
    }
    w[i] = f(w[i] - f(lr * d));
  }
}

/** efsign encode: p = g + e; bits; scale = float32(sum |p| / n) (16 partials j mod 16 per 64K piece); e = p -/+ scale. */
export function efsign(g: Float32Array | null, e: Float32Array, bits: Uint8Array): number {
  const n = e.length;
  bits.fill(0, 0, Math.ceil(n / 8));
  let total = 0;
  for (let lo = 0; lo < n; lo += 1 << 16) {
    const s = new Float64Array(16);
    for (let i = lo; i < Math.min(n, lo + (1 << 16)); i++) {
      const p = g ? f(g[i] + e[i]) : e[i];
      e[i] = p;
      if (p < 0) bits[i >> 3] |= 1 << (i & 7);
      s[(i - lo) & 15] += Math.abs(p);
    }
    const q = Array.from({ length: 8 }, (_, l) => s[l] + s[l + 8]);
    total += ((q[0] + q[1]) + (q[2] + q[3])) + ((q[4] + q[5]) + (q[6] + q[7]));
  }
  const scale = n > 0 ? f(total / n) : 0;
  for (let i = 0; i < n; i++) e[i] = f(e[i] - ((bits[i >> 3] >> (i & 7)) & 1 ? -scale : scale));
  return scale;
}

/** All ranks' signs: the average (rank order, then / divisor) or the majority vote. */
export function signDecode(bits: Uint8Array[], scales: number[] | null, n: number, vote: boolean, divisor: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let acc = 0;
    bits.forEach((b, r) => {
      const neg = (b[i >> 3] >> (i & 7)) & 1;
      acc = vote ? acc + (neg ? -1 : 1) : f(acc + (neg ? -f(scales![r]) : f(scales![r])));
    });
    out[i] = vote ? Math.sign(acc) : f(acc / f(divisor));
  }
  return out;
}

/** CRC32C (Castagnoli), bit by bit. */
export function crc32c(bytes: Uint8Array, crc = 0): number {
  crc = ~crc >>> 0;
  for (const b of bytes) {
    crc ^= b;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return ~crc >>> 0;
}

/** gradcomp's checksum: CRC32C of each 1 MiB piece, then CRC32C of those CRCs (little-endian words). */
export function checksum(bytes: Uint8Array): number {
  const pieces = Math.max(1, Math.ceil(bytes.length / (1 << 20)));
  const crcs = new Uint32Array(pieces);
  for (let p = 0; p < pieces; p++) crcs[p] = crc32c(bytes.subarray(p << 20, (p + 1) << 20));
  return crc32c(new Uint8Array(crcs.buffer));
}
