/** The scripts in examples/ run as their header says: alone, under gradcomp run, under mpirun. */
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { MPI_ENV, mpiSkipReason } from '../helpers/mpi';

const root = path.resolve(__dirname, '..', '..');
const ex = (f: string) => path.join(root, 'examples', f);
const run = (cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env) => execFileSync(cmd, args, { cwd: root, env, encoding: 'utf8', timeout: 120000 });
const finalLoss = (out: string) => Number(/final loss of the average model: ([\d.]+)/.exec(out)![1]);

test('examples/compressors.js prints a row per compressor', () => {
  const out = run(process.execPath, [ex('compressors.js')]);
  expect(out.trim().split('\n').length).toBe(12);
  expect(out).toMatch(/"type":"powersgd","rank":4\}\s+8192\s+32\.0x/);
});

test('examples/train-loop.js learns on one rank, under gradcomp run, and (where Open MPI is) under mpirun with the same result', () => {
  const one = run(process.execPath, [ex('train-loop.js')]);
  expect(finalLoss(one)).toBeLessThan(0.2);
  const local = run(process.execPath, [path.join(root, 'dist', 'lib', 'cli', 'main.js'), 'run', '-n', '2', ex('train-loop.js')]);
  expect(finalLoss(local)).toBeLessThan(0.2);
  const why = mpiSkipReason();
  if (why) { console.log(`mpirun part skipped: ${why}`); return; }
  const mpi = run('mpirun', ['-np', '2', process.execPath, ex('train-loop.js')], MPI_ENV);
  expect(mpi.replace(/mpi\)/, 'local)')).toBe(local);
}, 120000);
