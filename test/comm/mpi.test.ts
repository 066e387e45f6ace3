/**
 * The Open MPI backend, launched by mpirun from the test suite with the flags a root user on a
 * loopback-only machine needs (specs/distributed.md §2). Skips, saying why, where mpirun or the
 * MPI addon is missing.
 */
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { MPI_ENV as ENV, mpiSkipReason } from '../helpers/mpi';

const root = path.resolve(__dirname, '..', '..');
const fixture = (f: string) => path.join(__dirname, 'fixtures', f);
const why = mpiSkipReason();
if (why) console.log(`MPI tests skipped: ${why}`);

function launch(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; out: string; err: string; ms: number }> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd: root, env: { ...ENV, ...env }, timeout: 60000 }, (e, out, err) =>
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : 1) : 0, out, err, ms: Date.now() - t0 }));
  });
}
const mpirun = (n: number, script: string, ...args: string[]) => launch('mpirun', ['-np', String(n), process.execPath, fixture(script), ...args]);
const gradcompRun = (n: number, script: string, ...args: string[]) =>
  launch(process.execPath, [path.join(root, 'dist', 'lib', 'cli', 'main.js'), 'run', '-n', String(n), fixture(script), ...args]);

(why ? describe.skip : describe)('mpi backend (mpirun)', () => {
  test.each([2, 3, 4])('every collective against its reference on %i ranks', async (n) => {
    const r = await mpirun(n, 'collectives.js', '[1, 7, 1000, 65537]');
    expect(r.code).toBe(0);
    expect(r.out.trim().split('\n').sort()).toEqual(Array.from({ length: n }, (_, i) => `ok ${i}/${n} mpi`));
  });

  test('sizes up to 10^6 elements', async () => {
    const r = await mpirun(2, 'collectives.js', '[1000000]');
    expect(r.code).toBe(0);
    expect(r.out.trim().split('\n').sort()).toEqual(['ok 0/2 mpi', 'ok 1/2 mpi']);
  });

  test('the same script gives identical results under gradcomp run -n 4 and mpirun -np 4', async () => {
    const [a, b] = [await gradcompRun(4, 'digest.js'), await mpirun(4, 'digest.js')];
    expect(a.code).toBe(0);
    expect(b.code).toBe(0);
    const lines = (s: string) => s.trim().split('\n').filter((l) => l.startsWith('rank ')).sort();
    expect(lines(a.out)).toHaveLength(4);
    expect(lines(b.out)).toEqual(lines(a.out));
  });

  test('a worker thread shares its rank\'s engine only while the main thread lends it; the lender refuses collectives meanwhile', async () => {
    const r = await mpirun(2, 'threads.js');
    expect(r.code).toBe(0);
    expect(r.out.trim().split('\n').sort()).toEqual([0, 1].map((k) => `rank ${k}: unlent ERR_GRADCOMP_COMM_LENT, lent 3, main while lent ERR_GRADCOMP_COMM_LENT, after 3`));
  });

  test.each(['mismatch', 'dtype'])('mismatched collectives (%s) are rejected on every rank', async (mode) => {
    const r = await mpirun(3, 'fault.js', mode);
    expect(r.code).not.toBe(0);
    for (const rank of [0, 1, 2]) expect(r.out).toContain(`rank ${rank}: ERR_GRADCOMP_COLLECTIVE_MISMATCH`);
  });

  test('a rank stuck in a loop: the collective timeout ends the job within the timeout + 5 s, naming it', async () => {
    const r = await launch('mpirun', ['-np', '4', '-x', 'GRADCOMP_TIMEOUT', process.execPath, fixture('fault.js'), 'hang'], { GRADCOMP_TIMEOUT: '3' });
    expect(r.code).not.toBe(0);
    expect(r.ms).toBeLessThan(8000);
    expect(r.out + r.err).toMatch(/rank 1\b[^\n]*(did not|never|stopped|not reach|no answer|missing)/i);
  });

  test.each(['exit', 'throw', 'kill'])('a rank that dies (%s) mid-job takes the job down within 10 s', async (mode) => {
    const r = await mpirun(4, 'fault.js', mode);
    expect(r.code).not.toBe(0);
    expect(r.ms).toBeLessThan(10000);
    expect(r.out).not.toMatch(/no error/);
  });
});
