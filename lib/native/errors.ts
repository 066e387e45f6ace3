/**
 * Error classes. Every error gradcomp throws on purpose is one of these, with a stable `code`:
 * - `GradcompTypeError` (a `TypeError`, code `ERR_GRADCOMP_INVALID_ARG_TYPE`): an argument of the wrong type;
 * - `GradcompRangeError` (a `RangeError`, code `ERR_GRADCOMP_OUT_OF_RANGE`): a value out of range or
 *   lengths that disagree;
 * - `GradcompError` with codes `ERR_GRADCOMP_CORRUPT_PAYLOAD`, `ERR_GRADCOMP_DISPOSED`,
 *   `ERR_GRADCOMP_DETACHED`, `ERR_GRADCOMP_NATIVE_LOAD`, `ERR_GRADCOMP_OUT_OF_MEMORY`,
 *   `ERR_GRADCOMP_INTERNAL`, `ERR_GRADCOMP_DEVICE` (the CUDA runtime failed; its text is in the message); communicators add `ERR_GRADCOMP_PEER_FAILED`, `ERR_GRADCOMP_COMM_TIMEOUT`,
 *   `ERR_GRADCOMP_COLLECTIVE_MISMATCH` and `ERR_GRADCOMP_BACKEND_UNAVAILABLE`; the distributed optimizers
 *   `ERR_GRADCOMP_PARAMS_MISMATCH` (ranks did not start from the same model); checkpoints
 *   `ERR_GRADCOMP_CORRUPT_CHECKPOINT` (naming the file and the tensor).
 * Argument errors carry `param`, the name of the offending parameter.
 */

export type GradcompErrorCode =
  | 'ERR_GRADCOMP_INVALID_ARG_TYPE'
  | 'ERR_GRADCOMP_OUT_OF_RANGE'
  | 'ERR_GRADCOMP_CORRUPT_PAYLOAD'
  | 'ERR_GRADCOMP_DISPOSED'
  | 'ERR_GRADCOMP_DETACHED'
  | 'ERR_GRADCOMP_NATIVE_LOAD'
  | 'ERR_GRADCOMP_OUT_OF_MEMORY'
  | 'ERR_GRADCOMP_INVALID_ARG'
  | 'ERR_GRADCOMP_PEER_FAILED'
  | 'ERR_GRADCOMP_COMM_TIMEOUT'
  | 'ERR_GRADCOMP_COLLECTIVE_MISMATCH'
  | 'ERR_GRADCOMP_BACKEND_UNAVAILABLE'
  | 'ERR_GRADCOMP_DEVICE'
  | 'ERR_GRADCOMP_PARAMS_MISMATCH'
  | 'ERR_GRADCOMP_CORRUPT_CHECKPOINT'
  | 'ERR_GRADCOMP_COMM_LENT'
  | 'ERR_GRADCOMP_INTERNAL';

export class GradcompError extends Error {
  readonly code: GradcompErrorCode;
  readonly param?: string;
  constructor(code: GradcompErrorCode, message: string, param?: string) {
    super(message);
    this.name = 'GradcompError';
    this.code = code;
    if (param !== undefined) this.param = param;
  }
}

export class GradcompTypeError extends TypeError {
  readonly code = 'ERR_GRADCOMP_INVALID_ARG_TYPE' as const;
  readonly param: string;
  constructor(param: string, message: string) {
    super(message);
    this.name = 'GradcompTypeError';
    this.param = param;
  }
}

export class GradcompRangeError extends RangeError {
  readonly code = 'ERR_GRADCOMP_OUT_OF_RANGE' as const;
  readonly param: string;
  constructor(param: string, message: string) {
    super(message);
    this.name = 'GradcompRangeError';
    this.param = param;
  }
}

/**
 * The same error with its parameter seen from an enclosing call: `options.lr` raised while building
 * options.optimizer becomes `options.optimizer.lr` (the first segment, 'options' or 'spec', is the
 * inner call's own argument). Other errors pass through unchanged.
 */
export function nested(e: unknown, at: string): unknown {
  if (!(e instanceof GradcompTypeError || e instanceof GradcompRangeError)) return e;
  const inner = e.param, outer = inner.replace(/^[A-Za-z]+/, at);
  const message = e.message.split(inner).join(outer);
  return e instanceof GradcompTypeError ? new GradcompTypeError(outer, message) : new GradcompRangeError(outer, message);
}

/** Names for a message: the first five, then how many more. */
export function listed(names: readonly string[]): string {
  return names.length <= 5 ? names.join(', ') : `${names.slice(0, 5).join(', ')} and ${names.length - 5} more`;
}

/** An optional options object with only the given keys (a misspelt option would otherwise be ignored): refused otherwise, naming it. */
export function checkOptions(value: unknown, param: string, keys: readonly string[]): void {
  if (value === undefined) return;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw typeError(param, 'an options object', value);
  for (const k of Object.keys(value)) if (!keys.includes(k)) throw typeError(`${param}.${k}`, `one of the options ${keys.join(', ')}`, k);
}

/** Thrown when a disposed Tensor is used. */
export class DisposedError extends GradcompError {
  constructor(what: string) {
    super('ERR_GRADCOMP_DISPOSED', `${what} was used after dispose()`);
    this.name = 'DisposedError';
  }
}

/** Describes a received value for error messages: `1.5 (number)`, `Float64Array(3)`, ... */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (ArrayBuffer.isView(value)) {
    const tag = Object.prototype.toString.call(value).slice(8, -1);
    return `${tag}(${(value as unknown as { length?: number }).length ?? value.byteLength})`;
  }
  if (typeof value === 'string') return `'${value.length > 40 ? value.slice(0, 40) + '...' : value}' (string)`;
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') {
    return `${String(value)} (${typeof value})`;
  }
  if (typeof value === 'function') return 'a function';
  const ctor = (value as { constructor?: { name?: string } }).constructor?.name;
  return ctor ? `an instance of ${ctor}` : typeof value;
}

export function typeError(param: string, expected: string, received: unknown): GradcompTypeError {
  return new GradcompTypeError(param, `Expected ${expected} for ${param} but received ${describe(received)}`);
}

export function rangeError(param: string, expected: string, received: unknown): GradcompRangeError {
  return new GradcompRangeError(param, `Expected ${expected} for ${param} but received ${describe(received)}`);
}

/**
 * Maps a native status code (native/core/include/gradcomp/gradcomp.h) to an error; `detail` is
 * the runtime's own text when there is one (CUDA, MPI). Every addon gets this as its factory.
 */
export function nativeError(status: number, op: string, detail = ''): GradcompError {
  const more = detail ? ` (${detail})` : '';
  switch (status) {
    case 1:
      return new GradcompError('ERR_GRADCOMP_INVALID_ARG', `${op}: the native kernel rejected its arguments${more}`);
    case 2:
      return new GradcompError('ERR_GRADCOMP_CORRUPT_PAYLOAD', `${op}: the payload is malformed or truncated${more}`, 'payload');
    case 3:
      return new GradcompError('ERR_GRADCOMP_OUT_OF_MEMORY', `${op}: memory could not be allocated${more}`);
    case 5:
      return new GradcompError('ERR_GRADCOMP_DEVICE', `${op}: the CUDA runtime reported an error${more}`);
    case 6:
      return new GradcompError('ERR_GRADCOMP_PEER_FAILED', `${op}: the communication library reported an error${more}`);
    default:
      return new GradcompError('ERR_GRADCOMP_INTERNAL', `${op}: internal error (status ${status}); please report it${more}`);
  }
}
