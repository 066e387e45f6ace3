#!/usr/bin/env node
// Turns an end-to-end benchmark result (bench/results/e2e-<machine>.json, written by
// `npm run bench:e2e`) into the chart docs/img/e2e-speedup.svg (vega-lite, rendered to SVG with
// no canvas) and the table between the e2e markers of docs/benchmarks.md.
//
//   node scripts/e2e-report.mjs [bench/results/e2e-<machine>.json]
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as vega from 'vega';
import * as vl from 'vega-lite';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const results = path.join(root, 'bench', 'results');
const input = process.argv[2] ?? fs.readdirSync(results).filter((f) => /^e2e-.*\.json$/.test(f))
  .map((f) => path.join(results, f)).sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs)[0];
if (!input) { console.error('no bench/results/e2e-*.json: run npm run bench:e2e first'); process.exit(1); }
const doc = JSON.parse(fs.readFileSync(input, 'utf8'));

const linkName = (l) => (l === 'none' ? 'unshaped veth' : l === 'shared memory' ? 'local (shared memory)' : l.replace('gbit', ' Gbit/s'));
const linkOrder = ['1 Gbit/s', '10 Gbit/s', 'unshaped veth', 'local (shared memory)'];
const rows = doc.rows.filter((r) => r.speedup !== undefined).map((r) => ({ ...r, linkName: linkName(r.link) }));
const labels = doc.configs.map((c) => c.label);

// The chart: speedup over dense (deterministic: false) per config, one bar per link.
const spec = {
  $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
  title: { text: 'Training step speedup over dense data-parallel SGD (same run)', subtitle: `${doc.model.parameters / 1e6}M parameters, 4 ranks; ${doc.topology}` },
  data: { values: rows.map((r) => ({ config: r.label, link: r.linkName, speedup: Number(r.speedup.toFixed(2)), ms: Math.round(r.wallMs) })) },
  width: 560, height: { step: 9 },
  layer: [
    {
      mark: { type: 'bar' },
      encoding: {
        y: { field: 'config', type: 'nominal', sort: labels, title: null, axis: { labelLimit: 260 } },
        yOffset: { field: 'link', sort: linkOrder },
        x: { field: 'speedup', type: 'quantitative', scale: { type: 'log', domain: [0.125, 16] }, title: 'speedup over dense (log scale; the dashed line is 1)' },
        color: { field: 'link', sort: linkOrder, title: 'link', scale: { scheme: 'tableau10' } },
        tooltip: [{ field: 'config' }, { field: 'link' }, { field: 'speedup' }, { field: 'ms', title: 'ms / step' }],
      },
    },
    { mark: { type: 'rule', color: '#444', strokeDash: [4, 3] }, encoding: { x: { datum: 1 } } },
  ],
  config: { font: 'sans-serif', background: 'white' },
};
const compiled = vl.compile(spec).spec;
const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
const svg = await view.toSVG();
fs.mkdirSync(path.join(root, 'docs', 'img'), { recursive: true });
fs.writeFileSync(path.join(root, 'docs', 'img', 'e2e-speedup.svg'), svg);

// The table.
const f0 = (x) => (x === undefined || x === null ? '-' : x.toFixed(0));
const lines = [];
const m = doc.machine;
lines.push(`Measured ${m.date.slice(0, 10)} on ${m.cpu}, ${m.cores} cores, ${m.memGiB} GiB, Node ${m.node}, ${m.threadsPerRank} kernel thread(s) per rank. ` +
  `${doc.model.parameters.toLocaleString('en-US')} parameters (${doc.model.layout}), ${doc.model.optimizer}. ${doc.topology}. ` +
  'Per-step medians (periodic algorithms: means over whole periods); the breakdown is wall time inside collectives, in compression ' +
  'kernels, in optimizer updates, and the rest (these overlap, so they need not add up).');
