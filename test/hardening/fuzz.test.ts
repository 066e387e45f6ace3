/** A short seeded run of the fuzz harness (npm run fuzz): every export, mutated payloads, hostile sessions, in child processes. */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { freshSeed } from '../reference/rng';

test('npm run fuzz (3000 calls): no crash, hang, uncoded error, wrong accept or wrong reject', () => {
  const seed = freshSeed();
  const r = spawnSync(process.execPath, [path.join(__dirname, '..', '..', 'scripts', 'fuzz.js'), '--calls', '3000', '--per-process', '1500', '--seed', String(seed), '--json'],
    { encoding: 'utf8', timeout: 300000 });
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
  expect({ seed, ...out, failures: out.failures.slice(0, 5) }).toMatchObject({ calls: 3000, crashes: 0, hangs: 0, uncoded: 0, wrongAccepts: 0, wrongRejects: 0, badResults: 0 });
  expect(r.status).toBe(0);
}, 300000);
