// One fuzzing process (started by scripts/fuzz.js): `calls` random calls at gradcomp's exports
// from a seeded stream, each judged by what it must do:
//   'reject': invalid arguments or an always-invalid payload (a wrong size, magic, version, bit
//             width or element count; a truncated checkpoint): must throw (or reject) a coded error;
//             accepting it is a wrong accept.
//   'accept': a valid call: must succeed (an error is counted as a wrong reject).
//   'either': a random mutation that may or may not be valid: a coded error, or a result of the
//             right shape.
// Any error without an ERR_GRADCOMP_ code counts as uncoded; a call that does not settle within
// 10 s as a hang. Prints one JSON line with the counts (and the first few failures) at the end.
'use strict';
const g = require(process.env.GRADCOMP_ENTRY || require('node:path').join(__dirname, '..', 'dist', 'lib', 'index.js'));

const seed = Number(process.argv[2] ?? 1) >>> 0, calls = Number(process.argv[3] ?? 1000);
let s = seed || 1;
const rand = () => { s = (s + 0x6d2b79f5) >>> 0; let t = s; t = Math.imul(t ^ (t >>> 15), t | 1); t ^= t + Math.imul(t ^ (t >>> 7), t | 61); return ((t ^ (t >>> 14)) >>> 0) / 4294967296; };
const int = (a, b) => a + Math.floor(rand() * (b - a + 1));
const pick = (xs) => xs[Math.floor(rand() * xs.length)];
const f32 = (n, scale = 1) => Float32Array.from({ length: n }, () => (rand() - 0.5) * scale);

function detached() { const a = new Float32Array(8); structuredClone(a.buffer, { transfer: [a.buffer] }); return a; }
const junk = () => pick([undefined, null, NaN, -1, 1.5, 2 ** 53, Infinity, 'x', '', {}, [], [1, 2], 10n, Symbol('s'), () => 1, new Int16Array(4),
  new Float64Array(8), new Uint8Array(3), detached(), new DataView(new ArrayBuffer(8))]);
const badInt = () => pick([-1, 0.5, NaN, Infinity, -Infinity, 2 ** 33, 2 ** 60, '3', null, {}, 10n]);

/** Always invalid: cut short, padded, or a header byte that defines the format flipped. */
function corrupt(p, headerBytes) {
  const m = rand();
  if (m < 0.35 && p.length > 1) return p.slice(0, int(0, p.length - 1));
  if (m < 0.55) { const c = new Uint8Array(p.length + int(1, 9)); c.set(p); return c; }
  const c = p.slice();
  c[pick(headerBytes)] ^= 1 << int(0, 7);
  return c;
}
/** Maybe invalid: a few random bit flips anywhere. */
function flip(p) {
  const c = p.slice();
  for (let k = int(1, 3); k > 0 && c.length; k--) c[int(0, c.length - 1)] ^= 1 << int(0, 7);
  return c;
}

const SPECS = [
  () => ({ type: 'topk', ratio: pick([0.01, 0.1, 0.5, 1]) }), () => ({ type: 'randk', ratio: pick([0.05, 0.3]) }), () => ({ type: 'efsign' }),
  () => ({ type: 'signum', beta: pick([0, 0.9]) }), () => ({ type: 'qsgd', levels: pick([1, 3, 7, 255]) }), () => ({ type: 'fp16' }), () => ({ type: 'bf16' }),
  () => ({ type: 'dgc', ratio: 0.1 }), () => ({ type: 'adacomp', binSize: pick([1, 7, 50]) }), () => ({ type: 'terngrad' }),
  () => ({ type: 'powersgd', rank: pick([1, 2, 4]) }), () => ({ type: 'scalecom', ratio: 0.1 }), () => ({ type: 'none' }),
];
const GATHERED = ['topk', 'efsign', 'signum', 'qsgd', 'fp16', 'bf16', 'dgc', 'adacomp', 'terngrad'];

