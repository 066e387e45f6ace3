/**
 * The layers of gradcomp train's models, forward and backward over a batch, the matrix products on
 * the native gemm kernel (the same bits on every ISA and thread count): dense (weight out x in, as
 * PyTorch stores it), 3x3-style convolution (NHWC, valid padding, stride 1; im2col then gemm;
 * weight out x (kh kw in)), ReLU, 2x2 max pooling, and the softmax cross-entropy.
 */
import { gemm } from '../ops/kernels';

/** Y[b, o] = sum_i X[b, i] W[o, i] + bias[o]. */
export function denseForward(x: Float32Array, w: Float32Array, bias: Float32Array, batch: number, inDim: number, outDim: number): Float32Array {
  const y = new Float32Array(batch * outDim);
  for (let b = 0; b < batch; b++) y.set(bias, b * outDim);
  gemm(false, true, batch, outDim, inDim, x, w, y, 1, 1);
  return y;
}

/** Accumulates dW += dYᵀ X and dbias += column sums of dY; returns dX = dY W (unless `noInputGrad`). */
export function denseBackward(x: Float32Array, w: Float32Array, dy: Float32Array, gw: Float32Array, gb: Float32Array,
  batch: number, inDim: number, outDim: number, noInputGrad = false): Float32Array | undefined {
  gemm(true, false, outDim, inDim, batch, dy, x, gw, 1, 1);
  for (let b = 0; b < batch; b++) for (let o = 0; o < outDim; o++) gb[o] += dy[b * outDim + o];
  if (noInputGrad) return undefined;
  const dx = new Float32Array(batch * inDim);
  gemm(false, false, batch, inDim, outDim, dy, w, dx);
  return dx;
}

export function reluForward(x: Float32Array): Float32Array {
  const y = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) y[i] = x[i] > 0 ? x[i] : 0;
  return y;
}

/** dX = dY where the forward output was positive (in place on dy). */
export function reluBackward(y: Float32Array, dy: Float32Array): Float32Array {
  for (let i = 0; i < y.length; i++) if (!(y[i] > 0)) dy[i] = 0;
  return dy;
}

export interface ConvShape { batch: number; h: number; w: number; c: number; k: number; out: number }
const convOut = (s: ConvShape) => [s.h - s.k + 1, s.w - s.k + 1] as const;

/** Calls fn(at, src, len) for every (output position, kernel row): the run of k * c floats at `at` in the im2col matrix that comes from `src` in x (NHWC). */
function patches(s: ConvShape, fn: (at: number, src: number, len: number) => void): void {
  const [oh, ow] = convOut(s), cols = s.k * s.k * s.c, run = s.k * s.c;
  let r = 0;
  for (let b = 0; b < s.batch; b++) {
    for (let y = 0; y < oh; y++) {
      for (let xx = 0; xx < ow; xx++, r++) {
        for (let ky = 0; ky < s.k; ky++) fn(r * cols + ky * run, ((b * s.h + y + ky) * s.w + xx) * s.c, run);
      }
    }
  }
}

/** The im2col matrix of x (NHWC): rows (b, y, x) of the output, columns (ky, kx, c). */
function im2col(x: Float32Array, s: ConvShape): Float32Array {
  const [oh, ow] = convOut(s), col = new Float32Array(s.batch * oh * ow * s.k * s.k * s.c);
  patches(s, (at, src, len) => col.set(x.subarray(src, src + len), at));
  return col;
}

/** Valid convolution, stride 1: Y (NHWC, out channels) = im2col(X) Wᵀ + bias. Returns Y and the im2col matrix (kept for backward). */
export function convForward(x: Float32Array, w: Float32Array, bias: Float32Array, s: ConvShape): { y: Float32Array; col: Float32Array } {
  const [oh, ow] = convOut(s), rows = s.batch * oh * ow, cols = s.k * s.k * s.c;
  const col = im2col(x, s), y = new Float32Array(rows * s.out);
  for (let r = 0; r < rows; r++) y.set(bias, r * s.out);
  gemm(false, true, rows, s.out, cols, col, w, y, 1, 1);
  return { y, col };
}

