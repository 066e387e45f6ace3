#!/usr/bin/env node
// Builds a node-gyp addon incrementally: configures only when there is no build yet, or when its
// binding.gyp or the package's ABI version changed since the last configure; then `node-gyp
// build`, which recompiles only what changed. An unchanged tree builds in seconds.
//   node scripts/build-native.js [dir]      (default: the CPU addon at the package root)
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const dir = path.resolve(root, process.argv[2] ?? '.');
const gyp = require.resolve('node-gyp/bin/node-gyp.js');
const nodedir = require('./nodedir')();
const abi = String(require('../package.json').gradcomp.abi);
const build = path.join(dir, 'build'), stamp = path.join(build, 'gradcomp-configure.json');
const want = JSON.stringify({ abi, gyp: fs.statSync(path.join(dir, 'binding.gyp')).mtimeMs, node: process.version });
const have = fs.existsSync(stamp) ? fs.readFileSync(stamp, 'utf8') : '';
const run = (args) => spawnSync(process.execPath, [gyp, ...args, `--nodedir=${nodedir}`, '--directory', dir, '-j', String(Math.max(1, require('node:os').availableParallelism?.() ?? 2))], { stdio: 'inherit' });
if (have !== want || !fs.existsSync(path.join(build, 'Makefile'))) {
  const r = run(['configure']);
  if (r.status !== 0) process.exit(r.status ?? 1);
  fs.writeFileSync(stamp, want);
}
const r = run(['build']);
process.exit(r.status ?? 1);
