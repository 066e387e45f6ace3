// TensorFlow.js + gradcomp: an MLP or a small CNN on Fashion-MNIST, trained with plain model.fit,
// data-parallel across ranks with compressed gradients, optionally with DropIT layers.
//   npx gradcomp run -n 4 examples/tfjs-fashion.js --model cnn --algo ef-sgd --compressor topk --ratio 0.01
//   npx gradcomp run -n 4 examples/tfjs-fashion.js --model mlp --backend wasm
//   npx gradcomp run -n 4 examples/tfjs-fashion.js --model cnn --gamma 0.9          (DropIT layers)
//   ... --init glorotUniform         (TF.js's default kernel initializer; heNormal by default here)
//   mpirun -np 4 node examples/tfjs-fashion.js --model mlp                          (4 Open MPI processes)
// Needs @tensorflow/tfjs (npm install @tensorflow/tfjs; @tensorflow/tfjs-backend-wasm for --backend
// wasm) and the Fashion-MNIST files (apt-get install dataset-fashion-mnist, or --data DIR).
// Every rank prints one JSON line: test accuracy, bytes sent against dense, DropIT memory, and the
// model digest (the same on every rank: the ranks end bit-identical, whichever the launcher); with
// DropIT layers rank 0 also prints dropitSummary's table to stderr.
'use strict';
const { parseArgs } = require('node:util');
const { createHash } = require('node:crypto');
const tf = require('@tensorflow/tfjs');
const { init } = require('gradcomp');
const { createTfjsOptimizer, broadcastWeights, dropitConv2d, dropitDense, dropitMemory, dropitSummary, loadFashionMnist, useNativeKernels } = require('gradcomp/tfjs');

const { values: o } = parseArgs({ options: {
  model: { type: 'string', default: 'cnn' }, backend: { type: 'string', default: 'cpu' }, algo: { type: 'string', default: 'ef-sgd' },
  compressor: { type: 'string', default: 'topk' }, ratio: { type: 'string', default: '0.01' }, rank: { type: 'string', default: '4' },
  lr: { type: 'string', default: '0.05' }, momentum: { type: 'string', default: '0.9' }, epochs: { type: 'string', default: '2' },
  batch: { type: 'string', default: '32' }, train: { type: 'string', default: '12000' }, test: { type: 'string', default: '2000' },
  gamma: { type: 'string' }, data: { type: 'string' }, seed: { type: 'string', default: '1' }, init: { type: 'string', default: 'heNormal' },
} });
if (!['heNormal', 'glorotUniform', 'heUniform', 'glorotNormal'].includes(o.init)) throw new Error(`--init: heNormal, glorotUniform, heUniform or glorotNormal, not '${o.init}'`);

function compressorSpec() {
  switch (o.compressor) {
    case 'none': return undefined;
    case 'topk': case 'randk': case 'dgc': case 'scalecom': return { type: o.compressor, ratio: Number(o.ratio) };
    case 'powersgd': return { type: 'powersgd', rank: Number(o.rank) };
    case 'qsgd': return { type: 'qsgd', levels: 7 };
    default: return { type: o.compressor };
  }
}

function buildModel(seed) {
  const gamma = o.gamma === undefined ? undefined : Number(o.gamma);
  // Seeded kernels, the same on every rank; He-normal suits ReLU layers (docs/tfjs.md, Measured).
  const init = o.init;
  const dense = (cfg) => (gamma === undefined ? tf.layers.dense({ ...cfg, kernelInitializer: tf.initializers[init]({ seed: seed++ }) })
    : dropitDense({ ...cfg, gamma, kernelInitializer: init, seed: seed++ }));
  const conv = (cfg) => (gamma === undefined ? tf.layers.conv2d({ ...cfg, kernelInitializer: tf.initializers[init]({ seed: seed++ }) })
    : dropitConv2d({ ...cfg, gamma, kernelInitializer: init, seed: seed++ }));
  const layers = o.model === 'mlp'
    ? [tf.layers.flatten({ inputShape: [28, 28, 1] }), dense({ units: 128, activation: 'relu' }), dense({ units: 10, activation: 'softmax' })]
    : [conv({ inputShape: [28, 28, 1], filters: 8, kernelSize: 3, activation: 'relu' }), tf.layers.maxPooling2d({ poolSize: 2 }),
      conv({ filters: 16, kernelSize: 3, activation: 'relu' }), tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.flatten(), dense({ units: 10, activation: 'softmax' })];
  return tf.sequential({ layers });
}

async function main() {
  if (o.backend === 'wasm') require('@tensorflow/tfjs-backend-wasm');
  await tf.setBackend(o.backend);
  // On the cpu backend, gradcomp's native conv weight gradient and max-pool gradient (~11x faster CNN
  // steps); on wasm, gradcomp's conv weight gradient, which tfjs-backend-wasm does not have.
  if (o.backend === 'cpu' || o.backend === 'wasm') useNativeKernels({ backend: o.backend });
  const comm = await init();
  const data = loadFashionMnist(o.data, { trainLimit: Number(o.train), testLimit: Number(o.test) });
  // This rank's shard: every size-th training image.
  const mine = [];
  for (let i = comm.rank; i < data.train.count; i += comm.size) mine.push(i);
  const px = 28 * 28, xs = new Float32Array(mine.length * px), ys = new Int32Array(mine.length);
  mine.forEach((i, j) => { xs.set(data.train.images.subarray(i * px, (i + 1) * px), j * px); ys[j] = data.train.labels[i]; });
  const x = tf.tensor4d(xs, [mine.length, 28, 28, 1]), y = tf.oneHot(tf.tensor1d(ys, 'int32'), 10);

  const model = buildModel(Number(o.seed) * 1000);
  await broadcastWeights(model, comm); // every rank starts from rank 0's weights
  const compressor = compressorSpec();
  const optimizer = createTfjsOptimizer({ comm, algorithm: o.algo, ...(compressor ? { compressor } : {}),
    optimizer: { type: 'sgd', lr: Number(o.lr), momentum: Number(o.momentum) }, minCompressSize: 256 });
  model.compile({ optimizer, loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
  const t0 = Date.now();
  await model.fit(x, y, { epochs: Number(o.epochs), batchSize: Number(o.batch), shuffle: false, verbose: 0 });
  const seconds = (Date.now() - t0) / 1000;
  const stats = optimizer.stats();
  const tx = tf.tensor4d(data.test.images, [data.test.count, 28, 28, 1]);
  const pred = model.predict(tx).argMax(-1).dataSync();
  let right = 0;
  for (let i = 0; i < data.test.count; i++) if (pred[i] === data.test.labels[i]) right++;
  const h = createHash('sha256');
  for (const w of model.getWeights()) h.update(Buffer.from(w.dataSync().buffer));
  const memory = dropitMemory(model);
  const line = { rank: comm.rank, model: o.model, backend: o.backend, algo: o.algo, compressor: compressor ?? 'none', gamma: o.gamma === undefined ? null : Number(o.gamma),
    accuracy: right / data.test.count, seconds, steps: optimizer.stepCount, digest: h.digest('hex').slice(0, 16), bytesSent: stats.bytesSent, denseBytes: stats.denseBytes,
    memory: memory.length ? { dense: memory.reduce((a, m) => a + m.dense, 0), kept: memory.reduce((a, m) => a + m.kept, 0), layers: memory } : null };
  optimizer.dispose();
  if (comm.rank === 0 && memory.length) dropitSummary(model, (l) => process.stderr.write(l + '\n'));
  process.stdout.write(JSON.stringify(line) + '\n');
  await comm.close();
}
main().catch((e) => { console.error(e); process.exit(1); });
