import { Tensor, DisposedError, GradcompTypeError, GradcompRangeError, efTopKSync, topKSync } from '../../lib';

describe('Tensor', () => {
  test('zero-copy views with dtype, shape and device', () => {
    const data = new Float32Array([1, 2, 3, 4, 5, 6]);
    const t = Tensor.from(data, [2, 3]);
    expect(t.dtype).toBe('float32');
    expect(t.shape).toEqual([2, 3]);
    expect(t.device).toBe('cpu');
    expect(t.size).toBe(6);
    expect(t.data).toBe(data);
    data[0] = 9;
    expect(t.data[0]).toBe(9);
    expect(Tensor.from(new Uint8Array(4)).dtype).toBe('uint8');
    expect(Tensor.from(new Int32Array(4)).dtype).toBe('int32');
    expect(Tensor.from(new Uint32Array(4)).dtype).toBe('uint32');
    expect(Tensor.from(new Float64Array(4)).dtype).toBe('float64');
    expect(Tensor.zeros([2, 2], 'float64').data).toEqual(new Float64Array(4));
    expect(t.reshape([3, 2]).shape).toEqual([3, 2]);
  });

  test('bad arguments are typed errors naming the parameter', () => {
    expect(() => Tensor.from([1, 2] as unknown as Float32Array)).toThrow(GradcompTypeError);
    expect(() => Tensor.from(new Int16Array(2) as unknown as Float32Array)).toThrow(/data/);
    expect(() => Tensor.from(new Float32Array(6), [4, 2])).toThrow(GradcompRangeError);
    expect(() => Tensor.zeros([2, -1])).toThrow(/shape/);
    expect(() => Tensor.zeros([2], 'int8' as 'int32')).toThrow(/dtype/);
  });

  test('use after dispose throws DisposedError; Symbol.dispose works', async () => {
    const t = Tensor.from(new Float32Array(4));
    t.dispose();
    t.dispose(); // idempotent
    expect(t.disposed).toBe(true);
    expect(() => t.data).toThrow(DisposedError);
    expect(() => topKSync(t, 1)).toThrow(expect.objectContaining({ code: 'ERR_GRADCOMP_DISPOSED' }));
    await expect(t.toArray()).rejects.toThrow(DisposedError);
    const u = Tensor.from(new Float32Array(2));
    u[Symbol.dispose]();
    expect(u.disposed).toBe(true);
  });

  test('ops take Tensors and TypedArrays alike', () => {
    const g = new Float32Array([1, -5, 2, 0.5]);
    const r = Tensor.from(new Float32Array(4));
    const out = efTopKSync(Tensor.from(g), r, 2);
    expect(Array.from(out.indices)).toEqual([1, 2]);
    expect(Array.from(r.data)).toEqual([1, 0, 0, 0.5]);
  });

  test('toArray copies', async () => {
    const t = Tensor.from(new Uint32Array([1, 2]));
    const a = await t.toArray();
    a[0] = 5;
    expect(t.data[0]).toBe(1);
  });
});
