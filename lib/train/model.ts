/**
 * The models `gradcomp train` trains, with forward and backward on the native gemm kernel
 * (layers.ts): softmax regression; an MLP with ReLU hidden layers (default one layer of 64 on the
 * synthetic data, 256 and 128 on images); and a small CNN for 28 x 28 images (conv 3x3 8, ReLU,
 * max-pool 2, conv 3x3 16, ReLU, max-pool 2, dense). Loss: mean softmax cross-entropy. Weights are
 * out x in (PyTorch's layout), He-initialized from the seed; parameters are float32 Tensors, so
 * their shapes reach the compressor policy (biases are 1-D and stay dense).
 */
import { GradcompRangeError } from '../native/errors';
import { Tensor } from '../tensor/tensor';
import type { Dataset } from './data';
import { mix, normal, rng } from './data';
import { convBackward, convForward, denseBackward, denseForward, poolBackward, poolForward, reluBackward, reluForward, softmaxXent } from './layers';

export type ModelKind = 'softmax' | 'mlp' | 'cnn';

export interface ModelSpec { kind: ModelKind; features: number; classes: number; hidden: number[]; seed: number; image?: { h: number; w: number; c: number } }

export interface Model {
  kind: ModelKind;
  params: Record<string, Tensor<'float32'>>;
  /** The name of the first layer's weight (the softmax model's only layer is first and last). */
  firstWeight: string;
  /** The name of the last (classifier) layer's weight. */
  lastWeight: string;
  /** Mean loss over `idx` and its gradients (fresh Float32Arrays, named as params). */
  lossAndGrad(params: Record<string, Float32Array>, data: Dataset, idx: ArrayLike<number>): { loss: number; grads: Record<string, Float32Array> };
  /** Mean loss and accuracy over the whole dataset. */
  evaluate(params: Record<string, Float32Array>, data: Dataset): { loss: number; accuracy: number };
  /**
   * Per example of `idx`: the input of the last dense layer (`a`, rows of `inputs`) and dLoss/dLogits
   * (`delta`, rows of `classes`), the factors of that layer's per-example gradient (delta aᵀ for
   * the weight, delta for the bias). The layer's parameters are `weight` and `bias`.
   */
  lastLayer(params: Record<string, Float32Array>, data: Dataset, idx: ArrayLike<number>): { a: Float32Array; delta: Float32Array; inputs: number; classes: number; weight: string; bias: string };
}

interface Net {
  params: Record<string, Tensor<'float32'>>;
  /** Logits of a batch (and the last dense layer's input); `back` backpropagates dLogits into grads. */
  forward(p: Record<string, Float32Array>, x: Float32Array, batch: number): { z: Float32Array; last: Float32Array; back(dz: Float32Array, grads: Record<string, Float32Array>): void };
}

function dense(names: string[], dims: number[], p0: Record<string, Tensor<'float32'>>, he: (n: number, fanIn: number) => Float32Array, zeroLast: boolean): Net['forward'] {
  names.forEach((n, l) => {
    const inD = dims[l], outD = dims[l + 1], last = l === names.length - 1;
    p0[`${n}.weight`] = Tensor.from(zeroLast && last && names.length === 1 ? new Float32Array(outD * inD) : he(outD * inD, inD), [outD, inD]);
    p0[`${n}.bias`] = Tensor.from(new Float32Array(outD), [outD]);
  });
  return (p, x, batch) => {
    const acts: Float32Array[] = [x];
    let h = x;
    names.forEach((n, l) => {
      h = denseForward(h, p[`${n}.weight`], p[`${n}.bias`], batch, dims[l], dims[l + 1]);
      if (l < names.length - 1) h = reluForward(h);
      acts.push(h);
    });
    return {
      z: h,
      last: acts[names.length - 1],
      back(dz, g) {
        let d: Float32Array | undefined = dz;
        for (let l = names.length - 1; l >= 0; l--) {
          if (l < names.length - 1) d = reluBackward(acts[l + 1], d!);
          const n = names[l];
          d = denseBackward(acts[l], p[`${n}.weight`], d!, g[`${n}.weight`], g[`${n}.bias`], batch, dims[l], dims[l + 1], l === 0);
        }
      },
    };
  };
}

/** Two 3x3 valid convolutions, each followed by a 2x2 pool, need 10 pixels a side: refused otherwise, naming --model. */
export function checkCnnImage(h: number, w: number): void {
  if (h < 10 || w < 10) throw new GradcompRangeError('--model', `Expected images of at least 10 x 10 pixels for the CNN but the data's are ${h} x ${w} (use --model mlp)`);
}

