/**
 * The Communicator: collectives over the workers of one job, the same calls on every backend.
 * Every rank must issue the same collectives in the same order (MPI's rule). Calls take
 * TypedArrays or CPU Tensors (their data is used in place), return Promises, and never block the event loop; buffers must
 * not be detached or resized while a call is pending.
 */
export type Numeric = Float32Array | Float64Array | Int32Array | Uint32Array | Uint8Array;
export type ReduceOp = 'sum' | 'avg' | 'max';
/** The element types collectives move, by name. */
export type NumericType = 'float32' | 'float64' | 'int32' | 'uint32' | 'uint8';
/** The array of a NumericType. */
export type NumericOf<D extends NumericType> = D extends 'float64' ? Float64Array : D extends 'int32' ? Int32Array : D extends 'uint32' ? Uint32Array
  : D extends 'uint8' ? Uint8Array : Float32Array;
export interface AllreduceOptions { deterministic?: boolean }
export interface AllgathervOptions<T> {
  /** A buffer to receive into when it has room (the result's data is then a view of its start): steady states allocate nothing. */
  into?: T;
}

export interface Communicator {
  readonly rank: number;
  readonly size: number;
  readonly backend: 'local' | 'mpi';
  /** Why init() chose this backend. */
  readonly reason: string;
  /**
   * In place: every rank ends with the elementwise reduction (Float32Array or Float64Array). With
   * `deterministic` (the local backend always is) the sum runs as a ring: reduce-scatter, then
   * allgather, each element's values added in one fixed order that both backends share, so
   * results are bit-identical under any launcher; otherwise the MPI backend calls MPI_Allreduce.
   */
  allreduce<T extends Float32Array | Float64Array>(buf: T, op?: ReduceOp, options?: AllreduceOptions): Promise<T>;
  /** Fixed count: recv (size x send.length) gets every rank's send, in rank order. */
  allgather<T extends Numeric>(send: T, recv?: T): Promise<T>;
  /** Variable counts (sparse top-k): every rank's send concatenated in rank order, with the counts. */
  allgatherv<T extends Numeric>(send: T, options?: AllgathervOptions<T>): Promise<{ data: T; counts: number[] }>;
  /** In place: every rank ends with root's buf (same length everywhere). */
  broadcast<T extends Numeric>(buf: T, root: number): Promise<T>;
  /** Fixed count: root receives every rank's send (size x send.length); others get null. */
  gather<T extends Numeric>(send: T, root: number): Promise<T | null>;
  /** Fixed count: root's send (size x n) is split into equal parts, rank r gets part r. */
  scatter<T extends Numeric>(send: T | null, count: number, root: number): Promise<T>;
  /** Root receives every rank's send concatenated (counts may differ); others get null. */
  gatherv<T extends Numeric>(send: T, root: number): Promise<{ data: T; counts: number[] } | null>;
  /** Root splits `send` by `counts` (length size); every rank receives its part. */
  scatterv<T extends Numeric>(send: T | null, counts: number[], root: number): Promise<T>;
  /** Reduce buf over ranks and give rank r the part `counts[r]` (equal split when omitted). */
  reduceScatter<T extends Float32Array | Float64Array>(buf: T, op?: ReduceOp, counts?: number[]): Promise<T>;
  /** Point to point, FIFO per (sender, receiver) pair. */
  send(buf: Numeric, dest: number): Promise<void>;
  recv<T extends Numeric>(buf: T, src: number): Promise<T>;
  barrier(): Promise<void>;
  /**
   * A zeroed buffer for collectives (float32 by default). On the local backend it lives in memory
   * every rank's thread can read (a SharedArrayBuffer), so an allreduce or allgatherv where every
   * rank passes such a buffer reads the peers' data in place instead of copying it through the
   * job's slots (about half the memory traffic); on MPI it is a plain array. The distributed
   * optimizers allocate their large buffers here.
   */
  alloc<D extends NumericType = 'float32'>(length: number, dtype?: D): NumericOf<D>;
  close(): Promise<void>;
}
