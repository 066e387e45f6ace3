// One rank of the end-to-end benchmark (bench/e2e.ts runs it under mpirun or `gradcomp run`):
// a 25.2M-parameter layout (4 matrices 2048 x 3072, 4 biases of 3072, a vector of 2048) with
// synthetic gradients, SGD momentum 0.9 through createDistributedOptimizer, timed per step with
// the breakdown: communication (inside collectives), compression (compressor kernels and glue
// outside collectives), optimizer (the updates), other (the rest of the step). Rank 0 prints one
// JSON line. The config is argv[2] (JSON): { algo, compressor?, deterministic?, period?, warmup, steps, threads? }.
'use strict';
const { writeSync } = require('node:fs');
const { performance } = require('node:perf_hooks');
const g = require(process.env.GRADCOMP_ENTRY || 'gradcomp');

const cfg = JSON.parse(process.argv[2]);
const SHAPES = { 'l1.weight': [2048, 3072], 'l1.bias': [3072], 'l2.weight': [2048, 3072], 'l2.bias': [3072], 'l3.weight': [2048, 3072],
  'l3.bias': [3072], 'l4.weight': [2048, 3072], 'l4.bias': [3072], 'norm.weight': [2048] };

/**
 * The collectives alone: a deterministic allreduce of the whole model and an allgatherv of a
 * QSGD-sized payload, on buffers from comm.alloc() (what the distributed optimizers use; shared
 * memory on the local backend) and on plain arrays, against memcpy in the same process.
 */
async function collectives(comm) {
  const med = (a) => a.slice().sort((x, y) => x - y)[a.length >> 1];
  const time = async (fn, reps) => { const ts = []; for (let i = 0; i <= reps; i++) { await comm.barrier(); const t0 = performance.now(); await fn(); if (i > 0) ts.push(performance.now() - t0); } return med(ts); };
  const n = 25174016, m = 12837024;
  const model = comm.alloc(n).fill(comm.rank + 1), payload = comm.alloc(m, 'uint8').fill(comm.rank);
  const plainModel = new Float32Array(n).fill(comm.rank + 1), plainPayload = new Uint8Array(m).fill(comm.rank);
  const into = new Uint8Array(m * comm.size);
  const allreduceMs = await time(() => comm.allreduce(model, 'sum', { deterministic: true }), 9);
  const allgathervMs = await time(() => comm.allgatherv(payload, { into }), 9);
  const allreducePlainMs = await time(() => comm.allreduce(plainModel, 'sum', { deterministic: true }), 9);
  const allgathervPlainMs = await time(() => comm.allgatherv(plainPayload, { into }), 9);
  const src = Buffer.alloc(model.byteLength, 1), dst = Buffer.alloc(model.byteLength);
  const memcpyMs = await time(() => { src.copy(dst); return Promise.resolve(); }, 9);
  return { allreduceBytes: model.byteLength, allreduceMs, allreducePlainMs, allgathervBytes: m, allgathervMs, allgathervPlainMs, memcpyMs, ranks: comm.size, backend: comm.backend };
}

(async () => {
  const comm = await g.init();
  if (cfg.threads) g.setConcurrency(cfg.threads);
  if (cfg.collectives) {
    const out = await collectives(comm);
    if (comm.rank === 0) writeSync(1, 'GRADCOMP_E2E_COLL ' + JSON.stringify(out) + '\n');
    await comm.close();
    return;
  }
  const params = {}, grads = {};
  let i = 0;
  for (const [name, shape] of Object.entries(SHAPES)) {
    const n = shape.reduce((a, b) => a * b, 1);
    params[name] = g.Tensor.from(new Float32Array(n).fill(0.01), shape);
    // Synthetic gradients: a sum of two uniforms (a bell shape) from an LCG, different per rank and tensor.
    const grad = new Float32Array(n);
    let s = (1000 + 7919 * comm.rank + 104729 * i++) >>> 0;
    for (let j = 0; j < n; j++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      const u = s / 4294967296;
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      grad[j] = u + s / 4294967296 - 1;
    }
    grads[name] = grad;
  }
  const optimizer = g.createOptimizer({ type: 'sgd', lr: 0.01, momentum: 0.9 });
  // The optimizer's share of a step: wall time with at least one update running (they overlap
  // each other and communication; overlapping updates count once).
  let optMs = 0, depth = 0, since = 0;
  const enter = () => { if (depth++ === 0) since = performance.now(); };
  const leave = () => { if (--depth === 0) optMs += performance.now() - since; };
  // Every update path: update(), the fused low-rank update (PowerSGD's average applied unformed) and the undecoded ones (top-k's and QSGD's payloads).
  for (const key of ['update', 'updateLowRank', 'updateSparse', 'updateQuantized']) {
    if (typeof optimizer[key] !== 'function') continue;
    const fn = optimizer[key].bind(optimizer);
    optimizer[key] = (...args) => {
      enter();
      let r;
      try { r = fn(...args); } catch (e) { leave(); throw e; }
      if (r && typeof r.then === 'function') return r.finally(leave);
      leave();
      return r;
    };
  }
  const opt = g.createDistributedOptimizer({
    comm, algorithm: cfg.algo, optimizer, deterministic: cfg.deterministic ?? true,
    ...(cfg.compressor ? { compressor: cfg.compressor } : {}), ...(cfg.period ? { period: cfg.period } : {}),
    ...(cfg.server ? { server: cfg.server } : {}), ...(cfg.lockstep !== undefined ? { lockstep: cfg.lockstep } : {}),
  });
  const rows = [];
  for (let t = 0; t < cfg.warmup + cfg.steps; t++) {
    const s0 = opt.stats(), o0 = optMs, t0 = performance.now();
    await opt.step(params, grads);
    const wall = performance.now() - t0, s1 = opt.stats();
    if (t >= cfg.warmup) {
      const comm_ = s1.commMs - s0.commMs, compress = s1.compressMs - s0.compressMs, optim = optMs - o0;
      rows.push({ wall, comm: comm_, compress, optimizer: optim, sent: s1.bytesSent - s0.bytesSent });
    }
  }
  await opt.drain();
  if (comm.rank === 0) {
    const mean = (k) => rows.reduce((a, r) => a + r[k], 0) / rows.length;
    const med = (k) => rows.map((r) => r[k]).sort((a, b) => a - b)[Math.floor(rows.length / 2)];
    // Periodic algorithms alternate cheap and expensive steps: their per-step cost is the mean over whole periods.
    const pick = cfg.mean ? mean : med;
    const out = { wallMs: pick('wall'), commMs: pick('comm'), compressMs: pick('compress'), optimizerMs: pick('optimizer'),
      bytesPerStep: mean('sent'), steps: rows.length, backend: comm.backend, ranks: comm.size, wallsMs: rows.map((r) => r.wall) };
    out.otherMs = Math.max(0, out.wallMs - out.commMs - out.compressMs - out.optimizerMs);
    writeSync(1, 'GRADCOMP_E2E ' + JSON.stringify(out) + '\n');
  }
  await comm.close();
})().catch((e) => { writeSync(2, String((e && e.stack) || e) + '\n'); process.exitCode = 1; });
