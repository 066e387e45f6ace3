import { createOptimizer, decodeCheckpoint, encodeCheckpoint, OptimizerSpec } from '../../lib';
import { freshSeed, mulberry32, sample } from '../reference/rng';

const rand = mulberry32(freshSeed());
const f = Math.fround;

describe('SGD (PyTorch semantics)', () => {
  test('momentum 0.9 with weight decay, three steps by hand', () => {
    const opt = createOptimizer({ type: 'sgd', lr: 0.1, momentum: 0.9, weightDecay: 0.01 });
    const w = Float32Array.from([1, -2]);
    const gs = [[0.5, 0.5], [1, -1], [0, 0]];
    // d = g + .01 w; buf = d (first), then .9 buf + d; w -= .1 buf
    let W = [1, -2], B = [0, 0];
    gs.forEach((g, t) => {
      const d = g.map((gi, i) => f(gi + f(0.01 * W[i])));
      B = d.map((di, i) => (t === 0 ? di : f(f(0.9 * B[i]) + f(1 * di))));
      W = W.map((wi, i) => f(wi - f(0.1 * B[i])));
      opt.step({ w }, { w: Float32Array.from(g) });
      W.forEach((wi, i) => expect(w[i]).toBeCloseTo(wi, 6));
    });
  });

  test('Nesterov uses d + momentum * buf', () => {
    const opt = createOptimizer({ type: 'sgd', lr: 1, momentum: 0.5, nesterov: true });
    const w = Float32Array.from([0]);
    opt.step({ w }, { w: Float32Array.from([1]) }); // buf = 1, d = 1 + .5 = 1.5
    expect(w[0]).toBeCloseTo(-1.5, 6);
    opt.step({ w }, { w: Float32Array.from([1]) }); // buf = 1.5, d = 1 + .75 = 1.75
    expect(w[0]).toBeCloseTo(-3.25, 6);
  });
});

describe('a refused update changes no state', () => {
  test('update() and updateLowRank() refused by the kernel checks leave no momentum buffer, so the next step is still the first', async () => {
    const spec = { type: 'sgd' as const, lr: 0.1, momentum: 0.9, dampening: 0.5 };
    const g = sample('gaussian', 6, rand), w0 = sample('gaussian', 6, rand);
    const fresh = createOptimizer(spec), wf = w0.slice();
    fresh.update('x', wf, g);
    for (const bad of [
      (o: ReturnType<typeof createOptimizer>, w: Float32Array) => o.update('x', w, new Float32Array(5)),
      (o: ReturnType<typeof createOptimizer>, w: Float32Array) => o.updateLowRank!('x', w, { p: new Float32Array(3), q: new Float32Array(2), rows: 3, cols: 2, rank: 2, residual: null }),
      (o: ReturnType<typeof createOptimizer>, w: Float32Array) => o.update('x', w, new Float32Array(5), { async: true }),
    ]) {
      const o = createOptimizer(spec), w = w0.slice();
      await expect((async () => bad(o, w))()).rejects.toMatchObject({ code: expect.stringMatching(/^ERR_GRADCOMP_/) });
      expect(o.state().tensors.x?.momentum).toBeUndefined();
      o.update('x', w, g);
      expect(Array.from(w)).toEqual(Array.from(wf)); // (1 - dampening) would scale a non-first step
    }
    expect(() => createOptimizer(spec).update('x', [1, 2] as never, g)).toThrow(expect.objectContaining({ param: 'w' }));
  });
});

