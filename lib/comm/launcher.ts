/**
 * `gradcomp run -n N script.js [args]`: starts N ranks of one script as worker_threads in this
 * process, wired to one shared job. A rank that throws, rejects unhandled, or exits with a
 * non-zero code aborts the job: the others' pending collectives reject at once, and the launcher
 * exits non-zero naming the first rank that failed.
 */
import * as path from 'node:path';
import { MessageChannel, MessagePort, Worker } from 'node:worker_threads';
import { checkOptions, rangeError, typeError } from '../native/errors';
import { CTRL, LocalJob, newShared } from './shared';

export interface RunOptions {
  /**
   * Bytes per rank slot; larger messages move in chunks. Default: 32 MiB up to 7 ranks, then
   * smaller so that the job's shared buffer ((ranks + 1) slots) stays near 256 MiB (at least 1 MiB
   * a slot). Larger slots mean fewer barriers per large collective (a 100 MB allreduce on 4 ranks:
   * about 90 ms at 32 MiB, 107 ms at 8 MiB here).
   */
  slotBytes?: number;
  /** A collective that makes no progress for this long aborts the job (default 60 s). */
  timeoutMs?: number;
  /** Where failures are reported (default process.stderr). */
  log?: (line: string) => void;
}

export interface RunResult { code: number; failedRank?: number; error?: string }

/** How long ranks get to stop by themselves after the job failed before they are terminated. */
const GRACE_MS = 2000;

/** The default slot: 32 MiB, or (256 MiB / (size + 1)) rounded down to whole MiB where that is smaller, and at least 1 MiB. */
export function defaultSlotBytes(size: number): number {
  return Math.max(1, Math.min(32, Math.floor(256 / (size + 1)))) << 20;
}

export async function runLocal(script: string, size: number, args: string[] = [], opts: RunOptions = {}): Promise<RunResult> {
  if (typeof script !== 'string' || script.length === 0) throw typeError('script', 'a path to a script', script);
  if (!Number.isInteger(size) || size < 1 || size > 256) throw rangeError('n', 'an integer in [1, 256]', size);
  checkOptions(opts, 'options', ['slotBytes', 'timeoutMs', 'log']);
  const slotBytes = opts.slotBytes ?? defaultSlotBytes(size), timeoutMs = opts.timeoutMs ?? 60000;
  if (!Number.isInteger(slotBytes) || slotBytes < 64 || slotBytes % 8 !== 0) throw rangeError('options.slotBytes', 'a multiple of 8 >= 64', slotBytes);
  const log = opts.log ?? ((line: string) => process.stderr.write(line + '\n'));
  const { ctrl, data } = newShared(size, slotBytes);
  const c = new Int32Array(ctrl);
  // A channel per ordered pair: outPorts[src][dest] -> ports[dest][src].
  const ports: (MessagePort | undefined)[][] = Array.from({ length: size }, () => Array(size).fill(undefined));
  const outPorts: (MessagePort | undefined)[][] = Array.from({ length: size }, () => Array(size).fill(undefined));
  for (let s = 0; s < size; s++)
    for (let d = 0; d < size; d++) {
      if (s === d) continue;
      const ch = new MessageChannel();
      outPorts[s][d] = ch.port1;
      ports[d][s] = ch.port2;
    }
  let failed: { rank: number; error: string } | undefined;
  const later: string[] = [];
  const workers: (Worker | undefined)[] = Array(size).fill(undefined), done = Array<boolean>(size).fill(false);
  let reaper: NodeJS.Timeout | undefined;
  const fail = (rank: number, error: string) => {
    if (!failed) {
      failed = { rank, error };
      // The others see the abort at their next collective step; a rank stuck in its own code (a
      // loop, a blocking call) never does: terminate whatever is still running after a grace period.
      reaper = setTimeout(() => {
        workers.forEach((w, r) => {
          if (w && !done[r]) { log(`gradcomp run: rank ${r} had not stopped ${GRACE_MS} ms after the job failed; terminating it`); void w.terminate(); }
        });
      }, GRACE_MS);
    }
    else if (rank !== failed.rank) later.push(`rank ${rank}: ${error.split('\n')[0]}`);
    Atomics.compareExchange(c, CTRL.ABORT, 0, rank + 1);
    Atomics.notify(c, CTRL.GENERATION);
  };
  const file = path.resolve(script);
  const exits = Array.from({ length: size }, (_, rank) => new Promise<void>((resolve) => {
    const job: LocalJob = { marker: 'gradcomp.local', rank, size, ctrl, data, slotBytes, timeoutMs, ports: ports[rank], outPorts: outPorts[rank] };
    const transfer = [...ports[rank], ...outPorts[rank]].filter((p): p is MessagePort => p !== undefined);
    const w = new Worker(file, { workerData: { gradcomp: job }, argv: args, transferList: transfer, env: { ...process.env, GRADCOMP_RANK: String(rank), GRADCOMP_SIZE: String(size) } });
    workers[rank] = w;
    w.on('error', (e: Error) => fail(rank, e?.stack ?? String(e)));
    w.on('exit', (code) => {
      done[rank] = true;
      if (code !== 0) fail(rank, `exited with code ${code}`);
      Atomics.store(c, CTRL.COUNTS + 2 * size + rank, 1);
      Atomics.add(c, CTRL.DEPARTED, 1);
      Atomics.notify(c, CTRL.GENERATION);
      resolve();
    });
  }));
  await Promise.all(exits);
  if (reaper) clearTimeout(reaper);
  if (failed) {
    const missing = Atomics.load(c, CTRL.MISSING) - 1;
    if (missing >= 0) log(`gradcomp run: rank ${missing} did not reach the collective the other ranks waited in for ${timeoutMs / 1000} s (stuck, or in another code path)`);
    log(`gradcomp run: rank ${failed.rank} of ${size} failed: ${failed.error}`);
    if (later.length) log(`gradcomp run: then ${later.join('; ')}`);
    return { code: 1, failedRank: failed.rank, error: failed.error };
  }
  return { code: 0 };
}
