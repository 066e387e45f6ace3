/**
 * init(): one script, any launcher. Under `gradcomp run -n N` it returns the local backend's
 * communicator for this worker; under mpirun (or with backend 'mpi') the Open MPI backend, which
 * must be built (npm run build:mpi, where mpicc exists), or it says why not rather than silently
 * training N unrelated single-rank jobs; started plainly, a single-rank communicator.
 */
import { workerData } from 'node:worker_threads';
import { checkOptions, GradcompError, typeError } from '../native/errors';
import { loadMpiBinding } from '../native/loader';
import { LocalCommunicator } from './local';
import { MpiCommunicator } from './mpi';
import { LocalJob, newShared } from './shared';
import type { Communicator } from './types';

export interface InitOptions {
  backend?: 'auto' | 'local' | 'mpi';
  /**
   * A collective that makes no progress for this long ends the job (ms). Single-rank and MPI runs
   * (default: GRADCOMP_TIMEOUT seconds, else 60 s); under gradcomp run the launcher's --timeout.
   */
  timeoutMs?: number;
}

/** The collective timeout: init's option, else GRADCOMP_TIMEOUT (seconds), else 60 s. */
function timeoutOf(opts: InitOptions): number {
  if (opts.timeoutMs !== undefined) {
    if (typeof opts.timeoutMs !== 'number' || !(opts.timeoutMs > 0) || !Number.isFinite(opts.timeoutMs)) throw typeError('options.timeoutMs', 'a positive number of milliseconds', opts.timeoutMs);
    return opts.timeoutMs;
  }
  const env = process.env.GRADCOMP_TIMEOUT;
  if (env !== undefined && env !== '') {
    const s = Number(env);
    if (!(s > 0) || !Number.isFinite(s)) throw typeError('GRADCOMP_TIMEOUT', 'a positive number of seconds', env);
    return s * 1000;
  }
  return 60000;
}

/** True in a process started by mpirun (Open MPI, or a PMI/PMIx launcher such as srun). */
export function launchedByMpi(): boolean {
  const e = process.env;
  return e.OMPI_COMM_WORLD_SIZE !== undefined || e.PMI_SIZE !== undefined || e.PMIX_RANK !== undefined;
}

export async function init(opts: InitOptions = {}): Promise<Communicator> {
  checkOptions(opts, 'options', ['backend', 'timeoutMs']);
  const backend = opts.backend ?? (process.env.GRADCOMP_COMM as InitOptions['backend']) ?? 'auto';
  if (!['auto', 'local', 'mpi'].includes(backend)) throw typeError('options.backend', "'auto', 'local' or 'mpi'", backend);
  const job = (workerData as { gradcomp?: LocalJob } | null)?.gradcomp;
  if (backend === 'mpi' || (backend === 'auto' && !job && launchedByMpi())) {
    const { binding, reason } = loadMpiBinding();
    if (!binding) {
      throw new GradcompError('ERR_GRADCOMP_BACKEND_UNAVAILABLE', `${launchedByMpi() ? 'this process was started by mpirun, but ' : ''}${reason}`);
    }
    return new MpiCommunicator(binding, launchedByMpi() ? 'mpi: launched by mpirun' : 'mpi: requested by init({ backend: "mpi" })', timeoutOf(opts));
  }
  if (job && job.marker === 'gradcomp.local') {
    return new LocalCommunicator(job, `local: rank ${job.rank} of ${job.size} worker_threads started by gradcomp run`);
  }
  const { ctrl, data } = newShared(1, 64);
  const single: LocalJob = { marker: 'gradcomp.local', rank: 0, size: 1, ctrl, data, slotBytes: 64, timeoutMs: timeoutOf(opts), ports: [undefined], outPorts: [undefined] };
  return new LocalCommunicator(single, 'local: a single rank (not started by gradcomp run or mpirun)');
}
