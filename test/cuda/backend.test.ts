/**
 * Backend selection and the CUDA addon's probe (specs/packaging.md §4.3). Each case runs in a
 * child process: the decision is memoized per process. On a machine without a usable GPU the
 * CPU is chosen with the reason and backend 'cuda' throws; with one, 'auto' and 'cuda' choose it
 * (test/cuda/ops.test.ts runs the kernels there).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const root = path.resolve(__dirname, '..', '..');
const addon = path.join(root, 'build-cuda', 'Release', 'gradcomp_cuda.node');
let nvcc = true;
try { execFileSync('nvcc', ['--version'], { stdio: 'ignore' }); } catch { nvcc = false; }

function info(env: Record<string, string>, code = 'process.stdout.write(JSON.stringify(require(".").backendInfo()))') {
  const r = spawnSync(process.execPath, ['-e', code], { cwd: root, env: { ...process.env, ...env }, encoding: 'utf8' });
  return { status: r.status, out: r.stdout, err: r.stderr };
}

test('where nvcc exists, the compile step built the CUDA addon, and it loads and probes without a GPU', () => {
  if (!nvcc) { console.log('CUDA build check skipped: nvcc is not installed'); return; }
  expect(fs.existsSync(addon)).toBe(true);
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const b = require(addon);
  const p = b.probe();
  expect(['ok', 'no-driver', 'driver-too-old', 'no-device', 'unsupported-arch', 'error']).toContain(p.status);
  expect(p.runtimeVersion).toBeGreaterThanOrEqual(12000);
  if (p.status !== 'ok') console.log(`no usable GPU here (${p.status}: ${p.detail}); the kernel tests in test/cuda/ops.test.ts skip here`);
});

test("'auto' reports the backend with the CUDA reason, and warns only when a GPU is present but unusable", () => {
  const r = info({ GRADCOMP_BACKEND: 'auto' });
  expect(r.status).toBe(0);
  const i = JSON.parse(r.out);
  expect(i.backend).toBe(i.cuda?.status === 'ok' ? 'cuda' : 'cpu');
  expect(i.requested).toBe('auto');
  expect(i.reasons[1]).toMatch(/^cuda: /);
  if (i.cuda === null || i.cuda.status === 'no-driver') expect(r.err).not.toMatch(/GRADCOMP_CUDA_UNAVAILABLE/);
});

test("'cpu' does not touch the CUDA addon", () => {
  const i = JSON.parse(info({ GRADCOMP_BACKEND: 'cpu' }).out);
  expect(i.cuda).toBeNull();
  expect(i.reasons[1]).toBe("cuda: not tried (backend 'cpu' requested)");
});

test("'cuda' without a usable GPU throws a coded error saying why", () => {
  const r = info({ GRADCOMP_BACKEND: 'cuda' }, `try { process.stdout.write(JSON.stringify({ backend: require(".").backendInfo().backend })); } catch (e) { process.stdout.write(JSON.stringify({ code: e.code, param: e.param, message: e.message })); }`);
  const e = JSON.parse(r.out);
  if (e.backend === 'cuda') { console.log("a usable GPU is present: 'cuda' chose it"); return; }
  expect(e.code).toBe('ERR_GRADCOMP_BACKEND_UNAVAILABLE');
  expect(e.message).toMatch(/backend 'cuda' was requested but cannot be used: /);
});

test('setBackend validates and a missing addon is a reason, not a crash', () => {
  const r = info({ GRADCOMP_CUDA_BINDING: '/nonexistent/gradcomp_cuda.node' }, `
    const g = require(".");
    let bad; try { g.setBackend("gpu"); } catch (e) { bad = e.param; }
    const i = g.setBackend("auto");
    process.stdout.write(JSON.stringify({ bad, backend: i.backend, reason: i.reasons[1] }));`);
  const o = JSON.parse(r.out);
  expect(o.bad).toBe('backend');
  expect(o.backend).toBe('cpu');
  expect(o.reason).toMatch(/cuda: dlopen: the CUDA addon \/nonexistent\/gradcomp_cuda.node failed to load/);
  expect(r.err).toMatch(/GRADCOMP_CUDA_UNAVAILABLE/); // a broken addon under 'auto' warns once
});

test('GRADCOMP_BACKEND with a bad value names it', () => {
  const r = info({ GRADCOMP_BACKEND: 'tpu' }, `try { require(".").backendInfo(); } catch (e) { process.stdout.write(e.param); }`);
  expect(r.out).toBe('GRADCOMP_BACKEND');
});
