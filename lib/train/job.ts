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
import { batch, Dataset, epochBatch, imageDataset, makeDataset, mix, rng, shard, stepsPerEpoch } from './data';
import { findFile, findIdxFolder, idxShape, imageSource, loadIdxImages } from './idx';
import { checkCnnImage, createModel, Model } from './model';
import { KeepDense, TrainOptions, WARMUP_COMPRESSORS, compressorLabel, distributedOptions } from './options';

export interface TrainResult {
  algo: string;
  compressor: string;
  model: string;
  /** The data set: 'synthetic', 'fashion-mnist', 'mnist' or 'idx'. */
  data: string;
  /** Epochs of each worker's shard, when trained by epochs. */
  epochs: number | null;
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

/** The folder of the image data the options name (no file is read), or the coded error that says how to get it; the launcher checks it once, before starting ranks. */
export function checkData(o: TrainOptions): void {
  if (o.data === 'synthetic') return;
  const src = imageSource(o.data, o.dataDir);
  const dir = findIdxFolder(src.candidates, src.howTo);
  // Images too small for the CNN are said once here too, rather than by every rank as it builds the model.
  if (o.model === 'cnn') {
    const shape = idxShape(findFile(dir, 'train-images-idx3-ubyte')!);
    if (shape.length === 3) checkCnnImage(shape[1], shape[2]);
  }
}

/** The training and test sets the options describe: the synthetic mixture, or images (scaled to [0, 1]). */
export function loadData(o: TrainOptions): { train: Dataset; test: Dataset } {
  if (o.data === 'synthetic') return makeDataset({ samples: o.samples, features: o.features, classes: o.classes, separation: o.separation, seed: o.seed });
  const src = imageSource(o.data, o.dataDir);
  const d = loadIdxImages(src.candidates, { trainLimit: o.trainLimit }, src.classes, src.howTo);
  const classes = Math.max(d.classes.length, d.train.labels.reduce((m, v) => Math.max(m, v + 1), 0));
  const train = imageDataset(d.train, classes);
  for (const i of flippedLabels(o, train.samples)) train.y[i] = (train.y[i] + 1 + (mix(o.seed, i, 0xf1a9) % (classes - 1))) % classes;
  return { train, test: imageDataset(d.test, classes) };
}

/** The training examples whose labels --flip-labels changes (ascending): a seeded choice of floor(F n). */
export function flippedLabels(o: TrainOptions, n: number): Int32Array {
  const count = Math.floor((o.flipLabels ?? 0) * n);
  if (count === 0) return new Int32Array(0);
  const order = Int32Array.from({ length: n }, (_, i) => i), u = rng(mix(o.seed, 0xf11b));
  for (let i = n - 1; i > 0; i--) { const j = Math.floor(u() * (i + 1)); [order[i], order[j]] = [order[j], order[i]]; }
  return order.slice(0, count).sort();
}

/**
 * The layers sent dense whatever their size: --keep-dense's, or by default on image data the first
 * and the last layer, each where it is a small part of the model (at most a tenth of the
 * parameters): the MLP's classifier and the small CNN's first convolution (72 weights, of which
 * top-k 1% would send one a step), not the MLP's first layer or the CNN's classifier, which are
 * most of their models. The softmax model's one layer is never kept dense by default.
 */
export function denseLayers(model: Model, keep: KeepDense | undefined, images: boolean): string[] {
  const total = Object.values(model.params).reduce((s, t) => s + t.size, 0);
  const small = (n: string) => images && model.firstWeight !== model.lastWeight && model.params[n].size <= total / 10;
  const picked = [['first', model.firstWeight], ['last', model.lastWeight]].filter(([which, n]) => (keep !== undefined ? keep.split(',').includes(which) : small(n)));
  return [...new Set(picked.map(([, n]) => n))];
}

export type Progress = (step: number, steps: number, loss: number) => void;

export async function trainRank(comm: Communicator, o: TrainOptions, progress?: Progress): Promise<TrainResult | null> {
  const { train, test } = loadData(o);
  const images = o.data !== 'synthetic';
  const model = createModel({ kind: o.model, features: train.features, classes: train.classes, hidden: o.hidden ?? (images ? [256, 128] : [64]), seed: o.seed,
    ...(train.image ? { image: train.image } : {}) });
  const params = Object.fromEntries(Object.entries(model.params).map(([n, t]) => [n, t.data]));
  const mine = shard(train, comm.rank, comm.size, o.nonIid, o.seed);
  // By epochs (real data, or --epochs): every rank takes the same number of steps.
  const epochs = o.epochs ?? (images ? 3 : undefined), perEpoch = stepsPerEpoch(train.samples, comm.size, o.batch);
  const steps = epochs !== undefined ? epochs * perEpoch : o.steps;
  const batchAt = (t: number) => (epochs !== undefined ? epochBatch(mine, o.batch, o.seed, comm.rank, t, perEpoch) : batch(mine, o.batch, o.seed, comm.rank, t));
  const dopts = distributedOptions(o, comm);
  const dense = denseLayers(model, o.keepDense, images);
  if (dense.length) dopts.denseTensors = dense;
  // DGC's warm-up of sparsity (for DGC and top-k) when asked for, by steps or epochs (the paper warms up
  // over 4 of ~90 epochs; in a run of a few epochs it costs more bytes than it saves accuracy: docs/training.md).
  const c = dopts.compressor as { type?: string; warmupSteps?: number } | undefined;
  if (c?.type !== undefined && WARMUP_COMPRESSORS.includes(c.type) && (o.warmupSteps !== undefined || o.warmupEpochs !== undefined)) {
    dopts.compressor = { ...c, warmupSteps: o.warmupSteps ?? (o.warmupEpochs ?? 0) * perEpoch } as never;
  }
  const opt = createDistributedOptimizer(dopts);
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
  for (let t = start; t < steps; t++) {
    const { loss, grads } = model.lossAndGrad(params, train, batchAt(t));
    await opt.step(model.params, grads);
    ema = Number.isNaN(ema) ? loss : 0.95 * ema + 0.05 * loss;
    progress?.(t + 1, steps, ema);
    if (o.checkpoint !== undefined && (t + 1) % o.checkpointEvery === 0 && t + 1 < steps) await saveTrainCheckpoint(o, comm, opt, params, t + 1);
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
    algo: o.algo, compressor: compressorLabel(o), model: o.model, data: o.data, epochs: epochs ?? null, workers: comm.size, steps, nonIid: o.nonIid, backend: comm.backend,
    finalLoss: evTrain.loss, accuracy: evTest.accuracy, trainAccuracy: evTrain.accuracy,
    bytesPerWorker: mean(0), bytesReceivedPerWorker: mean(1), denseBytesPerWorker: 4 * d * steps, rounds: mean(2), parameters: d,
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
    `gradcomp train: ${r.model} (${r.parameters} parameters) on ${r.data === 'synthetic' ? 'synthetic data' : r.data}, ${r.nonIid ? 'non-IID' : 'IID'} shards, ${r.workers} workers (${r.backend}), ${r.steps} steps${r.epochs ? ` (${r.epochs} epochs)` : ''}`,
    line(head), line(row),
    `(communication ${r.commSeconds.toFixed(2)} s, compression ${r.compressSeconds.toFixed(2)} s; bytes are payload bytes sent per worker)`,
  ].join('\n');
}
