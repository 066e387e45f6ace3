#!/usr/bin/env node
/**
 * The `gradcomp` command.
 *   gradcomp doctor [--json]   what gradcomp runs on and why (the probe runs in a child process)
 *   gradcomp bench [flags]     the microbenchmark suite (flags: --quick, --json)
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as path from 'node:path';

const USAGE = `usage: gradcomp <command>
  doctor [--json]          report the backend, SIMD level, threads and versions
  bench [--quick] [--json] run the microbenchmark suite`;

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

function main(argv: string[]): number {
  const [cmd, ...rest] = argv;
  switch (cmd) {
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

process.exitCode = main(process.argv.slice(2));
