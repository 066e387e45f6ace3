/**
 * The microbenchmark suite: every kernel against its floor and its baselines, measured in one run.
 *   npm run bench                 table on stdout (n = 2^16 .. 2^24)
 *   npm run bench -- --quick      n = 2^16 and 2^20 only, fewer repetitions
 *   npm run bench -- --json       one JSON document with machine info instead of the table
 * Times are medians. "hot" reuses one set of buffers; "cold" rotates through sets totalling
 * >= 1 GiB (or 64 sets for small n) so the data comes from DRAM. Effective GB/s uses the minimal
 * bytes of specs/performance.md §0.3; "floor x" is time / (bytes / memcpy GB/s), with memcpy
 * measured in the same run (read + write bytes counted), so 1.0 is the copy-bandwidth floor.
 */
import { spawnSync } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import * as g from '../lib';
import { loadBinding } from '../lib/native/loader';
import { benchArgs } from './args';
import { jsSortEfTopK, jsThresholdPass, loadTfjs, runTorch, tfTopK, TorchJob } from './baselines';

const values = benchArgs('bench', `npm run bench [-- --quick] [--json]
  --quick  n = 2^16 and 2^20 only, fewer repetitions
  --json   one JSON document with machine info instead of the table`, { quick: { type: 'boolean', default: false }, json: { type: 'boolean', default: false } });
const quick = values.quick === true;
const asJson = values.json === true;
const log = (s: string) => { if (!asJson) process.stderr.write(s + '\n'); };

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}
function timeIt(fn: (rep: number) => void, reps: number): number {
  fn(0);
  const ts: number[] = [];
  for (let i = 1; i <= reps; i++) { const t0 = performance.now(); fn(i); ts.push(performance.now() - t0); }
  return median(ts) / 1000;
}
function gaussian(n: number, seed: number): Float32Array {
  const x = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i += 2) {
    s = (s * 1664525 + 1013904223) >>> 0; const u = (s + 1) / 4294967297;
    s = (s * 1664525 + 1013904223) >>> 0; const v = s / 4294967296;
    const r = Math.sqrt(-2 * Math.log(u));
    x[i] = r * Math.cos(2 * Math.PI * v);
    if (i + 1 < n) x[i + 1] = r * Math.sin(2 * Math.PI * v);
  }
  return x;
}

interface Row {
  kernel: string; n: number; param: string; bytes: number;
  hotMs: number; coldMs: number; gbpsHot: number; gbpsCold: number; floorHot: number; floorCold: number;
  baselines: Record<string, { ms: number; speedup: number }>;
}

