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
import { GradcompTypeError, nested, rangeError, typeError } from '../native/errors';
import { createCompressor, CompressorSpec, compressorDescriptor, validateSpec } from '../compress/create';
import type { Capabilities } from '../compress/descriptor';
import { GatherCompressor } from '../compress/gather';
import type { Compressor } from '../compress/types';
import type { Communicator } from '../comm/types';
import { createOptimizer, OptimizerSpec } from '../optim/create';
import type { Optimizer } from '../optim/optimizer';
import { Sgd } from '../optim/sgd';
import type { DistributedOptimizer } from './base';
import { CocodSgd } from './cocod';
import { DoubleSqueeze } from './doublesqueeze';
import { Exchange } from './exchange';
import { Liec } from './liec';
import { LocalSgd, PeriodicOptions, StlSgd } from './periodic';
import { SyncSgd } from './sync';
import { VrlSgd } from './vrl';

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
  /** Float sums in a fixed ring order, bit-identical across launchers (default true; see exchange.ts). */
  deterministic?: boolean;
  /** sync family: tensors below this size are bucketed dense (default 1024). */
  minCompressSize?: number;
  /**
   * sync family: tensors sent dense whatever their size, by name (e.g. the classifier layer, which
   * many papers keep uncompressed: it is small and top-k of it starves whole classes).
   */
  denseTensors?: readonly string[];
  /** sync family: dense bucket capacity in bytes (default 25 MiB). */
  bucketBytes?: number;
  /** double-squeeze, liec: where the server lives (default 'root'). */
  server?: 'root' | 'sharded';
  /** liec: sync period tau (default 32); local, vrl, cocod: H (default 8); stl: k_1. */
  period?: number;
  /** stl: first stage length, growth rule and lr decay per stage. */
  stageSteps?: number;
  growth?: 'iid' | 'non-iid' | 'fixed';
  lrDecay?: number;
  /** Shapes of Float32Array parameters (Tensors carry theirs): PowerSGD compresses only matrices. */
  shapes?: Record<string, readonly number[]>;
  /** Check on the first step that every rank starts from identical parameters (default true). */
  checkIdentical?: boolean;
  /**
   * sync family: 'tensor' (default) compresses each tensor on its own; 'model' concatenates every
   * compressed tensor into one vector, so top-k and DGC select across the whole model (global top-k).
   */
  scope?: 'tensor' | 'model';
  /**
   * With an SGD optimizer with momentum: apply the momentum on each worker before compression
   * (the compressor then sees, and error feedback keeps, the momentum-corrected update; the
   * compressed tensors get plain SGD). Default: true for scaled-sign compressors (efsign, and the
   * double-squeeze and liec algorithms), where momentum applied after a biased compressor diverges;
   * false otherwise. DGC always takes the momentum itself.
   */
  momentumBeforeCompression?: boolean;
  /**
   * sync family, with a compressor whose rounds are all allreduces (PowerSGD): true (default) runs
   * every compressed tensor's rounds together, one allreduce per round for all of them (P, then Q),
   * as PyTorch's PowerSGD hook batches a bucket; false gives each tensor its own allreduces, each
   * starting as soon as its gradient is handed in (more overlap with a backward pass, more rounds).
   */
  lockstep?: boolean;
}

const OPTIONS = ['comm', 'algorithm', 'compressor', 'optimizer', 'lr', 'deterministic', 'minCompressSize', 'denseTensors', 'bucketBytes', 'server', 'period',
  'stageSteps', 'growth', 'lrDecay', 'shapes', 'checkIdentical', 'scope', 'momentumBeforeCompression', 'lockstep'];

/** Per algorithm: the compressor it uses when none is given, and what it accepts (derived from the compressors' capabilities). */
const RULES: Partial<Record<AlgorithmName, { fallback: CompressorSpec; accepts: (type: string, c: Capabilities) => boolean; what: string }>> = {
  sync: { fallback: { type: 'none' }, accepts: () => true, what: 'any compressor' },
  'ef-sgd': { fallback: { type: 'efsign' }, accepts: (_t, c) => c.errorFeedback !== 'never', what: 'a compressor with error feedback' },
  signsgd: { fallback: { type: 'signum', beta: 0 }, accepts: (t) => t === 'signum', what: 'a compressor of type signum' },
  scalecom: { fallback: { type: 'scalecom', ratio: 0.01 }, accepts: (t) => t === 'scalecom', what: 'a compressor of type scalecom' },
  powersgd: { fallback: { type: 'powersgd', rank: 2 }, accepts: (t) => t === 'powersgd', what: 'a compressor of type powersgd' },
  'double-squeeze': { fallback: { type: 'efsign' }, accepts: (_t, c) => c.bareOperator, what: 'a bare-operator compressor (efsign, topk, qsgd, fp16, bf16, terngrad)' },
  liec: { fallback: { type: 'efsign' }, accepts: (_t, c) => c.bareOperator, what: 'a bare-operator compressor (efsign, topk, qsgd, fp16, bf16, terngrad)' },
};