/** Each generator returns [name, kind, fn, check?]; fn may return a Promise. */
const GENERATORS = [
  // Kernels with valid and invalid arguments.
  () => { const n = int(1, 3000), x = f32(n, 10 ** int(-3, 3)), k = int(0, n); return ['topK', 'accept', () => (rand() < 0.5 ? g.topKSync(x, k) : g.topK(x, k)), (r) => r.indices.length === k]; },
  () => ['topK', 'reject', () => g.topKSync(pick([junk(), f32(10)]), pick([badInt(), 11, -1]))],
  () => { const n = int(1, 2000), x = f32(n), r = f32(n), k = int(0, n); return ['efTopK', 'accept', () => g.efTopKSync(x, r, k), (o) => o.indices.length === k]; },
  () => ['efTopK', 'reject', () => g.efTopKSync(f32(10), pick([junk(), new Float32Array(9)]), 3)],
  () => { const x = f32(int(1, 3000), pick([1, 1e-30, 3e38])); return ['qsgdEncode', 'accept', () => g.qsgdEncodeSync(x, { levels: int(1, 300), seed: int(0, 1e6), norm: pick(['l2', 'max']), bucketSize: int(1, 5000) }), (p) => g.qsgdDecodeSync(p).length === x.length]; },
  () => ['qsgdEncode', 'reject', () => g.qsgdEncodeSync(pick([junk(), f32(4)]), pick([{ levels: badInt(), seed: 1 }, { levels: 3, seed: -1 }, { levels: 3, seed: 1, norm: 'L3' }, junk()]))],
  () => { const p = g.qsgdEncodeSync(f32(int(1, 500)), { levels: pick([1, 3, 7, 127]), seed: 3 }); return ['qsgdDecode', 'reject', () => (rand() < 0.5 ? g.qsgdDecodeSync(corrupt(p, [0, 1, 4, 6, 7, 9, 17, 20])) : g.qsgdDecode(corrupt(p, [0, 4, 6, 17])))]; },
  () => { const x = f32(int(1, 500)), p = g.qsgdEncodeSync(x, { levels: 7, seed: 3 }); return ['qsgdDecode', 'either', () => g.qsgdDecodeSync(flip(p), undefined, { maxElements: 1 << 20 }), (o) => o instanceof Float32Array]; },
  () => { const n = int(1, 3000), x = f32(n); return ['dropitPack', 'accept', () => { const r = g.dropitPackSync(x, rand()); return g.dropitUnpackSync(r.payload); }, (o) => o.length === n]; },
  () => { const p = g.dropitPackSync(f32(int(64, 2000)), rand()).payload; return ['dropitUnpack', 'reject', () => (rand() < 0.5 ? g.dropitUnpackSync(corrupt(p, [0, 1, 4, 5, 6, 16, 17])) : g.dropitUnpack(corrupt(p, [0, 4, 5, 16])))]; },
  () => { const n = int(64, 2000), p = g.dropitPackSync(f32(n), rand()).payload; return ['dropitUnpack', 'either', () => g.dropitUnpackSync(flip(p), undefined, { maxElements: 1 << 20 }), (o) => o.length <= 1 << 20]; },
  () => { const rows = int(1, 40), cols = int(1, 40), rank = int(1, 5); return ['powerSgdStep', 'accept', () => g.powerSgdStepSync({ m: f32(rows * cols), rows, cols, q: f32(cols * rank), rank }), (o) => o.p.length === rows * rank]; },
  () => ['powerSgdStep', 'reject', () => g.powerSgdStepSync(pick([junk(), { m: f32(12), rows: badInt(), cols: 4, q: f32(8), rank: 2 }, { m: f32(12), rows: 3, cols: 4, q: f32(7), rank: 2 }, { m: f32(12), rows: 3, cols: 4, q: f32(8), rank: badInt() }]))],
  () => { const rows = int(1, 40), cols = int(1, 40), rank = int(1, 5), w = f32(rows * cols), o = g.createOptimizer({ type: 'sgd', lr: 0.1, momentum: pick([0, 0.9]) });
    return ['updateLowRank', 'accept', () => o.updateLowRank('x', w, { p: f32(rows * rank), q: f32(cols * rank), rows, cols, rank, residual: pick([null, f32(rows * cols)]) }), () => w.every(Number.isFinite)]; },
  () => { const o = g.createOptimizer({ type: 'sgd', lr: 0.1, momentum: 0.9 });
    return ['updateLowRank', 'reject', () => o.updateLowRank('x', pick([f32(12), f32(12), junk()]), pick([junk(), { p: f32(6), q: f32(8), rows: 3, cols: 5, rank: 2, residual: null },
      { p: f32(6), q: f32(8), rows: 3, cols: badInt(), rank: 2, residual: null }, { p: f32(6), q: f32(8), rows: 3, cols: 4, rank: badInt(), residual: null },
      { p: f32(6), q: f32(8), rows: 3, cols: 4, rank: 2, residual: f32(11) }, { p: junk(), q: f32(8), rows: 3, cols: 4, rank: 2, residual: null }]))]; },
  () => { const n = int(1, 3000), w = f32(n), o = g.createOptimizer({ type: 'sgd', lr: 0.1, momentum: pick([0, 0.9]), weightDecay: pick([0, 1e-3]) });
    const parts = Array.from({ length: int(1, 5) }, () => [...new Set(Array.from({ length: int(0, 50) }, () => int(0, n - 1)))].sort((a, b) => a - b));
    const g1 = { indices: Uint32Array.from(parts.flat()), values: f32(parts.flat().length), counts: Uint32Array.from(parts.map((q) => q.length)) };
    return ['updateSparse', 'accept', () => o.updateSparse('x', w, g1, { async: rand() < 0.5 }), () => w.every(Number.isFinite)]; },
  () => { const o = g.createOptimizer({ type: 'sgd', lr: 0.1, momentum: 0.9 }), n = 20;
    return ['updateSparse', 'reject', () => o.updateSparse('x', pick([f32(n), f32(n), junk()]), pick([junk(), { indices: Uint32Array.of(3, 3), values: f32(2), counts: Uint32Array.of(2) },
      { indices: Uint32Array.of(3, n), values: f32(2), counts: Uint32Array.of(2) }, { indices: Uint32Array.of(5, 2), values: f32(2), counts: Uint32Array.of(2) },
      { indices: Uint32Array.of(1, 2), values: f32(1), counts: Uint32Array.of(2) }, { indices: Uint32Array.of(1, 2), values: f32(2), counts: Uint32Array.of(1) },
      { indices: junk(), values: f32(2), counts: Uint32Array.of(2) }, { indices: Uint32Array.of(1, 2), values: f32(2), counts: junk() }]), { async: rand() < 0.5 })]; },
  () => { const n = int(1, 3000), levels = pick([1, 5, 7, 127]), w = f32(n), o = g.createOptimizer({ type: 'sgd', lr: 0.1, momentum: pick([0, 0.9]) });
    const ps = Array.from({ length: int(1, 4) }, (_, j) => g.qsgdEncodeSync(f32(n), { levels, seed: j })), data = new Uint8Array(ps.reduce((a, p) => a + p.length, 0));
    const spans = new Float64Array(2 * ps.length);
    ps.reduce((off, p, j) => { data.set(p, off); spans[2 * j] = off; spans[2 * j + 1] = p.length; return off + p.length; }, 0);
    return ['updateQuantized', 'accept', () => o.updateQuantized('x', w, { data, spans }), () => w.every(Number.isFinite)]; },
  () => { const n = int(1, 500), p = g.qsgdEncodeSync(f32(n), { levels: pick([3, 5, 7]), seed: 2 }), o = g.createOptimizer({ type: 'sgd', lr: 0.1, momentum: 0.9 }), c = corrupt(p, [0, 4, 6, 17, 20]);
    return ['updateQuantized', 'reject', () => o.updateQuantized('x', pick([f32(n), f32(n + 1), junk()]), pick([junk(), { data: c, spans: Float64Array.of(0, c.length) },
      { data: p, spans: Float64Array.of(1, p.length) }, { data: p, spans: Float64Array.of(0, p.length - 1) }, { data: p, spans: junk() }, { data: junk(), spans: Float64Array.of(0, 8) }]))]; },
  () => ['orthonormalize', 'reject', () => g.orthonormalizeSync(pick([junk(), f32(10)]), pick([junk(), { rows: 3, rank: 4 }, { rows: badInt(), rank: 1 }]))],
  () => ['Tensor', 'reject', () => pick([() => g.Tensor.zeros(pick([[2 ** 31, 2 ** 31], [-1], [1.5], [NaN], ['2'], null, 'x', 3, [2 ** 33]])), () => g.Tensor.from(junk(), [2]), () => { const t = g.Tensor.from(f32(4)); t.dispose(); return t.data; }])()],
  // Compressors: random specs (valid and not), hostile sessions, mutated payloads.
  () => ['createCompressor', 'reject', () => g.createCompressor(pick([junk(), { type: 'nope' }, { type: 'topk' }, { type: 'topk', ratio: pick([0, 2, NaN, '0.1']) }, { type: 'qsgd', levels: badInt() }, { type: 'powersgd', rank: badInt() }]))],
  () => hostileSession(),
  () => mutatedPayload(),
  // Optimizers, policies, checkpoints.
  () => ['optimizer', 'reject', () => { const o = g.createOptimizer(pick([{ type: 'sgd', lr: 0.1 }, { type: 'novograd', lr: 0.1 }])); return rand() < 0.5 ? o.step({ w: f32(4) }, pick([junk(), { w: f32(3) }, { v: f32(4) }, { w: f32(4), v: f32(2) }, undefined])) : o.step(junk(), { w: f32(3) }); }],
  () => ['createOptimizer', 'reject', () => g.createOptimizer(pick([junk(), { type: 'adam', lr: 1 }, { type: 'sgd', lr: pick([-1, -0.5, NaN, Infinity]) }, { type: 'sgd', lr: 1, momentum: pick([1, -0.1]) }]))],
  () => ['policy', 'reject', () => g.createPolicy(pick([junk(), { default: junk() }, { default: { type: 'none' }, rules: [{ match: 3, use: 'none' }] }, { default: { type: 'none' }, minNumel: -1 }]))],
  () => { const state = { a: f32(int(0, 300)), b: { c: new Uint8Array(int(0, 40)), d: 'x', e: [1, null, 2.5] } }; const bytes = Buffer.concat(g.encodeCheckpoint(state)); return ['decodeCheckpoint', 'reject', () => g.decodeCheckpoint(corrupt(new Uint8Array(bytes), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 13, 14, 15]))]; },
  () => { const state = { a: f32(int(1, 300)) }; const bytes = Buffer.concat(g.encodeCheckpoint(state)); return ['decodeCheckpoint', 'either', () => g.decodeCheckpoint(flip(new Uint8Array(bytes))), (o) => o !== undefined]; },
];

