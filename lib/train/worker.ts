/**
 * Entry of one `gradcomp train` rank: a worker_thread started by the local launcher, or a process
 * started by mpirun. Rank 0 draws the progress and prints the result (to fd 1 and 2 directly: a
 * worker_thread's stdout is forwarded asynchronously and could be cut off at exit).
 */
import { writeSync } from 'node:fs';
import { init } from '../comm/init';
import { formatResult, trainRank, Progress } from './job';
import { parseTrainArgs, TrainOptions } from './options';

export function progressPrinter(o: TrainOptions): Progress | undefined {
  if (o.progress === 'none') return undefined;
  let last = -1;
  return (step, steps, loss) => {
    const pct = Math.floor((100 * step) / steps);
    if (o.progress === 'bar') {
      if (pct === last && step !== steps) return;
      last = pct;
      const fill = Math.round((30 * step) / steps);
      writeSync(2, `\r[${'#'.repeat(fill)}${'.'.repeat(30 - fill)}] ${String(pct).padStart(3)}%  step ${step}/${steps}  loss ${loss.toFixed(4)}${step === steps ? '\n' : ''}`);
    } else if (Math.floor(pct / 10) !== Math.floor(last / 10)) {
      // One line each time a new tenth of the run is entered (so 0% and 100% both appear).
      last = pct;
      writeSync(2, `train: ${String(pct).padStart(3)}%  step ${step}/${steps}  loss ${loss.toFixed(4)}\n`);
    }
  };
}

export async function main(argv: string[]): Promise<void> {
  const o = parseTrainArgs(argv);
  const comm = await init();
  try {
    const result = await trainRank(comm, o, comm.rank === 0 ? progressPrinter(o) : undefined);
    if (result) writeSync(1, (o.json ? JSON.stringify(result) : formatResult(result)) + '\n');
  } finally {
    await comm.close();
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((e) => {
    // Coded errors are the user's to fix: their message is enough. Anything else gets its stack.
    const prefix = `rank ${process.env.GRADCOMP_RANK ?? process.env.OMPI_COMM_WORLD_RANK ?? '?'}: `;
    const msg = String(typeof e?.code === 'string' && e.code.startsWith('ERR_GRADCOMP') ? e.message : e?.stack ?? e);
    writeSync(2, `gradcomp train: ${msg.startsWith(prefix) ? msg : prefix + msg}\n`); // communicator errors already name their rank
    process.exitCode = 1;
  });
}
