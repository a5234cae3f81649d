// ztunnel's series besides the TCP ones, scraped from a real metrics port: xDS messages and stream terminations
// (against a real control plane over TLS), DNS requests of a real DNS proxy (answered locally, forwarded, and failing
// upstream), the workload manager's proxy counts and the process metrics. Names, labels and help texts are
// ztunnel's (src/xds/metrics.rs, src/dns/metrics.rs, src/inpod/metrics.rs, src/metrics/process.rs).
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import dnsPacket from 'dns-packet';
import { Registry } from 'prom-client';
import { TokenFileAuthenticator } from '../../src/controlplane/auth.js';
import { MeshCa } from '../../src/controlplane/ca.js';
import { ControlPlaneServer } from '../../src/controlplane/server.js';
import { xdsTypesOf } from '../../src/controlplane/xds.js';
import { PodNetns } from '../../src/inpod/netns.js';
import { startAdmin, type AdminServer } from '../../src/telemetry/admin.js';
import { LogSink } from '../../src/telemetry/log.js';
import { registerProcessMetrics } from '../../src/telemetry/process-metrics.js';
import { XdsClient, proxyNodeId } from '../../src/xds/client.js';
import { XdsMetrics } from '../../src/xds/metrics.js';
import { TYPE_ADDRESS, TYPE_AUTHORIZATION } from '../../src/xds/types.js';
import { DnsProxy } from '../../src/ztunnel/dns.js';
import { DnsMetrics, WorkloadManagerMetrics } from '../../src/ztunnel/metrics.js';
import { ProxyState } from '../../src/ztunnel/state.js';
import { CapturedLog, FakeSource } from '../controlplane/helpers.js';
import { RecordingLog, eventually, service, workload } from '../ztunnel/helpers.js';

