/** createDistributedOptimizer's contract on one rank: validation, layout checks, state rules, STL's schedule. */
import { createDistributedOptimizer, init, stlStage, Tensor, createOptimizer, Communicator } from '../../lib';

let comm: Communicator;
beforeAll(async () => { comm = await init(); });
afterAll(async () => { await comm.close(); });

const grads = (n = 3000) => ({ w: Float32Array.from({ length: n }, (_, i) => Math.sin(i * 1.3) + (i % 7 === 0 ? 3 : 0)), b: Float32Array.of(0.5, -0.25) });

describe('option validation names the option', () => {
  test.each([
    [{ lr: 0.1, algorithm: 'nope' }, 'options.algorithm'],
    [{ lr: 0.1, bogus: 1 }, 'options.bogus'],
    [{}, 'options.lr'],
    [{ lr: 0.1, optimizer: { type: 'sgd', lr: 0.1 } }, 'options.lr'],
    [{ lr: 0.1, algorithm: 'local', compressor: { type: 'topk', ratio: 0.1 } }, 'options.compressor'],
    [{ lr: 0.1, algorithm: 'signsgd', compressor: { type: 'topk', ratio: 0.1 } }, 'options.compressor'],
    [{ lr: 0.1, algorithm: 'ef-sgd', compressor: { type: 'topk', ratio: 0.1, errorFeedback: false } }, 'options.compressor.errorFeedback'],
    [{ lr: 0.1, algorithm: 'liec', compressor: { type: 'powersgd', rank: 2 } }, 'options.compressor'],
    [{ lr: 0.1, algorithm: 'local', period: 0 }, 'options.period'],
    [{ lr: 0.1, algorithm: 'local', period: 2.5 }, 'options.period'],
    [{ lr: 0.1, algorithm: 'liec', server: 'everywhere' }, 'options.server'],
    [{ lr: 0.1, algorithm: 'stl', growth: 'fast' }, 'options.growth'],
    [{ lr: 0.1, deterministic: 'yes' }, 'options.deterministic'],
    [{ lr: 0.1, denseTensors: 'w' }, 'options.denseTensors'],
    [{ lr: 0.1, denseTensors: ['w', 3] }, 'options.denseTensors'],
    [{ lr: -1 }, 'options.lr'],
    // An option only other algorithms read (sync with a period: Local SGD was meant).
    [{ lr: 0.1, period: 8 }, 'options.period'],
    [{ lr: 0.1, algorithm: 'double-squeeze', period: 8 }, 'options.period'],
    [{ lr: 0.1, algorithm: 'ef-sgd', server: 'sharded' }, 'options.server'],
    [{ lr: 0.1, algorithm: 'local', stageSteps: 5 }, 'options.stageSteps'],
    [{ lr: 0.1, algorithm: 'vrl', growth: 'iid' }, 'options.growth'],
  ])('%j -> %s', (opts, param) => {
    expect(() => createDistributedOptimizer({ comm, ...(opts as object) } as never)).toThrow(expect.objectContaining({ param }));
  });

  // An optimizer spec's own errors are named from the options object, in the message too.
  test.each([
    [{ optimizer: null }, 'options.optimizer'],
    [{ optimizer: { type: 'sgd', lr: -1 } }, 'options.optimizer.lr'],
    [{ optimizer: { type: 'sgd', lr: 0.1, momentum: 1 } }, 'options.optimizer.momentum'],
    [{ optimizer: { type: 'adam', lr: 0.1 } }, 'options.optimizer.type'],
  ])('optimizer spec %j -> %s', (opts, param) => {
    expect(() => createDistributedOptimizer({ comm, ...(opts as object) } as never)).toThrow(expect.objectContaining({ param, message: expect.stringContaining(`for ${param} but`) }));
  });

  test('denseTensors and shapes naming no parameter (a typo) are refused at the first step, naming the name', async () => {
    const p = () => ({ w: new Float32Array(3000), b: new Float32Array(2) });
    const a = createDistributedOptimizer({ comm, algorithm: 'ef-sgd', compressor: { type: 'topk', ratio: 0.01 }, lr: 0.1, denseTensors: ['W'] });
    await expect(a.step(p(), grads())).rejects.toMatchObject({ param: 'options.denseTensors', message: expect.stringContaining('W, which is not') });
    const b = createDistributedOptimizer({ comm, lr: 0.1, shapes: { w: [30, 100], bias: [2] } });
    await expect(b.step(p(), grads())).rejects.toMatchObject({ param: 'options.shapes.bias' });
    const c = createDistributedOptimizer({ comm, algorithm: 'ef-sgd', compressor: { type: 'topk', ratio: 0.01 }, lr: 0.1, denseTensors: ['w'], shapes: { w: [30, 100] } });
    await c.step(p(), grads());
  });

  test('a missing communicator', () => {
    expect(() => createDistributedOptimizer({ lr: 0.1 } as never)).toThrow(expect.objectContaining({ param: 'options.comm' }));
  });
});

