/** The public types of the distributed optimizers: what a step takes and returns, stats, state, layout. */
import type { Tensor } from '../tensor/tensor';
import type { Compressor, CompressorState } from '../compress/types';
import type { Optimizer, OptimizerState } from '../optim/optimizer';
import type { TrafficStats } from './exchange';

/** Named parameters or gradients: Float32Arrays or float32 CPU Tensors (used in place). */
export type TensorMap = Record<string, Float32Array | Tensor>;

export interface StepInfo {
  /** The step just taken (0-based). */
  step: number;
  /** The learning rate it used. */
  lr: number;
  /** True when this step ended with the workers' models averaged (or identical by construction). */
  synced: boolean;
}

export interface DistributedStats extends TrafficStats {
  steps: number;
  /** Wall time in compression and decompression, ms. */
  compressMs: number;
  /** What dense data-parallel SGD would have sent by now: 4 bytes x d x steps. */
  denseBytes: number;
}

export interface AlgorithmState {
  format: 'gradcomp.algorithm-state';
  version: 1 | 2;
  algorithm: string;
  rank: number;
  workers: number;
  step: number;
  optimizer: OptimizerState;
  compressor?: CompressorState;
  /** The algorithm's State object: its arrays (residuals, server error, corrections, snapshots)... */
  buffers: Record<string, Float32Array>;
  /** ...and its counters. */
  scalars: Record<string, number>;
}

export interface Layout {
  names: string[];
  sizes: number[];
  offsets: number[];
  shapes: (readonly number[])[];
  /** Whether the shape is known (a Tensor, or the `shapes` option): a Float32Array's [n] says nothing about its rank. */
  shaped: boolean[];
  total: number;
}

/** Hands gradients in tensor by tensor, as a framework's backward pass produces them (DDP's bucket hook). */
export interface StepHandle {
  /** This tensor's gradient is final: its bucket starts compressing and communicating once all its tensors are in. */
  ready(name: string, grad: Float32Array | Tensor): void;
  /** Waits for every bucket and the update of params; every tensor must have been handed in. */
  end(): Promise<StepInfo>;
}

export interface DistributedOptimizer {
  readonly algorithm: string;
  /** The base optimizer (its lr may be changed between steps) and the compressor, if any. */
  readonly optimizer: Optimizer;
  readonly compressor?: Compressor;
  /** Steps taken so far. */
  readonly steps: number;
  /** One training step: updates params in place from this worker's grads. Every rank calls it. */
  step(params: TensorMap, grads: TensorMap): Promise<StepInfo>;
  /** The same step, with gradients handed in per tensor as they become ready (overlaps a backward pass with communication). */
  beginStep(params: TensorMap): StepHandle;
  /** A collective: copies of the workers' average model (params are left alone). */
  averaged(params: TensorMap): Promise<Record<string, Float32Array>>;
  /** A collective: every worker's params become the average (Local SGD family: end of training). */
  synchronize(params: TensorMap): Promise<void>;
  /** Waits for communication still in flight (CoCoD-SGD); needed before state(). */
  drain(): Promise<void>;
  stats(): DistributedStats;
  /** This rank's whole state: optimizer, compressor, algorithm State, schedule position (typed arrays, copies). */
  state(): AlgorithmState;
  load(state: AlgorithmState): void;
}

export interface BaseOptions {
  /** Shapes of Float32Array parameters (a Tensor carries its own): PowerSGD needs matrices. */
  shapes?: Record<string, readonly number[]>;
  /** Check on the first step that every rank holds identical parameters (default true). */
  checkIdentical?: boolean;
}
