// Prints the README's benchmark table (markdown) from a `npm run bench -- --json` result file.
// usage: node scripts/bench-table.js bench/results/<machine>.json [n-exponent=24]
'use strict';
const fs = require('node:fs');
const [file, exp = '24'] = process.argv.slice(2);
const { machine, rows } = JSON.parse(fs.readFileSync(file, 'utf8'));
const n = 2 ** Number(exp);
const f = (v, d = 2) => v.toFixed(d);
const out = [];
out.push(`Machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memGiB} GiB, ${machine.isa} kernels, Node ${machine.node}; ` +
  `memcpy ${f(machine.memcpyColdGBps, 1)} GB/s (read + write, 2 x 512 MiB); baselines: ${machine.torch}; ${machine.tfjs}. n = 2^${exp}, medians.`);
out.push('');
out.push('| kernel | param | hot ms | cold ms | GB/s (cold) | time / floor (cold) | baselines: ms (our speedup, hot) |');
out.push('|---|---|---|---|---|---|---|');
for (const r of rows.filter((x) => x.n === n)) {
  const bl = Object.entries(r.baselines).map(([k, v]) => `${k} ${f(v.ms, 1)} (${f(v.speedup, 1)}x)`).join(', ') || '-';
  out.push(`| ${r.kernel} | ${r.param} | ${f(r.hotMs)} | ${f(r.coldMs)} | ${f(r.gbpsCold, 1)} | ${f(r.floorCold)} | ${bl} |`);
}
if (Array.isArray(JSON.parse(fs.readFileSync(file, 'utf8')).compressors)) {
  const cs = JSON.parse(fs.readFileSync(file, 'utf8')).compressors;
  out.push('');
  out.push('Compressors (lib/compress), one worker, compress + decompress of a 1024 x 1024 fp32 gradient (4 MiB):');
  out.push('');
  out.push('| compressor | spec | ms | dense GB/s | bytes sent | ratio |');
  out.push('|---|---|---|---|---|---|');
  for (const c of cs) out.push(`| ${c.type} | \`${c.spec}\` | ${f(c.ms)} | ${f(c.gbps)} | ${c.bytesSent} | ${f(c.ratio, 1)}x |`);
}
const comm = JSON.parse(fs.readFileSync(file, 'utf8')).communicators;
if (Array.isArray(comm) && comm.length) {
  out.push('');
  out.push('Communicators: median time per collective, float32, bytes per rank (allgatherv sends about half of that per rank):');
  out.push('');
  out.push('| backend | ranks | collective | bytes per rank | ms | GB/s |');
  out.push('|---|---|---|---|---|---|');
  for (const c of comm) out.push(`| ${c.backend} | ${c.ranks} | ${c.op} | ${c.bytes} | ${f(c.ms, 3)} | ${f(c.gbps)} |`);
}
console.log(out.join('\n'));
