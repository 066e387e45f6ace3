/**
 * gradcomp/tfjs: the optimizer inside plain model.fit (every rank bit-identical, the same
 * trajectory as createDistributedOptimizer driven by hand), broadcastWeights and the identical-start
 * check, optimizer checkpoints through getWeights/setWeights, DropIT layers against the plain
 * layers and a reference weight gradient, the IDX and Fashion-MNIST loaders, and the example.
 */
import { execFile, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import * as tf from '@tensorflow/tfjs';
import { createDistributedOptimizer, init, Communicator } from '../../lib';
import { createTfjsOptimizer, dropitConv2d, dropitDense, dropitMemory, dropitSummary, loadFashionMnist, readIdx } from '../../lib/integrations/tfjs';
import { dropitKeepCount, dropitPackedBytes } from '../../lib/ops/dropit';
import { encodeIdx } from '../helpers/idx';
import { MPI_ENV, mpiSkipReason } from '../helpers/mpi';

const root = path.resolve(__dirname, '..', '..');
const cli = path.join(root, 'dist', 'lib', 'cli', 'main.js');
let comm: Communicator;
beforeAll(async () => { await tf.setBackend('cpu'); comm = await init(); });
afterAll(async () => { await comm.close(); });

function gradcompRun(n: number, script: string, args: string[], timeout = 240000): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => execFile(process.execPath, [cli, 'run', '-n', String(n), script, ...args], { cwd: root, timeout, maxBuffer: 1 << 24 },
    (e, out, err) => resolve({ code: e ? (typeof e.code === 'number' ? e.code : 1) : 0, out, err })));
}
const rows = (out: string) => out.trim().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
const fixture = path.join(__dirname, 'fixtures', 'tfjs-fit.js');

describe('createTfjsOptimizer in model.fit across ranks', () => {
  test.each([
    ['sync', {}], ['ef-sgd', { compressor: { type: 'topk', ratio: 0.05 } }], ['powersgd', { compressor: { type: 'powersgd', rank: 2 } }],
    ['local', { period: 3 }], ['double-squeeze', {}], ['sync', { compressor: { type: 'qsgd', levels: 7 } }],
  ])('%s %j: learns, every rank ends bit-identical, bytes counted', async (algorithm, extra) => {
    const r = await gradcompRun(3, fixture, [JSON.stringify({ algorithm, ...extra, steps: 6 })]);
    expect(r.err.split('\n').filter((l) => /rror/.test(l))).toEqual([]);
    const out = rows(r.out);
    expect(out).toHaveLength(3);
    for (const o of out) {
      expect(o.error).toBeUndefined();
      expect(o.digest).toBe(out[0].digest);
      expect(o.steps).toBe(12);
      const [first, second] = o.losses as number[];
      expect(second).toBeLessThan(first);
      const s = o.stats as { bytesSent: number; denseBytes: number };
      expect(s.bytesSent).toBeGreaterThan(0);
      if ((extra as { compressor?: unknown }).compressor || algorithm !== 'sync') expect(s.bytesSent).toBeLessThan(s.denseBytes);
    }
  }, 240000);

  const mpiWhy = mpiSkipReason();
  (mpiWhy ? test.skip : test)(`under mpirun the same weights as under gradcomp run, bit for bit; the lent communicator refuses collectives until dispose()${mpiWhy ? ` (skipped: ${mpiWhy})` : ''}`, async () => {
    for (const cfg of [{ algorithm: 'ef-sgd', compressor: { type: 'topk', ratio: 0.05 } }, { algorithm: 'sync' }]) {
      const arg = JSON.stringify({ ...cfg, steps: 4, lentCheck: true });
      const local = rows((await gradcompRun(3, fixture, [arg])).out);
      const m = await new Promise<{ out: string; err: string }>((resolve) => execFile('mpirun', ['-np', '3', process.execPath, fixture, arg], { cwd: root, env: MPI_ENV, timeout: 240000, maxBuffer: 1 << 24 },
        (_e, out, err) => resolve({ out, err })));
      const mpi = rows(m.out);
      expect(mpi.map((o) => o.rank).sort()).toEqual([0, 1, 2]);
      // A script that just ends (no dispose(), no comm.close()) exits under mpirun too.
      const ends = await new Promise<{ code: number; out: string }>((resolve) => execFile('mpirun', ['-np', '2', process.execPath, fixture, JSON.stringify({ ...cfg, steps: 2, noDispose: true })],
        { cwd: root, env: MPI_ENV, timeout: 90000 }, (e, out) => resolve({ code: e ? 1 : 0, out })));
      expect(ends.code).toBe(0);
      expect(rows(ends.out)).toHaveLength(2);
      for (const o of [...local, ...mpi]) {
        expect(o.error).toBeUndefined();
        expect(o.digest).toBe(local[0].digest);
        expect(o.steps).toBe(8);
        expect(o.whileLent).toBe('ERR_GRADCOMP_COMM_LENT');
        expect(o.afterDispose).toBe(3);
      }
    }
  }, 240000);

  test('ranks that start from different weights are refused on the first step, naming the weight; broadcastWeights fixes it', async () => {
    const r = await gradcompRun(2, fixture, [JSON.stringify({ algorithm: 'sync', steps: 2, broadcast: false })]);
    const out = rows(r.out);
    expect(out).toHaveLength(2);
    for (const o of out) expect(o.error).toMatchObject({ code: 'ERR_GRADCOMP_PARAMS_MISMATCH', param: expect.stringMatching(/^params\.dense_\w+\/kernel$/) });
  }, 120000);

  test('broadcastWeights refuses models that differ between ranks, on every rank: a weight of another shape (named), or another count', async () => {
    for (const [cfg, says] of [[{ rank1Units: 31 }, /weight 0 has another shape or dtype on rank 1 than on rank 0 \(here, on rank \d: dense_\w+\/kernel, float32 \[12, 3[12]\]\)/],
      [{ rank1Extra: true }, /rank 0 has 4 weights, rank 1 6/]] as const) {
      const r = await gradcompRun(3, fixture, [JSON.stringify({ algorithm: 'sync', steps: 2, ...cfg })]);
      const out = rows(r.out);
      expect(out.map((o) => o.rank).sort()).toEqual([0, 1, 2]);
      for (const o of out) expect(o.error).toMatchObject({ code: 'ERR_GRADCOMP_INVALID_ARG', param: 'model', message: expect.stringMatching(says) });
    }
  }, 120000);

  test('a script that ends without dispose() or comm.close() exits (the step thread does not hold the process)', async () => {
    const r = await gradcompRun(2, fixture, [JSON.stringify({ algorithm: 'ef-sgd', compressor: { type: 'topk', ratio: 0.1 }, steps: 2, noDispose: true })], 90000);
    expect(r.code).toBe(0);
    expect(rows(r.out)).toHaveLength(2);
  }, 120000);

  test('the MLP trains on the wasm backend too', async () => {
    const r = await gradcompRun(2, fixture, [JSON.stringify({ algorithm: 'ef-sgd', compressor: { type: 'topk', ratio: 0.1 }, steps: 4, backend: 'wasm' })]);
    const out = rows(r.out);
    expect(out).toHaveLength(2);
    expect(out[0].digest).toBe(out[1].digest);
  }, 120000);
});

