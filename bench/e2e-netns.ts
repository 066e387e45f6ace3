/**
 * Two test hosts on one machine for bench/e2e.ts: network namespaces joined by a veth pair,
 * created and removed by the benchmark itself; tc tbf shaping on both ends; a TCP stream to
 * measure what the link carries; the Open MPI environment that runs ranks in both.
 */
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const sh = (cmd: string) => execFileSync('/bin/sh', ['-c', cmd], { stdio: 'pipe' });

export class Namespaces {
  readonly a: string;
  readonly b: string;
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gradcomp-e2e-'));
  readonly hostfile: string;

  constructor(prefix: string, readonly subnet: string) {
    this.a = `${prefix}a`;
    this.b = `${prefix}b`;
    this.hostfile = path.join(this.dir, 'hostfile');
  }

  /** '' when the two-host setup can run here, else why not. */
  skipReason(root: string): string {
    try { execFileSync('mpirun', ['--version'], { stdio: 'ignore' }); } catch { return 'mpirun is not installed (apt-get install openmpi-bin libopenmpi-dev)'; }
    if (!fs.existsSync(path.join(root, 'native', 'mpi', 'build', 'Release', 'gradcomp_mpi.node'))) return 'the MPI addon is not built (npm run build:mpi)';
    try { execFileSync('tc', ['-V'], { stdio: 'ignore' }); } catch { return 'tc (iproute2) is not installed'; }
    try {
      sh(`ip netns add ${this.a}probe && ip netns del ${this.a}probe`);
    } catch (e) {
      return `ip netns is not usable here (${String((e as { stderr?: Buffer }).stderr ?? e).trim().split('\n')[0]})`;
    }
    return '';
  }

  create(): void {
    const { a, b, subnet } = this;
    sh(`ip netns add ${a} && ip netns add ${b} && ip link add ${a}v type veth peer name ${b}v && ` +
      `ip link set ${a}v netns ${a} && ip link set ${b}v netns ${b} && ` +
      `ip -n ${a} addr add ${subnet}.1/24 dev ${a}v && ip -n ${b} addr add ${subnet}.2/24 dev ${b}v && ` +
      `ip -n ${a} link set lo up && ip -n ${b} link set lo up && ip -n ${a} link set ${a}v up && ip -n ${b} link set ${b}v up`);
    fs.writeFileSync(this.hostfile, `${a} slots=2\n${b} slots=2\n`);
    fs.writeFileSync(path.join(this.dir, 'nsagent.sh'), '#!/bin/sh\nh="$1"; shift; exec ip netns exec "$h" unshare --uts /bin/sh -c "hostname $h; $*"\n', { mode: 0o755 });
  }

  /** Shapes both ends to `rate` (e.g. 1gbit; 'none' removes the shaping). */
  shape(rate: string): void {
    for (const [ns, dev] of [[this.a, `${this.a}v`], [this.b, `${this.b}v`]]) {
      if (rate === 'none') { try { sh(`ip netns exec ${ns} tc qdisc del dev ${dev} root`); } catch { /* no qdisc */ } continue; }
      // The bucket must hold a timer tick's worth of bytes at the rate, or tbf caps below it.
      const bits = Number.parseFloat(rate) * (rate.endsWith('gbit') ? 1e9 : 1e6);
      const burst = Math.max(128 * 1024, Math.ceil(bits / 8 / 250));
      sh(`ip netns exec ${ns} tc qdisc replace dev ${dev} root tbf rate ${rate} burst ${burst} latency 50ms`);
    }
  }

  /** Gbit/s a single TCP stream carries from A to B (128 MB), or null when it could not be measured. */
  async measureTcp(): Promise<number | null> {
    const port = 40000 + (process.pid % 20000), bytes = 128 << 20;
    const server = `const s=require('net').createServer(c=>{let n=0;c.on('data',d=>{n+=d.length;if(n>=${bytes}){c.end('ok');s.close();}});});s.listen(${port},'${this.subnet}.2',()=>console.log('ready'));`;
    const client = `const c=require('net').connect(${port},'${this.subnet}.2',()=>{const b=Buffer.alloc(1<<20);let left=${bytes >> 20};const t0=process.hrtime.bigint();` +
      `const go=()=>{while(left>0){left--;if(!c.write(b))return c.once('drain',go);}};c.on('data',()=>{console.log(Number(process.hrtime.bigint()-t0)/1e9);c.end();});go();});`;
    const srv = spawn('ip', ['netns', 'exec', this.b, process.execPath, '-e', server], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      await new Promise<void>((resolve, reject) => { srv.stdout.once('data', () => resolve()); srv.once('exit', () => reject(new Error('server exited'))); setTimeout(() => reject(new Error('timeout')), 10000); });
      const out = execFileSync('ip', ['netns', 'exec', this.a, process.execPath, '-e', client], { encoding: 'utf8', timeout: 120000 });
      const seconds = Number(out.trim());
      return seconds > 0 ? (8 * bytes) / seconds / 1e9 : null;
    } catch {
      return null;
    } finally {
      srv.kill();
    }
  }

  /** Open MPI over the namespaces' link: root allowed, TCP on the veth subnet, the ssh stand-in. */
  mpiEnv(): NodeJS.ProcessEnv {
    return {
      ...process.env, OMPI_ALLOW_RUN_AS_ROOT: '1', OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: '1', OMPI_MCA_rmaps_base_oversubscribe: '1',
      OMPI_MCA_pml: 'ob1', OMPI_MCA_btl: 'self,vader,tcp', OMPI_MCA_btl_vader_single_copy_mechanism: 'none',
      OMPI_MCA_plm_rsh_agent: path.join(this.dir, 'nsagent.sh'), OMPI_MCA_btl_tcp_if_include: `${this.subnet}.0/24`,
      OMPI_MCA_oob_tcp_if_include: `${this.subnet}.0/24`, OMPI_MCA_hwloc_base_binding_policy: 'none', OMPI_MCA_mpi_yield_when_idle: '1', NO_COLOR: '1',
    };
  }

  destroy(): void {
    try { sh(`ip netns del ${this.a} 2>/dev/null; ip netns del ${this.b} 2>/dev/null; true`); } catch { /* gone */ }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