function cnn(spec: ModelSpec, p0: Record<string, Tensor<'float32'>>, he: (n: number, fanIn: number) => Float32Array): Net['forward'] {
  const img = spec.image ?? { h: 28, w: 28, c: 1 }, C1 = 8, C2 = 16;
  checkCnnImage(img.h, img.w);
  const h1 = img.h - 2, w1 = img.w - 2, ph1 = Math.floor(h1 / 2), pw1 = Math.floor(w1 / 2);
  const h2 = ph1 - 2, w2 = pw1 - 2, ph2 = Math.floor(h2 / 2), pw2 = Math.floor(w2 / 2), flat = ph2 * pw2 * C2;
  p0['conv1.weight'] = Tensor.from(he(C1 * 9 * img.c, 9 * img.c), [C1, 9 * img.c]);
  p0['conv1.bias'] = Tensor.from(new Float32Array(C1), [C1]);
  p0['conv2.weight'] = Tensor.from(he(C2 * 9 * C1, 9 * C1), [C2, 9 * C1]);
  p0['conv2.bias'] = Tensor.from(new Float32Array(C2), [C2]);
  p0['fc.weight'] = Tensor.from(he(spec.classes * flat, flat), [spec.classes, flat]);
  p0['fc.bias'] = Tensor.from(new Float32Array(spec.classes), [spec.classes]);
  return (p, x, batch) => {
    const s1 = { batch, h: img.h, w: img.w, c: img.c, k: 3, out: C1 }, s2 = { batch, h: ph1, w: pw1, c: C1, k: 3, out: C2 };
    const c1 = convForward(x, p['conv1.weight'], p['conv1.bias'], s1), r1 = reluForward(c1.y), q1 = poolForward(r1, batch, h1, w1, C1);
    const c2 = convForward(q1.y, p['conv2.weight'], p['conv2.bias'], s2), r2 = reluForward(c2.y), q2 = poolForward(r2, batch, h2, w2, C2);
    const z = denseForward(q2.y, p['fc.weight'], p['fc.bias'], batch, flat, spec.classes);
    return {
      z,
      last: q2.y,
      back(dz, g) {
        const dq2 = denseBackward(q2.y, p['fc.weight'], dz, g['fc.weight'], g['fc.bias'], batch, flat, spec.classes)!;
        const dc2 = reluBackward(r2, poolBackward(dq2, q2.arg, r2.length));
        const dq1 = convBackward(c2.col, p['conv2.weight'], dc2, g['conv2.weight'], g['conv2.bias'], s2)!;
        const dc1 = reluBackward(r1, poolBackward(dq1, q1.arg, r1.length));
        convBackward(c1.col, p['conv1.weight'], dc1, g['conv1.weight'], g['conv1.bias'], s1, true);
      },
    };
  };
}

export function createModel(spec: ModelSpec): Model {
  const u = rng(mix(spec.seed, 0x30de1));
  const he = (n: number, fanIn: number) => Float32Array.from({ length: n }, () => normal(u) * Math.sqrt(2 / fanIn));
  const params: Record<string, Tensor<'float32'>> = {};
  const D = spec.features, C = spec.classes;
  const forward = spec.kind === 'cnn' ? cnn(spec, params, he)
    : spec.kind === 'softmax' ? dense(['fc'], [D, C], params, he, true)
      : dense([...spec.hidden.map((_, i) => `fc${i + 1}`), `fc${spec.hidden.length + 1}`], [D, ...spec.hidden, C], params, he, false);
  const gather = (data: Dataset, idx: ArrayLike<number>) => {
    const x = new Float32Array(idx.length * D), y = new Int32Array(idx.length);
    for (let s = 0; s < idx.length; s++) { x.set(data.x.subarray(idx[s] * D, (idx[s] + 1) * D), s * D); y[s] = data.y[idx[s]]; }
    return { x, y };
  };
  const lastName = spec.kind === 'mlp' ? `fc${spec.hidden.length + 1}` : 'fc';
  const lastInputs = params[`${lastName}.weight`].shape[1];
  return {
    kind: spec.kind,
    params,
    firstWeight: spec.kind === 'cnn' ? 'conv1.weight' : spec.kind === 'mlp' ? 'fc1.weight' : 'fc.weight',
    lastWeight: `${lastName}.weight`,
    lastLayer(p, data, idx) {
      const { x, y } = gather(data, idx);
      const f = forward(p, x, idx.length);
      const delta = softmaxXent(f.z, y, idx.length, C, true, true).dz!;
      return { a: f.last, delta, inputs: lastInputs, classes: C, weight: `${lastName}.weight`, bias: `${lastName}.bias` };
    },
    lossAndGrad(p, data, idx) {
      const { x, y } = gather(data, idx);
      const f = forward(p, x, idx.length);
      const r = softmaxXent(f.z, y, idx.length, C, true);
      const grads: Record<string, Float32Array> = {};
      for (const [n, t] of Object.entries(params)) grads[n] = new Float32Array(t.size);
      f.back(r.dz!, grads);
      return { loss: r.loss, grads };
    },
    evaluate(p, data) {
      let loss = 0, correct = 0;
      for (let lo = 0; lo < data.samples; lo += 1000) {
        const idx = Int32Array.from({ length: Math.min(1000, data.samples - lo) }, (_, i) => lo + i);
        const { x, y } = gather(data, idx);
        const r = softmaxXent(forward(p, x, idx.length).z, y, idx.length, C, false);
        loss += r.loss * idx.length;
        correct += r.correct;
      }
      return { loss: loss / Math.max(1, data.samples), accuracy: correct / Math.max(1, data.samples) };
    },
  };
}
