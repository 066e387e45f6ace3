/**
 * The end-to-end benchmark (`npm run bench:e2e`): whole training steps of a 25.2M-parameter model
 * (bench/e2e_worker.js) for every algorithm and compressor, on two hosts joined by a shaped link,
 * against dense data-parallel SGD measured in the same run.
 *
 * Topology: two network namespaces (the benchmark's own, removed afterwards) joined by a veth pair,
 * both ends shaped with `tc qdisc replace dev <veth> root tbf rate R burst B latency 50ms` for each
 * rate (1 Gbit/s, 10 Gbit/s, unshaped; a TCP stream measures what each really carries), and 4 MPI
 * ranks, 2 per host (mpirun with a hostfile and an ssh stand-in that enters the other namespace).
 * Then the same configs on the local backend (4 worker_threads, shared memory). It skips the
 * two-host part, saying why, where ip netns, tc, mpirun or the MPI addon are missing. Last, each
 * config on one rank alone: the compute floor of 4 ranks sharing this machine's cores.
 *
 *   npm run bench:e2e [-- --rates 1gbit,10gbit,none] [--only name,...] [--json FILE] [--no-local] [--no-floor]
 *
 * Output: a table on stdout, bench/results/e2e-<machine>.json, and (node scripts/e2e-report.js)
 * the chart and the table of docs/benchmarks.md.
 */
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { benchArgs, listOf, refuse } from './args';
import { E2E_CONFIGS, E2eConfig, RING_BYTES } from './e2e-configs';
import { Namespaces } from './e2e-netns';

const root = path.resolve(__dirname, '..', '..');
const USAGE = `npm run bench:e2e [-- --rates 1gbit,10gbit,none] [--only name,...] [--json FILE] [--no-local] [--no-floor]
  --rates   link rates to shape the two-host link to: tc rates such as 1gbit, 500mbit, 10gbit, or none (unshaped)
  --only    configs to run (dense is the baseline of every speedup): ${E2E_CONFIGS.map((c) => c.name).join(', ')}
  --json    where the results go (bench/results/e2e-<machine>.json by default; partial-e2e-<machine>.json
            when some configs, rates or parts are left out, so the full run the docs draw from stays)
  --no-local, --no-floor   skip the local backend's runs, the one-rank compute floors`;
const values = benchArgs('bench:e2e', USAGE, { rates: { type: 'string', default: '1gbit,10gbit,none' }, only: { type: 'string' }, json: { type: 'string' },
  'no-local': { type: 'boolean', default: false }, 'no-floor': { type: 'boolean', default: false } });
const rates = (values.rates as string).split(',');
for (const r of rates) if (r !== 'none' && !/^\d+(\.\d+)?(mbit|gbit)$/.test(r)) refuse('bench:e2e', USAGE, `--rates: '${r}' is not a rate such as 1gbit, 500mbit or none`);
const only = values.only === undefined ? undefined : listOf('bench:e2e', USAGE, 'only', values.only as string, E2E_CONFIGS.map((c) => c.name));
const configs = E2E_CONFIGS.filter((c) => !only || only.includes(c.name));
const threads = Math.max(1, Math.floor(os.cpus().length / 4));
const worker = path.join(root, 'bench', 'e2e_worker.js');
const entry = path.join(root, 'dist', 'lib', 'index.js');

interface Measured { wallMs: number; commMs: number; compressMs: number; optimizerMs: number; otherMs: number; bytesPerStep: number; wallsMs: number[] }
interface Row extends Measured { config: string; label: string; link: string; backend: 'mpi' | 'local'; speedup?: number }

function run(cmd: string, argv: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn(cmd, argv, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('close', (code) => { clearTimeout(t); resolve({ code: code ?? 1, out, err }); });
  });
}

function parse(out: string): Measured | undefined {
  const line = out.split('\n').find((l) => l.startsWith('GRADCOMP_E2E '));
  return line ? JSON.parse(line.slice(13)) as Measured : undefined;
}

/** allreduceMs / allgathervMs: on buffers from comm.alloc() (what the optimizers use); the Plain ones: on plain arrays. */
interface CollRaw { allreduceBytes: number; allreduceMs: number; allreducePlainMs: number; allgathervBytes: number; allgathervMs: number; allgathervPlainMs: number; memcpyMs: number; ranks: number }
/**
 * The collectives alone. MPI: share of the link's rate. The allreduce against the ring's busiest
 * link (2 (n-1)/n of the buffer); the allgatherv against the host link, which must carry every
 * block of the other host once (n/2 blocks each way: 2 hosts, ranks split evenly). Local: against
 * memcpy of the same bytes.
 */
interface CollRow extends CollRaw { link: string; backend: 'mpi' | 'local'; allreduceUse: number | null; allgathervUse: number | null; allreducePlainUse: number | null; allgathervPlainUse: number | null }

