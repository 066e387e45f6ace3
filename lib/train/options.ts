/** `gradcomp train` flags: parsed, checked (errors name the flag), and turned into specs. */
import { GradcompTypeError } from '../native/errors';
import { ALGORITHMS, AlgorithmName, DistributedOptions, ONLY_FOR, createDistributedOptimizer, defaultCompressorType } from '../algorithms/create';
import type { Communicator } from '../comm/types';
import { COMPRESSOR_TYPES, CompressorSpec } from '../compress/create';
import type { ModelKind } from './model';

/** --keep-dense's values (a pair in sorted order). */
export const KEEP_DENSE = ['first', 'last', 'first,last', 'none'] as const;
export type KeepDense = typeof KEEP_DENSE[number];

export interface TrainOptions {
  algo: AlgorithmName;
  /** undefined: the algorithm's own default compressor. */
  compressor?: string;
  ratio?: number;
  rank?: number;
  levels?: number;
  period?: number;
  stageSteps?: number;
  /** STL-SGD's period growth (default: 'non-iid' with --non-iid, else 'iid'). */
  growth?: 'iid' | 'non-iid' | 'fixed';
  server?: 'root' | 'sharded';
  workers: number;
  steps: number;
  lr: number;
  momentum: number;
  optimizer: 'sgd' | 'novograd';
  seed: number;
  nonIid: boolean;
  model: ModelKind;
  batch: number;
  /** Hidden layer widths of the MLP (default [64] on synthetic data, [256, 128] on images). */
  hidden?: number[];
  /** 'synthetic' (the default), 'fashion-mnist', 'mnist', or 'idx' (a folder of MNIST-format files at dataDir). */
  data: 'synthetic' | 'fashion-mnist' | 'mnist' | 'idx';
  dataDir?: string;
  /** Train for this many epochs of each worker's shard instead of --steps (real data defaults to 3). */
  epochs?: number;
  /** Use only the first N training images (real data). */
  trainLimit?: number;
  /** sync family: compress tensor by tensor, or the whole model as one vector (global top-k). */
  scope?: 'tensor' | 'model';
  /** The sparsity warm-up of DGC and top-k, in epochs (default none). */
  warmupEpochs?: number;
  /** The sparsity warm-up of DGC and top-k, in steps (overrides warmupEpochs). */
  warmupSteps?: number;
  /** Apply the optimizer's momentum on the workers before compression (default: the algorithm's choice). */
  momentumBefore?: boolean;
  /** efsign: one scale per block of this many elements. */
  bucket?: number;
  /** Tensors with fewer elements go dense (default 64). */
  minCompress?: number;
  /** Layers whose weights are sent dense whatever their size: the first, the last (classifier), both, or none.
   * Default on image data: each of the two that holds at most a tenth of the parameters. */
  keepDense?: KeepDense;
  /** Checkpoint sets kept on disk (default 2; TracIn wants several). */
  keepCheckpoints?: number;
  /** Flip this fraction of the training labels to another class (seeded): the mislabel-finding experiment. */
  flipLabels?: number;
  samples: number;
  features: number;
  classes: number;
  separation: number;
  json: boolean;
  progress: 'bar' | 'lines' | 'none';
  /** Folder for checkpoint files (none: no checkpoints). */
  checkpoint?: string;
  /** Steps between checkpoints (default 100). */
  checkpointEvery: number;
  /** Continue from the newest complete checkpoint in `checkpoint`, if there is one. */
  resume: boolean;
}

export const TRAIN_DEFAULTS: TrainOptions = {
  algo: 'ef-sgd', compressor: 'topk', workers: 4, steps: 600, lr: 0.1, momentum: 0, optimizer: 'sgd', seed: 1, nonIid: false,
  model: 'mlp', batch: 32, data: 'synthetic', samples: 8192, features: 32, classes: 10, separation: 0.5, json: false, progress: 'lines',
  checkpointEvery: 100, resume: false,
};

