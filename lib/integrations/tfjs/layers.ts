/**
 * DropIT layers (Chen et al., "DropIT: Dropping Intermediate Tensors for Memory-Efficient DNN
 * Training", ICLR 2023) for TF.js: dropitDense and dropitConv2d compute what tf.layers.dense and
 * tf.layers.conv2d compute, but in training the input they keep for the backward pass is
 * DropIT-packed by gradcomp's kernel (the top (1 - gamma) of |x|, bitmap or index layout) instead
 * of the dense tensor. The weight gradient is computed from the kept entries (exact for those,
 * zero contribution from the dropped ones); the input gradient needs only the weights and is
 * exact. gamma 0 keeps every entry, so the layer computes exactly the plain layer's gradients.
 *
 * The rest of the config is read by the tf.layers layer each mirrors (activations, initializers,
 * regularizers and constraints by name, instance or saved form), so it means what it means there
 * and a saved model loads back with tf.loadLayersModel.
 *
 * Bytes held for the backward pass per layer: `layer.backwardBytes` ({ dense, kept }) after each
 * training forward pass, and dropitMemory(model) for the whole model.
 */
import { dropitPackSync, dropitUnpackSync } from '../../ops/dropit';
import { GradcompError, rangeError, typeError } from '../../native/errors';
import { tfCore, tfLayers } from './tf';
import type * as TfCore from '@tensorflow/tfjs-core';
import type * as TfLayers from '@tensorflow/tfjs-layers';

export interface DropitBytes { dense: number; kept: number }

interface Common {
  /** The fraction of input entries dropped for the backward pass, in [0, 1) (the paper's gamma; 0 keeps all). */
  gamma: number;
  /**
   * Over what the top (1 - gamma) of |x| is taken: 'tensor' (the default, as in the paper) over
   * the whole batch at once; 'sample' over each sample's entries apart, so every sample keeps the
   * same share and a dim sample is never dropped whole.
   */
  selection?: 'tensor' | 'sample';
  /** Any activation tf.layers takes ('relu', 'gelu', ...). */
  activation?: string;
  useBias?: boolean;
  /** As in tf.layers: a name ('glorotUniform', the default; 'heNormal', ...), an initializer, or its saved form. */
  kernelInitializer?: unknown;
  /** Seed of a kernel initializer given by name (or the default), so the initial weights repeat. */
  seed?: number;
  biasInitializer?: unknown;
  kernelRegularizer?: unknown;
  biasRegularizer?: unknown;
  kernelConstraint?: unknown;
  biasConstraint?: unknown;
  name?: string;
  inputShape?: number[];
  batchInputShape?: number[];
  batchSize?: number;
  trainable?: boolean;
  [option: string]: unknown;
}
export interface DropitDenseConfig extends Common { units: number }
export interface DropitConv2dConfig extends Common {
  filters: number;
  kernelSize: number | [number, number];
  strides?: number | [number, number];
  padding?: 'valid' | 'same';
  /** 'channelsLast' only (NHWC). */
  dataFormat?: 'channelsLast';
  /** 1 only. */
  dilationRate?: number | [number, number];
}

function checkCommon(c: Common, what: string): void {
  if (c === null || typeof c !== 'object') throw typeError('config', `a ${what} config`, c);
  if (typeof c.gamma !== 'number' || !(c.gamma >= 0 && c.gamma < 1)) throw rangeError('config.gamma', 'a number in [0, 1)', c.gamma);
  if (c.selection !== undefined && c.selection !== 'tensor' && c.selection !== 'sample') throw typeError('config.selection', "'tensor' or 'sample'", c.selection);
}

/**
 * Packs x (a tensor's values), whole or each sample (first axis) apart, and returns the dense copy
 * rebuilt for the backward pass later, plus the bytes.
 */
