import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ZtunnelTelemetry, type ConnectionInfo, type PeerWorkload } from '../../src/telemetry/connection.js';
import { LogSink } from '../../src/telemetry/log.js';

const TS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z/;

const sleep: PeerWorkload = {
  name: 'sleep-7d9f-abcde',
  namespace: 'default',
  workloadName: 'sleep',
  canonicalName: 'sleep',
  canonicalRevision: 'v1',
  clusterId: 'Kubernetes',
  identity: 'spiffe://cluster.local/ns/default/sa/sleep',
};
const echo: PeerWorkload = {
  name: 'echo-5c4f-xyz12',
  namespace: 'apps',
  workloadName: 'echo',
  canonicalName: 'echo',
  canonicalRevision: 'latest',
  clusterId: 'Kubernetes',
  identity: 'spiffe://cluster.local/ns/apps/sa/echo',
};

const outbound: ConnectionInfo = {
  direction: 'outbound',
  srcAddr: '10.244.1.5:40000',
  dstAddr: '10.244.2.7:15008',
  hboneAddr: '10.244.2.7:8080',
  srcWorkload: sleep,
  dstWorkload: echo,
  dstService: { name: 'echo', namespace: 'apps', hostname: 'echo.apps.svc.cluster.local' },
  srcIdentity: sleep.identity,
  dstIdentity: echo.identity,
  mtls: true,
};

function setup(format: 'text' | 'json' = 'text', level = 'info') {
  const lines: string[] = [];
  const sink = new LogSink({ format, level, write: (l) => lines.push(l) });
  const telemetry = new ZtunnelTelemetry({ log: sink, buildTag: '1.2.3' });
  return { lines, sink, telemetry };
}

/** The sample line of `metric` whose labels contain every `key="value"` in `match`. */
async function sample(telemetry: ZtunnelTelemetry, metric: string, match: string[]): Promise<string | undefined> {
  const text = await telemetry.registry.metrics();
  return text.split('\n').find((l) => l.startsWith(`${metric}{`) && match.every((m) => l.includes(m)));
}

const OUTBOUND_LABELS =
  'reporter="source",source_workload="sleep",source_canonical_service="sleep",source_canonical_revision="v1",' +
  'source_workload_namespace="default",source_principal="spiffe://cluster.local/ns/default/sa/sleep",source_app="sleep",' +
  'source_version="v1",source_cluster="Kubernetes",destination_service="echo.apps.svc.cluster.local",' +
  'destination_service_namespace="apps",destination_service_name="echo",destination_workload="echo",' +
  'destination_canonical_service="echo",destination_canonical_revision="latest",destination_workload_namespace="apps",' +
  'destination_principal="spiffe://cluster.local/ns/apps/sa/echo",destination_app="echo",destination_version="latest",' +
  'destination_cluster="Kubernetes",request_protocol="tcp",response_flags="-",connection_security_policy="mutual_tls"';