export const TRAIN_USAGE = `usage: gradcomp train [flags]      (under mpirun: mpirun -np N npx gradcomp train [flags])
  --algo NAME        ${ALGORITHMS.join(', ')} (default ef-sgd)
  --compressor NAME  ${COMPRESSOR_TYPES.join(', ')} (default topk; the algorithm's own when --algo is given)
  --ratio R          top-k / rand-k / ScaleCom / DGC density (default 0.01)
  --rank R           PowerSGD rank (default 2)      --levels S   QSGD levels (default 15)
  --period H         averaging period (Local SGD family, LIEC-SGD's tau)
  --stage-steps T    STL-SGD's first stage length   --server root|sharded   (DoubleSqueeze, LIEC-SGD)
  --growth iid|non-iid|fixed   STL-SGD's period per stage: x2, x sqrt 2 (default with --non-iid), or kept
  --workers N        workers (default 4)            --steps N    steps (default 600)
  --lr LR            learning rate (default 0.1)    --momentum M  (default 0)   --optimizer sgd|novograd
  --model softmax|mlp|cnn (default mlp; cnn needs images)   --batch B (per worker, default 32; 64 on images)
  --hidden H[,H...]  MLP hidden widths (default 64 on synthetic data, 256,128 on images)
  --data synthetic|fashion-mnist|mnist|idx   (default synthetic)  --data-dir DIR  where the IDX files are
  --epochs E         epochs of each worker's shard (images: default 3; replaces --steps)  --train-limit N
  --scope tensor|model   compress tensor by tensor (default) or the whole model at once (global top-k)
  --warmup-epochs N  sparsity warm-up of dgc and topk (default none)   --warmup-steps N
  --momentum-before true|false   apply momentum on the workers before compression (default: on for scaled sign)
  --bucket N         efsign: one scale per block of N elements (blockwise scaled sign)
  --min-compress N   tensors with fewer elements go dense (default 64)
  --keep-dense first|last|first,last|none   layers sent dense whatever their size (default on
                     image data: the first and the last layer, each where it holds at most a tenth
                     of the parameters: the MLP's classifier, the CNN's first convolution)
  --keep-checkpoints N  checkpoint sets kept (default 2; gradcomp influence uses them all)
  --flip-labels F    flip a seeded fraction F of the training labels (to test mislabel finding)
  --samples N  --features D  --classes C  --separation S   the synthetic dataset
  --seed S           (default 1)                    --non-iid    class-sorted shards
  --json             print one JSON object          --progress bar|lines|none
  --checkpoint DIR   write checkpoints (each rank's whole state) into DIR
  --checkpoint-every N  steps between checkpoints (default 100)
  --resume           continue from the newest complete checkpoint in DIR (a fresh start if none)`;

