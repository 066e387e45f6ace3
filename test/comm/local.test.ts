import * as path from 'node:path';
import { execFile } from 'node:child_process';
import { runLocal, init } from '../../lib';

const root = path.resolve(__dirname, '..', '..');
const cli = path.join(root, 'dist', 'lib', 'cli', 'main.js');
const fixture = (f: string) => path.join(__dirname, 'fixtures', f);

function gradcompRun(args: string[]): Promise<{ code: number; out: string; err: string; ms: number }> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    execFile(process.execPath, [cli, 'run', ...args], { cwd: root, timeout: 60000 }, (e, out, err) =>
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : 1) : 0, out, err, ms: Date.now() - t0 }));
  });
}

describe('local backend', () => {
  test.each([2, 3, 4])('every collective against its reference on %i ranks (gradcomp run)', async (n) => {
    const r = await gradcompRun(['-n', String(n), fixture('collectives.js'), '[1, 7, 1000, 65537]']);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out.trim().split('\n').sort()).toEqual(Array.from({ length: n }, (_, i) => `ok ${i}/${n} local`));
  });

  test.each([2, 3, 4])('allreduce and allgatherv of comm.alloc() buffers (read in place) against the ring-order oracle and the slot path, bit for bit, on %i ranks', async (n) => {
    const r = await gradcompRun(['-n', String(n), fixture('shared.js')]);
    expect(r.err).toBe('');
    expect(r.out.trim().split('\n').sort()).toEqual(Array.from({ length: n }, (_, i) => `shared ok ${i}/${n}`));
    expect(r.code).toBe(0);
  });

  test('sizes up to 10^6 through small slots (many chunks per collective)', async () => {
    const lines: string[] = [];
    const res = await runLocal(fixture('collectives.js'), 3, ['[1000000, 3]'], { slotBytes: 1 << 16, log: (l) => lines.push(l) });
    expect(lines).toEqual([]);
    expect(res.code).toBe(0);
  });

  test('a single rank when not launched: collectives are identities', async () => {
    const comm = await init();
    expect([comm.rank, comm.size, comm.backend]).toEqual([0, 1, 'local']);
    const a = Float32Array.from([1, 2, 3]);
    expect(Array.from(await comm.allreduce(a, 'avg'))).toEqual([1, 2, 3]);
    expect(Array.from((await comm.allgatherv(Uint8Array.from([4, 5]))).data)).toEqual([4, 5]);
    await comm.barrier();
    await comm.close();
    await expect(comm.barrier()).rejects.toThrow(/closed/);
  });

  test('bad arguments are coded errors naming the parameter', async () => {
    const comm = await init();
    await expect(comm.allreduce(new Int32Array(2) as never)).rejects.toMatchObject({ code: 'ERR_GRADCOMP_INVALID_ARG_TYPE', param: 'buf' });
    await expect(comm.allreduce(new Float32Array(2), 'min' as never)).rejects.toMatchObject({ param: 'op' });
    await expect(comm.broadcast(new Float32Array(2), 3)).rejects.toMatchObject({ param: 'root' });
    await expect(comm.scatterv(new Float32Array(2), [1], 0)).rejects.toMatchObject({ param: 'send' });
    // alloc on one rank: a plain zeroed array; bad lengths and types are coded errors.
    const a = comm.alloc(3), u = comm.alloc(5, 'uint8');
    expect([a instanceof Float32Array, a.length, Array.from(a), u instanceof Uint8Array, u.length]).toEqual([true, 3, [0, 0, 0], true, 5]);
    for (const [args, param] of [[[-1], 'length'], [[2 ** 40], 'length'], [[NaN], 'length'], [[4, 'int16'], 'dtype']] as const) {
      expect(() => (comm.alloc as (...x: unknown[]) => unknown)(...args)).toThrow(expect.objectContaining({ code: 'ERR_GRADCOMP_INVALID_ARG_TYPE', param }));
    }
    // Options objects: a misspelt option is refused rather than ignored.
    await expect(comm.allreduce(new Float32Array(2), 'sum', { determinstic: true } as never)).rejects.toMatchObject({ param: 'options.determinstic' });
    await expect(comm.allgatherv(new Float32Array(2), { inot: new Float32Array(4) } as never)).rejects.toMatchObject({ param: 'options.inot' });
    await expect(runLocal('/nonexistent.js', 2, [], { timeout: 5 } as never)).rejects.toMatchObject({ param: 'options.timeout' });
    // init's own options: a misspelt one is refused rather than ignored.
    await expect(init({ backend: 'nope' as never })).rejects.toMatchObject({ param: 'options.backend' });
    await expect(init({ timeout: 5 } as never)).rejects.toMatchObject({ code: 'ERR_GRADCOMP_INVALID_ARG_TYPE', param: 'options.timeout' });
    await expect(init({ timeoutMs: -1 })).rejects.toMatchObject({ param: 'options.timeoutMs' });
    await expect(init(null as never)).rejects.toMatchObject({ code: 'ERR_GRADCOMP_INVALID_ARG_TYPE', param: 'options' });
    await expect(init(['local'] as never)).rejects.toMatchObject({ code: 'ERR_GRADCOMP_INVALID_ARG_TYPE', param: 'options' });
    const saved = process.env.GRADCOMP_MPI_BINDING;
    process.env.GRADCOMP_MPI_BINDING = '/nonexistent/gradcomp_mpi.node'; // as on a machine without MPI
    try {
      await expect(init({ backend: 'mpi' })).rejects.toMatchObject({ code: 'ERR_GRADCOMP_BACKEND_UNAVAILABLE' });
    } finally {
      if (saved === undefined) delete process.env.GRADCOMP_MPI_BINDING; else process.env.GRADCOMP_MPI_BINDING = saved;
    }
    await comm.close();
  });
});

