/**
 * Values in saved states: the Float32Arrays of state() snapshots, and the forms they take after
 * a trip through JSON (number arrays, or the index-keyed objects JSON.stringify makes of typed
 * arrays), all read back as Float32Arrays. stateToJSON writes the compact form.
 */
import { typeError } from '../native/errors';

/** A Float32Array (a copy) from a saved value, or a coded error naming `param`. */
export function asFloat32(v: unknown, param: string): Float32Array {
  if (Object.prototype.toString.call(v) === '[object Float32Array]') return (v as Float32Array).slice();
  if (Array.isArray(v)) {
    if (!v.every((x) => typeof x === 'number')) throw typeError(param, 'a Float32Array or an array of numbers', v);
    return Float32Array.from(v);
  }
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>, n = Object.keys(o).length, out = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const x = o[i];
      if (typeof x !== 'number') throw typeError(param, 'a Float32Array or an array of numbers', v);
      out[i] = x;
    }
    return out;
  }
  throw typeError(param, 'a Float32Array or an array of numbers', v);
}

/** JSON of a state with its typed arrays as plain number arrays (float32 values round-trip exactly). For small states; use saveCheckpoint for models. */
export function stateToJSON(state: unknown, space?: number): string {
  return JSON.stringify(state, (_k, v: unknown) => (ArrayBuffer.isView(v) && !(v instanceof DataView) ? Array.from(v as Float32Array) : v), space);
}
