/** What every GPU test needs: why it must skip here, if it must. */
import { backendInfo } from '../../lib';

/** '' when the CUDA backend is usable, else the reason to skip (the backend's own words). */
export function cudaSkipReason(): string {
  try {
    const i = backendInfo();
    return i.backend === 'cuda' ? '' : i.reasons[1];
  } catch (e) {
    return (e as Error).message;
  }
}
