// One rank of the TF.js benchmark (bench/tfjs.ts runs it under gradcomp run -n 4). argv[2] is a
// JSON config:
//   { mode: 'overhead', steps, rounds? }: the same MLP, data and algorithm (ef-sgd top-k 1%) driven
//     two ways in one run, in alternating rounds of `steps` steps: createTfjsOptimizer through
//     optimizer.minimize (TF.js's synchronous applyGradients), and a hand-written async loop
//     (tf.variableGrads, then createDistributedOptimizer's step, then assign). Median ms per step
//     of each over all rounds, and each round's overhead.
//   { mode: 'fit', model, algo, compressor?, gamma?, selection?, filters?, schedule?, epochs, train, test, batch?, shuffle? }: the CNN
//     (or MLP) on Fashion-MNIST through plain model.fit (batch 32 per rank by default; shuffle: a
//     seeded new order of each rank's shard every epoch; filters: the two convolutions' widths, [8, 16];
//     schedule: 'cosine' decays the rate to 0 over the run, set as optimizer.learningRate before each batch);
//     test accuracy, bytes, DropIT memory, time.
// Rank 0 prints one JSON line prefixed with GRADCOMP_TFJS.
'use strict';
const { writeSync } = require('node:fs');
const { createHash } = require('node:crypto');
const tf = require('@tensorflow/tfjs');
const g = require(process.env.GRADCOMP_ENTRY || 'gradcomp');
const gt = require(process.env.GRADCOMP_TFJS_ENTRY || 'gradcomp/tfjs');

const cfg = JSON.parse(process.argv[2]);
const med = (a) => a.slice().sort((x, y) => x - y)[a.length >> 1];

// The library's seeded generator (lib/train/data.ts, not part of the public API).
const { rng } = require(require('node:path').join(require('node:path').dirname(require.resolve(process.env.GRADCOMP_ENTRY || 'gradcomp')), 'train', 'data.js'));

// Fisher-Yates over 0..n-1 driven by rng(seed).
function permutation(n, seed) {
  const next = rng(seed), p = Int32Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) { const j = Math.floor(next() * (i + 1)); const t = p[i]; p[i] = p[j]; p[j] = t; }
  return p;
}

function shard(data, rank, size, limit) {
  const idx = [];
  for (let i = rank; i < Math.min(limit, data.count); i += size) idx.push(i);
  const px = 784, xs = new Float32Array(idx.length * px), ys = new Int32Array(idx.length);
  idx.forEach((i, j) => { xs.set(data.images.subarray(i * px, (i + 1) * px), j * px); ys[j] = data.labels[i]; });
  return { x: tf.tensor4d(xs, [idx.length, 28, 28, 1]), y: tf.oneHot(tf.tensor1d(ys, 'int32'), 10), n: idx.length };
}

function build(kind, gamma, seed, plainFirst, plainLast, init = 'glorotUniform', selection = undefined, filters = [8, 16]) {
  // plainFirst: the first layer stays plain (its input is the data batch, which is held anyway: not an intermediate tensor).
  // plainLast: the classifier stays plain (the DropIT paper's benchmarks leave the first layer and the head undropped).
  let first = plainFirst === true;
  const plain = (last) => { const p = gamma == null || first || (last === true && plainLast === true); first = false; return p; };
  // init: the kernels' initializer by its tf.initializers name (TF.js's default glorotUniform, or heNormal as gradcomp train's models use).
  const dense = (c, last) => (plain(last) ? tf.layers.dense({ ...c, kernelInitializer: tf.initializers[init]({ seed: seed++ }) }) : gt.dropitDense({ ...c, gamma, selection, kernelInitializer: init, seed: seed++ }));
  const conv = (c) => (plain() ? tf.layers.conv2d({ ...c, kernelInitializer: tf.initializers[init]({ seed: seed++ }) }) : gt.dropitConv2d({ ...c, gamma, selection, kernelInitializer: init, seed: seed++ }));
  const layers = kind === 'mlp'
    ? [tf.layers.flatten({ inputShape: [28, 28, 1] }), dense({ units: 256, activation: 'relu' }), dense({ units: 10, activation: 'softmax' }, true)]
    : [conv({ inputShape: [28, 28, 1], filters: filters[0], kernelSize: 3, activation: 'relu' }), tf.layers.maxPooling2d({ poolSize: 2 }),
      conv({ filters: filters[1], kernelSize: 3, activation: 'relu' }), tf.layers.maxPooling2d({ poolSize: 2 }), tf.layers.flatten(), dense({ units: 10, activation: 'softmax' }, true)];
  return tf.sequential({ layers });
}

