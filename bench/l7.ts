// `npm run bench:l7`: what the waypoint (L7 proxy) costs, against the same path without it and against nginx in its
// place, measured in one run on one local cluster (bench/l7/cluster.ts: 3 nodes, one ambient namespace).
//   direct    client → node-1 ztunnel → HBONE → node-2 ztunnel → server           (Service server-direct)
//   waypoint  client → node-1 ztunnel → HBONE → waypoint → HBONE → node-2 ztunnel → server
//                                                                  (Service server-waypoint, bound to the waypoint)
//   nginx     client → node-1 ztunnel → HBONE → node-3 ztunnel → nginx → node-3 ztunnel → HBONE → node-2 ztunnel →
//             server (Service nginx; nginx is a mesh pod on the waypoint's node, its upstream is server-direct)
// For each: HTTP/1.1 keep-alive requests/s at max throughput with a fixed number of connections, and at a fixed rate
// the latency (from each request's scheduled time), the added latency over `direct`, the CPU per 1000 requests and
// the RSS of every proxy process of the path.
//
//   node dist/bench/l7.js [--quick] [--tiny] [--json FILE] [--connections N] [--paths direct,waypoint,nginx] [--no-pin]
//                         [--profile DIR]
// Needs root (the local cluster) and Debian's nginx. Method and results: docs/performance.md.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError } from 'commander';
import type { PodInfo } from './l4/cluster.js';
import { runCommand } from './l4/load.js';
import { RssPeaks, cpuSeconds, pidsInNetns, pin, rssMb } from './l4/proc.js';
import { L7Cluster, NAMESPACE, NGINX, NGINX_UPSTREAM, NODES, ROUTE_COUNT, ROUTE_MARK, SERVICES, hasNginx, nginxPids, waypointPid } from './l7/cluster.js';
import { httpLoad, probe, type HttpLoadResult } from './l7/load.js';
import { PATHS, TARGETS, addLatencyOverDirect, formatReport, type L7Report, type PathMetrics, type PathName, type PathResult, type ProcessFigures } from './l7/report.js';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

interface Phases {
  /** Request body bytes; ambit-echo's answer echoes it with the request line and headers (about 1 KiB in all). */
  payload: number;
  /** Keep-alive connections (= requests in flight at most) in every phase. */
  connections: number;
  qps: number;
  warmupSeconds: number;
  rateSeconds: number;
  /** Unmeasured requests at max throughput; their rate sizes the measured max-throughput phase. */
  maxWarmupRequests: number;
  maxSeconds: number;
}

const FULL: Phases = { payload: 768, connections: 16, qps: 1000, warmupSeconds: 3, rateSeconds: 20, maxWarmupRequests: 3000, maxSeconds: 10 };
const QUICK: Phases = { ...FULL, warmupSeconds: 1, rateSeconds: 5, maxWarmupRequests: 1000, maxSeconds: 3 };
const TINY: Phases = { ...QUICK, qps: 200, warmupSeconds: 0.5, rateSeconds: 1, maxWarmupRequests: 100, maxSeconds: 1 };

/**
 * Pinning gives the client node and the server node a core each, as the L4 benchmark does: the load generator and
 * node-1's ztunnel on CPU 0, the echo server and node-2's ztunnel on CPU 1. The third node (the waypoint, or nginx and
 * node-3's ztunnel) has no core of its own on a 2-core machine: it is left to the scheduler, the same for both.
 */
const CPU_OF = { client: '0', server: '1' } as const;
const PROBE_TIMEOUT_MS = 30_000;
const WAYPOINT_LOG_LINES = 30;

interface ProxyProcess {
  role: string;
  node: string;
  /** nginx: master and worker, counted together. */
  pids: number[];
  /** The waypoint: its pod's network namespace, where its admin port serves CPU profiles. */
  adminNetns?: string;
}

