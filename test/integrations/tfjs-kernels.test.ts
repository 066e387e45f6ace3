/**
 * useNativeKernels: the convolution weight gradient and the max-pool gradient that replace
 * tfjs-backend-cpu's, checked against direct formulas (loops over the definition) and against
 * TF.js's own kernels, on fresh random inputs with padding, strides, odd kernel shapes, channels and
 * pooling ties (ReLU zeros); restore() puts TF.js's kernels back. On the wasm backend, which has
 * no convolution weight gradient of its own, the one registered there against the definition and
 * against the cpu backend's, and a CNN trained there.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { useNativeKernels } from '../../lib/integrations/tfjs';

beforeAll(async () => { await tf.setBackend('cpu'); });

const rand = (n: number, zeros = 0) => Float32Array.from({ length: n }, () => (Math.random() < zeros ? 0 : Math.random() * 2 - 1));
function close(a: ArrayLike<number>, b: ArrayLike<number>, tol = 1e-4): void {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) / (1 + Math.abs(b[i])));
  expect(worst).toBeLessThan(tol);
}

// The definition: dW[kh, kw, c, oc] = sum_{n, oh, ow} x[n, oh sh + kh - top, ow sw + kw - left, c] dy[n, oh, ow, oc].
function refFilterGrad(x: Float32Array, xs: number[], dy: Float32Array, ds: number[], f: number[], s: [number, number], top: number, left: number): Float64Array {
  const [N, H, W, C] = xs, [, OH, OW, OC] = ds, [KH, KW] = f, out = new Float64Array(KH * KW * C * OC);
  for (let kh = 0; kh < KH; kh++) for (let kw = 0; kw < KW; kw++) for (let c = 0; c < C; c++) for (let oc = 0; oc < OC; oc++) {
    let acc = 0;
    for (let n = 0; n < N; n++) for (let oh = 0; oh < OH; oh++) for (let ow = 0; ow < OW; ow++) {
      const ih = oh * s[0] + kh - top, iw = ow * s[1] + kw - left;
      if (ih >= 0 && ih < H && iw >= 0 && iw < W) acc += x[((n * H + ih) * W + iw) * C + c] * dy[((n * OH + oh) * OW + ow) * OC + oc];
    }
    out[((kh * KW + kw) * C + c) * OC + oc] = acc;
  }
  return out;
}

// The pool gradient by definition: each output's dy goes to its window's first strict maximum.
function refPoolGrad(x: Float32Array, xs: number[], dy: Float32Array, ds: number[], p: number, s: number, top: number, left: number): Float64Array {
  const [N, H, W, C] = xs, [, OH, OW] = ds, dx = new Float64Array(x.length);
  for (let n = 0; n < N; n++) for (let oh = 0; oh < OH; oh++) for (let ow = 0; ow < OW; ow++) for (let c = 0; c < C; c++) {
    let best = -Infinity, at = -1;
    for (let r = oh * s - top; r < oh * s - top + p; r++) for (let q = ow * s - left; q < ow * s - left + p; q++) {
      if (r < 0 || r >= H || q < 0 || q >= W) continue;
      const i = ((n * H + r) * W + q) * C + c;
      if (x[i] > best) { best = x[i]; at = i; }
    }
    if (at >= 0) dx[at] += dy[((n * OH + oh) * OW + ow) * C + c];
  }
  return dx;
}

const convCases: [string, number[], number[], [number, number], 'valid' | 'same', boolean?][] = [
  ['3x3 valid stride 1, one channel', [5, 12, 12, 1], [3, 3, 1, 8], [1, 1], 'valid'],
  ['3x3 same stride 2, 3 channels', [3, 11, 9, 3], [3, 3, 3, 5], [2, 2], 'same'],
  ['5x3 valid stride (2, 1), 4 channels', [2, 13, 10, 4], [5, 3, 4, 6], [2, 1], 'valid'],
  ['1x1 same, 7 channels', [4, 6, 6, 7], [1, 1, 7, 3], [1, 1], 'same'],
  // im2col over more than its 16 MB scratch: two chunks (TF.js's own kernel takes tens of seconds here, so the definition only).
  ['7x7 same, 64 channels, batch 6 (im2col in chunks)', [6, 16, 16, 64], [7, 7, 64, 2], [1, 1], 'same', false],
];

describe('useNativeKernels', () => {
  test.each(convCases)('conv weight gradient, %s: the definition, and TF.js\'s own kernel', (_, xs, fs, strides, pad, withTfjs = true) => {
    const x = tf.tensor4d(rand(xs.reduce((a, b) => a * b)), xs as [number, number, number, number]);
    const w = tf.tensor4d(rand(fs.reduce((a, b) => a * b)), fs as [number, number, number, number]);
    const y = tf.conv2d(x, w, strides, pad), dy = tf.tensor4d(rand(y.size), y.shape);
    const grad = () => tf.grad((ww: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(x, ww as tf.Tensor4D, strides, pad), dy)))(w).dataSync();
    const theirs = withTfjs ? Float32Array.from(grad()) : null;
    const k = useNativeKernels();
    try {
      expect(k.kernels).toEqual(['Conv2DBackpropFilter/cpu', 'MaxPoolGrad/cpu']);
      const mine = grad();
      const padTop = pad === 'valid' ? 0 : Math.floor(Math.max(0, (y.shape[1] - 1) * strides[0] + fs[0] - xs[1]) / 2);
      const padLeft = pad === 'valid' ? 0 : Math.floor(Math.max(0, (y.shape[2] - 1) * strides[1] + fs[1] - xs[2]) / 2);
      close(mine, refFilterGrad(x.dataSync() as Float32Array, xs, dy.dataSync() as Float32Array, y.shape, fs, strides, padTop, padLeft));
      if (theirs) close(mine, theirs);
    } finally { k.restore(); }
    // restore() puts TF.js's kernel back: the same bits as before.
    if (theirs) expect(Array.from(grad())).toEqual(Array.from(theirs));
  });

  test.each([
    ['2x2 stride 2 valid, ReLU ties', [4, 12, 12, 3], 2, 2, 'valid', 0.6],
    ['3x3 stride 2 same (overlapping windows, padding)', [2, 9, 11, 2], 3, 2, 'same', 0.3],
    ['2x2 stride 1 valid, all zeros in places', [1, 7, 7, 5], 2, 1, 'valid', 0.9],
  ] as const)('max-pool gradient, %s: the definition, and TF.js\'s own kernel', (_, xs, p, s, pad, zeros) => {
    const x = tf.tensor4d(rand((xs as readonly number[]).reduce((a, b) => a * b, 1), zeros), xs as unknown as [number, number, number, number]);
    const y = tf.maxPool(x, p, s, pad), dy = tf.tensor4d(rand(y.size), y.shape);
    const grad = () => tf.grad((xx: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(xx as tf.Tensor4D, p, s, pad), dy)))(x).dataSync();
    const theirs = Float32Array.from(grad());
    const k = useNativeKernels();
    try {
      const mine = grad();
      const top = pad === 'valid' ? 0 : Math.floor(Math.max(0, (y.shape[1] - 1) * s + p - xs[1]) / 2);
      const left = pad === 'valid' ? 0 : Math.floor(Math.max(0, (y.shape[2] - 1) * s + p - xs[2]) / 2);
      close(mine, refPoolGrad(x.dataSync() as Float32Array, xs as unknown as number[], dy.dataSync() as Float32Array, y.shape, p, s, top, left), 1e-6);
      close(mine, theirs, 1e-6);
    } finally { k.restore(); }
  });

  test('a small CNN trains to the same losses with either kernel set (float rounding apart)', () => {
    const run = () => {
      const m = tf.sequential({ layers: [tf.layers.conv2d({ inputShape: [14, 14, 1], filters: 4, kernelSize: 3, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }),
        tf.layers.maxPooling2d({ poolSize: 2 }), tf.layers.flatten(), tf.layers.dense({ units: 3, kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) })] });
      const x = tf.tensor4d(Float32Array.from({ length: 8 * 196 }, (_, i) => Math.sin(i * 0.37)), [8, 14, 14, 1]);
      const y = tf.oneHot(tf.tensor1d([0, 1, 2, 0, 1, 2, 0, 1], 'int32'), 3);
      const opt = tf.train.sgd(0.1), losses: number[] = [];
      for (let t = 0; t < 5; t++) losses.push((opt.minimize(() => tf.losses.softmaxCrossEntropy(y, m.apply(x) as tf.Tensor), true) as tf.Scalar).dataSync()[0]);
      return losses;
    };
    const theirs = run();
    const k = useNativeKernels();
    try { close(run(), theirs, 1e-4); } finally { k.restore(); }
    expect(theirs[4]).toBeLessThan(theirs[0]);
  });

  test('a backend other than cpu or wasm is refused naming the option', () => {
    expect(() => useNativeKernels({ backend: 'webgl' as never })).toThrow(expect.objectContaining({ code: 'ERR_GRADCOMP_OUT_OF_RANGE', param: 'options.backend' }));
    expect(() => useNativeKernels({ backnd: 'wasm' } as never)).toThrow(expect.objectContaining({ code: 'ERR_GRADCOMP_INVALID_ARG_TYPE', param: 'options.backnd' }));
    expect(() => useNativeKernels(null as never)).toThrow(expect.objectContaining({ code: 'ERR_GRADCOMP_INVALID_ARG_TYPE', param: 'options' }));
  });
});

describe('useNativeKernels on the wasm backend', () => {
  beforeAll(async () => { await tf.setBackend('wasm'); });
  afterAll(async () => { await tf.setBackend('cpu'); });

  test.each(convCases.slice(0, 4))('conv weight gradient, %s: the definition, and the cpu backend\'s', (_, xs, fs, strides, pad) => {
    const xv = rand(xs.reduce((a, b) => a * b)), wv = rand(fs.reduce((a, b) => a * b));
    const grad = () => {
      const x = tf.tensor4d(xv, xs as [number, number, number, number]), w = tf.tensor4d(wv, fs as [number, number, number, number]);
      const y = tf.conv2d(x, w, strides, pad);
      const dy = tf.tensor4d(Float32Array.from({ length: y.size }, (_, i) => Math.sin(i * 0.71)), y.shape);
      return { y: y.shape, dy: dy.dataSync() as Float32Array, g: tf.grad((ww: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(x, ww as tf.Tensor4D, strides, pad), dy)))(w).dataSync() };
    };
    // Without gradcomp's kernel the wasm backend cannot compute it at all.
    expect(() => grad()).toThrow(/Conv2DBackpropFilter/);
    const k = useNativeKernels({ backend: 'wasm' });
    let mine: ReturnType<typeof grad>;
    try {
      expect(k.kernels).toEqual(['Conv2DBackpropFilter/wasm']);
      mine = grad();
    } finally { k.restore(); }
    expect(() => grad()).toThrow(/Conv2DBackpropFilter/); // restore() took it away again
    const padTop = pad === 'valid' ? 0 : Math.floor(Math.max(0, (mine.y[1] - 1) * strides[0] + fs[0] - xs[1]) / 2);
    const padLeft = pad === 'valid' ? 0 : Math.floor(Math.max(0, (mine.y[2] - 1) * strides[1] + fs[1] - xs[2]) / 2);
    close(mine.g, refFilterGrad(xv, xs, mine.dy, mine.y, fs, strides, padTop, padLeft));
  });

  test('a small CNN trains on wasm through model.fit, its losses those of the cpu backend to float rounding', async () => {
    const run = async () => {
      const m = tf.sequential({ layers: [tf.layers.conv2d({ inputShape: [14, 14, 1], filters: 4, kernelSize: 3, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }),
        tf.layers.maxPooling2d({ poolSize: 2 }), tf.layers.flatten(), tf.layers.dense({ units: 3, kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) })] });
      m.compile({ optimizer: tf.train.sgd(0.1), loss: 'meanSquaredError' });
      const x = tf.tensor4d(Float32Array.from({ length: 8 * 196 }, (_, i) => Math.sin(i * 0.37)), [8, 14, 14, 1]);
      const y = tf.oneHot(tf.tensor1d([0, 1, 2, 0, 1, 2, 0, 1], 'int32'), 3);
      const h = await m.fit(x, y, { epochs: 5, batchSize: 8, shuffle: false, verbose: 0 });
      return h.history.loss as number[];
    };
    const k = useNativeKernels({ backend: 'wasm' });
    let onWasm: number[];
    try { onWasm = await run(); } finally { k.restore(); }
    await tf.setBackend('cpu');
    const onCpu = await run();
    await tf.setBackend('wasm');
    close(onWasm, onCpu, 1e-4);
    expect(onWasm[4]).toBeLessThan(onWasm[0]);
  });

  test('a channelsFirst weight gradient is refused with a coded error (wasm has no kernel to hand it to)', () => {
    // wasm's forward Conv2D refuses channelsFirst itself, so the kernel is called directly.
    const k = useNativeKernels({ backend: 'wasm' });
    try {
      const x = tf.randomNormal([1, 2, 6, 6]), dy = tf.randomNormal([1, 4, 4, 4]);
      expect(() => tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, { strides: 1, pad: 'valid', dataFormat: 'NCHW', dimRoundingMode: undefined, filterShape: [3, 3, 2, 4] } as never))
        .toThrow(expect.objectContaining({ code: 'ERR_GRADCOMP_BACKEND_UNAVAILABLE' }));
    } finally { k.restore(); }
  });
});
