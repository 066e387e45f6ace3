/**
 * The synchronization of a local job (internal to the local backend): one FIFO of operations per
 * rank, barriers on the shared control words (Atomics.waitAsync, so the event loop keeps
 * running), the agreement step every collective starts with, and the job-wide abort. A peer that
 * fails, exits early or times out aborts the job: every rank's pending call rejects with
 * ERR_GRADCOMP_PEER_FAILED (naming the rank) instead of hanging.
 */
import { GradcompError } from '../native/errors';
import { CTRL, LocalJob } from './shared';

// Atomics.waitAsync is in Node >= 16 (V8); the ES2022 lib typings predate it.
type WaitAsync = (a: Int32Array, i: number, v: number, t?: number) => { async: boolean; value: Promise<string> | string };
const waitAsync = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync;

export class JobSync {
  readonly rank: number;
  readonly size: number;
  readonly ctrl: Int32Array;
  readonly data: SharedArrayBuffer;
  readonly slot: number;
  readonly timeout: number;
  #queue: Promise<unknown> = Promise.resolve();
  closed = false;

  constructor(job: LocalJob) {
    this.rank = job.rank;
    this.size = job.size;
    this.ctrl = new Int32Array(job.ctrl);
    this.data = job.data;
    this.slot = job.slotBytes;
    this.timeout = job.timeoutMs;
  }

  /** Set while a helper thread acts as this rank (see LocalCommunicator.lend): this side must not issue collectives. */
  lentTo: string | undefined;
  /** Operations queued and not yet settled. */
  pending = 0;

  /** Calls from one rank run one at a time, in issue order (collectives must match across ranks). */
  enqueue<T>(fn: () => Promise<T>): Promise<T> {
    if (this.lentTo !== undefined) {
      return Promise.reject(new GradcompError('ERR_GRADCOMP_COMM_LENT', `the communicator is lent to ${this.lentTo}, which runs this rank's collectives now; dispose it first`, 'comm'));
    }
    if (this.closed) return Promise.reject(new GradcompError('ERR_GRADCOMP_INVALID_ARG', 'the communicator is closed', 'comm'));
    this.pending++;
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => undefined).finally(() => { this.pending--; });
    return run;
  }

  /** Everything queued so far has settled. */
  idle(): Promise<unknown> {
    return this.#queue;
  }

  checkAbort(): void {
    const a = Atomics.load(this.ctrl, CTRL.ABORT);
    if (a !== 0) {
      throw new GradcompError('ERR_GRADCOMP_PEER_FAILED', a - 1 === this.rank
        ? `rank ${this.rank}: this rank failed and the job is aborting`
        : `rank ${this.rank}: rank ${a - 1} failed, so the job is aborting`);
    }
  }

  /** Marks the job failed (first failure wins) and wakes every waiter. */
  abort(err: GradcompError): never {
    Atomics.compareExchange(this.ctrl, CTRL.ABORT, 0, this.rank + 1);
    Atomics.notify(this.ctrl, CTRL.GENERATION);
    throw err;
  }

  /** Ranks that have left the job (their worker exited). */
  departed(): number[] {
    const out: number[] = [];
    for (let r = 0; r < this.size; r++) if (Atomics.load(this.ctrl, CTRL.COUNTS + 2 * this.size + r) !== 0) out.push(r);
    return out;
  }

  async barrier(): Promise<void> {
    const c = this.ctrl;
    this.checkAbort();
    const gen = Atomics.load(c, CTRL.GENERATION);
    Atomics.store(c, CTRL.COUNTS + 3 * this.size + this.rank, gen + 1);
    if (Atomics.add(c, CTRL.ARRIVED, 1) === this.size - 1) {
      Atomics.store(c, CTRL.ARRIVED, 0);
      Atomics.add(c, CTRL.GENERATION, 1);
      Atomics.notify(c, CTRL.GENERATION);
      return;
    }
    const deadline = Date.now() + this.timeout;
    while (Atomics.load(c, CTRL.GENERATION) === gen) {
      this.checkAbort();
      const gone = this.departed();
      if (gone.length > 0 && Atomics.load(c, CTRL.GENERATION) === gen) {
        this.abort(new GradcompError('ERR_GRADCOMP_PEER_FAILED', `rank ${this.rank}: rank ${gone.join(', ')} left the job while the others wait in a collective`));
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        const missing: number[] = [];
        for (let r = 0; r < this.size; r++) if (Atomics.load(c, CTRL.COUNTS + 3 * this.size + r) !== gen + 1) missing.push(r);
        if (missing.length) Atomics.compareExchange(c, CTRL.MISSING, 0, missing[0] + 1);
        const who = missing.length && Atomics.load(c, CTRL.GENERATION) === gen
          ? `rank ${missing.join(', ')} did not reach the collective the others wait in (stuck, or in another code path)`
          : 'a rank is missing from a collective, or collectives were issued in different orders';
        this.abort(new GradcompError('ERR_GRADCOMP_COMM_TIMEOUT', `rank ${this.rank}: no progress for ${this.timeout} ms: ${who}`));
      }
      const r = waitAsync(c, CTRL.GENERATION, gen, Math.min(left, 250));
      if (r.async) {
        // A pending waitAsync does not keep a Node event loop alive, and neither does the timer
        // V8 arms for its timeout (unreferenced, and armed only when this thread's loop next
        // turns): a rank whose only pending work is the wait would exit in the middle of the
        // collective. This timer holds the loop until the wait settles, however late its own
        // timeout fires (a rank that computes while a collective is in flight delays it).
        const keepAlive = setInterval(() => undefined, 1 << 30);
        try { await r.value; } finally { clearInterval(keepAlive); }
      }
    }
    // The generation moved: the barrier completed for everyone. An abort raised after that is
    // seen by this rank's next operation, not by this one, which did succeed.
  }

  /** Every rank posts (op, a); all must agree on op, and on `a` when `sameA`. Returns every rank's `a`. */
  async agree(op: number, a: number, sameA: boolean): Promise<number[]> {
    const c = this.ctrl, base = CTRL.COUNTS;
    Atomics.store(c, base + 2 * this.rank, op);
    Atomics.store(c, base + 2 * this.rank + 1, a);
    await this.barrier();
    const vals: number[] = [];
    for (let r = 0; r < this.size; r++) {
      const o = Atomics.load(c, base + 2 * r), v = Atomics.load(c, base + 2 * r + 1);
      if (o !== op) this.abort(new GradcompError('ERR_GRADCOMP_COLLECTIVE_MISMATCH', `rank ${this.rank}: rank ${r} issued a different collective or element type`));
      if (sameA && v !== a) this.abort(new GradcompError('ERR_GRADCOMP_COLLECTIVE_MISMATCH', `rank ${this.rank}: rank ${r} passed ${v} elements where this rank passed ${a}`));
      vals.push(v);
    }
    await this.barrier(); // everyone has read the posted values before they are reused
    return vals;
  }

  /** Rank r's slot (r = size: the result region), `len` bytes from `offset`. */
  slotBytes(r: number, offset = 0, len = this.slot - offset): Uint8Array {
    return new Uint8Array(this.data, r * this.slot + offset, len);
  }
}