describe('step() checks params and grads against the first step', () => {
  test('length mismatch, unknown names, wrong dtypes, a changed layout', async () => {
    const opt = createDistributedOptimizer({ comm, algorithm: 'ef-sgd', compressor: { type: 'topk', ratio: 0.01 }, lr: 0.1 });
    const p = { w: new Float32Array(3000), b: new Float32Array(2) };
    await expect(opt.step(p, { w: new Float32Array(10), b: new Float32Array(2) })).rejects.toMatchObject({ param: 'grads.w' });
    await expect(opt.step(p, { ...grads(), c: new Float32Array(1) })).rejects.toMatchObject({ param: 'grads.c' });
    await expect(opt.step({ w: new Float64Array(3000) as never, b: p.b }, grads())).rejects.toMatchObject({ param: 'params.w' });
    await expect(opt.step({}, {})).rejects.toMatchObject({ param: 'params' });
    await opt.step(p, grads());
    await expect(opt.step({ w: p.w }, { w: grads().w })).rejects.toMatchObject({ param: 'params' });
    expect(opt.steps).toBe(1);
  });

  test('one worker: top-k with error feedback applies exactly the k largest of g + e and keeps the rest', async () => {
    const opt = createDistributedOptimizer({ comm, algorithm: 'ef-sgd', compressor: { type: 'topk', ratio: 0.01 }, lr: 1 });
    const p = { w: new Float32Array(3000), b: new Float32Array(2) };
    const g = grads();
    await opt.step(p, g);
    const moved = Array.from(p.w).filter((v) => v !== 0).length;
    expect(moved).toBe(30);
    const e = opt.compressor!.residual('w')!;
    for (let i = 0; i < 3000; i++) expect(-p.w[i] + e[i]).toBeCloseTo(g.w[i], 6);
    expect(Array.from(p.b)).toEqual([-0.5, 0.25]); // the bias is dense
    const s = opt.stats();
    expect(s.steps).toBe(1);
    expect(s.denseBytes).toBe(4 * 3002);
    expect(s.bytesSent).toBeLessThan(s.denseBytes / 10);
  });

  test('Tensors carry shapes: a 1-D tensor stays dense even when large', async () => {
    const opt = createDistributedOptimizer({ comm, algorithm: 'ef-sgd', compressor: { type: 'topk', ratio: 0.01 }, lr: 1 });
    const w = Tensor.from(new Float32Array(3000), [3000]);
    await opt.step({ w }, { w: grads().w });
    expect(Array.from(w.data as Float32Array).filter((v) => v !== 0).length).toBe(3000 - grads().w.filter((v) => v === 0).length);
  });
});

