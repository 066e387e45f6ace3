/**
 * The raw CPU addon, typed once (internal: not exported from the package). Arguments are
 * positional primitives and typed arrays that lib/ops has already validated; outputs are
 * allocated by TypeScript and filled in place. The trailing `async` flag makes a call return a
 * Promise that settles when the kernel is done; otherwise it runs on the calling thread.
 */
type Async = Promise<void> | undefined;

/** What every addon exports besides its ops (native/napi_util/napi_util.h). */
export interface AddonCommon {
  /** GC_ABI_VERSION, compiled in from package.json's gradcomp.abi. */
  readonly abi: number;
  /** The factory that turns a failed status into a coded GradcompError. */
  setErrorFactory(make: (status: number, op: string, detail: string) => Error): void;
}

export interface NativeBinding extends AddonCommon {
  topk(grad: Float32Array | null, residual: Float32Array, k: number, scale: number, outIdx: Uint32Array, outVal: Float32Array, async: boolean): Async;
  qsgdEncode(x: Float32Array, levels: number, bucket: number, norm: number, seedLo: number, seedHi: number,
    step: number, tensorId: number, payload: Uint8Array, async: boolean): Async;
  /** accumulate: out += decoded. */
  qsgdDecode(payload: Uint8Array, out: Float32Array, accumulate: boolean, async: boolean): Async;
  qsgdDecodeSum(data: Uint8Array, spans: Float64Array, out: Float32Array, scale: number, async: boolean): Async;
  qsgdPayloadBytes(n: number, levels: number, bucket: number): number;
  powersgdStep(m: Float32Array, q: Float32Array, p: Float32Array, batch: number, rows: number, cols: number, rank: number, async: boolean): Async;
  orthonormalize(p: Float32Array, batch: number, rows: number, rank: number, async: boolean): Async;
  /** phase 1: P = M Q; phase 2: Q = Mᵀ P (no orthogonalization). */
  powersgdPhase(m: Float32Array, q: Float32Array, p: Float32Array, batch: number, rows: number, cols: number, rank: number, phase: 1 | 2,
    async: boolean): Async;
  /** e = g + e, then P = e Q, fused (one pass less over M). */
  powersgdMqAdd(e: Float32Array, q: Float32Array, p: Float32Array, batch: number, rows: number, cols: number, rank: number, g: Float32Array,
    async: boolean): Async;
  /** out = P Qᵀ; with m and residual: residual = m - out (fused). */
  powersgdReconstruct(p: Float32Array, q: Float32Array, rows: number, cols: number, rank: number, out: Float32Array,
    m: Float32Array | null, residual: Float32Array | null, async: boolean): Async;
  powersgdReconstructSgd(p: Float32Array, q: Float32Array, rows: number, cols: number, rank: number, residual: Float32Array | null,
    w: Float32Array, buf: Float32Array | null, lr: number, momentum: number, dampening: number, weightDecay: number, gradScale: number,
    nesterov: boolean, first: boolean, async: boolean): Async;
  /** dst = dst op src (0 sum, 1 max; NaN wins max) for Float32Arrays or Float64Arrays. */
  reduceInto(dst: Float32Array | Float64Array, src: Float32Array | Float64Array, op: 0 | 1): void;
  /** dst = fold over j of data[offsets[j] ..] (0 sum, 1 max), in order, one pass. */
  /** c = alpha op(a) op(b) + beta c, row-major; each element summed over k in order (no FMA). */
  gemm(ta: boolean, tb: boolean, m: number, n: number, k: number, alpha: number, a: Float32Array, lda: number, b: Float32Array, ldb: number, beta: number, c: Float32Array, ldc: number): void;
  reduceMany(dst: Float32Array | Float64Array, data: Float32Array | Float64Array, offsets: Uint32Array, op: 0 | 1): void;
  /** kind 0: fp16, 1: bf16, 2: fp16 saturating at ±65504 (round to nearest even, canonical NaN). */
  halfPack(x: Float32Array, out: Uint16Array, kind: 0 | 1 | 2): void;
  halfUnpackAdd(h: Uint16Array, out: Float32Array, kind: 0 | 1): void;
  /** Writes bit i = x[i] < 0 into bits; returns sum |x| (float64, fixed order). */
  signPack(x: Float32Array, bits: Uint8Array): number;
  signUnpackAdd(bits: Uint8Array, out: Float32Array, scale: number): void;
  /** Blockwise scaled sign with error feedback (blocks of `block`, a multiple of 8), one scale per block into scales. */
  efsignEncodeBlocks(grad: Float32Array | null, e: Float32Array, block: number, bits: Uint8Array, scales: Float32Array): void;
  signUnpackAddBlocks(bits: Uint8Array, block: number, scales: Float32Array, out: Float32Array): void;
  /** AdaComp: R += dW, bin-local selection into sel; returns [count, sum |G| over the selected]. */
  adacompSelect(dW: Float32Array, R: Float32Array, bin: number, sel: Uint32Array): [number, number];
  adacompEmit(R: Float32Array, sel: Uint32Array, m: number, scale: number, idx: Uint32Array, signs: Uint8Array): void;
  adacompDecodeAdd(idx: Uint32Array, signs: Uint8Array, scale: number, out: Float32Array): void;
  /** Fused scaled sign with error feedback; returns (or resolves to) the float32 scale. */
  efsignEncode(grad: Float32Array | null, e: Float32Array, bits: Uint8Array, async: boolean): number | Promise<number>;
  signDecodeAll(data: Uint8Array, offsets: Uint32Array, scales: Float32Array | null, out: Float32Array, mode: 0 | 1, divisor: number,
    async: boolean): Async;
  /** kind 0: uniform [0, 1); kind 1: standard normal. Same stream mapping as QSGD. */
  philoxFill(out: Float32Array, seedLo: number, seedHi: number, step: number, stream: number, kind: 0 | 1): void;
  vecAdd(out: Float32Array, a: Float32Array, b: Float32Array): void;
  vecScale(x: Float32Array, s: number): void;
  vecAxpy(y: Float32Array, x: Float32Array, s: number): void;
  vecAxpby(y: Float32Array, x: Float32Array, s: number, b: number): void;
  vecMulAdd(s: Float32Array, x: Float32Array, y: Float32Array, eta: number): void;
  rowsSumSq(x: Float32Array, cols: number, out: Float64Array): void;
  normSum(x: Float32Array, kind: 0 | 1): number;
  scatterAdd(out: Float32Array, idx: Uint32Array, vals: Float32Array, scale: number): void;
  randkSupport(n: number, seedLo: number, seedHi: number, step: number, stream: number, out: Uint32Array): void;
  /** CRC32C of 1 MiB pieces, then of their CRCs: independent of thread count. */
  checksum(bytes: Uint8Array): number;
  dgcAccumulate(g: Float32Array, u: Float32Array, v: Float32Array, mu: number, nesterov: boolean, clip: number): void;
  sgdStep(w: Float32Array, g: Float32Array, buf: Float32Array | null, lr: number, momentum: number, dampening: number, weightDecay: number,
    gradScale: number, nesterov: boolean, first: boolean, async: boolean): Async;
  sgdSparseStep(w: Float32Array, buf: Float32Array | null, indices: Uint32Array, values: Float32Array, counts: Uint32Array, lr: number, momentum: number,
    dampening: number, weightDecay: number, gradScale: number, nesterov: boolean, first: boolean, async: boolean): Async;
  qsgdDecodeSgd(data: Uint8Array, spans: Float64Array, w: Float32Array, buf: Float32Array | null, lr: number, momentum: number,
    dampening: number, weightDecay: number, gradScale: number, nesterov: boolean, first: boolean, async: boolean): Async;
  novogradStep(w: Float32Array, g: Float32Array, m: Float32Array, lr: number, beta1: number, beta2: number, eps: number, weightDecay: number,
    gradScale: number, gradAveraging: boolean, v: number | null, async: boolean): number | Promise<number>;
  dropitPack(x: Float32Array, k: number, out: Uint8Array, async: boolean): Async;
  dropitPackedBytes(n: number, k: number): [bytes: number, layout: number];
  dropitUnpack(payload: Uint8Array, out: Float32Array, async: boolean): Async;
  /** Scratch bytes a CPU kernel needs (its arena provides them): topk (n, k), dropit (n, k), powersgd (batch, rows, cols, rank). */
  scratchBytes(op: 'topk' | 'dropit' | 'powersgd', a: number, b: number, c?: number, d?: number): number;
  setConcurrency(n: number): void;
  concurrency(): number;
  isa(): 'avx512' | 'avx2' | 'scalar';
  setMaxIsa(isa: 'avx512' | 'avx2' | 'scalar'): void;
  lastTopkPath(): number;
  lastDropitPath(): number;
  baselineNthElementEfTopK(g: Float32Array, r: Float32Array, k: number, outIdx: Uint32Array, outVal: Float32Array): void;
  baselineMemcpy(dst: Uint8Array, src: Uint8Array): void;
}

