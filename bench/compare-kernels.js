// Same-run comparison of the kernels' floor ratios between two builds of gradcomp (for example the
// previous commit's, checked out with `git worktree add` and built, and this one):
//   node bench/compare-kernels.js /path/to/old/checkout /path/to/new/checkout [--rounds 3] [--log2 22]
// Each round times every kernel with each build in turn (interleaved, so a busy machine slows
// both alike): median of hot runs, and cold runs rotating through >= 512 MiB of inputs; "floor x"
// is time / (minimal bytes / memcpy bandwidth), memcpy measured by the same build in the same
// round. Prints a table and, with --json FILE, writes the numbers.
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const args = process.argv.slice(2);
const opt = (name, def) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : def; };
const roots = args.filter((a, i) => !a.startsWith('--') && !(i > 0 && args[i - 1].startsWith('--')));
if (roots.length !== 2) { console.error('usage: node bench/compare-kernels.js OLD_CHECKOUT NEW_CHECKOUT [--rounds N] [--log2 E] [--json FILE]'); process.exit(2); }
const rounds = Number(opt('--rounds', 3)), log2 = Number(opt('--log2', 22)), jsonOut = opt('--json');

// One build's measurements, in a child process (each build loads its own addon).
const child = `
const g = require(process.argv[1] + '/dist/lib/index.js');
const b = require(process.argv[1] + '/dist/lib/native/loader.js').loadBinding();
const n = 2 ** Number(process.argv[2]), { performance } = require('node:perf_hooks');
const med = (xs) => xs.sort((a, c) => a - c)[Math.floor(xs.length / 2)];
const time = (fn, reps) => { fn(0); const ts = []; for (let i = 1; i <= reps; i++) { const t0 = performance.now(); fn(i); ts.push(performance.now() - t0); } return med(ts) / 1e3; };
const gauss = (m, seed) => { const x = new Float32Array(m); let s = seed >>> 0; for (let i = 0; i < m; i++) { s = (s * 1664525 + 1013904223) >>> 0; const u = (s + 1) / 4294967297; s = (s * 1664525 + 1013904223) >>> 0; x[i] = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * s / 4294967296); } return x; };
const sets = Math.max(2, Math.ceil((512 << 20) / (8 * n)));
const G = Array.from({ length: sets }, (_, i) => gauss(n, 1 + i)), R = Array.from({ length: sets }, (_, i) => gauss(n, 100 + i));
const big = 256 << 20, src = new Uint8Array(big).fill(1), dst = new Uint8Array(big);
const memcpy = (2 * big) / time(() => b.baselineMemcpy(dst, src), 3);
const rows = [];
const measure = (kernel, param, bytes, fn) => {
  const hot = time(() => fn(0), 7); let k = 0; const cold = time(() => fn(1 + (k++ % (sets - 1))), Math.min(7, sets - 1));
  rows.push({ kernel, param, hotMs: hot * 1e3, coldMs: cold * 1e3, floorCold: cold / (bytes / memcpy) });
};
for (const f of [0.001, 0.01, 0.1]) {
  const k = Math.round(n * f), out = { out: { indices: new Uint32Array(k), values: new Float32Array(k) } };
  measure('efTopK', 'k=' + f * 100 + '%', 12 * n + 8 * k, (s) => g.efTopKSync(G[s], R[s], k, out));
  measure('topK', 'k=' + f * 100 + '%', 4 * n + 8 * k, (s) => g.topKSync(G[s], k, out));
}
for (const levels of [1, 7, 127]) {
  const bits = 1 + Math.ceil(Math.log2(levels + 1)), opts = { levels, seed: 1, step: 0 }, bytes = 4 * n + (n * bits) / 8 + (4 * n) / 512;
  const outP = new Uint8Array(g.qsgdPayloadBytes(n, { levels })), pay = G.map((x) => g.qsgdEncodeSync(x, opts)), outF = new Float32Array(n);
  measure('qsgdEncode', 'levels=' + levels, bytes, (s) => g.qsgdEncodeSync(G[s], { ...opts, out: outP }));
  measure('qsgdDecode', 'levels=' + levels, bytes, (s) => g.qsgdDecodeSync(pay[s], outF));
}
const rows2 = 2 ** Math.floor(Math.log2(n) / 2), cols = n / rows2, q = gauss(cols * 4, 7), p = new Float32Array(rows2 * 4);
measure('powerSgdStep', rows2 + 'x' + cols + ' r=4', 8 * n, (s) => g.powerSgdStepSync({ m: G[s], rows: rows2, cols, q, rank: 4, p }));
for (const gamma of [0.5, 0.9]) {
  const packed = G.map((x) => g.dropitPackSync(x, gamma)), bytes = 4 * n + packed[0].byteLength;
  const outP = new Uint8Array(packed[0].byteLength), outF = new Float32Array(n);
  measure('dropitPack', 'gamma=' + gamma, bytes, (s) => g.dropitPackSync(G[s], gamma, { out: outP }));
  measure('dropitUnpack', 'gamma=' + gamma, bytes, (s) => g.dropitUnpackSync(packed[s], outF));
}
process.stdout.write(JSON.stringify({ memcpyGBs: memcpy / 1e9, rows }));
`;

const results = roots.map(() => []);
for (let r = 0; r < rounds; r++) {
  roots.forEach((root, i) => {
    const out = execFileSync(process.execPath, ['-e', child, path.resolve(root), String(log2)], { encoding: 'utf8', maxBuffer: 1 << 26 });
    results[i].push(JSON.parse(out));
    process.stderr.write(`round ${r + 1}/${rounds}: ${path.basename(path.resolve(root))} done\n`);
  });
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const table = results[0][0].rows.map((row, j) => {
  const pick = (i, key) => median(results[i].map((res) => res.rows[j][key]));
  return { kernel: row.kernel, param: row.param, oldMs: pick(0, 'coldMs'), newMs: pick(1, 'coldMs'), oldFloor: pick(0, 'floorCold'), newFloor: pick(1, 'floorCold') };
});
const memcpy = roots.map((_, i) => median(results[i].map((res) => res.memcpyGBs)));
console.log(`n = 2^${log2}, ${rounds} interleaved rounds; memcpy old ${memcpy[0].toFixed(1)} GB/s, new ${memcpy[1].toFixed(1)} GB/s (read + write)`);
console.log('| kernel | param | old cold ms | new cold ms | old floor x | new floor x | new / old |');
console.log('|---|---|---|---|---|---|---|');
for (const t of table) console.log(`| ${t.kernel} | ${t.param} | ${t.oldMs.toFixed(3)} | ${t.newMs.toFixed(3)} | ${t.oldFloor.toFixed(2)} | ${t.newFloor.toFixed(2)} | ${(t.newFloor / t.oldFloor).toFixed(2)} |`);
if (jsonOut) fs.writeFileSync(jsonOut, JSON.stringify({ log2, rounds, roots: roots.map((r) => path.resolve(r)), memcpy, table, date: new Date().toISOString() }, null, 2) + '\n');
