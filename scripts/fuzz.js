#!/usr/bin/env node
// `npm run fuzz -- --calls N --seed S [--per-process M] [--jobs J]`: N random calls at every export
// (bad arguments, mutated payloads, hostile compressor sessions, damaged checkpoints; see
// scripts/fuzz-child.js), in child processes of M calls each (seeds S, S+1, ...), J at a time, so
// a crash is counted (with the seed that reproduces it: node scripts/fuzz-child.js SEED M) rather
// than fatal. Exits non-zero on any crash, hang, uncoded error, wrong accept or wrong reject.
'use strict';
const { spawn } = require('node:child_process');
const path = require('node:path');
const { parseArgs } = require('node:util');

const { values } = parseArgs({
  options: {
    calls: { type: 'string', default: '200000' }, seed: { type: 'string' }, 'per-process': { type: 'string', default: '20000' },
    jobs: { type: 'string', default: '2' }, json: { type: 'boolean', default: false },
  },
});
const num = (name, v, min) => { const x = Number(v); if (!Number.isInteger(x) || x < min) { console.error(`fuzz: --${name} must be an integer >= ${min} (got ${v})`); process.exit(2); } return x; };
const calls = num('calls', values.calls, 1), per = num('per-process', values['per-process'], 1), jobs = num('jobs', values.jobs, 1);
const seed = values.seed === undefined ? (Date.now() % 1e9) : num('seed', values.seed, 0);
const child = path.join(__dirname, 'fuzz-child.js');

const total = { seed, calls: 0, ok: 0, coded: 0, uncoded: 0, hangs: 0, wrongAccepts: 0, wrongRejects: 0, badResults: 0, crashes: 0, failures: [] };
const tasks = [];
for (let done = 0, i = 0; done < calls; i++, done += per) tasks.push({ seed: seed + i, calls: Math.min(per, calls - done) });

function runOne(t) {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [child, String(t.seed), String(t.calls)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    // A process that stops making progress is a hang: ~100 calls/s is far below any real rate.
    const timer = setTimeout(() => p.kill('SIGKILL'), 60000 + t.calls * 10);
    p.on('close', (code, signal) => {
      clearTimeout(timer);
      const line = out.split('\n').find((l) => l.startsWith('GRADCOMP_FUZZ '));
      if (!line) {
        total.crashes++;
        total.failures.push({ what: signal === 'SIGKILL' ? 'hang (process killed)' : 'crash', seed: t.seed, detail: `exit ${code} ${signal ?? ''}: ${err.split('\n').filter(Boolean).slice(-6).join(' | ')}` });
      } else {
        const r = JSON.parse(line.slice(14));
        for (const k of ['calls', 'ok', 'coded', 'uncoded', 'hangs', 'wrongAccepts', 'wrongRejects', 'badResults']) total[k] += r[k];
        for (const f of r.failures) total.failures.push({ ...f, seed: t.seed });
      }
      process.stderr.write(`fuzz: seed ${t.seed}: ${line ? 'done' : 'CRASHED'} (${total.calls} calls so far)\n`);
      resolve();
    });
  });
}

(async () => {
  const queue = tasks.slice();
  await Promise.all(Array.from({ length: Math.min(jobs, queue.length) }, async () => { while (queue.length) await runOne(queue.shift()); }));
  const bad = total.crashes + total.uncoded + total.hangs + total.wrongAccepts + total.wrongRejects + total.badResults;
  if (values.json) console.log(JSON.stringify(total));
  else {
    console.log(`fuzz: ${total.calls} calls (seed ${seed}): ${total.ok} accepted, ${total.coded} coded errors; ` +
      `${total.crashes} crashes, ${total.hangs} hangs, ${total.uncoded} uncoded errors, ${total.wrongAccepts} wrong accepts, ` +
      `${total.wrongRejects} wrong rejects, ${total.badResults} bad results`);
    for (const f of total.failures.slice(0, 20)) console.log(`  ${f.what} ${f.name ?? ''} (seed ${f.seed}${f.call ? `, call ${f.call}` : ''}): ${f.detail ?? ''}`);
  }
  process.exit(bad ? 1 : 0);
})();
