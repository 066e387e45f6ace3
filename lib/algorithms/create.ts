/**
 * createDistributedOptimizer: one call for any training loop.
 *
 * @example
 * const comm = await init();
 * const opt = createDistributedOptimizer({ comm, algorithm: 'ef-sgd', compressor: { type: 'topk', ratio: 0.01 }, lr: 0.1 });
 * for (let t = 0; t < steps; t++) {
 *   const grads = computeGradients(params, batch(t));   // named Float32Arrays
 *   await opt.step(params, grads);
 * }
 * const model = await opt.averaged(params);             // what to evaluate
 */
import { GradcompTypeError, rangeError, typeError } from '../native/errors';
import { createCompressor, CompressorSpec } from '../compress/create';
import { GatherCompressor } from '../compress/gather';
import type { Compressor } from '../compress/types';
import type { Communicator } from '../comm/types';
import { createOptimizer, OptimizerSpec } from '../optim/create';
import type { Optimizer } from '../optim/optimizer';
import type { DistributedOptimizer } from './base';
import { Exchange } from './exchange';
import { PeriodicSgd } from './periodic';
import { ServerSgd } from './server';
import { SyncSgd } from './sync';

export const ALGORITHMS = ['sync', 'ef-sgd', 'signsgd', 'scalecom', 'powersgd', 'double-squeeze', 'liec', 'local', 'stl', 'vrl', 'cocod'] as const;
export type AlgorithmName = typeof ALGORITHMS[number];

export interface DistributedOptions {
  comm: Communicator;
  /** Default 'sync'. */
  algorithm?: AlgorithmName;
  /** A compressor spec or instance (sync family and the server algorithms). */
  compressor?: CompressorSpec | Compressor;
  /** An optimizer spec or instance; default plain SGD with `lr`. */
  optimizer?: OptimizerSpec | Optimizer;
  /** Learning rate for the default optimizer. */
  lr?: number;
  /** Float sums in rank order, bit-identical across launchers (default true; see exchange.ts). */
  deterministic?: boolean;
  /** sync family: tensors below this size are bucketed dense (default 1024). */
  minCompressSize?: number;
  /** sync family: dense bucket capacity in bytes (default 25 MiB). */
  bucketBytes?: number;
  /** double-squeeze, liec: where the server lives (default 'root'). */
  server?: 'root' | 'sharded';
  /** liec: sync period tau (default 32); local, vrl, cocod: H (default 8); stl: k_1. */
  period?: number;
  /** stl: first stage length, growth rule and lr decay per stage. */
  stageSteps?: number;
  growth?: 'iid' | 'non-iid';
  lrDecay?: number;
}

const OPTIONS = ['comm', 'algorithm', 'compressor', 'optimizer', 'lr', 'deterministic', 'minCompressSize', 'bucketBytes', 'server', 'period', 'stageSteps', 'growth', 'lrDecay'];

/** The compressor each algorithm uses when none is given, and the types it accepts. */
const COMPRESSORS: Partial<Record<AlgorithmName, { fallback: CompressorSpec; accepts: string[] }>> = {
  sync: { fallback: { type: 'none' }, accepts: [] },
  'ef-sgd': { fallback: { type: 'efsign' }, accepts: ['efsign', 'topk', 'randk', 'qsgd', 'fp16', 'bf16', 'powersgd', 'dgc', 'gradiveq'] },
  signsgd: { fallback: { type: 'signum', beta: 0 }, accepts: ['signum'] },
  scalecom: { fallback: { type: 'scalecom', ratio: 0.01 }, accepts: ['scalecom'] },
  powersgd: { fallback: { type: 'powersgd', rank: 2 }, accepts: ['powersgd'] },
  'double-squeeze': { fallback: { type: 'efsign' }, accepts: ['efsign', 'topk', 'qsgd', 'fp16', 'bf16'] },
  liec: { fallback: { type: 'efsign' }, accepts: ['efsign', 'topk', 'qsgd', 'fp16', 'bf16'] },
};

/** The compressor type an algorithm uses when none is given (undefined: it takes none). */
export function defaultCompressorType(algorithm: AlgorithmName): string | undefined {
  return COMPRESSORS[algorithm]?.fallback.type;
}

