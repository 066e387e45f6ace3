/**
 * Runs the sessions of N workers that live in one process against each other: the collectives
 * are done in memory (sum, gather, broadcast). For tests, single-process simulation, and as the
 * reference for what a Communicator must do with each round.
 */
import { GradcompError } from '../native/errors';
import { vecAdd } from '../ops/kernels';
import type { Session } from './types';

export function runSessions(sessions: Session[]): Float32Array[] {
  for (;;) {
    const rounds = sessions.map((s) => s.round);
    if (rounds.every((r) => r === null)) return sessions.map((s) => s.result());
    if (rounds.some((r) => r === null)) throw new GradcompError('ERR_GRADCOMP_INVALID_ARG', 'workers disagree on the number of rounds', 'sessions');
    const kind = rounds[0]!.collective;
    if (rounds.some((r) => r!.collective !== kind)) throw new GradcompError('ERR_GRADCOMP_INVALID_ARG', 'workers disagree on the collective', 'sessions');
    if (kind === 'allreduce') {
      const len = rounds[0]!.data.length;
      const sum = new Float32Array(len);
      for (const r of rounds) {
        const d = r!.data;
        if (!(d instanceof Float32Array) || d.length !== len) throw new GradcompError('ERR_GRADCOMP_INVALID_ARG', 'allreduce data must be Float32Arrays of one length', 'sessions');
        vecAdd(sum, sum, d);
      }
      sessions.forEach((s) => s.receive(sum.slice()));
      // (each worker gets its own copy: a session may keep the buffer it receives)
    } else if (kind === 'allgather') {
      const all = rounds.map((r) => r!.data as Uint8Array);
      sessions.forEach((s) => s.receive(all));
    } else {
      const root = rounds[0]!.root ?? 0;
      sessions.forEach((s) => s.receive(rounds[root]!.data));
    }
  }
}
