/**
 * createCompressor(spec): plain data in, a Compressor out; every field is validated and errors
 * name it (`spec.ratio`, ...).
 *
 * @example
 * const c = createCompressor({ type: 'topk', ratio: 0.01 });
 * const s = await c.begin('fc1.weight', grad, { step, rank, workers });
 */
import { GradcompTypeError, rangeError, typeError } from '../native/errors';
import { CastCompressor, CastSpec } from './cast';
import { PowerSgdCompressor, PowerSgdSpec } from './powersgd';
import { QsgdCompressor, QsgdSpec, SignCompressor, SignSpec } from './quant';
import { TopKCompressor, TopKSpec } from './sparse';
import { NoneCompressor, RandKCompressor, RandKSpec } from './summable';
import { DgcCompressor, DgcSpec } from './dgc';
import { AdaCompCompressor, AdaCompSpec } from './adacomp';
import { ScaleComCompressor, ScaleComSpec } from './scalecom';
import { GradiVeQCompressor, GradiVeQSpec } from './gradiveq';
import type { Compressor, StepContext } from './types';
import { dtypeOf } from '../tensor/tensor';

export type CompressorSpec = { type: 'none' } | CastSpec | TopKSpec | RandKSpec | SignSpec | QsgdSpec | PowerSgdSpec
  | DgcSpec | AdaCompSpec | ScaleComSpec | GradiVeQSpec;

export const COMPRESSOR_TYPES = ['none', 'fp16', 'bf16', 'topk', 'randk', 'efsign', 'signum', 'qsgd', 'powersgd', 'dgc', 'adacomp', 'scalecom', 'gradiveq'] as const;

const FIELDS: Record<string, string[]> = {
  none: [], fp16: ['errorFeedback'], bf16: ['errorFeedback'], topk: ['ratio', 'errorFeedback'],
  randk: ['ratio', 'seed', 'errorFeedback'], efsign: [], signum: ['beta'],
  qsgd: ['levels', 'bucketSize', 'norm', 'seed', 'errorFeedback'],
  powersgd: ['rank', 'startIter', 'minCompressionRate', 'warmStart', 'errorFeedback', 'seed'],
  dgc: ['ratio', 'momentum', 'nesterov', 'momentumMasking', 'clipNorm', 'warmupSteps'],
  adacomp: ['binSize'], scalecom: ['ratio', 'beta'],
  gradiveq: ['sliceSize', 'components', 'dense', 'compressed', 'errorFeedback'],
};

function num(spec: Record<string, unknown>, key: string, ok: (v: number) => boolean, expected: string, integer = false): void {
  const v = spec[key];
  if (v === undefined) return;
  if (typeof v !== 'number' || (integer && !Number.isInteger(v))) throw typeError(`spec.${key}`, integer ? 'an integer' : 'a number', v);
  if (!ok(v)) throw rangeError(`spec.${key}`, expected, v);
}

export function createCompressor(spec: CompressorSpec): Compressor {
  if (spec === null || typeof spec !== 'object' || Array.isArray(spec)) throw typeError('spec', 'a compressor spec object', spec);
  const s = spec as unknown as Record<string, unknown>;
  if (typeof s.type !== 'string' || !(s.type in FIELDS)) {
    throw new GradcompTypeError('spec.type', `Expected one of ${COMPRESSOR_TYPES.join(', ')} for spec.type but received ${String(s.type)}`);
  }
  for (const key of Object.keys(s)) {
    if (key !== 'type' && !FIELDS[s.type].includes(key)) {
      throw new GradcompTypeError(`spec.${key}`, `Unknown field spec.${key} for a ${s.type} compressor (fields: ${FIELDS[s.type].join(', ') || 'none'})`);
    }
  }
  for (const key of ['errorFeedback', 'warmStart', 'nesterov', 'momentumMasking']) {
    if (s[key] !== undefined && typeof s[key] !== 'boolean') throw typeError(`spec.${key}`, 'a boolean', s[key]);
  }
  num(s, 'ratio', (v) => v > 0 && v <= 1, 'a number in (0, 1]');
  num(s, 'seed', (v) => v >= 0 && Number.isSafeInteger(v), 'a non-negative safe integer', true);
  num(s, 'beta', s.type === 'scalecom' ? (v) => v > 0 && v <= 1 : (v) => v >= 0 && v < 1, s.type === 'scalecom' ? 'a number in (0, 1]' : 'a number in [0, 1)');
  num(s, 'momentum', (v) => v >= 0 && v < 1, 'a number in [0, 1)');
  num(s, 'clipNorm', (v) => v > 0 && Number.isFinite(v), 'a finite number > 0');
  num(s, 'warmupSteps', (v) => v >= 0, 'an integer >= 0', true);
  num(s, 'binSize', (v) => v >= 1 && v <= 1 << 24, 'an integer >= 1', true);
  num(s, 'sliceSize', (v) => v >= 1 && v <= 1024, 'an integer in [1, 1024]', true);
  num(s, 'components', (v) => v >= 1 && v <= 1024, 'an integer in [1, 1024]', true);
  num(s, 'dense', (v) => v >= 1, 'an integer >= 1', true);
  num(s, 'compressed', (v) => v >= 0, 'an integer >= 0', true);
  num(s, 'levels', (v) => v >= 1 && v <= 32767, 'an integer in [1, 32767]', true);
  num(s, 'bucketSize', (v) => v >= 1 && v <= 0xffffffff, 'an integer >= 1', true);
  num(s, 'rank', (v) => v >= 1 && v <= 1024, 'an integer in [1, 1024]', true);
  num(s, 'startIter', (v) => v >= 0, 'an integer >= 0', true);
  num(s, 'minCompressionRate', (v) => v >= 0 && Number.isFinite(v), 'a finite number >= 0');
  if (s.norm !== undefined && s.norm !== 'max' && s.norm !== 'l2') throw typeError('spec.norm', "'max' or 'l2'", s.norm);
  if ((s.type === 'topk' || s.type === 'randk' || s.type === 'scalecom') && s.ratio === undefined) throw typeError('spec.ratio', 'a number in (0, 1]', undefined);
  if (s.type === 'qsgd' && s.levels === undefined) throw typeError('spec.levels', 'an integer in [1, 32767]', undefined);

  return guarded(build(spec));
}

// Compressors take CPU Float32Arrays: anything else (a CUDA tensor included) is a coded error
// naming grad, not a silent misread.
function guarded(c: Compressor): Compressor {
  const begin = c.begin.bind(c);
  Object.defineProperty(c, 'begin', {
    value: (name: string, grad: Float32Array, ctx: StepContext) => (dtypeOf(grad) === 'float32' ? begin(name, grad, ctx)
      : Promise.reject(typeError('grad', 'a Float32Array (compressors take CPU arrays; a CUDA tensor must come back with toArray())', grad))),
    writable: true, configurable: true, enumerable: false,
  });
  return c;
}

function build(spec: CompressorSpec): Compressor {
  switch (spec.type) {
    case 'none': return new NoneCompressor();
    case 'fp16': case 'bf16': return new CastCompressor(spec);
    case 'topk': return new TopKCompressor(spec);
    case 'randk': return new RandKCompressor(spec);
    case 'efsign': case 'signum': return new SignCompressor(spec);
    case 'qsgd': return new QsgdCompressor(spec);
    case 'powersgd': return new PowerSgdCompressor(spec);
    case 'dgc': return new DgcCompressor(spec);
    case 'adacomp': return new AdaCompCompressor(spec);
    case 'scalecom': return new ScaleComCompressor(spec);
    case 'gradiveq': return new GradiVeQCompressor(spec);
  }
}
