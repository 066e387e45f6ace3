/** Launch helpers for the algorithm tests: `gradcomp train --json` and the probe fixture. */
import { execFile } from 'node:child_process';
import * as path from 'node:path';

export const root = path.resolve(__dirname, '..', '..');
export const cli = path.join(root, 'dist', 'lib', 'cli', 'main.js');
export const probe = path.join(__dirname, 'fixtures', 'probe.js');

export interface Launch { code: number; out: string; err: string; signal?: string | null }

export function launch(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env, timeout = 100000): Promise<Launch> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd: root, env, timeout, maxBuffer: 64 << 20 }, (e, out, err) =>
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : 1) : 0, out, err, signal: e?.signal ?? null }));
  });
}

export interface TrainJson {
  algo: string; compressor: string; workers: number; steps: number; finalLoss: number; accuracy: number;
  bytesPerWorker: number; denseBytesPerWorker: number; rounds: number; seconds: number; digest: string; backend: string; parameters: number;
}

export async function train(args: string[]): Promise<TrainJson> {
  const r = await launch(process.execPath, [cli, 'train', '--json', '--progress', 'none', ...args]);
  if (r.code !== 0) throw new Error(`gradcomp train ${args.join(' ')} failed (code ${r.code}, signal ${r.signal}): ${r.err.slice(-2000)}\nstdout: ${r.out.slice(-500)}`);
  return JSON.parse(r.out);
}

export interface ProbeRow {
  rank: number; init: number[]; params: number[]; gradSum: number[]; resumed?: number[]; averaged?: number[];
  residuals: number[][]; state: { buffers: Record<string, number[]>; step: number }; stats: { bytesSent: number; bytesReceived: number; rounds: number };
}

/** Runs the probe on n local ranks; rows in rank order. */
export async function runProbe(cfg: Record<string, unknown>, n = 4): Promise<ProbeRow[]> {
  const r = await launch(process.execPath, [cli, 'run', '-n', String(n), probe, JSON.stringify(cfg)]);
  if (r.code !== 0) throw new Error(`probe ${JSON.stringify(cfg)} failed (${r.code}): ${r.err}`);
  return r.out.trim().split('\n').map((l) => JSON.parse(l) as ProbeRow).sort((a, b) => a.rank - b.rank);
}
