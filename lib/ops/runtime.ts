/** Runtime settings and the backend decision, as the package exports them. */
export { setConcurrency, concurrency, backendInfo, setBackend, cudaMemory, cudaSynchronize } from '../backend';
export type { BackendInfo, BackendChoice } from '../backend';
