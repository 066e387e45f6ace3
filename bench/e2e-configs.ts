/** The configurations bench/e2e.ts measures (every algorithm and compressor of the issue list). */
export interface E2eConfig {
  name: string;
  label: string;
  /** createDistributedOptimizer options (algo, compressor, deterministic, period, server). */
  options: Record<string, unknown>;
  warmup: number;
  steps: number;
  /** Periodic algorithms alternate cheap and expensive steps: report the mean over whole periods, not the median. */
  mean?: boolean;
}

/** Bytes a ring allreduce of the 25.2M-parameter model moves through its busiest link: 2 (n - 1) / n x 100.7 MB, n = 4. */
export const RING_BYTES = (2 * 3 / 4) * 4 * 25174016;

export const E2E_CONFIGS: E2eConfig[] = [
  { name: 'dense-det', label: 'sync dense, deterministic (the default)', options: { algo: 'sync', deterministic: true }, warmup: 1, steps: 5 },
  { name: 'dense', label: 'sync dense, deterministic: false', options: { algo: 'sync', deterministic: false }, warmup: 1, steps: 5 },
  { name: 'topk', label: 'ef-sgd, top-k 1%', options: { algo: 'ef-sgd', compressor: { type: 'topk', ratio: 0.01 } }, warmup: 2, steps: 15 },
  { name: 'efsign', label: 'ef-sgd, scaled sign', options: { algo: 'ef-sgd', compressor: { type: 'efsign' } }, warmup: 2, steps: 15 },
  { name: 'dgc', label: 'sync + DGC 1% (momentum moved into DGC)', options: { algo: 'sync', compressor: { type: 'dgc', ratio: 0.01 } }, warmup: 2, steps: 15 },
  { name: 'randk', label: 'ef-sgd, rand-k 1%', options: { algo: 'ef-sgd', compressor: { type: 'randk', ratio: 0.01 } }, warmup: 2, steps: 15 },
  { name: 'qsgd4', label: 'sync + QSGD 4-bit (7 levels)', options: { algo: 'sync', compressor: { type: 'qsgd', levels: 7 } }, warmup: 2, steps: 15 },
  { name: 'powersgd', label: 'PowerSGD rank 4', options: { algo: 'powersgd', compressor: { type: 'powersgd', rank: 4 } }, warmup: 2, steps: 15 },
  { name: 'scalecom', label: 'ScaleCom 1%', options: { algo: 'scalecom', compressor: { type: 'scalecom', ratio: 0.01 } }, warmup: 2, steps: 15 },
  { name: 'adacomp', label: 'ef-sgd, AdaComp (bins of 500)', options: { algo: 'ef-sgd', compressor: { type: 'adacomp', binSize: 500 } }, warmup: 2, steps: 7 },
  { name: 'local', label: 'Local SGD, H = 8', options: { algo: 'local', period: 8 }, warmup: 8, steps: 32, mean: true },
  { name: 'liec', label: 'LIEC-SGD (scaled sign, tau 32)', options: { algo: 'liec', period: 32 }, warmup: 1, steps: 32, mean: true },
  { name: 'double-squeeze', label: 'DoubleSqueeze (scaled sign)', options: { algo: 'double-squeeze' }, warmup: 2, steps: 15 },
];
