#!/usr/bin/env node
// `npm run prebuild`: the binaries the published package ships, built for the running Node's
// N-API from the headers on this machine (scripts/nodedir.js): no network, no download. The CPU
// addon goes to prebuilds/<platform>-<arch>/node.napi.node (where node-gyp-build finds it); the
// Open MPI addon, where mpicc exists, to prebuilds/<platform>-<arch>/mpi/gradcomp_mpi.node (linked
// against the system's libmpi, loaded only in jobs started by mpirun). Builds are incremental in
// build/ and native/mpi/build/, which a failure leaves as they were.
'use strict';
const { spawnSync, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const out = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
const step = (what, args) => {
  const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) { console.error(`gradcomp prebuild: ${what} failed (exit ${r.status}); build/ is left as it was`); process.exit(r.status ?? 1); }
};
const place = (src, dst) => {
  fs.mkdirSync(path.dirname(dst), { recursive: true });
  const tmp = `${dst}.tmp`;
  fs.copyFileSync(src, tmp);
  try { execFileSync('strip', ['--strip-debug', tmp], { stdio: 'ignore' }); } catch { /* no strip: ship it unstripped */ }
  fs.renameSync(tmp, dst);
  console.log(`gradcomp prebuild: ${path.relative(root, dst)} (${(fs.statSync(dst).size / 1024).toFixed(0)} KiB)`);
};

step('the CPU addon', [path.join(__dirname, 'build-native.js')]);
place(path.join(root, 'build', 'Release', 'gradcomp.node'), path.join(out, 'node.napi.node'));

let mpicc = true;
try { execFileSync('mpicc', ['--showme:version'], { stdio: 'ignore' }); } catch { mpicc = false; }
if (mpicc) {
  step('the MPI addon', [path.join(__dirname, 'build-native.js'), path.join('native', 'mpi')]);
  place(path.join(root, 'native', 'mpi', 'build', 'Release', 'gradcomp_mpi.node'), path.join(out, 'mpi', 'gradcomp_mpi.node'));
} else {
  console.log('gradcomp prebuild: mpicc not found: no MPI addon in this prebuild (install libopenmpi-dev to include it)');
}
