/**
 * Checkpoint files: written atomically (a temporary file in the same folder, fsync, rename, fsync
 * of the folder), so a process killed at any moment leaves either the previous good file or the
 * new complete one, never a torn one; read back with every byte checked (format.ts).
 *
 * @example
 * await saveCheckpoint(opt, `ckpt/rank${comm.rank}.gckp`);      // the whole distributed optimizer
 * const resumed = createDistributedOptimizer({ ... });
 * await loadCheckpoint(resumed, `ckpt/rank${comm.rank}.gckp`);
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { GradcompError, typeError } from '../native/errors';
import { CheckpointError, decodeCheckpoint, encodeCheckpoint } from './format';

/** Writes `state` to `file` atomically. */
export function writeCheckpointFile(file: string, state: unknown): void {
  if (typeof file !== 'string' || file.length === 0) throw typeError('file', 'a file path', file);
  const pieces = encodeCheckpoint(state);
  const dir = path.dirname(path.resolve(file));
  const tmp = path.join(dir, `.${path.basename(file)}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`);
  let fd: number | undefined;
  try {
    fd = fs.openSync(tmp, 'w', 0o644);
    for (const p of pieces) {
      for (let off = 0; off < p.byteLength;) off += fs.writeSync(fd, p, off, Math.min(p.byteLength - off, 1 << 30));
    }
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(tmp, file);
    try {
      const dfd = fs.openSync(dir, 'r');
      try { fs.fsyncSync(dfd); } finally { fs.closeSync(dfd); }
    } catch { /* a folder that cannot be fsynced (some filesystems): the rename is still atomic */ }
  } catch (e) {
    // Clean-up must not replace the error that matters (rmSync throws ENOTDIR where a parent is a file).
    try { if (fd !== undefined) fs.closeSync(fd); } catch { /* already closed */ }
    try { fs.rmSync(tmp, { force: true }); } catch { /* nothing was made */ }
    if (e instanceof GradcompError) throw e;
    throw new GradcompError('ERR_GRADCOMP_INVALID_ARG', `could not write the checkpoint ${file}: ${(e as Error).message}`, 'file');
  }
}

/**
 * The bytes of a regular file. Anything else (a folder, a device such as /dev/zero, a FIFO) is
 * refused before it is opened, so a read never blocks on a pipe nor grows without bound; `fail`
 * makes the caller's coded error from the reason.
 */
export function readRegularFile(file: string, fail: (why: string) => Error): Buffer {
  const why = (e: unknown) => (e as NodeJS.ErrnoException).code ?? (e as Error).message;
  let st: fs.Stats;
  try { st = fs.statSync(file); } catch (e) { throw fail(why(e)); }
  if (st.isDirectory()) throw fail('EISDIR: it is a folder');
  if (!st.isFile()) throw fail('not a regular file (a device, FIFO or socket)');
  try { return fs.readFileSync(file); } catch (e) { throw fail(why(e)); }
}

/** Reads and checks a checkpoint file; a missing, truncated or corrupted file is a coded error naming it (and the tensor). */
export function readCheckpointFile(file: string): unknown {
  if (typeof file !== 'string' || file.length === 0) throw typeError('file', 'a file path', file);
  const bytes = readRegularFile(file, (why) => new CheckpointError(`${file}: cannot be read (${why})`, file));
  return decodeCheckpoint(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), file);
}

/** Anything with a state() (and load()): a distributed optimizer, an optimizer, a compressor. */
export interface Stateful<S> { state(): S; load(state: S): void; drain?(): Promise<void> }

/** Saves `target.state()` (after drain(), where communication can be in flight) to `file`, atomically. */
export async function saveCheckpoint<S>(target: Stateful<S>, file: string): Promise<void> {
  if (target === null || typeof target !== 'object' || typeof target.state !== 'function') throw typeError('target', 'an object with state()', target);
  if (typeof target.drain === 'function') await target.drain();
  writeCheckpointFile(file, target.state());
}

/** Loads a checkpoint file into `target` (its load() checks that the state fits). */
export async function loadCheckpoint<S>(target: Stateful<S>, file: string): Promise<void> {
  if (target === null || typeof target !== 'object' || typeof target.load !== 'function') throw typeError('target', 'an object with load()', target);
  target.load(readCheckpointFile(file) as S);
}