describe('PowerSGD in lockstep, its average applied unformed', () => {
  test('bit-identical to one allreduce per tensor and an optimizer that forms the gradient', async () => {
    const shapes: Record<string, number[]> = { a: [48, 80], b: [33, 129], c: [64, 64], bias: [80] };
    const rand = (() => { let x = 12345; return () => ((x = (Math.imul(x, 1664525) + 1013904223) >>> 0) / 2 ** 32) - 0.5; })();
    const init0 = Object.fromEntries(Object.entries(shapes).map(([k, sh]) => [k, Float32Array.from({ length: sh.reduce((a, b) => a * b, 1) }, rand)]));
    const runs = [true, false].map((fast) => {
      const optimizer = createOptimizer({ type: 'sgd', lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 1e-3 });
      if (!fast) (optimizer as { updateLowRank?: unknown }).updateLowRank = undefined; // forms P Qᵀ, then update()
      const opt = createDistributedOptimizer({ comm, algorithm: 'powersgd', compressor: { type: 'powersgd', rank: 3 }, optimizer, lockstep: fast });
      const params = Object.fromEntries(Object.entries(init0).map(([k, v]) => [k, Tensor.from(v.slice(), shapes[k])]));
      return { opt, params };
    });
    let spied = 0;
    const sgd = runs[0].opt as unknown as { optimizer: { updateLowRank: (...a: unknown[]) => unknown } };
    const inner = sgd.optimizer.updateLowRank.bind(sgd.optimizer);
    sgd.optimizer.updateLowRank = (...a: unknown[]) => { spied++; return inner(...a); };
    for (let t = 0; t < 4; t++) {
      const g = Object.fromEntries(Object.entries(init0).map(([k, v]) => [k, Float32Array.from({ length: v.length }, rand)]));
      for (const r of runs) await r.opt.step(r.params, g);
    }
    expect(spied).toBe(4 * 3); // three matrices a step, each applied from its factors
    for (const k of Object.keys(shapes)) {
      const x = runs[0].params[k].data as Float32Array, y = runs[1].params[k].data as Float32Array;
      expect(Buffer.from(x.buffer, x.byteOffset, x.byteLength).equals(Buffer.from(y.buffer, y.byteOffset, y.byteLength))).toBe(true);
    }
    // The same state (momentum buffers, residuals, warm starts), whatever order the tensors were updated in.
    const canon = (v: unknown): unknown => (v instanceof Float32Array ? Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64')
      : v !== null && typeof v === 'object' ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, canon((v as Record<string, unknown>)[k])])) : v);
    const [s0, s1] = runs.map((r) => JSON.stringify(canon(r.opt.state())));
    expect(s0 === s1).toBe(true);
  });

  test('lockstep must be a boolean', () => {
    expect(() => createDistributedOptimizer({ comm, algorithm: 'powersgd', lr: 0.1, lockstep: 'yes' as never })).toThrow(expect.objectContaining({ param: 'options.lockstep' }));
  });
});

describe('state rules', () => {
  test('CoCoD-SGD refuses state() while an average is in flight, and drain() makes it safe', async () => {
    const opt = createDistributedOptimizer({ comm, algorithm: 'cocod', period: 4, lr: 0.1 });
    const p = { w: new Float32Array(5), b: new Float32Array(2) };
    await opt.step(p, { w: new Float32Array(5).fill(1), b: new Float32Array(2) });
    expect(() => opt.state()).toThrow(/drain/);
    await opt.drain();
    expect(opt.state().buffers.pending).toHaveLength(7);
  });

  test('load() rejects another algorithm\'s state or a malformed one', () => {
    const a = createDistributedOptimizer({ comm, algorithm: 'local', lr: 0.1 });
    const b = createDistributedOptimizer({ comm, algorithm: 'vrl', lr: 0.1 });
    expect(() => b.load(a.state())).toThrow(expect.objectContaining({ param: 'state.algorithm' }));
    expect(() => b.load({ ...b.state(), workers: 3 })).toThrow(expect.objectContaining({ param: 'state.rank' }));
    expect(() => b.load({ ...b.state(), buffers: { delta: 'x' } } as never)).toThrow(expect.objectContaining({ param: 'state.buffers.delta' }));
    expect(() => b.load(null as never)).toThrow(expect.objectContaining({ param: 'state' }));
  });

  test('an optimizer instance is used as given (its lr drives the steps)', async () => {
    const sgd = createOptimizer({ type: 'sgd', lr: 0.5 });
    const opt = createDistributedOptimizer({ comm, optimizer: sgd });
    const p = { w: Float32Array.of(1) };
    const info = await opt.step(p, { w: Float32Array.of(2) });
    expect(info).toEqual({ step: 0, lr: 0.5, synced: true });
    expect(p.w[0]).toBe(0);
    sgd.lr = 0.25;
    await opt.step(p, { w: Float32Array.of(2) });
    expect(p.w[0]).toBe(-0.5);
  });
});