function hostileSession() {
  const spec = pick(SPECS)(), n = pick([16, 64, 256]), shape = n === 256 ? [16, 16] : [n];
  const c = g.createCompressor(spec);
  return ['session:' + spec.type, 'either', async () => {
    const sess = await c.begin('w', f32(n), pick([{ step: int(0, 5), rank: 0, workers: 2, shape }, { step: 0, rank: 1, workers: 2, shape }]));
    let guard = 0;
    while (sess.round && guard++ < 4) {
      const d = sess.round.data, m = rand();
      if (sess.round.collective === 'allreduce') sess.receive(m < 0.3 ? new Float32Array(d.length + pick([-1, 1, 7])) : m < 0.4 ? junk() : m < 0.5 ? new Float32Array(d.length).fill(NaN) : d.slice());
      else sess.receive(m < 0.3 ? [d] : m < 0.4 ? junk() : m < 0.6 ? [d, flip(d)] : [d, d.slice()]);
    }
    return sess.result();
  }, (r) => r.length === n];
}

function mutatedPayload() {
  const type = pick(GATHERED), spec = SPECS.map((f) => f()).find((x) => x.type === type), n = int(8, 600);
  const c = g.createCompressor(spec);
  return ['decompress:' + type, rand() < 0.5 ? 'reject' : 'either', async function () {
    const p = await c.compress('t', f32(n), { step: 1 });
    const bad = this.kind === 'reject' ? (rand() < 0.5 ? p.slice(0, int(0, p.length - 1)) : (() => { const q = new Uint8Array(p.length + int(1, 8)); q.set(p); return q; })()) : flip(p);
    if (rand() < 0.5) return c.decompress([bad], n);
    // Several workers' payloads as views of one receive buffer (the fused decoders' input), the bad one anywhere.
    const parts = [p, bad, p.slice()].sort(() => rand() - 0.5), whole = new Uint8Array(parts.reduce((a, q) => a + q.length, 0));
    let at = 0;
    return c.decompress(parts.map((q) => { whole.set(q, at); at += q.length; return whole.subarray(at - q.length, at); }), n);
  }, (o) => o.length === n];
}

