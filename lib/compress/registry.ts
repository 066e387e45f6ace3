/**
 * Every compressor, one line each: createCompressor, the policy's byte estimates, the wire kinds
 * and the algorithms' defaults are derived from these descriptors. To add a compressor, write its
 * module (spec type, class, `descriptor`) and add its line here (CONTRIBUTING.md).
 */
export { none, randk } from './summable';
export { fp16, bf16 } from './cast';
export { descriptor as topk } from './sparse';
export { efsign, signum } from './sign';
export { descriptor as qsgd } from './qsgd';
export { descriptor as powersgd } from './powersgd';
export { descriptor as dgc } from './dgc';
export { descriptor as adacomp } from './adacomp';
export { descriptor as scalecom } from './scalecom';
export { descriptor as gradiveq } from './gradiveq';
export { descriptor as terngrad } from './terngrad';
