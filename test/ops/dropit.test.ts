import { loadBinding } from '../../lib/native/loader';
import { setConcurrency, dropitKeepCount, dropitPackedBytes, dropitPack, dropitPackSync, dropitUnpack, dropitUnpackSync, GradcompError } from '../../lib';
import { expectBitEqual } from '../reference/compare';
import { refDropit, refDropitKeep } from '../reference/dropit';
import { freshSeed, mulberry32, sample, Dist } from '../reference/rng';

const seed = freshSeed();
const rand = mulberry32(seed);
beforeAll(() => console.log(`dropit tests: GRADCOMP_TEST_SEED=${seed}`));

describe('dropitPack / dropitUnpack', () => {
  test('keep count is ceil((1 - gamma) n), immune to float error', () => {
    for (const n of [0, 1, 7, 10, 100, 1001, 65536])
      for (const gamma of [0, 0.1, 0.3, 0.5, 0.7, 0.9, 0.95, 0.99, 1]) expect(dropitKeepCount(n, gamma)).toBe(refDropitKeep(n, gamma));
    expect(dropitKeepCount(10, 0.7)).toBe(3);
  });

  test.each([1, 2, 31, 32, 33, 64, 1000, 65537, 300007])('round trip equals the oracle, n = %i', (n) => {
    for (const dist of ['gaussian', 'ties', 'zeros'] as Dist[]) {
      const x = sample(dist, n, rand);
      for (const gamma of [0, 0.5, 0.9, 0.97, 0.99, 1]) {
        const packed = dropitPackSync(x, gamma);
        const k = dropitKeepCount(n, gamma);
        expect(packed.k).toBe(k);
        expect(packed.n).toBe(n);
        const bitmapBytes = 24 + (Math.ceil(n / 8) + 3 - ((Math.ceil(n / 8) + 3) % 4)) + 4 * k;
        const indexBytes = 24 + 8 * k;
        expect(packed.layout).toBe(bitmapBytes < indexBytes ? 'bitmap' : 'indices');
        expect(packed.byteLength).toBe(Math.min(bitmapBytes, indexBytes));
        expect(packed.payload.byteLength).toBe(packed.byteLength);
        expectBitEqual(dropitUnpackSync(packed), refDropit(x, k), `n=${n} gamma=${gamma} ${dist}`);
      }
    }
  });

  test('both bitmap paths (banded threshold, top-k fallback) are taken and exact', () => {
    const binding = loadBinding();
    const seen = new Set<number>();
    const n = (1 << 17) + 11;
    for (const [dist, gamma] of [['gaussian', 0.5], ['uniform', 0.9], ['heavy', 0.8], ['equal', 0.5], ['ties', 0.6], ['smallint', 0.5]] as [Dist, number][]) {
      const x = sample(dist, n, rand);
      const packed = dropitPackSync(x, gamma);
      seen.add(binding.lastDropitPath());
      expectBitEqual(dropitUnpackSync(packed), refDropit(x, dropitKeepCount(n, gamma)), `${dist} gamma=${gamma}`);
    }
    expect([...seen].sort()).toEqual([0, 1]);
  });

  test('bit-identical payloads and rebuilds across thread counts and repeated runs', () => {
    const n = 300007;
    for (const [dist, gamma] of [['gaussian', 0.5], ['heavy', 0.9], ['uniform', 0.99]] as [Dist, number][]) {
      const x = sample(dist, n, rand);
      try {
        setConcurrency(1);
        const p1 = dropitPackSync(x, gamma).payload;
        const d1 = dropitUnpackSync(p1);
        setConcurrency(2);
        for (let t = 0; t < 4; t++) {
          expectBitEqual(dropitPackSync(x, gamma).payload, p1, `payload ${dist}`);
          expectBitEqual(dropitUnpackSync(p1), d1, `rebuild ${dist}`);
        }
      } finally {
        setConcurrency(require('node:os').cpus().length);
      }
    }
  });

  test('async forms, raw payload bytes and caller output buffers', async () => {
    const x = sample('heavy', 100000, rand);
    const buf = new Uint8Array(dropitPackedBytes(100000, 0.9));
    const packed = await dropitPack(x, 0.9, { out: buf });
    expect(packed.payload).toBe(buf);
    const out = new Float32Array(100000).fill(7);
    expect(await dropitUnpack(packed.payload, out)).toBe(out);
    expectBitEqual(out, refDropit(x, 10000));
  });

  describe('malformed payloads get ERR_GRADCOMP_CORRUPT_PAYLOAD', () => {
    const expectCorrupt = (p: Uint8Array) => {
      let err: unknown;
      try { dropitUnpackSync(p); } catch (e) { err = e; }
      expect(err).toBeInstanceOf(GradcompError);
      expect((err as GradcompError).code).toBe('ERR_GRADCOMP_CORRUPT_PAYLOAD');
    };
    const x = sample('gaussian', 1000, rand);
    test('truncated, header fields flipped', () => {
      for (const gamma of [0.5, 0.99]) {
        const good = dropitPackSync(x, gamma).payload;
        for (let len = 0; len < good.length; len += 13) expectCorrupt(good.slice(0, len));
        // magic, version, layout, reserved, k, and for the bitmap layout n (by 256; n +- 1 can be a
        // valid bitmap too). The indices layout does not depend on n beyond "every index < n", so a
        // changed n can still be a structurally valid payload there: no checksum guards it.
        const offsets = gamma === 0.5 ? [0, 4, 5, 6, 9, 16] : [0, 4, 5, 6, 16];
        for (const off of offsets) {
          const p = good.slice();
          p[off] ^= 1;
          expectCorrupt(p);
        }
      }
    });
    test('bitmap with a wrong popcount or pad bits; indices out of order or out of range', () => {
      const bm = dropitPackSync(x, 0.5).payload; // bitmap layout
      const a = bm.slice(); a[24] ^= 0x01; expectCorrupt(a); // one bit: the popcount no longer matches k
      const y = sample('gaussian', 1001, rand);
      const bm2 = dropitPackSync(y, 0.5).payload;
      const b = bm2.slice(); b[24 + 125] |= 0x80; expectCorrupt(b); // bit 1007 > n
      const ix = dropitPackSync(x, 0.99).payload; // indices layout
      const dv = new DataView(ix.buffer);
      const c = ix.slice(); new DataView(c.buffer).setUint32(24, dv.getUint32(28, true), true); expectCorrupt(c);
      const d = ix.slice(); new DataView(d.buffer).setUint32(24 + 4 * 9, 5000, true); expectCorrupt(d);
    });
  });
});