describe('one rank', () => {
  const model = (seed: number) => tf.sequential({ layers: [
    tf.layers.dense({ inputShape: [6], units: 16, activation: 'tanh', kernelInitializer: tf.initializers.glorotUniform({ seed }) }),
    tf.layers.dense({ units: 3, kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 1 }) })] });
  const batch = (t: number) => ({ x: tf.randomNormal([16, 6], 0, 1, 'float32', t + 1), y: tf.randomNormal([16, 3], 0, 1, 'float32', 50 + t) });
  const loss = (m: tf.Sequential, t: number) => () => { const { x, y } = batch(t); return tf.losses.meanSquaredError(y, m.predict(x) as tf.Tensor) as tf.Scalar; };

  // Trains a and b from the same start: a through createTfjsOptimizer's minimize(), b through
  // createDistributedOptimizer driven by hand with tf.variableGrads; lrs[t], where given, is step t's
  // rate (set as optimizer.learningRate on a, as the base optimizer's lr on b). True when they end
  // bit for bit the same.
  const sameTrajectory = async (opts: Record<string, unknown>, lrs?: number[]) => {
    const a = model(3), b = model(3);
    const optA = createTfjsOptimizer({ comm, ...opts } as never);
    for (let t = 0; t < 8; t++) {
      if (lrs) optA.learningRate = lrs[t];
      optA.minimize(loss(a, t));
    }
    optA.dispose();
    const optB = createDistributedOptimizer({ comm, ...opts, shapes: Object.fromEntries(b.trainableWeights.map((w) => [(w as unknown as { val: tf.Variable }).val.name, w.shape])), checkIdentical: false } as never);
    for (let t = 0; t < 8; t++) {
      const { grads } = tf.variableGrads(loss(b, t));
      const params: Record<string, Float32Array> = {}, g: Record<string, Float32Array> = {};
      for (const v of b.trainableWeights) {
        const name = (v as unknown as { val: tf.Variable }).val.name;
        params[name] = Float32Array.from(v.read().dataSync() as Float32Array);
        g[name] = Float32Array.from(grads[name].dataSync() as Float32Array);
      }
      if (lrs) optB.optimizer.lr = lrs[t];
      await optB.step(params, g);
      for (const v of b.trainableWeights) v.write(tf.tensor(params[(v as unknown as { val: tf.Variable }).val.name], v.shape as number[]));
    }
    return a.getWeights().every((w, i) => Buffer.from((w.dataSync() as Float32Array).buffer).equals(Buffer.from((b.getWeights()[i].dataSync() as Float32Array).buffer)));
  };
  const efTopk = { algorithm: 'ef-sgd', compressor: { type: 'topk', ratio: 0.2 }, optimizer: { type: 'sgd', lr: 0.05, momentum: 0.9 }, minCompressSize: 8 };

  test('minimize() gives exactly the trajectory of createDistributedOptimizer driven by hand with tf.variableGrads', async () => {
    expect(await sameTrajectory(efTopk)).toBe(true);
  });

  test('optimizer.learningRate set between steps (a schedule, as a callback would) is the rate each step uses', async () => {
    // A cosine decay from 0.05, and a random rate per step.
    const cosine = Array.from({ length: 8 }, (_, t) => 0.025 * (1 + Math.cos(Math.PI * t / 8)));
    const random = Array.from({ length: 8 }, () => 0.1 * Math.random());
    for (const lrs of [cosine, random]) expect(await sameTrajectory(efTopk, lrs)).toBe(true);
    // And the schedule matters: the constant rate does not give the same weights as the decayed one.
    const a = model(3), opt = createTfjsOptimizer({ comm, ...efTopk } as never);
    for (let t = 0; t < 8; t++) { opt.learningRate = cosine[t]; opt.minimize(loss(a, t)); }
    opt.dispose();
    const c = model(3), optC = createTfjsOptimizer({ comm, ...efTopk } as never);
    for (let t = 0; t < 8; t++) optC.minimize(loss(c, t));
    optC.dispose();
    expect(Buffer.from((a.getWeights()[0].dataSync() as Float32Array).buffer).equals(Buffer.from((c.getWeights()[0].dataSync() as Float32Array).buffer))).toBe(false);
    // A rate that is not a finite number >= 0 is refused before anything moves.
    const d = model(3), optD = createTfjsOptimizer({ comm, ...efTopk } as never), before = d.getWeights().map((w) => Array.from(w.dataSync()));
    for (const bad of [NaN, -0.1, Infinity, '0.1']) {
      optD.learningRate = bad as number;
      expect(() => optD.minimize(loss(d, 0))).toThrow(expect.objectContaining({ code: 'ERR_GRADCOMP_OUT_OF_RANGE', param: 'learningRate' }));
    }
    expect(d.getWeights().map((w) => Array.from(w.dataSync()))).toEqual(before);
    optD.dispose();
  });

  test('fitDataset and applyGradients (a map or a list) take exactly the steps model.fit takes; a gradient of another shape is refused naming the variable', async () => {
    const opts = { algorithm: 'ef-sgd', compressor: { type: 'topk', ratio: 0.2 }, optimizer: { type: 'sgd', lr: 0.05, momentum: 0.9 }, minCompressSize: 8 };
    const steps = 6, xs = tf.concat(Array.from({ length: steps }, (_, t) => batch(t).x)), ys = tf.concat(Array.from({ length: steps }, (_, t) => batch(t).y));
    const mse = (m: tf.Sequential, x: tf.Tensor, y: tf.Tensor) => () => tf.losses.meanSquaredError(y, m.predict(x) as tf.Tensor) as tf.Scalar;
    // One optimizer per communicator at a time: each trains its model, then gives the communicator back.
    const train = async (how: (m: tf.Sequential, o: ReturnType<typeof createTfjsOptimizer>) => Promise<void>) => {
      const m = model(5), o = createTfjsOptimizer({ comm, ...opts });
      await how(m, o);
      expect(o.stepCount).toBe(steps);
      o.dispose();
      return m.getWeights().map((w) => Buffer.from((w.dataSync() as Float32Array).buffer));
    };
    const byFit = await train(async (m, o) => {
      m.compile({ optimizer: o, loss: 'meanSquaredError' });
      await m.fit(xs, ys, { batchSize: 16, epochs: 1, shuffle: false, verbose: 0 });
    });
    const byDataset = await train(async (m, o) => {
      m.compile({ optimizer: o, loss: 'meanSquaredError' });
      await m.fitDataset(tf.data.zip({ xs: tf.data.array(tf.unstack(xs)), ys: tf.data.array(tf.unstack(ys)) }).batch(16) as never, { epochs: 1, verbose: 0 });
    });
    const slice = (t: number): [tf.Tensor, tf.Tensor] => [xs.slice([16 * t, 0], [16, 6]), ys.slice([16 * t, 0], [16, 3])];
    const byMap = await train(async (m, o) => { for (let t = 0; t < steps; t++) o.applyGradients(tf.variableGrads(mse(m, ...slice(t))).grads); });
    const byList = await train(async (m, o) => {
      for (let t = 0; t < steps; t++) o.applyGradients(Object.entries(tf.variableGrads(mse(m, ...slice(t))).grads).map(([name, tensor]) => ({ name, tensor })) as never);
    });
    for (const w of [byDataset, byMap, byList]) w.forEach((b, i) => expect(b.equals(byFit[i])).toBe(true));
    // A gradient of another size or type is refused, naming the variable; the optimizer stays usable.
    const m = model(5), o = createTfjsOptimizer({ comm, ...opts });
    const k = (m.trainableWeights[0] as unknown as { val: tf.Variable }).val, g = tf.variableGrads(mse(m, ...slice(0))).grads;
    o.applyGradients(g);
    expect(() => o.applyGradients({ ...g, [k.name]: tf.ones([k.shape[0] + 1, k.shape[1] as number]) })).toThrow(expect.objectContaining({ code: 'ERR_GRADCOMP_INVALID_ARG_TYPE', param: `variableGradients.${k.name}` }));
    expect(() => o.applyGradients({ ...g, [k.name]: tf.ones(k.shape, 'int32') })).toThrow(expect.objectContaining({ param: `variableGradients.${k.name}` }));
    o.applyGradients(g);
    expect(o.stepCount).toBe(2);
    o.dispose();
  });

  test('PowerSGD sees matrices: a conv kernel [kh, kw, in, out] as [kh kw in, out], a dense kernel as it is (bytes sent: rank x (rows + cols) each)', async () => {
    const m = tf.sequential({ layers: [tf.layers.conv2d({ inputShape: [6, 6, 2], filters: 5, kernelSize: 3 }), tf.layers.flatten(), tf.layers.dense({ units: 3 })] });
    // Rank 1: both kernels pass PowerSGD's rule (rows + cols) x rank x 2 < rows x cols, so both are compressed.
    const rank = 1, o = createTfjsOptimizer({ comm, algorithm: 'powersgd', compressor: { type: 'powersgd', rank }, optimizer: { type: 'sgd', lr: 0.01 }, minCompressSize: 8 });
    m.compile({ optimizer: o, loss: 'meanSquaredError' });
    await m.fit(tf.randomNormal([8, 6, 6, 2], 0, 1, 'float32', 1), tf.randomNormal([8, 3], 0, 1, 'float32', 2), { batchSize: 8, epochs: 1, verbose: 0 });
    o.dispose();
    // conv kernel [3, 3, 2, 5] -> [18, 5]; its bias of 5 dense (under minCompressSize); dense kernel [80, 3]; its bias of 3.
    expect(m.trainableWeights.map((w) => w.shape)).toEqual([[3, 3, 2, 5], [5], [80, 3], [3]]);
    expect(o.stats().bytesSent).toBe(4 * (rank * (18 + 5) + 5 + rank * (80 + 3) + 3));
    expect(o.stats().denseBytes).toBe(4 * (90 + 5 + 240 + 3));
  });

  test('getWeights/setWeights carry the distributed state: save after 4 steps, restore into a fresh model and optimizer, continue bit-identically', async () => {
    const opts = { algorithm: 'ef-sgd', compressor: { type: 'topk', ratio: 0.2 }, optimizer: { type: 'sgd', lr: 0.05, momentum: 0.9 }, minCompressSize: 8 };
    // Named layers, so the restored model's variables have the names the state was saved under (as after tf.loadLayersModel).
    const named = (seed: number) => tf.sequential({ layers: [
      tf.layers.dense({ name: 'h', inputShape: [6], units: 16, activation: 'tanh', kernelInitializer: tf.initializers.glorotUniform({ seed }) }),
      tf.layers.dense({ name: 'out', units: 3, kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 1 }) })] });
    const a = named(5), optA = createTfjsOptimizer({ comm, ...opts });
    for (let t = 0; t < 4; t++) optA.minimize(loss(a, t));
    const saved = (await optA.getWeights()).map((w) => ({ name: w.name, tensor: w.tensor.clone() })), weights = a.getWeights().map((w) => w.clone());
    for (let t = 4; t < 8; t++) optA.minimize(loss(a, t));
    const want = a.getWeights().map((w) => Array.from(w.dataSync()));
    optA.dispose();
    a.dispose();
    const b = named(9), optB = createTfjsOptimizer({ comm, ...opts });
    b.setWeights(weights);
    await optB.setWeights(saved);
    expect(optB.iterations).toBe(4);
    for (let t = 4; t < 8; t++) optB.minimize(loss(b, t));
    optB.dispose();
    b.getWeights().forEach((w, i) => expect(Array.from(w.dataSync())).toEqual(want[i]));
  });

  test('bad options are refused naming them (a communicator init() did not make among them)', () => {
    expect(() => createTfjsOptimizer({ comm: {} as never })).toThrow(expect.objectContaining({ param: 'options.comm' }));
    expect(() => createTfjsOptimizer({ comm: { backend: 'mpi', rank: 0, size: 1 } as never })).toThrow(expect.objectContaining({ code: 'ERR_GRADCOMP_INVALID_ARG_TYPE', param: 'options.comm' }));
    expect(() => createTfjsOptimizer({ comm, optimizer: { type: 'sgd', lr: 0.1 }, hook: () => 1 })).toThrow(expect.objectContaining({ param: 'options' }));
    // createDistributedOptimizer's own checks run at creation, not at the first step.
    for (const [o, param] of [[{ algorithm: 'nope', optimizer: { type: 'sgd', lr: 0.1 } }, 'options.algorithm'], [{ optimizer: { type: 'sgd', lr: -1 } }, 'options.optimizer.lr'],
      [{ algorithm: 'ef-sgd', compressor: { type: 'topk', ratio: 7 }, optimizer: { type: 'sgd', lr: 0.1 } }, 'options.compressor.ratio'], [{ optimizer: { type: 'sgd', lr: 0.1 }, bogus: 1 }, 'options.bogus'],
      [{ optimizer: { type: 'sgd', lr: 0.1 }, stepTimeoutMs: 0 }, 'options.stepTimeoutMs']] as const) {
      expect(() => createTfjsOptimizer({ comm, ...o } as never)).toThrow(expect.objectContaining({ param }));
    }
  });

  test('denseTensors takes TF.js variable names; a name that is no variable is refused, naming it', () => {
    const opts = { algorithm: 'ef-sgd', compressor: { type: 'topk', ratio: 0.2 }, optimizer: { type: 'sgd', lr: 0.05 }, minCompressSize: 8 };
    const varName = (m: tf.Sequential, i: number) => (m.trainableWeights[i] as unknown as { val: tf.Variable }).val.name;
    const sent = (dense?: string[]) => {
      const m = model(13), o = createTfjsOptimizer({ comm, ...opts, ...(dense ? { denseTensors: dense.map((d) => (d === 'kernel0' ? varName(m, 0) : d)) } : {}) });
      try { o.minimize(loss(m, 0)); return o.stats().bytesSent; } finally { o.dispose(); }
    };
    const compressed = sent(), kept = sent(['kernel0']);
    // The first kernel (6 x 16) sent dense: its 384 bytes instead of a top-20% payload.
    expect(kept - compressed).toBeGreaterThan(384 - 200);
    expect(() => sent(['no/such/kernel'])).toThrow(expect.objectContaining({ param: 'options.denseTensors', message: expect.stringContaining('no/such/kernel') }));
  });

  test('a step-thread failure at the first step is thrown at once and frees the communicator; changed variables and use after dispose are refused', () => {
    const opts = { algorithm: 'ef-sgd', compressor: { type: 'topk', ratio: 0.2 }, optimizer: { type: 'sgd', lr: 0.05 }, minCompressSize: 8 };
    // State saved by another algorithm: the step thread cannot load it when it starts.
    const other = tf.sequential({ layers: [tf.layers.dense({ inputShape: [6], units: 2 })] });
    const optA = createTfjsOptimizer({ comm, algorithm: 'local', period: 2, optimizer: { type: 'sgd', lr: 0.05 } });
    optA.minimize(() => tf.sum(other.predict(tf.ones([1, 6])) as tf.Tensor) as tf.Scalar);
    return optA.getWeights().then(async (saved) => {
      optA.dispose();
      await new Promise((r) => setTimeout(r, 50));
      const m = model(11), optB = createTfjsOptimizer({ comm, ...opts });
      await optB.setWeights(saved);
      // The step thread's own error (the state names the algorithm it was saved by), not the 60 s start timeout's.
      expect(() => optB.minimize(loss(m, 0))).toThrow(expect.objectContaining({ code: expect.stringMatching(/^ERR_GRADCOMP_/), message: expect.stringContaining('local') }));
      await new Promise((r) => setTimeout(r, 50));
      // The communicator is free again: a new optimizer trains (its own stepTimeoutMs is not passed on), and refuses another set of variables.
      const optC = createTfjsOptimizer({ comm, ...opts, stepTimeoutMs: 120000 });
      optC.minimize(loss(m, 0));
      m.layers[0].trainable = false;
      expect(() => optC.minimize(loss(m, 1))).toThrow(expect.objectContaining({ code: 'ERR_GRADCOMP_INVALID_ARG', message: expect.stringContaining('create a new optimizer') }));
      m.layers[0].trainable = true;
      optC.minimize(loss(m, 1));
      optC.dispose();
      expect(() => optC.minimize(loss(m, 2))).toThrow(expect.objectContaining({ code: 'ERR_GRADCOMP_DISPOSED' }));
    });
  });
});

