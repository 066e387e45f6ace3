/**
 * TracIn's kernels on the GPU against the CPU as oracle (itself checked against a float64
 * reference in test/analysis/tracin.test.ts): the factorized score and the row sums of squares,
 * bit for bit, on fresh random factors with NaN, infinities and shapes that do not fill a launch
 * tile. Without a usable GPU every case skips and says why.
 */
import { Tensor } from '../../lib';
import { rowsSumSq, rowsSumSqAsync, tracinScore } from '../../lib/ops/kernels';
import { freshSeed, mulberry32, sample } from '../reference/rng';
import { cudaSkipReason } from '../helpers/cuda';

const seed = freshSeed();
const rand = mulberry32(seed);
const reason = cudaSkipReason();
const it = reason === '' ? test : test.skip;
// At load, not in beforeAll: jest runs no hook in a file whose every test is skipped.
console.log(reason ? `test/cuda/tracin skipped: no usable CUDA backend here (${reason})` : `cuda tracin tests: GRADCOMP_TEST_SEED=${seed}`);
const bits = (a: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('hex');

it.each([[1, 1, 1, 1], [37, 5, 129, 10], [300, 70, 33, 3], [1000, 256, 129, 10]])('tracinScore n=%i m=%i p=%i c=%i: the GPU gives the CPU\'s bits', async (n, m, p, c) => {
  const [a, b, d, e] = [n * p, m * p, n * c, m * c].map((k) => sample('gaussian', k, rand));
  if (n * p > 10) { a[3] = NaN; b[2] = Infinity; }
  const s0 = sample('gaussian', n * m, rand), eta = 0.01 + rand();
  const want = s0.slice();
  await tracinScore(a, b, d, e, { n, m, p, c }, eta, want);
  const dev = await Promise.all([a, b, d, e, s0].map((x) => Tensor.from(x).to('cuda')));
  await tracinScore(dev[0], dev[1], dev[2], dev[3], { n, m, p, c }, eta, dev[4]);
  expect(bits((await dev[4].to('cpu')).data)).toBe(bits(want));
  for (const t of dev) t.dispose();
});

it.each([[1, 1], [1000, 129], [17, 70000]])('rowsSumSq %i rows of %i: the GPU gives the CPU\'s bits', async (rows, cols) => {
  const x = sample('heavy', rows * cols, rand), want = new Float64Array(rows);
  rowsSumSq(x, cols, want);
  const dx = await Tensor.from(x).to('cuda'), dout = await Tensor.from(new Float64Array(rows)).to('cuda');
  await rowsSumSqAsync(dx, cols, dout);
  expect(bits((await dout.to('cpu')).data)).toBe(bits(want));
  dx.dispose();
  dout.dispose();
});