describe('NovoGrad (spec §6)', () => {
  test('the first update is lr * (g / ||g|| + wd * w), per tensor', () => {
    const opt = createOptimizer({ type: 'novograd', lr: 0.01, weightDecay: 0.001 });
    const w1 = sample('gaussian', 100, rand), w2 = sample('gaussian', 7, rand);
    const g1 = sample('gaussian', 100, rand), g2 = sample('gaussian', 7, rand).map((v) => v * 1000);
    const before = [w1.slice(), w2.slice()];
    opt.step({ a: w1, b: w2 }, { a: g1, b: g2 });
    [[w1, g1, before[0]], [w2, g2, before[1]]].forEach(([w, g, w0]) => {
      const norm = Math.sqrt(g.reduce((s, v) => s + v * v, 0));
      w.forEach((v, i) => expect(v).toBeCloseTo(w0[i] - 0.01 * (g[i] / norm + 0.001 * w0[i]), 6));
    });
  });

  test('scale invariance: multiplying the gradients by c leaves the updates unchanged', () => {
    const specs: OptimizerSpec = { type: 'novograd', lr: 0.05, eps: 0 };
    const a = createOptimizer(specs), b = createOptimizer(specs);
    const wa = sample('gaussian', 50, rand), wb = wa.slice();
    for (let t = 0; t < 10; t++) {
      const g = sample('gaussian', 50, rand);
      a.step({ w: wa }, { w: g });
      b.step({ w: wb }, { w: g.map((v) => v * 1000) });
    }
    wa.forEach((v, i) => expect(wb[i]).toBeCloseTo(v, 4));
  });

  test('an all-zero first gradient does not misfire (explicit step counter, no NaN)', () => {
    const opt = createOptimizer({ type: 'novograd', lr: 0.1 });
    const w = Float32Array.from([1, 2]);
    opt.step({ w }, { w: new Float32Array(2) });
    opt.step({ w }, { w: Float32Array.from([3, 4]) });
    expect(w.every(Number.isFinite)).toBe(true);
    // v = .98 * 0 + .02 * 25 = .5 on step 2
    expect(opt.state().tensors.w.v).toBeCloseTo(0.5, 10);
  });
});

describe('optimizer state and validation', () => {
  test.each([
    [{ type: 'sgd', lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 1e-4 }],
    [{ type: 'novograd', lr: 0.01, weightDecay: 0.004, gradAveraging: true }],
  ] as [OptimizerSpec][])('%j: save (JSON and the binary format), load into a fresh optimizer, continue bit-identically', (spec) => {
    const grads = Array.from({ length: 8 }, () => sample('gaussian', 33, rand));
    const wA = sample('gaussian', 33, rand), wB = wA.slice();
    const a = createOptimizer(spec);
    grads.forEach((g) => a.step({ w: wA }, { w: g }));
    const b = createOptimizer(spec);
    grads.slice(0, 4).forEach((g) => b.step({ w: wB }, { w: g }));
    const wC = wB.slice();
    const c = createOptimizer(spec), d = createOptimizer(spec);
    c.load(JSON.parse(JSON.stringify(b.state())));
    d.load(decodeCheckpoint(encodeCheckpoint(b.state())) as ReturnType<typeof b.state>);
    grads.slice(4).forEach((g) => { c.step({ w: wB }, { w: g }); d.step({ w: wC }, { w: g }); });
    expect(Buffer.from(wB.buffer)).toEqual(Buffer.from(wA.buffer));
    expect(Buffer.from(wC.buffer)).toEqual(Buffer.from(wA.buffer));
  });

  test.each([
    [{ type: 'adam', lr: 1 }, 'spec.type'], [{ type: 'sgd', lr: -1 }, 'options.lr'], [{ type: 'sgd', lr: 1, momentum: 1 }, 'options.momentum'],
    [{ type: 'sgd', lr: 1, nesterov: true }, 'options.nesterov'], [{ type: 'novograd', lr: 1, beta2: 1 }, 'options.beta2'],
    // A misspelt option is refused, not ignored (momentum would silently be 0).
    [{ type: 'sgd', lr: 1, momentun: 0.9 }, 'options.momentun'], [{ type: 'novograd', lr: 1, beta: 0.9 }, 'options.beta'],
  ])('%j is rejected naming %s', (spec, param) => {
    expect(() => createOptimizer(spec as never)).toThrow(expect.objectContaining({ param }));
  });

  test('step() names the mismatched tensor', () => {
    const opt = createOptimizer({ type: 'sgd', lr: 0.1 });
    expect(() => opt.step({ w: new Float32Array(3) }, { w: new Float32Array(2) })).toThrow(expect.objectContaining({ param: 'grads.w' }));
    expect(() => opt.step({ w: new Float32Array(3) }, {})).toThrow(expect.objectContaining({ param: 'grads.w' }));
  });
});
