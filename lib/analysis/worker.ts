/** One rank of `gradcomp influence` (a worker_thread of gradcomp run, or an MPI process). */
import { writeSync } from 'node:fs';
import { init } from '../comm/init';
import { formatInfluence, influenceRank, parseInfluenceArgs } from './influence';

export async function main(argv: string[]): Promise<void> {
  const o = parseInfluenceArgs(argv);
  const comm = await init();
  try {
    const r = await influenceRank(comm, o);
    if (r) {
      const json = () => JSON.stringify({ ...r, self: undefined, topSelf: Array.from(r.self.keys()).sort((a, b) => r.self[b] - r.self[a] || a - b).slice(0, 100) });
      writeSync(1, (o.json ? json() : formatInfluence(r)) + '\n');
    }
  } finally {
    await comm.close();
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((e) => {
    writeSync(2, `gradcomp influence: ${typeof e?.code === 'string' && e.code.startsWith('ERR_GRADCOMP') ? e.message : e?.stack ?? e}\n`);
    process.exitCode = 1;
  });
}
