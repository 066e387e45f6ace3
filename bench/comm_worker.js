// One rank of the communicator benchmark (started by bench/main.ts through runLocal): times
// allreduce and allgatherv by message size and posts medians to rank 0's stdout as JSON.
'use strict';
const { performance } = require('node:perf_hooks');
const { init } = require(process.env.GRADCOMP_ENTRY || 'gradcomp');

(async () => {
  const comm = await init();
  const out = [];
  for (const n of [1, 256, 16384, 262144, 4194304]) {
    const reps = n >= 262144 ? 7 : 31;
    for (const op of ['allreduce', 'allgatherv']) {
      const buf = new Float32Array(n).fill(comm.rank + 1);
      const ts = [];
      for (let i = 0; i <= reps; i++) {
        await comm.barrier();
        const t0 = performance.now();
        if (op === 'allreduce') await comm.allreduce(buf);
        else await comm.allgatherv(buf.subarray(0, Math.max(1, (n >> 1) + comm.rank)));
        if (i > 0) ts.push(performance.now() - t0);
      }
      ts.sort((a, b) => a - b);
      const ms = ts[ts.length >> 1];
      out.push({ op, n, bytes: 4 * n, ms, gbps: (4 * n) / (ms / 1e3) / 1e9 });
    }
  }
  if (comm.rank === 0) process.stdout.write('GRADCOMP_COMM_BENCH ' + JSON.stringify({ size: comm.size, rows: out }) + '\n');
  await comm.close();
})();