const NUMERIC: Record<string, [keyof TrainOptions, (v: number) => boolean, string]> = {
  '--ratio': ['ratio', (v) => v > 0 && v <= 1, 'a number in (0, 1]'],
  '--rank': ['rank', (v) => Number.isInteger(v) && v >= 1 && v <= 1024, 'an integer in [1, 1024]'],
  '--levels': ['levels', (v) => Number.isInteger(v) && v >= 1 && v <= 32767, 'an integer in [1, 32767]'],
  '--period': ['period', (v) => Number.isInteger(v) && v >= 1, 'an integer >= 1'],
  '--stage-steps': ['stageSteps', (v) => Number.isInteger(v) && v >= 1, 'an integer >= 1'],
  '--workers': ['workers', (v) => Number.isInteger(v) && v >= 1 && v <= 256, 'an integer in [1, 256]'],
  '--steps': ['steps', (v) => Number.isInteger(v) && v >= 1, 'an integer >= 1'],
  '--lr': ['lr', (v) => v > 0 && Number.isFinite(v), 'a finite number > 0'],
  '--momentum': ['momentum', (v) => v >= 0 && v < 1, 'a number in [0, 1)'],
  '--seed': ['seed', (v) => Number.isInteger(v) && v >= 0 && v <= 0xffffffff, 'an integer in [0, 2^32)'],
  '--batch': ['batch', (v) => Number.isInteger(v) && v >= 1, 'an integer >= 1'],
  '--keep-checkpoints': ['keepCheckpoints', (v) => Number.isInteger(v) && v >= 1, 'an integer >= 1'],
  '--flip-labels': ['flipLabels', (v) => v >= 0 && v < 1, 'a fraction in [0, 1)'],
  '--min-compress': ['minCompress', (v) => Number.isInteger(v) && v >= 0, 'an integer >= 0'],
  '--bucket': ['bucket', (v) => Number.isInteger(v) && v >= 8, 'an integer >= 8'],
  '--warmup-steps': ['warmupSteps', (v) => Number.isInteger(v) && v >= 0, 'an integer >= 0'],
  '--warmup-epochs': ['warmupEpochs', (v) => Number.isInteger(v) && v >= 0, 'an integer >= 0'],
  '--epochs': ['epochs', (v) => Number.isInteger(v) && v >= 1, 'an integer >= 1'],
  '--train-limit': ['trainLimit', (v) => Number.isInteger(v) && v >= 1, 'an integer >= 1'],
  '--samples': ['samples', (v) => Number.isInteger(v) && v >= 1, 'an integer >= 1'],
  '--features': ['features', (v) => Number.isInteger(v) && v >= 1, 'an integer >= 1'],
  '--classes': ['classes', (v) => Number.isInteger(v) && v >= 2, 'an integer >= 2'],
  '--separation': ['separation', (v) => v >= 0 && Number.isFinite(v), 'a finite number >= 0'],
  '--checkpoint-every': ['checkpointEvery', (v) => Number.isInteger(v) && v >= 1, 'an integer >= 1'],
};

/** The compressors with a warm-up of sparsity (--warmup-steps / --warmup-epochs). */
export const WARMUP_COMPRESSORS: readonly string[] = ['dgc', 'topk'];

const bad = (flag: string, expected: string, got: unknown) =>
  new GradcompTypeError(flag, `Expected ${expected} for ${flag} but received ${got === undefined ? 'nothing' : JSON.stringify(got)}`);