async function overhead(comm, data) {
  // Rounds alternate the two drivers (A B, then B A, ...), so that a slow patch of the machine
  // falls on both; each round's first two steps of each driver are left out (thread start-up,
  // the first step's weight check). The TF.js optimizer is made anew each round: while it lives,
  // the communicator is lent to its step thread and the hand-written loop cannot use it.
  const rounds = cfg.rounds ?? 5, steps = cfg.steps;
  const { x, y, n } = shard(data.train, comm.rank, comm.size, data.train.count);
  const batches = Math.floor(n / 32);
  const opts = { algorithm: 'ef-sgd', compressor: { type: 'topk', ratio: 0.01 }, optimizer: { type: 'sgd', lr: 0.05, momentum: 0.9 }, minCompressSize: 256 };
  const batchOf = (t) => { const k = t % batches; return [x.slice([k * 32, 0, 0, 0], [32, 28, 28, 1]), y.slice([k * 32, 0], [32, 10])]; };
  const lossOf = (m, t) => () => { const [bx, by] = batchOf(t); return tf.losses.softmaxCrossEntropy(by, m.apply(bx, { training: true })); };
  const a = build('mlp', null, 7), b = build('mlp', null, 7);
  await gt.broadcastWeights(a, comm);
  await gt.broadcastWeights(b, comm);
  const vars = b.trainableWeights, names = vars.map((_, i) => `w${i}`);
  const ob = g.createDistributedOptimizer({ comm, ...opts, shapes: Object.fromEntries(vars.map((v, i) => [names[i], v.shape])) });
  const ta = [], tb = [], ratios = [];
  let ta0 = 0, tb0 = 0;
  const tfjsPhase = async () => {
    // createTfjsOptimizer through optimizer.minimize (TF.js's synchronous applyGradients).
    const oa = gt.createTfjsOptimizer({ comm, ...opts });
    const ms = [];
    for (let t = 0; t < steps; t++, ta0++) { const t0 = performance.now(); tf.tidy(() => { oa.minimize(lossOf(a, ta0)); }); ms.push(performance.now() - t0); }
    oa.dispose();
    await new Promise((r) => setTimeout(r, 200));
    return ms.slice(2);
  };
  const handPhase = async () => {
    // A hand-written async loop, same algorithm: tf.variableGrads, createDistributedOptimizer's step, assign.
    const ms = [];
    for (let t = 0; t < steps; t++, tb0++) {
      const t0 = performance.now();
      const { grads } = tf.variableGrads(lossOf(b, tb0));
      const params = {}, gr = {};
      vars.forEach((v, i) => { params[names[i]] = Float32Array.from(v.read().dataSync()); gr[names[i]] = Float32Array.from(grads[v.val.name].dataSync()); });
      tf.dispose(grads);
      await ob.step(params, gr);
      vars.forEach((v, i) => v.write(tf.tensor(params[names[i]], v.shape)));
      ms.push(performance.now() - t0);
    }
    return ms.slice(2);
  };
  for (let r = 0; r < rounds; r++) {
    let ra, rb;
    if (r % 2 === 0) { ra = await tfjsPhase(); rb = await handPhase(); } else { rb = await handPhase(); ra = await tfjsPhase(); }
    ta.push(...ra); tb.push(...rb);
    ratios.push(med(ra) / med(rb) - 1);
  }
  return { tfjsOptimizerMs: med(ta), handLoopMs: med(tb), overhead: med(ta) / med(tb) - 1, roundOverheads: ratios, steps, rounds };
}

