/**
 * What a compressor module declares about itself, once: its spec fields with their validation,
 * its capabilities, the bytes it sends for a shape, and how to build it. createCompressor, the
 * policy's explain(), the wire kinds and the algorithms' defaults all derive from these
 * descriptors (registry.ts lists them), so adding a compressor is one file plus one registry line
 * (CONTRIBUTING.md has the recipe).
 */
import { rangeError, typeError } from '../native/errors';
import type { Collective, Compressor } from './types';

export interface Field {
  /** Throws a coded error naming `param` when the value is not acceptable (undefined is checked only when required). */
  check(v: unknown, param: string): void;
  required?: boolean;
}

export interface Capabilities {
  /** Payloads are summed by an allreduce (else gathered, or broadcast). */
  summable: boolean;
  /** Error feedback: always on, optional (the spec's errorFeedback field; ef-sgd forces it on), or never. */
  errorFeedback: 'always' | 'optional' | 'never';
  /** Usable as a bare operator C(v) with no state (encodeRaw / decodeRawAdd): what DoubleSqueeze and LIEC-SGD need. */
  bareOperator: boolean;
  /** Compresses only tensors with a matrix shape (PowerSGD); others go dense. */
  needsShape: boolean;
  /** The collectives a session uses. */
  collectives: Collective[];
}

export interface CompressorDescriptor<S extends { type: string } = { type: string }> {
  readonly type: S['type'];
  /** The payload envelope's kind byte (wire.ts), unique across compressors; null when payloads carry no envelope. */
  readonly wireKind: number | null;
  readonly fields: Record<string, Field>;
  readonly capabilities: Capabilities;
  /** Bytes one worker sends per step for a tensor of this shape (variable-size payloads: an estimate). */
  expectedBytes(spec: S, shape: readonly number[]): number;
  /**
   * Compute a step costs per element per worker (encode, decode of every worker's payload, error
   * feedback), in ns: what explain() weighs against the bytes saved. Measured by bench:e2e (4 ranks
   * sharing 2 cores, 25.2M parameters); default 3.
   */
  readonly computeNsPerElement?: number;
  create(spec: S): Compressor;
}

export type SpecOf<D> = D extends CompressorDescriptor<infer S> ? S : never;

const numberField = (ok: (v: number) => boolean, expected: string, integer: boolean, required: boolean): Field => ({
  required,
  check(v, param) {
    if (typeof v !== 'number' || (integer && !Number.isInteger(v))) throw typeError(param, integer ? 'an integer' : 'a number', v);
    if (!ok(v)) throw rangeError(param, expected, v);
  },
});

/** Field helpers: `num` and `int` take a predicate and what it means in words. */
export const field = {
  num: (ok: (v: number) => boolean, expected: string, required = false): Field => numberField(ok, expected, false, required),
  int: (ok: (v: number) => boolean, expected: string, required = false): Field => numberField(ok, expected, true, required),
  bool: (): Field => ({ check(v, param) { if (typeof v !== 'boolean') throw typeError(param, 'a boolean', v); } }),
  oneOf: (values: readonly string[]): Field => ({
    check(v, param) { if (!values.includes(v as string)) throw typeError(param, values.map((x) => `'${x}'`).join(' or '), v); },
  }),
  ratio: (required: boolean): Field => numberField((v) => v > 0 && v <= 1, 'a number in (0, 1]', false, required),
  seed: (): Field => numberField((v) => v >= 0 && Number.isSafeInteger(v), 'a non-negative safe integer', true, false),
  errorFeedback: (): Field => field.bool(),
};

/** The common byte formulas. */
export const ENVELOPE = 16;
export const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

