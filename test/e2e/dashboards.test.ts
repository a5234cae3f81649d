// The observability kit end to end in one local cluster (2 nodes, a waypoint): the scrape configuration `ambit
// dashboard prometheus` prints passes `promtool check config` and names every component; `--start` runs Debian's
// prometheus with it; with L4 traffic (through ztunnel alone), HTTP and TCP through the waypoint, and the control
// plane restarted once (so the ztunnels' xDS streams end and reconnect), every query of every shipped Grafana
// dashboard and the seed guide's PromQL return data from Prometheus' HTTP API.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { eventually, hostSnapshot } from './local-harness.js';
import { MeshCluster } from './mesh-harness.js';

const DASHBOARDS = resolve(fileURLToPath(import.meta.url), '../../../../dashboards');

const APP = `
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {istio.io/dataplane-mode: ambient}}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: client, namespace: shop}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: shop}
spec:
  nodeName: node-1
  serviceAccountName: client
  containers:
  - {name: main, command: [sleep, infinity]}
${['server', 'direct']
  .map(
    (name) => `---
apiVersion: v1
kind: Pod
metadata: {name: ${name}, namespace: shop, labels: {app: ${name}}}
spec:
  nodeName: node-2
  containers:
  - name: echo
    command: [ambit-echo, --http-port, "8080", --tcp-port, "9090"]
    ports:
    - {name: http, containerPort: 8080}
    - {name: tcp-echo, containerPort: 9090}
    readinessProbe:
      httpGet: {path: /healthz, port: 8080}
      periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata: {name: ${name}, namespace: shop${name === 'direct' ? ', labels: {istio.io/use-waypoint: none}' : ''}}
spec:
  selector: {app: ${name}}
  ports:
  - {name: http, port: 80, targetPort: http}
  - {name: tcp-echo, port: 9090, targetPort: tcp-echo}
`,
  )
  .join('')}`;

/**
 * The seed guide's "Ambient Mode 모니터링" PromQL, with Istio's labels: it filters ztunnel's series with
 * reporter="ztunnel", which ztunnel never reports; ztunnel reports reporter="source" on the client's side and
 * "destination" on the server's (README, "Differences from Istio"), so each ztunnel query runs with both. Each query
 * names a series it must return: the check asserts more than "not empty".
 */
type SeedQuery = { query: string; expect: Record<string, string> };
const SEED_QUERIES: SeedQuery[] = [
  ...['source', 'destination'].flatMap((reporter): SeedQuery[] => [
    { query: `sum(istio_tcp_connections_opened_total{reporter="${reporter}"}) by (destination_workload)`, expect: { destination_workload: 'direct' } },
    {
      query: `sum(rate(istio_tcp_sent_bytes_total{reporter="${reporter}"}[5m])) by (source_workload, destination_workload)`,
      expect: { source_workload: 'client', destination_workload: 'direct' },
    },
  ]),
  // Through the waypoint, the client's ztunnel names the waypoint as the destination workload, the server's the server.
  { query: `sum(istio_tcp_connections_opened_total{reporter="source"}) by (destination_workload)`, expect: { destination_workload: 'waypoint' } },
  { query: `sum(istio_tcp_connections_opened_total{reporter="destination"}) by (destination_workload)`, expect: { destination_workload: 'server' } },
  {
    query: `sum(rate(istio_requests_total{reporter="waypoint"}[5m])) by (destination_service, response_code)`,
    expect: { destination_service: 'server.shop.svc.cluster.local', response_code: '200' },
  },
];

/**
 * Grafana's template variables, as Grafana fills them in before it queries: `$__rate_interval` as for the default
 * 15 s scrape interval (4 × 15 s), `$namespace` as its "All" value. `$datasource` picks the data source, never in
 * a query.
 */
const GRAFANA_VARIABLES: Record<string, string> = { $__rate_interval: '1m', $namespace: '.*' };

function dashboardQueries(): { where: string; query: string }[] {
  const out: { where: string; query: string }[] = [];
  for (const file of readdirSync(DASHBOARDS).filter((f) => f.endsWith('.json'))) {
    const d = JSON.parse(readFileSync(join(DASHBOARDS, file), 'utf8')) as { panels: { title: string; targets?: { expr: string; refId: string }[] }[] };
    for (const p of d.panels) {
      for (const t of p.targets ?? []) {
        const query = Object.entries(GRAFANA_VARIABLES).reduce((q, [name, value]) => q.replaceAll(name, value), t.expr);
        assert.doesNotMatch(query, /\$/, `${file} "${p.title}" ${t.refId}: a variable the test does not fill in`);
        out.push({ where: `${file} "${p.title}" ${t.refId}`, query });
      }
    }
  }
  return out;
}

type Sample = { metric: Record<string, string>; value: [number, string] };

