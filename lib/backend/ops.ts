/**
 * The op table: every kernel op declared once (arguments, outputs, checks). The CPU and CUDA
 * implementations live in cpu.ts and cuda.ts; the typed public functions in lib/ops.
 * Parameter names are the user-facing ones, so errors name what the caller passed.
 */
import { GradcompRangeError, rangeError } from '../native/errors';
import { any, bool, buf, defineOp, int, len, num, optBuf, out } from './op';

const U32 = 0xffffffff;
const finite = (v: number) => Number.isFinite(v);
const rate = (param: string, def?: number) => num((v) => v >= 0 && Number.isFinite(v), 'a finite number >= 0', def, param);
/** SGD's hyperparameters (sgdStep and the fused PowerSGD update take the same). */
const sgdSchema = () => ({ lr: rate('lr'), momentum: rate('momentum', 0), dampening: rate('dampening', 0), weightDecay: rate('weightDecay', 0),
  gradScale: num(finite, 'a finite number', 1), nesterov: bool(false), first: bool(false) });
const sameLength = (pa: string, a: unknown, pb: string, b: unknown) => {
  if (b !== null && len(a) !== len(b)) {
    throw new GradcompRangeError(pa, `Expected ${pa} to have the length of ${pb} (${len(b)}) but received length ${len(a)}`);
  }
};

/** A momentum buffer of w's length when momentum > 0. */
const momentumBuf = (a: Record<string, unknown>) => {
  if ((a.momentum as number) > 0) {
    if (a.buf === null) throw rangeError('buf', 'a momentum buffer when momentum > 0', null);
    sameLength('buf', a.buf, 'w', a.w);
  }
};

// ---- selection ------------------------------------------------------------------------------

/** acc = scale * grad + residual; the k largest |acc| out (ascending index); residual = acc minus them. */
export const efTopK = defineOp('efTopK', {
  grad: buf('float32', 'r'), residual: buf('float32', 'rw'),
  k: int(0, (a) => len(a.residual)), scale: num(finite, 'a finite number', 1, 'options.scale'),
  indices: out('uint32', (a) => a.k as number, 'options.out.indices'), values: out('float32', (a) => a.k as number, 'options.out.values'),
}, { check: (a) => sameLength('residual', a.residual, 'grad', a.grad) });

/** The k largest |x| (x untouched). */
export const topK = defineOp('topK', {
  x: buf('float32', 'r'), k: int(0, (a) => len(a.x)),
  indices: out('uint32', (a) => a.k as number, 'options.out.indices'), values: out('float32', (a) => a.k as number, 'options.out.values'),
});

/** DropIT: the k largest |x| packed (layout and bytes from gradcomp.h); bytes = the payload size. */
export const dropitPack = defineOp('dropitPack', {
  x: buf('float32', 'r'), k: int(0, (a) => len(a.x)), bytes: int(0, Number.MAX_SAFE_INTEGER),
  payload: out('uint8', (a) => a.bytes as number, 'options.out'),
});

/** Validates a DropIT payload and writes the dense activation (n from the header, checked natively). */
export const dropitUnpack = defineOp('dropitUnpack', {
  packed: buf('uint8', 'r'), n: int(0, U32), out: out('float32', (a) => a.n as number, 'out'),
});

// ---- QSGD -----------------------------------------------------------------------------------

export const qsgdEncode = defineOp('qsgdEncode', {
  x: buf('float32', 'r'), levels: int(1, 32767, undefined, 'options.levels'), bucket: int(1, U32, 512, 'options.bucketSize'),
  norm: int(0, 1), seed: any<[number, number]>(), step: int(0, U32, 0, 'options.step'), tensorId: int(0, U32, 0, 'options.tensorId'),
  bytes: int(0, Number.MAX_SAFE_INTEGER), payload: out('uint8', (a) => a.bytes as number, 'options.out'),
});

/** accumulate: out += decoded (one rounding per element) instead of out = decoded. */
export const qsgdDecode = defineOp('qsgdDecode', {
  payload: buf('uint8', 'r'), n: int(0, U32), out: out('float32', (a) => a.n as number, 'out'), accumulate: bool(false),
});

