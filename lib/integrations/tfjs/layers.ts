/**
 * DropIT layers (Chen et al., "DropIT: Dropping Intermediate Tensors for Memory-Efficient DNN
 * Training", ICLR 2023) for TF.js: dropitDense and dropitConv2d compute what tf.layers.dense and
 * tf.layers.conv2d compute, but in training the input they keep for the backward pass is
 * DropIT-packed by gradcomp's kernel (the top (1 - gamma) of |x|, bitmap or index layout) instead
 * of the dense tensor. The weight gradient is computed from the kept entries (exact for those,
 * zero contribution from the dropped ones); the input gradient needs only the weights and is
 * exact. gamma 0 keeps every entry, so the layer computes exactly the plain layer's gradients.
 *
 * Bytes held for the backward pass per layer: `layer.backwardBytes` ({ dense, kept }) after each
 * training forward pass, and dropitMemory(model) for the whole model.
 */
import { dropitPackSync, dropitUnpackSync } from '../../ops/dropit';
import { rangeError, typeError } from '../../native/errors';
import { tfCore, tfLayers } from './tf';
import type * as TfCore from '@tensorflow/tfjs-core';
import type * as TfLayers from '@tensorflow/tfjs-layers';

export interface DropitBytes { dense: number; kept: number }

interface Common {
  /** The fraction of input entries dropped for the backward pass, in [0, 1) (the paper's gamma; 0 keeps all). */
  gamma: number;
  activation?: 'linear' | 'relu' | 'sigmoid' | 'tanh' | 'softmax';
  useBias?: boolean;
  kernelInitializer?: 'glorotUniform' | 'glorotNormal' | 'heUniform' | 'heNormal' | 'zeros';
  /** Seed of the kernel initializer. */
  seed?: number;
  name?: string;
  inputShape?: number[];
  batchInputShape?: number[];
  trainable?: boolean;
}
export interface DropitDenseConfig extends Common { units: number }
export interface DropitConv2dConfig extends Common {
  filters: number;
  kernelSize: number | [number, number];
  strides?: number | [number, number];
  padding?: 'valid' | 'same';
}

function activate(tf: typeof TfCore, name: Common['activation'], y: TfCore.Tensor): TfCore.Tensor {
  switch (name ?? 'linear') {
    case 'linear': return y;
    case 'relu': return tf.relu(y);
    case 'sigmoid': return tf.sigmoid(y);
    case 'tanh': return tf.tanh(y);
    case 'softmax': return tf.softmax(y);
    default: throw typeError('config.activation', "'linear', 'relu', 'sigmoid', 'tanh' or 'softmax'", name);
  }
}

function checkCommon(c: Common, what: string): void {
  if (c === null || typeof c !== 'object') throw typeError('config', `a ${what} config`, c);
  if (typeof c.gamma !== 'number' || !(c.gamma >= 0 && c.gamma < 1)) throw rangeError('config.gamma', 'a number in [0, 1)', c.gamma);
}

/** Packs x (a tensor's values) and returns the dense copy rebuilt for the backward pass later, plus the bytes. */
function packer(x: TfCore.Tensor, gamma: number): { bytes: DropitBytes; rebuild(): Float32Array } {
  const values = x.dataSync() as Float32Array;
  const packed = dropitPackSync(values, gamma);
  return { bytes: { dense: 4 * values.length, kept: packed.byteLength }, rebuild: () => dropitUnpackSync(packed) };
}

const INITIALIZERS = ['glorotUniform', 'glorotNormal', 'heUniform', 'heNormal', 'zeros'] as const;
/** The kernel initializer (tf.layers' default, glorotUniform; `seed` makes it reproducible). */
function initializer(L: typeof import('@tensorflow/tfjs-layers'), c: Common): unknown {
  const name = c.kernelInitializer ?? 'glorotUniform', seed = c.seed;
  switch (name) {
    case 'glorotUniform': return L.initializers.glorotUniform({ seed });
    case 'glorotNormal': return L.initializers.glorotNormal({ seed });
    case 'heUniform': return L.initializers.heUniform({ seed });
    case 'heNormal': return L.initializers.heNormal({ seed });
    case 'zeros': return L.initializers.zeros();
    default: throw typeError('config.kernelInitializer', INITIALIZERS.map((x) => `'${x}'`).join(', '), name);
  }
}

let classes: { Dense: new (c: DropitDenseConfig) => TfCore.serialization.Serializable; Conv: new (c: DropitConv2dConfig) => TfCore.serialization.Serializable } | undefined;

