// `npm run bench:l4`: Ambit's L4 cost against no proxy and against HAProxy, measured in one run on the same cores.
// A local cluster (2 nodes) gets a client pod on node-1 and a server pod (ambit-echo TCP echo + iperf3 server) on
// node-2, twice: in `bench-direct` (not captured) and in `bench-ambit` (labelled istio.io/dataplane-mode=ambient).
//   direct   client → server pod IP, no proxy
//   haproxy  the direct pods, through an HAProxy mTLS tunnel pair (bench/l4/haproxy.ts)
//   ambit    client → server pod IP, captured by both nodes' ztunnels, HBONE mTLS between them
// For each: single-stream throughput (iperf3), latency at a fixed rate from the scheduled send time, new
// connections per second, and each proxy's CPU per 1000 requests and RSS idle / under load.
//
//   node dist/bench/l4.js [--quick] [--tiny] [--json FILE] [--scenarios direct,ambit,haproxy] [--no-pin] [--profile DIR]
// Needs root (the local cluster), iperf3 and haproxy (Debian packages). Method and results: docs/performance.md.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError } from 'commander';
import { BenchCluster, type PodInfo } from './l4/cluster.js';
import { startHaproxy, writeHaproxyConfigs, type HaproxyProcess } from './l4/haproxy.js';
import { newConnections, pacedRoundTrips, runCommand, throughputGbps } from './l4/load.js';
import { RssPeaks, cpuSeconds, pidsInNetns, pin, rssMb } from './l4/proc.js';
import { SCENARIOS, formatReport, median, type L4Report, type ProxyFigures, type Scenario, type ScenarioMetrics, type ScenarioResult } from './l4/report.js';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const ECHO_PORT = 9090;
const IPERF_PORT = 5201;
const AMBIENT_LABEL = 'istio.io/dataplane-mode';

interface Phases {
  throughputSeconds: number;
  throughputRuns: number;
  qps: number;
  connections: number;
  payload: number;
  warmupSeconds: number;
  latencySeconds: number;
  connRateMs: number;
  connRateMax: number;
  connRateConcurrency: number;
  /** New connections made, unmeasured, right before the new-connections phase; also bounded by a count. */
  connWarmupMs: number;
  connWarmupMax: number;
}

// Every connection the client closes stays in TIME_WAIT for 60 s and holds one of the client pod's 28,232 ephemeral
// ports (32768–60999) toward that destination: connWarmupMax + connRateMax must stay well below that.
const FULL: Phases = {
  throughputSeconds: 10, throughputRuns: 3, qps: 1000, connections: 4, payload: 1024,
  warmupSeconds: 3, latencySeconds: 30, connRateMs: 5000, connRateMax: 20_000, connRateConcurrency: 8, connWarmupMs: 1000, connWarmupMax: 1000,
};
const QUICK: Phases = { ...FULL, throughputSeconds: 2, throughputRuns: 1, warmupSeconds: 1, latencySeconds: 4, connRateMs: 2000, connRateMax: 5000, connWarmupMs: 500, connWarmupMax: 500 };
const TINY: Phases = { ...QUICK, throughputSeconds: 1, payload: 64, qps: 500, warmupSeconds: 0.5, latencySeconds: 1, connRateMs: 500, connRateMax: 500, connWarmupMs: 200, connWarmupMax: 100 };

/**
 * Pinning gives each node a core, as two real nodes would have: the client side (load generators and the client
 * node's proxy) on CPU 0, the server side (the server pod's apps and the server node's proxy) on CPU 1.
 */
const CPU_OF = { client: '0', server: '1' } as const;
type Side = keyof typeof CPU_OF;

interface Path {
  client: PodInfo;
  /** host:port of the TCP echo and the iperf3 server as the client dials them. */
  echo: { host: string; port: number };
  iperf: { host: string; port: number };
  proxies: { role: string; pid: number; side: Side; /** Node netns of a ztunnel, whose admin port serves CPU profiles. */ adminNetns?: string }[];
  /** The server pod's processes (pinned with the server side). */
  apps: number[];
}

