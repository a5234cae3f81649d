import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  WaypointTelemetry,
  formatAccessLog,
  type DestinationServiceLabels,
  type HttpRequestRecord,
  type PeerLabels,
  type TcpConnectionLabels,
} from '../../src/waypoint/telemetry.js';

const sleep: PeerLabels = {
  workload: 'sleep',
  namespace: 'default',
  principal: 'spiffe://cluster.local/ns/default/sa/sleep',
  app: 'sleep',
  version: 'v1',
  canonicalService: 'sleep',
  canonicalRevision: 'v1',
  cluster: 'Kubernetes',
};
const reviews: PeerLabels = {
  workload: 'reviews-v2',
  namespace: 'bookinfo',
  principal: 'spiffe://cluster.local/ns/bookinfo/sa/reviews',
  app: 'reviews',
  version: 'v2',
  canonicalService: 'reviews',
  canonicalRevision: 'v2',
  cluster: 'Kubernetes',
};
const reviewsService: DestinationServiceLabels = { service: 'reviews.bookinfo.svc.cluster.local', name: 'reviews', namespace: 'bookinfo' };

const PEERS =
  'reporter="waypoint",source_workload="sleep",source_canonical_service="sleep",source_canonical_revision="v1",' +
  'source_workload_namespace="default",source_principal="spiffe://cluster.local/ns/default/sa/sleep",source_app="sleep",' +
  'source_version="v1",source_cluster="Kubernetes",destination_workload="reviews-v2",destination_workload_namespace="bookinfo",' +
  'destination_principal="spiffe://cluster.local/ns/bookinfo/sa/reviews",destination_app="reviews",destination_version="v2",' +
  'destination_service="reviews.bookinfo.svc.cluster.local",destination_canonical_service="reviews",' +
  'destination_canonical_revision="v2",destination_service_name="reviews",destination_service_namespace="bookinfo",' +
  'destination_cluster="Kubernetes"';
const OK_200 = `${PEERS},request_protocol="http",response_code="200",grpc_response_status="",response_flags="-",connection_security_policy="mutual_tls"`;
const DENIED_403 = `${PEERS},request_protocol="http",response_code="403",grpc_response_status="",response_flags="-",connection_security_policy="mutual_tls"`;
const TCP = `${PEERS},request_protocol="tcp",response_flags="-",connection_security_policy="mutual_tls"`;

/** 2026-10-09T08:07:10.309Z */
const START = Date.UTC(2026, 9, 9, 8, 7, 10, 309);

/** A 200 served by reviews-v2, with every access-log field set. */
function viaUpstream(overrides: Partial<HttpRequestRecord> = {}): HttpRequestRecord {
  return {
    source: sleep,
    destination: reviews,
    destinationService: reviewsService,
    requestProtocol: 'http',
    responseCode: 200,
    responseFlags: [],
    connectionSecurityPolicy: 'mutual_tls',
    durationMs: 7.9,
    requestBytes: 120,
    responseBytes: 300,
    startTime: START,
    method: 'GET',
    path: '/reviews/0',
    protocol: 'HTTP/1.1',
    responseCodeDetails: 'via_upstream',
    bodyBytesReceived: 0,
    bodyBytesSent: 295,
    upstreamServiceTimeMs: 6,
    userAgent: 'curl/8.5.0',
    requestId: '3c1bd7b6-5d4a-4f7e-9a8e-1a7f1f0f5c2e',
    authority: 'reviews:9080',
    upstreamHost: 'envoy://connect_originate/10.244.2.7:9080',
    upstreamCluster: 'inbound-vip|9080|http|reviews.bookinfo.svc.cluster.local',
    upstreamLocalAddress: 'envoy://internal_client_address/',
    downstreamLocalAddress: '10.96.12.34:9080',
    downstreamRemoteAddress: '10.244.1.5:40000',
    routeName: 'default',
    ...overrides,
  };
}

