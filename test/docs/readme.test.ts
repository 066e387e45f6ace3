/**
 * Every ```js block of the README and docs/*.md runs as printed: each is written, unchanged, to a
 * fresh file in an empty folder whose node_modules/gradcomp is this package, and run with node.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const root = path.resolve(__dirname, '..', '..');
const files = ['README.md', ...fs.readdirSync(path.join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => path.join('docs', f))];
const blocks = files.flatMap((f) => [...fs.readFileSync(path.join(root, f), 'utf8').matchAll(/```(js|javascript|mjs|cjs)\n([\s\S]*?)```/g)]
  .map((m, i) => [`${f} #${i + 1}${/^\/\/ example: ([\w-]+)/.exec(m[2]) ? ` (${/^\/\/ example: ([\w-]+)/.exec(m[2])![1]})` : ''}`, m[1], m[2]] as const));

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gradcomp-docs-'));
  fs.mkdirSync(path.join(dir, 'node_modules'));
  fs.symlinkSync(root, path.join(dir, 'node_modules', 'gradcomp'));
  // What a TF.js user has installed next to gradcomp.
  fs.symlinkSync(path.join(root, 'node_modules', '@tensorflow'), path.join(dir, 'node_modules', '@tensorflow'));
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'docs-check', version: '1.0.0', private: true }));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

test('the README has runnable examples', () => {
  expect(blocks.filter(([name]) => name.startsWith('README')).length).toBeGreaterThanOrEqual(3);
  expect(blocks.map(([name]) => name).join(' ')).toMatch(/ef-topk.*qsgd.*powersgd.*dropit/s);
});

const fashion = fs.existsSync('/usr/share/datasets/fashion-mnist') || !!process.env.GRADCOMP_FASHION_MNIST;

test.each(blocks)('%s runs as copied', (_name, lang, code) => {
  if (/loadFashionMnist\(/.test(code) && !fashion) { console.log(`${_name}: skipped: Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)`); return; }
  const file = path.join(dir, `block-${Math.random().toString(36).slice(2)}.${lang === 'mjs' ? 'mjs' : lang === 'cjs' ? 'cjs' : 'js'}`);
  fs.writeFileSync(file, code);
  execFileSync(process.execPath, [file], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], timeout: 60000 });
});