interface PathSetup {
  name: PathName;
  url: string;
  client: PodInfo;
  /** The proxy processes the path passes, in order; each must use CPU during the warm-up. */
  processes: ProxyProcess[];
  l7?: ProxyProcess;
  /** Why a response body shows the request did not take this path, or undefined if it did. */
  wrongPath(body: string): string | undefined;
  /** Pods whose logs explain failed requests. */
  logPods: string[];
}

const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
const groupCpu = (p: ProxyProcess): number => sum(p.pids.map(cpuSeconds));
const groupRss = (p: ProxyProcess): number => sum(p.pids.map(rssMb));

/** Busy and total time of each CPU of the machine so far (/proc/stat, in clock ticks). */
function machineCpu(): { busy: number; total: number }[] {
  return readFileSync('/proc/stat', 'utf8').split('\n').filter((l) => /^cpu\d+ /.test(l)).map((l) => {
    // user nice system idle iowait irq softirq steal (guest time is already counted in user).
    const ticks = l.trim().split(/\s+/).slice(1, 9).map(Number);
    const total = sum(ticks);
    return { busy: total - ticks[3]! - ticks[4]!, total };
  });
}

/** How busy each CPU was since `before` (0–1): the benchmark's processes and anything else running on the machine. */
function cpuBusySince(before: { busy: number; total: number }[]): number[] {
  return machineCpu().map((now, i) => (now.busy - before[i]!.busy) / Math.max(1, now.total - before[i]!.total));
}

/** Private_Clean + Private_Dirty of a process in MB: what it holds that no other process shares (code pages excluded). */
function privateMb(pid: number): number {
  const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  let kb = 0;
  for (const m of rollup.matchAll(/^Private_(?:Clean|Dirty):\s+(\d+) kB/gm)) kb += Number(m[1]);
  return kb / 1024;
}

class Bench {
  constructor(
    private readonly cluster: L7Cluster,
    private readonly phases: Phases,
    private readonly loadCpus: string | undefined,
    private readonly log: (line: string) => void,
    /** Ctrl-C or SIGTERM arrived: stop at the next phase, so the cluster is removed soon. */
    private readonly interrupted: () => boolean,
    private readonly profileDir?: string,
  ) {}

  private checkInterrupted(): void {
    if (this.interrupted()) throw new Error('interrupted');
  }