async function fit(comm, data) {
  const { x, y, n } = shard(data.train, comm.rank, comm.size, cfg.train);
  const model = build(cfg.model, cfg.gamma, cfg.seed ?? 1000, cfg.plainFirst, cfg.plainLast, cfg.init, cfg.selection, cfg.filters);
  await gt.broadcastWeights(model, comm);
  const lr0 = cfg.lr ?? 0.05, batch = cfg.batch ?? 32;
  const opt = gt.createTfjsOptimizer({ comm, algorithm: cfg.algo, ...(cfg.compressor ? { compressor: cfg.compressor } : {}), optimizer: { type: 'sgd', lr: lr0, momentum: 0.9 }, minCompressSize: 256, ...(cfg.options ?? {}) });
  model.compile({ optimizer: opt, loss: 'categoricalCrossentropy' });
  let peak = 0;
  const t0 = performance.now();
  // schedule 'cosine': the rate decays from lr to 0 over the whole run (half a cosine), set before each batch.
  const total = cfg.epochs * Math.ceil(n / batch);
  let batchNo = 0;
  const onBatchBegin = cfg.schedule === 'cosine' ? () => { opt.learningRate = lr0 * 0.5 * (1 + Math.cos(Math.PI * batchNo++ / total)); } : undefined;
  const fitOpts = { batchSize: batch, shuffle: false, verbose: 0, callbacks: { onBatchBegin, onBatchEnd: () => { peak = Math.max(peak, tf.memory().numBytes); } } };
  if (cfg.shuffle) {
    // A fresh order of this rank's shard every epoch, from the seed, the rank and the epoch (TF.js's
    // own shuffle draws from Math.random, so runs could not be repeated).
    for (let e = 0; e < cfg.epochs; e++) {
      const idx = tf.tensor1d(permutation(n, (cfg.seed ?? 1000) * 7919 + comm.rank * 104729 + e), 'int32');
      const xe = tf.gather(x, idx), ye = tf.gather(y, idx);
      await model.fit(xe, ye, { ...fitOpts, epochs: 1 });
      tf.dispose([idx, xe, ye]);
    }
  } else {
    await model.fit(x, y, { ...fitOpts, epochs: cfg.epochs });
  }
  const seconds = (performance.now() - t0) / 1000;
  const mem = gt.dropitMemory(model);
  const tx = tf.tensor4d(data.test.images.subarray(0, cfg.test * 784), [cfg.test, 28, 28, 1]);
  const pred = model.predict(tx).argMax(-1).dataSync();
  let right = 0;
  for (let i = 0; i < cfg.test; i++) if (pred[i] === data.test.labels[i]) right++;
  const h = createHash('sha256');
  for (const w of model.getWeights()) h.update(Buffer.from(w.dataSync().buffer));
  const s = opt.stats();
  opt.dispose();
  const kept = mem.reduce((a, m) => a + m.kept, 0), dense = mem.reduce((a, m) => a + m.dense, 0);
  // Backward-pass bytes of the layers (DropIT: packed; plain: the dense inputs they keep, from the same layer shapes).
  return { accuracy: right / cfg.test, seconds, steps: opt.stepCount, samplesPerRank: n, bytesSent: s.bytesSent, denseBytes: s.denseBytes,
    digest: h.digest('hex').slice(0, 16), parameters: model.countParams(), backwardBytes: mem.length ? { dense, kept } : null, peakTfBytes: peak };
}

(async () => {
  if (cfg.backend === 'wasm') require('@tensorflow/tfjs-backend-wasm');
  await tf.setBackend(cfg.backend ?? 'cpu');
  // gradcomp's conv weight gradient and max-pool gradient on the cpu backend, unless the config says
  // otherwise; on wasm its conv weight gradient (tfjs-backend-wasm has none).
  if (cfg.nativeKernels !== false) gt.useNativeKernels({ backend: cfg.backend ?? 'cpu' });
  const comm = await g.init();
  const data = gt.loadFashionMnist(undefined, { trainLimit: cfg.train ?? 60000, testLimit: cfg.test ?? 10000 });
  const out = cfg.mode === 'overhead' ? await overhead(comm, data) : await fit(comm, data);
  const all = await comm.allgather(Float64Array.of(out.digest ? parseInt(out.digest.slice(0, 12), 16) : 0));
  out.ranksIdentical = all.every((v) => v === all[0]);
  if (comm.rank === 0) writeSync(1, 'GRADCOMP_TFJS ' + JSON.stringify({ ...cfg, ...out, ranks: comm.size }) + '\n');
  await comm.close();
})().catch((e) => { writeSync(2, String(e && e.stack || e) + '\n'); process.exit(1); });
