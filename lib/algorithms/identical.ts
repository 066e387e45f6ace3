/**
 * The first-step check that every rank starts from the same parameters: ranks that initialize
 * their models independently (different seeds, a missing broadcast) train silently apart
 * otherwise. One checksum per tensor (a CRC32C tree, native), one small allgather, and a coded
 * error naming the first tensor whose bits differ between ranks.
 */
import { GradcompError } from '../native/errors';
import { checksum } from '../ops/kernels';
import type { Exchange } from './exchange';

export async function checkIdentical(ex: Exchange, tensors: readonly (readonly [string, Float32Array])[]): Promise<void> {
  if (ex.size === 1) return;
  // How many tensors first: ranks that train different models would otherwise meet as a mismatched collective.
  const counts = await ex.allgatherFixed(Uint32Array.of(tensors.length));
  const other = counts.findIndex((c) => c !== counts[0]);
  if (other >= 0) {
    throw new GradcompError('ERR_GRADCOMP_PARAMS_MISMATCH', `rank ${ex.rank}: rank 0 trains ${counts[0]} tensors but rank ${other} ${counts[other]} at the first step: ` +
      'every rank must train the same model; pass checkIdentical: false to skip this check', 'params');
  }
  const mine = Uint32Array.from(tensors, ([, t]) => checksum(t));
  const all = await ex.allgatherFixed(mine);
  const n = tensors.length;
  for (let i = 0; i < n; i++) {
    for (let r = 1; r < ex.size; r++) {
      if (all[r * n + i] !== all[i]) {
        throw new GradcompError('ERR_GRADCOMP_PARAMS_MISMATCH',
          `rank ${ex.rank}: parameter ${tensors[i][0]} differs between rank 0 and rank ${r} at the first step: every rank must start from the same model ` +
          '(initialize with the same seed, or broadcast rank 0\'s parameters first); pass checkIdentical: false to skip this check', `params.${tensors[i][0]}`);
      }
    }
  }
}
