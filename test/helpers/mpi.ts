/**
 * What every mpirun-launching test needs: why MPI tests must skip here (if they must), and the
 * Open MPI environment a root user on a loopback-only machine needs (specs/distributed.md §2).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

export const MPI_ADDON = path.resolve(__dirname, '..', '..', 'native', 'mpi', 'build', 'Release', 'gradcomp_mpi.node');

/** '' when mpirun and the MPI addon are both present, else the reason to skip. */
export function mpiSkipReason(): string {
  try { execFileSync('mpirun', ['--version'], { stdio: 'ignore' }); } catch { return 'mpirun is not installed (apt-get install openmpi-bin libopenmpi-dev)'; }
  return fs.existsSync(MPI_ADDON) ? '' : `the MPI addon is not built (${MPI_ADDON})`;
}

export const MPI_ENV: NodeJS.ProcessEnv = {
  ...process.env, OMPI_ALLOW_RUN_AS_ROOT: '1', OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: '1', OMPI_MCA_rmaps_base_oversubscribe: '1',
  OMPI_MCA_pml: 'ob1', OMPI_MCA_btl: 'self,vader,tcp', OMPI_MCA_btl_tcp_if_include: 'lo', OMPI_MCA_oob_tcp_if_include: 'lo',
  OMPI_MCA_btl_vader_single_copy_mechanism: 'none', NO_COLOR: '1',
};
