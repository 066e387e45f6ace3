/**
 * The same `gradcomp train` job under mpirun and under the local launcher gives identical
 * results: the algorithms reduce floats in rank order (lib/algorithms/exchange.ts), so the final
 * model digest and loss agree bit for bit. Skips, saying why, where mpirun or the MPI addon is
 * missing.
 */
import { MPI_ENV as ENV, mpiSkipReason } from '../helpers/mpi';
import { cli, launch, train } from './helpers';

const why = mpiSkipReason();
if (why) console.log(`MPI train tests skipped: ${why}`);

(why ? describe.skip : describe)('gradcomp train under mpirun', () => {
  test.each([
    [['--algo', 'ef-sgd']], [['--algo', 'liec', '--server', 'sharded', '--period', '8']], [['--algo', 'cocod', '--period', '4']],
    [['--algo', 'powersgd', '--model', 'mlp']], [['--algo', 'vrl', '--non-iid']],
  ])('%j: identical to gradcomp run', async (args) => {
    const common = ['--model', 'softmax', '--steps', '120', '--seed', '4', ...args];
    const local = await train(['--workers', '4', ...common]);
    const r = await launch('mpirun', ['-np', '4', process.execPath, cli, 'train', '--json', '--progress', 'none', ...common], ENV);
    expect(r.code).toBe(0);
    const mpi = JSON.parse(r.out);
    expect(mpi.backend).toBe('mpi');
    expect(local.backend).toBe('local');
    expect(mpi.digest).toBe(local.digest);
    expect(mpi.finalLoss).toBe(local.finalLoss);
    expect(mpi.bytesPerWorker).toBe(local.bytesPerWorker);
  });

  test('--workers that disagree with mpirun is refused', async () => {
    const r = await launch('mpirun', ['-np', '2', process.execPath, cli, 'train', '--workers', '3', '--steps', '5'], ENV);
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/--workers 3 disagrees with mpirun's 2 processes/);
  });
});
