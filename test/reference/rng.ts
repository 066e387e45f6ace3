/** Test-data generators: a small seeded PRNG (mulberry32) and the distributions the specs name. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A fresh seed per run (printed by the tests that use it, so failures can be replayed). */
export function freshSeed(): number {
  return Number(process.env.GRADCOMP_TEST_SEED ?? Math.floor(Math.random() * 2 ** 31));
}

export type Dist = 'gaussian' | 'uniform' | 'heavy' | 'equal' | 'narrow' | 'ties' | 'zeros' | 'smallint';

export function sample(dist: Dist, n: number, rand: () => number): Float32Array {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    switch (dist) {
      case 'gaussian': x[i] = Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand()); break;
      case 'uniform': x[i] = rand() * 2 - 1; break;
      case 'heavy': x[i] = (rand() < 0.5 ? -1 : 1) * Math.pow(1 - rand(), -1.5) * 1e-3; break; // Pareto-like gradients
      case 'equal': x[i] = 0.5; break;
      case 'narrow': x[i] = 1 + rand() * 3e-5; break; // values in [1, 1.00003]
      case 'ties': x[i] = rand() < 0.3 ? 2 : rand() * 2; break; // many ties at the k-th value
      case 'zeros': x[i] = rand() < 0.9 ? 0 : rand() - 0.5; break;
      case 'smallint': x[i] = Math.floor(rand() * 7) - 3; break;
    }
  }
  return x;
}