async function main() {
  const b = loadBinding();
  const threads = g.concurrency();
  const exps = quick ? [16, 20] : [16, 18, 20, 22, 24];
  const reps = quick ? 5 : 9;
  const tf = await loadTfjs();

  // Copy bandwidth, DRAM: 2 x 512 MiB.
  const big = 512 << 20;
  const src = new Uint8Array(big).fill(1), dst = new Uint8Array(big);
  const memcpyCold = (2 * big) / timeIt(() => b.baselineMemcpy(dst, src), quick ? 3 : 5) / 1e9;
  log(`memcpy (2 x 512 MiB, ${threads} threads): ${memcpyCold.toFixed(1)} GB/s`);

  const rows: Row[] = [];
  const torchJobs: TorchJob[] = [];
  const torchRow = new Map<string, [Row, string]>();
  const addTorch = (row: Row, job: Omit<TorchJob, 'id' | 'reps'>) => {
    const id = `${row.kernel}|${row.n}|${row.param}`;
    torchJobs.push({ ...job, id, reps: job.n >= 1 << 22 ? 3 : 7 });
    torchRow.set(id, [row, 'torch']);
  };

  for (const e of exps) {
    const n = 2 ** e;
    const hotBytes = 4 * n;
    const hsrc = src.subarray(0, hotBytes), hdst = dst.subarray(0, hotBytes);
    const memcpyHot = (2 * hotBytes) / timeIt(() => b.baselineMemcpy(hdst, hsrc), reps) / 1e9;
    const sets = Math.min(64, Math.max(2, Math.ceil((1 << 30) / (8 * n))));
    const G = Array.from({ length: sets }, (_, i) => gaussian(n, 1 + i));
    const R = Array.from({ length: sets }, (_, i) => gaussian(n, 1000 + i));
    log(`n = 2^${e}: memcpy hot ${memcpyHot.toFixed(1)} GB/s, ${sets} cold sets`);
    const measure = (kernel: string, param: string, bytes: number, fn: (set: number) => void): Row => {
      const hot = timeIt(() => fn(0), reps);
      let k = 0;
      const cold = timeIt(() => fn(1 + (k++ % (sets - 1))), Math.min(reps, sets - 1));
      const row: Row = {
        kernel, n, param, bytes, hotMs: hot * 1e3, coldMs: cold * 1e3,
        gbpsHot: bytes / hot / 1e9, gbpsCold: bytes / cold / 1e9,
        floorHot: hot / (bytes / (memcpyHot * 1e9)), floorCold: cold / (bytes / (memcpyCold * 1e9)), baselines: {},
      };
      rows.push(row);
      return row;
    };
    const base = (row: Row, name: string, seconds: number) => {
      row.baselines[name] = { ms: seconds * 1e3, speedup: seconds / (row.hotMs / 1e3) };
    };

    for (const frac of [0.001, 0.01, 0.1]) {
      const k = Math.max(1, Math.round(n * frac));
      const idx = new Uint32Array(k), val = new Float32Array(k);
      const out = { out: { indices: idx, values: val } };
      const row = measure('efTopK', `k=${frac * 100}%`, 12 * n + 8 * k, (s) => g.efTopKSync(G[s], R[s], k, out));
      const rr = R[0].slice();
      base(row, 'nth_element', timeIt(() => b.baselineNthElementEfTopK(G[0], rr, k, idx, val), e >= 22 ? 3 : 5));
      if (e <= 20 || (e === 24 && !quick && frac === 0.01)) base(row, 'js-sort', timeIt(() => jsSortEfTopK(G[0], rr, k), 1));
      const t = Math.abs(val[val.length - 1]) || 1;
      base(row, 'js-threshold', timeIt(() => jsThresholdPass(G[0], rr, t, idx), 3));
      addTorch(row, { kind: 'ef_topk', n, k });
      const trow = measure('topK', `k=${frac * 100}%`, 4 * n + 8 * k, (s) => g.topKSync(G[s], k, out));
      if (tf && (e <= 20 || frac === 0.01)) base(trow, 'tfjs-cpu', timeIt(() => tfTopK(tf, G[0], k), e >= 22 ? 1 : 3));
      addTorch(trow, { kind: 'topk', n, k });
    }

    for (const levels of [1, 7, 127]) {
      const bits = 1 + Math.ceil(Math.log2(levels + 1));
      const opts = { levels, seed: 1, step: 0 };
      const outP = new Uint8Array(g.qsgdPayloadBytes(n, { levels }));
      const payloads = G.map((x) => g.qsgdEncodeSync(x, opts));
      const bytes = 4 * n + (n * bits) / 8 + (4 * n) / 512;
      const enc = measure('qsgdEncode', `levels=${levels} (${bits}b)`, bytes, (s) => g.qsgdEncodeSync(G[s], { ...opts, out: outP }));
      addTorch(enc, { kind: 'qsgd_encode', n, levels });
      const outF = new Float32Array(n);
      measure('qsgdDecode', `levels=${levels} (${bits}b)`, bytes, (s) => g.qsgdDecodeSync(payloads[s], outF));
    }

    const rows2 = 2 ** Math.floor(e / 2), cols = n / rows2, rank = 4;
    const q = gaussian(cols * rank, 7), p = new Float32Array(rows2 * rank);
    const prow = measure('powerSgdStep', `${rows2}x${cols} r=${rank}`, 8 * n, (s) => g.powerSgdStepSync({ m: G[s], rows: rows2, cols, q, rank, p }));
    addTorch(prow, { kind: 'powersgd', n, rows: rows2, cols, rank });

    for (const gamma of [0.5, 0.9]) {
      const k = g.dropitKeepCount(n, gamma);
      const packed = G.map((x) => g.dropitPackSync(x, gamma));
      const bytes = 4 * n + packed[0].byteLength;
      const outP = new Uint8Array(packed[0].byteLength);
      const drow = measure('dropitPack', `gamma=${gamma}`, bytes, (s) => g.dropitPackSync(G[s], gamma, { out: outP }));
      addTorch(drow, { kind: 'dropit', n, k });
      const outF = new Float32Array(n);
      measure('dropitUnpack', `gamma=${gamma}`, bytes, (s) => g.dropitUnpackSync(packed[s], outF));
    }
  }

  // Compressors (lib/compress): compress + decompress for one worker, n = 2^20 as 1024 x 1024.
  const compressorRows: { type: string; spec: string; n: number; ms: number; gbps: number; bytesSent: number; ratio: number }[] = [];
  {
    const n = 1 << 20;
    const grads = [gaussian(n, 77), gaussian(n, 78), gaussian(n, 79)];
    const specs: g.CompressorSpec[] = [
      { type: 'none' }, { type: 'fp16' }, { type: 'bf16' }, { type: 'topk', ratio: 0.01 }, { type: 'dgc', ratio: 0.01 },
      { type: 'randk', ratio: 0.01 }, { type: 'efsign' }, { type: 'signum' }, { type: 'qsgd', levels: 127 }, { type: 'qsgd', levels: 7 },
      { type: 'powersgd', rank: 4 }, { type: 'adacomp', binSize: 500 }, { type: 'scalecom', ratio: 0.01 },
      { type: 'gradiveq', sliceSize: 128, components: 16, dense: 1, compressed: 1000 },
    ];
    for (const spec of specs) {
      const c = g.createCompressor(spec);
      const ts: number[] = [];
      for (let t = 0; t <= (quick ? 3 : 7); t++) {
        const t0 = performance.now();
        g.runSessions([await c.begin('w', grads[t % 3], { step: t, shape: [1024, 1024] })]);
        if (t > 0) ts.push(performance.now() - t0); // step 0 is the warm-up
      }
      const ms = median(ts) / 1000;
      const st = c.stats()[0];
      compressorRows.push({ type: spec.type, spec: JSON.stringify(spec), n, ms: ms * 1e3, gbps: (4 * n) / ms / 1e9, bytesSent: st.bytesAfter, ratio: st.ratio });
    }
    log('compressors measured');
  }

  // Communicators: the local backend, 2 and 4 ranks, allreduce and allgatherv by message size.
  const commRows: { backend: string; ranks: number; op: string; n: number; bytes: number; ms: number; gbps: number }[] = [];
  for (const ranks of quick ? [2] : [2, 4]) {
    const r = spawnSync(process.execPath, [path.join(__dirname, '..', 'lib', 'cli', 'main.js'), 'run', '-n', String(ranks),
      path.join(__dirname, '..', '..', 'bench', 'comm_worker.js')], { encoding: 'utf8', env: { ...process.env, GRADCOMP_ENTRY: path.join(__dirname, '..', 'lib', 'index.js') } });
    const line = r.stdout.split('\n').find((l) => l.startsWith('GRADCOMP_COMM_BENCH '));
    if (line) for (const row of JSON.parse(line.slice(20)).rows) commRows.push({ backend: 'local', ranks, ...row });
    else log(`communicator benchmark failed: ${r.stderr}`);
    // The same worker under mpirun, where Open MPI and the MPI addon exist.
    const mpiEnv = {
      ...process.env, GRADCOMP_ENTRY: path.join(__dirname, '..', 'lib', 'index.js'), OMPI_ALLOW_RUN_AS_ROOT: '1',
      OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: '1', OMPI_MCA_rmaps_base_oversubscribe: '1', OMPI_MCA_pml: 'ob1',
      OMPI_MCA_btl: 'self,vader,tcp', OMPI_MCA_btl_tcp_if_include: 'lo', OMPI_MCA_oob_tcp_if_include: 'lo',
      OMPI_MCA_btl_vader_single_copy_mechanism: 'none',
    };
    const m = spawnSync('mpirun', ['-np', String(ranks), process.execPath, path.join(__dirname, '..', '..', 'bench', 'comm_worker.js')], { encoding: 'utf8', env: mpiEnv });
    const mline = (m.stdout ?? '').split('\n').find((l) => l.startsWith('GRADCOMP_COMM_BENCH '));
    if (mline) for (const row of JSON.parse(mline.slice(20)).rows) commRows.push({ backend: 'mpi', ranks, ...row });
    else {
      // The reason, not the first line of a stack (which names a file): the coded error's message.
      const why = m.error ? 'mpirun not found' : ((m.stderr ?? '').split('\n').find((l) => /ERR_GRADCOMP|Error:/.test(l)) ?? (m.stderr ?? '').trim().split('\n').pop() ?? 'no output');
      log(`mpi communicator benchmark skipped: ${why.replace(/^\S*Error:\s*/, '')}`);
    }
  }

  // Checkpoints: a 25.2M-parameter ef-sgd state (top-k residuals + SGD momentum, 201 MB) through the binary format.
  const checkpointRows: { what: string; ms: number; mb: number }[] = [];
  {
    const comm = await g.init();
    const shapes: Record<string, number[]> = { w1: [2048, 3072], w2: [2048, 3072], w3: [2048, 3072], w4: [2048, 3072], b1: [3072], b2: [3072], b3: [3072], b4: [3072], v: [2048] };
    const params = Object.fromEntries(Object.entries(shapes).map(([n, sh]) => [n, g.Tensor.from(gaussian(sh.reduce((x, y) => x * y, 1), 5), sh)]));
    const grads = Object.fromEntries(Object.entries(params).map(([n, t], i) => [n, gaussian(t.size, 50 + i)]));
    const opt = g.createDistributedOptimizer({ comm, algorithm: 'ef-sgd', compressor: { type: 'topk', ratio: 0.01 }, optimizer: { type: 'sgd', lr: 0.1, momentum: 0.9 } });
    await opt.step(params, grads);
    const file = path.join(os.tmpdir(), `gradcomp-bench-${process.pid}.gckp`);
    const saves: number[] = [], loads: number[] = [];
    for (let i = 0; i < 3; i++) {
      let t0 = performance.now();
      await g.saveCheckpoint(opt, file);
      saves.push(performance.now() - t0);
      t0 = performance.now();
      await g.loadCheckpoint(opt, file);
      loads.push(performance.now() - t0);
    }
    const mb = (await import('node:fs')).statSync(file).size / 1e6;
    (await import('node:fs')).rmSync(file, { force: true });
    checkpointRows.push({ what: 'save (state, checksums, write, fsync, rename)', ms: median(saves), mb }, { what: 'load (read, verify, load)', ms: median(loads), mb });
    await comm.close();
    log('checkpoints measured');
  }

  const torch = runTorch(torchJobs, threads);
  for (const [id, seconds] of torch.results) {
    const [row] = torchRow.get(id)!;
    row.baselines.torch = { ms: seconds * 1e3, speedup: seconds / (row.hotMs / 1e3) };
  }
  const machine = {
    cpu: os.cpus()[0]?.model ?? 'unknown', cores: os.cpus().length, threads, isa: b.isa(),
    memGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version, platform: `${process.platform}-${process.arch}`,
    memcpyColdGBps: memcpyCold, tfjs: tf ? 'tfjs-core + tfjs-backend-cpu (pure JS)' : 'not installed', torch: torch.note,
    date: new Date().toISOString(),
  };
  if (asJson) {
    process.stdout.write(JSON.stringify({ machine, rows, compressors: compressorRows, communicators: commRows, checkpoints: checkpointRows }, null, 2) + '\n');
    return;
  }
  console.log(`machine: ${machine.cpu}, ${machine.cores} cores, ${machine.isa}, ${machine.node}; memcpy ${memcpyCold.toFixed(1)} GB/s; ${torch.note}`);
  console.log('| kernel | n | param | hot ms | cold ms | GB/s hot | GB/s cold | floor x (cold) | baselines (ms, our speedup) |');
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    const bl = Object.entries(r.baselines).map(([k, v]) => `${k} ${v.ms.toFixed(2)} (${v.speedup.toFixed(1)}x)`).join('; ');
    console.log(`| ${r.kernel} | 2^${Math.log2(r.n)} | ${r.param} | ${r.hotMs.toFixed(3)} | ${r.coldMs.toFixed(3)} | ` +
      `${r.gbpsHot.toFixed(1)} | ${r.gbpsCold.toFixed(1)} | ${r.floorCold.toFixed(2)} | ${bl} |`);
  }
  console.log('\n| compressor | spec | compress + decompress ms (n = 2^20) | dense GB/s | bytes sent | ratio |');
  console.log('|---|---|---|---|---|---|');
  for (const c of compressorRows) {
    console.log(`| ${c.type} | ${c.spec} | ${c.ms.toFixed(2)} | ${c.gbps.toFixed(2)} | ${c.bytesSent} | ${c.ratio.toFixed(1)}x |`);
  }
  console.log('\n| checkpoint of a 25.2M-parameter ef-sgd state | MB | median ms |');
  console.log('|---|---|---|');
  for (const c of checkpointRows) console.log(`| ${c.what} | ${c.mb.toFixed(1)} | ${c.ms.toFixed(0)} |`);
  console.log('\n| backend | ranks | collective | bytes per rank | median ms | GB/s |');
  console.log('|---|---|---|---|---|---|');
  for (const c of commRows) console.log(`| ${c.backend} | ${c.ranks} | ${c.op} | ${c.bytes} | ${c.ms.toFixed(3)} | ${c.gbps.toFixed(2)} |`);
}

main().catch((e) => { console.error(e); process.exit(1); });
