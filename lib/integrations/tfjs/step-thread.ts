/**
 * The step thread of a TF.js optimizer (see optimizer.ts): acts as this rank on the communicator
 * the training thread lent it, runs createDistributedOptimizer's steps on request, and answers
 * state requests (getWeights/setWeights) by message.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createDistributedOptimizer } from '../../algorithms/create';
import type { AlgorithmState } from '../../algorithms/types';
import { LocalCommunicator } from '../../comm/local';
import { init } from '../../comm/init';
import type { Communicator } from '../../comm/types';
import type { LocalJob } from '../../comm/shared';
import { Tensor } from '../../tensor/tensor';
import { CTRL, STATS, StepShared, TensorLayout, matrixShape } from './protocol';

interface Init { job: LocalJob | { marker: 'gradcomp.mpi' }; options: Record<string, unknown>; layout: TensorLayout; shared: StepShared; state?: AlgorithmState }

async function main(): Promise<void> {
  const { job, options, layout, shared, state } = workerData as Init;
  const ctrl = new Int32Array(shared.ctrl), lr = new Float64Array(shared.lr);
  const weights = new Float32Array(shared.weights), grads = new Float32Array(shared.grads);
  const shapes: Record<string, number[]> = {};
  const params: Record<string, Tensor> = {}, g: Record<string, Float32Array> = {};
  layout.names.forEach((name, i) => {
    const n = layout.shapes[i].reduce((a, b) => a * b, 1), at = layout.offsets[i];
    shapes[name] = matrixShape(layout.shapes[i]);
    params[name] = Tensor.from(weights.subarray(at, at + n), shapes[name]);
    g[name] = grads.subarray(at, at + n);
  });
  let opt: ReturnType<typeof createDistributedOptimizer>;
  try {
    opt = createDistributedOptimizer({ ...options, comm: await lent(job), shapes } as never);
    if (state) opt.load(state); // setWeights before the first step
  } catch (e) {
    // Said to the training thread, which is blocked until this thread is ready.
    report(shared, e);
    Atomics.store(ctrl, CTRL.READY, -1);
    Atomics.notify(ctrl, CTRL.READY);
    return;
  }
  parentPort!.on('message', (m: { id: number; op: 'state' | 'load'; state?: AlgorithmState }) => {
    void (async () => {
      try {
        if (m.op === 'state') { await opt.drain(); parentPort!.postMessage({ id: m.id, state: opt.state() }); }
        else { opt.load(m.state!); parentPort!.postMessage({ id: m.id }); }
      } catch (e) { parentPort!.postMessage({ id: m.id, error: errorOf(e) }); }
    })();
  });
  Atomics.store(ctrl, CTRL.READY, 1);
  Atomics.notify(ctrl, CTRL.READY);
  let seen = 0;
  for (;;) {
    const w = (Atomics as unknown as { waitAsync(a: Int32Array, i: number, v: number): { async: boolean; value: Promise<string> | string } }).waitAsync(ctrl, CTRL.REQUEST, seen);
    if (w.async) {
      // A pending waitAsync alone does not keep the event loop alive.
      const keep = setInterval(() => undefined, 1 << 30);
      await w.value;
      clearInterval(keep);
    }
    const req = Atomics.load(ctrl, CTRL.REQUEST);
    if (req === seen) continue;
    seen = req;
    if (req < 0) break; // stop
    try {
      opt.optimizer.lr = lr[0];
      await opt.step(params, g);
      const st = opt.stats() as unknown as Record<string, number>, out = new Float64Array(shared.stats);
      STATS.forEach((k, i) => { out[i] = st[k] ?? 0; });
      Atomics.store(ctrl, CTRL.STATUS, 0);
    } catch (e) {
      report(shared, e);
    }
    Atomics.store(ctrl, CTRL.DONE, req);
    Atomics.notify(ctrl, CTRL.DONE);
  }
}

/**
 * The communicator the training thread lent: its local job, or under mpirun the process's Open MPI
 * engine, which init() on this thread shares (and leaves to the training thread to finalize).
 */
async function lent(job: Init['job']): Promise<Communicator> {
  if (job.marker === 'gradcomp.mpi') return init({ backend: 'mpi' });
  return new LocalCommunicator(job, 'the step thread of a TF.js optimizer (lent)');
}

/** Writes a failure into the shared error buffer (JSON, cut to its size) and sets the status word. */
function report(shared: StepShared, e: unknown): void {
  const ctrl = new Int32Array(shared.ctrl);
  let text = JSON.stringify(errorOf(e));
  let bytes = new TextEncoder().encode(text);
  if (bytes.length > shared.error.byteLength) {
    const x = errorOf(e);
    text = JSON.stringify({ ...x, message: x.message.slice(0, shared.error.byteLength / 8) });
    bytes = new TextEncoder().encode(text);
  }
  new Uint8Array(shared.error).set(bytes);
  Atomics.store(ctrl, CTRL.ERROR_BYTES, bytes.length);
  Atomics.store(ctrl, CTRL.STATUS, 1);
}

function errorOf(e: unknown): { code?: string; param?: string; message: string; name?: string } {
  const x = e as { code?: string; param?: string; message?: string; name?: string };
  return { code: x?.code, param: x?.param, message: String(x?.message ?? e), name: x?.name };
}

main().catch((e) => { process.stderr.write(`gradcomp tfjs step thread: ${(e as Error)?.stack ?? e}\n`); process.exit(1); });