function manifest(): string {
  const pods = (ns: string): string => `---
apiVersion: v1
kind: Pod
metadata: {name: server, namespace: ${ns}, labels: {app: bench-server}}
spec:
  nodeName: node-2
  containers:
    - name: echo
      image: ambit:dev
      command: [ambit-echo, --no-access-log, --http-port, "8080", --tcp-port, "${ECHO_PORT}"]
      ports: [{name: tcp-echo, containerPort: ${ECHO_PORT}}, {name: tcp-iperf, containerPort: ${IPERF_PORT}}]
      readinessProbe: {tcpSocket: {port: ${ECHO_PORT}}, periodSeconds: 1}
    - name: iperf
      image: iperf3
      command: [iperf3, --server, --port, "${IPERF_PORT}"]
      readinessProbe: {tcpSocket: {port: ${IPERF_PORT}}, periodSeconds: 1}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: ${ns}, labels: {app: bench-client}}
spec:
  nodeName: node-1
  containers:
    - {name: idle, image: ambit:dev, command: [sleep, infinity]}
`;
  return `apiVersion: v1
kind: Namespace
metadata: {name: bench-direct}
---
apiVersion: v1
kind: Namespace
metadata: {name: bench-ambit, labels: {${AMBIENT_LABEL}: ambient}}
${pods('bench-direct')}${pods('bench-ambit')}`;
}

class Bench {
  constructor(
    private readonly phases: Phases,
    private readonly pinning: boolean,
    private readonly log: (line: string) => void,
    private readonly profileDir?: string,
  ) {}

  /**
   * With --profile: takes a CPU profile of every ztunnel of the path over the next `seconds` (admin
   * `/debug/pprof/profile`), written to `<dir>/<scenario>-<phase>-<node>.cpuprofile`. Resolves when all are written.
   */
  private profile(scenario: Scenario, phase: string, seconds: number, path: Path): Promise<void> {
    const dir = this.profileDir;
    if (!dir) return Promise.resolve();
    const fetchProfile = `fetch('http://127.0.0.1:15000/debug/pprof/profile?seconds=${seconds}').then(async (r) => { const t = await r.text(); if (!r.ok) throw new Error(t); process.stdout.write(t); })`;
    return Promise.all(
      path.proxies.filter((x) => x.adminNetns).map(async (x) => {
        const file = join(dir, `${scenario}-${phase}-${x.role.replace(/\W+/g, '_')}.cpuprofile`);
        try {
          writeFileSync(file, await runCommand(x.adminNetns!, [process.execPath, '-e', fetchProfile], { timeoutMs: (seconds + 30) * 1000 }));
          this.log(`${scenario}: profile of ${x.role} during ${phase}: ${file}`);
        } catch (err) {
          this.log(`${scenario}: no profile of ${x.role} during ${phase}: ${(err as Error).message}`);
        }
      }),
    ).then(() => undefined);
  }

  private get loadCpus(): string | undefined {
    return this.pinning ? CPU_OF.client : undefined;
  }