/** out = scale * the sum of the QSGD payloads at data[spans[2j], + spans[2j + 1]), in order, tile by tile (out written once). */
export const qsgdDecodeSum = defineOp('qsgdDecodeSum', {
  data: buf('uint8', 'r'), spans: buf('float64', 'r'), n: int(0, U32), out: out('float32', (a) => a.n as number, 'out'),
  scale: num(finite, 'a finite number', 1, 'scale'),
});
/** sgdStep with g = the sum of QSGD payloads (spans as qsgdDecodeSum's), decoded a tile at a time inside it: the same bits; validated first. */
export const qsgdDecodeSgd = defineOp('qsgdDecodeSgd', {
  data: buf('uint8', 'r'), spans: buf('float64', 'r'), w: buf('float32', 'rw'), buf: optBuf('float32', 'rw'), ...sgdSchema(),
}, { check: momentumBuf });

// ---- PowerSGD -------------------------------------------------------------------------------

const powersgdSchema = {
  m: buf('float32', 'r'), q: buf('float32', 'rw'), rows: int(1, U32), cols: int(1, U32), rank: int(1, 1024), batch: int(0, U32, 1),
  p: out('float32', (a) => (a.batch as number) * (a.rows as number) * (a.rank as number), 'p'),
};
const powersgdCheck = (a: Record<string, unknown>) => {
  const b = a.batch as number, r = a.rows as number, c = a.cols as number, k = a.rank as number;
  if (len(a.m) !== b * r * c) throw rangeError('m', `length batch*rows*cols = ${b * r * c}`, `length ${len(a.m)}`);
  if (len(a.q) !== b * c * k) throw rangeError('q', `length batch*cols*rank = ${b * c * k}`, `length ${len(a.q)}`);
};
/** P = M Q, orthonormalize P, Q = Mᵀ P (q updated in place). */
export const powerSgdStep = defineOp('powerSgdStep', powersgdSchema, { check: powersgdCheck });
/** One half of a distributed step: phase 1 P = M Q; phase 2 Q = Mᵀ P (p read). */
export const powerSgdPhase = defineOp('powerSgdPhase', { ...powersgdSchema, p: buf('float32', 'rw'), phase: int(1, 2) }, {
  check: (a) => {
    powersgdCheck(a);
    const want = (a.batch as number) * (a.rows as number) * (a.rank as number);
    if (len(a.p) !== want) throw rangeError('p', `length batch*rows*rank = ${want}`, `length ${len(a.p)}`);
  },
});
/** PowerSGD's first half with error feedback fused in: m (the residual) becomes g + m, then p = m q. */
export const powerSgdMqAdd = defineOp('powerSgdMqAdd', { ...powersgdSchema, m: buf('float32', 'rw'), q: buf('float32', 'r'), g: buf('float32', 'r'), p: buf('float32', 'w') }, {
  check: (a) => {
    powersgdCheck(a);
    sameLength('g', a.g, 'm', a.m);
    const want = (a.batch as number) * (a.rows as number) * (a.rank as number);
    if (len(a.p) !== want) throw rangeError('p', `length batch*rows*rank = ${want}`, `length ${len(a.p)}`);
  },
});
/** out = P Qᵀ; with m and residual: residual = m - out, fused; with inPlace (m null): residual = residual - out. */
export const powerSgdReconstruct = defineOp('powerSgdReconstruct', {
  p: buf('float32', 'r'), q: buf('float32', 'r'), rows: int(0, U32), cols: int(0, U32), rank: int(1, 1024),
  out: out('float32', (a) => (a.rows as number) * (a.cols as number), 'out'), m: optBuf('float32', 'r'), residual: optBuf('float32', 'rw'),
  inPlace: bool(false),
}, {
  check: (a) => {
    const r = a.rows as number, c = a.cols as number, k = a.rank as number;
    if (len(a.p) !== r * k) throw rangeError('p', `length rows*rank = ${r * k}`, `length ${len(a.p)}`);
    if (len(a.q) !== c * k) throw rangeError('q', `length cols*rank = ${c * k}`, `length ${len(a.q)}`);
    if (a.inPlace ? a.m !== null || a.residual === null : (a.m === null) !== (a.residual === null)) {
      throw rangeError('residual', a.inPlace ? 'a residual and no m (inPlace: the residual holds M)' : 'm and residual given together', a.residual);
    }
    if (a.m !== null && len(a.m) !== r * c) throw rangeError('m', `length rows*cols = ${r * c}`, `length ${len(a.m)}`);
    if (a.residual !== null && len(a.residual) !== r * c) throw rangeError('residual', `length rows*cols = ${r * c}`, `length ${len(a.residual)}`);
  },
});
/**
 * PowerSGD's reconstruction fused with the SGD update that consumes it: g = P Qᵀ a row at a time,
 * residual = residual - g (when given), then the sgdStep update of w with g. The same bits as
 * powerSgdReconstruct followed by sgdStep; g is never written to memory.
 */
