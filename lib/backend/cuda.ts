/**
 * The CUDA backend: the ops of the table that have GPU kernels (cuda/kernels), on device
 * buffers. Every call goes through the FIFO queue of device.ts, so ops run in issue order. Same
 * results as the CPU, bit for bit where the CPU op is exact (top-k, QSGD payloads, DropIT).
 */
import { GradcompRangeError } from '../native/errors';
import { call } from './device';
import { cuda } from './op';
import * as op from './ops';
import { cudaBackend } from './runtime';

cuda.register(op.efTopK, (a) => call('efTopK', (b) => b.topk(a.grad.handle, a.residual.handle, a.residual.length, a.k, a.scale,
  a.indices.handle, a.values.handle)));
cuda.register(op.topK, (a) => call('topK', (b) => b.topk(null, a.x.handle, a.x.length, a.k, 1, a.indices.handle, a.values.handle)));
cuda.register(op.qsgdEncode, (a) => call('qsgdEncode', (b) => b.qsgdEncode(a.x.handle, a.x.length, a.levels, a.bucket, a.norm,
  a.seed[0], a.seed[1], a.step, a.tensorId, a.payload.handle, a.bytes)));
cuda.register(op.qsgdDecode, async (a) => {
  if (a.accumulate) throw new GradcompRangeError('accumulate', 'accumulate is not supported on the CUDA backend');
  return call('qsgdDecode', (b) => b.qsgdDecode(a.payload.handle, a.payload.length, a.out.handle, a.n));
});
const rankLimit = (rank: number, param: string) => {
  const max = cudaBackend('PowerSGD').maxRank;
  if (rank > max) throw new GradcompRangeError(param, `Expected ${param} <= ${max} on the CUDA backend but received ${rank}`);
};
cuda.register(op.powerSgdStep, async (a) => {
  rankLimit(a.rank, 'rank');
  return call('powerSgdStep', (b) => b.powersgdStep(a.m.handle, a.q.handle, a.p.handle, a.batch, a.rows, a.cols, a.rank));
});
cuda.register(op.orthonormalize, async (a) => {
  rankLimit(a.rank, 'shape.rank');
  return call('orthonormalize', (b) => b.orthonormalize(a.p.handle, a.batch, a.rows, a.rank));
});
cuda.register(op.dropitPack, (a) => call('dropitPack', (b) => b.dropitPack(a.x.handle, a.x.length, a.k, a.payload.handle, a.bytes)));
cuda.register(op.dropitUnpack, (a) => call('dropitUnpack', (b) => b.dropitUnpack(a.packed.handle, a.packed.length, a.out.handle, a.n)));
cuda.register(op.tracinScore, (a) => call('tracinScore', (b) => b.tracinScore(a.a.handle, a.b.handle, a.d.handle, a.e.handle, a.n, a.m, a.p, a.c, a.eta, a.s.handle)));
cuda.register(op.rowsSumSq, (a) => call('rowsSumSq', (b) => b.rowsSumSq(a.x.handle, a.out.length, a.cols, a.out.handle)));
