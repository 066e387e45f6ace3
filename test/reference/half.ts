/** Oracle for the native fp32 -> fp16 / bf16 casts: round to nearest even, one element at a time. */
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

export function toBf16(v: number): number {
  f32[0] = v;
  const b = u32[0];
  if ((b & 0x7fffffff) > 0x7f800000) return 0x7fc0 | ((b >>> 16) & 0x8000);
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

export function toFp16(v: number): number {
  f32[0] = v;
  const b = u32[0];
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1), half = 1 << (shift - 1);
    if (rem > half || (rem === half && (h & 1))) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1))) h++;
  return sign | h;
}