export const powerSgdReconstructSgd = defineOp('powerSgdReconstructSgd', {
  p: buf('float32', 'r'), q: buf('float32', 'r'), rows: int(0, U32), cols: int(0, U32), rank: int(1, 1024), residual: optBuf('float32', 'rw'),
  w: buf('float32', 'rw'), buf: optBuf('float32', 'rw'), ...sgdSchema(),
}, {
  check: (a) => {
    const r = a.rows as number, c = a.cols as number, k = a.rank as number;
    if (len(a.p) !== r * k) throw rangeError('p', `length rows*rank = ${r * k}`, `length ${len(a.p)}`);
    if (len(a.q) !== c * k) throw rangeError('q', `length cols*rank = ${c * k}`, `length ${len(a.q)}`);
    if (len(a.w) !== r * c) throw rangeError('w', `length rows*cols = ${r * c}`, `length ${len(a.w)}`);
    if (a.residual !== null && len(a.residual) !== r * c) throw rangeError('residual', `length rows*cols = ${r * c}`, `length ${len(a.residual)}`);
    momentumBuf(a);
  },
});
export const orthonormalize = defineOp('orthonormalize', {
  p: buf('float32', 'rw'), rows: int(0, U32, undefined, 'shape.rows'), rank: int(1, 1024, undefined, 'shape.rank'), batch: int(0, U32, 1, 'shape.batch'),
}, {
  check: (a) => {
    const want = (a.batch as number) * (a.rows as number) * (a.rank as number);
    if (len(a.p) !== want) throw rangeError('p', `length batch*rows*rank = ${want}`, `length ${len(a.p)}`);
  },
});

// ---- casts and signs ------------------------------------------------------------------------

/** kind 0 fp16, 1 bf16, 2 fp16 saturating at ±65504. */
export const halfPack = defineOp('halfPack', { x: buf('float32', 'r'), out: out('uint16', (a) => len(a.x)), kind: int(0, 2) });
export const halfUnpackAdd = defineOp('halfUnpackAdd', { h: buf('uint16', 'r'), out: buf('float32', 'rw'), kind: int(0, 1) },
  { check: (a) => sameLength('h', a.h, 'out', a.out) });
