/**
 * gradcomp/tfjs: TensorFlow.js integration. A tf.Optimizer running any distributed algorithm
 * inside model.fit, rank 0's weights broadcast to every rank, DropIT layers that keep a packed
 * input for the backward pass, and the Fashion-MNIST / IDX loaders.
 */
export { createTfjsOptimizer } from './optimizer';
export { broadcastWeights } from './broadcast';
export type { TfjsOptimizerOptions, TfjsDistributedOptimizer } from './optimizer';
export { useNativeKernels } from './kernels';
export type { NativeKernels } from './kernels';
export { dropitDense, dropitConv2d } from './layers';
export { dropitMemory, dropitSummary } from './summary';
export type { DropitDenseConfig, DropitConv2dConfig, DropitBytes } from './layers';
export { loadFashionMnist, readIdx, FASHION_MNIST_CLASSES } from '../../train/idx';
export type { FashionMnist, ImageSplit, IdxArray } from '../../train/idx';
