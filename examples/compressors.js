// What each compressor sends for one gradient, and how far one step's average is from the true
// one (4 simulated workers in one process, no communicator needed).
//   node examples/compressors.js
'use strict';
const { createCompressor, runSessions } = require('gradcomp');

const SPECS = [
  { type: 'none' }, { type: 'fp16' }, { type: 'topk', ratio: 0.01 }, { type: 'randk', ratio: 0.01 }, { type: 'efsign' },
  { type: 'qsgd', levels: 7 }, { type: 'terngrad' }, { type: 'powersgd', rank: 4 }, { type: 'dgc', ratio: 0.01 },
  { type: 'scalecom', ratio: 0.01 }, { type: 'adacomp', binSize: 50 },
];
const ROWS = 256, COLS = 256, N = ROWS * COLS, WORKERS = 4;

async function main() {
  const grads = Array.from({ length: WORKERS }, (_, r) => Float32Array.from({ length: N }, (_, i) => Math.sin(i * 0.001 * (r + 1)) + Math.cos(i * 0.37)));
  const truth = new Float32Array(N);
  grads.forEach((g) => g.forEach((v, i) => { truth[i] += v / WORKERS; }));
  const norm = Math.hypot(...truth);
  console.log('compressor                bytes/worker   ratio   relative error of the average');
  for (const spec of SPECS) {
    const cs = Array.from({ length: WORKERS }, () => createCompressor(spec));
    const sessions = await Promise.all(cs.map((c, rank) => c.begin('w', grads[rank], { step: 0, rank, workers: WORKERS, shape: [ROWS, COLS] })));
    const [avg] = runSessions(sessions);
    const err = Math.hypot(...avg.map((v, i) => v - truth[i])) / norm;
    const bytes = cs[0].stats()[0].bytesAfter;
    console.log(`${JSON.stringify(spec).padEnd(26)}${String(bytes).padStart(12)}${(4 * N / bytes).toFixed(1).padStart(8)}x   ${err.toFixed(4)}`);
  }
}
main();