/** Resolves to the float32 scale sum |p| / n written into the payload by the caller. */
export const efsignEncode = defineOp('efsignEncode', { grad: optBuf('float32', 'r'), residual: buf('float32', 'rw'), bits: buf('uint8', 'w') }, {
  check: (a) => {
    sameLength('grad', a.grad ?? a.residual, 'residual', a.residual);
    if (len(a.bits) < Math.ceil(len(a.residual) / 8)) throw rangeError('bits', `at least ${Math.ceil(len(a.residual) / 8)} bytes`, `${len(a.bits)} bytes`);
  },
});
/** mode 0: out = sum_r scale_r * sign_r / divisor; mode 1: majority vote. offsets: where each rank's bits start in data. */
export const signDecodeAll = defineOp('signDecodeAll', {
  data: buf('uint8', 'r'), offsets: buf('uint32', 'r'), scales: optBuf('float32', 'r'), out: buf('float32', 'w'),
  mode: int(0, 1), divisor: num((v) => v > 0 && Number.isFinite(v), 'a finite number > 0', 1),
});
/** bits: bit i = x[i] < 0; resolves to sum |x| (float64, fixed order). */
export const signPack = defineOp('signPack', { x: buf('float32', 'r'), bits: buf('uint8', 'w') }, {
  check: (a) => { if (len(a.bits) < Math.ceil(len(a.x) / 8)) throw rangeError('bits', `at least ${Math.ceil(len(a.x) / 8)} bytes`, `${len(a.bits)} bytes`); },
});
const blockOk = (a: Record<string, unknown>, n: number) => {
  const b = a.block as number;
  if (b % 8 !== 0) throw rangeError('block', 'a multiple of 8', b);
  if (len(a.scales) < Math.ceil(n / b)) throw rangeError('scales', `at least ${Math.ceil(n / b)} entries`, `${len(a.scales)}`);
  if (len(a.bits) < Math.ceil(n / 8)) throw rangeError('bits', `at least ${Math.ceil(n / 8)} bytes`, `${len(a.bits)} bytes`);
};
/** Blockwise scaled sign with error feedback: p = grad + e per block, its sign bits, one scale per block, e = p - scale sign(p). */
export const efsignEncodeBlocks = defineOp('efsignEncodeBlocks', {
  grad: optBuf('float32', 'r'), residual: buf('float32', 'rw'), block: int(8, U32), bits: buf('uint8', 'w'), scales: buf('float32', 'w'),
}, { check: (a) => { if (a.grad) sameLength('grad', a.grad, 'residual', a.residual); blockOk(a, len(a.residual)); } });
/** out += scale_b * sign for every block b. */
export const signUnpackAddBlocks = defineOp('signUnpackAddBlocks', { bits: buf('uint8', 'r'), block: int(8, U32), scales: buf('float32', 'r'), out: buf('float32', 'rw') },
  { check: (a) => blockOk(a, len(a.out)) });
/** AdaComp's selection: R += dW; sel gets the bin-local selection; resolves to [count, sum |G| over it]. */
export const adacompSelect = defineOp('adacompSelect', { dW: buf('float32', 'r'), R: buf('float32', 'rw'), bin: int(1, U32), sel: buf('uint32', 'w') }, {
  check: (a) => {
    sameLength('dW', a.dW, 'R', a.R);
    if (len(a.sel) < len(a.R)) throw rangeError('sel', `at least ${len(a.R)} entries`, `${len(a.sel)}`);
  },
});
/** AdaComp's payload: idx = sel[0:m], sign bits of R there; the sent part leaves R. */
export const adacompEmit = defineOp('adacompEmit', {
  R: buf('float32', 'rw'), sel: buf('uint32', 'r'), m: int(0, U32), scale: num(finite, 'a finite number'), idx: buf('uint32', 'w'), signs: buf('uint8', 'w'),
}, {
  check: (a) => {
    if (a.m > len(a.sel) || a.m > len(a.idx)) throw rangeError('m', `at most the length of sel and idx`, a.m);
    if (len(a.signs) < Math.ceil(a.m / 8)) throw rangeError('signs', `at least ${Math.ceil(a.m / 8)} bytes`, `${len(a.signs)} bytes`);
  },
});
/** out[idx[t]] += sign_t ? -scale : scale; idx strictly ascending and in range, else a corrupt payload. */
export const adacompDecodeAdd = defineOp('adacompDecodeAdd', { idx: buf('uint32', 'r'), signs: buf('uint8', 'r'), scale: num(finite, 'a finite number'), out: buf('float32', 'rw') }, {
  check: (a) => { if (len(a.signs) < Math.ceil(len(a.idx) / 8)) throw rangeError('signs', `at least ${Math.ceil(len(a.idx) / 8)} bytes`, `${len(a.signs)} bytes`); },
});
export const signUnpackAdd = defineOp('signUnpackAdd', { bits: buf('uint8', 'r'), out: buf('float32', 'rw'), scale: num(finite, 'a finite number') });

// ---- vectors ----------------------------------------------------------------------------------