  /** Probe, idle RSS, warm-up, fixed rate (latency, CPU, RSS), max throughput. */
  async measure(path: PathSetup): Promise<PathMetrics> {
    const p = this.phases;
    const { name, url } = path;
    const netns = path.client.netnsPath;
    const body = await this.probeUntilOnPath(path);
    const allPids = path.processes.flatMap((x) => x.pids);
    const idle = path.processes.map(groupRss);
    const peaks = new RssPeaks(allPids);
    const peakOf = (perPid: number[], x: ProxyProcess): number => sum(x.pids.map((pid) => perPid[allPids.indexOf(pid)]!));
    try {
      const load = { concurrency: p.connections, payload: p.payload, cpus: this.loadCpus };
      const paced = { ...load, qps: p.qps };
      const pacedTimeout = (requests: number): number => (requests / p.qps) * 1000 + 60_000;

      this.log(`${name}: warm-up ${p.warmupSeconds}s at ${p.qps} req/s`);
      const cpuBeforeWarmup = path.processes.map(groupCpu);
      const warmRequests = Math.ceil(p.qps * p.warmupSeconds);
      const warm = await httpLoad(netns, url, { ...paced, requests: warmRequests, timeoutMs: pacedTimeout(warmRequests) });
      if (warm.failed > 0) throw new Error(`warm-up: ${warm.failed} of ${warm.requests} requests to ${url} failed: ${JSON.stringify(warm.counts)}${await this.logsOf(path)}`);
      this.checkInterrupted();

      const requests = Math.round(p.qps * p.rateSeconds);
      this.log(`${name}: ${p.qps} req/s for ${p.rateSeconds}s (${requests} requests, up to ${p.connections} connections, ${p.payload} B bodies)`);
      const ratePeaks = new RssPeaks(allPids);
      const cpuBefore = path.processes.map(groupCpu);
      const machineBeforeRate = machineCpu();
      const rateProfile = this.profile(path, 'rate', p.rateSeconds);
      const rate = await httpLoad(netns, url, { ...paced, requests, timeoutMs: pacedTimeout(requests) });
      const cpuRate = path.processes.map((x, i) => groupCpu(x) - cpuBefore[i]!);
      const machineRate = cpuBusySince(machineBeforeRate);
      const rssRate = ratePeaks.stop();
      const privateRate = path.processes.map((x) => sum(x.pids.map(privateMb)));
      await rateProfile;
      await this.reportFailures(path, 'the fixed rate', rate);

      this.checkInterrupted();
      this.log(`${name}: max throughput warm-up, ${p.maxWarmupRequests} requests on ${p.connections} connections`);
      const maxWarm = await httpLoad(netns, url, { ...load, requests: p.maxWarmupRequests, timeoutMs: 120_000 });
      this.checkInterrupted();
      const maxRequests = Math.max(p.connections * 10, Math.round(maxWarm.rps * p.maxSeconds));
      this.log(`${name}: max throughput, ${maxRequests} requests (about ${p.maxSeconds}s at the warm-up's ${maxWarm.rps.toFixed(0)} req/s)`);
      const cpuBeforeMax = path.processes.map(groupCpu);
      const machineBeforeMax = machineCpu();
      const maxProfile = this.profile(path, 'max', p.maxSeconds);
      const max = await httpLoad(netns, url, { ...load, requests: maxRequests, timeoutMs: (maxRequests / Math.max(1, maxWarm.rps)) * 3000 + 60_000 });
      const cpuMax = path.processes.map((x, i) => (groupCpu(x) - cpuBeforeMax[i]!) / (max.durationMs / 1000));
      const machineMax = cpuBusySince(machineBeforeMax);
      await maxProfile;
      await this.reportFailures(path, 'max throughput', max);
      const peakAll = peaks.stop();
      // Checked over the whole run, not the warm-up alone: CPU time counts in 10-ms ticks, and a short warm-up through
      // an efficient proxy (nginx) can stay under one.
      const idleCarriers = path.processes.filter((x, i) => groupCpu(x) - cpuBeforeWarmup[i]! <= 0);
      if (idleCarriers.length) throw new Error(`traffic does not pass through ${idleCarriers.map((x) => x.role).join(' and ')} (no CPU used during the run)`);

      const per1k = (cpu: number): number => cpu / (rate.requests / 1000);
      const processes: ProcessFigures[] = path.processes.map((x, i) => ({
        role: x.role,
        cpu_vcpu_per_1k_rps: per1k(cpuRate[i]!),
        cpu_vcpu_at_max: cpuMax[i]!,
        cpu_vcpu_per_1k_req_at_max: cpuMax[i]! / (max.rps / 1000),
        rss_mb_idle: idle[i]!,
        rss_mb_load: peakOf(rssRate, x),
        rss_mb_private: privateRate[i]!,
        rss_mb_peak: peakOf(peakAll, x),
      }));
      const l7 = path.l7 ? path.processes.indexOf(path.l7) : -1;
      const metrics: PathMetrics = {
        max_rps: max.rps,
        max_latency_ms: max.latencyMs,
        latency_ms: rate.latencyMs,
        path_vcpu_per_1k_rps: sum(processes.map((x) => x.cpu_vcpu_per_1k_rps)),
        request_bytes: p.payload,
        response_bytes: Buffer.byteLength(body),
        rate_rps: rate.rps,
        rate_requests: rate.requests,
        rate_failed: rate.failed,
        max_requests: max.requests,
        max_failed: max.failed,
        cpu_busy_at_rate: machineRate,
        cpu_busy_at_max: machineMax,
        processes,
      };
      if (l7 >= 0) {
        metrics.proxy_vcpu_per_1k_rps = processes[l7]!.cpu_vcpu_per_1k_rps;
        metrics.proxy_rss_mb_load = processes[l7]!.rss_mb_load;
      }
      return metrics;
    } finally {
      peaks.stop();
    }
  }

