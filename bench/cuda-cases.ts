/**
 * The CPU-vs-CUDA case table (ggml's test-backend-ops is the model): every GPU op with the
 * parameters it is checked at and timed at, and how its result must compare with the CPU's.
 * test/cuda/ops.test.ts sweeps `test` (against the CPU kernels as oracle); bench/gpu.ts times
 * `bench` (against torch). One list, so a case that is timed is also a case that is checked.
 */
export type Compare = 'bits' | { relative: number };

export interface CudaCase<T, B> {
  /** What the GPU result must be, next to the CPU's for the same inputs. */
  compare: Compare;
  test: T;
  bench: B;
}

/** Floor bytes of each op at n elements (what it must read and write at least). */
export const floorBytes = {
  eftopk: (n: number, k: number) => 12 * n + 8 * k,
  topk: (n: number, k: number) => 4 * n + 8 * k,
  qsgd: (n: number, levels: number, bucket: number) => 4 * n + 24 + 4 * Math.ceil(n / bucket) + Math.ceil((n * qsgdBits(levels)) / 8),
  dropit: (n: number, k: number) => 4 * n + 24 + Math.ceil(n / 32) * 4 + 4 * k,
  powersgd: (batch: number, rows: number, cols: number, rank: number) => 8 * batch * rows * cols + 16 * batch * (rows + cols) * rank,
};

export function qsgdBits(levels: number): number {
  let b = 0;
  while (2 ** b < levels + 1) b++;
  return b + 1;
}

export const CUDA_CASES = {
  topk: {
    compare: 'bits',
    test: {
      sizes: [1, 2, 3, 17, 1000, 4097, 65537, 300007, (1 << 20) + 5],
      distributions: ['gaussian', 'equal', 'narrow', 'ties', 'zeros', 'heavy', 'smallint'],
      largeDistributions: ['gaussian', 'equal', 'ties'],
      /** k is 0, 1, n - 1, n and these fractions of n (largeFractions above 100000 elements). */
      fractions: [0.001, 0.01, 0.1, 0.5],
      largeFractions: [0.001, 0.01, 1 / 3],
    },
    bench: { fractions: [0.001, 0.01, 0.1], plainFraction: 0.01, adversarial: [[1, 'all equal'], [2, 'narrow [1, 1.00003]'], [3, 'ties at the k-th value']] as const },
  } satisfies CudaCase<unknown, unknown>,
  qsgd: {
    compare: 'bits',
    test: { sizes: [1, 63, 64, 65, 1000, 12345, (1 << 20) + 5], levels: [1, 7, 127, 300, 32767], buckets: [1, 7, 32, 512, 1000], largeBuckets: [7, 512, 1024], norms: ['max', 'l2'] },
    bench: { configs: [[127, 512], [7, 512]] as const },
  } satisfies CudaCase<unknown, unknown>,
  powersgd: {
    compare: { relative: 2e-4 },
    test: { shapes: [[1, 1, 1], [1, 7, 5], [3, 64, 33], [2, 1000, 300], [1, 4096, 1024]] as [number, number, number][], ranks: [1, 2, 3, 4, 8, 16, 32], largeRanks: [1, 4, 32] },
    bench: { configs: [[1, 16384, 16384, 4], [64, 2048, 2048, 4]] as const, orth: [[100, 1024, 8], [100, 4096, 4]] as const },
  } satisfies CudaCase<unknown, unknown>,
  dropit: {
    compare: 'bits',
    test: { sizes: [1, 31, 32, 33, 1000, 65537, (1 << 20) + 3], gammas: [0, 0.5, 0.9, 0.97, 0.99, 1] },
    bench: { gammas: [0.9] },
  } satisfies CudaCase<unknown, unknown>,
};
