// Stages the CUDA addon into packages/cuda-linux-x64 and packs it (a separate tarball from the
// main package, which never contains GPU code). Builds the addon first when it is missing.
//   node scripts/pack-cuda.js [--dry-run] [--pack-destination DIR]
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const pkgDir = path.join(root, 'packages', `cuda-${process.platform}-${process.arch}`);
if (!fs.existsSync(path.join(pkgDir, 'package.json'))) {
  console.error(`gradcomp: no CUDA package is defined for ${process.platform}-${process.arch}`);
  process.exit(1);
}
const built = path.join(root, 'build-cuda', 'Release', 'gradcomp_cuda.node');
if (!fs.existsSync(built)) execFileSync(process.execPath, [path.join(__dirname, 'build-cuda.js')], { stdio: 'inherit' });
if (!fs.existsSync(built)) {
  console.error('gradcomp: the CUDA addon could not be built here (no nvcc): nothing to pack');
  process.exit(1);
}
const pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8'));
const main = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
if (pkg.version !== main.version) {
  console.error(`gradcomp: ${pkg.name} is at ${pkg.version} but gradcomp at ${main.version}: they ship in lockstep`);
  process.exit(1);
}
fs.copyFileSync(built, path.join(pkgDir, 'gradcomp_cuda.node'));
const args = ['pack', '--json', ...process.argv.slice(2)];
const out = execFileSync('npm', args, { cwd: pkgDir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
process.stdout.write(out);
