/**
 * The habits docs/ARCHITECTURE.md promises, checked on every run: no import cycle in lib/ and the
 * layer rules (dependency-cruiser, .dependency-cruiser.cjs: nothing above lib/ops loads an addon),
 * the per-file line budget (.line-budget.json), and a clean ESLint run on lib/ and test/.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const root = path.resolve(__dirname, '..', '..');
const bin = (name: string) => path.join(root, 'node_modules', '.bin', name);
// Plain text whatever the caller's terminal settings (CI may set FORCE_COLOR): no colour codes to match around.
const plainEnv = { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1' };
const ESC = String.fromCharCode(27);
const stripAnsi = (s: string) => s.split(ESC).map((part, i) => (i === 0 ? part : part.replace(/^\[[0-9;]*m/, ''))).join('');
const run = (cmd: string, args: string[]) => {
  const r = spawnSync(cmd, args, { cwd: root, encoding: 'utf8', timeout: 120000, env: plainEnv });
  return { status: r.status, stdout: stripAnsi(r.stdout ?? ''), stderr: stripAnsi(r.stderr ?? '') };
};

test('no import cycles in lib/, and every import follows the layers (dependency-cruiser)', () => {
  const r = run(bin('depcruise'), ['lib', '--config', '.dependency-cruiser.cjs', '--output-type', 'err']);
  expect(r.stdout + r.stderr).toMatch(/no dependency violations found/);
  expect(r.status).toBe(0);
});

test('the layer rules do catch a violation (a compressor loading the addon, a tensor importing a compressor)', () => {
  const probes = [['lib/compress/zz_probe.ts', "import { loadBinding } from '../native/loader';\nexport const x = loadBinding;\n"],
    ['lib/tensor/zz_probe.ts', "import { x } from '../compress/zz_probe';\nexport const y = x;\n"]];
  try {
    for (const [f, src] of probes) fs.writeFileSync(path.join(root, f), src);
    const r = run(bin('depcruise'), ['lib', '--config', '.dependency-cruiser.cjs', '--output-type', 'err']);
    expect(r.status).not.toBe(0);
    expect(r.stdout).toMatch(/raw-binding-below-ops: lib\/compress\/zz_probe\.ts/);
    expect(r.stdout).toMatch(/tensor-below-ops: lib\/tensor\/zz_probe\.ts/);
  } finally {
    for (const [f] of probes) fs.rmSync(path.join(root, f), { force: true });
  }
});

test('every source file is within the line budget (TypeScript 300, C++/CUDA 400) or a listed exception', () => {
   
  const { overBudget } = require('../../scripts/line-budget.js') as { overBudget: () => { file: string; lines: number }[] };
  expect(overBudget()).toEqual([]);
});

test('ESLint (typescript-eslint) reports nothing on lib/ and test/', () => {
  const r = run(bin('eslint'), ['--max-warnings', '0', 'lib', 'test']);
  expect(r.stdout + r.stderr).toBe('');
  expect(r.status).toBe(0);
});

// The tests run through ts-jest without type checking each file against the others: the whole
// project (lib/, test/, bench/) is type-checked here, so a test cannot drift from the API it tests.
test('the whole project type-checks (tsc --noEmit)', () => {
  const r = run(bin('tsc'), ['-p', 'tsconfig.json', '--noEmit']);
  expect(r.stdout + r.stderr).toBe('');
  expect(r.status).toBe(0);
}, 120000);