const isCoded = (e) => e && typeof e.code === 'string' && e.code.startsWith('ERR_GRADCOMP_');
const within = (p, ms) => new Promise((resolve, reject) => {
  const t = setTimeout(() => reject(Object.assign(new Error('hang'), { hang: true })), ms);
  p.then((v) => { clearTimeout(t); resolve(v); }, (e) => { clearTimeout(t); reject(e); });
});

(async () => {
  const out = { seed, calls: 0, ok: 0, coded: 0, uncoded: 0, hangs: 0, wrongAccepts: 0, wrongRejects: 0, badResults: 0, failures: [] };
  const note = (what, name, detail) => { if (out.failures.length < 20) out.failures.push({ what, name, call: out.calls, detail: String(detail).slice(0, 300) }); };
  for (let i = 0; i < calls; i++) {
    const [name, kind, fn, check] = pick(GENERATORS)();
    out.calls++;
    let result, error;
    try {
      const r = fn.call({ kind });
      result = r && typeof r.then === 'function' ? await within(r, 10000) : r;
    } catch (e) { error = e; }
    if (error) {
      if (error.hang) { out.hangs++; note('hang', name, ''); } else if (!isCoded(error)) { out.uncoded++; note('uncoded', name, error.stack || error); } else {
        out.coded++;
        if (kind === 'accept') { out.wrongRejects++; note('wrong reject', name, error.message); }
      }
    } else {
      out.ok++;
      if (kind === 'reject') { out.wrongAccepts++; note('wrong accept', name, ''); } else if (check && !check(result)) { out.badResults++; note('bad result', name, ''); }
    }
    if (i % 2000 === 1999) process.stderr.write(`fuzz ${seed}: ${i + 1}/${calls}\n`);
  }
  process.stdout.write('GRADCOMP_FUZZ ' + JSON.stringify(out) + '\n');
})().catch((e) => { process.stderr.write(String(e && e.stack || e) + '\n'); process.exit(3); });
