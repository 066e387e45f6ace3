/**
 * `gradcomp train --checkpoint DIR [--checkpoint-every N] [--resume]`: every N steps each rank
 * writes DIR/rank-<r>-step-<t>.gckp (the binary checkpoint format, written atomically: temporary
 * file, fsync, rename) holding its distributed optimizer's whole state and its parameters; after
 * every rank has written step t (a barrier), files older than the previous checkpoint are removed,
 * so a kill at any moment leaves at least one complete set. --resume reads every rank's files,
 * skips damaged ones (saying so), agrees with the other ranks on the newest step that all of them
 * hold intact, and continues from there: the final model is the one an uninterrupted run gives.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeSync } from 'node:fs';
import type { AlgorithmState, DistributedOptimizer } from '../algorithms/types';
import { readCheckpointFile, writeCheckpointFile } from '../checkpoint/file';
import type { Communicator } from '../comm/types';
import { GradcompError } from '../native/errors';
import type { TrainOptions } from './options';

export interface TrainCheckpoint {
  format: 'gradcomp.train-checkpoint';
  version: 1;
  /** The options that shape the trajectory: a resume with different ones is refused. */
  options: Record<string, unknown>;
  step: number;
  rank: number;
  workers: number;
  state: AlgorithmState;
  params: Record<string, Float32Array>;
}

export const fileOf = (dir: string, rank: number, step: number) => path.join(dir, `rank-${rank}-step-${step}.gckp`);

/** The options a checkpoint must agree on (everything but output, progress and checkpoint flags). */
export function trajectoryOptions(o: TrainOptions): Record<string, unknown> {
  const { json: _j, progress: _p, checkpoint: _c, checkpointEvery: _e, resume: _r, keepCheckpoints: _k, ...rest } = o;
  return JSON.parse(JSON.stringify(rest)) as Record<string, unknown>;
}

export function stepsOnDisk(dir: string, rank: number): number[] {
  if (!fs.existsSync(dir)) return [];
  const re = new RegExp(`^rank-${rank}-step-(\\d+)\\.gckp$`);
  return fs.readdirSync(dir).map((f) => re.exec(f)).filter((m): m is RegExpExecArray => m !== null).map((m) => Number(m[1])).sort((a, b) => b - a);
}

/**
 * Makes the checkpoint folder (and its missing parents) or says, coded, why it cannot be one: a
 * file in the way, no permission, a file system that refuses folders. Each missing component is
 * made on its own (fs.mkdirSync's recursive mode never returns on some pseudo file systems, such
 * as a path under /proc), and a probe file checks that the folder takes files.
 */
export function ensureCheckpointDir(dir: string): void {
  const fail = (why: string) => new GradcompError('ERR_GRADCOMP_INVALID_ARG', `--checkpoint ${dir}: ${why}`, 'checkpoint');
  const missing: string[] = [];
  let at = path.resolve(dir);
  for (;;) {
    let st: fs.Stats | undefined;
    try { st = fs.statSync(at); } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOTDIR') throw fail(`a part of ${at} is a file, not a folder`);
      if (code !== 'ENOENT') throw fail(`cannot look at ${at} (${code})`);
    }
    if (st) { if (!st.isDirectory()) throw fail(`${at} is a file, not a folder`); break; }
    missing.unshift(at);
    const up = path.dirname(at);
    if (up === at) break;
    at = up;
  }
  for (const d of missing) {
    try { fs.mkdirSync(d); } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw fail(`cannot make the folder ${d} (${(e as NodeJS.ErrnoException).code})`);
    }
  }
  const probe = path.join(dir, `.gradcomp-probe-${process.pid}-${Math.random().toString(36).slice(2)}`);
  try { fs.writeFileSync(probe, ''); } catch (e) { throw fail(`cannot write files there (${(e as NodeJS.ErrnoException).code})`); }
  fs.rmSync(probe, { force: true });
}

/** Writes this rank's checkpoint at `step` and prunes what an agreed newer set makes redundant. */
export async function saveTrainCheckpoint(o: TrainOptions, comm: Communicator, opt: DistributedOptimizer, params: Record<string, Float32Array>, step: number): Promise<void> {
  const dir = o.checkpoint!;
  ensureCheckpointDir(dir);
  await opt.drain();
  const ck: TrainCheckpoint = { format: 'gradcomp.train-checkpoint', version: 1, options: trajectoryOptions(o), step, rank: comm.rank, workers: comm.size, state: opt.state(), params };
  writeCheckpointFile(fileOf(dir, comm.rank, step), ck);
  await comm.barrier(); // every rank holds step `step` now: older sets beyond the previous one can go
  for (const s of stepsOnDisk(dir, comm.rank).slice(Math.max(2, o.keepCheckpoints ?? 2))) fs.rmSync(fileOf(dir, comm.rank, s), { force: true });
}

/** The checkpoint to resume from (the newest step every rank holds intact), or null to start fresh. */
export async function loadTrainCheckpoint(o: TrainOptions, comm: Communicator): Promise<TrainCheckpoint | null> {
  const dir = o.checkpoint!;
  const good = new Map<number, TrainCheckpoint>();
  let mismatch: string | undefined;
  for (const step of stepsOnDisk(dir, comm.rank)) {
    const file = fileOf(dir, comm.rank, step);
    try {
      const ck = readCheckpointFile(file) as TrainCheckpoint;
      if (ck?.format !== 'gradcomp.train-checkpoint' || ck.step !== step || ck.rank !== comm.rank) throw new Error('it is not this rank\'s training checkpoint');
      if (ck.workers !== comm.size) { mismatch = `${file} was written by a job of ${ck.workers} workers, this one has ${comm.size}`; continue; }
      const want = JSON.stringify(trajectoryOptions(o)), have = JSON.stringify(ck.options);
      if (want !== have) { mismatch = `${file} was written with other training options (${have}); resume with the same flags`; continue; }
      good.set(step, ck);
    } catch (e) {
      writeSync(2, `gradcomp train: rank ${comm.rank}: skipping the damaged checkpoint ${file}: ${(e as Error).message}\n`);
    }
  }
  // Agree on the newest step every rank holds: each rank posts its good steps (newest first, at most 8).
  const mine = new Float64Array(8).fill(-1);
  [...good.keys()].sort((a, b) => b - a).slice(0, 8).forEach((s, i) => { mine[i] = s; });
  const all = await comm.allgather(mine);
  const sets = Array.from({ length: comm.size }, (_, r) => new Set(Array.from(all.subarray(8 * r, 8 * r + 8)).filter((s) => s >= 0)));
  const common = [...sets[0]].filter((s) => sets.every((x) => x.has(s))).sort((a, b) => b - a);
  if (common.length === 0) {
    if (mismatch) throw new GradcompError('ERR_GRADCOMP_CORRUPT_CHECKPOINT', `gradcomp train --resume: ${mismatch}`, '--resume');
    return null;
  }
  return good.get(common[0])!;
}