/** The 403 of an ALLOW policy that matched nothing: a local reply with no flags and no upstream. */
function rbacDenied(): HttpRequestRecord {
  return {
    ...viaUpstream(),
    path: '/get',
    responseCode: 403,
    durationMs: 0.4,
    responseBytes: 140,
    responseCodeDetails: 'rbac_access_denied_matched_policy[none]',
    bodyBytesSent: 19,
    upstreamServiceTimeMs: undefined,
    upstreamHost: undefined,
    upstreamCluster: undefined,
    upstreamLocalAddress: undefined,
  };
}

async function scrape(t: WaypointTelemetry): Promise<string[]> {
  return (await t.registry.metrics()).split('\n');
}

/** Sample lines of `metric` (its own name, or `<name>_bucket` etc. given in full). */
function samples(lines: string[], metric: string): string[] {
  return lines.filter((l) => l.startsWith(`${metric}{`));
}

describe('waypoint HTTP metrics', () => {
  it('exports istio_requests_total with reporter="waypoint" and the labels in Envoy order', async () => {
    const t = new WaypointTelemetry();
    t.recordRequest(viaUpstream());
    t.recordRequest(rbacDenied());
    const lines = await scrape(t);
    assert.ok(lines.includes('# TYPE istio_requests_total counter'));
    assert.deepEqual(samples(lines, 'istio_requests_total'), [`istio_requests_total{${OK_200}} 1`, `istio_requests_total{${DENIED_403}} 1`]);
    // Nothing gRPC or TCP was seen, so those metrics have no series.
    for (const name of ['istio_request_messages_total', 'istio_response_messages_total', 'istio_tcp_connections_opened_total']) {
      assert.deepEqual(samples(lines, name), [], name);
    }
  });

  it('counts a second request with the same labels in the same series, also from new but equal label objects', async () => {
    const t = new WaypointTelemetry();
    t.recordRequest(viaUpstream());
    assert.deepEqual(samples(await scrape(t), 'istio_requests_total'), [`istio_requests_total{${OK_200}} 1`]);
    t.recordRequest(viaUpstream());
    t.recordRequest(viaUpstream({ source: { ...sleep }, destination: { ...reviews }, destinationService: { ...reviewsService } }));
    const lines = await scrape(t);
    assert.deepEqual(samples(lines, 'istio_requests_total'), [`istio_requests_total{${OK_200}} 3`]);
    assert.deepEqual(samples(lines, 'istio_request_duration_milliseconds_count'), [`istio_request_duration_milliseconds_count{${OK_200}} 3`]);
  });

  it('fills the duration and byte histograms with Envoy buckets, counting a value under the bounds above it', async () => {
    const t = new WaypointTelemetry();
    // Envoy keeps whole milliseconds: 7.9 ms is 7. A bound itself (5) counts in the next bucket, as in Envoy.
    t.recordRequest(viaUpstream({ durationMs: 7.9, requestBytes: 120, responseBytes: 300 }));
    t.recordRequest(viaUpstream({ durationMs: 5, requestBytes: 100, responseBytes: 4_000_000 }));
    const lines = await scrape(t);
    assert.ok(lines.includes('# TYPE istio_request_duration_milliseconds histogram'));
    const le = [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000, '+Inf'];
    const expected = (name: string, counts: number[], sum: number) => [
      ...le.map((bound, i) => `${name}_bucket{${OK_200},le="${bound}"} ${counts[i]}`),
      `${name}_sum{${OK_200}} ${sum}`,
      `${name}_count{${OK_200}} 2`,
    ];
    const only = (name: string) => lines.filter((l) => l.startsWith(`${name}_`));
    assert.deepEqual(only('istio_request_duration_milliseconds'), expected('istio_request_duration_milliseconds', [0, 0, 0, 2, ...Array(16).fill(2)], 12));
    assert.deepEqual(only('istio_request_bytes'), expected('istio_request_bytes', [0, 0, 0, 0, 0, 0, 0, 2, ...Array(12).fill(2)], 220));
    // 4 MB is above the largest bound: only +Inf has it.
    assert.deepEqual(only('istio_response_bytes'), expected('istio_response_bytes', [0, 0, 0, 0, 0, 0, 0, 0, 1, ...Array(10).fill(1), 2], 4_000_300));
  });

  it('joins response flags in Envoy order, one series per set of flags', async () => {
    const t = new WaypointTelemetry();
    const failed = { responseCode: 503, responseCodeDetails: 'upstream_reset_before_response_started{remote_connection_failure}' };
    t.recordRequest(viaUpstream({ ...failed, responseFlags: ['URX', 'UF'] }));
    t.recordRequest(viaUpstream({ ...failed, responseFlags: ['UF', 'URX', 'UF'] }));
    t.recordRequest(viaUpstream({ ...failed, responseFlags: ['DC', 'UT', 'UH'] }));
    t.recordRequest(viaUpstream({ responseCode: 0, responseFlags: ['DC'] }));
    const flags = samples(await scrape(t), 'istio_requests_total').map((l) => /response_code="(\d+)".*response_flags="([^"]*)".* (\d+)$/.exec(l)!.slice(1).join(' '));
    assert.deepEqual(flags, ['503 UF,URX 2', '503 UH,UT,DC 1', '0 DC 1']);
  });

  it('labels gRPC requests with their status and counts their messages', async () => {
    const t = new WaypointTelemetry();
    const grpc = { requestProtocol: 'grpc' as const, protocol: 'HTTP/2' as const, grpcStatus: '0' };
    t.recordRequest(viaUpstream({ ...grpc, grpcRequestMessages: 1, grpcResponseMessages: 5 }));
    t.recordRequest(viaUpstream({ ...grpc, grpcRequestMessages: 2, grpcResponseMessages: 0 }));
    // A status outside 0–16 cannot be packed into the fast key; it still lands in one series.
    t.recordRequest(viaUpstream({ ...grpc, grpcStatus: '99' }));
    t.recordRequest(viaUpstream({ ...grpc, grpcStatus: '99' }));
    const lines = await scrape(t);
    const grpcOk = `${PEERS},request_protocol="grpc",response_code="200",grpc_response_status="0",response_flags="-",connection_security_policy="mutual_tls"`;
    const grpc99 = grpcOk.replace('grpc_response_status="0"', 'grpc_response_status="99"');
    assert.deepEqual(samples(lines, 'istio_requests_total'), [`istio_requests_total{${grpcOk}} 2`, `istio_requests_total{${grpc99}} 2`]);
    assert.deepEqual(samples(lines, 'istio_request_messages_total'), [`istio_request_messages_total{${grpcOk}} 3`, `istio_request_messages_total{${grpc99}} 0`]);
    assert.deepEqual(samples(lines, 'istio_response_messages_total'), [`istio_response_messages_total{${grpcOk}} 5`, `istio_response_messages_total{${grpc99}} 0`]);
  });

  it('exports empty label values as Istio defaults', async () => {
    const t = new WaypointTelemetry();
    const anonymous: PeerLabels = { workload: '', namespace: '', principal: '', app: '', version: '', canonicalService: '', canonicalRevision: '', cluster: '' };
    t.recordRequest(viaUpstream({
      source: anonymous,
      destination: { ...anonymous, canonicalService: 'reviews' },
      destinationService: { service: '', name: '', namespace: '' },
      connectionSecurityPolicy: 'none',
    }));
    const [line] = samples(await scrape(t), 'istio_requests_total');
    assert.equal(
      line,
      'istio_requests_total{reporter="waypoint",source_workload="unknown",source_canonical_service="unknown",' +
        'source_canonical_revision="latest",source_workload_namespace="unknown",source_principal="unknown",source_app="unknown",' +
        'source_version="unknown",source_cluster="unknown",destination_workload="unknown",destination_workload_namespace="unknown",' +
        'destination_principal="unknown",destination_app="unknown",destination_version="unknown",destination_service="reviews",' +
        'destination_canonical_service="reviews",destination_canonical_revision="unknown",destination_service_name="reviews",' +
        'destination_service_namespace="unknown",destination_cluster="unknown",request_protocol="http",response_code="200",' +
        'grpc_response_status="",response_flags="-",connection_security_policy="none"} 1',
    );
  });

  it('keeps registries separate', async () => {
    const a = new WaypointTelemetry();
    const b = new WaypointTelemetry();
    a.recordRequest(viaUpstream());
    assert.deepEqual(samples(await scrape(a), 'istio_requests_total'), [`istio_requests_total{${OK_200}} 1`]);
    assert.deepEqual(samples(await scrape(b), 'istio_requests_total'), []);
    assert.deepEqual(samples(await scrape(b), 'istio_request_duration_milliseconds_count'), []);
  });
});

