/**
 * The backend layer, below lib/tensor: buffers and pinning, device memory and its queue, the
 * backend decision, and the op table with its CPU and CUDA implementations. lib/tensor builds on
 * the buffers; lib/ops is the typed public face that dispatches through run(). Nothing above
 * lib/ops imports this layer's kernels or the raw bindings.
 */
import './cpu';
import './cuda';

export { runSync, runAsync, len, cpu, cuda } from './op';
export type { Mode, OpDef, Schema, Ran } from './op';
export * as kernels from './ops';
export { qsgdPayloadBytes, dropitPackedBytes, cpuIntrospection } from './cpu';
export { DeviceBuffer, DeviceStorage, isDeviceBuffer, cudaMemory, cudaSynchronize, upload, download } from './device';
export { ARRAY_NAMES, BYTES, CTORS, MAX_ELEMENTS, dtypeOf, hostArg, isDetached, noOverlap, pin } from './buffer';
export type { DType, DTypeArrays, HostArray } from './buffer';
export { setConcurrency, concurrency, backendInfo, setBackend, cudaBackend } from './runtime';
export type { BackendInfo, BackendChoice } from './runtime';
