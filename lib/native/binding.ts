/**
 * The raw CPU addon, typed once (internal: not exported from the package). Arguments are
 * positional primitives and typed arrays that lib/ops has already validated; outputs are
 * allocated by TypeScript and filled in place. The trailing `async` flag makes a call return a
 * Promise that settles when the kernel is done; otherwise it runs on the calling thread.
 */
export interface NativeBinding {
  readonly abi: number;
  init(makeError: (status: number, op: string) => Error): void;
  topk(grad: Float32Array | null, residual: Float32Array, k: number, scale: number, outIdx: Uint32Array,
    outVal: Float32Array, async: boolean): Promise<void> | undefined;
  qsgdEncode(x: Float32Array, levels: number, bucket: number, norm: number, seedLo: number, seedHi: number,
    step: number, tensorId: number, payload: Uint8Array, async: boolean): Promise<void> | undefined;
  qsgdDecode(payload: Uint8Array, out: Float32Array, async: boolean): Promise<void> | undefined;
  qsgdPayloadBytes(n: number, levels: number, bucket: number): number;
  powersgdStep(m: Float32Array, q: Float32Array, p: Float32Array, batch: number, rows: number, cols: number,
    rank: number, async: boolean): Promise<void> | undefined;
  orthonormalize(p: Float32Array, batch: number, rows: number, rank: number, async: boolean): Promise<void> | undefined;
  /** phase 1: P = M Q; phase 2: Q = Mᵀ P (no orthogonalization). */
  powersgdPhase(m: Float32Array, q: Float32Array, p: Float32Array, batch: number, rows: number, cols: number,
    rank: number, phase: 1 | 2, async: boolean): Promise<void> | undefined;
  /** kind 0: uniform [0, 1); kind 1: standard normal. Same stream mapping as QSGD. */
  /** dst = dst op src (0 sum, 1 max; NaN wins max) for Float32Arrays or Float64Arrays. */
  reduceInto(dst: Float32Array | Float64Array, src: Float32Array | Float64Array, op: 0 | 1): void;
  /** out = P Qᵀ; with m and residual: residual = m - out (fused). */
  powersgdReconstruct(p: Float32Array, q: Float32Array, rows: number, cols: number, rank: number, out: Float32Array,
    m: Float32Array | null, residual: Float32Array | null): void;
  /** kind 0: fp16, 1: bf16, 2: fp16 saturating at ±65504 (round to nearest even, canonical NaN). */
  halfPack(x: Float32Array, out: Uint16Array, kind: 0 | 1 | 2): void;
  halfUnpackAdd(h: Uint16Array, out: Float32Array, kind: 0 | 1): void;
  /** Writes bit i = x[i] < 0 into bits; returns sum |x| (float64, fixed order). */
  signPack(x: Float32Array, bits: Uint8Array): number;
  signUnpackAdd(bits: Uint8Array, out: Float32Array, scale: number): void;
  philoxFill(out: Float32Array, seedLo: number, seedHi: number, step: number, stream: number, kind: 0 | 1): void;
  dropitPack(x: Float32Array, k: number, out: Uint8Array, async: boolean): Promise<void> | undefined;
  dropitPackedBytes(n: number, k: number): [bytes: number, layout: number];
  dropitUnpack(payload: Uint8Array, out: Float32Array, async: boolean): Promise<void> | undefined;
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
export interface MpiBinding {
  readonly abi: number;
  init(): { rank: number; size: number; provided: number; version: string };
  finalize(): void;
  abort(code: number): void;
  allreduce(buf: Float32Array | Float64Array, op: 0 | 1): Promise<void>;
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
export interface CudaBinding {
  abi: number;
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
  dropitPackedBytes(n: number, k: number): [bytes: number, layout: number];
  lastTopkPath(): number;
  /** The benchmark suite's GPU section: ms per timed run (CUDA events, L2 flushed between runs). */
  bench(op: string, n: number, a: number, b: number, c: number, reps: number): Promise<number[]>;
}
