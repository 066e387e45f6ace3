// The per-file line budget (docs/ARCHITECTURE.md): TypeScript under lib/ at most 300 lines, C++ and
// CUDA at most 400; exceptions are listed with their reason in .line-budget.json. Prints the files
// over budget and exits 1 when there is any. Used by test/architecture and `npm run lint`.
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

function overBudget(root = path.join(__dirname, '..')) {
  const cfg = JSON.parse(fs.readFileSync(path.join(root, '.line-budget.json'), 'utf8'));
  let files;
  try {
    files = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', 'lib', 'native', 'cuda'], { cwd: root, encoding: 'utf8' }).split('\n');
  } catch {
    files = [];
  }
  const out = [];
  for (const f of files) {
    const ts = /^lib\/.*\.ts$/.test(f), native = /\.(cc|h|cu|cuh)$/.test(f);
    if ((!ts && !native) || !fs.existsSync(path.join(root, f))) continue;
    const lines = fs.readFileSync(path.join(root, f), 'utf8').split('\n').length - 1;
    const limit = ts ? cfg.budget.ts : cfg.budget.native;
    if (lines > limit && !cfg.exceptions[f]) out.push({ file: f, lines, limit });
  }
  return out;
}

module.exports = { overBudget };

if (require.main === module) {
  const over = overBudget();
  for (const o of over) console.log(`${o.file}: ${o.lines} lines (budget ${o.limit})`);
  process.exit(over.length ? 1 : 0);
}