function define(): NonNullable<typeof classes> {
  if (classes) return classes;
  const tf = tfCore(), L = tfLayers();
  type Kw = { training?: boolean };
  const Layer = L.layers.Layer as unknown as new (c: object) => {
    addWeight(name: string, shape: number[], dtype: string, init: unknown, reg?: unknown, trainable?: boolean): { read(): TfCore.Tensor };
    built: boolean; name: string;
    getConfig(): TfCore.serialization.ConfigDict;
  };

  class DropitDense extends Layer {
    static className = 'DropitDense';
    readonly config: DropitDenseConfig;
    backwardBytes: DropitBytes = { dense: 0, kept: 0 };
    kernel?: { read(): TfCore.Tensor };
    bias?: { read(): TfCore.Tensor };
    constructor(config: DropitDenseConfig) {
      checkCommon(config, 'dropitDense');
      if (!Number.isInteger(config.units) || config.units < 1) throw rangeError('config.units', 'an integer >= 1', config.units);
      super(config);
      this.config = config;
    }
    build(inputShape: number[] | number[][]): void {
      const s = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as number[];
      const inDim = s[s.length - 1];
      this.kernel = this.addWeight('kernel', [inDim, this.config.units], 'float32', initializer(L, this.config));
      if (this.config.useBias !== false) this.bias = this.addWeight('bias', [this.config.units], 'float32', L.initializers.zeros());
      this.built = true;
    }
    computeOutputShape(inputShape: number[]): number[] { return [...inputShape.slice(0, -1), this.config.units]; }
    call(inputs: TfCore.Tensor | TfCore.Tensor[], kwargs: Kw): TfCore.Tensor {
      return tf.tidy(() => {
        const x = Array.isArray(inputs) ? inputs[0] : inputs;
        const k = this.kernel!.read(), b = this.bias?.read();
        const x2 = x.rank === 2 ? x : tf.reshape(x, [-1, x.shape[x.rank - 1]]);
        let y: TfCore.Tensor;
        if (!kwargs?.training) {
          y = tf.matMul(x2, k);
          if (b) y = tf.add(y, b);
        } else {
          const gamma = this.config.gamma, record = (b: DropitBytes) => { this.backwardBytes = b; };
          const f = tf.customGrad(((xx: TfCore.Tensor2D, kk: TfCore.Tensor2D, bb: TfCore.Tensor, save: (t: TfCore.Tensor[]) => void) => {
            const p = packer(xx, gamma);
            record(p.bytes);
            save([kk]);
            const shape = xx.shape;
            return {
              value: tf.add(tf.matMul(xx, kk), bb),
              gradFunc: (dy: TfCore.Tensor2D, saved: TfCore.Tensor[]) => {
                const kept = tf.tensor2d(p.rebuild(), shape);
                return [tf.matMul(dy, saved[0] as TfCore.Tensor2D, false, true), tf.matMul(kept, dy, true, false), tf.sum(dy, 0)];
              },
            };
          }) as never) as unknown as (a: TfCore.Tensor, b: TfCore.Tensor, c: TfCore.Tensor) => TfCore.Tensor;
          y = f(x2, k, b ?? tf.zeros([this.config.units]));
        }
        if (x.rank !== 2) y = tf.reshape(y, [...x.shape.slice(0, -1), this.config.units]);
        return activate(tf, this.config.activation, y);
      });
    }
    override getConfig(): TfCore.serialization.ConfigDict {
      const { inputShape: _i, batchInputShape: _b, ...c } = this.config;
      return { ...super.getConfig(), ...c } as TfCore.serialization.ConfigDict;
    }
  }

  class DropitConv2d extends Layer {
    static className = 'DropitConv2d';
    readonly config: DropitConv2dConfig;
    backwardBytes: DropitBytes = { dense: 0, kept: 0 };
    kernel?: { read(): TfCore.Tensor };
    bias?: { read(): TfCore.Tensor };
    readonly #k: [number, number];
    readonly #s: [number, number];
    constructor(config: DropitConv2dConfig) {
      checkCommon(config, 'dropitConv2d');
      if (!Number.isInteger(config.filters) || config.filters < 1) throw rangeError('config.filters', 'an integer >= 1', config.filters);
      const pair = (v: unknown, name: string, def?: number): [number, number] => {
        const a = v === undefined ? def : v;
        const p = (Array.isArray(a) ? a : [a, a]) as number[];
        if (p.length !== 2 || !p.every((x) => Number.isInteger(x) && x >= 1)) throw rangeError(`config.${name}`, 'an integer >= 1 or a pair of them', v);
        return [p[0], p[1]];
      };
      const k = pair(config.kernelSize, 'kernelSize'), s = pair(config.strides, 'strides', 1);
      if (config.padding !== undefined && config.padding !== 'valid' && config.padding !== 'same') throw typeError('config.padding', "'valid' or 'same'", config.padding);
      super(config);
      this.config = config;
      this.#k = k;
      this.#s = s;
    }
    build(inputShape: number[] | number[][]): void {
      const s = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as number[];
      const inC = s[s.length - 1];
      this.kernel = this.addWeight('kernel', [this.#k[0], this.#k[1], inC, this.config.filters], 'float32', initializer(L, this.config));
      if (this.config.useBias !== false) this.bias = this.addWeight('bias', [this.config.filters], 'float32', L.initializers.zeros());
      this.built = true;
    }
    computeOutputShape(inputShape: number[]): number[] {
      const pad = this.config.padding ?? 'valid';
      const out = (n: number, k: number, s: number) => (n === null ? n : pad === 'same' ? Math.ceil(n / s) : Math.floor((n - k) / s) + 1);
      return [inputShape[0], out(inputShape[1], this.#k[0], this.#s[0]), out(inputShape[2], this.#k[1], this.#s[1]), this.config.filters];
    }
    call(inputs: TfCore.Tensor | TfCore.Tensor[], kwargs: Kw): TfCore.Tensor {
      return tf.tidy(() => {
        const x = (Array.isArray(inputs) ? inputs[0] : inputs) as TfCore.Tensor4D;
        const k = this.kernel!.read() as TfCore.Tensor4D, b = this.bias?.read();
        const strides = this.#s, pad = this.config.padding ?? 'valid';
        let y: TfCore.Tensor;
        if (!kwargs?.training) {
          y = tf.conv2d(x, k, strides, pad);
          if (b) y = tf.add(y, b);
        } else {
          const gamma = this.config.gamma, record = (b: DropitBytes) => { this.backwardBytes = b; };
          const f = tf.customGrad(((xx: TfCore.Tensor4D, kk: TfCore.Tensor4D, bb: TfCore.Tensor, save: (t: TfCore.Tensor[]) => void) => {
            const p = packer(xx, gamma);
            record(p.bytes);
            save([kk]);
            const shape = xx.shape;
            return {
              value: tf.add(tf.conv2d(xx, kk, strides, pad), bb),
              gradFunc: (dy: TfCore.Tensor4D, saved: TfCore.Tensor[]) => {
                const kept = tf.tensor4d(p.rebuild(), shape);
                const filter = saved[0] as TfCore.Tensor4D;
                const attrs = { strides, pad, dataFormat: 'NHWC', dimRoundingMode: undefined };
                const dx = tf.engine().runKernel('Conv2DBackpropInput', { dy, filter }, { ...attrs, inputShape: shape } as never) as TfCore.Tensor;
                const dk = tf.engine().runKernel('Conv2DBackpropFilter', { x: kept, dy }, { ...attrs, filterShape: filter.shape } as never) as TfCore.Tensor;
                return [dx, dk, tf.sum(dy, [0, 1, 2])];
              },
            };
          }) as never) as unknown as (a: TfCore.Tensor, b: TfCore.Tensor, c: TfCore.Tensor) => TfCore.Tensor;
          y = f(x, k, b ?? tf.zeros([this.config.filters]));
        }
        return activate(tf, this.config.activation, y);
      });
    }
    override getConfig(): TfCore.serialization.ConfigDict {
      const { inputShape: _i, batchInputShape: _b, ...c } = this.config;
      return { ...super.getConfig(), ...c } as TfCore.serialization.ConfigDict;
    }
  }

  tf.serialization.registerClass(DropitDense as never);
  tf.serialization.registerClass(DropitConv2d as never);
  classes = { Dense: DropitDense as never, Conv: DropitConv2d as never };
  return classes;
}

/** A tf.layers.dense that keeps a DropIT-packed input for the backward pass. */
export function dropitDense(config: DropitDenseConfig): TfLayers.layers.Layer {
  return new (define().Dense)(config) as unknown as TfLayers.layers.Layer;
}

/** A tf.layers.conv2d (NHWC) that keeps a DropIT-packed input for the backward pass. */
export function dropitConv2d(config: DropitConv2dConfig): TfLayers.layers.Layer {
  return new (define().Conv)(config) as unknown as TfLayers.layers.Layer;
}

/** Per layer, the bytes held for the backward pass by the last training forward pass: the dense input, and what DropIT keeps. */
export function dropitMemory(model: { layers: unknown[] }): { layer: string; dense: number; kept: number }[] {
  if (!model || !Array.isArray(model.layers)) throw typeError('model', 'a tf.LayersModel', model);
  return model.layers.filter((l): l is { name: string; backwardBytes: DropitBytes } => typeof (l as { backwardBytes?: unknown }).backwardBytes === 'object')
    .map((l) => ({ layer: l.name, ...l.backwardBytes }));
}
