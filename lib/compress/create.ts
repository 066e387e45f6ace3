/**
 * createCompressor(spec): plain data in, a Compressor out; every field is validated against the
 * compressor's descriptor and errors name it (`spec.ratio`, ...).
 *
 * @example
 * const c = createCompressor({ type: 'topk', ratio: 0.01 });
 * const s = await c.begin('fc1.weight', grad, { step, rank, workers });
 */
import { GradcompError, GradcompTypeError, typeError } from '../native/errors';
import { dtypeOf } from '../tensor/tensor';
import type { CompressorDescriptor, SpecOf } from './descriptor';
import * as registry from './registry';
import type { Compressor, StepContext } from './types';

type Registry = typeof registry;
/** A compressor spec: `{ type, ...fields }` for any registered compressor. */
export type CompressorSpec = { [K in keyof Registry]: SpecOf<Registry[K]> }[keyof Registry];

const DESCRIPTORS: readonly CompressorDescriptor[] = Object.values(registry) as unknown as CompressorDescriptor[];
const BY_TYPE = new Map(DESCRIPTORS.map((d) => [d.type, d]));

// Wire kinds must be unique: a payload of one compressor can never decode as another's.
{
  const kinds = DESCRIPTORS.filter((d) => d.wireKind !== null).map((d) => d.wireKind);
  if (new Set(kinds).size !== kinds.length) throw new GradcompError('ERR_GRADCOMP_INTERNAL', 'two compressors share a wire kind');
}

/** Every compressor type, in registry order. */
export const COMPRESSOR_TYPES: readonly string[] = Object.freeze(DESCRIPTORS.map((d) => d.type));

/** The descriptor of a compressor type (fields, capabilities, bytes), or undefined. */
export function compressorDescriptor(type: string): CompressorDescriptor | undefined {
  return BY_TYPE.get(type);
}

/** Checks a spec against its descriptor; returns the descriptor. */
export function validateSpec(spec: unknown, param = 'spec'): CompressorDescriptor {
  if (spec === null || typeof spec !== 'object' || Array.isArray(spec)) throw typeError(param, 'a compressor spec object', spec);
  const s = spec as Record<string, unknown>;
  const d = typeof s.type === 'string' ? BY_TYPE.get(s.type) : undefined;
  if (!d) throw new GradcompTypeError(`${param}.type`, `Expected one of ${COMPRESSOR_TYPES.join(', ')} for ${param}.type but received ${String(s.type)}`);
  for (const key of Object.keys(s)) {
    if (key === 'type') continue;
    const f = d.fields[key];
    if (!f) throw new GradcompTypeError(`${param}.${key}`, `Unknown field ${param}.${key} for a ${d.type} compressor (fields: ${Object.keys(d.fields).join(', ') || 'none'})`);
    if (s[key] !== undefined) f.check(s[key], `${param}.${key}`);
  }
  for (const [key, f] of Object.entries(d.fields)) if (f.required && s[key] === undefined) f.check(undefined, `${param}.${key}`);
  return d;
}

export function createCompressor(spec: CompressorSpec): Compressor {
  return guarded(validateSpec(spec).create(spec as never));
}

// Compressors take CPU Float32Arrays: anything else (a CUDA tensor included) is a coded error
// naming grad, not a silent misread.
function guarded(c: Compressor): Compressor {
  const begin = c.begin.bind(c);
  Object.defineProperty(c, 'begin', {
    value: (name: string, grad: Float32Array, ctx: StepContext) => {
      if (typeof name !== 'string') return Promise.reject(typeError('name', 'a tensor name (string)', name));
      if (dtypeOf(grad) !== 'float32') {
        return Promise.reject(typeError('grad', 'a Float32Array (compressors take CPU arrays; a CUDA tensor must come back with toArray())', grad));
      }
      return begin(name, grad, ctx);
    },
    writable: true, configurable: true, enumerable: false,
  });
  return c;
}
