/**
 * The CPU backend: each op of the table (ops.ts) bound to the CPU addon. Arguments arrive
 * validated; `async` selects the addon's Promise-returning form (the kernel runs on the libuv pool
 * with its inputs pinned) over the synchronous one.
 */
import { loadBinding } from '../native/loader';
import type { NativeBinding } from '../native/binding';
import { cpu } from './op';
import * as op from './ops';

let b: NativeBinding | undefined;
const nb = (): NativeBinding => (b ??= loadBinding());

cpu.register(op.efTopK, (a, async) => nb().topk(a.grad, a.residual, a.k, a.scale, a.indices, a.values, async));
cpu.register(op.topK, (a, async) => nb().topk(null, a.x, a.k, 1, a.indices, a.values, async));
cpu.register(op.dropitPack, (a, async) => nb().dropitPack(a.x, a.k, a.payload, async));
cpu.register(op.dropitUnpack, (a, async) => nb().dropitUnpack(a.packed, a.out, async));
cpu.register(op.qsgdEncode, (a, async) =>
  nb().qsgdEncode(a.x, a.levels, a.bucket, a.norm, a.seed[0], a.seed[1], a.step, a.tensorId, a.payload, async));
cpu.register(op.qsgdDecode, (a, async) => nb().qsgdDecode(a.payload, a.out, a.accumulate, async));
cpu.register(op.qsgdDecodeSum, (a, async) => nb().qsgdDecodeSum(a.data, a.spans, a.out, a.scale, async));
cpu.register(op.powerSgdStep, (a, async) => nb().powersgdStep(a.m, a.q, a.p, a.batch, a.rows, a.cols, a.rank, async));
cpu.register(op.powerSgdPhase, (a, async) =>
  nb().powersgdPhase(a.m, a.q, a.p, a.batch, a.rows, a.cols, a.rank, a.phase as 1 | 2, async));
cpu.register(op.powerSgdMqAdd, (a, async) => nb().powersgdMqAdd(a.m, a.q, a.p, a.batch, a.rows, a.cols, a.rank, a.g, async));
cpu.register(op.powerSgdReconstruct, (a, async) =>
  nb().powersgdReconstruct(a.p, a.q, a.rows, a.cols, a.rank, a.out, a.inPlace ? a.residual : a.m, a.residual, async));
cpu.register(op.powerSgdReconstructSgd, (a, async) => nb().powersgdReconstructSgd(a.p, a.q, a.rows, a.cols, a.rank, a.residual, a.w, a.buf,
  a.lr, a.momentum, a.dampening, a.weightDecay, a.gradScale, a.nesterov, a.first, async));
cpu.register(op.orthonormalize, (a, async) => nb().orthonormalize(a.p, a.batch, a.rows, a.rank, async));
cpu.register(op.halfPack, (a) => nb().halfPack(a.x, a.out, a.kind as 0 | 1 | 2));
cpu.register(op.halfUnpackAdd, (a) => nb().halfUnpackAdd(a.h, a.out, a.kind as 0 | 1));
cpu.register(op.efsignEncode, (a, async) => nb().efsignEncode(a.grad, a.residual, a.bits, async));
cpu.register(op.signDecodeAll, (a, async) => nb().signDecodeAll(a.data, a.offsets, a.scales, a.out, a.mode as 0 | 1, a.divisor, async));
cpu.register(op.signPack, (a) => nb().signPack(a.x, a.bits));
cpu.register(op.signUnpackAdd, (a) => nb().signUnpackAdd(a.bits, a.out, a.scale));
cpu.register(op.efsignEncodeBlocks, (a) => nb().efsignEncodeBlocks(a.grad, a.residual, a.block, a.bits, a.scales));
cpu.register(op.signUnpackAddBlocks, (a) => nb().signUnpackAddBlocks(a.bits, a.block, a.scales, a.out));
cpu.register(op.adacompSelect, (a) => nb().adacompSelect(a.dW, a.R, a.bin, a.sel));
cpu.register(op.adacompEmit, (a) => nb().adacompEmit(a.R, a.sel, a.m, a.scale, a.idx, a.signs));
cpu.register(op.adacompDecodeAdd, (a) => nb().adacompDecodeAdd(a.idx, a.signs, a.scale, a.out));
cpu.register(op.philoxFill, (a) => nb().philoxFill(a.out, a.seed[0], a.seed[1], a.step, a.stream, a.kind as 0 | 1));
cpu.register(op.reduceInto, (a) => nb().reduceInto(a.dst, a.src, a.op as 0 | 1));
cpu.register(op.gemm, (a) => nb().gemm(!!a.ta, !!a.tb, a.m, a.n, a.k, a.alpha, a.a, a.ta ? a.m : a.k, a.b, a.tb ? a.k : a.n, a.beta, a.c, a.n));
cpu.register(op.reduceMany, (a) => nb().reduceMany(a.dst, a.data, a.offsets, a.op as 0 | 1));
cpu.register(op.vecAdd, (a) => nb().vecAdd(a.out, a.a, a.b));
cpu.register(op.vecScale, (a) => nb().vecScale(a.x, a.s));
cpu.register(op.vecAxpy, (a) => nb().vecAxpy(a.y, a.x, a.s));
cpu.register(op.vecAxpby, (a) => nb().vecAxpby(a.y, a.x, a.s, a.b));
cpu.register(op.vecMulAdd, (a) => nb().vecMulAdd(a.s, a.x, a.y, a.eta));
cpu.register(op.rowsSumSq, (a) => nb().rowsSumSq(a.x, a.cols, a.out));
// The two products go to scratch kept between calls (a scoring loop runs this per checkpoint and
// per block: fresh n x m arrays each time cost as much as the products' memory traffic).
let tracinScratch = new Float32Array(0);
cpu.register(op.tracinScore, (a) => {
  // Two gemm products (the float32 dot products in k order) and the float64 multiply-add.
  const nm = a.n * a.m;
  if (tracinScratch.length < 2 * nm) tracinScratch = new Float32Array(2 * nm);
  const aa = tracinScratch.subarray(0, nm), dd = tracinScratch.subarray(nm, 2 * nm);
  nb().gemm(false, true, a.n, a.m, a.p, 1, a.a, a.p, a.b, a.p, 0, aa, a.m);
  nb().gemm(false, true, a.n, a.m, a.c, 1, a.d, a.c, a.e, a.c, 0, dd, a.m);
  nb().vecMulAdd(a.s, aa, dd, a.eta);
  if (tracinScratch.length > 1 << 25) tracinScratch = new Float32Array(0); // do not hold more than 128 MiB
});
cpu.register(op.normSum, (a) => nb().normSum(a.x, a.kind as 0 | 1));
cpu.register(op.scatterAdd, (a) => nb().scatterAdd(a.out, a.idx, a.vals, a.scale));
cpu.register(op.randkSupport, (a) => nb().randkSupport(a.n, a.seed[0], a.seed[1], a.step, a.stream, a.out));
cpu.register(op.copyBytes, (a) => nb().baselineMemcpy(a.dst, a.src));
cpu.register(op.checksum, (a) => nb().checksum(a.bytes));
cpu.register(op.dgcAccumulate, (a) => nb().dgcAccumulate(a.g, a.u, a.v, a.momentum, a.nesterov, a.clip));
cpu.register(op.sgdStep, (a, async) =>
  nb().sgdStep(a.w, a.g, a.buf, a.lr, a.momentum, a.dampening, a.weightDecay, a.gradScale, a.nesterov, a.first, async));