/** Accumulates dW += dYᵀ col and dbias; returns dX (col2im of dY W) unless `noInputGrad`. */
export function convBackward(col: Float32Array, w: Float32Array, dy: Float32Array, gw: Float32Array, gb: Float32Array, s: ConvShape, noInputGrad = false): Float32Array | undefined {
  const [oh, ow] = convOut(s), rows = s.batch * oh * ow, cols = s.k * s.k * s.c;
  gemm(true, false, s.out, cols, rows, dy, col, gw, 1, 1);
  for (let r = 0; r < rows; r++) for (let o = 0; o < s.out; o++) gb[o] += dy[r * s.out + o];
  if (noInputGrad) return undefined;
  const dcol = new Float32Array(rows * cols);
  gemm(false, false, rows, cols, s.out, dy, w, dcol);
  // col2im: the same runs as im2col, in the same order, added back.
  const dx = new Float32Array(s.batch * s.h * s.w * s.c);
  patches(s, (at, dst, len) => { for (let j = 0; j < len; j++) dx[dst + j] += dcol[at + j]; });
  return dx;
}

/** 2x2 max pooling, stride 2 (floor): Y and the argmax index of each output (for backward). */
export function poolForward(x: Float32Array, batch: number, h: number, w: number, c: number): { y: Float32Array; arg: Int32Array; oh: number; ow: number } {
  const oh = Math.floor(h / 2), ow = Math.floor(w / 2), y = new Float32Array(batch * oh * ow * c), arg = new Int32Array(y.length);
  let o = 0;
  for (let b = 0; b < batch; b++) {
    for (let i = 0; i < oh; i++) {
      for (let j = 0; j < ow; j++) {
        for (let ch = 0; ch < c; ch++, o++) {
          let best = -Infinity, at = -1;
          for (let di = 0; di < 2; di++) for (let dj = 0; dj < 2; dj++) {
            const idx = ((b * h + 2 * i + di) * w + 2 * j + dj) * c + ch;
            if (x[idx] > best || at < 0) { best = x[idx]; at = idx; }
          }
          y[o] = best;
          arg[o] = at;
        }
      }
    }
  }
  return { y, arg, oh, ow };
}

export function poolBackward(dy: Float32Array, arg: Int32Array, inputSize: number): Float32Array {
  const dx = new Float32Array(inputSize);
  for (let o = 0; o < dy.length; o++) dx[arg[o]] += dy[o];
  return dx;
}

/** Mean softmax cross-entropy of logits (batch x classes) against labels; dLogits when asked (divided by the batch unless perExample). */
export function softmaxXent(z: Float32Array, labels: ArrayLike<number>, batch: number, classes: number, withGrad: boolean, perExample = false): { loss: number; correct: number; dz?: Float32Array } {
  const dz = withGrad ? new Float32Array(z.length) : undefined;
  let loss = 0, correct = 0;
  for (let b = 0; b < batch; b++) {
    const row = b * classes;
    let m = -Infinity, arg = 0;
    for (let c = 0; c < classes; c++) if (z[row + c] > m) { m = z[row + c]; arg = c; }
    let s = 0;
    for (let c = 0; c < classes; c++) s += Math.exp(z[row + c] - m);
    const lse = m + Math.log(s), y = labels[b];
    loss += lse - z[row + y];
    if (arg === y) correct++;
    // perExample: each row's own gradient (not divided by the batch), independent of the batch it came in.
    if (dz) for (let c = 0; c < classes; c++) dz[row + c] = (Math.exp(z[row + c] - lse) - (c === y ? 1 : 0)) / (perExample ? 1 : batch);
  }
  return { loss: loss / Math.max(1, batch), correct, dz };
}
