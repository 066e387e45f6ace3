/**
 * Faster TF.js kernels for CNN training on the cpu backend. tfjs-backend-cpu computes the
 * convolution weight gradient (Conv2DBackpropFilter) and the max-pool gradient (MaxPoolGrad) with
 * per-element index arithmetic: on a small CNN they take ~95% of a training step (3.6 s of 3.8 s
 * for conv 8 + conv 16 filters, batch 32, measured on the repository's 2-core machine).
 * useNativeKernels() replaces the two on the cpu backend: the weight gradient as im2col plus
 * gradcomp's native gemm, the pool gradient as one pass over typed arrays. Both compute what TF.js's
 * kernels compute (the same first-maximum rule for pooling ties; sums in another order, so the
 * weight gradient agrees to float rounding). Opt-in, reversible: the returned restore() puts TF.js's
 * own kernels back. NCHW (channelsFirst) convolutions go to TF.js's kernel unchanged.
 *
 * tfjs-backend-wasm (4.x) has no Conv2DBackpropFilter at all, so a convolution cannot be trained
 * on it: useNativeKernels({ backend: 'wasm' }) registers gradcomp's there (its other kernels,
 * MaxPoolGrad included, are compiled code already and stay).
 */
import { gemm } from '../../ops/kernels';
import { checkOptions, GradcompError, rangeError } from '../../native/errors';
import { tfCore } from './tf';
import type * as TfCore from '@tensorflow/tfjs-core';

type Info = TfCore.TensorInfo;
type Backend = {
  readSync(id: unknown): unknown; data?: { get(id: unknown): { values: unknown } };
  // tfjs-backend-cpu makes outputs with makeTensorInfo, tfjs-backend-wasm with makeOutput (which copies the values onto its heap).
  makeTensorInfo?(shape: number[], dtype: string, values: Float32Array): Info; makeOutput?(shape: number[], dtype: string, offset: undefined, values: Float32Array): Info;
};
interface Args { inputs: Record<string, Info>; backend: Backend; attrs: Record<string, unknown> }

function values(b: Backend, t: Info): Float32Array {
  const v = b.data ? b.data.get(t.dataId).values : b.readSync(t.dataId);
  return v instanceof Float32Array ? v : Float32Array.from(v as ArrayLike<number>);
}

function output(b: Backend, shape: number[], v: Float32Array): Info {
  if (b.makeTensorInfo) return b.makeTensorInfo(shape, 'float32', v);
  if (b.makeOutput) return b.makeOutput(shape, 'float32', undefined, v);
  throw new GradcompError('ERR_GRADCOMP_BACKEND_UNAVAILABLE', 'This TF.js backend has neither makeTensorInfo nor makeOutput: useNativeKernels supports the cpu and wasm backends');
}

// Rows of im2col per gemm call: bounds the scratch to ~16 MB however large the batch.
const MAX_COL = 1 << 22;

/** dW[kh, kw, c, oc] = sum over n, oh, ow of x[n, oh sh + kh dh - top, ow sw + kw dw - left, c] dy[n, oh, ow, oc]. */
function conv2dBackpropFilter(tf: typeof TfCore, fallback: TfCore.KernelFunc | undefined) {
  return (args: Args): Info => {
    const { inputs: { x, dy }, backend, attrs } = args;
    if (attrs.dataFormat === 'NCHW') {
      if (fallback) return fallback(args as never) as Info;
      throw new GradcompError('ERR_GRADCOMP_BACKEND_UNAVAILABLE', "gradcomp's Conv2DBackpropFilter takes channelsLast (NHWC) convolutions only, and this backend has no kernel of its own for channelsFirst: use dataFormat 'channelsLast'");
    }
    const fs = attrs.filterShape as [number, number, number, number];
    const ci = tf.backend_util.computeConv2DInfo(x.shape as [number, number, number, number], fs, attrs.strides as number, 1, attrs.pad as 'valid',
      attrs.dimRoundingMode as 'floor', false, 'channelsLast');
    const { batchSize: N, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW, outChannels: OC, filterHeight: KH, filterWidth: KW, strideHeight: sh, strideWidth: sw } = ci;
    const top = ci.padInfo.top, left = ci.padInfo.left, xv = values(backend, x), dyv = values(backend, dy);
    const K = KH * KW * C, perImage = OH * OW, imgs = Math.max(1, Math.min(N, Math.floor(MAX_COL / Math.max(1, perImage * K))));
    const col = new Float32Array(imgs * perImage * K), dw = new Float32Array(K * OC);
    // Entries of col that fall in the padding are the same for every image and never written:
    // they stay zero from the allocation, chunk after chunk.
    for (let n0 = 0; n0 < N; n0 += imgs) {
      const nb = Math.min(imgs, N - n0);
      for (let n = 0; n < nb; n++) {
        const xb = (n0 + n) * H * W * C;
        for (let oh = 0; oh < OH; oh++) {
          for (let ow = 0; ow < OW; ow++) {
            const row = ((n * OH + oh) * OW + ow) * K;
            for (let kh = 0; kh < KH; kh++) {
              const ih = oh * sh + kh - top;
              if (ih < 0 || ih >= H) continue;
              for (let kw = 0; kw < KW; kw++) {
                const iw = ow * sw + kw - left;
                if (iw < 0 || iw >= W) continue;
                const src = xb + (ih * W + iw) * C, dst = row + (kh * KW + kw) * C;
                for (let c = 0; c < C; c++) col[dst + c] = xv[src + c];
              }
            }
          }
        }
      }
      const rows = nb * perImage;
      gemm(true, false, K, OC, rows, col.subarray(0, rows * K), dyv.subarray(n0 * perImage * OC, (n0 + nb) * perImage * OC), dw, 1, n0 === 0 ? 0 : 1);
    }
    return output(backend, fs.slice(), dw);
  };
}