function collRow(out: string, link: string, backend: 'mpi' | 'local', gbps: number | null): CollRow | undefined {
  const line = out.split('\n').find((l) => l.startsWith('GRADCOMP_E2E_COLL '));
  if (!line) return undefined;
  const c = JSON.parse(line.slice(18)) as CollRaw, n = c.ranks;
  let arUse: (ms: number) => number | null, agUse: (ms: number) => number | null;
  if (backend === 'local') {
    // Bus bandwidth (NCCL's convention: what each rank moves) against a memcpy of the whole buffer.
    const memGBs = c.allreduceBytes / c.memcpyMs / 1e6;
    arUse = (ms) => ((2 * (n - 1)) / n) * (c.allreduceBytes / ms / 1e6) / memGBs;
    agUse = (ms) => ((n - 1) * c.allgathervBytes / ms / 1e6) / memGBs;
  } else {
    const use = (bytes: number, ms: number) => (gbps ? (8 * bytes) / (ms / 1e3) / 1e9 / gbps : null);
    arUse = (ms) => use(((2 * (n - 1)) / n) * c.allreduceBytes, ms);
    agUse = (ms) => use((n / 2) * c.allgathervBytes, ms);
  }
  return { ...c, link, backend, allreduceUse: arUse(c.allreduceMs), allgathervUse: agUse(c.allgathervMs),
    allreducePlainUse: arUse(c.allreducePlainMs), allgathervPlainUse: agUse(c.allgathervPlainMs) };
}

function workerConfig(c: E2eConfig): string {
  return JSON.stringify({ ...c.options, threads, warmup: c.warmup, steps: c.steps, mean: c.mean });
}

function describeColl(c: CollRow): string {
  const pct = (u: number | null) => (u === null ? '' : `, ${(100 * u).toFixed(0)}% of ${c.backend === 'mpi' ? 'the link' : 'memcpy'}`);
  return `allreduce ${(c.allreduceBytes / 1e6).toFixed(1)} MB ${c.allreduceMs.toFixed(0)} ms${pct(c.allreduceUse)} (plain array ${c.allreducePlainMs.toFixed(0)} ms${pct(c.allreducePlainUse)}); ` +
    `allgatherv ${c.ranks} x ${(c.allgathervBytes / 1e6).toFixed(1)} MB ${c.allgathervMs.toFixed(0)} ms${pct(c.allgathervUse)} (plain ${c.allgathervPlainMs.toFixed(0)} ms${pct(c.allgathervPlainUse)})` +
    (c.backend === 'local' ? `; memcpy of ${(c.allreduceBytes / 1e6).toFixed(1)} MB ${c.memcpyMs.toFixed(1)} ms` : '');
}