describe('connection metrics', () => {
  it('exports the full label set in ztunnel order and flips bytes to the response convention', async () => {
    const { telemetry } = setup();
    const t = telemetry.open(outbound);
    t.sent(67);
    t.sent(33);
    t.received(490);
    // Counted while the connection is still open: a scrape pulls the pending bytes in.
    assert.equal(await sample(telemetry, 'istio_tcp_connections_opened_total', []), `istio_tcp_connections_opened_total{${OUTBOUND_LABELS}} 1`);
    assert.equal(await sample(telemetry, 'istio_tcp_received_bytes_total', []), `istio_tcp_received_bytes_total{${OUTBOUND_LABELS}} 100`);
    assert.equal(await sample(telemetry, 'istio_tcp_sent_bytes_total', []), `istio_tcp_sent_bytes_total{${OUTBOUND_LABELS}} 490`);
    assert.equal(await sample(telemetry, 'istio_tcp_sockets_open', ['reporter="source"']), 'istio_tcp_sockets_open{reporter="source"} 1');
    assert.equal(await sample(telemetry, 'istio_tcp_connections_closed_total', []), undefined);

    t.sent(10);
    t.close();
    t.close(); // ignored
    assert.equal(await sample(telemetry, 'istio_tcp_connections_closed_total', []), `istio_tcp_connections_closed_total{${OUTBOUND_LABELS}} 1`);
    assert.equal(await sample(telemetry, 'istio_tcp_received_bytes_total', []), `istio_tcp_received_bytes_total{${OUTBOUND_LABELS}} 110`);
    assert.equal(await sample(telemetry, 'istio_tcp_sockets_open', ['reporter="source"']), 'istio_tcp_sockets_open{reporter="source"} 0');
    assert.equal(await sample(telemetry, 'istio_tcp_connections_failed_total', []), undefined);
    assert.equal(await sample(telemetry, 'istio_build', []), 'istio_build{component="ztunnel",tag="1.2.3"} 1');
  });

  it('marks missing values unknown, keeps the plaintext source anonymous, and counts denials as failed', async () => {
    const { telemetry } = setup();
    const t = telemetry.open({
      direction: 'inbound',
      srcAddr: '10.244.9.9:5555',
      dstAddr: '10.244.2.7:8080',
      dstWorkload: echo,
      srcIdentity: 'spiffe://cluster.local/ns/x/sa/forged', // ignored without mTLS
      mtls: false,
    });
    t.close({ message: 'connection closed due to policy rejection: allow policies exist, but none allowed', flag: 'DENY' });
    const closed = await sample(telemetry, 'istio_tcp_connections_closed_total', []);
    assert.ok(closed, 'closed counter present');
    assert.match(closed, /^istio_tcp_connections_closed_total\{reporter="destination",source_workload="unknown",/);
    assert.match(closed, /source_principal="unknown",/);
    assert.match(closed, /destination_service="unknown",destination_service_namespace="unknown",destination_service_name="unknown",/);
    assert.match(closed, /destination_principal="spiffe:\/\/cluster.local\/ns\/apps\/sa\/echo",/);
    assert.match(closed, /response_flags="DENY",connection_security_policy="unknown"\} 1$/);
    const failed = await sample(telemetry, 'istio_tcp_connections_failed_total', ['response_flags="DENY"']);
    assert.ok(failed?.endsWith(' 1'), `failed counter: ${failed}`);
    // Opened carries the open-time flag '-'; the flagged label set only has the counters that count.
    assert.match((await sample(telemetry, 'istio_tcp_connections_opened_total', []))!, /response_flags="-"/);
    for (const name of ['istio_tcp_connections_opened_total', 'istio_tcp_sent_bytes_total', 'istio_tcp_received_bytes_total']) {
      assert.equal(await sample(telemetry, name, ['response_flags="DENY"']), undefined, `${name} has no DENY series`);
    }
  });

  it('keeps registries separate per proxy', async () => {
    const a = setup().telemetry;
    const b = setup().telemetry;
    a.open(outbound).close();
    assert.ok(await sample(a, 'istio_tcp_connections_closed_total', []));
    assert.equal(await sample(b, 'istio_tcp_connections_closed_total', []), undefined);
  });
});

