/**
 * The compressor vocabulary (GRACE's Compressor / Memory / Communicator split, made explicit):
 * a compressor turns a named gradient into payloads and payloads back into a dense gradient; it
 * never communicates. Each compression is a session of one or more collective rounds that the
 * algorithm layer runs on its Communicator:
 *
 *   const s = await compressor.begin('fc1.weight', grad, { step, rank, workers });
 *   while (s.round) s.receive(await comm.run(s.round));   // allreduce / allgather / broadcast
 *   const avg = s.result();                                // the workers' average, dense
 *
 * Single-round compressors also offer compress() / decompress() for callers that move bytes
 * themselves.
 */

import type { LowRankGrad, QuantizedGrad, SparseGrad } from '../ops/kernels';

/** How a round's data travels. */
export type Collective =
  /** Elementwise sum of every worker's Float32Array (summable payloads). */
  | 'allreduce'
  /** Every worker's Uint8Array payload, in rank order. */
  | 'allgather'
  /** The root's data, to everyone. */
  | 'broadcast';

export interface Round {
  collective: Collective;
  data: Float32Array | Uint8Array;
  /** For 'broadcast': the rank whose data everyone receives. */
  root?: number;
}

/** What each collective returns to receive(). */
export type RoundResult = Float32Array | Uint8Array[] | Uint8Array;

export interface StepContext {
  /** Training step (drives warm-up schedules and the random streams). */
  step: number;
  /** This worker's rank and the number of workers (default 0 and 1). */
  rank?: number;
  workers?: number;
  /** The tensor's shape (PowerSGD views it as shape[0] x prod(shape[1:])); default [n]. */
  shape?: readonly number[];
  /**
   * Where result() writes the dense average (length n; reused across steps by the algorithms, so
   * nothing is allocated per step). Default: a fresh Float32Array per session.
   */
  out?: Float32Array;
  /**
   * Leave the final 1/workers scaling to the caller (it folds it into the optimizer update, saving
   * a pass): result() may then hold the sum, and the session's `scale` says what to multiply by.
   */
  deferScale?: boolean;
  /**
   * The caller can apply a low-rank result without forming it (Optimizer.updateLowRank): a
   * compressor whose average is low-rank (PowerSGD) may then end the session with `factors` set
   * instead of writing the result; result() then throws.
   */
  factored?: boolean;
  /**
   * The caller can apply a sparse result without forming it (Optimizer.updateSparse): a compressor
   * whose payloads are (index, value) lists (top-k, DGC) may then end the session with `sparse`
   * set instead of writing the result; result() then throws.
   */
  sparse?: boolean;
  /** Likewise for QSGD payloads (Optimizer.updateQuantized): the session may end with `quantized` set. */
  quantized?: boolean;
}

export interface Session {
  /** The next exchange to run, or null when the result is ready. */
  readonly round: Round | null;
  /** Hands in the collective's result for the current round. */
  receive(result: RoundResult): void;
  /** The workers' average gradient (dense), available once round is null (see StepContext.deferScale). */
  result(): Float32Array;
  /** The factor result() still needs to become the average: 1 unless the context deferred it. */
  readonly scale: number;
  /**
   * Set (with StepContext.factored) when the session ended with its average as low-rank factors,
   * not formed: the caller applies them (g = P Qᵀ times `scale`, and residual -= g) itself.
   */
  readonly factors?: LowRankGrad | null;
  /**
   * Set (with StepContext.sparse) when the session ended with the workers' payloads as sparse
   * entries, not decoded: the caller applies their sum (times `scale`) itself. Valid until the
   * tensor's next begin().
   */
  readonly sparse?: SparseGrad | null;
  /** Set (with StepContext.quantized) when the session ended with the workers' QSGD payloads undecoded; valid until the next collective. */
  readonly quantized?: QuantizedGrad | null;
}

/** Per tensor and step: what the compressor moved and what it cost. */
export interface TensorStats {
  name: string;
  step: number;
  /** Dense fp32 bytes of the gradient. */
  bytesBefore: number;
  /** Bytes this worker sent over all rounds. */
  bytesAfter: number;
  ratio: number;
  /** Wall time spent in compression kernels, ms. */
  kernelMs: number;
  /** L2 norm of the error-feedback residual after the step (0 without error feedback); computed when stats() is called. */
  residualNorm: number;
}

/**
 * A snapshot of a compressor's mutable state, per tensor name: each compressor documents its own
 * fields (its `...TensorState` type: residuals, warm starts, counters), as Float32Arrays and
 * numbers (copies). Save it with saveCheckpoint() (binary) or stateToJSON() (small states);
 * load() also takes the number arrays of version 1 snapshots.
 */
export interface CompressorState<T extends object = Record<string, Float32Array | number>> {
  format: 'gradcomp.compressor-state';
  version: 2;
  type: string;
  tensors: Record<string, T>;
}

export interface Compressor {
  readonly type: string;
  /** True when payloads may be summed elementwise by an allreduce. */
  readonly summable: boolean;
  /**
   * True when every round of its sessions is an allreduce of a Float32Array (PowerSGD), so the
   * sessions of several tensors can run in lockstep: one allreduce per round for all of them.
   */
  readonly lockstep?: boolean;
  begin(name: string, grad: Float32Array, ctx: StepContext): Promise<Session>;
  /** The error-feedback memory of a tensor (what was accumulated but not yet sent: DGC's velocity), if this compressor keeps one. */
  residual(name: string): Float32Array | undefined;
  state(): CompressorState;
  load(state: CompressorState | { format: 'gradcomp.compressor-state'; version: 1; type: string; tensors: Record<string, Record<string, number[] | number>> }): void;
  /** Stats of the most recent step of every tensor. */
  stats(): TensorStats[];
}