  /** One request at a time until one answers 200 through the path's proxies (the waypoint binding needs xDS to reach the ztunnels). */
  private async probeUntilOnPath(path: PathSetup): Promise<string> {
    const deadline = Date.now() + PROBE_TIMEOUT_MS;
    for (;;) {
      const r = await probe(path.client.netnsPath, path.url, this.phases.payload).catch((err: Error) => ({ status: err.message, body: '' }));
      const wrong = r.status === '200' ? path.wrongPath(r.body) : `answered ${r.status}`;
      if (!wrong) return r.body;
      if (Date.now() > deadline) throw new Error(`${path.url} does not take the ${path.name} path after ${PROBE_TIMEOUT_MS / 1000}s: ${wrong}${await this.logsOf(path)}`);
      await new Promise((res) => setTimeout(res, 250));
    }
  }

  private async reportFailures(path: PathSetup, phase: string, r: HttpLoadResult): Promise<void> {
    if (r.failed === 0) return;
    this.log(`${path.name}: warning: ${r.failed} of ${r.requests} requests failed at ${phase}: ${JSON.stringify(r.counts)}${await this.logsOf(path)}`);
  }

  private async logsOf(path: PathSetup): Promise<string> {
    let out = '';
    for (const pod of path.logPods) out += `\n--- last ${WAYPOINT_LOG_LINES} lines of ${NAMESPACE}/${pod}:\n${(await this.cluster.logs(pod, WAYPOINT_LOG_LINES)).trimEnd()}`;
    return out;
  }

  /** With --profile: a V8 CPU profile of the waypoint over the next `seconds` from its admin port, to DIR/waypoint-<phase>.cpuprofile. */
  private async profile(path: PathSetup, phase: string, seconds: number): Promise<void> {
    const netns = path.l7?.adminNetns;
    if (!this.profileDir || !netns) return;
    const fetchProfile = `fetch('http://127.0.0.1:15000/debug/pprof/profile?seconds=${Math.max(1, Math.round(seconds))}').then(async (r) => { const t = await r.text(); if (!r.ok) throw new Error(t); process.stdout.write(t); })`;
    const file = join(this.profileDir, `waypoint-${phase}.cpuprofile`);
    try {
      writeFileSync(file, await runCommand(netns, [process.execPath, '-e', fetchProfile], { timeoutMs: (seconds + 30) * 1000 }));
      this.log(`${path.name}: profile of the waypoint during ${phase}: ${file}`);
    } catch (err) {
      this.log(`${path.name}: no profile of the waypoint during ${phase}: ${(err as Error).message}`);
    }
  }
}

function positiveInt(value: string): number {
  if (!/^[1-9]\d*$/.test(value)) throw new InvalidArgumentError(`invalid number "${value}": want a whole number ≥ 1`);
  return Number(value);
}

function parsePaths(value: string): PathName[] {
  const list = value.split(',').map((s) => s.trim()).filter(Boolean);
  for (const s of list) if (!(PATHS as readonly string[]).includes(s)) throw new InvalidArgumentError(`unknown path "${s}": want ${PATHS.join(', ')}`);
  return list as PathName[];
}