describe('access log', () => {
  it('writes connection complete in ztunnel text format with unflipped bytes (outbound)', () => {
    const { lines, telemetry } = setup();
    const t = telemetry.open(outbound);
    t.sent(67);
    t.received(490);
    t.close();
    assert.equal(lines.length, 1);
    const line = lines[0]!;
    assert.match(line, TS);
    assert.equal(
      line.replace(TS, '<ts>').replace(/duration="\d+ms"/, 'duration="<n>ms"'),
      '<ts>\tinfo\taccess\tconnection complete\tsrc.addr=10.244.1.5:40000 src.workload="sleep-7d9f-abcde" src.namespace="default" ' +
        'src.identity="spiffe://cluster.local/ns/default/sa/sleep" dst.addr=10.244.2.7:15008 ' +
        'dst.hbone_addr=10.244.2.7:8080 dst.service="echo.apps.svc.cluster.local" dst.workload="echo-5c4f-xyz12" ' +
        'dst.namespace="apps" dst.identity="spiffe://cluster.local/ns/apps/sa/echo" ' +
        'direction="outbound" bytes_sent=67 bytes_recv=490 duration="<n>ms"\n',
    );
  });

  it('logs inbound failures at ERROR with error= and bytes from the destination side', () => {
    const { lines, telemetry } = setup();
    const t = telemetry.open({ ...outbound, direction: 'inbound', srcAddr: '10.244.1.5:41000', dstAddr: '10.244.2.7:15008' });
    t.sent(67); // request bytes reaching the destination
    t.received(490);
    t.close({ message: 'connection failed: connect ECONNREFUSED 10.244.2.7:8080', flag: 'CONNECT' });
    const line = lines[0]!.replace(TS, '<ts>');
    assert.ok(line.startsWith('<ts>\terror\taccess\tconnection complete\tsrc.addr=10.244.1.5:41000 '), line);
    assert.ok(line.includes(' direction="inbound" bytes_sent=490 bytes_recv=67 duration="'), line);
    assert.ok(line.endsWith('ms" error="connection failed: connect ECONNREFUSED 10.244.2.7:8080"\n'), line);
  });

  it('omits identities without mTLS and quotes strings safely', () => {
    const { lines, telemetry } = setup();
    telemetry.open({ direction: 'outbound', srcAddr: '10.0.0.1:1', dstAddr: '10.0.0.2:80', srcIdentity: 'spiffe://x', mtls: false })
      .close({ message: 'upstream said "no"\nbye', flag: 'CONNECT' });
    const line = lines[0]!;
    assert.ok(!line.includes('identity'), line);
    assert.ok(!line.includes('dst.hbone_addr'), line);
    assert.ok(line.includes(' error="upstream said \\"no\\"\\nbye"\n'), line);
    assert.equal(line.split('\n').length, 2, 'one physical line');
  });

  it('writes connection failed at WARN with only addresses, direction and error', async () => {
    const { lines, telemetry } = setup();
    telemetry.failed({ direction: 'outbound', srcAddr: '10.244.1.5:40001', dstAddr: '10.96.0.20:80' }, { message: 'no healthy upstream: 10.96.0.20:80', flag: 'CONNECT' });
    assert.equal(
      lines[0]!.replace(TS, '<ts>'),
      '<ts>\twarn\taccess\tconnection failed\tsrc.addr=10.244.1.5:40001 dst.addr=10.96.0.20:80 direction="outbound" error="no healthy upstream: 10.96.0.20:80"\n',
    );
    const failed = await sample(telemetry, 'istio_tcp_connections_failed_total', ['reporter="source"', 'response_flags="CONNECT"']);
    assert.ok(failed?.endsWith(' 1'), `${failed}`);
  });

  it('writes one JSON object per line with the same fields', () => {
    const { lines, telemetry } = setup('json');
    const t = telemetry.open(outbound);
    t.sent(5);
    t.received(7);
    t.close({ message: 'connection closed due to policy change', flag: 'DENY' });
    assert.equal(lines.length, 1);
    const obj = JSON.parse(lines[0]!) as Record<string, unknown>;
    assert.match(obj.time as string, TS);
    assert.deepEqual(Object.keys(obj), [
      'level', 'time', 'scope', 'message', 'src.addr', 'src.workload', 'src.namespace', 'src.identity', 'dst.addr',
      'dst.hbone_addr', 'dst.service', 'dst.workload', 'dst.namespace', 'dst.identity', 'direction', 'bytes_sent',
      'bytes_recv', 'duration', 'error',
    ]);
    assert.equal(obj.level, 'error');
    assert.equal(obj.message, 'connection complete');
    assert.equal(obj['src.addr'], '10.244.1.5:40000');
    assert.equal(obj.bytes_sent, 5);
    assert.equal(obj.bytes_recv, 7);
    assert.equal(obj.error, 'connection closed due to policy change');
    assert.equal(obj.scope, 'access');
  });

  it('honours the level filter per target (access=debug shows connection opened; access=warn hides completes)', () => {
    const { lines, sink, telemetry } = setup('text', 'info,access=debug');
    telemetry.open(outbound).close();
    assert.deepEqual(lines.map((l) => /\taccess\t(connection \w+)/.exec(l)?.[1]), ['connection opened', 'connection complete']);
    assert.match(lines[0]!, /\dZ\tdebug\taccess\tconnection opened\tsrc\.addr=10\.244\.1\.5:40000 .* direction="outbound"\n$/);
    lines.length = 0;
    assert.equal(sink.setLevel('info,access=warn'), 'access=warn,info');
    telemetry.open(outbound).close();
    assert.deepEqual(lines, []);
    assert.throws(() => sink.setLevel('info,access=loud'), /invalid log level 'loud' in 'access=loud'/);
    assert.equal(sink.level, 'access=warn,info', 'a bad filter keeps the old one');
  });
});
