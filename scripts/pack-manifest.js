#!/usr/bin/env node
// `npm pack` / `npm publish` hooks: the published package.json names the CUDA backend as an
// optional dependency (@gradcomp/cuda-linux-x64, gated by os, cpu and libc in its own manifest,
// so npm skips it elsewhere and an install never fails for want of it). The development checkout
// leaves it out: `npm ci` needs every dependency in the lockfile, and the CUDA package is built
// from this repository (`npm run build:cuda`, scripts/pack-cuda.js) rather than fetched.
//   node scripts/pack-manifest.js add       (prepack: writes package.json with the entry, keeps a copy)
//   node scripts/pack-manifest.js restore   (postpack: puts the copy back)
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const file = path.join(root, 'package.json'), backup = path.join(root, '.package.json.prepack');
const mode = process.argv[2];
if (mode === 'add') {
  const text = fs.readFileSync(file, 'utf8');
  if (!fs.existsSync(backup)) fs.writeFileSync(backup, text);
  const pkg = JSON.parse(text);
  const cuda = JSON.parse(fs.readFileSync(path.join(root, 'packages', 'cuda-linux-x64', 'package.json'), 'utf8'));
  pkg.optionalDependencies = { ...(pkg.optionalDependencies ?? {}), [cuda.name]: cuda.version };
  fs.writeFileSync(file, JSON.stringify(pkg, null, 2) + '\n');
} else if (mode === 'restore') {
  if (fs.existsSync(backup)) { fs.copyFileSync(backup, file); fs.rmSync(backup); }
} else {
  console.error('usage: node scripts/pack-manifest.js add|restore');
  process.exit(2);
}
