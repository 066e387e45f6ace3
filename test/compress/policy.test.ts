import { createPolicy, createCompressor, runSessions } from '../../lib';

describe('per-layer policy', () => {
  const shapes = {
    'conv1.weight': [64, 3, 7, 7], 'conv1.bias': [64], 'layer1.weight': [256, 256], 'tiny.weight': [8, 8],
    'embed.weight': [1000, 64], 'head.weight': [10, 256],
  };

  test('rules first, then 1-D and size skips, then the default; bytes are computed per compressor', () => {
    const p = createPolicy({
      default: { type: 'topk', ratio: 0.01 },
      rules: [{ match: /^embed/, use: { type: 'qsgd', levels: 127 } }, { match: 'head.weight', use: 'none' },
        { match: (m) => m.shape.length === 4, use: { type: 'powersgd', rank: 2 } }],
    });
    const { rows, text } = p.explain(shapes);
    const by = Object.fromEntries(rows.map((r) => [r.name, r]));
    expect(by['embed.weight']).toMatchObject({ reason: 'rule 0', spec: { type: 'qsgd' } });
    expect(by['head.weight']).toMatchObject({ reason: 'rule 1', spec: { type: 'none' }, expectedBytes: 4 * 2560 });
    expect(by['conv1.weight']).toMatchObject({ reason: 'rule 2', expectedBytes: 4 * 2 * (64 + 147) });
    expect(by['conv1.bias']).toMatchObject({ reason: '1-D tensor', spec: { type: 'none' } });
    expect(by['tiny.weight']).toMatchObject({ reason: 'under 1024 elements' });
    expect(by['layer1.weight']).toMatchObject({ reason: 'default', expectedBytes: 16 + 8 * 656 });
    expect(by['embed.weight'].expectedBytes).toBe(16 + 24 + 4 * 125 + 64000);
    expect(text).toContain('layer1.weight | [256, 256] | topk ratio=0.01 | default');
    expect(text.split('\n').pop()).toMatch(/^total/);
  });

  test('a default that cannot pay for itself goes dense (minRatio)', () => {
    const p = createPolicy({ default: { type: 'powersgd', rank: 64 }, minRatio: 2 });
    expect(p.decide('w', [100, 100]).reason).toBe('expected ratio under 2');
  });

  test('one compressor per spec; state round-trips through the policy', async () => {
    const p = createPolicy({ default: { type: 'topk', ratio: 0.1 } });
    const a = p.compressorFor('a', [64, 64]), b = p.compressorFor('b', [32, 64]);
    expect(a).toBe(b);
    const g = new Float32Array(4096).map((_, i) => Math.sin(i));
    runSessions([await a.begin('a', g, { step: 0 })]);
    const q = createPolicy({ default: { type: 'topk', ratio: 0.1 } });
    q.load(JSON.parse(JSON.stringify(p.state())));
    expect(Array.from(q.compressorFor('a', [64, 64]).residual('a')!)).toEqual(Array.from(a.residual('a')!));
  });

  test('bad options name the field', () => {
    expect(() => createPolicy({ default: { type: 'topk' } as never })).toThrow(expect.objectContaining({ param: 'spec.ratio' }));
    expect(() => createPolicy({ default: { type: 'none' }, rules: [{ match: 3 as never, use: 'none' }] })).toThrow(expect.objectContaining({ param: 'options.rules[0].match' }));
    expect(() => createPolicy({ default: { type: 'none' }, minNumel: -1 })).toThrow(expect.objectContaining({ param: 'options.minNumel' }));
    expect(() => createCompressor({ type: 'scalecom' } as never)).toThrow(expect.objectContaining({ param: 'spec.ratio' }));
  });

  test('explain with a link: the cost model\'s estimates, warnings where compression loses, the crossover rate', () => {
    const shapes = { 'fc.weight': [4096, 4096] };
    const q = createPolicy({ default: { type: 'qsgd', levels: 7 } });
    const n = 4096 * 4096, bytes = q.decide('fc.weight', [4096, 4096]).expectedBytes;
    // Independent arithmetic: ring traffic 2 (n-1)/n x dense vs (n-1) x payload gathered, 4 ns per element of compute.
    const crossover = ((1.5 * 4 * n - 3 * bytes) * 8) / ((4 * n) / 1e6 * 1e6);
    const slow = q.explain(shapes, { link: 'shared-memory', workers: 4 });
    expect(slow.warnings).toHaveLength(1);
    expect(slow.warnings[0]).toMatch(/^fc\.weight: qsgd is expected to be slower than dense/);
    expect(slow.rows[0].crossoverGbps).toBeCloseTo(crossover, 6);
    expect(slow.text).toContain('warning: fc.weight');
    const fine = q.explain(shapes, { link: 1, workers: 4 });
    expect(fine.warnings).toEqual([]);
    expect(fine.rows[0].compressedMs!).toBeLessThan(fine.rows[0].denseMs!);
    expect(fine.rows[0].denseMs).toBeCloseTo((1.5 * 4 * n) / (1e9 / 8 / 1e3), 6);
    // Without a link: no estimate and no warnings.
    expect(q.explain(shapes).warnings).toEqual([]);
    expect(q.explain(shapes).rows[0].denseMs).toBeUndefined();
    expect(() => q.explain(shapes, { link: 0 })).toThrow(expect.objectContaining({ param: 'options.link' }));
    expect(() => q.explain(shapes, { link: 1, workers: 0 })).toThrow(expect.objectContaining({ param: 'options.workers' }));
    // One worker: nothing to save, no warning for dense.
    expect(createPolicy({ default: { type: 'none' } }).explain(shapes, { link: 1 }).warnings).toEqual([]);
  });
});
