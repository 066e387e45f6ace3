// Builds the optional Open MPI addon (native/mpi) when mpicc is on PATH; otherwise says why it
// skipped and exits 0, so the CPU package builds everywhere.
'use strict';
const { execFileSync, spawnSync } = require('node:child_process');
const path = require('node:path');
try {
  execFileSync('mpicc', ['--showme:version'], { stdio: 'ignore' });
} catch {
  console.log('gradcomp: mpicc not found: skipping the MPI backend (install openmpi-bin libopenmpi-dev to build it)');
  process.exit(0);
}
const r = spawnSync(process.execPath, [path.join(__dirname, 'build-native.js'), path.join('native', 'mpi')], { stdio: 'inherit' });
process.exit(r.status ?? 1);