describe('DropIT layers', () => {
  function grads(m: tf.Sequential, x: tf.Tensor, y: tf.Tensor): Float32Array[] {
    const { grads: g } = tf.variableGrads(() => tf.losses.meanSquaredError(y, m.apply(x, { training: true }) as tf.Tensor) as tf.Scalar);
    return m.trainableWeights.map((w) => g[(w as unknown as { val: tf.Variable }).val.name].dataSync() as Float32Array);
  }
  const close = (a: Float32Array, b: Float32Array) => a.every((v, i) => Math.abs(v - b[i]) <= 1e-5 * (1 + Math.abs(b[i])));

  test('gamma 0 computes what tf.layers.dense and tf.layers.conv2d compute (outputs and gradients)', () => {
    const x = tf.randomNormal([4, 9, 9, 3], 0, 1, 'float32', 1), y = tf.randomNormal([4, 10], 0, 1, 'float32', 2);
    const plain = tf.sequential({ layers: [tf.layers.conv2d({ inputShape: [9, 9, 3], filters: 5, kernelSize: 3, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 4 }) }),
      tf.layers.flatten(), tf.layers.dense({ units: 10, kernelInitializer: tf.initializers.glorotUniform({ seed: 5 }) })] });
    const drop = tf.sequential({ layers: [dropitConv2d({ inputShape: [9, 9, 3], filters: 5, kernelSize: 3, activation: 'relu', gamma: 0, seed: 4 }) as tf.layers.Layer,
      tf.layers.flatten(), dropitDense({ units: 10, gamma: 0, seed: 5 }) as tf.layers.Layer] });
    drop.setWeights(plain.getWeights());
    expect(close((drop.apply(x, { training: true }) as tf.Tensor).dataSync() as Float32Array, (plain.apply(x, { training: true }) as tf.Tensor).dataSync() as Float32Array)).toBe(true);
    const gp = grads(plain, x, y), gd = grads(drop, x, y);
    gp.forEach((g, i) => expect(close(gd[i], g)).toBe(true));
  });

  test('gamma 0.9: the kernel gradient is the one of the kept entries (reference by hand), the input gradient exact, >= 80% fewer bytes held', () => {
    const x = tf.randomNormal([8, 20], 0, 1, 'float32', 7), dy = tf.randomNormal([8, 6], 0, 1, 'float32', 8);
    const m = tf.sequential({ layers: [dropitDense({ inputShape: [20], units: 6, gamma: 0.9, seed: 2 }) as tf.layers.Layer] });
    const { grads: g } = tf.variableGrads(() => tf.sum(tf.mul(m.apply(x, { training: true }) as tf.Tensor, dy)) as tf.Scalar);
    const kernel = m.trainableWeights[0], gk = g[(kernel as unknown as { val: tf.Variable }).val.name].dataSync() as Float32Array;
    // Reference: keep the top ceil(0.1 n) |x| (ties to the lower index), zero the rest, dW = x~ᵀ dy.
    const xv = x.dataSync() as Float32Array, k = dropitKeepCount(xv.length, 0.9);
    const order = Array.from(xv.keys()).sort((a, b) => Math.abs(xv[b]) - Math.abs(xv[a]) || a - b).slice(0, k);
    const kept = new Float32Array(xv.length);
    for (const i of order) kept[i] = xv[i];
    const ref = tf.matMul(tf.tensor2d(kept, [8, 20]), dy, true, false).dataSync() as Float32Array;
    expect(close(gk, ref)).toBe(true);
    const [mem] = dropitMemory(m);
    expect(mem.dense).toBe(4 * 8 * 20);
    expect(mem.kept).toBeLessThanOrEqual(0.2 * mem.dense);
    // The same figures as a printed table, with the saving and the totals.
    const lines: string[] = [];
    expect(dropitSummary(m, (l) => lines.push(l))).toEqual({ dense: mem.dense, kept: mem.kept });
    expect(lines).toHaveLength(4);
    expect(lines[2].split(/\s{2,}/)).toEqual([mem.layer, String(mem.dense), String(mem.kept), `${(100 * (1 - mem.kept / mem.dense)).toFixed(1)}%`]);
    expect(lines[3].split(/\s{2,}/).slice(1)).toEqual([String(mem.dense), String(mem.kept), `${(100 * (1 - mem.kept / mem.dense)).toFixed(1)}%`]);
    expect(() => dropitSummary(m, 'log' as never)).toThrow(expect.objectContaining({ param: 'print' }));
    // The input gradient does not depend on the dropped entries.
    const gx = tf.grad((xx: tf.Tensor) => tf.sum(tf.mul(m.apply(xx, { training: true }) as tf.Tensor, dy)))(x).dataSync() as Float32Array;
    const ref2 = tf.matMul(dy, kernel.read() as tf.Tensor2D, false, true).dataSync() as Float32Array;
    expect(close(gx, ref2)).toBe(true);
  });

  test("selection 'sample': each sample keeps its own top (1 - gamma) (reference by hand, dense and conv), the bytes are the per-sample packs', and it survives getConfig", () => {
    // Samples of very different scale: a whole-batch selection would keep nothing of the dim ones.
    const scale = tf.tensor4d([1, 100, 0.01, 3], [4, 1, 1, 1]);
    const x = tf.mul(tf.randomNormal([4, 6, 6, 2], 0, 1, 'float32', 11), scale), dy = tf.randomNormal([4, 4, 4, 3], 0, 1, 'float32', 12);
    const perSample = (xv: Float32Array, rows: number, gamma: number) => {
      const per = xv.length / rows, kept = new Float32Array(xv.length);
      for (let r = 0; r < rows; r++) {
        const ix = Array.from({ length: per }, (_, j) => r * per + j);
        ix.sort((a, b) => Math.abs(xv[b]) - Math.abs(xv[a]) || a - b).slice(0, dropitKeepCount(per, gamma)).forEach((i) => { kept[i] = xv[i]; });
      }
      return kept;
    };
    const conv = dropitConv2d({ inputShape: [6, 6, 2], filters: 3, kernelSize: 3, gamma: 0.8, selection: 'sample', seed: 3 }) as tf.layers.Layer;
    const m = tf.sequential({ layers: [conv] });
    const { grads: g } = tf.variableGrads(() => tf.sum(tf.mul(m.apply(x, { training: true }) as tf.Tensor, dy)) as tf.Scalar);
    const k = m.trainableWeights[0].read() as tf.Tensor4D;
    const kept = tf.tensor4d(perSample(x.dataSync() as Float32Array, 4, 0.8), [4, 6, 6, 2]);
    const ref = tf.grad((kk: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(kept, kk as tf.Tensor4D, 1, 'valid'), dy)))(k).dataSync() as Float32Array;
    const gk = g[(m.trainableWeights[0] as unknown as { val: tf.Variable }).val.name].dataSync() as Float32Array;
    expect(close(gk, ref)).toBe(true);
    // And not the whole-batch selection's gradient, which keeps nothing of the dim samples.
    const whole = tf.tensor4d(perSample(x.dataSync() as Float32Array, 1, 0.8), [4, 6, 6, 2]);
    const refWhole = tf.grad((kk: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(whole, kk as tf.Tensor4D, 1, 'valid'), dy)))(k).dataSync() as Float32Array;
    expect(close(gk, refWhole)).toBe(false);
    expect(dropitMemory(m)[0].kept).toBe(4 * dropitPackedBytes(72, 0.8));
    expect(conv.getConfig()).toEqual(expect.objectContaining({ gamma: 0.8, selection: 'sample' }));
    // Dense: the same per row.
    const xd = tf.mul(tf.randomNormal([5, 30], 0, 1, 'float32', 13), tf.tensor2d([1, 50, 0.02, 1, 7], [5, 1])), dyd = tf.randomNormal([5, 4], 0, 1, 'float32', 14);
    const d = tf.sequential({ layers: [dropitDense({ inputShape: [30], units: 4, gamma: 0.9, selection: 'sample', seed: 5 }) as tf.layers.Layer] });
    const { grads: gd } = tf.variableGrads(() => tf.sum(tf.mul(d.apply(xd, { training: true }) as tf.Tensor, dyd)) as tf.Scalar);
    const refd = tf.matMul(tf.tensor2d(perSample(xd.dataSync() as Float32Array, 5, 0.9), [5, 30]), dyd, true, false).dataSync() as Float32Array;
    expect(close(gd[(d.trainableWeights[0] as unknown as { val: tf.Variable }).val.name].dataSync() as Float32Array, refd)).toBe(true);
    // A dense layer on [batch, time, features] input: a sample is all of its time steps, not one row.
    const x3 = tf.mul(tf.randomNormal([3, 4, 10], 0, 1, 'float32', 15), tf.tensor3d([1, 0.01, 30], [3, 1, 1])), dy3 = tf.randomNormal([3, 4, 2], 0, 1, 'float32', 16);
    const d3 = tf.sequential({ layers: [dropitDense({ inputShape: [4, 10], units: 2, gamma: 0.75, selection: 'sample', seed: 6 }) as tf.layers.Layer] });
    const { grads: g3 } = tf.variableGrads(() => tf.sum(tf.mul(d3.apply(x3, { training: true }) as tf.Tensor, dy3)) as tf.Scalar);
    const ref3 = tf.matMul(tf.tensor2d(perSample(x3.dataSync() as Float32Array, 3, 0.75), [12, 10]), tf.reshape(dy3, [12, 2]) as tf.Tensor2D, true, false).dataSync() as Float32Array;
    expect(close(g3[(d3.trainableWeights[0] as unknown as { val: tf.Variable }).val.name].dataSync() as Float32Array, ref3)).toBe(true);
    expect(() => dropitDense({ units: 4, gamma: 0.5, selection: 'channel' as never })).toThrow(expect.objectContaining({ param: 'config.selection' }));
  });

  test('bad configs are refused naming the field', () => {
    expect(() => dropitDense({ units: 4, gamma: 1 })).toThrow(expect.objectContaining({ param: 'config.gamma' }));
    expect(() => dropitConv2d({ filters: 4, kernelSize: 0, gamma: 0.5 })).toThrow(expect.objectContaining({ param: 'config.kernelSize' }));
    // The rest is read as tf.layers reads it; what TF.js refuses is named too.
    for (const k of ['activation', 'kernelInitializer', 'biasInitializer', 'kernelRegularizer', 'biasConstraint']) {
      expect(() => dropitDense({ units: 4, gamma: 0.5, [k]: 'nope' })).toThrow(expect.objectContaining({ code: 'ERR_GRADCOMP_INVALID_ARG', param: `config.${k}` }));
    }
    expect(() => dropitDense({ units: 4, gamma: 0.5, seed: 2, kernelInitializer: 'glorot_uniform' })).toThrow(expect.objectContaining({ param: 'config.seed' }));
    expect(() => dropitConv2d({ filters: 4, kernelSize: 3, gamma: 0.5, dilationRate: 2 })).toThrow(expect.objectContaining({ param: 'config.dilationRate' }));
    expect(() => dropitConv2d({ filters: 4, kernelSize: 3, gamma: 0.5, dataFormat: 'channelsFirst' as never })).toThrow(expect.objectContaining({ param: 'config.dataFormat' }));
  });

  test('every tf.layers option means what it means there (gamma 0 trains as the plain layers), and a saved model loads back', async () => {
    const opts = { activation: 'gelu', biasInitializer: 'ones', kernelRegularizer: tf.regularizers.l2({ l2: 0.3 }), biasRegularizer: 'l1l2' };
    const x = tf.randomNormal([16, 6, 6, 2], 0, 1, 'float32', 21), y = tf.randomNormal([16, 3], 0, 1, 'float32', 22);
    const build = (drop: boolean) => {
      const conv = { inputShape: [6, 6, 2], filters: 3, kernelSize: 3, padding: 'same' as const, ...opts };
      const dense = { units: 3, ...opts, activation: 'softsign' };
      return tf.sequential({ layers: drop
        ? [dropitConv2d({ ...conv, gamma: 0, seed: 7 }) as tf.layers.Layer, tf.layers.flatten(), dropitDense({ ...dense, gamma: 0, seed: 8 }) as tf.layers.Layer]
        : [tf.layers.conv2d({ ...conv, kernelInitializer: tf.initializers.glorotUniform({ seed: 7 }) } as never), tf.layers.flatten(),
          tf.layers.dense({ ...dense, kernelInitializer: tf.initializers.glorotUniform({ seed: 8 }) } as never)] });
    };
    const plain = build(false), drop = build(true);
    const before = drop.getWeights().map((w) => Array.from(w.dataSync()));
    plain.getWeights().forEach((w, i) => expect(Array.from(w.dataSync())).toEqual(before[i])); // the seed reaches the initializer, biases are ones
    expect(before[1].every((v) => v === 1)).toBe(true);
    for (const m of [plain, drop]) {
      m.compile({ optimizer: tf.train.sgd(0.5), loss: 'meanSquaredError' });
      await m.fit(x, y, { epochs: 3, batchSize: 8, shuffle: false, verbose: 0 });
    }
    // The regularizers entered the loss: the weights moved as the plain layers' did (and not as without them).
    plain.getWeights().forEach((w, i) => expect(close(drop.getWeights()[i].dataSync() as Float32Array, w.dataSync() as Float32Array)).toBe(true));
    const bare = tf.sequential({ layers: [dropitConv2d({ inputShape: [6, 6, 2], filters: 3, kernelSize: 3, padding: 'same', activation: 'gelu', biasInitializer: 'ones', gamma: 0, seed: 7 }) as tf.layers.Layer,
      tf.layers.flatten(), dropitDense({ units: 3, activation: 'softsign', biasInitializer: 'ones', gamma: 0, seed: 8 }) as tf.layers.Layer] });
    bare.compile({ optimizer: tf.train.sgd(0.5), loss: 'meanSquaredError' });
    await bare.fit(x, y, { epochs: 3, batchSize: 8, shuffle: false, verbose: 0 });
    expect(close(bare.getWeights()[0].dataSync() as Float32Array, drop.getWeights()[0].dataSync() as Float32Array)).toBe(false);
    // Saved and loaded: the same layers, config and predictions.
    let saved: tf.io.ModelArtifacts | undefined;
    await drop.save(tf.io.withSaveHandler(async (a) => { saved = a; return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } }; }));
    const back = await tf.loadLayersModel(tf.io.fromMemory(saved!));
    expect(back.layers.map((l) => l.getClassName())).toEqual(['DropitConv2d', 'Flatten', 'DropitDense']);
    expect(back.layers[0].getConfig()).toEqual(drop.layers[0].getConfig());
    expect(back.layers[2].getConfig()).toEqual(drop.layers[2].getConfig());
    expect(close((back.predict(x) as tf.Tensor).dataSync() as Float32Array, (drop.predict(x) as tf.Tensor).dataSync() as Float32Array)).toBe(true);
  });
});