function header(p: Phases, pinning: boolean, placement: string): string[] {
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['describe', '--always', '--dirty'], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
  } catch {
    // Not a git checkout (installed package).
  }
  // nginx -v prints its version on stderr.
  const nginx = spawnSync(NGINX, ['-v'], { encoding: 'utf8' }).stderr?.trim().replace(/^nginx version: /, '') || 'nginx (version unknown)';
  const cpus = os.cpus();
  return [
    `# Ambit L7 benchmark — ${new Date().toISOString()} — commit ${commit}`,
    `machine: ${cpus.length} × ${cpus[0]?.model ?? 'unknown CPU'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Linux ${os.release()}, Node ${process.version}, ${nginx}`,
    `load average at start: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} (other work on the machine skews every figure)`,
    `cluster: ${NODES} nodes; ${placement}`,
    `load: ambit-client in the client pod, HTTP/1.1 keep-alive, POST with a ${p.payload} B body, up to ${p.connections} connections; ` +
      `fixed rate ${p.qps} req/s for ${p.rateSeconds}s (after ${p.warmupSeconds}s of warm-up); max throughput for about ${p.maxSeconds}s`,
    pinning
      ? `pinning: load generator and node-1's ztunnel on CPU ${CPU_OF.client}; echo server and node-2's ztunnel on CPU ${CPU_OF.server}; the third node's processes unpinned`
      : 'pinning: none',
    `targets: waypoint ≤ ${TARGETS.vcpuPer1kRps} vCPU and ≤ ${TARGETS.rssMb} MB at 1000 rps (Istio 1.24's Envoy waypoint), added p99 over direct ≤ ${TARGETS.addedP99Ms} ms`,
  ];
}

