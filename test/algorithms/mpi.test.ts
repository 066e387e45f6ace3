/**
 * The same `gradcomp train` job under mpirun and under the local launcher gives identical
 * results: the algorithms reduce floats in rank order (lib/algorithms/exchange.ts), so the final
 * model digest and loss agree bit for bit. Skips, saying why, where mpirun or the MPI addon is
 * missing.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cli, launch, root, train } from './helpers';

const addon = path.join(root, 'native', 'mpi', 'build', 'Release', 'gradcomp_mpi.node');
let why = '';
try { execFileSync('mpirun', ['--version'], { stdio: 'ignore' }); } catch { why = 'mpirun is not installed (apt-get install openmpi-bin libopenmpi-dev)'; }
if (!why && !fs.existsSync(addon)) why = `the MPI addon is not built (${addon})`;
if (why) console.log(`MPI train tests skipped: ${why}`);

const ENV = {
  ...process.env, OMPI_ALLOW_RUN_AS_ROOT: '1', OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: '1', OMPI_MCA_rmaps_base_oversubscribe: '1',
  OMPI_MCA_pml: 'ob1', OMPI_MCA_btl: 'self,vader,tcp', OMPI_MCA_btl_tcp_if_include: 'lo', OMPI_MCA_oob_tcp_if_include: 'lo',
  OMPI_MCA_btl_vader_single_copy_mechanism: 'none', NO_COLOR: '1',
};

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