describe('IDX and Fashion-MNIST', () => {

  test('reads uint8 and big-endian float IDX files, gzipped or not; refuses damaged ones with a coded error', () => {
    const px = Uint8Array.from({ length: 2 * 3 * 4 }, (_, i) => i * 7);
    expect(readIdx(encodeIdx(0x08, [2, 3, 4], px))).toMatchObject({ dtype: 'uint8', shape: [2, 3, 4] });
    expect(Array.from(readIdx(gzipSync(encodeIdx(0x08, [2, 3, 4], px))).data)).toEqual(Array.from(px));
    const f = new Uint8Array(8); new DataView(f.buffer).setFloat32(0, 1.5, false); new DataView(f.buffer).setFloat32(4, -2, false);
    expect(Array.from(readIdx(encodeIdx(0x0d, [2], f)).data)).toEqual([1.5, -2]);
    for (const bad of [encodeIdx(0x08, [2, 3, 4], px.subarray(1)), new Uint8Array([1, 0, 8, 1]), encodeIdx(0x07, [1], new Uint8Array(1)), gzipSync(encodeIdx(0x08, [5], px)).subarray(0, 10)]) {
      expect(() => readIdx(bad)).toThrow(expect.objectContaining({ code: 'ERR_GRADCOMP_CORRUPT_PAYLOAD' }));
    }
  });

  test('a gzipped IDX file is inflated no further than its header says: bombs and impossible shapes are refused', () => {
    // 64 MiB of zeros behind a header that claims 10 bytes: a 64 KiB file.
    const bomb = gzipSync(Buffer.concat([encodeIdx(0x08, [10], new Uint8Array(10)), Buffer.alloc(64 << 20)]), { level: 9 });
    expect(bomb.length).toBeLessThan(1 << 17);
    expect(() => readIdx(bomb)).toThrow(expect.objectContaining({ code: 'ERR_GRADCOMP_CORRUPT_PAYLOAD', message: expect.stringContaining('inflates to more than the 18 bytes') }));
    // A header whose shape no buffer can hold, gzipped or not.
    const huge = encodeIdx(0x0e, [65536, 65536, 65536], new Uint8Array(0));
    for (const b of [huge, gzipSync(huge)]) expect(() => readIdx(b)).toThrow(expect.objectContaining({ code: 'ERR_GRADCOMP_CORRUPT_PAYLOAD', message: expect.stringContaining('needs more than') }));
    // A file whose values follow a long stretch of the gzip stream still reads (the header is found in a prefix, the rest inflated once).
    const rnd = Uint8Array.from({ length: 300000 }, () => Math.floor(Math.random() * 256));
    const v = readIdx(gzipSync(encodeIdx(0x08, [300, 1000], rnd), { level: 0 }));
    expect(v.shape).toEqual([300, 1000]);
    expect(Buffer.from(v.data as Uint8Array).equals(Buffer.from(rnd))).toBe(true);
    // Multi-member gzip (concatenated files) inflates as one stream.
    const whole = encodeIdx(0x08, [4, 2], Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8));
    const two = Buffer.concat([gzipSync(whole.subarray(0, 6)), gzipSync(whole.subarray(6))]);
    expect(Array.from(readIdx(two).data)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });

  test('readIdx refuses a device, a FIFO or a folder before reading it (no read without bound, no wait on a pipe)', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gc-idx-'));
    const fifo = path.join(dir, 'train-images-idx3-ubyte');
    execFileSync('mkfifo', [fifo]);
    for (const [where, why] of [['/dev/zero', 'not a regular file'], [fifo, 'not a regular file'], [dir, 'EISDIR']]) {
      expect(() => readIdx(where)).toThrow(expect.objectContaining({ code: 'ERR_GRADCOMP_INVALID_ARG', param: 'file', message: expect.stringContaining(why) }));
    }
    fs.rmSync(dir, { recursive: true });
  });

  test('loadFashionMnist reads a folder of the four files, and says how to get them when absent', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gc-fmnist-'));
    try {
      const img = Uint8Array.from({ length: 5 * 28 * 28 }, (_, i) => i % 256), lab = Uint8Array.of(3, 1, 4, 1, 5);
      for (const p of ['train', 't10k']) {
        fs.writeFileSync(path.join(dir, `${p}-images-idx3-ubyte.gz`), gzipSync(encodeIdx(0x08, [5, 28, 28], img)));
        fs.writeFileSync(path.join(dir, `${p}-labels-idx1-ubyte`), encodeIdx(0x08, [5], lab));
      }
      const d = loadFashionMnist(dir, { testLimit: 2 });
      expect(d.train).toMatchObject({ count: 5, rows: 28, cols: 28 });
      expect(d.test.count).toBe(2);
      expect(d.train.images[300]).toBeCloseTo((300 % 256) / 255, 6);
      expect(Array.from(d.train.labels)).toEqual([3, 1, 4, 1, 5]);
      expect(() => loadFashionMnist(path.join(dir, 'nope'))).toThrow(expect.objectContaining({ code: 'ERR_GRADCOMP_INVALID_ARG', message: expect.stringMatching(/dataset-fashion-mnist/) }));
      expect(loadFashionMnist(dir, { trainLimit: 0 }).train.count).toBe(0);
      for (const [k, v] of [['trainLimit', -1], ['testLimit', 1.5], ['trainLimit', NaN], ['testLimit', '3']] as const) {
        expect(() => loadFashionMnist(dir, { [k]: v } as never)).toThrow(expect.objectContaining({ code: 'ERR_GRADCOMP_OUT_OF_RANGE', param: `options.${k}` }));
      }
      expect(() => loadFashionMnist(dir, null as never)).toThrow(expect.objectContaining({ code: 'ERR_GRADCOMP_INVALID_ARG_TYPE', param: 'options' }));
      expect(() => loadFashionMnist(dir, { trainlimit: 2 } as never)).toThrow(expect.objectContaining({ code: 'ERR_GRADCOMP_INVALID_ARG_TYPE', param: 'options.trainlimit' }));
    } finally { fs.rmSync(dir, { recursive: true, force: true }); }
  });
});

