#!/usr/bin/env node
/**
 * The `gradcomp` command.
 *   gradcomp doctor [--json]   what gradcomp runs on and why (the probe runs in a child process)
 *   gradcomp bench [flags]     the microbenchmark suite (flags: --quick, --json)
 *   gradcomp train [flags]     train a small model with N workers (the main job; --help for flags)
 *   gradcomp run -n N script   run N ranks of a script on the local backend
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as path from 'node:path';

const USAGE = `usage: gradcomp <command>
  train [flags]               train a model with N workers and compressed communication (train --help)
  doctor [--json]             report the backend, SIMD level, threads and versions
  bench [--quick] [--json]    run the microbenchmark suite
  run -n N script.js [args]   run N ranks of a script on the local backend (worker_threads)`;

function doctor(json: boolean): number {
  // A broken native stack must not take the caller down: probe in a child process.
  const probe = `const g = require(${JSON.stringify(path.join(__dirname, '..', 'index.js'))});
    process.stdout.write(JSON.stringify(g.backendInfo()));`;
  let info: Record<string, unknown>;
  try {
    info = JSON.parse(execFileSync(process.execPath, ['-e', probe], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }));
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    process.stderr.write(`gradcomp doctor: the native addon could not be loaded\n${err.stderr || err.message}\n`);
    return 1;
  }
  if (json) {
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

async function run(rest: string[]): Promise<number> {
  let n = 1, timeoutMs: number | undefined;
  while (rest.length && rest[0].startsWith('-')) {
    const flag = rest.shift()!;
    if (flag === '-n' || flag === '--workers') n = Number(rest.shift());
    else if (flag === '--timeout') timeoutMs = Number(rest.shift()) * 1000;
    else { process.stderr.write(`gradcomp run: unknown flag ${flag}\n${USAGE}\n`); return 2; }
  }
  const script = rest.shift();
  if (!script || !Number.isInteger(n) || n < 1) { process.stderr.write(`gradcomp run: expected -n N script.js\n${USAGE}\n`); return 2; }
  const { runLocal } = await import('../comm/launcher');
  return (await runLocal(script, n, rest, { timeoutMs })).code;
}

async function train(rest: string[]): Promise<number> {
  const { parseTrainArgs, TRAIN_USAGE } = await import('../train/options');
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

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'train':
      return train(rest);
    case 'run':
      return run(rest);
    case 'doctor':
      return doctor(rest.includes('--json'));
    case 'bench': {
      const r = spawnSync(process.execPath, [path.join(__dirname, '..', '..', 'bench', 'main.js'), ...rest], { stdio: 'inherit' });
      return r.status ?? 1;
    }
    case undefined:
    case '-h':
    case '--help':
      process.stdout.write(USAGE + '\n');
      return cmd === undefined ? 1 : 0;
    default:
      process.stderr.write(`gradcomp: unknown command '${cmd}'\n${USAGE}\n`);
      return 1;
  }
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (e) => { process.stderr.write(`gradcomp: ${e?.message ?? e}\n`); process.exitCode = 1; });