/** dx at each window's first maximum (scan order, strictly greater, as TF.js's cpu kernel) += dy. */
function maxPoolGrad(tf: typeof TfCore) {
  return (args: Args): Info => {
    const { inputs: { dy, input }, backend, attrs } = args;
    const ci = tf.backend_util.computePool2DInfo(input.shape as [number, number, number, number], attrs.filterSize as number, attrs.strides as number, 1,
      attrs.pad as 'valid', attrs.dimRoundingMode as 'floor');
    const { batchSize: N, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW, filterHeight: FH, filterWidth: FW, strideHeight: sh, strideWidth: sw } = ci;
    const top = ci.padInfo.top, left = ci.padInfo.left, xv = values(backend, input), dyv = values(backend, dy), dx = new Float32Array(N * H * W * C);
    for (let n = 0; n < N; n++) {
      for (let oh = 0; oh < OH; oh++) {
        const r0 = oh * sh - top, r1 = Math.min(H, r0 + FH);
        for (let ow = 0; ow < OW; ow++) {
          const c0 = ow * sw - left, c1 = Math.min(W, c0 + FW), out = ((n * OH + oh) * OW + ow) * C;
          for (let d = 0; d < C; d++) {
            let best = -Infinity, at = -1;
            for (let r = Math.max(0, r0); r < r1; r++) {
              for (let c = Math.max(0, c0); c < c1; c++) {
                const i = ((n * H + r) * W + c) * C + d;
                if (xv[i] > best) { best = xv[i]; at = i; }
              }
            }
            if (at >= 0) dx[at] += dyv[out + d];
          }
        }
      }
    }
    return output(backend, input.shape.slice(), dx);
  };
}

export interface NativeKernels {
  /** The kernels replaced, as 'Name/backend'. */
  readonly kernels: readonly string[];
  /** Puts TF.js's own kernels back. */
  restore(): void;
}

/**
 * On the 'cpu' backend (the default) replaces tfjs-backend-cpu's Conv2DBackpropFilter and
 * MaxPoolGrad with gradcomp's native versions; on 'wasm' registers gradcomp's Conv2DBackpropFilter,
 * which tfjs-backend-wasm lacks (see the module comment). Call it once after loading TF.js (and
 * @tensorflow/tfjs-backend-wasm for 'wasm').
 */
export function useNativeKernels(options: { backend?: 'cpu' | 'wasm' } = {}): NativeKernels {
  checkOptions(options, 'options', ['backend']);
  const tf = tfCore(), backend = options.backend ?? 'cpu';
  if (backend !== 'cpu' && backend !== 'wasm') throw rangeError('options.backend', "'cpu' or 'wasm'", backend);
  if (backend === 'wasm' && !tf.findBackendFactory('wasm')) {
    throw new GradcompError('ERR_GRADCOMP_BACKEND_UNAVAILABLE', "TF.js has no 'wasm' backend registered: require('@tensorflow/tfjs-backend-wasm') first (npm install @tensorflow/tfjs-backend-wasm)");
  }
  const originals: TfCore.KernelConfig[] = [], added: string[] = [];
  const replace = (name: string, make: (orig: TfCore.KernelConfig | undefined) => TfCore.KernelFunc, optional = false) => {
    const orig = tf.getKernel(name, backend);
    if (!orig && !optional) throw new GradcompError('ERR_GRADCOMP_BACKEND_UNAVAILABLE', `TF.js has no '${name}' kernel on the '${backend}' backend: load @tensorflow/tfjs-backend-cpu (or @tensorflow/tfjs) first`);
    if (orig) { originals.push(orig); tf.unregisterKernel(name, backend); } else added.push(name);
    tf.registerKernel({ kernelName: name, backendName: backend, kernelFunc: make(orig) });
  };
  // wasm has no weight gradient of its own (added, not replaced) and keeps its compiled MaxPoolGrad.
  replace('Conv2DBackpropFilter', (o) => conv2dBackpropFilter(tf, o?.kernelFunc) as unknown as TfCore.KernelFunc, backend === 'wasm');
  if (backend === 'cpu') replace('MaxPoolGrad', () => maxPoolGrad(tf) as unknown as TfCore.KernelFunc);
  const names = [...originals.map((o) => o.kernelName), ...added];
  let live = true;
  return {
    kernels: names.map((n) => `${n}/${backend}`),
    restore() {
      if (!live) return;
      live = false;
      for (const o of originals) { tf.unregisterKernel(o.kernelName, backend); tf.registerKernel(o); }
      for (const n of added) tf.unregisterKernel(n, backend);
    },
  };
}
