/**
 * createTfjsOptimizer: a tf.Optimizer that runs any algorithm and compressor of
 * createDistributedOptimizer inside plain model.fit(), fitDataset(), minimize() and
 * applyGradients().
 *
 * TF.js calls applyGradients synchronously, while a distributed step is asynchronous (collectives,
 * kernels off the main thread). So the step runs on a step thread: the communicator is lent to it
 * (it acts as this rank; comm.lend), the training thread writes weights and gradients into shared
 * memory and blocks in Atomics.wait until the step thread has run createDistributedOptimizer's step
 * and written the new weights back. The weights are then assigned to the variables. Blocking is
 * allowed where TF.js trains with gradcomp: a rank of `gradcomp run` is a worker thread, and a
 * single-rank script's main thread may Atomics.wait in Node.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { createDistributedOptimizer, DistributedOptions } from '../../algorithms/create';
import type { AlgorithmState } from '../../algorithms/types';
import { LocalCommunicator } from '../../comm/local';
import { MpiCommunicator } from '../../comm/mpi';
import type { Communicator } from '../../comm/types';
import { DisposedError, GradcompError, rangeError, typeError } from '../../native/errors';
import { CTRL, STATS, StepShared, TensorLayout, newShared } from './protocol';
import { tfCore } from './tf';
import type * as TfCore from '@tensorflow/tfjs-core';

/** tfjs-core's NamedTensor (not re-exported from its index). */
type NamedTensor = { name: string; tensor: TfCore.Tensor };

/** createDistributedOptimizer's options as plain data (specs, not instances), plus the communicator. */
export interface TfjsOptimizerOptions {
  comm: Communicator;
  algorithm?: string;
  compressor?: Record<string, unknown>;
  optimizer?: Record<string, unknown>;
  lr?: number;
  /** How long one step may take before applyGradients throws ERR_GRADCOMP_COMM_TIMEOUT (ms, default 600000). */
  stepTimeoutMs?: number;
  [option: string]: unknown;
}

export interface TfjsDistributedOptimizer extends TfCore.Optimizer {
  /** Steps taken through this optimizer. */
  readonly stepCount: number;
  /** The distributed optimizer's traffic and timing after the last step: bytesSent, bytesReceived, denseBytes (what dense SGD sends), rounds, commMs, compressMs. */
  stats(): Record<(typeof STATS)[number], number>;
  /** The whole distributed state (residuals, momentum, counters): what getWeights() carries. */
  distributedState(): Promise<AlgorithmState>;
  /** The learning rate of the next step: set it between steps for a schedule (in an onBatchBegin callback, say). */
  learningRate: number;
}

const STATE_NAME = 'gradcomp.distributed-state';

/** The communicators a step thread can act through (gradcomp run's worker threads, an mpirun rank). */
type Lendable = LocalCommunicator | MpiCommunicator;

function stepThreadFile(): string {
  // The compiled step thread (a checkout running TypeScript directly uses dist/).
  const here = path.join(__dirname, 'step-thread.js');
  if (fs.existsSync(here)) return here;
  const dist = path.join(__dirname, '..', '..', '..', 'dist', 'lib', 'integrations', 'tfjs', 'step-thread.js');
  if (fs.existsSync(dist)) return dist;
  throw new GradcompError('ERR_GRADCOMP_BACKEND_UNAVAILABLE', `the TF.js step thread is not built (${here}): npm run build:ts`);
}