describe('waypoint TCP metrics', () => {
  const conn: TcpConnectionLabels = { source: sleep, destination: reviews, destinationService: reviewsService, connectionSecurityPolicy: 'mutual_tls' };

  it('counts bytes while the connection is open and keeps its first-reported labels at close', async () => {
    const t = new WaypointTelemetry();
    const c = t.openTcp(conn);
    c.received(100);
    c.sent(500);
    let lines = await scrape(t);
    assert.deepEqual(samples(lines, 'istio_tcp_connections_opened_total'), [`istio_tcp_connections_opened_total{${TCP}} 1`]);
    assert.deepEqual(samples(lines, 'istio_tcp_received_bytes_total'), [`istio_tcp_received_bytes_total{${TCP}} 100`]);
    assert.deepEqual(samples(lines, 'istio_tcp_sent_bytes_total'), [`istio_tcp_sent_bytes_total{${TCP}} 500`]);
    assert.deepEqual(samples(lines, 'istio_tcp_connections_closed_total'), []);

    c.received(23);
    lines = await scrape(t);
    assert.deepEqual(samples(lines, 'istio_tcp_received_bytes_total'), [`istio_tcp_received_bytes_total{${TCP}} 123`]);
    assert.deepEqual(samples(lines, 'istio_tcp_connections_opened_total'), [`istio_tcp_connections_opened_total{${TCP}} 1`]);

    c.sent(1);
    c.close(['UC']); // already reported under "-": Envoy keeps a connection's tags from its first report
    c.close(); // ignored
    lines = await scrape(t);
    assert.deepEqual(samples(lines, 'istio_tcp_connections_closed_total'), [`istio_tcp_connections_closed_total{${TCP}} 1`]);
    assert.deepEqual(samples(lines, 'istio_tcp_sent_bytes_total'), [`istio_tcp_sent_bytes_total{${TCP}} 501`]);
    assert.ok(!lines.some((l) => l.includes('response_flags="UC"')));
    assert.ok(!lines.some((l) => l.includes('response_code=')), 'TCP metrics have no response_code label');
  });

  it('labels a connection that fails before any report with its close flags, opened and closed alike', async () => {
    const t = new WaypointTelemetry();
    t.openTcp(conn).close(['UF', 'URX']);
    const c = t.openTcp({ ...conn }); // equal labels in a new object: same series
    c.close(['URX', 'UF']);
    const lines = await scrape(t);
    const failed = TCP.replace('response_flags="-"', 'response_flags="UF,URX"');
    assert.deepEqual(samples(lines, 'istio_tcp_connections_opened_total'), [`istio_tcp_connections_opened_total{${failed}} 2`]);
    assert.deepEqual(samples(lines, 'istio_tcp_connections_closed_total'), [`istio_tcp_connections_closed_total{${failed}} 2`]);
    assert.deepEqual(samples(lines, 'istio_tcp_sent_bytes_total'), [`istio_tcp_sent_bytes_total{${failed}} 0`]);
    assert.deepEqual(samples(lines, 'istio_tcp_received_bytes_total'), [`istio_tcp_received_bytes_total{${failed}} 0`]);
  });
});