function int(o: Record<string, unknown>, key: string, min: number): void {
  const v = o[key];
  if (v !== undefined && (typeof v !== 'number' || !Number.isInteger(v))) throw typeError(`options.${key}`, 'an integer', v);
  if (v !== undefined && (v as number) < min) throw rangeError(`options.${key}`, `an integer >= ${min}`, v);
}

export function createDistributedOptimizer(options: DistributedOptions): DistributedOptimizer {
  if (options === null || typeof options !== 'object') throw typeError('options', 'an options object', options);
  const o = options as unknown as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!OPTIONS.includes(k)) throw new GradcompTypeError(`options.${k}`, `Unknown option options.${k} (options: ${OPTIONS.join(', ')})`);
  const comm = options.comm;
  if (comm === null || typeof comm !== 'object' || typeof comm.allgather !== 'function' || !Number.isInteger(comm.size)) throw typeError('options.comm', 'a Communicator (from init())', comm);
  const algorithm = options.algorithm ?? 'sync';
  if (!ALGORITHMS.includes(algorithm)) throw typeError('options.algorithm', `one of ${ALGORITHMS.join(', ')}`, algorithm);
  if (options.deterministic !== undefined && typeof options.deterministic !== 'boolean') throw typeError('options.deterministic', 'a boolean', options.deterministic);
  int(o, 'minCompressSize', 0);
  int(o, 'bucketBytes', 4);
  int(o, 'period', 1);
  int(o, 'stageSteps', 1);
  if (options.server !== undefined && options.server !== 'root' && options.server !== 'sharded') throw typeError('options.server', "'root' or 'sharded'", options.server);
  if (options.growth !== undefined && options.growth !== 'iid' && options.growth !== 'non-iid') throw typeError('options.growth', "'iid' or 'non-iid'", options.growth);
  if (options.lrDecay !== undefined && (typeof options.lrDecay !== 'number' || !(options.lrDecay > 0 && options.lrDecay <= 1))) throw typeError('options.lrDecay', 'a number in (0, 1]', options.lrDecay);

  let optimizer: Optimizer;
  if (options.optimizer !== undefined) {
    if (options.lr !== undefined) throw new GradcompTypeError('options.lr', 'Give the learning rate in options.optimizer or options.lr, not both');
    const x = options.optimizer as Optimizer;
    optimizer = typeof x.step === 'function' && typeof x.state === 'function' ? x : createOptimizer(options.optimizer as OptimizerSpec);
  } else {
    if (options.lr === undefined) throw typeError('options.lr', 'a learning rate (or options.optimizer)', undefined);
    optimizer = createOptimizer({ type: 'sgd', lr: options.lr });
  }

  const ex = new Exchange(comm, options.deterministic ?? true);
  const rule = COMPRESSORS[algorithm];
  if (!rule) {
    if (options.compressor !== undefined) throw new GradcompTypeError('options.compressor', `${algorithm} averages dense models and takes no compressor`);
    return new PeriodicSgd(algorithm as 'local' | 'stl' | 'vrl' | 'cocod', ex, optimizer, options);
  }
  let given = options.compressor;
  if (algorithm === 'ef-sgd' && given !== undefined && typeof (given as Compressor).begin !== 'function') {
    const spec = given as unknown as Record<string, unknown>;
    if (spec.errorFeedback === false) throw new GradcompTypeError('options.compressor.errorFeedback', 'ef-sgd is error feedback: leave errorFeedback on');
    if (['fp16', 'bf16', 'qsgd', 'topk', 'randk', 'powersgd', 'gradiveq'].includes(spec.type as string)) given = { ...spec, errorFeedback: true } as unknown as CompressorSpec;
  }
  const compressor: Compressor = given !== undefined && typeof (given as Compressor).begin === 'function'
    ? given as Compressor : createCompressor((given ?? rule.fallback) as CompressorSpec);
  if (rule.accepts.length > 0 && !rule.accepts.includes(compressor.type)) {
    throw new GradcompTypeError('options.compressor', `Expected a compressor of type ${rule.accepts.join(', ')} for ${algorithm} but received ${compressor.type}`);
  }
  if (algorithm === 'double-squeeze' || algorithm === 'liec') {
    if (!(compressor instanceof GatherCompressor)) throw typeError('options.compressor', 'a gather compressor (efsign, topk, qsgd, fp16, bf16)', compressor);
    return new ServerSgd(algorithm, ex, optimizer, compressor, options);
  }
  return new SyncSgd(algorithm, ex, optimizer, compressor, options);
}