describe('STL-SGD schedule (specs/algorithms.md §2.2)', () => {
  const rounds = (growth: 'iid' | 'non-iid' | 'fixed', stages: number) => {
    const out: number[] = [];
    let t = 0;
    for (let s = 0; s < stages; s++) {
      const st = stlStage(t, 4, 250, growth, 0.5);
      expect(st.stage).toBe(s);
      expect(st.lrScale).toBe(0.5 ** s);
      let r = 0;
      for (let i = 0; i < st.steps; i++) if ((i + 1) % st.period === 0 || i + 1 === st.steps) r++;
      out.push(r);
      t += st.steps;
    }
    return out;
  };
  test('IID: the period doubles with the stage length, so rounds per stage stay constant', () => {
    // 250 / 4 = 62.5: 62 periodic syncs plus the stage-end sync.
    expect(rounds('iid', 5)).toEqual([63, 63, 63, 63, 63]);
  });
  test('fixed: the period stays (Local SGD on the stagewise lr), so rounds double with the stage length', () => {
    expect(rounds('fixed', 4)).toEqual([63, 125, 250, 500]);
    expect(stlStage(250 + 500 + 1000, 4, 250, 'fixed', 0.5)).toMatchObject({ stage: 3, period: 4, lrScale: 0.125 });
  });
  test('non-IID: the period grows by sqrt 2, so rounds grow by about sqrt 2 per stage', () => {
    const r = rounds('non-iid', 5);
    expect(stlStage(250 + 500, 4, 250, 'non-iid', 0.5).period).toBe(8);
    for (let s = 1; s < 5; s++) {
      expect(r[s] / r[s - 1]).toBeGreaterThan(1.25);
      expect(r[s] / r[s - 1]).toBeLessThan(1.6);
    }
  });
});

test('denseTensors: the named tensors go dense whatever their size (exact SGD on one rank), the others are compressed', async () => {
  const mk = (dense?: string[]) => createDistributedOptimizer({ comm, algorithm: 'ef-sgd', compressor: { type: 'topk', ratio: 0.01 }, lr: 0.1, minCompressSize: 1, ...(dense ? { denseTensors: dense } : {}) });
  const n = 3000, g = grads(n), v = Float32Array.from({ length: n }, (_, i) => Math.cos(i * 0.37));
  const a = mk(['w']), b = mk();
  const pa = { w: new Float32Array(n), b: new Float32Array(2), v: new Float32Array(n) }, pb = { w: new Float32Array(n), b: new Float32Array(2), v: new Float32Array(n) };
  await a.step(pa, { ...g, v });
  await b.step(pb, { ...g, v });
  // w took the plain SGD step in full; v (not named) only its top 1%.
  pa.w.forEach((x, i) => expect(Math.abs(x + 0.1 * g.w[i])).toBeLessThan(1e-6));
  expect(pa.v.filter((x) => x !== 0).length).toBe(30);
  expect(pb.w.filter((x) => x !== 0).length).toBe(30);
  expect(a.stats().bytesSent).toBeGreaterThan(b.stats().bytesSent + 4 * (n - 30) * 0.9);
});