function packer(x: TfCore.Tensor, c: Common, samples: number): { bytes: DropitBytes; rebuild(): Float32Array } {
  const values = x.dataSync() as Float32Array;
  const rows = c.selection === 'sample' ? samples : 1, per = rows > 0 ? values.length / rows : 0;
  const packs = Array.from({ length: rows }, (_, r) => dropitPackSync(values.subarray(r * per, (r + 1) * per), c.gamma));
  return {
    bytes: { dense: 4 * values.length, kept: packs.reduce((a, p) => a + p.byteLength, 0) },
    rebuild: () => {
      const out = new Float32Array(values.length);
      packs.forEach((p, r) => dropitUnpackSync(p, out.subarray(r * per, (r + 1) * per)));
      return out;
    },
  };
}

/** What a tf.layers layer keeps from its config (public fields of tfjs-layers' Dense and Conv2D). */
interface Mirror {
  activation: { apply(x: TfCore.Tensor): TfCore.Tensor };
  kernelInitializer: unknown; biasInitializer: unknown;
  kernelRegularizer?: unknown; biasRegularizer?: unknown;
  kernelConstraint?: unknown; biasConstraint?: unknown;
  getConfig(): TfCore.serialization.ConfigDict;
}

/**
 * The tf.layers layer with the same config (never built: it holds no weights), which reads every
 * option as TF.js does. `seed` goes into a kernel initializer given by name or left to the default
 * (glorotUniform, tf.layers' own); TF.js's complaints become a coded error.
 */
function mirror(make: (c: object) => unknown, config: Common, what: string, name: string): Mirror {
  const L = tfLayers();
  const { gamma: _g, selection: _sel, seed, inputShape: _i, batchInputShape: _b, batchSize: _s, name: _n, ...rest } = config;
  let kernelInitializer = rest.kernelInitializer;
  if (seed !== undefined && (typeof seed !== 'number' || !Number.isInteger(seed))) throw typeError('config.seed', 'an integer', seed);
  if (kernelInitializer === undefined || typeof kernelInitializer === 'string') {
    const factory = (L.initializers as unknown as Record<string, ((a: object) => unknown) | undefined>)[(kernelInitializer as string | undefined) ?? 'glorotUniform'];
    if (factory) kernelInitializer = factory(seed === undefined ? {} : { seed });
    else if (seed !== undefined) throw typeError('config.seed', `a kernelInitializer named as in tf.initializers (glorotUniform, heNormal, ...) to seed, not '${kernelInitializer}'`, seed);
  }
  if (config.activityRegularizer != null) throw typeError('config.activityRegularizer', 'none (TF.js layers cannot apply one either)', config.activityRegularizer);
  const full: Record<string, unknown> = { ...rest, kernelInitializer, name: `${name}_config` };
  try {
    return make(full) as Mirror;
  } catch (e) {
    // The option TF.js refused: the one whose removal lets the layer be made.
    const culprit = Object.keys(rest).find((k) => {
      try { make({ ...full, [k]: undefined }); return true; } catch { return false; }
    });
    throw new GradcompError('ERR_GRADCOMP_INVALID_ARG', `${what}: ${(e as Error).message.split('\n')[0]}`, culprit ? `config.${culprit}` : 'config');
  }
}

/** The mirror's config, less what the layer itself writes (name, trainable, shapes). */
function mirroredConfig(m: Mirror): TfCore.serialization.ConfigDict {
  const { name: _n, trainable: _t, batchInputShape: _b, dtype: _d, ...c } = m.getConfig();
  return c;
}

let classes: { Dense: new (c: DropitDenseConfig) => TfCore.serialization.Serializable; Conv: new (c: DropitConv2dConfig) => TfCore.serialization.Serializable } | undefined;

