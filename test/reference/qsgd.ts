/**
 * Oracle for QSGD: Philox-4x32-10 in plain JS and a one-element-at-a-time encoder and decoder
 * written from the payload description in lib/ops/qsgd.ts. Bytes must match the native kernel.
 */
const M0 = 0xd2511f53, M1 = 0xcd9e8d57, W0 = 0x9e3779b9, W1 = 0xbb67ae85;

function mulhilo(a: number, b: number): [number, number] {
  const p = BigInt(a >>> 0) * BigInt(b >>> 0);
  return [Number(p & 0xffffffffn), Number(p >> 32n)];
}

export function philox4x32_10(ctr: number[], key: [number, number]): number[] {
  let [c0, c1, c2, c3] = ctr.map((v) => v >>> 0);
  let [k0, k1] = key.map((v) => v >>> 0);
  for (let round = 0; round < 10; round++) {
    const [lo0, hi0] = mulhilo(M0, c0);
    const [lo1, hi1] = mulhilo(M1, c2);
    [c0, c1, c2, c3] = [(hi1 ^ c1 ^ k0) >>> 0, lo1, (hi0 ^ c3 ^ k1) >>> 0, lo0];
    k0 = (k0 + W0) >>> 0;
    k1 = (k1 + W1) >>> 0;
  }
  return [c0, c1, c2, c3];
}

/** The random word of element i: block (i >> 6) * 16 + (i & 15), word (i >> 4) & 3. */
export function wordFor(seed: bigint, step: number, tensorId: number, i: number): number {
  const block = BigInt(Math.floor(i / 64) * 16 + (i % 16));
  const out = philox4x32_10([Number(block & 0xffffffffn), Number(block >> 32n), step, tensorId],
    [Number(seed & 0xffffffffn), Number(seed >> 32n)]);
  return out[Math.floor(i / 16) % 4];
}

export function bitsFor(levels: number): number {
  let b = 0;
  while (2 ** b < levels + 1) b++;
  return b + 1;
}

const f = Math.fround;

function bucketNorm(x: Float32Array, norm: 'max' | 'l2'): number {
  if (x.some((v) => !Number.isFinite(v))) return NaN;
  if (norm === 'max') return x.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  const part = new Array<number>(32).fill(0);
  x.forEach((v, i) => { part[i % 32] += v * v; });
  for (let off = 16; off >= 1; off >>= 1) for (let j = 0; j < off; j++) part[j] += part[j + off];
  return f(Math.min(Math.sqrt(part[0]), 3.4028234663852886e38)); // FLT_MAX: finite buckets stay decodable
}

export interface RefQsgdOpts { levels: number; bucketSize: number; norm: 'max' | 'l2'; seed: bigint; step: number; tensorId: number }

export function refQsgdEncode(x: Float32Array, o: RefQsgdOpts): Uint8Array {
  const n = x.length, s = o.levels, d = o.bucketSize, bits = bitsFor(s);
  const buckets = Math.ceil(n / d);
  const out = new Uint8Array(24 + 4 * buckets + Math.ceil((n * bits) / 8));
  const dv = new DataView(out.buffer);
  dv.setUint32(0, 0x53514347, true);
  dv.setUint8(4, 1);
  dv.setUint8(5, o.norm === 'l2' ? 1 : 0);
  dv.setUint8(6, bits);
  dv.setUint32(8, s, true);
  dv.setUint32(12, d, true);
  dv.setBigUint64(16, BigInt(n), true);
  let bitPos = (24 + 4 * buckets) * 8;
  for (let b = 0; b < buckets; b++) {
    const slice = x.subarray(b * d, Math.min(n, (b + 1) * d));
    const L = bucketNorm(slice, o.norm);
    dv.setFloat32(24 + 4 * b, L, true);
    const mul = L < 2 ** -100 ? 2 ** 100 : 1;
    const scale = L > 0 ? f(s / f(L * mul)) : 0;
    for (let j = 0; j < slice.length; j++) {
      const i = b * d + j;
      let code = 0;
      if (!Number.isNaN(L) && scale !== 0) {
        const r = f(f(Math.abs(slice[j]) * mul) * scale);
        const l = Math.floor(r);
        const frac = f(r - l);
        const u = (wordFor(o.seed, o.step, o.tensorId, i) >>> 8) / 16777216;
        let level = l + (u < frac ? 1 : 0);
        if (level > s) level = s;
        const sign = level > 0 && slice[j] < 0 ? 1 : 0;
        code = level | (sign << (bits - 1));
      }
      for (let t = 0; t < bits; t++, bitPos++) if ((code >> t) & 1) out[bitPos >> 3] |= 1 << (bitPos & 7);
    }
  }
  return out;
}

export function refQsgdDecode(p: Uint8Array): Float32Array {
  const dv = new DataView(p.buffer, p.byteOffset, p.byteLength);
  const bits = dv.getUint8(6), s = dv.getUint32(8, true), d = dv.getUint32(12, true);
  const n = Number(dv.getBigUint64(16, true));
  const buckets = Math.ceil(n / d);
  const out = new Float32Array(n);
  let bitPos = (24 + 4 * buckets) * 8;
  for (let i = 0; i < n; i++) {
    let code = 0;
    for (let t = 0; t < bits; t++, bitPos++) code |= ((p[bitPos >> 3] >> (bitPos & 7)) & 1) << t;
    const level = code & ((1 << (bits - 1)) - 1);
    const L = dv.getFloat32(24 + 4 * Math.floor(i / d), true);
    const v = f(level * f(L / s));
    out[i] = code >> (bits - 1) ? -v : v;
  }
  return out;
}