/** The value of one sample in Prometheus text, or undefined when the series is absent. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== ' ' && rest[0] !== '{') continue;
    if (!Object.entries(labels).every(([k, v]) => rest.includes(`${k}="${v}"`))) continue;
    return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

describe('ztunnel metrics besides the TCP series', () => {
  const registry = new Registry();
  const sink = new LogSink({ write: () => undefined });
  let admin: AdminServer;
  let pods = { active: 0, pending: 0 };
  const workloadManager = new WorkloadManagerMetrics(registry, () => pods);
  registerProcessMetrics(registry);

  const scrape = async () => (await fetch(`http://127.0.0.1:${admin.metrics.port}/metrics`)).text();

  before(async () => {
    admin = await startAdmin({
      title: 'ztunnel',
      adminPort: 0,
      metricsPort: 0,
      readinessPort: 0,
      publicHost: '127.0.0.1',
      configDump: () => ({}),
      registry,
      ready: () => ({ ready: true, pending: [] }),
      logSink: sink,
      log: sink.logger('admin'),
    });
  });
  after(() => admin.close());

  it('counts xDS messages and their bytes per type URL, and stream terminations by reason', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ambit-xds-metrics-'));
    let server: ControlPlaneServer | undefined;
    let client: XdsClient | undefined;
    try {
      writeFileSync(join(dir, 'node-tokens.json'), JSON.stringify({ 'token-node-1': 'node-1' }));
      writeFileSync(join(dir, 'token'), 'token-node-1\n');
      const ca = await MeshCa.load({ trustDomain: 'cluster.local', stateDir: dir });
      const source = new FakeSource([TYPE_ADDRESS, TYPE_AUTHORIZATION]);
      source.set(TYPE_ADDRESS, { 'Kubernetes//Pod/default/a': workload('a', [10, 244, 1, 2]) });
      server = await ControlPlaneServer.start({
        ca,
        authenticator: new TokenFileAuthenticator(join(dir, 'node-tokens.json')),
        xdsTypes: xdsTypesOf(source),
        placement: { identitiesOnNode: () => new Set() },
        listen: '127.0.0.1:0',
        debugListen: '127.0.0.1:0',
        log: new CapturedLog(),
      });
      const log = new RecordingLog();
      const state = new ProxyState(log.logger('state'));
      client = new XdsClient({
        address: `127.0.0.1:${server.port}`,
        serverName: 'istiod.istio-system.svc',
        rootPem: ca.rootPem,
        tokenFile: join(dir, 'token'),
        nodeId: proxyNodeId('ztunnel', '172.18.0.2', 'ztunnel-node-1', 'istio-system'),
        metadata: { NODE_NAME: 'node-1' },
        subscriptions: state.xdsSubscriptions(),
        onSynced: (t) => state.markSynced(t),
        log: log.logger('xds'),
        metrics: new XdsMetrics(registry),
        initialBackoffMs: 50,
        maxBackoffMs: 200,
      });
      client.start();
      await eventually('initial sync', () => state.synced);
      const url = { url: TYPE_ADDRESS };
      let text = await scrape();
      assert.match(text, /# HELP istio_xds_message_total Total number of messages received \(unstable\)/);
      assert.match(text, /# HELP istio_xds_message_bytes_total Total number of bytes received \(unstable\)/);
      assert.ok(sample(text, 'istio_xds_message_total', url)! >= 1, text);
      const bytes = sample(text, 'istio_xds_message_bytes_total', url)!;
      assert.ok(bytes > 0, text);
      const messages = sample(text, 'istio_xds_message_total', url)!;

      // A push moves both counters of its type.
      source.set(TYPE_ADDRESS, { 'Kubernetes//Pod/default/b': workload('b', [10, 244, 1, 3]) });
      await eventually('push applied', () => state.workloadByName('default', 'b') !== undefined);
      text = await scrape();
      assert.equal(sample(text, 'istio_xds_message_total', url), messages + 1);
      assert.ok(sample(text, 'istio_xds_message_bytes_total', url)! > bytes);
      assert.equal(sample(text, 'istio_xds_connection_terminations_total'), undefined, 'no stream has ended yet');

      // The control plane goes away: the stream's end is counted under one of ztunnel's reasons.
      await server.close();
      server = undefined;
      await eventually('termination counted', async () => {
        const t = await scrape();
        return /^istio_xds_connection_terminations_total\{reason="(ConnectionError|Error|Reconnect|Complete)"\} [1-9]/m.test(t);
      });
    } finally {
      client?.close();
      await server?.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('counts DNS requests, those forwarded upstream, their failures and durations, with the source labels', async () => {
    const upstream = dgram.createSocket('udp4');
    upstream.on('message', (msg, rinfo) => {
      const q = dnsPacket.decode(msg);
      const reply = dnsPacket.encode({ type: 'response', id: q.id, flags: dnsPacket.RECURSION_AVAILABLE, questions: q.questions, answers: [] });
      upstream.send(reply, rinfo.port, rinfo.address);
    });
    await new Promise<void>((r) => upstream.bind(0, '127.0.0.1', r));
    const state = new ProxyState(new RecordingLog().logger('state'));
    state.applyAddresses(
      new Map([
        ['Kubernetes//Pod/default/client', workload('client', [10, 244, 1, 9])],
        ['default/echo.default.svc.cluster.local', service('echo', 'default', [10, 96, 0, 20])],
      ]),
      [],
    );
    const source = state.workloadByName('default', 'client')!;
    const netns = PodNetns.open('/proc/self/ns/net');
    let proxy: DnsProxy | undefined;
    let dead: DnsProxy | undefined;
    let unknown: DnsProxy | undefined;
    const metrics = new DnsMetrics(registry);
    try {
      const common = { netns, pod: { namespace: 'default' }, state, log: { warn: () => undefined, debug: () => undefined }, port: 0, mark: 0, metrics };
      proxy = await DnsProxy.start({ ...common, upstream: { host: '127.0.0.1', port: (upstream.address() as { port: number }).port }, localWorkload: () => source });
      // An upstream that never answers.
      dead = await DnsProxy.start({ ...common, upstream: { host: '127.0.0.1', port: 9 }, upstreamTimeoutMs: 200, localWorkload: () => source });
      // A client xDS does not name (yet): SERVFAIL, counted without source labels, nothing forwarded.
      unknown = await DnsProxy.start({ ...common, upstream: { host: '127.0.0.1', port: 9 }, localWorkload: () => undefined });
      const query = (name: string, type: 'A' | 'AAAA' | 'TXT') => dnsPacket.encode({ type: 'query', id: 1, questions: [{ type, name, class: 'IN' }] });

      await proxy.handle(query('echo.default.svc.cluster.local', 'A'), 'udp'); // answered locally
      await proxy.handle(query('example.org', 'A'), 'udp'); // forwarded
      await proxy.handle(query('example.org', 'TXT'), 'udp'); // forwarded
      await dead.handle(query('example.org', 'AAAA'), 'udp'); // forwarded, fails
      const refused = dnsPacket.decode((await unknown.handle(query('echo.default.svc.cluster.local', 'A'), 'tcp'))!);
      assert.equal((refused.flags ?? 0) & 0xf, 2, 'SERVFAIL');
      assert.deepEqual(refused.answers, []);

      const text = await scrape();
      const a = { request_query_type: 'a', request_protocol: 'udp', source_canonical_service: 'client', source_canonical_revision: 'latest' };
      assert.match(text, /# HELP istio_dns_requests_total Total number of DNS requests \(unstable\)/);
      assert.equal(sample(text, 'istio_dns_requests_total', a), 2, text);
      assert.equal(sample(text, 'istio_dns_upstream_requests_total', a), 1);
      assert.equal(sample(text, 'istio_dns_requests_total', { ...a, request_query_type: 'txt' }), 1);
      assert.equal(sample(text, 'istio_dns_upstream_request_duration_seconds_count', a), 1);
      assert.equal(sample(text, 'istio_dns_upstream_failures_total', { ...a, request_query_type: 'aaaa' }), 1);
      const nobody = { request_query_type: 'a', request_protocol: 'tcp', source_canonical_service: 'unknown', source_canonical_revision: 'unknown' };
      assert.equal(sample(text, 'istio_dns_requests_total', nobody), 1);
      assert.equal(sample(text, 'istio_dns_upstream_requests_total', nobody), undefined, 'an unknown client is not forwarded');
    } finally {
      await proxy?.close();
      await dead?.close();
      await unknown?.close();
      netns.close();
      upstream.close();
    }
  });

  it('exports the workload manager counts and the process metrics', async () => {
    pods = { active: 2, pending: 1 };
    workloadManager.proxyStarted();
    workloadManager.proxyStarted();
    workloadManager.proxyStopped();
    const text = await scrape();
    assert.equal(sample(text, 'workload_manager_active_proxy_count'), 2);
    assert.equal(sample(text, 'workload_manager_pending_proxy_count'), 1);
    assert.equal(sample(text, 'workload_manager_proxies_started_total'), 2);
    assert.equal(sample(text, 'workload_manager_proxies_stopped_total'), 1);
    assert.match(text, /# HELP workload_manager_active_proxy_count The total number current workloads with active proxies \(unstable\)/);
    assert.ok(sample(text, 'process_open_fds')! > 3);
    assert.ok(sample(text, 'process_max_fds')! >= sample(text, 'process_open_fds')!);
    assert.ok(sample(text, 'process_resident_memory_bytes')! > 1e6);
    const cpu = sample(text, 'process_cpu_seconds_total')!;
    assert.ok(cpu > 0);
    // CPU time only grows.
    let spin = 0;
    for (let i = 0; i < 5e6; i++) spin += i;
    assert.ok(spin > 0);
    assert.ok(sample(await scrape(), 'process_cpu_seconds_total')! >= cpu);
  });
});
