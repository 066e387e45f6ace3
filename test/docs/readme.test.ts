/** Runs every README and docs/*.md block that starts with `// example: <name>` against the built package. */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const root = path.resolve(__dirname, '..', '..');
const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
const docs = fs.readdirSync(path.join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => fs.readFileSync(path.join(root, 'docs', f), 'utf8'));
const blocks = [readme, ...docs].flatMap((md) => [...md.matchAll(/```js\n(\/\/ example: ([\w-]+)\n[\s\S]*?)```/g)].map((m) => [m[2], m[1]] as const));

test('the README has runnable examples', () => {
  expect(blocks.map(([name]) => name)).toEqual(expect.arrayContaining(['ef-topk', 'qsgd', 'powersgd', 'dropit']));
});

test.each(blocks)('README example %s runs and its assertions hold', (_name, code) => {
  // `require('gradcomp')` resolves to this checkout through the package's self-reference.
  const wrapped = `(async () => {\n${code}\n})().catch((e) => { console.error(e); process.exit(1); });`;
  execFileSync(process.execPath, ['-e', wrapped], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
});