describe('waypoint access log', () => {
  it('formats a request served by the upstream in Istio TEXT format', () => {
    assert.equal(
      formatAccessLog(viaUpstream()),
      '[2026-10-09T08:07:10.309Z] "GET /reviews/0 HTTP/1.1" 200 - via_upstream - "-" 0 295 7 6 "-" "curl/8.5.0" ' +
        '"3c1bd7b6-5d4a-4f7e-9a8e-1a7f1f0f5c2e" "reviews:9080" "envoy://connect_originate/10.244.2.7:9080" ' +
        'inbound-vip|9080|http|reviews.bookinfo.svc.cluster.local envoy://internal_client_address/ 10.96.12.34:9080 ' +
        '10.244.1.5:40000 - default\n',
    );
  });

  it('formats an RBAC denial with no flag, no upstream and the 19-byte body', () => {
    assert.equal(
      formatAccessLog(rbacDenied()),
      '[2026-10-09T08:07:10.309Z] "GET /get HTTP/1.1" 403 - rbac_access_denied_matched_policy[none] - "-" 0 19 0 - "-" ' +
        '"curl/8.5.0" "3c1bd7b6-5d4a-4f7e-9a8e-1a7f1f0f5c2e" "reviews:9080" "-" - - 10.96.12.34:9080 10.244.1.5:40000 - default\n',
    );
  });

  it('prints flags, failure reasons and dashes for empty fields, keeping details one token', () => {
    const line = formatAccessLog(viaUpstream({
      method: '',
      responseCode: 503,
      responseFlags: ['URX', 'UF'],
      responseCodeDetails: 'upstream_reset_before_response_started{remote_connection_failure,delayed connect error: Connection refused}',
      connectionTerminationDetails: '',
      upstreamTransportFailureReason: 'delayed connect error: Connection refused',
      userAgent: '',
      requestedServerName: 'outbound_.9080_._.reviews.bookinfo.svc.cluster.local',
      routeName: undefined,
    }));
    assert.equal(
      line,
      '[2026-10-09T08:07:10.309Z] "- /reviews/0 HTTP/1.1" 503 UF,URX ' +
        'upstream_reset_before_response_started{remote_connection_failure,delayed_connect_error:_Connection_refused} - ' +
        '"delayed connect error: Connection refused" 0 295 7 6 "-" "-" "3c1bd7b6-5d4a-4f7e-9a8e-1a7f1f0f5c2e" "reviews:9080" ' +
        '"envoy://connect_originate/10.244.2.7:9080" inbound-vip|9080|http|reviews.bookinfo.svc.cluster.local ' +
        'envoy://internal_client_address/ 10.96.12.34:9080 10.244.1.5:40000 outbound_.9080_._.reviews.bookinfo.svc.cluster.local -\n',
    );
  });

  it('writes one line per request only when the access log is on', () => {
    const lines: string[] = [];
    const off = new WaypointTelemetry({ log: (l) => lines.push(l) });
    off.recordRequest(viaUpstream());
    assert.equal(lines.length, 0);
    const on = new WaypointTelemetry({ log: (l) => lines.push(l), accessLog: true });
    on.recordRequest(viaUpstream());
    on.recordRequest(rbacDenied());
    assert.deepEqual(lines, [formatAccessLog(viaUpstream()), formatAccessLog(rbacDenied())]);
  });

  it('still counts the request when the log output throws', async () => {
    const t = new WaypointTelemetry({ log: () => { throw new Error('EPIPE'); }, accessLog: true });
    t.recordRequest(viaUpstream());
    assert.deepEqual(samples(await scrape(t), 'istio_requests_total'), [`istio_requests_total{${OK_200}} 1`]);
  });
});