function define(): NonNullable<typeof classes> {
  if (classes) return classes;
  const tf = tfCore(), L = tfLayers();
  type Kw = { training?: boolean };
  const Layer = L.layers.Layer as unknown as new (c: object) => {
    addWeight(name: string, shape: number[], dtype: string, init: unknown, reg?: unknown, trainable?: boolean, constraint?: unknown): { read(): TfCore.Tensor };
    built: boolean; name: string;
    getConfig(): TfCore.serialization.ConfigDict;
  };

  class DropitDense extends Layer {
    static className = 'DropitDense';
    readonly config: DropitDenseConfig;
    readonly mirror: Mirror;
    backwardBytes: DropitBytes = { dense: 0, kept: 0 };
    kernel?: { read(): TfCore.Tensor };
    bias?: { read(): TfCore.Tensor };
    constructor(config: DropitDenseConfig) {
      checkCommon(config, 'dropitDense');
      if (!Number.isInteger(config.units) || config.units < 1) throw rangeError('config.units', 'an integer >= 1', config.units);
      super(config);
      this.config = config;
      this.mirror = mirror((c) => L.layers.dense(c as never), config, 'dropitDense', this.name);
    }
    build(inputShape: number[] | number[][]): void {
      const s = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as number[];
      const inDim = s[s.length - 1], m = this.mirror;
      this.kernel = this.addWeight('kernel', [inDim, this.config.units], 'float32', m.kernelInitializer, m.kernelRegularizer, true, m.kernelConstraint);
      if (this.config.useBias !== false) this.bias = this.addWeight('bias', [this.config.units], 'float32', m.biasInitializer, m.biasRegularizer, true, m.biasConstraint);
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
          const cfg = this.config, record = (b: DropitBytes) => { this.backwardBytes = b; };
          const f = tf.customGrad(((xx: TfCore.Tensor2D, kk: TfCore.Tensor2D, bb: TfCore.Tensor, save: (t: TfCore.Tensor[]) => void) => {
            const p = packer(xx, cfg, x.shape[0]);
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
        return this.mirror.activation.apply(y);
      });
    }
    override getConfig(): TfCore.serialization.ConfigDict {
      return { ...mirroredConfig(this.mirror), ...super.getConfig(), gamma: this.config.gamma, ...(this.config.selection ? { selection: this.config.selection } : {}) };
    }
  }

  class DropitConv2d extends Layer {
    static className = 'DropitConv2d';
    readonly config: DropitConv2dConfig;
    readonly mirror: Mirror;
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
      if (config.dataFormat !== undefined && config.dataFormat !== 'channelsLast') throw typeError('config.dataFormat', "'channelsLast' (NHWC)", config.dataFormat);
      if (config.dilationRate !== undefined && pair(config.dilationRate, 'dilationRate').some((d) => d !== 1)) throw rangeError('config.dilationRate', '1 (TF.js has no gradient for dilated convolutions)', config.dilationRate);
      super(config);
      this.config = config;
      this.mirror = mirror((c) => L.layers.conv2d(c as never), config, 'dropitConv2d', this.name);
      this.#k = k;
      this.#s = s;
    }
    build(inputShape: number[] | number[][]): void {
      const s = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as number[];
      const inC = s[s.length - 1], m = this.mirror;
      this.kernel = this.addWeight('kernel', [this.#k[0], this.#k[1], inC, this.config.filters], 'float32', m.kernelInitializer, m.kernelRegularizer, true, m.kernelConstraint);
      if (this.config.useBias !== false) this.bias = this.addWeight('bias', [this.config.filters], 'float32', m.biasInitializer, m.biasRegularizer, true, m.biasConstraint);
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
          const cfg = this.config, record = (b: DropitBytes) => { this.backwardBytes = b; };
          const f = tf.customGrad(((xx: TfCore.Tensor4D, kk: TfCore.Tensor4D, bb: TfCore.Tensor, save: (t: TfCore.Tensor[]) => void) => {
            const p = packer(xx, cfg, xx.shape[0]);
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
        return this.mirror.activation.apply(y);
      });
    }
    override getConfig(): TfCore.serialization.ConfigDict {
      return { ...mirroredConfig(this.mirror), ...super.getConfig(), gamma: this.config.gamma, ...(this.config.selection ? { selection: this.config.selection } : {}) };
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