/** The raw MPI addon (native/mpi): every op runs on its one communication thread, in issue order. */
export interface MpiBinding extends AddonCommon {
  /** Starts the comm thread (MPI_Init_thread); timeoutMs: a collective without progress for this long ends the job, naming the ranks that stopped. */
  /** owner: this thread started the engine (a worker thread calling init() afterwards shares it, and its finalize() does nothing). */
  init(timeoutMs: number | null): { rank: number; size: number; provided: number; version: string; timeoutMs: number; nodes: number; perNode: number; hierarchical: boolean; owner: boolean };
  finalize(): void;
  /** The starting thread lets another of its threads use the engine (true) or takes it back (false); another thread is refused otherwise. */
  lend(on: boolean): void;
  abort(code: number): void;
  /** deterministic: the ring (fixed summation order, shared with the local backend); else MPI_Iallreduce. */
  allreduce(buf: Float32Array | Float64Array, op: 0 | 1, deterministic: boolean): Promise<void>;
  allgatherCounts(n: number, out: Int32Array): Promise<void>;
  allgatherv(send: ArrayBufferView, recv: ArrayBufferView, counts: number[]): Promise<void>;
  bcast(buf: ArrayBufferView, root: number): Promise<void>;
  gatherv(send: ArrayBufferView, recv: ArrayBufferView | null, counts: number[], root: number): Promise<void>;
  scatterv(send: ArrayBufferView | null, recv: ArrayBufferView, counts: number[], root: number): Promise<void>;
  barrier(): Promise<void>;
  send(buf: ArrayBufferView, dest: number): Promise<void>;
  recv(buf: ArrayBufferView, src: number): Promise<void>;
}