/** kind 0 uniform [0, 1), 1 standard normal; the same stream mapping as QSGD. */
export const philoxFill = defineOp('philoxFill', { out: buf('float32', 'w'), seed: any<[number, number]>(), step: int(0, U32), stream: int(0, U32), kind: int(0, 1) });
export const reduceInto = defineOp('reduceInto', { dst: any<Float32Array | Float64Array>(), src: any<Float32Array | Float64Array>(), op: int(0, 1) });
/** c = alpha op(a) op(b) + beta c for row-major matrices (a: m x k, or k x m when ta; b: k x n, or n x k when tb; c: m x n). */
export const gemm = defineOp('gemm', {
  ta: any<boolean>(), tb: any<boolean>(), m: int(0, U32), n: int(0, U32), k: int(0, U32), alpha: num(finite, 'a finite number', 1),
  a: buf('float32', 'r'), b: buf('float32', 'r'), beta: num(finite, 'a finite number', 0), c: buf('float32', 'rw'),
}, {
  check: (x) => {
    const m = x.m as number, n = x.n as number, k = x.k as number;
    if (len(x.a) < m * k) throw rangeError('a', `at least m*k = ${m * k} elements`, `${len(x.a)}`);
    if (len(x.b) < k * n) throw rangeError('b', `at least k*n = ${k * n} elements`, `${len(x.b)}`);
    if (len(x.c) < m * n) throw rangeError('c', `at least m*n = ${m * n} elements`, `${len(x.c)}`);
  },
});
/** dst = ((data[o_0 ..] op data[o_1 ..]) op ...) over the element offsets, in one pass. */
export const reduceMany = defineOp('reduceMany', { dst: any<Float32Array | Float64Array>(), data: any<Float32Array | Float64Array>(), offsets: buf('uint32', 'r'), op: int(0, 1) });
export const vecAdd = defineOp('vecAdd', { out: buf('float32', 'w'), a: buf('float32', 'r'), b: buf('float32', 'r') }, {
  check: (a) => { sameLength('a', a.a, 'out', a.out); sameLength('b', a.b, 'out', a.out); }, elementwise: true,
});
export const vecScale = defineOp('vecScale', { x: buf('float32', 'rw'), s: num(finite, 'a finite number') });
export const vecAxpy = defineOp('vecAxpy', { y: buf('float32', 'rw'), x: buf('float32', 'r'), s: num(finite, 'a finite number', 1) },
  { check: (a) => sameLength('x', a.x, 'y', a.y), elementwise: true });
/** y = b * y + s * x (the bits of vecScale(y, b) then vecAxpy(y, x, s)). */
export const vecAxpby = defineOp('vecAxpby', { y: buf('float32', 'rw'), x: buf('float32', 'r'), s: num(finite, 'a finite number', 1), b: num(finite, 'a finite number', 1) },
  { check: (a) => sameLength('x', a.x, 'y', a.y), elementwise: true });
/** s += eta * x * y elementwise (float64 per element, rounded once). */
export const vecMulAdd = defineOp('vecMulAdd', { s: buf('float32', 'rw'), x: buf('float32', 'r'), y: buf('float32', 'r'), eta: num(finite, 'a finite number', 1) },
  { check: (a) => { sameLength('x', a.x, 's', a.s); sameLength('y', a.y, 's', a.s); }, elementwise: true });
/**
 * TracIn's factorized score: s[i m + j] += eta (a_i . b_j)(d_i . e_j) for n rows of a and d and m
 * rows of b and e (p and c floats a row). Dot products in float32 with k ascending (the gemm's
 * order), the update in float64 rounded once: the same bits on the CPU and the GPU.
 */