export function parseTrainArgs(argv: string[]): TrainOptions {
  const o: TrainOptions = { ...TRAIN_DEFAULTS };
  let compressorGiven = false;
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = () => { const v = argv[++i]; if (v === undefined) throw bad(flag, 'a value', undefined); return v; };
    if (flag in NUMERIC) {
      const [key, ok, what] = NUMERIC[flag], raw = value(), v = Number(raw);
      if (raw.trim() === '' || !ok(v)) throw bad(flag, what, raw);
      (o as unknown as Record<string, unknown>)[key] = v;
    } else if (flag === '--algo') {
      const v = value();
      if (!(ALGORITHMS as readonly string[]).includes(v)) throw bad(flag, `one of ${ALGORITHMS.join(', ')}`, v);
      o.algo = v as AlgorithmName;
    } else if (flag === '--compressor') {
      const v = value();
      if (!(COMPRESSOR_TYPES as readonly string[]).includes(v)) throw bad(flag, `one of ${COMPRESSOR_TYPES.join(', ')}`, v);
      o.compressor = v;
      compressorGiven = true;
    } else if (flag === '--model') {
      const v = value();
      if (v !== 'softmax' && v !== 'mlp' && v !== 'cnn') throw bad(flag, "'softmax', 'mlp' or 'cnn'", v);
      o.model = v;
    } else if (flag === '--hidden') {
      const raw = value(), v = raw.split(',').map(Number);
      if (!v.length || !v.every((h) => Number.isInteger(h) && h >= 1 && h <= 65536)) throw bad(flag, 'widths like 256 or 256,128', raw);
      o.hidden = v;
    } else if (flag === '--data') {
      const v = value();
      if (!['synthetic', 'fashion-mnist', 'mnist', 'idx'].includes(v)) throw bad(flag, "'synthetic', 'fashion-mnist', 'mnist' or 'idx'", v);
      o.data = v as TrainOptions['data'];
    } else if (flag === '--keep-dense') {
      const v = value(), parts = [...new Set(v.split(','))].sort();
      const keep = parts.join(',') as KeepDense;
      if (!(KEEP_DENSE as readonly string[]).includes(keep)) throw bad(flag, "'first', 'last', 'first,last' or 'none'", v);
      o.keepDense = keep;
    } else if (flag === '--momentum-before') {
      const v = value();
      if (v !== 'true' && v !== 'false') throw bad(flag, "'true' or 'false'", v);
      o.momentumBefore = v === 'true';
    } else if (flag === '--growth') {
      const v = value();
      if (v !== 'iid' && v !== 'non-iid' && v !== 'fixed') throw bad(flag, "'iid', 'non-iid' or 'fixed'", v);
      o.growth = v;
    } else if (flag === '--scope') {
      const v = value();
      if (v !== 'tensor' && v !== 'model') throw bad(flag, "'tensor' or 'model'", v);
      o.scope = v;
    } else if (flag === '--data-dir') {
      o.dataDir = value();
    } else if (flag === '--optimizer') {
      const v = value();
      if (v !== 'sgd' && v !== 'novograd') throw bad(flag, "'sgd' or 'novograd'", v);
      o.optimizer = v;
    } else if (flag === '--server') {
      const v = value();
      if (v !== 'root' && v !== 'sharded') throw bad(flag, "'root' or 'sharded'", v);
      o.server = v;
    } else if (flag === '--progress') {
      const v = value();
      if (v !== 'bar' && v !== 'lines' && v !== 'none') throw bad(flag, "'bar', 'lines' or 'none'", v);
      o.progress = v;
    } else if (flag === '--checkpoint') {
      const v = value();
      if (v.trim() === '' || v.startsWith('--')) throw bad(flag, 'a folder', v);
      o.checkpoint = v;
    } else if (flag === '--resume') o.resume = true;
    else if (flag === '--non-iid') o.nonIid = true;
    else if (flag === '--json') o.json = true;
    else throw new GradcompTypeError(flag, `Unknown flag ${flag}\n${TRAIN_USAGE}`);
  }
  if (o.model === 'cnn' && o.data === 'synthetic') throw bad('--model', "'cnn' with image data (--data fashion-mnist, mnist or idx)", 'cnn');
  if (o.data === 'idx' && o.dataDir === undefined) throw bad('--data-dir', 'the folder of IDX files (--data idx)', undefined);
  if (o.data !== 'synthetic' && !argv.includes('--batch')) o.batch = 64;
  if (o.resume && o.checkpoint === undefined) throw bad('--resume', '--checkpoint DIR as well (where to resume from)', undefined);
  if (argv.includes('--checkpoint-every') && o.checkpoint === undefined) throw bad('--checkpoint-every', '--checkpoint DIR as well', undefined);
  // An explicit --algo without --compressor uses that algorithm's own default compressor.
  if (!compressorGiven && argv.includes('--algo')) o.compressor = undefined;
  // A warm-up of sparsity needs a compressor that has one: any other would silently ignore it.
  const warm = ['--warmup-steps', '--warmup-epochs'].find((f) => argv.includes(f)), ctype = compressorSpec(o)?.type ?? defaultCompressorType(o.algo);
  if (warm !== undefined && !WARMUP_COMPRESSORS.includes(ctype ?? '')) throw bad(warm, 'a dgc or topk compressor (the ones with a warm-up of sparsity)', `${ctype ?? 'no'} compressor`);
  checkCombination(o);
  return o;
}

/** Builds the optimizer once against a stand-in single-rank communicator, so a combination the
 * algorithm rejects (a compressor for Local SGD, top-k for signSGD) fails before any worker starts,
 * with the flag's name. */
