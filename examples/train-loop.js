// A training loop of your own, distributed: softmax regression on a synthetic 10-class problem,
// each rank on its own shard, EF-SGD with top-k 10% through createDistributedOptimizer.
//   node examples/train-loop.js                        one rank
//   npx gradcomp run -n 4 examples/train-loop.js       4 worker threads (shared memory)
//   mpirun -np 4 node examples/train-loop.js           4 MPI processes
'use strict';
const { init, createDistributedOptimizer, Tensor } = require('gradcomp');

const D = 64, C = 10, N = 4096, STEPS = 200, BATCH = 32;

// The same data on every rank (a fixed seed), split by rank.
function rng(seed) { let s = seed >>> 0; return () => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return s / 4294967296; }; }
function dataset() {
  const r = rng(7), centers = Float32Array.from({ length: C * D }, () => r() * 2 - 1);
  const x = new Float32Array(N * D), y = new Uint8Array(N);
  for (let i = 0; i < N; i++) {
    y[i] = Math.floor(r() * C);
    for (let j = 0; j < D; j++) x[i * D + j] = centers[y[i] * D + j] + (r() - 0.5) * 3;
  }
  return { x, y };
}

// Softmax regression: loss and gradient of a minibatch.
function lossAndGrad(w, b, x, y, idx) {
  const gw = new Float32Array(C * D), gb = new Float32Array(C), z = new Float64Array(C);
  let loss = 0;
  for (const i of idx) {
    let max = -Infinity;
    for (let c = 0; c < C; c++) {
      let s = b[c];
      for (let j = 0; j < D; j++) s += w[c * D + j] * x[i * D + j];
      z[c] = s; max = Math.max(max, s);
    }
    let sum = 0;
    for (let c = 0; c < C; c++) { z[c] = Math.exp(z[c] - max); sum += z[c]; }
    loss -= Math.log(z[y[i]] / sum);
    for (let c = 0; c < C; c++) {
      const d = (z[c] / sum - (c === y[i] ? 1 : 0)) / idx.length;
      gb[c] += d;
      for (let j = 0; j < D; j++) gw[c * D + j] += d * x[i * D + j];
    }
  }
  return { loss: loss / idx.length, grads: { w: gw, b: gb } };
}

async function main() {
  const comm = await init();
  const { x, y } = dataset();
  const mine = Array.from({ length: N }, (_, i) => i).filter((i) => i % comm.size === comm.rank);
  const params = { w: Tensor.from(new Float32Array(C * D), [C, D]), b: Tensor.from(new Float32Array(C), [C]) };
  const opt = createDistributedOptimizer({
    comm, algorithm: 'ef-sgd', compressor: { type: 'topk', ratio: 0.1 }, optimizer: { type: 'sgd', lr: 0.1, momentum: 0.5 },
    minCompressSize: 64, // this model is tiny: compress even its 640-element weight
  });
  const r = rng(100 + comm.rank);
  for (let step = 0; step < STEPS; step++) {
    const idx = Array.from({ length: BATCH }, () => mine[Math.floor(r() * mine.length)]);
    const { loss, grads } = lossAndGrad(params.w.data, params.b.data, x, y, idx);
    await opt.step(params, grads);
    if (comm.rank === 0 && step % 50 === 0) console.log(`step ${step}: loss ${loss.toFixed(4)}`);
  }
  const avg = await opt.averaged(params);
  const { loss } = lossAndGrad(avg.w, avg.b, x, y, Array.from({ length: N }, (_, i) => i));
  const s = opt.stats();
  if (comm.rank === 0) {
    console.log(`final loss of the average model: ${loss.toFixed(4)} (${comm.size} rank(s), ${comm.backend})`);
    console.log(`sent ${(s.bytesSent / 1e3).toFixed(1)} kB per rank; dense SGD would send ${(s.denseBytes / 1e3).toFixed(1)} kB`);
  }
  await comm.close();
}
main();
