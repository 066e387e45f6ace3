/**
 * The shared memory between a TF.js optimizer (on the training thread) and its step thread: the
 * training thread writes weights and gradients, requests a step and blocks (Atomics.wait); the
 * step thread runs the distributed optimizer's step (asynchronous collectives and kernels) on its
 * own event loop, writes the updated weights back and wakes it.
 */
export const CTRL = { REQUEST: 0, DONE: 1, STATUS: 2, ERROR_BYTES: 3, READY: 4 } as const;
export const CTRL_WORDS = 8;
export const ERROR_BYTES = 1 << 16;

export interface TensorLayout { names: string[]; shapes: number[][]; offsets: number[]; total: number }

export interface StepShared {
  ctrl: SharedArrayBuffer;   // Int32 CTRL words
  lr: SharedArrayBuffer;     // one Float64: this step's learning rate
  weights: SharedArrayBuffer; // Float32 x total
  grads: SharedArrayBuffer;   // Float32 x total
  error: SharedArrayBuffer;   // UTF-8 JSON of a failed step's error
  stats: SharedArrayBuffer;   // Float64 x STATS.length: the distributed optimizer's stats after the last step
}

/** The stats the step thread publishes after every step, in this order. */
export const STATS = ['steps', 'bytesSent', 'bytesReceived', 'denseBytes', 'rounds', 'commMs', 'compressMs'] as const;

export function newShared(total: number): StepShared {
  return {
    ctrl: new SharedArrayBuffer(4 * CTRL_WORDS), lr: new SharedArrayBuffer(8),
    weights: new SharedArrayBuffer(4 * Math.max(1, total)), grads: new SharedArrayBuffer(4 * Math.max(1, total)), error: new SharedArrayBuffer(ERROR_BYTES),
    stats: new SharedArrayBuffer(8 * STATS.length),
  };
}

/** The 2-D view PowerSGD gets: a dense kernel [in, out] as is, a conv kernel [kh, kw, in, out] as [kh kw in, out], vectors as [n]. */
export function matrixShape(shape: readonly number[]): number[] {
  if (shape.length <= 2) return [...shape];
  return [shape.slice(0, -1).reduce((a, b) => a * b, 1), shape[shape.length - 1]];
}
