/**
 * init(): one script, any launcher. Under `gradcomp run -n N` it returns the local backend's
 * communicator for this worker; started plainly it returns a single-rank communicator (so the same
 * script runs on one process); under mpirun it needs the MPI backend, which this build does not
 * have yet, and says so rather than silently training N unrelated single-rank jobs.
 */
import { workerData } from 'node:worker_threads';
import { GradcompError, typeError } from '../native/errors';
import { LocalCommunicator } from './local';
import { LocalJob, newShared } from './shared';
import type { Communicator } from './types';

export interface InitOptions {
  backend?: 'auto' | 'local' | 'mpi';
  /** For a single-rank run: collective timeout (ms). */
  timeoutMs?: number;
}

function launchedByMpi(): boolean {
  const e = process.env;
  return e.OMPI_COMM_WORLD_SIZE !== undefined || e.PMI_SIZE !== undefined || e.PMIX_RANK !== undefined;
}

export async function init(opts: InitOptions = {}): Promise<Communicator> {
  if (opts === null || typeof opts !== 'object') throw typeError('options', 'an options object', opts);
  const backend = opts.backend ?? (process.env.GRADCOMP_COMM as InitOptions['backend']) ?? 'auto';
  if (!['auto', 'local', 'mpi'].includes(backend)) throw typeError('options.backend', "'auto', 'local' or 'mpi'", backend);
  const job = (workerData as { gradcomp?: LocalJob } | null)?.gradcomp;
  if (backend === 'mpi' || (backend === 'auto' && !job && launchedByMpi())) {
    throw new GradcompError('ERR_GRADCOMP_BACKEND_UNAVAILABLE', launchedByMpi()
      ? 'this process was started by mpirun, but this build of gradcomp has no MPI backend yet; use `gradcomp run -n N script.js`'
      : 'the MPI backend is not part of this build; use the local backend (`gradcomp run -n N script.js`)');
  }
  if (job && job.marker === 'gradcomp.local') {
    return new LocalCommunicator(job, `local: rank ${job.rank} of ${job.size} worker_threads started by gradcomp run`);
  }
  const { ctrl, data } = newShared(1, 64);
  const single: LocalJob = { marker: 'gradcomp.local', rank: 0, size: 1, ctrl, data, slotBytes: 64, timeoutMs: opts.timeoutMs ?? 60000, ports: [undefined], outPorts: [undefined] };
  return new LocalCommunicator(single, 'local: a single rank (not started by gradcomp run or mpirun)');
}
