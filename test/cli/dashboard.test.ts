// `ambit dashboard`: the scrape configuration built from a cluster's nodes and pods (checked by Debian's promtool),
// the shipped Grafana dashboards' shape, and the command's answers without a cluster.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { parse } from 'yaml';
import type { Pod } from '../../src/api/types.js';
import { prometheusConfig } from '../../src/cli/prometheus-config.js';

const ROOT = resolve(fileURLToPath(import.meta.url), '../../../..');
const CLI = join(ROOT, 'dist/src/cli/main.js');
const DASHBOARDS = join(ROOT, 'dashboards');

function run(file: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) =>
    execFile(file, args, { env }, (err, stdout, stderr) => done({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr })),
  );
}

const pod = (name: string, annotations: Record<string, string>, status: Pod['status'] = { phase: 'Running', podIP: '10.244.1.7' }): Pod => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace: 'shop', labels: { 'gateway.networking.k8s.io/gateway-name': 'waypoint', app: name }, annotations },
  spec: { nodeName: 'node-1', containers: [] },
  status,
});
const SCRAPED = { 'prometheus.io/scrape': 'true', 'prometheus.io/port': '15020', 'prometheus.io/path': '/stats/prometheus' };

describe('ambit dashboard', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ambit-dashboard-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  const { yaml, targets } = prometheusConfig(
    'demo',
    {
      nodes: [
        { name: 'node-1', ip: '172.18.0.2' },
        { name: 'node-2', ip: '172.18.0.3' },
      ],
      ztunnelMetricsPort: 15020,
      controlPlaneMetrics: { host: '127.0.0.1', port: 15014 },
      pods: [
        pod('waypoint-abc', SCRAPED),
        pod('unannotated', {}),
        pod('no-port', { 'prometheus.io/scrape': 'true' }),
        pod('pending', SCRAPED, { phase: 'Pending' }),
      ],
    },
    '15s',
  );

  it("writes Istio's kubernetes-pods job with the control plane, every ztunnel and the scraped pods, labelled as Istio's relabelling would", () => {
    type Group = { targets: string[]; labels: Record<string, string> };
    const config = parse(yaml) as { global: { scrape_interval: string }; scrape_configs: { job_name: string; honor_labels: boolean; static_configs: Group[] }[] };
    assert.equal(config.global.scrape_interval, '15s');
    assert.equal(config.scrape_configs.length, 1);
    assert.equal(config.scrape_configs[0]!.job_name, 'kubernetes-pods');
    const groups = config.scrape_configs[0]!.static_configs;
    assert.deepEqual(
      groups.map((g) => [g.targets, g.labels.pod, g.labels.__metrics_path__]),
      [
        [['127.0.0.1:15014'], 'controlplane', '/metrics'],
        [['172.18.0.2:15020'], 'ztunnel-node-1', '/stats/prometheus'],
        [['172.18.0.3:15020'], 'ztunnel-node-2', '/stats/prometheus'],
        [['10.244.1.7:15020'], 'waypoint-abc', '/stats/prometheus'],
      ],
    );
    assert.equal(targets, 4);
    assert.deepEqual(groups[0]!.labels, { app: 'istiod', istio: 'pilot', namespace: 'istio-system', pod: 'controlplane', __metrics_path__: '/metrics' });
    assert.deepEqual(groups[3]!.labels, {
      gateway_networking_k8s_io_gateway_name: 'waypoint',
      app: 'waypoint-abc',
      namespace: 'shop',
      pod: 'waypoint-abc',
      node: 'node-1',
      __metrics_path__: '/stats/prometheus',
    });
  });

  it('passes promtool check config', async () => {
    const file = join(dir, 'prometheus.yml');
    writeFileSync(file, yaml);
    const r = await run('promtool', ['check', 'config', file]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
  });

  it('ships Grafana dashboards whose every query reads the datasource variable', () => {
    const files = readdirSync(DASHBOARDS).filter((f) => f.endsWith('.json')).sort();
    assert.deepEqual(files, ['controlplane.json', 'waypoint.json', 'ztunnel.json']);
    const uids = new Set<string>();
    for (const f of files) {
      type Panel = { type: string; title: string; datasource?: { uid: string }; targets?: { expr: string; datasource: { uid: string } }[] };
      const d = JSON.parse(readFileSync(join(DASHBOARDS, f), 'utf8')) as { uid: string; schemaVersion: number; templating: { list: { name: string; type: string }[] }; panels: Panel[] };
      uids.add(d.uid);
      assert.ok(d.schemaVersion >= 36, f);
      assert.ok(d.templating.list.some((v) => v.name === 'datasource' && v.type === 'datasource'), `${f}: a datasource variable`);
      const graphs = d.panels.filter((p) => p.type !== 'row');
      assert.ok(graphs.length >= 5, f);
      for (const p of graphs) {
        assert.equal(p.datasource?.uid, '${datasource}', `${f} "${p.title}"`);
        assert.ok(p.targets?.length, `${f} "${p.title}" has queries`);
        for (const t of p.targets!) assert.equal(t.datasource.uid, '${datasource}', `${f} "${p.title}"`);
      }
      // CPU and memory come from the processes themselves: the local cluster has no cAdvisor.
      assert.doesNotMatch(JSON.stringify(d), /container_/, f);
    }
    assert.equal(uids.size, files.length, 'unique uids');
  });

  it('lists and prints the dashboards, and names the known ones for an unknown name', async () => {
    const list = await run(process.execPath, [CLI, 'dashboard', 'grafana']);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /^controlplane\s+Ambit Control Plane Dashboard\nwaypoint\s+Ambit Waypoint Dashboard\nztunnel\s+Ambit Ztunnel Dashboard\n$/);
    const one = await run(process.execPath, [CLI, 'dashboard', 'grafana', 'ztunnel']);
    assert.equal(one.stdout, readFileSync(join(DASHBOARDS, 'ztunnel.json'), 'utf8'));
    const unknown = await run(process.execPath, [CLI, 'dashboard', 'grafana', 'nope']);
    assert.equal(unknown.code, 1);
    assert.equal(unknown.stderr, 'error: no dashboard "nope"; dashboards: controlplane, waypoint, ztunnel\n');
  });

  it('says how to start a cluster when none is running', async () => {
    const r = await run(process.execPath, [CLI, 'dashboard', 'prometheus', '--cluster', 'nosuch'], { ...process.env, AMBIT_STATE_DIR: dir });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^error: cluster "nosuch" is not running \(no supervisor answers on .*\); start it with: ambit up --cluster nosuch\n$/);
  });

  it('says what to install when prometheus is missing', async () => {
    // --start looks for prometheus before it calls the cluster, so an empty PATH shows the message without one.
    const r = await run(process.execPath, [CLI, 'dashboard', 'prometheus', '--start', '--cluster', 'nosuch'], { ...process.env, AMBIT_STATE_DIR: dir, PATH: dir });
    assert.equal(r.code, 1);
    assert.equal(r.stderr, 'error: prometheus is not installed; install it with: apt-get install prometheus\n');
  });
});