cpu.register(op.sgdSparseStep, (a, async) => nb().sgdSparseStep(a.w, a.buf, a.indices, a.values, a.counts, a.lr, a.momentum, a.dampening, a.weightDecay,
  a.gradScale, a.nesterov, a.first, async));
cpu.register(op.qsgdDecodeSgd, (a, async) => nb().qsgdDecodeSgd(a.data, a.spans, a.w, a.buf, a.lr, a.momentum, a.dampening, a.weightDecay,
  a.gradScale, a.nesterov, a.first, async));
cpu.register(op.novogradStep, (a, async) =>
  nb().novogradStep(a.w, a.g, a.m, a.lr, a.beta1, a.beta2, a.eps, a.weightDecay, a.gradScale, a.gradAveraging, a.v, async));

// The scratch the kernels report (the CPU arena leases it per call; nothing allocates per call).
cpu.registerScratch(op.efTopK, (a) => nb().scratchBytes('topk', a.residual.length, a.k));
cpu.registerScratch(op.topK, (a) => nb().scratchBytes('topk', a.x.length, a.k));
cpu.registerScratch(op.dropitPack, (a) => nb().scratchBytes('dropit', a.x.length, a.k));
cpu.registerScratch(op.powerSgdStep, (a) => nb().scratchBytes('powersgd', a.batch, a.rows, a.cols, a.rank));
cpu.registerScratch(op.powerSgdMqAdd, (a) => nb().scratchBytes('powersgd', a.batch, a.rows, a.cols, a.rank));
cpu.registerScratch(op.powerSgdPhase, (a) => nb().scratchBytes('powersgd', a.batch, a.rows, a.cols, a.rank));

/** Payload sizes from the C ABI's formulas (gradcomp.h), so TypeScript and C never disagree. */
export const qsgdPayloadBytes = (n: number, levels: number, bucket: number): number => nb().qsgdPayloadBytes(n, levels, bucket);
export const dropitPackedBytes = (n: number, k: number): [number, number] => nb().dropitPackedBytes(n, k);
/** Introspection for tests and the benchmark. */
export const cpuIntrospection = {
  lastTopkPath: (): number => nb().lastTopkPath(),
  lastDropitPath: (): number => nb().lastDropitPath(),
  setMaxIsa: (isa: 'avx512' | 'avx2' | 'scalar'): void => nb().setMaxIsa(isa),
  baselineNthElementEfTopK: (g: Float32Array, r: Float32Array, k: number, i: Uint32Array, v: Float32Array): void =>
    nb().baselineNthElementEfTopK(g, r, k, i, v),
  baselineMemcpy: (dst: Uint8Array, src: Uint8Array): void => nb().baselineMemcpy(dst, src),
};
