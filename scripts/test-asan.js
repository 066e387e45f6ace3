#!/usr/bin/env node
// `npm run test:asan [-- suites...]`: builds the CPU addon with AddressSanitizer and
// UndefinedBehaviorSanitizer (-O1, frame pointers, every check fatal) into build-asan/, then runs
// the native test suites with that addon (GRADCOMP_BINDING) and the ASan runtime preloaded into
// node. Any report ends the process that made it, so the suite fails. Leak checking is off: V8
// keeps memory until exit by design. The AVX-512 paths run when the CPU has them (as here).
//
// Default suites: ops, compress, optim, tensor, comm, algorithms, and the hardening defects and fuzz
// tests. Pass suite folders or test files (relative to test/) to run others.
'use strict';
const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const out = path.join(root, 'build-asan');
const gyp = JSON.parse(fs.readFileSync(path.join(root, 'binding.gyp'), 'utf8').replace(/<!\(node -p \\"require\('\.\/package\.json'\)\.gradcomp\.abi\\"\)/, String(require('../package.json').gradcomp.abi)));
const target = gyp.targets[0];
const nodeInclude = [process.env.npm_config_nodedir, '/usr'].filter(Boolean).map((d) => path.join(d, 'include', 'node')).find((d) => fs.existsSync(path.join(d, 'node_api.h')));
if (!nodeInclude) { console.error('test:asan: node_api.h not found (set npm_config_nodedir)'); process.exit(1); }

const san = ['-fsanitize=address,undefined', '-fno-sanitize-recover=all', '-fno-omit-frame-pointer', '-g', '-O1'];
const flags = [...san, '-std=c++17', '-fPIC', '-fexceptions', '-ffp-contract=off', '-march=x86-64-v2', '-Wall', '-Wno-unused-parameter',
  ...target.defines.map((d) => `-D${d}`), ...target.include_dirs.map((d) => `-I${path.join(root, d)}`), `-I${nodeInclude}`];
fs.mkdirSync(path.join(out, 'obj'), { recursive: true });
const objs = [];
for (const src of target.sources) {
  const obj = path.join(out, 'obj', src.replace(/[/\\]/g, '_').replace(/\.cc$/, '.o'));
  objs.push(obj);
  const s = path.join(root, src);
  if (fs.existsSync(obj) && fs.statSync(obj).mtimeMs > Math.max(fs.statSync(s).mtimeMs, newestHeader())) continue;
  process.stderr.write(`test:asan: compiling ${src}\n`);
  execFileSync('g++', [...flags, '-c', s, '-o', obj], { stdio: 'inherit' });
}
const addon = path.join(out, 'gradcomp.node');
execFileSync('g++', [...san, '-shared', '-o', addon, ...objs, '-lpthread'], { stdio: 'inherit' });

function newestHeader() {
  let t = 0;
  const walk = (d) => { for (const e of fs.readdirSync(d, { withFileTypes: true })) { const p = path.join(d, e.name); if (e.isDirectory()) walk(p); else if (/\.h$/.test(e.name)) t = Math.max(t, fs.statSync(p).mtimeMs); } };
  walk(path.join(root, 'native'));
  return t;
}

const libasan = execFileSync('g++', ['-print-file-name=libasan.so'], { encoding: 'utf8' }).trim();
const suites = process.argv.slice(2).length ? process.argv.slice(2) : ['ops', 'compress', 'optim', 'tensor', 'comm', 'algorithms', 'hardening/defects.test.ts', 'hardening/fuzz.test.ts'];
const env = {
  ...process.env,
  GRADCOMP_BINDING: addon,
  LD_PRELOAD: libasan,
  ASAN_OPTIONS: 'detect_leaks=0:abort_on_error=1:allocator_may_return_null=1:handle_segv=1',
  UBSAN_OPTIONS: 'halt_on_error=1:print_stacktrace=1',
};
const jest = path.join(root, 'node_modules', 'jest', 'bin', 'jest.js');
const r = spawnSync(process.execPath, [jest, '--runInBand', ...suites.map((s) => (/\.ts$/.test(s) ? `test/${s}` : `test/${s}/`))], { cwd: root, env, stdio: 'inherit' });
process.exit(r.status ?? 1);
