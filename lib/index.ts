/** gradcomp: communication-efficient distributed training kernels for Node.js. */
export { Tensor, dtypeOf } from './tensor/tensor';
export type { DType, Device, AnyTypedArray, DTypeArrays } from './tensor/tensor';
export {
  GradcompError, GradcompTypeError, GradcompRangeError, DisposedError,
} from './native/errors';
export type { GradcompErrorCode } from './native/errors';
export { efTopK, efTopKSync, topK, topKSync } from './ops/topk';
export type { TopKResult, TopKOptions, EfTopKOptions, DeviceTopKResult } from './ops/topk';
export {
  qsgdEncode, qsgdEncodeSync, qsgdDecode, qsgdDecodeSync, qsgdPayloadBytes, qsgdReadHeader, QSGD_HEADER_BYTES,
} from './ops/qsgd';
export type { QsgdOptions, QsgdHeader, DecodeOptions } from './ops/qsgd';
export { powerSgdStep, powerSgdStepSync, orthonormalize, orthonormalizeSync } from './ops/powersgd';
export type { PowerSgdStepArgs, PowerSgdStepResult, DevicePowerSgdStepArgs } from './ops/powersgd';
export {
  dropitPack, dropitPackSync, dropitUnpack, dropitUnpackSync, dropitKeepCount, dropitPackedBytes, DROPIT_HEADER_BYTES, DROPIT_DEFAULT_MAX_ELEMENTS,
} from './ops/dropit';
export type { DropitPacked, DropitPackOptions, DeviceDropitPacked } from './ops/dropit';
export { setConcurrency, concurrency, backendInfo, setBackend, cudaMemory, cudaSynchronize } from './ops/runtime';
export type { BackendInfo, BackendChoice } from './ops/runtime';
export { createCompressor, COMPRESSOR_TYPES } from './compress/create';
export type { CompressorSpec } from './compress/create';
export { runSessions } from './compress/local';
export { LockstepSession } from './compress/base';
export type {
  Compressor, Session, Round, RoundResult, Collective, StepContext, TensorStats, CompressorState,
} from './compress/types';
export { createPolicy, Policy, expectedBytes } from './compress/policy';
export type { PolicyOptions, PolicyRule, PolicyDecision, TensorMeta, ExplainOptions } from './compress/policy';
export { init } from './comm/init';
export type { InitOptions } from './comm/init';
export { runLocal } from './comm/launcher';
export type { RunOptions, RunResult } from './comm/launcher';
export type { Communicator, Numeric, ReduceOp, AllgathervOptions, AllreduceOptions } from './comm/types';
export { createOptimizer } from './optim/create';
export type { OptimizerSpec } from './optim/create';
export { Sgd } from './optim/sgd';
export type { SgdOptions, SgdTensorState } from './optim/sgd';
export { NovoGrad } from './optim/novograd';
export type { NovoGradOptions, NovoGradTensorState } from './optim/novograd';
export type { Optimizer, OptimizerState, UpdateOptions } from './optim/optimizer';
export { createDistributedOptimizer, ALGORITHMS } from './algorithms/create';
export type { AlgorithmName, DistributedOptions } from './algorithms/create';
export type {
  DistributedOptimizer, DistributedStats, AlgorithmState, StepInfo, TensorMap, StepHandle,
} from './algorithms/base';
export { stlStage } from './algorithms/periodic';
export type { Stage } from './algorithms/periodic';
export { saveCheckpoint, loadCheckpoint, writeCheckpointFile, readCheckpointFile } from './checkpoint/file';
export type { Stateful } from './checkpoint/file';
export { encodeCheckpoint, decodeCheckpoint, CheckpointError, CHECKPOINT_VERSION } from './checkpoint/format';
export { stateToJSON } from './checkpoint/values';
// TracIn (training-data influence): the factorized last-layer score on the CPU or a GPU, self-influence, projections, proponents.
export { scoreFactors, scoreGradients, selfInfluence, projectFactors, proponents, withBias } from './analysis/tracin';
export type { Factors, Ranked } from './analysis/tracin';
export { tracinScore } from './ops/kernels';
export type { LowRankGrad } from './ops/kernels';
