/**
 * The benchmark scripts refuse a misspelt flag, config or rate (exit 2, naming it, with the usage)
 * before they measure or write anything, and print their usage for --help.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const root = path.resolve(__dirname, '..', '..');
const bench = (script: string, args: string[]) =>
  spawnSync(process.execPath, [path.join(root, 'dist', 'bench', `${script}.js`), ...args], { cwd: root, encoding: 'utf8', timeout: 60000 });

describe('benchmark flags', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gradcomp-bench-flags-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  test.each([
    ['e2e', ['--only', 'dense,dnese'], "unknown 'dnese'"],
    ['e2e', ['--rates', '1gbs'], "'1gbs' is not a rate"],
    ['e2e', ['--nolocal'], "'--nolocal'"],
    ['e2e', ['--only'], '--only'],
    ['tfjs', ['--configs', 'dense,topK'], "unknown 'topK'"],
    ['tfjs', ['--seeds', '1000,,2000'], '--seeds'],
    ['tfjs', ['--epochs', '2.5'], '--epochs'],
    ['tfjs', ['--init', 'he'], '--init'],
    ['tfjs', ['--suffle'], "'--suffle'"],
    ['gpu', ['--quik'], "'--quik'"],
    ['main', ['--jsn'], "'--jsn'"],
  ])('bench %s %j is refused before it runs', (script, args, says) => {
    const json = path.join(dir, `${script}-${args.join('_')}.json`);
    const r = bench(script, script === 'e2e' || script === 'tfjs' ? [...args, '--json', json] : args);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(says);
    expect(r.stderr).toContain(`npm run bench${script === 'main' ? '' : `:${script}`}`); // the usage
    expect(fs.existsSync(json)).toBe(false);
  });

  test.each(['e2e', 'tfjs', 'gpu', 'main'])('bench %s --help prints its usage and exits 0', (script) => {
    const r = bench(script, ['--help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^npm run bench/);
  });
});