function checkCombination(o: TrainOptions): void {
  const stub = { rank: 0, size: 1, backend: 'local', reason: 'flag check', allgather: () => Promise.reject(new Error('unused')) } as unknown as Communicator;
  try {
    createDistributedOptimizer(distributedOptions(o, stub));
  } catch (e) {
    const param = (e as { param?: string }).param ?? '';
    const flag = param.startsWith('options.compressor') ? '--compressor' : param.startsWith('options.') ? `--${param.slice(8)}` : '--algo';
    throw new GradcompTypeError(flag, `${flag}: ${(e as Error).message}`);
  }
}

/** The flags given that the chosen algorithm does not read, with the algorithms that do. */
export function unusedFlags(o: TrainOptions): string[] {
  const flags: [string, keyof typeof ONLY_FOR, unknown][] = [['--period', 'period', o.period], ['--stage-steps', 'stageSteps', o.stageSteps], ['--server', 'server', o.server], ['--growth', 'growth', o.growth]];
  return flags.filter(([, k, v]) => v !== undefined && !ONLY_FOR[k].includes(o.algo)).map(([f, k]) => `${f} has no effect with --algo ${o.algo} (${ONLY_FOR[k].join(', ')} read it)`);
}

/** The createDistributedOptimizer options the flags describe. */
export function distributedOptions(o: TrainOptions, comm: Communicator): DistributedOptions {
  const compressor = compressorSpec(o);
  return {
    comm, algorithm: o.algo, minCompressSize: o.minCompress ?? 64,
    optimizer: o.optimizer === 'novograd' ? { type: 'novograd', lr: o.lr } : { type: 'sgd', lr: o.lr, ...(o.momentum > 0 ? { momentum: o.momentum } : {}) },
    ...(compressor ? { compressor } : {}),
    // Flags the algorithm does not read are left out (the launcher says so): one set of flags can
    // then run several algorithms side by side, as comparisons do.
    ...(o.period !== undefined && ONLY_FOR.period.includes(o.algo) ? { period: o.period } : {}),
    ...(o.stageSteps !== undefined && ONLY_FOR.stageSteps.includes(o.algo) ? { stageSteps: o.stageSteps } : {}),
    ...(o.server !== undefined && ONLY_FOR.server.includes(o.algo) ? { server: o.server } : {}),
    ...(o.scope !== undefined ? { scope: o.scope } : {}),
    ...(o.momentumBefore !== undefined ? { momentumBeforeCompression: o.momentumBefore } : {}),
    ...(o.algo === 'stl' ? { growth: o.growth ?? (o.nonIid ? 'non-iid' as const : 'iid' as const) } : {}),
  };
}

/** The compressor spec the flags describe (undefined: the algorithm's default). */
export function compressorSpec(o: TrainOptions): CompressorSpec | undefined {
  const t = o.compressor;
  if (t === undefined) return undefined;
  switch (t) {
    case 'topk': case 'randk': case 'scalecom': case 'dgc': return { type: t, ratio: o.ratio ?? 0.01 } as CompressorSpec;
    case 'qsgd': return { type: 'qsgd', levels: o.levels ?? 15 };
    case 'powersgd': return { type: 'powersgd', rank: o.rank ?? 2 };
    case 'signum': return { type: 'signum', beta: 0 };
    case 'efsign': return o.bucket !== undefined ? { type: 'efsign', bucket: o.bucket } : { type: 'efsign' };
    default: return { type: t } as CompressorSpec;
  }
}

/** The display name of the compressor an algorithm ends up with. */
export function compressorLabel(o: TrainOptions): string {
  const spec = compressorSpec(o);
  const fallback = defaultCompressorType(o.algo);
  if (fallback === undefined) return 'none (dense model average)';
  if (!spec) return fallback;
  const r = spec as { ratio?: number; rank?: number; levels?: number };
  return spec.type + (r.ratio !== undefined ? ` ${r.ratio}` : r.rank !== undefined ? ` rank ${r.rank}` : r.levels !== undefined ? ` s=${r.levels}` : '');
}
