#!/usr/bin/env node
/**
 * The `gradcomp` command.
 *   gradcomp train [flags]     train a small model with N workers (the main job; train --help for flags)
 *   gradcomp run -n N script   run N ranks of a script on the local backend
 *   gradcomp doctor [--json]   what gradcomp runs on and why (the probe runs in a child process)
 *   gradcomp bench [flags]     the microbenchmark suite (flags: --quick, --json)
 *   gradcomp --version
 * Every subcommand refuses unknown flags, naming them.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs, ParseArgsConfig } from 'node:util';

const USAGE = `usage: gradcomp <command> [flags]
  train [flags]               train a model with N workers and compressed communication (train --help)
  run -n N [--timeout S] script.js [args]
                              run N ranks of a script on the local backend (worker_threads)
  influence --checkpoint DIR  TracIn over gradcomp train's checkpoints: self-influence, proponents (influence --help)
  doctor [--json]             report the backend, SIMD level, threads and versions
  bench [--quick] [--json]    run the microbenchmark suite
  --version                   print gradcomp's version`;

const RUN_USAGE = `usage: gradcomp run -n N [--timeout S] script.js [args...]
  -n, --workers N   ranks to start (worker_threads sharing memory)
  --timeout S       a collective with no progress for S seconds ends the job (default 60)
  Flags after script.js go to the script.`;

function version(): string {
  return (JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', '..', 'package.json'), 'utf8')) as { version: string }).version;
}

/** parseArgs with the subcommand's name in its errors; undefined when it printed an error. */
function flags(cmd: string, argv: string[], options: NonNullable<ParseArgsConfig['options']>, usage: string): Record<string, unknown> | undefined {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values as Record<string, unknown>;
  } catch (e) {
    process.stderr.write(`gradcomp ${cmd}: ${(e as Error).message.split('\n')[0]}\n${usage}\n`);
    return undefined;
  }
}

function doctor(argv: string[]): number {
  const f = flags('doctor', argv, { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } }, 'usage: gradcomp doctor [--json]');
  if (!f) return 2;
  if (f.help) { process.stdout.write('usage: gradcomp doctor [--json]\n  what gradcomp runs on: backend, SIMD level, threads, versions, and why\n'); return 0; }
  // A broken native stack must not take the caller down: probe in a child process, which reports
  // a load failure as its message (what was looked for and how to fix it), not a stack.
  const probe = `let g; try { g = require(${JSON.stringify(path.join(__dirname, '..', 'index.js'))}); g.backendInfo(); }
    catch (e) { process.stderr.write(String(e && e.message || e) + '\\n'); process.exit(1); }
    process.stdout.write(JSON.stringify(g.backendInfo()));`;
  let info: Record<string, unknown>;
  try {
    info = JSON.parse(execFileSync(process.execPath, ['-e', probe], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }));
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    process.stderr.write(`gradcomp doctor: the native addon could not be loaded\n${(err.stderr || err.message).trim()}\n`);
    return 1;
  }
  if (f.json) {
    process.stdout.write(JSON.stringify(info, null, 2) + '\n');
    return 0;
  }
  const v = info.versions as Record<string, string>;
  process.stdout.write([
    `gradcomp ${v.gradcomp} on Node ${v.node} (N-API ${v.napi}), ${process.platform}-${process.arch}`,
    `backend: ${info.backend}  isa: ${info.isa}  threads: ${info.concurrency}`,
    ...(info.reasons as string[]).map((r) => `  - ${r}`),
  ].join('\n') + '\n');
  return 0;
}

async function run(argv: string[]): Promise<number> {
  // The launcher's own flags come before the script; everything after it belongs to the script.
  let n = 1, timeoutMs: number | undefined, i = 0;
  const fail = (msg: string) => { process.stderr.write(`gradcomp run: ${msg}\n${RUN_USAGE}\n`); return 2; };
  for (; i < argv.length && argv[i].startsWith('-'); i++) {
    const flag = argv[i];
    if (flag === '-h' || flag === '--help') { process.stdout.write(RUN_USAGE + '\n'); return 0; }
    if (flag === '-n' || flag === '--workers') {
      n = Number(argv[++i]);
      if (!Number.isInteger(n) || n < 1 || n > 256) return fail(`${flag} expects an integer in [1, 256], got ${argv[i] ?? 'nothing'}`);
    } else if (flag === '--timeout') {
      const s = Number(argv[++i]);
      if (!(s > 0) || !Number.isFinite(s)) return fail(`--timeout expects a number of seconds > 0, got ${argv[i] ?? 'nothing'}`);
      timeoutMs = s * 1000;
    } else return fail(`unknown flag ${flag}`);
  }
  const script = argv[i];
  if (!script) return fail('expected a script to run');
  if (!fs.existsSync(script)) return fail(`no such script: ${script}`);
  const { runLocal } = await import('../comm/launcher');
  return (await runLocal(script, n, argv.slice(i + 1), { timeoutMs })).code;
}