  /** Measures one scenario: idle RSS, warm-up, paced latency (CPU, RSS), new connections, throughput. */
  async measure(name: Scenario, path: Path, checkProxiesCarryTraffic: boolean): Promise<ScenarioMetrics> {
    const p = this.phases;
    if (this.pinning) {
      for (const pid of path.apps) {
        try {
          pin(pid, CPU_OF.server);
        } catch {
          // A short-lived process of the pod (an exec probe) that exited since it was listed.
        }
      }
      for (const proxy of path.proxies) pin(proxy.pid, CPU_OF[proxy.side]);
    }
    const pids = path.proxies.map((x) => x.pid);
    const idle = pids.map(rssMb);
    const peaks = new RssPeaks(pids);
    try {
      const target = `${path.echo.host}:${path.echo.port}`;
      const paced = { qps: p.qps, connections: p.connections, payload: p.payload, cpus: this.loadCpus };
      this.log(`${name}: warm-up ${p.warmupSeconds}s`);
      const cpuBeforeWarmup = pids.map(cpuSeconds);
      const warm = await pacedRoundTrips(path.client.netnsPath, target, { ...paced, requests: Math.ceil(p.qps * p.warmupSeconds) });
      if (warm.failed > 0) throw new Error(`warm-up: ${warm.failed} of ${warm.requests} round trips to ${target} failed: ${JSON.stringify(warm.counts)}`);
      if (checkProxiesCarryTraffic) {
        const idleProxies = path.proxies.filter((x, i) => cpuSeconds(x.pid) - cpuBeforeWarmup[i]! <= 0);
        if (idleProxies.length) {
          throw new Error(`traffic does not pass through ${idleProxies.map((x) => x.role).join(' and ')} (no CPU used during the warm-up)`);
        }
      }

      this.log(`${name}: ${p.qps} req/s, ${p.payload} B, ${p.connections} connections, ${p.latencySeconds}s`);
      const requests = Math.round(p.qps * p.latencySeconds);
      const loadPeaks = new RssPeaks(pids);
      const cpuBefore = pids.map(cpuSeconds);
      const latencyProfile = this.profile(name, 'latency', p.latencySeconds, path);
      const latency = await pacedRoundTrips(path.client.netnsPath, target, { ...paced, requests });
      const cpuUsed = pids.map((pid, i) => cpuSeconds(pid) - cpuBefore[i]!);
      const loadRss = loadPeaks.stop();
      await latencyProfile;
      if (latency.failed > requests / 100) this.log(`${name}: warning: ${latency.failed} of ${requests} round trips failed: ${JSON.stringify(latency.counts)}`);

      // The paced warm-up opens only a few connections, so V8 may still be compiling a proxy's connection set-up
      // and tear-down code when the measured phase starts: warm that path up too, the same way for every scenario.
      const connLoad = { payload: p.payload, concurrency: p.connRateConcurrency, cpus: this.loadCpus };
      this.log(`${name}: new connections warm-up for ${p.connWarmupMs} ms (≤ ${p.connWarmupMax})`);
      const connWarm = await newConnections(path.client.netnsPath, path.echo.host, path.echo.port, { ...connLoad, durationMs: p.connWarmupMs, maxConnections: p.connWarmupMax });
      if (connWarm.failed > 0) this.log(`${name}: warning: ${connWarm.failed} warm-up connections failed: ${JSON.stringify(connWarm.errors)}`);

      this.log(`${name}: new connections for ${p.connRateMs} ms (≤ ${p.connRateMax})`);
      const connsProfile = this.profile(name, 'connrate', p.connRateMs / 1000, path);
      const cpuBeforeConns = pids.map(cpuSeconds);
      const conns = await newConnections(path.client.netnsPath, path.echo.host, path.echo.port, { ...connLoad, durationMs: p.connRateMs, maxConnections: p.connRateMax });
      const cpuPerConn = pids.map((pid, i) => ((cpuSeconds(pid) - cpuBeforeConns[i]!) * 1000) / Math.max(1, conns.completed + conns.failed));
      await connsProfile;
      if (conns.failed > 0) this.log(`${name}: warning: ${conns.failed} new connections failed: ${JSON.stringify(conns.errors)}`);
      this.log(`${name}: new connections completed in each second (the last may be partial): ${conns.perSecondTimeline.join(', ')}`);

      const runs: number[] = [];
      for (let i = 0; i < p.throughputRuns; i++) {
        this.log(`${name}: single-stream throughput run ${i + 1}/${p.throughputRuns}, ${p.throughputSeconds}s`);
        const throughputProfile = i === 0 ? this.profile(name, 'throughput', p.throughputSeconds, path) : undefined;
        runs.push(await throughputGbps(path.client.netnsPath, path.iperf.host, path.iperf.port, p.throughputSeconds, this.loadCpus));
        await throughputProfile;
      }
      const peak = peaks.stop();

      const metrics: ScenarioMetrics = {
        throughput_gbps: median(runs),
        latency_ms: latency.latencyMs,
        new_conn_per_s: conns.perSecond,
        throughput_runs_gbps: runs,
        latency_requests: latency.requests,
        latency_failed: latency.failed,
        new_conn_failed: conns.failed,
      };
      if (path.proxies.length) {
        const proxies: ProxyFigures[] = path.proxies.map((x, i) => ({
          role: x.role,
          cpu_vcpu_per_1k_rps: cpuUsed[i]! / (latency.requests / 1000),
          cpu_ms_per_new_conn: cpuPerConn[i]!,
          rss_mb_idle: idle[i]!,
          rss_mb_load: loadRss[i]!,
          rss_mb_peak: peak[i]!,
        }));
        metrics.proxies = proxies;
        metrics.cpu_vcpu_per_1k_rps = Math.max(...proxies.map((x) => x.cpu_vcpu_per_1k_rps));
        metrics.rss_mb_idle = Math.max(...idle);
        metrics.rss_mb_load = Math.max(...loadRss);
      }
      return metrics;
    } finally {
      peaks.stop();
    }
  }
}