/** The compressor type an algorithm uses when none is given (undefined: it takes none). */
export function defaultCompressorType(algorithm: AlgorithmName): string | undefined {
  return RULES[algorithm]?.fallback.type;
}

function int(o: Record<string, unknown>, key: string, min: number): void {
  const v = o[key];
  if (v !== undefined && (typeof v !== 'number' || !Number.isInteger(v))) throw typeError(`options.${key}`, 'an integer', v);
  if (v !== undefined && (v as number) < min) throw rangeError(`options.${key}`, `an integer >= ${min}`, v);
}

function validate(options: DistributedOptions): Record<string, unknown> {
  if (options === null || typeof options !== 'object') throw typeError('options', 'an options object', options);
  const o = options as unknown as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!OPTIONS.includes(k)) throw new GradcompTypeError(`options.${k}`, `Unknown option options.${k} (options: ${OPTIONS.join(', ')})`);
  const comm = options.comm;
  if (comm === null || typeof comm !== 'object' || typeof comm.allgather !== 'function' || !Number.isInteger(comm.size)) throw typeError('options.comm', 'a Communicator (from init())', comm);
  if (options.algorithm !== undefined && !ALGORITHMS.includes(options.algorithm)) throw typeError('options.algorithm', `one of ${ALGORITHMS.join(', ')}`, options.algorithm);
  for (const k of ['deterministic', 'checkIdentical', 'momentumBeforeCompression', 'lockstep']) if (o[k] !== undefined && typeof o[k] !== 'boolean') throw typeError(`options.${k}`, 'a boolean', o[k]);
  int(o, 'minCompressSize', 0);
  if (options.denseTensors !== undefined && (!Array.isArray(options.denseTensors) || options.denseTensors.some((n) => typeof n !== 'string'))) {
    throw typeError('options.denseTensors', 'an array of tensor names', options.denseTensors);
  }
  int(o, 'bucketBytes', 4);
  int(o, 'period', 1);
  int(o, 'stageSteps', 1);
  if (options.scope !== undefined && options.scope !== 'tensor' && options.scope !== 'model') throw typeError('options.scope', "'tensor' or 'model'", options.scope);
  if (options.server !== undefined && options.server !== 'root' && options.server !== 'sharded') throw typeError('options.server', "'root' or 'sharded'", options.server);
  if (options.growth !== undefined && options.growth !== 'iid' && options.growth !== 'non-iid' && options.growth !== 'fixed') {
    throw typeError('options.growth', "'iid', 'non-iid' or 'fixed'", options.growth);
  }
  if (options.lrDecay !== undefined && (typeof options.lrDecay !== 'number' || !(options.lrDecay > 0 && options.lrDecay <= 1))) throw typeError('options.lrDecay', 'a number in (0, 1]', options.lrDecay);
  if (options.shapes !== undefined) {
    if (options.shapes === null || typeof options.shapes !== 'object') throw typeError('options.shapes', 'an object of shapes by parameter name', options.shapes);
    for (const [n, s] of Object.entries(options.shapes)) {
      if (!Array.isArray(s) || s.some((d) => !Number.isSafeInteger(d) || d < 0)) throw typeError(`options.shapes.${n}`, 'an array of non-negative integers', s);
    }
  }
  return o;
}

function optimizerOf(options: DistributedOptions): Optimizer {
  if (options.optimizer !== undefined) {
    if (options.lr !== undefined) throw new GradcompTypeError('options.lr', 'Give the learning rate in options.optimizer or options.lr, not both');
    const x = options.optimizer as Optimizer;
    if (x === null || typeof x !== 'object') throw typeError('options.optimizer', "an optimizer spec such as { type: 'sgd', lr: 0.1 }, or an Optimizer", x);
    if (typeof x.update === 'function' && typeof x.state === 'function') return x;
    try { return createOptimizer(options.optimizer as OptimizerSpec); } catch (e) { throw nested(e, 'options.optimizer'); }
  }
  if (options.lr === undefined) throw typeError('options.lr', 'a learning rate (or options.optimizer)', undefined);
  return createOptimizer({ type: 'sgd', lr: options.lr });
}

/**
 * DGC applies momentum itself (momentum correction), so SGD's momentum moves into the compressor:
 * the compressed tensors then get plain SGD (same lr and weight decay), the dense ones keep theirs.
 */
function dgcWithMomentum(spec: Record<string, unknown>, optimizer: Optimizer): { spec: Record<string, unknown>; compressedOptimizer?: Optimizer } {
  if (!(optimizer instanceof Sgd) || optimizer.momentum === 0) return { spec };
  if (spec.momentum !== undefined) {
    throw new GradcompTypeError('options.compressor.momentum', 'DGC applies momentum itself: give momentum either to the optimizer (it then moves into DGC) or to the DGC spec, not both');
  }
  const plain = new Sgd({ lr: optimizer.lr, weightDecay: optimizer.weightDecay });
  return { spec: { ...spec, momentum: optimizer.momentum, nesterov: optimizer.nesterov }, compressedOptimizer: plain };
}

