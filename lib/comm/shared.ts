/**
 * The shared state of a local job: one SharedArrayBuffer for control words and one for data.
 * Control (Int32): [0] abort (0, or failed rank + 1), [1] barrier arrivals, [2] barrier
 * generation, [3] departed workers, [4] closed workers, [5] the first rank a timed-out collective
 * waited for, plus one, [8 ..] per-rank scratch (two words per
 * rank: the agreement's op and count), then one word per rank: 1 once that rank's worker exited,
 * then one word per rank: the barrier generation it last arrived at, plus one (who is missing).
 * Data: `size` slots of slotBytes, then a result region of slotBytes. Messages larger than a
 * slot move in chunks.
 */
import type { MessagePort } from 'node:worker_threads';

export const CTRL = { ABORT: 0, ARRIVED: 1, GENERATION: 2, DEPARTED: 3, CLOSED: 4, MISSING: 5, COUNTS: 8 } as const;

export interface LocalJob {
  marker: 'gradcomp.local';
  rank: number;
  size: number;
  ctrl: SharedArrayBuffer;
  data: SharedArrayBuffer;
  slotBytes: number;
  timeoutMs: number;
  /** ports[src] delivers messages from src to this rank (undefined for itself). */
  ports: (MessagePort | undefined)[];
  /** outPorts[dest] sends to dest. */
  outPorts: (MessagePort | undefined)[];
}

export function newShared(size: number, slotBytes: number): { ctrl: SharedArrayBuffer; data: SharedArrayBuffer } {
  return {
    ctrl: new SharedArrayBuffer(4 * (CTRL.COUNTS + 4 * size)),
    data: new SharedArrayBuffer(slotBytes * (size + 1)),
  };
}