function parseScenarios(value: string): Scenario[] {
  const list = value.split(',').map((s) => s.trim()).filter(Boolean);
  for (const s of list) if (!(SCENARIOS as readonly string[]).includes(s)) throw new InvalidArgumentError(`unknown scenario "${s}": want ${SCENARIOS.join(', ')}`);
  return list as Scenario[];
}

function has(program: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${program}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function describeMachine(pinning: boolean): string[] {
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['describe', '--always', '--dirty'], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
  } catch {
    // Not a git checkout (installed package).
  }
  const cpus = os.cpus();
  return [
    `# Ambit L4 benchmark — ${new Date().toISOString()} — commit ${commit}`,
    `machine: ${cpus.length} × ${cpus[0]?.model ?? 'unknown CPU'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Linux ${os.release()}, Node ${process.version}`,
    `load average at start: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} (other work on the machine skews every figure)`,
    pinning
      ? `pinning: client side (load generators, client node's proxy) on CPU ${CPU_OF.client}, server side (apps, server node's proxy) on CPU ${CPU_OF.server}`
      : 'pinning: none',
  ];
}

async function main(): Promise<number> {
  const program = new Command()
    .name('l4')
    .description('L4 benchmark: direct vs ambit (two ztunnels, HBONE mTLS) vs an HAProxy mTLS tunnel, in a local cluster')
    .option('--quick', 'short phases, one throughput run (under a minute)')
    .option('--tiny', 'with --quick: a tiny payload and the shortest phases (for tests)')
    .option('--json <file>', 'also write {"l4": {"direct", "ambit", "haproxy"}} to FILE')
    .option('--scenarios <list>', 'comma-separated subset of direct,ambit,haproxy', parseScenarios, [...SCENARIOS])
    .option('--no-pin', 'do not pin load generators and proxies to separate CPUs')
    .option('--profile <dir>', 'write CPU profiles of both ztunnels for each phase to DIR (profiling slows them: not for reported figures)')
    .parse();
  const opts = program.opts<{ quick?: boolean; tiny?: boolean; json?: string; scenarios: Scenario[]; pin: boolean; profile?: string }>();
  if (opts.profile) mkdirSync(opts.profile, { recursive: true });
  const phases = opts.tiny ? TINY : opts.quick ? QUICK : FULL;
  const pinning = opts.pin && os.cpus().length >= 2;
  const log = (line: string): void => void process.stderr.write(`[l4] ${line}\n`);

  if (process.getuid?.() !== 0) throw new Error('the L4 benchmark needs root: it runs a local cluster and enters its pods\' network namespaces');
  if (!has('iperf3')) throw new Error('iperf3 is not installed (apt-get install iperf3): it measures single-stream throughput');

  const results: Partial<Record<Scenario, ScenarioResult>> = {};
  const unavailable = (s: Scenario, reason: string): void => {
    results[s] = { unavailable: reason };
    log(`${s}: unavailable: ${reason}`);
  };
  for (const s of SCENARIOS) if (!opts.scenarios.includes(s)) results[s] = { unavailable: 'not selected (--scenarios)' };

  const cluster = new BenchCluster();
  const haproxies: HaproxyProcess[] = [];
  let interrupted = false;
  const onSignal = (): void => {
    interrupted = true;
    log('interrupted: cleaning up');
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const bench = new Bench(phases, pinning, log, opts.profile);
  try {
    log(`starting local cluster ${cluster.name} (state in ${cluster.base})`);
    await cluster.up(manifest(), 120);
    const status = await cluster.status();
    const direct = { client: await cluster.pod('bench-direct', 'client'), server: await cluster.pod('bench-direct', 'server') };
    const serverApps = (server: PodInfo): number[] => pidsInNetns(server.netnsPath);

    if (opts.scenarios.includes('direct') && !interrupted) {
      try {
        results.direct = await bench.measure('direct', {
          client: direct.client,
          echo: { host: direct.server.ip, port: ECHO_PORT },
          iperf: { host: direct.server.ip, port: IPERF_PORT },
          proxies: [],
          apps: serverApps(direct.server),
        }, false);
      } catch (err) {
        unavailable('direct', (err as Error).message);
      }
    }

    if (opts.scenarios.includes('haproxy') && !interrupted) {
      if (!has('haproxy')) unavailable('haproxy', 'haproxy is not installed (apt-get install haproxy)');
      else {
        try {
          const apps = serverApps(direct.server);
          const ports = [
            { local: 19090, tls: 19443, app: ECHO_PORT },
            { local: 15201, tls: 15443, app: IPERF_PORT },
          ];
          const configs = await writeHaproxyConfigs(cluster.base, { namespace: 'bench-direct', serverIP: direct.server.ip, ports });
          const cpu = (side: Side): string | undefined => (pinning ? CPU_OF[side] : undefined);
          haproxies.push(await startHaproxy('server', direct.server.netnsPath, configs.server, { host: direct.server.ip, port: ports[0]!.tls }, cpu('server')));
          haproxies.push(await startHaproxy('client', direct.client.netnsPath, configs.client, { host: '127.0.0.1', port: ports[0]!.local }, cpu('client')));
          results.haproxy = await bench.measure('haproxy', {
            client: direct.client,
            echo: { host: '127.0.0.1', port: ports[0]!.local },
            iperf: { host: '127.0.0.1', port: ports[1]!.local },
            proxies: haproxies.map((h) => ({ role: `haproxy ${h.role} side`, pid: h.pid, side: h.role })).reverse(),
            apps,
          }, true);
        } catch (err) {
          unavailable('haproxy', (err as Error).message);
        } finally {
          for (const h of haproxies.splice(0)) await h.stop();
        }
      }
    }

    if (opts.scenarios.includes('ambit') && !interrupted) {
      try {
        const client = await cluster.pod('bench-ambit', 'client');
        const server = await cluster.pod('bench-ambit', 'server');
        const ztunnel = async (node: string, side: Side): Promise<Path['proxies'][number]> => {
          const c = status.components.find((x) => x.name === 'ztunnel' && x.node === node);
          if (!c) throw new Error(`the local cluster runs no ztunnel on ${node}`);
          if (!c.pid || !c.healthy) throw new Error(`ztunnel on ${node} is not healthy: ${c.healthMessage ?? JSON.stringify(c.state)}`);
          return { role: `ztunnel ${node}`, pid: c.pid, side, adminNetns: await cluster.nodeNetns(node) };
        };
        results.ambit = await bench.measure('ambit', {
          client,
          echo: { host: server.ip, port: ECHO_PORT },
          iperf: { host: server.ip, port: IPERF_PORT },
          proxies: [await ztunnel(client.node, 'client'), await ztunnel(server.node, 'server')],
          apps: serverApps(server),
        }, true);
      } catch (err) {
        unavailable('ambit', (err as Error).message);
      }
    }
  } finally {
    for (const h of haproxies) await h.stop();
    log(`removing local cluster ${cluster.name}`);
    const problems = await cluster.destroy();
    for (const p of problems) log(`clean-up: ${p}`);
  }
  if (interrupted) return 130;

  const report: L4Report = { l4: { direct: results.direct!, ambit: results.ambit!, haproxy: results.haproxy! } };
  for (const s of SCENARIOS) report.l4[s] ??= { unavailable: 'not measured' };
  process.stdout.write(formatReport(report, describeMachine(pinning)));
  if (opts.json) writeFileSync(opts.json, JSON.stringify(report, null, 2) + '\n');
  // The reference point must work; a missing proxy scenario is reported, not fatal.
  return opts.scenarios.includes('direct') && 'unavailable' in report.l4.direct ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`l4 benchmark: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