describe('local backend: collectives in flight', () => {
  test('a rank that computes while its collective waits stays in the job until the others arrive (the CoCoD end-of-job race)', async () => {
    // Before the fix rank 1 exited with code 0 in the middle of the allreduce and rank 0 failed
    // with "rank 1 left the job while the others wait in a collective".
    const r = await gradcompRun(['-n', '2', fixture('overlap.js')]);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out.trim().split('\n').sort()).toEqual(['rank 0: done', 'rank 1: done']);
  });
});

describe('local backend faults', () => {
  test.each([['exit', 'exited with code 3'], ['throw', 'rank 1 gives up']])(
    'a rank that %ss mid-job makes the others fail fast and the launcher names it', async (mode, why) => {
      const r = await gradcompRun(['-n', '4', fixture('fault.js'), mode]);
      expect(r.code).not.toBe(0);
      expect(r.err).toContain('gradcomp run: rank 1 of 4 failed');
      expect(r.err).toContain(why);
      for (const rank of [0, 2, 3]) expect(r.out).toContain(`rank ${rank}: ERR_GRADCOMP_PEER_FAILED`);
      expect(r.ms).toBeLessThan(10000);
    });

  test('a rank stuck in a loop: the job ends within the timeout + 5 s, non-zero, naming it, and the stuck worker is terminated', async () => {
    const r = await gradcompRun(['-n', '4', '--timeout', '3', fixture('fault.js'), 'hang']);
    expect(r.code).not.toBe(0);
    expect(r.ms).toBeLessThan(8000);
    expect(r.err).toMatch(/rank 1 did not reach the collective/);
    expect(r.err).toMatch(/rank 1 had not stopped .* terminating it/);
    for (const rank of [0, 2, 3]) expect(r.out).toMatch(new RegExp(`rank ${rank}: ERR_GRADCOMP_(COMM_TIMEOUT|PEER_FAILED)`));
  });

  test.each(['mismatch', 'dtype'])('mismatched collectives (%s) are detected on every rank', async (mode) => {
    const r = await gradcompRun(['-n', '3', fixture('fault.js'), mode]);
    expect(r.code).not.toBe(0);
    expect(r.out).toMatch(/rank 0: ERR_GRADCOMP_(COLLECTIVE_MISMATCH|PEER_FAILED)/);
    expect(r.out).toMatch(/rank 1: ERR_GRADCOMP_(COLLECTIVE_MISMATCH|PEER_FAILED)/);
    expect(r.out).toMatch(/ERR_GRADCOMP_COLLECTIVE_MISMATCH/);
  });
});