export const tracinScore = defineOp('tracinScore', {
  a: buf('float32', 'r'), b: buf('float32', 'r'), d: buf('float32', 'r'), e: buf('float32', 'r'),
  n: int(0, 0x7fffffff), m: int(0, 0x7fffffff), p: int(0, 0x7fffffff), c: int(0, 0x7fffffff), eta: num(finite, 'a finite number', 1), s: buf('float32', 'rw'),
}, {
  check: (a) => {
    const want: [string, unknown, number][] = [['a', a.a, a.n * a.p], ['b', a.b, a.m * a.p], ['d', a.d, a.n * a.c], ['e', a.e, a.m * a.c], ['s', a.s, a.n * a.m]];
    for (const [name, v, n] of want) if (len(v) !== n) throw rangeError(name, `length ${n}`, `length ${len(v)}`);
  },
});
/** out[r] = sum of squares of row r of x (rows of `cols`; float64). */
export const rowsSumSq = defineOp('rowsSumSq', { x: buf('float32', 'r'), cols: int(1, U32), out: buf('float64', 'w') }, {
  check: (a) => { if (len(a.x) !== len(a.out) * a.cols) throw rangeError('x', `length out.length * cols = ${len(a.out) * a.cols}`, `length ${len(a.x)}`); },
});
/** kind 0: sum of squares, 1: sum of |x| (float64, fixed order). */
export const normSum = defineOp('normSum', { x: buf('float32', 'r'), kind: int(0, 1) });
/** out[idx[j]] += scale * vals[j]; idx must be strictly ascending and in range (else a corrupt payload). */
export const scatterAdd = defineOp('scatterAdd', { out: buf('float32', 'rw'), idx: buf('uint32', 'r'), vals: buf('float32', 'r'), scale: num(finite, 'a finite number', 1) },
  { check: (a) => sameLength('vals', a.vals, 'idx', a.idx) });
export const randkSupport = defineOp('randkSupport', {
  n: int(0, U32), k: int(0, (a) => a.n as number), seed: any<[number, number]>(), step: int(0, U32), stream: int(0, U32),
  out: out('uint32', (a) => a.k as number),
});
/** dst = src (bytes), a memcpy split across the pool: the local communicator's copies through shared memory. */
export const copyBytes = defineOp('copyBytes', { dst: buf('uint8', 'w'), src: buf('uint8', 'r') }, { check: (a) => sameLength('src', a.src, 'dst', a.dst) });
/** A thread-count independent CRC32C tree of the bytes (checkpoints, identical-model checks). */
export const checksum = defineOp('checksum', { bytes: buf('uint8', 'r') });
export const dgcAccumulate = defineOp('dgcAccumulate', {
  g: buf('float32', 'r'), u: buf('float32', 'rw'), v: buf('float32', 'rw'), momentum: num((x) => x >= 0 && x < 1, 'a number in [0, 1)'),
  nesterov: bool(false), clip: num((x) => x >= 0 && Number.isFinite(x), 'a finite number >= 0', 1),
}, { check: (a) => { sameLength('u', a.u, 'g', a.g); sameLength('v', a.v, 'g', a.g); } });

// ---- optimizers -------------------------------------------------------------------------------

export const sgdStep = defineOp('sgdStep', {
  w: buf('float32', 'rw'), g: buf('float32', 'r'), buf: optBuf('float32', 'rw'), ...sgdSchema(),
}, { check: (a) => { sameLength('g', a.g, 'w', a.w); momentumBuf(a); } });
/**
 * sgdStep with g sparse: `counts[r]` (index, value) entries per part in `indices` / `values`, each part's
 * indices ascending and < w.length (else ERR_GRADCOMP_CORRUPT_PAYLOAD, nothing written); g sums the parts in order.
 */
export const sgdSparseStep = defineOp('sgdSparseStep', {
  w: buf('float32', 'rw'), buf: optBuf('float32', 'rw'), indices: buf('uint32', 'r'), values: buf('float32', 'r'), counts: buf('uint32', 'r'), ...sgdSchema(),
}, {
  check: (a) => {
    sameLength('values', a.values, 'indices', a.indices);
    const total = (a.counts as Uint32Array).reduce((s, c) => s + c, 0);
    if (total !== len(a.indices)) throw rangeError('counts', `counts adding up to the ${len(a.indices)} entries given`, `a total of ${total}`);
    momentumBuf(a);
  },
});
/** Resolves to the new v (v null on the tensor's first step). */
export const novogradStep = defineOp('novogradStep', {
  w: buf('float32', 'rw'), g: buf('float32', 'r'), m: buf('float32', 'rw'), lr: rate('lr'), beta1: rate('beta1'), beta2: rate('beta2'),
  eps: rate('eps'), weightDecay: rate('weightDecay', 0), gradScale: num(finite, 'a finite number', 1), gradAveraging: bool(false), v: any<number | null>(),
}, { check: (a) => { sameLength('g', a.g, 'w', a.w); sameLength('m', a.m, 'w', a.w); } });