async function main(): Promise<void> {
  const rows: Row[] = [], collectives: CollRow[] = [];
  const links: Record<string, { gbps: number | null }> = {};
  const ns = new Namespaces(`gce${process.pid % 10000}`, `10.${198}.${process.pid % 250}`);
  const why = ns.skipReason(root);
  let skipped: string | undefined;
  if (why) {
    skipped = `two-host part skipped: ${why}`;
    process.stderr.write(skipped + '\n');
  } else {
    try {
      ns.create();
      for (const rate of rates) {
        ns.shape(rate);
        const gbps = await ns.measureTcp();
        links[rate] = { gbps };
        process.stderr.write(`link ${rate}: a TCP stream carries ${gbps?.toFixed(2) ?? '?'} Gbit/s\n`);
        const mpi = (cfg: string) => run('ip', ['netns', 'exec', ns.a, 'unshare', '--uts', '/bin/sh', '-c',
          `hostname ${ns.a}; mpirun --hostfile ${ns.hostfile} -np 4 --map-by slot ${process.execPath} ${worker} '${cfg}'`],
        { ...ns.mpiEnv(), GRADCOMP_ENTRY: entry }, 600000);
        const cr = collRow((await mpi(JSON.stringify({ collectives: true, threads }))).out, rate, 'mpi', gbps);
        if (cr) { collectives.push(cr); process.stderr.write(`  collectives: ${describeColl(cr)}\n`); }
        for (const c of configs) {
          const r = await mpi(workerConfig(c));
          const m = parse(r.out);
          if (!m) { process.stderr.write(`  ${c.name}: failed (${r.code}): ${r.err.split('\n').slice(-4).join(' | ')}\n`); continue; }
          rows.push({ config: c.name, label: c.label, link: rate, backend: 'mpi', ...m });
          process.stderr.write(`  ${c.name}: ${m.wallMs.toFixed(0)} ms/step (comm ${m.commMs.toFixed(0)}, compress ${m.compressMs.toFixed(0)}, optimizer ${m.optimizerMs.toFixed(0)})\n`);
        }
      }
    } finally {
      ns.destroy();
    }
  }
  if (!values['no-local']) {
    const lr = await run(process.execPath, [path.join(root, 'dist', 'lib', 'cli', 'main.js'), 'run', '-n', '4', worker, JSON.stringify({ collectives: true, threads })],
      { ...process.env, GRADCOMP_ENTRY: entry }, 600000);
    const cr = collRow(lr.out, 'shared memory', 'local', null);
    if (cr) { collectives.push(cr); process.stderr.write(`  local collectives: ${describeColl(cr)}\n`); }
    for (const c of configs) {
      const r = await run(process.execPath, [path.join(root, 'dist', 'lib', 'cli', 'main.js'), 'run', '-n', '4', worker, workerConfig(c)],
        { ...process.env, GRADCOMP_ENTRY: entry }, 600000);
      const m = parse(r.out);
      if (!m) { process.stderr.write(`  local ${c.name}: failed (${r.code}): ${r.err.split('\n').slice(-4).join(' | ')}\n`); continue; }
      rows.push({ config: c.name, label: c.label, link: 'shared memory', backend: 'local', ...m });
      process.stderr.write(`  local ${c.name}: ${m.wallMs.toFixed(0)} ms/step\n`);
    }
  }
  // The compute floor: each config on one rank alone (no communication, same threads), times the
  // ranks that share each core here. No schedule of 4 ranks on this machine beats it, whatever the link.
  const computeFloors: Record<string, { oneRankMs: number; floorMs: number }> = {};
  if (!values['no-floor']) {
    const share = Math.max(1, (4 * threads) / os.cpus().length);
    for (const c of configs) {
      const r = await run(process.execPath, [path.join(root, 'dist', 'lib', 'cli', 'main.js'), 'run', '-n', '1', worker, workerConfig(c)],
        { ...process.env, GRADCOMP_ENTRY: entry }, 600000);
      const m = parse(r.out);
      if (!m) continue;
      computeFloors[c.name] = { oneRankMs: m.wallMs, floorMs: m.wallMs * share };
      process.stderr.write(`  one rank alone, ${c.name}: ${m.wallMs.toFixed(0)} ms/step; compute floor for 4 ranks here ${(m.wallMs * share).toFixed(0)} ms\n`);
    }
  }
  // Speedups against dense sync SGD with deterministic: false, same link, same run.
  for (const r of rows) {
    const base = rows.find((x) => x.config === 'dense' && x.link === r.link && x.backend === r.backend);
    if (base) r.speedup = base.wallMs / r.wallMs;
  }
  const floors = Object.fromEntries(Object.entries(links).map(([rate]) => {
    const bitsPerS = rate === 'none' ? null : Number.parseFloat(rate) * (rate.endsWith('gbit') ? 1e9 : rate.endsWith('mbit') ? 1e6 : 1);
    return [rate, bitsPerS ? (8 * RING_BYTES) / bitsPerS * 1000 : null];
  }));
  const doc = {
    machine: { cpu: os.cpus()[0]?.model ?? 'unknown', cores: os.cpus().length, memGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version,
      threadsPerRank: threads, date: new Date().toISOString() },
    model: { parameters: 25174016, layout: '4 x (2048 x 3072) + 4 x 3072 + 2048', optimizer: 'SGD momentum 0.9' },
    topology: '2 network-namespace hosts joined by a veth pair, tc tbf on both ends, 4 MPI ranks (2 per host, --map-by slot)',
    links, ringFloorMs: floors, computeFloors, skipped, collectives, configs: configs.map((c) => ({ name: c.name, label: c.label, options: c.options, steps: c.steps, mean: c.mean })), rows,
  };
  // A run of some configs or rates only is named partial-, so it never replaces the full run that scripts/e2e-report.mjs draws from.
  const partial = only !== undefined || values.rates !== '1gbit,10gbit,none' || values['no-local'] || values['no-floor'];
  const file = (values.json as string | undefined) ?? path.join(root, 'bench', 'results', `${partial ? 'partial-' : ''}e2e-${os.hostname().replace(/[^\w-]/g, '') || 'machine'}.json`);
  fs.writeFileSync(file, JSON.stringify(doc, null, 2) + '\n');
  console.log('| link | backend | config | ms / step | comm | compress | optimizer | other | sent / rank / step | vs dense (non-det.) |');
  console.log('|---|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    console.log(`| ${r.link} | ${r.backend} | ${r.label} | ${r.wallMs.toFixed(0)} | ${r.commMs.toFixed(0)} | ${r.compressMs.toFixed(0)} | ${r.optimizerMs.toFixed(0)} | ` +
      `${r.otherMs.toFixed(0)} | ${(r.bytesPerStep / 1e6).toFixed(2)} MB | ${r.speedup?.toFixed(2) ?? '-'}x |`);
  }
  console.log(`\nring floor for a dense step (${(RING_BYTES / 1e6).toFixed(1)} MB, 2 (n-1)/n of the model, through the busiest link): ` +
    Object.entries(floors).map(([k, v]) => `${k}: ${v === null ? '-' : `${v.toFixed(0)} ms`}`).join(', '));
  for (const c of collectives) console.log(`collectives, ${c.link} (${c.backend}): ${describeColl(c)}`);
  console.log(`results: ${path.relative(root, file)}`);
  void execFileSync;
}

main().catch((e) => { console.error(e); process.exit(1); });