describe('dashboards against the local cluster', () => {
  const c = new MeshCluster();
  const dir = mkdtempSync(join(tmpdir(), 'ambit-dash-'));
  let hostBefore: ReturnType<typeof hostSnapshot>;
  let prometheus: ReturnType<MeshCluster['spawnCli']> | undefined;
  let traffic: ReturnType<MeshCluster['spawnExec']> | undefined;

  before(async () => {
    hostBefore = hostSnapshot();
    await c.ok(['up', '-f', c.manifest('app.yaml', APP)]);
    c.recordNetns();
    await c.ok(['waypoint', 'apply', '-n', 'shop', '--enroll-namespace', '--wait']);
  });
  after(async () => {
    traffic?.child.kill();
    if (prometheus && prometheus.child.exitCode === null) {
      const exited = new Promise((r) => prometheus!.child.once('exit', r));
      prometheus.child.kill('SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
    await c.destroy();
    assert.deepEqual(hostSnapshot(), hostBefore, "the host's interfaces and nft tables must be untouched");
  });

  it('prints a scrape configuration promtool accepts, naming the control plane, every ztunnel and the waypoint', async () => {
    const config = await eventually('the waypoint pod in the configuration', async () => {
      const out = await c.ok(['dashboard', 'prometheus']);
      return /pod: waypoint-/.test(out) ? out : undefined;
    });
    const file = join(dir, 'prometheus.yml');
    writeFileSync(file, config);
    const check = await new Promise<{ code: number; out: string }>((done) =>
      execFile('promtool', ['check', 'config', file], (err, stdout, stderr) => done({ code: err ? 1 : 0, out: stdout + stderr })),
    );
    assert.equal(check.code, 0, check.out);
    const waypoint = (await c.pods('shop')).find((p) => p.labels['gateway.networking.k8s.io/gateway-name'] === 'waypoint')!;
    for (const target of ['127.0.0.1:15014', '172.18.0.2:15020', '172.18.0.3:15020', `${waypoint.ip}:15020`]) assert.ok(config.includes(`- ${target}`), `${target} in:\n${config}`);
    assert.match(config, /pod: ztunnel-node-1\n\s+node: node-1\n\s+__metrics_path__: \/stats\/prometheus/);
    assert.match(config, /gateway_networking_k8s_io_gateway_name: waypoint/);
  });

  it("answers every dashboard query and the seed guide's PromQL with --start", async () => {
    prometheus = c.spawnCli(['dashboard', 'prometheus', '--start', '--port', '0', '--scrape-interval', '1s']);
    const url = await eventually('prometheus ready', async () => {
      if (prometheus!.child.exitCode !== null) throw new Error(`ambit dashboard prometheus --start exited: ${prometheus!.output()}`);
      return /is ready: (http:\/\/127\.0\.0\.1:\d+)/.exec(prometheus!.output())?.[1];
    }, 60_000);
    // HTTP through the waypoint and to the opted-out Service, TCP through the waypoint and direct, each name resolved
    // by the ztunnel's DNS proxy, every 200 ms until the test ends.
    traffic = c.spawnExec('shop/client', `
      const net = require('net');
      const tcp = (host) => new Promise((done) => { const s = net.connect(9090, host, () => s.end('ping\\n')); s.on('data', () => {}); s.on('close', done); s.on('error', done); });
      setInterval(() => {
        for (const host of ['server.shop', 'direct.shop']) { fetch('http://' + host + '/').then((r) => r.text()).catch(() => {}); tcp(host); }
      }, 200);`);
    // A control-plane restart ends every xDS stream: the ztunnels count it (istio_xds_connection_terminations_total).
    await c.ok(['rollout', 'restart', 'controlplane']);

    const queries = [...dashboardQueries().map((q) => ({ ...q, expect: undefined as Record<string, string> | undefined })), ...SEED_QUERIES.map((q) => ({ where: 'seed guide', ...q }))];
    const query = async (q: string): Promise<Sample[]> => {
      const r = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(q)}`, { signal: AbortSignal.timeout(5_000) });
      const body = (await r.json()) as { status: string; error?: string; data?: { result: Sample[] } };
      assert.equal(body.status, 'success', `${q}: ${body.error}`);
      return body.data!.result;
    };
    await eventually(
      'every query answered',
      async () => {
        const missing: string[] = [];
        for (const q of queries) {
          const result = await query(q.query);
          const found = q.expect ? result.some((s) => Object.entries(q.expect!).every(([k, v]) => s.metric[k] === v) && (!q.query.includes('rate(') || Number(s.value[1]) > 0)) : result.length > 0;
          if (!found) missing.push(`${q.where}: ${q.query}${q.expect ? ` (wanted ${JSON.stringify(q.expect)}, got ${JSON.stringify(result.map((s) => s.metric))})` : ''}`);
        }
        if (missing.length) throw new Error(`no data for ${missing.length} of ${queries.length} queries:\n${missing.join('\n')}`);
        return true;
      },
      60_000,
    );
    assert.ok(queries.length > 40, `${queries.length} queries`);
  });
});
