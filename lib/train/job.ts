/**
 * One rank of `gradcomp train`: builds the dataset and model from the seed, trains with
 * createDistributedOptimizer, evaluates the workers' average model, and (on rank 0) returns the
 * result. The same code runs as a worker_thread under the local backend and as a process under
 * mpirun.
 */
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { createDistributedOptimizer } from '../algorithms/create';
import type { Communicator } from '../comm/types';
import { loadTrainCheckpoint, saveTrainCheckpoint } from './checkpoint';
import { batch, makeDataset, shard } from './data';
import { createModel } from './model';
import { TrainOptions, compressorLabel, distributedOptions } from './options';

export interface TrainResult {
  algo: string;
  compressor: string;
  model: string;
  workers: number;
  steps: number;
  nonIid: boolean;
  backend: string;
  /** Mean cross-entropy of the workers' average model on the whole training set. */
  finalLoss: number;
  /** Accuracy of that model on the held-out test set. */
  accuracy: number;
  trainAccuracy: number;
  /** Mean over workers of the payload bytes sent over the run (see lib/algorithms/exchange.ts). */
  bytesPerWorker: number;
  bytesReceivedPerWorker: number;
  /** What dense data-parallel SGD sends per worker over the same steps: 4 bytes x d x steps. */
  denseBytesPerWorker: number;
  /** Collective calls per worker (model averages, compressed rounds, ...). */
  rounds: number;
  parameters: number;
  seconds: number;
  compressSeconds: number;
  commSeconds: number;
  /** sha256 prefix of the final average model's bytes: equal runs give equal digests. */
  digest: string;
}

export type Progress = (step: number, steps: number, loss: number) => void;

export async function trainRank(comm: Communicator, o: TrainOptions, progress?: Progress): Promise<TrainResult | null> {
  const { train, test } = makeDataset({ samples: o.samples, features: o.features, classes: o.classes, separation: o.separation, seed: o.seed });
  const model = createModel(o.model, o.features, o.classes, o.hidden, o.seed);
  const params = Object.fromEntries(Object.entries(model.params).map(([n, t]) => [n, t.data]));
  const mine = shard(train, comm.rank, comm.size, o.nonIid, o.seed);
  const opt = createDistributedOptimizer(distributedOptions(o, comm));
  let start = 0;
  if (o.resume) {
    const ck = await loadTrainCheckpoint(o, comm);
    if (ck) {
      opt.load(ck.state);
      for (const [n, v] of Object.entries(ck.params)) params[n].set(v);
      start = ck.step;
    }
  }
  const t0 = performance.now();
  let ema = NaN;
  for (let t = start; t < o.steps; t++) {
    const { loss, grads } = model.lossAndGrad(params, train, batch(mine, o.batch, o.seed, comm.rank, t));
    await opt.step(model.params, grads);
    ema = Number.isNaN(ema) ? loss : 0.95 * ema + 0.05 * loss;
    progress?.(t + 1, o.steps, ema);
    if (o.checkpoint !== undefined && (t + 1) % o.checkpointEvery === 0 && t + 1 < o.steps) await saveTrainCheckpoint(o, comm, opt, params, t + 1);
  }
  const avg = await opt.averaged(model.params);
  const seconds = (performance.now() - t0) / 1000;
  const s = opt.stats();
  // Every worker's traffic, so the report is the mean over workers (a root server sends more).
  const all = await comm.allgather(Float64Array.of(s.bytesSent, s.bytesReceived, s.rounds));
  if (comm.rank !== 0) return null;
  const mean = (k: number) => { let x = 0; for (let r = 0; r < comm.size; r++) x += all[3 * r + k]; return x / comm.size; };
  const evTrain = model.evaluate(avg, train), evTest = model.evaluate(avg, test);
  const h = createHash('sha256');
  for (const v of Object.values(avg)) h.update(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
  const d = Object.values(avg).reduce((a, v) => a + v.length, 0);
  return {
    algo: o.algo, compressor: compressorLabel(o), model: o.model, workers: comm.size, steps: o.steps, nonIid: o.nonIid, backend: comm.backend,
    finalLoss: evTrain.loss, accuracy: evTest.accuracy, trainAccuracy: evTrain.accuracy,
    bytesPerWorker: mean(0), bytesReceivedPerWorker: mean(1), denseBytesPerWorker: 4 * d * o.steps, rounds: mean(2), parameters: d,
    seconds, compressSeconds: s.compressMs / 1000, commSeconds: s.commMs / 1000, digest: h.digest('hex').slice(0, 16),
  };
}

const mb = (b: number) => (b >= 1e6 ? `${(b / 1e6).toFixed(2)} MB` : `${(b / 1e3).toFixed(1)} kB`);

/** The final table. */
export function formatResult(r: TrainResult): string {
  const head = ['algo', 'compressor', 'final loss', 'test acc', 'sent/worker', 'dense SGD', 'saving', 'rounds', 'time'];
  const row = [r.algo, r.compressor, r.finalLoss.toFixed(4), `${(100 * r.accuracy).toFixed(1)}%`, mb(r.bytesPerWorker), mb(r.denseBytesPerWorker),
    `${(r.denseBytesPerWorker / Math.max(1, r.bytesPerWorker)).toFixed(1)}x`, String(Math.round(r.rounds)), `${r.seconds.toFixed(2)} s`];
  const w = head.map((h, i) => Math.max(h.length, row[i].length));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(w[i])).join('  ').trimEnd();
  return [
    `gradcomp train: ${r.model} (${r.parameters} parameters) on synthetic data, ${r.nonIid ? 'non-IID' : 'IID'} shards, ${r.workers} workers (${r.backend}), ${r.steps} steps`,
    line(head), line(row),
    `(communication ${r.commSeconds.toFixed(2)} s, compression ${r.compressSeconds.toFixed(2)} s; bytes are payload bytes sent per worker)`,
  ].join('\n');
}