/**
 * Options that only some algorithms read. Given to another (`{ algorithm: 'sync', period: 8 }`, a
 * user who meant Local SGD) they would be ignored without a word, so they are refused, saying
 * which algorithms take them. (The synchronous family's tuning options, minCompressSize and the
 * like, stay accepted everywhere: harmless where unused, and generic code passes them to all.)
 */
export const ONLY_FOR: Readonly<Record<'period' | 'stageSteps' | 'growth' | 'lrDecay' | 'server', readonly AlgorithmName[]>> = {
  period: ['local', 'stl', 'vrl', 'cocod', 'liec'], stageSteps: ['stl'], growth: ['stl'], lrDecay: ['stl'], server: ['liec', 'double-squeeze'],
};

export function createDistributedOptimizer(options: DistributedOptions): DistributedOptimizer {
  const o = validate(options);
  const algorithm = options.algorithm ?? 'sync';
  for (const [k, algos] of Object.entries(ONLY_FOR)) {
    if (o[k] !== undefined && !algos.includes(algorithm)) throw new GradcompTypeError(`options.${k}`, `${algorithm} has no option ${k} (${algos.join(', ')} take it)`);
  }
  const optimizer = optimizerOf(options);
  const ex = new Exchange(options.comm, options.deterministic ?? true);
  const base = { shapes: options.shapes, checkIdentical: options.checkIdentical };
  const rule = RULES[algorithm];
  if (!rule) {
    if (options.compressor !== undefined) throw new GradcompTypeError('options.compressor', `${algorithm} averages dense models and takes no compressor`);
    const p: PeriodicOptions = { ...base, period: options.period, stageSteps: options.stageSteps, growth: options.growth, lrDecay: options.lrDecay };
    return algorithm === 'stl' ? new StlSgd(ex, optimizer, p) : algorithm === 'vrl' ? new VrlSgd(ex, optimizer, p)
      : algorithm === 'cocod' ? new CocodSgd(ex, optimizer, p) : new LocalSgd(ex, optimizer, p);
  }
  const given = options.compressor ?? rule.fallback;
  let compressor: Compressor, compressedOptimizer: Optimizer | undefined;
  if (typeof (given as Compressor).begin === 'function') {
    compressor = given as Compressor;
    if (compressor.type === 'dgc' && optimizer instanceof Sgd && optimizer.momentum > 0) {
      throw new GradcompTypeError('options.compressor', 'A DGC instance with an SGD optimizer with momentum would apply momentum twice: pass the DGC spec (the momentum then moves into it) or use momentum 0');
    }
  } else {
    let spec = { ...(given as unknown as Record<string, unknown>) };
    const d = validateSpec(spec, 'options.compressor');
    if (algorithm === 'ef-sgd' && d.capabilities.errorFeedback === 'optional') {
      if (spec.errorFeedback === false) throw new GradcompTypeError('options.compressor.errorFeedback', 'ef-sgd is error feedback: leave errorFeedback on');
      spec.errorFeedback = true;
    }
    if (d.type === 'dgc') ({ spec, compressedOptimizer } = dgcWithMomentum(spec, optimizer));
    compressor = createCompressor(spec as unknown as CompressorSpec);
  }
  const caps = compressorDescriptor(compressor.type)?.capabilities;
  if (!caps || !rule.accepts(compressor.type, caps)) {
    throw new GradcompTypeError('options.compressor', `Expected ${rule.what} for ${algorithm} but received ${compressor.type}`);
  }
  // Momentum before compression: the compressed tensors' optimizer becomes plain SGD.
  const server = algorithm === 'double-squeeze' || algorithm === 'liec';
  const before = options.momentumBeforeCompression ?? (server || compressor.type === 'efsign');
  let workerMomentum: { momentum: number; nesterov: boolean } | undefined;
  if (before && compressor.type !== 'dgc' && optimizer instanceof Sgd && optimizer.momentum > 0) {
    workerMomentum = { momentum: optimizer.momentum, nesterov: optimizer.nesterov };
    compressedOptimizer = new Sgd({ lr: optimizer.lr, weightDecay: optimizer.weightDecay });
  }
  if (options.scope === 'model' && caps.needsShape) throw new GradcompTypeError('options.scope', `${compressor.type} compresses matrices one by one: scope 'model' needs a compressor that takes a vector`);
  if (server) {
    if (!(compressor instanceof GatherCompressor)) throw typeError('options.compressor', 'a gather compressor (efsign, topk, qsgd, fp16, bf16, terngrad)', compressor);
    const s = { ...base, server: options.server, period: options.period, workerMomentum };
    const opt = compressedOptimizer ?? optimizer;
    return algorithm === 'liec' ? new Liec(ex, opt, compressor, s) : new DoubleSqueeze(ex, opt, compressor, s);
  }
  void o;
  return new SyncSgd(algorithm, ex, optimizer, compressor, { ...base, minCompressSize: options.minCompressSize, denseTensors: options.denseTensors, bucketBytes: options.bucketBytes, compressedOptimizer,
    scope: options.scope, workerMomentum, lockstep: options.lockstep });
}
