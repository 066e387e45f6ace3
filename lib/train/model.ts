/**
 * The two models `gradcomp train` trains, forward and backward written out by hand: softmax
 * regression (W: classes x features, b) and a one-hidden-layer ReLU MLP (W1: hidden x features,
 * b1, W2: classes x hidden, b2). Loss: mean cross-entropy over the batch, computed with a
 * max-shifted log-sum-exp. Parameters are float32 Tensors (so their shapes reach the compressor
 * policy: biases are 1-D and stay dense).
 */
import { Tensor } from '../tensor/tensor';
import type { Dataset } from './data';
import { mix, normal, rng } from './data';

export type ModelKind = 'softmax' | 'mlp';

export interface Model {
  kind: ModelKind;
  params: Record<string, Tensor<'float32'>>;
  /** Mean loss over `idx` and its gradients (fresh Float32Arrays, named as params). */
  lossAndGrad(params: Record<string, Float32Array>, data: Dataset, idx: ArrayLike<number>): { loss: number; grads: Record<string, Float32Array> };
  /** Mean loss and accuracy over the whole dataset. */
  evaluate(params: Record<string, Float32Array>, data: Dataset): { loss: number; accuracy: number };
}

/** Softmax cross-entropy of one row of logits z (length C) against label y; writes dL/dz into dz. */
function xent(z: Float64Array, y: number, dz: Float64Array | undefined): { loss: number; argmax: number } {
  let m = -Infinity, arg = 0;
  for (let c = 0; c < z.length; c++) if (z[c] > m) { m = z[c]; arg = c; }
  let s = 0;
  for (let c = 0; c < z.length; c++) s += Math.exp(z[c] - m);
  const lse = m + Math.log(s);
  if (dz) for (let c = 0; c < z.length; c++) dz[c] = Math.exp(z[c] - lse) - (c === y ? 1 : 0);
  return { loss: lse - z[y], argmax: arg };
}

export function createModel(kind: ModelKind, features: number, classes: number, hidden: number, seed: number): Model {
  const D = features, C = classes, H = hidden;
  const u = rng(mix(seed, 0x30de1));
  const he = (n: number, fanIn: number) => Float32Array.from({ length: n }, () => normal(u) * Math.sqrt(2 / fanIn));
  const params: Record<string, Tensor<'float32'>> = kind === 'softmax'
    ? { 'fc.weight': Tensor.from(new Float32Array(C * D), [C, D]), 'fc.bias': Tensor.from(new Float32Array(C), [C]) }
    : {
      'fc1.weight': Tensor.from(he(H * D, D), [H, D]), 'fc1.bias': Tensor.from(new Float32Array(H), [H]),
      'fc2.weight': Tensor.from(he(C * H, H), [C, H]), 'fc2.bias': Tensor.from(new Float32Array(C), [C]),
    };

  /** Runs the batch; accumulates gradients when `grads` is given. */
  const run = (p: Record<string, Float32Array>, data: Dataset, idx: ArrayLike<number>, grads?: Record<string, Float32Array>) => {
    const z = new Float64Array(C), dz = grads ? new Float64Array(C) : undefined;
    const h = new Float64Array(H), dh = new Float64Array(H);
    let loss = 0, correct = 0;
    for (let s = 0; s < idx.length; s++) {
      const i = idx[s], off = i * D, x = data.x;
      if (kind === 'softmax') {
        const W = p['fc.weight'], b = p['fc.bias'];
        for (let c = 0; c < C; c++) { let a = b[c]; for (let f = 0; f < D; f++) a += W[c * D + f] * x[off + f]; z[c] = a; }
      } else {
        const W1 = p['fc1.weight'], b1 = p['fc1.bias'], W2 = p['fc2.weight'], b2 = p['fc2.bias'];
        for (let j = 0; j < H; j++) { let a = b1[j]; for (let f = 0; f < D; f++) a += W1[j * D + f] * x[off + f]; h[j] = a > 0 ? a : 0; }
        for (let c = 0; c < C; c++) { let a = b2[c]; for (let j = 0; j < H; j++) a += W2[c * H + j] * h[j]; z[c] = a; }
      }
      const r = xent(z, data.y[i], dz);
      loss += r.loss;
      if (r.argmax === data.y[i]) correct++;
      if (!grads || !dz) continue;
      if (kind === 'softmax') {
        const gW = grads['fc.weight'], gb = grads['fc.bias'];
        for (let c = 0; c < C; c++) { gb[c] += dz[c]; for (let f = 0; f < D; f++) gW[c * D + f] += dz[c] * x[off + f]; }
      } else {
        const W2 = p['fc2.weight'], gW1 = grads['fc1.weight'], gb1 = grads['fc1.bias'], gW2 = grads['fc2.weight'], gb2 = grads['fc2.bias'];
        dh.fill(0);
        for (let c = 0; c < C; c++) {
          gb2[c] += dz[c];
          for (let j = 0; j < H; j++) { gW2[c * H + j] += dz[c] * h[j]; dh[j] += dz[c] * W2[c * H + j]; }
        }
        for (let j = 0; j < H; j++) {
          if (h[j] <= 0) continue;
          gb1[j] += dh[j];
          for (let f = 0; f < D; f++) gW1[j * D + f] += dh[j] * x[off + f];
        }
      }
    }
    return { loss: loss / Math.max(1, idx.length), accuracy: correct / Math.max(1, idx.length) };
  };

  return {
    kind,
    params,
    lossAndGrad(p, data, idx) {
      const grads: Record<string, Float32Array> = {};
      for (const [n, t] of Object.entries(params)) grads[n] = new Float32Array(t.size);
      const { loss } = run(p, data, idx, grads);
      const inv = 1 / Math.max(1, idx.length);
      for (const g of Object.values(grads)) for (let i = 0; i < g.length; i++) g[i] *= inv;
      return { loss, grads };
    },
    evaluate(p, data) {
      return run(p, data, Int32Array.from({ length: data.samples }, (_, i) => i));
    },
  };
}
