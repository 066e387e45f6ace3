/**
 * `gradcomp train --checkpoint DIR --resume`: a job killed with SIGKILL at a random moment (the
 * whole process group: every rank at once, as a crash would) and resumed, possibly killed again,
 * ends with the model an uninterrupted run gives (the same digest), under `gradcomp run` and under
 * mpirun; a damaged newest checkpoint is skipped in favour of the previous complete one.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { freshSeed, mulberry32 } from '../reference/rng';
import { MPI_ENV, mpiSkipReason } from '../helpers/mpi';

const root = path.resolve(__dirname, '..', '..');
const cli = path.join(root, 'dist', 'lib', 'cli', 'main.js');
const seed = freshSeed();
const rand = mulberry32(seed);
beforeAll(() => console.log(`resume tests: GRADCOMP_TEST_SEED=${seed}`));

const ALGOS: string[][] = [
  ['--algo', 'ef-sgd'], ['--algo', 'cocod', '--period', '4'], ['--algo', 'local', '--period', '5', '--momentum', '0.9'],
  ['--algo', 'powersgd', '--rank', '2'], ['--algo', 'sync', '--compressor', 'dgc', '--ratio', '0.05', '--momentum', '0.9'],
];
const base = (algo: string[]) => ['--workers', '4', '--model', 'mlp', '--steps', '400', '--seed', '5', '--json', '--progress', 'none', ...algo];

interface Run { code: number | null; signal: string | null; out: string; err: string }
/** A kill: delayMs after start, or after the first checkpoint file appears in `dir` (so it lands mid-run). */
interface Kill { delayMs: number; afterCheckpointIn?: string }
/** Starts `train` on a backend; kills its process group as `kill` says. */
function trainRun(backend: 'local' | 'mpi', args: string[], kill?: Kill): Promise<Run> {
  const [cmd, argv] = backend === 'local'
    ? [process.execPath, [cli, 'train', ...args]]
    : ['mpirun', ['-np', '4', process.execPath, cli, 'train', ...args.filter((a, i) => a !== '--workers' && args[i - 1] !== '--workers')]];
  return new Promise((resolve) => {
    const p = spawn(cmd, argv, { cwd: root, env: backend === 'mpi' ? MPI_ENV : process.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    const killNow = () => { try { process.kill(-p.pid!, 'SIGKILL'); } catch { /* already gone */ } };
    let timer: NodeJS.Timeout | undefined;
    if (kill && !kill.afterCheckpointIn) timer = setTimeout(killNow, kill.delayMs);
    const poll = kill?.afterCheckpointIn ? setInterval(() => {
      if (fs.readdirSync(kill.afterCheckpointIn!).some((f) => f.endsWith('.gckp'))) { clearInterval(poll); timer = setTimeout(killNow, kill.delayMs); }
    }, 10) : undefined;
    const guard = setTimeout(killNow, 120000);
    p.on('close', (code, signal) => { clearTimeout(timer); clearInterval(poll); clearTimeout(guard); resolve({ code, signal, out, err }); });
  });
}
/** Kills every process whose command line mentions `dir` (ranks mpirun may have left in other process groups) and waits until none is left. */
async function reap(dir: string): Promise<void> {
  for (let tries = 0; tries < 200; tries++) {
    const pids = fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d) && Number(d) !== process.pid).filter((d) => {
      try { return fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').includes(dir); } catch { return false; }
    });
    if (pids.length === 0) return;
    for (const pid of pids) { try { process.kill(Number(pid), 'SIGKILL'); } catch { /* gone */ } }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`processes of ${dir} survive SIGKILL`);
}
const digestOf = (r: Run) => { const m = /"digest":"([0-9a-f]+)"/.exec(r.out); return m ? m[1] : `none (code ${r.code}, ${r.err.slice(-400)})`; };

const reference = new Map<string, string>();
async function referenceDigest(algo: string[]): Promise<string> {
  const key = algo.join(' ');
  if (!reference.has(key)) {
    const r = await trainRun('local', base(algo));
    expect(r.code).toBe(0);
    reference.set(key, digestOf(r));
  }
  return reference.get(key)!;
}

async function killAndResume(backend: 'local' | 'mpi', algo: string[], trial: number): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gc-resume-'));
  try {
    const args = [...base(algo), '--checkpoint', dir, '--checkpoint-every', String(5 + (trial % 4))];
    // One or two kills, then a resume that runs to the end. A kill lands at a random moment after
    // the first checkpoint (mid-run, possibly mid-write), or now and then before any checkpoint.
    const kills = 1 + Math.floor(rand() * 2);
    let killed = 0;
    for (let k = 0; k < kills; k++) {
      const early = rand() < 0.2;
      const r = await trainRun(backend, k === 0 ? args : [...args, '--resume'],
        early ? { delayMs: 50 + Math.floor(rand() * 400) } : { delayMs: Math.floor(rand() * 600), afterCheckpointIn: dir });
      if (r.code !== 0) killed++;
      await reap(dir); // a crash takes every rank: none of the killed job may write on
    }
    expect(killed).toBeGreaterThan(0); // the run is long enough that the kill lands before it ends
    const done = await trainRun(backend, [...args, '--resume']);
    expect({ code: done.code, signal: done.signal, err: done.err.slice(-1500) }).toMatchObject({ code: 0 });
    expect(digestOf(done)).toBe(await referenceDigest(algo));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe('kill and resume: the uninterrupted digest every time', () => {
  test.each(Array.from({ length: 10 }, (_, i) => [i, ALGOS[i % ALGOS.length].join(' ')] as const))('gradcomp run, trial %i (%s)', async (i) => {
    await killAndResume('local', ALGOS[i % ALGOS.length], i);
  }, 120000);

  const why = mpiSkipReason();
  const mpiTrials = Array.from({ length: 10 }, (_, i) => [i, ALGOS[i % ALGOS.length].join(' ')] as const);
  if (why) test.skip(`mpirun trials (${why})`, () => undefined);
  else test.each(mpiTrials)('mpirun, trial %i (%s)', async (i: number) => {
    await killAndResume('mpi', ALGOS[i % ALGOS.length], i);
  }, 120000);
});

test('a damaged newest checkpoint is skipped (with a message) and the previous complete set is used', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gc-resume-'));
  try {
    const algo = ALGOS[0], args = [...base(algo), '--steps', '60', '--checkpoint', dir, '--checkpoint-every', '10'];
    // A complete run leaves the last two sets, steps 40 and 50.
    const full = await trainRun('local', args);
    expect(full.code).toBe(0);
    const files = fs.readdirSync(dir).filter((f) => f.startsWith('rank-1-')).sort();
    expect(files).toEqual(['rank-1-step-40.gckp', 'rank-1-step-50.gckp']);
    // Truncate rank 1's newest and flip a byte in rank 2's newest.
    const f1 = path.join(dir, 'rank-1-step-50.gckp');
    fs.truncateSync(f1, fs.statSync(f1).size - 100);
    const f2 = path.join(dir, 'rank-2-step-50.gckp'), b = fs.readFileSync(f2);
    b[b.length >> 1] ^= 0x10;
    fs.writeFileSync(f2, b);
    const again = await trainRun('local', [...args, '--resume']);
    expect(again.code).toBe(0);
    expect(again.err).toMatch(/rank 1: skipping the damaged checkpoint .*rank-1-step-50\.gckp/);
    expect(again.err).toMatch(/rank 2: skipping the damaged checkpoint .*rank-2-step-50\.gckp/);
    expect(digestOf(again)).toBe(digestOf(full));
    // Resuming with other options is refused, naming the flag.
    const other = await trainRun('local', [...args, '--resume', '--lr', '0.2']);
    expect(other.code).not.toBe(0);
    expect(other.err).toMatch(/other training options/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}, 120000);

test('a checkpoint folder that cannot be one is refused before training, once, naming the flag; missing parents are made', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gc-ckdir-'));
  try {
    const file = path.join(dir, 'a-file');
    fs.writeFileSync(file, 'x');
    // A file in the way, a folder under a file, and (Linux) a pseudo file system that takes no folders:
    // Node's recursive mkdir never returns on that last one.
    const bad = [[file, 'is a file'], [path.join(file, 'sub'), 'is a file'], ...(fs.existsSync('/proc/self') ? [['/proc/gradcomp-x/y', 'cannot make']] : [])];
    for (const [where, why] of bad) {
      const r = await trainRun('local', ['--workers', '2', '--steps', '20', '--checkpoint-every', '5', '--checkpoint', where, '--progress', 'none']);
      expect(r.code).toBe(2);
      expect(r.err.split('--checkpoint').length - 1).toBe(1);
      expect(r.err).toContain(why);
    }
    const nested = path.join(dir, 'x', 'y', 'z');
    const ok = await trainRun('local', ['--workers', '2', '--steps', '20', '--checkpoint-every', '5', '--checkpoint', nested, '--progress', 'none']);
    expect(ok.code).toBe(0);
    expect(fs.readdirSync(nested).sort()).toEqual(['rank-0-step-10.gckp', 'rank-0-step-15.gckp', 'rank-1-step-10.gckp', 'rank-1-step-15.gckp']);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}, 60000);
