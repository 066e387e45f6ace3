/**
 * Two hosts on one machine: network namespaces joined by a veth pair, mpirun started in one of
 * them with a hostfile and an ssh stand-in that enters the other (specs/distributed.md §2). Runs
 * where `ip netns` works (root in a sandbox that allows it) and mpirun and the MPI addon exist;
 * otherwise skips, saying why. The namespaces are this test's own and are removed afterwards.
 */
import { execFile, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const root = path.resolve(__dirname, '..', '..');
const A = `gch${process.pid}a`, B = `gch${process.pid}b`;
const subnet = `10.199.${process.pid % 250}`;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gradcomp-netns-'));
const sh = (cmd: string) => execFileSync('/bin/sh', ['-c', cmd], { stdio: 'pipe' });

let why = '';
try { execFileSync('mpirun', ['--version'], { stdio: 'ignore' }); } catch { why = 'mpirun is not installed'; }
if (!why && !fs.existsSync(path.join(root, 'native', 'mpi', 'build', 'Release', 'gradcomp_mpi.node'))) why = 'the MPI addon is not built';
if (!why) {
  try {
    sh(`ip netns add ${A} && ip netns add ${B} && ip link add ${A}v type veth peer name ${B}v && ` +
      `ip link set ${A}v netns ${A} && ip link set ${B}v netns ${B} && ` +
      `ip -n ${A} addr add ${subnet}.1/24 dev ${A}v && ip -n ${B} addr add ${subnet}.2/24 dev ${B}v && ` +
      `ip -n ${A} link set lo up && ip -n ${B} link set lo up && ip -n ${A} link set ${A}v up && ip -n ${B} link set ${B}v up`);
  } catch (e) {
    why = `ip netns is not usable here (${String((e as { stderr?: Buffer }).stderr ?? e).trim().split('\n')[0]})`;
  }
}
if (why) console.log(`two-host test skipped: ${why}`);

afterAll(() => {
  try { sh(`ip netns del ${A} 2>/dev/null; ip netns del ${B} 2>/dev/null; true`); } catch { /* already gone */ }
  fs.rmSync(dir, { recursive: true, force: true });
});

(why ? test.skip : test)('4 ranks over two network-namespace hosts: correct collectives, ranks on both hosts', async () => {
  fs.writeFileSync(path.join(dir, 'hostfile'), `${A} slots=2\n${B} slots=2\n`);
  const agent = path.join(dir, 'nsagent.sh');
  fs.writeFileSync(agent, '#!/bin/sh\nh="$1"; shift; exec ip netns exec "$h" unshare --uts /bin/sh -c "hostname $h; $*"\n', { mode: 0o755 });
  const env = {
    ...process.env, OMPI_ALLOW_RUN_AS_ROOT: '1', OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: '1', OMPI_MCA_rmaps_base_oversubscribe: '1',
    OMPI_MCA_pml: 'ob1', OMPI_MCA_btl: 'self,vader,tcp', OMPI_MCA_btl_vader_single_copy_mechanism: 'none',
    OMPI_MCA_plm_rsh_agent: agent, OMPI_MCA_btl_tcp_if_include: `${subnet}.0/24`, OMPI_MCA_oob_tcp_if_include: `${subnet}.0/24`,
    OMPI_MCA_hwloc_base_binding_policy: 'none', OMPI_MCA_mpi_yield_when_idle: '1', NO_COLOR: '1',
  };
  const run = (script: string, args = '', map = 'node', extra = '') => new Promise<{ code: number; out: string }>((resolve) => {
    const cmd = `hostname ${A}; ${extra} mpirun --hostfile ${dir}/hostfile -np 4 --map-by ${map} ${process.execPath} ${path.join(__dirname, 'fixtures', script)} ${args}`;
    execFile('ip', ['netns', 'exec', A, 'unshare', '--uts', '/bin/sh', '-c', cmd], { cwd: root, env, timeout: 60000 },
      (e, out) => resolve({ code: e ? 1 : 0, out }));
  });
  const where = await run('where.js');
  expect(where.code).toBe(0);
  const lines = where.out.trim().split('\n').filter((l) => l.startsWith('rank ')).sort();
  // MPI finds the two hosts, so allgatherv goes node by node (each payload crosses the link once).
  const tail = 'sum 6 hosts 2 node-by-node true';
  expect(lines).toEqual([`rank 0/4 on ${A} ${tail}`, `rank 1/4 on ${B} ${tail}`, `rank 2/4 on ${A} ${tail}`, `rank 3/4 on ${B} ${tail}`]);
  // Every collective against its reference: node by node at every size (=1) with the ranks of a
  // host interleaved (by node) and in blocks (by slot), sizes up to several 1 MiB ring chunks; the
  // default (node by node from 8 MiB in all: the largest size here); and the path off.
  for (const [map, extra] of [['node', 'GRADCOMP_MPI_HIERARCHICAL=1'], ['slot', 'GRADCOMP_MPI_HIERARCHICAL=1'], ['node', ''], ['node', 'GRADCOMP_MPI_HIERARCHICAL=0']]) {
    const all = await run('collectives.js', "'[1, 1000, 65537, 600000]'", map, extra ? `export ${extra};` : '');
    expect(all.code).toBe(0);
    expect(all.out.trim().split('\n').sort()).toEqual(['ok 0/4 mpi', 'ok 1/4 mpi', 'ok 2/4 mpi', 'ok 3/4 mpi']);
  }
}, 120000);