async function train(rest: string[]): Promise<number> {
  const { parseTrainArgs, TRAIN_USAGE, unusedFlags } = await import('../train/options');
  if (rest.includes('--help') || rest.includes('-h')) { process.stdout.write(TRAIN_USAGE + '\n'); return 0; }
  const { launchedByMpi } = await import('../comm/init');
  const e = process.env;
  let o;
  try {
    // Without an explicit --progress: a bar on a terminal, a line per 10% otherwise.
    if (!rest.includes('--progress')) rest = [...rest, '--progress', process.stderr.isTTY ? 'bar' : 'lines'];
    o = parseTrainArgs(rest);
  } catch (err) {
    process.stderr.write(`gradcomp train: ${(err as Error).message}\n`);
    return 2;
  }
  // Said once: by the launcher, or by rank 0 under mpirun.
  if (!launchedByMpi() || Number(e.OMPI_COMM_WORLD_RANK ?? e.PMI_RANK ?? 0) === 0) for (const w of unusedFlags(o)) process.stderr.write(`gradcomp train: note: ${w}\n`);
  if (!launchedByMpi()) {
    // Missing image data or an unusable checkpoint folder is said once, before any rank starts (under mpirun each host checks its own).
    try {
      (await import('../train/job')).checkData(o);
      if (o.checkpoint !== undefined) (await import('../train/checkpoint')).ensureCheckpointDir(o.checkpoint);
    } catch (err) {
      process.stderr.write(`gradcomp train: ${(err as Error).message}\n`);
      return 2;
    }
  }
  if (launchedByMpi()) {
    const size = Number(e.OMPI_COMM_WORLD_SIZE ?? e.PMI_SIZE);
    if (rest.includes('--workers') && Number.isInteger(size) && size !== o.workers) {
      process.stderr.write(`gradcomp train: --workers ${o.workers} disagrees with mpirun's ${size} processes (drop --workers under mpirun)\n`);
      return 2;
    }
    const { main: worker } = await import('../train/worker');
    await worker(rest);
    return process.exitCode === undefined ? 0 : Number(process.exitCode);
  }
  const { runLocal } = await import('../comm/launcher');
  return (await runLocal(path.join(__dirname, '..', 'train', 'worker.js'), o.workers, rest)).code;
}

async function influence(argv: string[]): Promise<number> {
  const { parseInfluenceArgs, INFLUENCE_USAGE } = await import('../analysis/influence');
  if (argv.includes('--help') || argv.includes('-h')) { process.stdout.write(INFLUENCE_USAGE + '\n'); return 0; }
  let o;
  try { o = parseInfluenceArgs(argv); } catch (e) { process.stderr.write(`gradcomp influence: ${(e as Error).message}\n`); return 2; }
  const { launchedByMpi } = await import('../comm/init');
  if (launchedByMpi()) {
    const { main: worker } = await import('../analysis/worker');
    await worker(argv);
    return process.exitCode === undefined ? 0 : Number(process.exitCode);
  }
  const { runLocal } = await import('../comm/launcher');
  return (await runLocal(path.join(__dirname, '..', 'analysis', 'worker.js'), o.workers, argv)).code;
}

function bench(argv: string[]): number {
  const f = flags('bench', argv, { quick: { type: 'boolean' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } }, 'usage: gradcomp bench [--quick] [--json]');
  if (!f) return 2;
  if (f.help) { process.stdout.write('usage: gradcomp bench [--quick] [--json]\n  every kernel against its memory floor and baselines measured in the same run\n'); return 0; }
  const r = spawnSync(process.execPath, [path.join(__dirname, '..', '..', 'bench', 'main.js'), ...argv], { stdio: 'inherit' });
  return r.status ?? 1;
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'train': return train(rest);
    case 'run': return run(rest);
    case 'doctor': return doctor(rest);
    case 'bench': return bench(rest);
    case 'influence': return influence(rest);
    case '-v': case '--version': process.stdout.write(`${version()}\n`); return 0;
    case undefined: case '-h': case '--help': case 'help':
      process.stdout.write(USAGE + '\n');
      return cmd === undefined ? 1 : 0;
    default:
      process.stderr.write(`gradcomp: unknown ${cmd.startsWith('-') ? 'flag' : 'command'} '${cmd}'\n${USAGE}\n`);
      return 2;
  }
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (e) => { process.stderr.write(`gradcomp: ${e?.message ?? e}\n`); process.exitCode = 1; });