const haveFashion = fs.existsSync('/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz');
(haveFashion ? test : test.skip)('examples/tfjs-fashion.js: an MLP (cpu and wasm) and a small CNN (plain and DropIT, cpu and wasm) on a Fashion-MNIST slice under gradcomp run', async () => {
  const ex = path.join(root, 'examples', 'tfjs-fashion.js');
  for (const args of [['--model', 'mlp', '--train', '2400', '--test', '300', '--epochs', '2'], ['--model', 'mlp', '--backend', 'wasm', '--train', '600', '--test', '200', '--epochs', '1'],
    ['--model', 'cnn', '--gamma', '0.9', '--train', '256', '--test', '100', '--epochs', '1', '--compressor', 'powersgd', '--algo', 'powersgd'],
    // wasm has no convolution weight gradient of its own: the example registers gradcomp's.
    ['--model', 'cnn', '--backend', 'wasm', '--train', '2400', '--test', '300', '--epochs', '2'], ['--model', 'cnn', '--backend', 'wasm', '--gamma', '0.9', '--train', '512', '--test', '100', '--epochs', '1']]) {
    const r = await gradcompRun(2, ex, args, 600000);
    const out = rows(r.out);
    expect({ code: r.code, n: out.length }).toEqual({ code: 0, n: 2 });
    expect(out[0].digest).toBe(out[1].digest);
    if (args[3] !== 'wasm' ? args[1] === 'mlp' : args[1] === 'cnn' && !args.includes('--gamma')) expect(out[0].accuracy).toBeGreaterThan(0.45); // 10 classes: chance is 0.1
    if (args.includes('--gamma')) expect((out[0].memory as { kept: number; dense: number }).kept).toBeLessThan(0.2 * (out[0].memory as { dense: number }).dense);
  }
}, 900000);
