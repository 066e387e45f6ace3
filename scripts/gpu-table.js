// Writes the README's GPU table (between <!-- gpu-table:start --> and <!-- gpu-table:end -->)
// from a bench/results/<gpu>.json written by `npm run bench:gpu`.
//   node scripts/gpu-table.js bench/results/h100-80gb-hbm3.json
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const file = process.argv[2] || path.join(__dirname, '..', 'bench', 'results', 'h100-80gb-hbm3.json');
const doc = JSON.parse(fs.readFileSync(file, 'utf8'));
const big = 2 ** 28;
const ms = (v) => (v < 0.1 ? v.toFixed(4) : v.toFixed(3));
const lines = [];
lines.push(`Measured on ${doc.device.name} (driver ${doc.driverVersion}, CUDA runtime ${doc.runtimeVersion}), ${doc.when.slice(0, 10)}; `
  + `device copy ${doc.copyGBs.toFixed(0)} GB/s (read + write) in the same run; torch ${doc.torch} on the same GPU in the same run. `
  + 'Medians of CUDA-event timings, L2 flushed between runs. "floor" = minimal bytes / copy bandwidth / time.');
lines.push('');
lines.push('| op | size | params | ms | % of floor | torch baseline ms | speedup |');
lines.push('|---|---|---|---|---|---|---|');
for (const r of doc.rows) {
  if (r.op === 'copy') continue;
  if (r.n !== big && !(r.op === 'orth')) continue;
  const size = r.op === 'orth' ? '100 matrices' : '2^28';
  const torch = r.torchMs == null ? '' : `${ms(r.torchMs)}${r.torchBatchedMs ? ` (batched: ${ms(r.torchBatchedMs)})` : ''}`;
  lines.push(`| ${r.label} | ${size} | ${r.param} | ${ms(r.ms)} | ${r.floorFraction ? (100 * r.floorFraction).toFixed(0) + '%' : ''} | ${torch} | ${r.speedup ? r.speedup.toFixed(1) + 'x' : ''} |`);
}
const small = doc.rows.filter((r) => r.op === 'eftopk' && r.param === 'k = 1%' && r.n < big);
lines.push('');
lines.push('Fused EF top-k at k = 1% for smaller n (ms, torch in brackets): '
  + small.map((r) => `2^${Math.log2(r.n)}: ${ms(r.ms)} (${ms(r.torchMs)})`).join(', ') + '.');
const readme = path.join(__dirname, '..', 'README.md');
const text = fs.readFileSync(readme, 'utf8');
const start = '<!-- gpu-table:start -->', end = '<!-- gpu-table:end -->';
const a = text.indexOf(start), b = text.indexOf(end);
if (a < 0 || b < a) { console.error('README has no gpu-table markers'); process.exit(1); }
fs.writeFileSync(readme, text.slice(0, a + start.length) + '\n' + lines.join('\n') + '\n' + text.slice(b));
console.log(lines.join('\n'));