/** The optional CUDA addon (CMakeLists.txt, `npm run build:cuda`). */
export interface CudaProbe {
  status: 'ok' | 'no-driver' | 'driver-too-old' | 'no-device' | 'unsupported-arch' | 'error';
  driverVersion: number;
  runtimeVersion: number;
  detail: string;
  devices: { name: string; cc: string; memBytes: number }[];
}

/** An opaque device allocation (a napi External); freed by free() or, failing that, by GC. */
export type DeviceHandle = object & { readonly __gradcompDevice?: never };

/** Every op returns a Promise that settles after the op's stream work is done. */
export interface CudaBinding extends AddonCommon {
  maxRank: number;
  probe(): CudaProbe;
  alloc(bytes: number, zero: boolean): DeviceHandle;
  free(h: DeviceHandle): void;
  memory(): { bytes: number; buffers: number };
  upload(h: DeviceHandle, src: ArrayBufferView, byteOffset: number): Promise<void>;
  download(h: DeviceHandle, dst: ArrayBufferView, byteOffset: number): Promise<void>;
  copyDevice(dst: DeviceHandle, src: DeviceHandle, bytes: number): Promise<void>;
  topk(grad: DeviceHandle | null, x: DeviceHandle, n: number, k: number, scale: number, outIdx: DeviceHandle,
    outVal: DeviceHandle): Promise<void>;
  qsgdEncode(x: DeviceHandle, n: number, levels: number, bucket: number, norm: number, seedLo: number, seedHi: number,
    step: number, tensorId: number, payload: DeviceHandle, payloadBytes: number): Promise<void>;
  qsgdDecode(payload: DeviceHandle, payloadBytes: number, out: DeviceHandle, n: number): Promise<void>;
  qsgdPayloadBytes(n: number, levels: number, bucket: number): number;
  powersgdStep(m: DeviceHandle, q: DeviceHandle, p: DeviceHandle, batch: number, rows: number, cols: number,
    rank: number): Promise<void>;
  orthonormalize(p: DeviceHandle, batch: number, rows: number, rank: number): Promise<void>;
  dropitPack(x: DeviceHandle, n: number, k: number, payload: DeviceHandle, bytes: number): Promise<void>;
  dropitUnpack(payload: DeviceHandle, bytes: number, out: DeviceHandle, n: number): Promise<void>;
  /** s[i m + j] += eta (a_i . b_j)(d_i . e_j): TracIn's factorized score. */
  tracinScore(a: DeviceHandle, b: DeviceHandle, d: DeviceHandle, e: DeviceHandle, n: number, m: number, p: number, c: number, eta: number, s: DeviceHandle): Promise<void>;
  /** out[r] = the float64 sum of squares of row r (rows of cols floats). */
  rowsSumSq(x: DeviceHandle, rows: number, cols: number, out: DeviceHandle): Promise<void>;
  dropitPackedBytes(n: number, k: number): [bytes: number, layout: number];
  lastTopkPath(): number;
  /** The benchmark suite's GPU section: ms per timed run (CUDA events, L2 flushed between runs). */
  bench(op: string, n: number, a: number, b: number, c: number, reps: number): Promise<number[]>;
}
