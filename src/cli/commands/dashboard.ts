// `ambit dashboard prometheus|grafana`, after istioctl dashboard. `prometheus` prints a scrape configuration for the
// running local cluster (src/cli/prometheus-config.ts); with --start it runs Debian's prometheus with it in the
// cluster's fabric namespace, from where every target is reachable (the control plane's loopback debug port, the
// nodes' ztunnels, the pods), keeps its targets up to date, and serves its UI on the machine's loopback through a
// Unix-socket forward (src/local/unix-forward.ts). `grafana` prints one of the dashboards shipped in dashboards/.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import type { Pod } from '../../api/types.js';
import { DEFAULT_DEBUG_LISTEN, parseListen } from '../../controlplane/server.js';
import { ClusterClient, tail, withClusterOption } from '../../local/client.js';
import type { SupervisorStatus } from '../../local/supervisor.js';
import { inNetns, onPath, supervisorNamespaces } from '../../local/sys.js';
import { METRICS_PORT } from '../../telemetry/admin.js';
import { portOption, prometheusDurationOption } from '../options.js';
import { DEFAULT_SCRAPE_INTERVAL, prometheusConfig } from '../prometheus-config.js';

/** The Grafana dashboards shipped with the package (dashboards/*.json at its root). */
export const DASHBOARDS_DIR = fileURLToPath(new URL('../../../../dashboards/', import.meta.url));
const FORWARD_SCRIPT = fileURLToPath(new URL('../../local/unix-forward.js', import.meta.url));
/** istioctl dashboard prometheus's local port, and Prometheus' own. */
const DEFAULT_UI_PORT = 9090;
/** Where Prometheus listens inside the fabric namespace (its loopback only; the forward reaches it there). */
const PROMETHEUS_PORT_IN_FABRIC = 9090;
/** How often --start looks for new or gone pods (waypoints are redeployed by rollouts). */
const TARGET_REFRESH_MS = 5_000;
const READY_TIMEOUT_MS = 60_000;

interface PrometheusOptions {
  cluster?: string;
  start?: boolean;
  port: number;
  scrapeInterval: string;
}

/** The cluster's supervisor status and the scrape configuration for its current targets. */
async function renderConfig(client: ClusterClient, scrapeInterval: string): Promise<{ status: SupervisorStatus; config: string; targets: number }> {
  const status = await client.call<SupervisorStatus>('GET', '/v1/status');
  const { items } = await client.call<{ items: Pod[] }>('GET', '/v1/resources?kind=pod');
  const { yaml, targets } = prometheusConfig(
    client.name,
    { nodes: status.nodes, ztunnelMetricsPort: METRICS_PORT, controlPlaneMetrics: parseListen(DEFAULT_DEBUG_LISTEN), pods: items },
    scrapeInterval,
  );
  return { status, config: yaml, targets };
}

function listen(server: Server, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(err.code === 'EADDRINUSE' ? new Error(`127.0.0.1:${port} is in use; pick another port with --port (0: any free port)`) : err),
    );
    server.listen(port, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((resolve) => child.once('exit', () => resolve()));
}