export function createTfjsOptimizer(options: TfjsOptimizerOptions): TfjsDistributedOptimizer {
  if (options === null || typeof options !== 'object') throw typeError('options', 'an options object with comm', options);
  const comm = options.comm;
  if (!(comm instanceof LocalCommunicator) && !(comm instanceof MpiCommunicator)) throw typeError('options.comm', 'the communicator init() returned', comm);
  const { comm: _c, stepTimeoutMs = 600000, ...rest } = options;
  if (typeof stepTimeoutMs !== 'number' || !(stepTimeoutMs > 0) || !Number.isFinite(stepTimeoutMs)) throw typeError('options.stepTimeoutMs', 'a positive number of milliseconds', stepTimeoutMs);
  try { structuredClone(rest); } catch {
    throw typeError('options', 'plain data (compressor and optimizer as specs such as { type: \'sgd\', lr: 0.1 }, not instances)', options);
  }
  // The step thread builds the distributed optimizer; building one here first (nothing is sent or
  // allocated until a step) refuses bad options now, naming them, rather than at the first step.
  createDistributedOptimizer({ ...rest, comm } as DistributedOptions);
  const tf = tfCore();
  const Base = tf.Optimizer as unknown as new () => TfCore.Optimizer;
  const lrOf = (): number => {
    const o = rest.optimizer as { lr?: unknown } | undefined;
    const v = o?.lr ?? rest.lr;
    if (typeof v !== 'number') throw typeError('options.optimizer.lr', 'a learning rate', v);
    return v;
  };

  class GradcompTfjsOptimizer extends Base implements TfjsDistributedOptimizer {
    static get className(): string { return 'GradcompDistributedOptimizer'; }
    learningRate = lrOf();
    stepCount = 0;
    #worker: Worker | undefined;
    #release: (() => void) | undefined;
    #shared: StepShared | undefined;
    #layout: TensorLayout | undefined;
    #ids = 0;
    #disposed = false;
    #pendingState: AlgorithmState | undefined;
    #pending = new Map<number, (m: { state?: AlgorithmState; error?: { message: string; code?: string; param?: string } }) => void>();

    applyGradients(variableGradients: TfCore.NamedTensorMap | NamedTensor[]): void {
      if (this.#disposed) throw new DisposedError('this TF.js optimizer');
      const lr: unknown = this.learningRate;
      if (typeof lr !== 'number' || !Number.isFinite(lr) || lr < 0) throw rangeError('learningRate', 'a finite number >= 0 (the rate of the next step)', lr);
      const entries: [string, TfCore.Tensor][] = Array.isArray(variableGradients)
        ? variableGradients.map((v) => [v.name, v.tensor]) : Object.entries(variableGradients);
      const vars = tf.engine().registeredVariables;
      const byName = new Map(entries);
      this.#start(entries, vars);
      const L = this.#layout!, sh = this.#shared!;
      const weights = new Float32Array(sh.weights), grads = new Float32Array(sh.grads);
      L.names.forEach((name, i) => {
        const g = byName.get(name), v = vars[name];
        if (!g || !v) throw changed(`${name}, trained at the first step, has no gradient now`);
        // A gradient of another size would spill into the next variable's or leave stale values.
        if (g.size !== v.size || g.dtype !== 'float32') throw typeError(`variableGradients.${name}`, `a float32 gradient of the variable's shape [${v.shape.join(', ')}]`, `${g.dtype} [${g.shape.join(', ')}]`);
        weights.set(v.dataSync() as Float32Array, L.offsets[i]);
        grads.set(g.dataSync() as Float32Array, L.offsets[i]);
      });
      this.#runStep();
      L.names.forEach((name, i) => {
        const n = L.shapes[i].reduce((a, b) => a * b, 1);
        vars[name].assign(tf.tensor(weights.slice(L.offsets[i], L.offsets[i] + n), L.shapes[i], 'float32'));
      });
      this.stepCount++;
      this.incrementIterations();
    }

    /** First step: fixes the layout (the variables' order and shapes), lends the communicator, starts the step thread. */
    #start(entries: [string, TfCore.Tensor][], vars: Record<string, TfCore.Variable>): void {
      if (this.#layout) {
        if (entries.length !== this.#layout.names.length) throw changed(`${this.#layout.names.length} variables were trained at the first step, ${entries.length} now`);
        return;
      }
      const names = entries.map(([n]) => n), shapes = names.map((n) => [...(vars[n]?.shape ?? [])]);
      names.forEach((n, i) => {
        if (!vars[n]) throw typeError(`variableGradients.${n}`, 'the gradient of a registered variable', n);
        if (vars[n].dtype !== 'float32') throw typeError(`variableGradients.${n}`, 'a float32 variable', vars[n].dtype);
        if (shapes[i].length === 0) shapes[i] = [1];
      });
      const offsets: number[] = [];
      let total = 0;
      for (const s of shapes) { offsets.push(total); total += s.reduce((a, b) => a * b, 1); }
      this.#layout = { names, shapes, offsets, total };
      this.#shared = newShared(total);
      const { job, release } = (comm as Lendable).lend('a TF.js optimizer');
      this.#release = release;
      // The step thread keys tensors by position (w0, w1, ...: the order of the model's weights), so
      // a saved state loads into another instance of the same model whatever TF.js named its variables.
      const positional: TensorLayout = { ...this.#layout, names: names.map((_, i) => `w${i}`) };
      // denseTensors names TF.js variables: the step thread knows them by position.
      const dense = rest.denseTensors as string[] | undefined;
      const options = dense ? { ...rest, denseTensors: dense.map((n) => (names.includes(n) ? `w${names.indexOf(n)}` : n)) } : rest;
      const worker = new Worker(stepThreadFile(), { workerData: { job, options, layout: positional, shared: this.#shared, state: this.#pendingState } });
      this.#pendingState = undefined;
      worker.on('message', (m: { id: number; state?: AlgorithmState }) => { this.#pending.get(m.id)?.(m); this.#pending.delete(m.id); });
      // After the listener: adding a 'message' listener refs the worker's port again, and a script
      // that ends without dispose() would then never exit.
      worker.unref();
      this.#worker = worker;
      (comm as Lendable).beforeClose.push(() => this.#stop());
      // Blocks until the step thread is up (it loads gradcomp and builds the optimizer).
      const ctrl = new Int32Array(this.#shared.ctrl), deadline = Date.now() + 60000;
      let failure: GradcompError | undefined;
      while (Atomics.load(ctrl, CTRL.READY) === 0) {
        if (Date.now() > deadline) { failure = new GradcompError('ERR_GRADCOMP_COMM_TIMEOUT', 'the TF.js step thread did not start within 60 s'); break; }
        Atomics.wait(ctrl, CTRL.READY, 0, 100);
      }
      if (Atomics.load(ctrl, CTRL.READY) < 0) failure = this.#error();
      if (failure) {
        // Back to where the first step started: no step thread, the communicator free again.
        void this.#stop();
        this.#layout = undefined;
        this.#shared = undefined;
        throw failure;
      }
    }

    /** The error the step thread wrote, with the variables' names for its positional ones. */
    #error(): GradcompError {
      const sh = this.#shared!, ctrl = new Int32Array(sh.ctrl);
      const bytes = new Uint8Array(sh.error, 0, Atomics.load(ctrl, CTRL.ERROR_BYTES));
      const e = JSON.parse(new TextDecoder().decode(bytes.slice())) as { code?: string; param?: string; message: string };
      const named = (t?: string) => t?.replace(/\bw(\d+)\b/g, (m, i: string) => this.#layout!.names[Number(i)] ?? m);
      return new GradcompError((e.code ?? 'ERR_GRADCOMP_INTERNAL') as never, named(e.message)!, named(e.param));
    }

    #runStep(): void {
      const sh = this.#shared!, ctrl = new Int32Array(sh.ctrl);
      new Float64Array(sh.lr)[0] = this.learningRate;
      const seq = Atomics.load(ctrl, CTRL.REQUEST) + 1;
      Atomics.store(ctrl, CTRL.REQUEST, seq);
      Atomics.notify(ctrl, CTRL.REQUEST);
      const limit = Date.now() + stepTimeoutMs;
      while (Atomics.load(ctrl, CTRL.DONE) !== seq) {
        if (Date.now() > limit) throw new GradcompError('ERR_GRADCOMP_COMM_TIMEOUT', 'the TF.js step thread did not finish a step in time (options.stepTimeoutMs)');
        Atomics.wait(ctrl, CTRL.DONE, seq - 1, 1000);
      }
      if (Atomics.load(ctrl, CTRL.STATUS) !== 0) throw this.#error();
    }

    #ask(op: 'state' | 'load', state?: AlgorithmState): Promise<{ state?: AlgorithmState }> {
      if (!this.#worker) return Promise.reject(new GradcompError('ERR_GRADCOMP_INVALID_ARG', 'the optimizer has not taken a step yet: its distributed state does not exist', 'optimizer'));
      const id = ++this.#ids;
      return new Promise((resolve, reject) => {
        this.#pending.set(id, (m) => (m.error ? reject(new GradcompError((m.error.code ?? 'ERR_GRADCOMP_INTERNAL') as never, m.error.message, m.error.param)) : resolve(m)));
        this.#worker!.ref();
        this.#worker!.postMessage({ id, op, state });
      }).finally(() => this.#worker?.unref()) as Promise<{ state?: AlgorithmState }>;
    }

    stats(): Record<(typeof STATS)[number], number> {
      const v = this.#shared ? new Float64Array(this.#shared.stats) : new Float64Array(STATS.length);
      return Object.fromEntries(STATS.map((k, i) => [k, v[i]])) as Record<(typeof STATS)[number], number>;
    }

    async distributedState(): Promise<AlgorithmState> {
      return (await this.#ask('state')).state!;
    }

    /** TF.js checkpoints (model.save with includeOptimizer): the iteration count and the whole distributed state, as the binary checkpoint format's bytes. */
    override async getWeights(): Promise<NamedTensor[]> {
      const { encodeCheckpoint } = await import('../../checkpoint/format');
      const bytes = Buffer.concat(encodeCheckpoint(await this.distributedState()));
      const padded = new Uint8Array(Math.ceil(bytes.length / 4) * 4 + 4);
      new DataView(padded.buffer).setUint32(0, bytes.length, true);
      padded.set(bytes, 4);
      return [await this.saveIterations(), { name: STATE_NAME, tensor: tf.tensor(new Int32Array(padded.buffer), undefined, 'int32') }];
    }

    override async setWeights(weightValues: NamedTensor[]): Promise<void> {
      const rest_ = await this.extractIterations(weightValues);
      const t = rest_.find((w) => w.name === STATE_NAME);
      if (!t) throw typeError('weightValues', `the ${STATE_NAME} entry getWeights() wrote`, rest_.map((w) => w.name));
      const raw = new Uint8Array((await t.tensor.data() as Int32Array).slice().buffer);
      const n = new DataView(raw.buffer).getUint32(0, true);
      const { decodeCheckpoint } = await import('../../checkpoint/format');
      const state = decodeCheckpoint(raw.subarray(4, 4 + n), STATE_NAME) as AlgorithmState;
      if (!this.#worker) this.#pendingState = state; // loaded by the step thread when the first step starts it
      else await this.#ask('load', state);
    }

    getConfig(): TfCore.serialization.ConfigDict {
      return { ...(JSON.parse(JSON.stringify(rest)) as TfCore.serialization.ConfigDict), learningRate: this.learningRate };
    }

    async #stop(): Promise<void> {
      if (!this.#worker) return;
      const w = this.#worker;
      this.#worker = undefined;
      const ctrl = new Int32Array(this.#shared!.ctrl);
      Atomics.store(ctrl, CTRL.REQUEST, -1);
      Atomics.notify(ctrl, CTRL.REQUEST);
      this.#release?.(); // no step is in flight between applyGradients calls: the communicator is free again
      await w.terminate();
    }

    /** Stops the step thread and gives the communicator back. */
    override dispose(): void {
      this.#disposed = true;
      void this.#stop();
      super.dispose();
    }
  }
  return new GradcompTfjsOptimizer();
}

/** The set of variables trained changed after the first step (a layer frozen or unfrozen, another model): one optimizer serves one set. */
function changed(what: string): GradcompError {
  return new GradcompError('ERR_GRADCOMP_INVALID_ARG', `the variables this optimizer trains changed: ${what}. Its distributed state (residuals, momentum) ` +
    'belongs to the first step\'s variables: create a new optimizer (and compile again) after changing which variables are trainable', 'variableGradients');
}
