/** philoxFill (native) against the JS Philox oracle: the shared random streams of rand-k supports
 * and PowerSGD's initial Q. */
import { loadBinding } from '../../lib/native/loader';
import { wordFor } from '../reference/qsgd';
import { freshSeed, mulberry32 } from '../reference/rng';

const rand = mulberry32(freshSeed());

test('uniform fill: element i is (word_i >> 8) / 2^24 of the QSGD stream mapping', () => {
  for (const n of [1, 17, 64, 1000, 70001]) {
    const seed = BigInt(Math.floor(rand() * 2 ** 32)) * 65537n, step = Math.floor(rand() * 1000), stream = Math.floor(rand() * 2 ** 32);
    const out = new Float32Array(n);
    loadBinding().philoxFill(out, Number(seed & 0xffffffffn), Number(seed >> 32n), step, stream, 0);
    for (const i of [0, n - 1, Math.floor(n / 2), Math.floor(rand() * n)]) {
      expect(out[i]).toBe((wordFor(seed, step, stream, i) >>> 8) / 16777216);
    }
  }
});

test('normal fill: Box-Muller on the pair (2j, 2j + 1), and sane moments', () => {
  const n = 200000;
  const out = new Float32Array(n);
  loadBinding().philoxFill(out, 7, 0, 3, 11, 1);
  for (const i of [0, 1, 2, 3, 12345, 12346]) {
    const a = i & ~1;
    const u1 = ((wordFor(7n, 3, 11, a) >>> 8) + 1) / 16777217, u2 = (wordFor(7n, 3, 11, a + 1) >>> 8) / 16777216;
    const r = Math.sqrt(-2 * Math.log(u1));
    expect(out[i]).toBeCloseTo(i & 1 ? r * Math.sin(2 * Math.PI * u2) : r * Math.cos(2 * Math.PI * u2), 5);
  }
  let m = 0, v = 0;
  for (const x of out) { m += x / n; v += (x * x) / n; }
  expect(Math.abs(m)).toBeLessThan(0.02);
  expect(Math.abs(v - 1)).toBeLessThan(0.02);
});