/** Runs Prometheus for the cluster until SIGINT/SIGTERM; rejects when it (or its forward) stops by itself. */
async function startPrometheus(client: ClusterClient, opts: PrometheusOptions): Promise<void> {
  if (!onPath('prometheus')) throw new Error('prometheus is not installed; install it with: apt-get install prometheus');
  const dir = client.layout.prometheusDir;
  const configPath = join(dir, 'prometheus.yml');
  const logPath = join(dir, 'prometheus.log');
  const socketPath = join(dir, 'ui.sock');
  mkdirSync(join(dir, 'data'), { recursive: true });
  let rendered = await renderConfig(client, opts.scrapeInterval);
  writeFileSync(configPath, rendered.config);

  // The machine's side of the forward: each connection to 127.0.0.1:PORT goes through the socket. Bound first, so a
  // busy port is reported before anything is started.
  const sockets = new Set<Socket>();
  const server = createServer((conn) => {
    const upstream = connect(socketPath);
    sockets.add(conn).add(upstream);
    conn.pipe(upstream).pipe(conn);
    const close = () => {
      conn.destroy();
      upstream.destroy();
      sockets.delete(conn);
      sockets.delete(upstream);
    };
    for (const s of [conn, upstream]) s.on('error', close).on('close', close);
  });
  const port = await listen(server, opts.port);

  // Both run in the fabric namespace (through the supervisor's namespaces when rootless) and die with this process.
  const inFabric = (argv: string[]) => [
    ...supervisorNamespaces(rendered.status.rootless, rendered.status.pid),
    ...inNetns(client.layout.fabricNetns, ['setpriv', '--pdeathsig', 'TERM', '--', ...argv]),
  ];
  const logFd = openSync(logPath, 'a');
  const prometheusArgv = inFabric([
    'prometheus',
    `--config.file=${configPath}`,
    `--storage.tsdb.path=${join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${PROMETHEUS_PORT_IN_FABRIC}`,
  ]);
  const prometheus = spawn(prometheusArgv[0]!, prometheusArgv.slice(1), { stdio: ['ignore', logFd, logFd] });
  closeSync(logFd);
  const forwardArgv = inFabric([process.execPath, FORWARD_SCRIPT, socketPath, String(PROMETHEUS_PORT_IN_FABRIC)]);
  const forward = spawn(forwardArgv[0]!, forwardArgv.slice(1), { stdio: ['ignore', 'ignore', 'inherit'] });

  let refresh: NodeJS.Timeout | undefined;
  const stop = async () => {
    clearInterval(refresh);
    server.close();
    for (const s of sockets) s.destroy();
    for (const child of [prometheus, forward]) child.kill('SIGTERM');
    await Promise.all([exited(prometheus), exited(forward)]);
    rmSync(socketPath, { force: true });
  };

  const done = new Promise<void>((resolve, reject) => {
    prometheus.once('exit', (code, signal) => reject(new Error(`prometheus exited (${signal ?? `code ${code}`}); the end of ${logPath}:\n${tail(logPath, 15)}`)));
    forward.once('exit', (code, signal) => reject(new Error(`the forward to prometheus' UI exited (${signal ?? `code ${code}`})`)));
    for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => resolve());
  });
  const url = `http://127.0.0.1:${port}`;
  try {
    // Stopped (Ctrl+C) before it was ready: nothing to announce.
    if (!(await Promise.race([done.then(() => false), waitReady(url).then(() => true)]))) return;
    process.stdout.write(
      `Prometheus for cluster "${client.name}" is ready: ${url}\n` +
        `  ${rendered.targets} targets scraped every ${opts.scrapeInterval}; configuration ${configPath}, log ${logPath}\n` +
        '  Press Ctrl+C to stop it.\n',
    );
    // New or gone pods: rewrite the configuration and have Prometheus reload it (SIGHUP).
    refresh = setInterval(() => {
      renderConfig(client, opts.scrapeInterval).then(
        (next) => {
          if (next.config === rendered.config) return;
          rendered = next;
          writeFileSync(configPath, next.config);
          prometheus.kill('SIGHUP');
        },
        (err: Error) => process.stderr.write(`cannot refresh the targets: ${err.message}\n`),
      );
    }, TARGET_REFRESH_MS);
    await done;
  } finally {
    await stop();
  }
}

async function waitReady(url: string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    const ready = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(2_000) }).then((r) => r.ok, () => false);
    if (ready) return;
    if (Date.now() > deadline) throw new Error(`prometheus did not become ready within ${READY_TIMEOUT_MS / 1000}s`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** The shipped dashboards, by name (file name without .json). */
function dashboardNames(): string[] {
  return readdirSync(DASHBOARDS_DIR)
    .filter((f) => f.endsWith('.json'))
    .map((f) => f.slice(0, -'.json'.length))
    .sort();
}

export function register(program: Command): void {
  const dashboard = withClusterOption(
    program
      .command('dashboard')
      .alias('dash')
      .description("Observability for the local cluster, as istioctl dashboard: Prometheus' scrape configuration, Grafana dashboards"),
  ).configureHelp({ showGlobalOptions: true });

  dashboard
    .command('prometheus')
    .description('Print a Prometheus scrape configuration for the running cluster (ztunnels, control plane, waypoints); --start runs Prometheus with it')
    .option('--start', 'run prometheus in the cluster with this configuration until Ctrl+C; its UI is forwarded to 127.0.0.1:PORT')
    .option('-p, --port <port>', 'with --start: the port on 127.0.0.1 for the UI (0: any free port)', portOption, DEFAULT_UI_PORT)
    .option('--scrape-interval <duration>', 'how often each target is scraped', prometheusDurationOption, DEFAULT_SCRAPE_INTERVAL)
    .action(async (_: unknown, cmd: Command) => {
      const opts = cmd.optsWithGlobals<PrometheusOptions>();
      const client = ClusterClient.fromOptions(opts);
      if (opts.start) await startPrometheus(client, opts);
      else process.stdout.write((await renderConfig(client, opts.scrapeInterval)).config);
    });

  dashboard
    .command('grafana')
    .description('Print a Grafana dashboard (JSON, to import into Grafana); without a name, list them')
    .argument('[name]', 'dashboard name, e.g. ztunnel')
    .action((name: string | undefined) => {
      const names = dashboardNames();
      if (name === undefined) {
        for (const n of names) {
          const { title } = JSON.parse(readFileSync(join(DASHBOARDS_DIR, `${n}.json`), 'utf8')) as { title: string };
          process.stdout.write(`${n.padEnd(14)}${title}\n`);
        }
        return;
      }
      if (!names.includes(name)) throw new Error(`no dashboard "${name}"; dashboards: ${names.join(', ')}`);
      process.stdout.write(readFileSync(join(DASHBOARDS_DIR, `${name}.json`), 'utf8'));
    });
}
