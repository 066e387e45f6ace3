/**
 * TernGrad (Wen et al., NeurIPS'17): stochastic ternary levels {-s, 0, s} with s = max|g| over a
 * bucket (the paper: one scaler per layer, the default here; bucketSize gives finer scalers).
 * Each element becomes s * sign(g) with probability |g| / s and 0 otherwise, so the estimate is
 * unbiased: E[t] = g. That is QSGD with one level and max norms, so it runs on the QSGD kernels
 * (2-bit codes, Philox rounding keyed by (seed + rank, step, tensor)). Tuning guide: the paper
 * trains with gradient clipping and a smaller lr for large models; with error feedback on, what
 * the rounding dropped is sent later.
 */
import { CompressorDescriptor, ENVELOPE, field, numel } from './descriptor';
import { QuantCompressor } from './qsgd';
import { qsgdPayloadBytes } from '../ops/qsgd';

export interface TernGradSpec { type: 'terngrad'; bucketSize?: number; seed?: number; errorFeedback?: boolean }

const KIND = 9;

export const descriptor: CompressorDescriptor<TernGradSpec> = {
  type: 'terngrad', wireKind: KIND, computeNsPerElement: 4,
  fields: { bucketSize: field.int((v) => v >= 1 && v <= 0xffffffff, 'an integer >= 1'), seed: field.seed(), errorFeedback: field.errorFeedback() },
  capabilities: { summable: false, errorFeedback: 'optional', bareOperator: true, needsShape: false, collectives: ['allgather'] },
  expectedBytes: (spec, shape) => ENVELOPE + qsgdPayloadBytes(numel(shape), { levels: 1, bucketSize: spec.bucketSize ?? Math.max(1, numel(shape)) }),
  create: (spec) => new QuantCompressor('terngrad', KIND, 1, spec.bucketSize ?? 'tensor', 'max', spec.seed ?? 0, spec.errorFeedback ?? false),
};