lines.push('');
for (const [rate, l] of Object.entries(doc.links ?? {})) {
  const floor = doc.ringFloorMs?.[rate];
  lines.push(`- ${linkName(rate)}: a TCP stream carries ${l.gbps?.toFixed(2) ?? '?'} Gbit/s` + (floor ? `; the ring floor of a dense step at the nominal rate is ${f0(floor)} ms.` : '.'));
}
for (const c of doc.collectives ?? []) {
  const pct = (u) => (u === null || u === undefined ? '' : ` (${(100 * u).toFixed(0)}% of ${c.backend === 'mpi' ? 'what one TCP stream carries' : 'memcpy with every rank copying'})`);
  const plain = (ms, u) => (ms === undefined ? '' : `; a plain array: ${f0(ms)} ms${pct(u)}`);
  lines.push(`- collectives, ${linkName(c.link)}, on buffers from \`comm.alloc()\`: allreduce of ${(c.allreduceBytes / 1e6).toFixed(1)} MB ${f0(c.allreduceMs)} ms${pct(c.allreduceUse)}` +
    `${plain(c.allreducePlainMs, c.allreducePlainUse)}; allgatherv of ${c.ranks} x ${(c.allgathervBytes / 1e6).toFixed(1)} MB ${f0(c.allgathervMs)} ms${pct(c.allgathervUse)}` +
    `${plain(c.allgathervPlainMs, c.allgathervPlainUse)}.`);
}
if (doc.skipped) lines.push(`- ${doc.skipped}`);
const cf = doc.computeFloors ?? {};
if (Object.keys(cf).length) {
  lines.push(`- compute floor: each config on one rank alone (no communication, ${m.threadsPerRank} thread(s)), times the ranks sharing each core ` +
    `(4 ranks on ${m.cores} cores). A step on the two-host topology cannot beat it, whatever the link; "at most" is dense's step over that floor, ` +
    'the speedup this machine allows.');
}
lines.push('');
lines.push('| link | config | ms / step | comm | compress | optimizer | other | MB sent / rank / step | speedup | compute floor ms (at most) |');
lines.push('|---|---|---|---|---|---|---|---|---|---|');
for (const link of linkOrder) {
  for (const r of rows.filter((x) => x.linkName === link)) {
    const dense = rows.find((x) => x.config === 'dense' && x.linkName === link), floor = r.backend === 'mpi' ? cf[r.config]?.floorMs : undefined;
    const allows = floor && dense ? ` (${(dense.wallMs / floor).toFixed(1)}x)` : '';
    lines.push(`| ${link} | ${r.label} | ${f0(r.wallMs)} | ${f0(r.commMs)} | ${f0(r.compressMs)} | ${f0(r.optimizerMs)} | ${f0(r.otherMs)} | ` +
      `${(r.bytesPerStep / 1e6).toFixed(2)} | ${r.speedup.toFixed(2)}x | ${floor ? f0(floor) + allows : '-'} |`);
  }
}
const table = lines.join('\n');
const mdFile = path.join(root, 'docs', 'benchmarks.md');
const md = fs.existsSync(mdFile) ? fs.readFileSync(mdFile, 'utf8') : '';
const begin = '<!-- e2e:begin -->', end = '<!-- e2e:end -->';
if (!md.includes(begin)) { console.error(`${mdFile} has no ${begin} marker`); process.exit(1); }
fs.writeFileSync(mdFile, md.slice(0, md.indexOf(begin) + begin.length) + '\n' + table + '\n' + md.slice(md.indexOf(end)));
// The README's summary: speedup per config and link.
const readmeFile = path.join(root, 'README.md');
const readme = fs.readFileSync(readmeFile, 'utf8');
const present = linkOrder.filter((l) => rows.some((r) => r.linkName === l));
const summary = [`| config | ${present.join(' | ')} |`, `|---|${present.map(() => '---|').join('')}`];
for (const label of labels) {
  const cells = present.map((l) => { const r = rows.find((x) => x.label === label && x.linkName === l); return r ? `${r.speedup.toFixed(2)}x` : '-'; });
  summary.push(`| ${label} | ${cells.join(' | ')} |`);
}
const sb = '<!-- e2e-summary:begin -->', se = '<!-- e2e-summary:end -->';
if (readme.includes(sb)) fs.writeFileSync(readmeFile, readme.slice(0, readme.indexOf(sb) + sb.length) + '\n' + summary.join('\n') + '\n' + readme.slice(readme.indexOf(se)));
console.log(`wrote docs/img/e2e-speedup.svg and the table in docs/benchmarks.md from ${path.relative(root, input)}`);