async function main(): Promise<number> {
  const program = new Command()
    .name('l7')
    .description('L7 benchmark: direct (two ztunnels) vs through the waypoint vs through nginx in its place, in a local cluster')
    .option('--quick', 'short phases (about a minute)')
    .option('--tiny', 'with --quick: a low rate and the shortest phases (for tests)')
    .option('--json <file>', 'also write {"l7": {"direct", "waypoint", "nginx"}} to FILE')
    .option('--connections <n>', 'keep-alive connections of the load generator (requests in flight at max throughput)', positiveInt, FULL.connections)
    .option('--paths <list>', `comma-separated subset of ${PATHS.join(',')}`, parsePaths, [...PATHS])
    .option('--no-pin', 'do not pin the client and server sides to separate CPUs')
    .option('--profile <dir>', 'write CPU profiles of the waypoint for the fixed-rate and max phases to DIR (profiling slows it: not for reported figures)')
    .parse();
  const opts = program.opts<{ quick?: boolean; tiny?: boolean; json?: string; connections: number; paths: PathName[]; pin: boolean; profile?: string }>();
  if (opts.profile) mkdirSync(opts.profile, { recursive: true });
  const phases = { ...(opts.tiny ? TINY : opts.quick ? QUICK : FULL), connections: opts.connections };
  const pinning = opts.pin && os.cpus().length >= 2;
  const log = (line: string): void => void process.stderr.write(`[l7] ${line}\n`);

  if (process.getuid?.() !== 0) throw new Error('the L7 benchmark needs root: it runs a local cluster and enters its pods\' network namespaces');

  const results: Partial<Record<PathName, PathResult>> = {};
  const unavailable = (s: PathName, reason: string): void => {
    results[s] = { unavailable: reason };
    log(`${s}: unavailable: ${reason}`);
  };
  for (const s of PATHS) if (!opts.paths.includes(s)) results[s] = { unavailable: 'not selected (--paths)' };

  const cluster = new L7Cluster();
  let interrupted = false;
  const onSignal = (): void => {
    interrupted = true;
    log('interrupted: cleaning up');
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const meta: string[] = [];
  try {
    log(`starting local cluster ${cluster.name} (state in ${cluster.base})`);
    await cluster.up(120);
    const status = await cluster.status();
    const client = await cluster.pod('client');
    const server = await cluster.pod('server');
    const ztunnels: ProxyProcess[] = status.nodes.map((n) => {
      const c = status.components.find((x) => x.name === 'ztunnel' && x.node === n.name);
      if (!c?.pid || !c.healthy) throw new Error(`ztunnel on ${n.name} is not healthy: ${c?.healthMessage ?? JSON.stringify(c?.state)}`);
      return { role: `ztunnel ${n.name}`, node: n.name, pids: [c.pid] };
    });
    const ztunnelOn = (node: string): ProxyProcess => ztunnels.find((z) => z.node === node)!;
    const loadCpus = pinning ? CPU_OF.client : undefined;
    if (pinning) {
      pin(ztunnelOn(client.node).pids[0]!, CPU_OF.client);
      pin(ztunnelOn(server.node).pids[0]!, CPU_OF.server);
      for (const pid of pidsInNetns(server.netnsPath)) pin(pid, CPU_OF.server);
    }
    const bench = new Bench(cluster, phases, loadCpus, log, () => interrupted, opts.profile);
    const vip = { direct: await cluster.serviceVip(SERVICES.direct), waypoint: await cluster.serviceVip(SERVICES.waypoint), routes: await cluster.serviceVip(SERVICES.routes) };
    const onPath = (what: string, seen: boolean): string | undefined => (seen ? undefined : what);
    const wentThroughWaypoint = (body: string): boolean => /^RequestHeader=x-request-id:/im.test(body);
    const wentThroughNginx = (body: string): boolean => body.includes(`\nHost=${NGINX_UPSTREAM}\n`);

    // The waypoint and nginx are deployed before anything is measured, so every path runs on the same cluster.
    let waypointPod: PodInfo | undefined;
    let waypointSetupError: string | undefined;
    if (opts.paths.includes('waypoint') || opts.paths.includes('routes') || opts.paths.includes('nginx')) {
      try {
        log('applying the waypoint (ambit waypoint apply --wait)');
        waypointPod = await cluster.applyWaypoint(90);
      } catch (err) {
        waypointSetupError = `the waypoint did not come up: ${(err as Error).message}`;
      }
    }
    let routesSetupError: string | undefined;
    if (opts.paths.includes('routes') && waypointPod) {
      try {
        log(`applying ${ROUTE_COUNT} HTTPRoutes on ${SERVICES.routes}`);
        await cluster.applyRouteTable(60);
      } catch (err) {
        routesSetupError = `the route table was not applied: ${(err as Error).message}`;
      }
    }
    let nginxPod: PodInfo | undefined;
    let nginxSetupError: string | undefined;
    if (opts.paths.includes('nginx')) {
      if (!hasNginx()) nginxSetupError = 'nginx is not installed (apt-get install nginx)';
      else {
        // nginx goes where the waypoint is; without a waypoint, on the third node, where the waypoint would be.
        const node = waypointPod?.node ?? `node-${NODES}`;
        try {
          log(`starting nginx on ${node}`);
          nginxPod = await cluster.startNginx(node, vip.direct, 60);
        } catch (err) {
          nginxSetupError = `nginx did not come up: ${(err as Error).message}`;
        }
      }
    }
    const placement = `client pod on ${client.node}, server pod on ${server.node}, waypoint on ${waypointPod?.node ?? '—'}, nginx on ${nginxPod?.node ?? '—'}`;
    log(placement);
    meta.push(...header(phases, pinning, placement));

    if (opts.paths.includes('direct') && !interrupted) {
      try {
        results.direct = await bench.measure({
          name: 'direct', url: `http://${vip.direct}/`, client,
          processes: [ztunnelOn(client.node), ztunnelOn(server.node)],
          wrongPath: (b) => onPath('the request went through a proxy', !wentThroughWaypoint(b) && !wentThroughNginx(b)),
          logPods: [],
        });
      } catch (err) {
        unavailable('direct', (err as Error).message);
      }
    }

    if (opts.paths.includes('waypoint') && !interrupted) {
      if (!waypointPod) unavailable('waypoint', waypointSetupError ?? 'no waypoint');
      else {
        try {
          const l7: ProxyProcess = { role: 'waypoint', node: waypointPod.node, pids: [waypointPid(waypointPod)], adminNetns: waypointPod.netnsPath };
          results.waypoint = await bench.measure({
            name: 'waypoint', url: `http://${vip.waypoint}/`, client, l7,
            processes: [ztunnelOn(client.node), l7, ztunnelOn(server.node)],
            wrongPath: (b) => onPath('the echoed request has no x-request-id: it did not pass the waypoint', wentThroughWaypoint(b)),
            logPods: [waypointPod.name],
          });
          const accessLog = /"POST \/ HTTP\/1\.1" 200/.test(await cluster.logs(waypointPod.name, 1));
          meta.push(`waypoint access log: ${accessLog ? 'on (one line per request, as deployed by default)' : 'off'}`);
        } catch (err) {
          unavailable('waypoint', (err as Error).message);
        }
      }
    }

    if (opts.paths.includes('routes') && !interrupted) {
      if (!waypointPod || routesSetupError) unavailable('routes', routesSetupError ?? waypointSetupError ?? 'no waypoint');
      else {
        try {
          const l7: ProxyProcess = { role: 'waypoint', node: waypointPod.node, pids: [waypointPid(waypointPod)], adminNetns: waypointPod.netnsPath };
          results.routes = await bench.measure({
            name: 'routes', url: `http://${vip.routes}/`, client, l7,
            processes: [ztunnelOn(client.node), l7, ztunnelOn(server.node)],
            // Until the route table reaches the waypoint, requests take the default route and lack the mark.
            wrongPath: (b) => onPath(`the echoed request has no ${ROUTE_MARK}: the route table is not in force yet`, new RegExp(`^RequestHeader=${ROUTE_MARK}:matched`, 'im').test(b)),
            logPods: [waypointPod.name],
          });
        } catch (err) {
          unavailable('routes', (err as Error).message);
        }
      }
    }

    if (opts.paths.includes('nginx') && !interrupted) {
      if (!nginxPod) unavailable('nginx', nginxSetupError ?? 'no nginx');
      else {
        try {
          const { master, workers } = nginxPids(nginxPod);
          const l7: ProxyProcess = { role: 'nginx (master + worker)', node: nginxPod.node, pids: [master, ...workers] };
          const hopZtunnel = ztunnelOn(nginxPod.node);
          const m = await bench.measure({
            name: 'nginx', url: `http://${await cluster.serviceVip(SERVICES.nginx)}/`, client, l7,
            processes: [ztunnelOn(client.node), hopZtunnel, l7, ztunnelOn(server.node)],
            wrongPath: (b) => onPath(`the echoed request has no Host=${NGINX_UPSTREAM}: it did not pass nginx`, wentThroughNginx(b)),
            logPods: [nginxPod.name],
          });
          if (nginxPod.node !== client.node && nginxPod.node !== server.node) {
            m.hop_vcpu_per_1k_rps = m.proxy_vcpu_per_1k_rps! + m.processes.find((x) => x.role === hopZtunnel.role)!.cpu_vcpu_per_1k_rps;
          }
          results.nginx = m;
        } catch (err) {
          unavailable('nginx', (err as Error).message);
        }
      }
    }
  } finally {
    log(`removing local cluster ${cluster.name}`);
    const problems = await cluster.destroy();
    for (const p of problems) log(`clean-up: ${p}`);
  }
  if (interrupted) return 130;

  const report: L7Report = { l7: { direct: results.direct!, waypoint: results.waypoint!, routes: results.routes!, nginx: results.nginx! } };
  for (const s of PATHS) report.l7[s] ??= { unavailable: 'not measured' };
  addLatencyOverDirect(report);
  meta.push(`load average at end: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  process.stdout.write(formatReport(report, meta));
  if (opts.json) writeFileSync(opts.json, JSON.stringify(report, null, 2) + '\n');
  // The reference point must work; a proxied path that fails is reported, not fatal.
  return opts.paths.includes('direct') && 'unavailable' in report.l7.direct ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`l7 benchmark: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
