// Builds the optional CUDA addon (CMakeLists.txt, via cmake-js) into build-cuda/ when asked
// (GRADCOMP_BUILD_CUDA=1) or when this machine has both nvcc (PATH, $CUDACXX or
// /usr/local/cuda/bin) and an NVIDIA driver; otherwise says why it skipped and exits 0, so the CPU
// package builds everywhere without spending minutes on GPU code it cannot run. A compile error
// fails the build (and CI, which asks for it). Incremental: cmake-js build reuses the last configure.
// GRADCOMP_CUDA_ARCHS=90 narrows the architecture list for a quick build.
'use strict';
const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const candidates = [process.env.CUDACXX, 'nvcc', '/usr/local/cuda/bin/nvcc'].filter(Boolean);
let nvcc;
for (const c of candidates) {
  try { execFileSync(c, ['--version'], { stdio: 'ignore' }); nvcc = c; break; } catch { /* next */ }
}
if (!nvcc) {
  console.log('gradcomp: nvcc not found: skipping the CUDA backend (the CPU package is unaffected)');
  process.exit(0);
}
const asked = process.env.GRADCOMP_BUILD_CUDA === '1';
const driver = fs.existsSync('/proc/driver/nvidia/version') ||
  ['/usr/lib/x86_64-linux-gnu/libcuda.so.1', '/usr/lib64/libcuda.so.1', '/usr/local/cuda/compat/libcuda.so.1'].some((f) => fs.existsSync(f));
if (!asked && !driver) {
  console.log('gradcomp: no NVIDIA driver here: skipping the CUDA backend (GRADCOMP_BUILD_CUDA=1 npm run build:cuda builds it anyway)');
  process.exit(0);
}
const nodedir = process.env.npm_config_nodedir || (fs.existsSync('/usr/include/node/node.h') ? '/usr' : undefined);
const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
// The architecture list is read at configure time: a different GRADCOMP_CUDA_ARCHS than the
// last build's needs a clean configure (cmake-js rebuild), or the old list would stay.
const stamp = path.join(root, 'build-cuda', 'archs.txt');
const archs = process.env.GRADCOMP_CUDA_ARCHS || 'default';
const fresh = !fs.existsSync(stamp) || fs.readFileSync(stamp, 'utf8') !== archs;
const args = [cmakeJs, fresh ? 'rebuild' : 'build', '--directory', root, '--out', path.join(root, 'build-cuda'), `--CDCMAKE_CUDA_COMPILER=${nvcc === 'nvcc' ? execFileSync('which', ['nvcc'], { encoding: 'utf8' }).trim() : nvcc}`];
const r = spawnSync(process.execPath, args, { stdio: 'inherit', env: { ...process.env, ...(nodedir ? { npm_config_nodedir: nodedir } : {}) } });
if (r.status === 0) fs.writeFileSync(stamp, archs);
process.exit(r.status ?? 1);
