// DestinationRules at the waypoint, fed over xDS as the control plane sends them (ambit.waypoint.Destination): the
// load balancer (round robin, consistent hash on a header or a generated cookie), subsets named by a route, circuit
// breakers answering Envoy's overflow reply, outlier detection ejecting a failing endpoint, connections retired after
// maxRequestsPerConnection, and TLS originated to the endpoint (SIMPLE and MUTUAL) inside the tunnel.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { writeFileSync } from 'node:fs';
import { after, before, beforeEach, describe, it } from 'node:test';
import { TYPE_WAYPOINT, type WaypointCluster, type WaypointResource, type WaypointRoute } from '../../src/xds/types.js';
import { APPS, Harness, MeshClient, TD, boundService, drain, eventually, fqdn, readBytes, waypointResourceName, type HttpResult } from './harness.js';

const ECHO_A = 'Kubernetes//Pod/apps/echo-a';
const ECHO_B = 'Kubernetes//Pod/apps/echo-b';

/** A route on a path prefix of `echo`, to `echo` subset `subset`. */
function toSubset(prefix: string, subset: string): WaypointRoute {
  const name = prefix.slice(1);
  return {
    route: `${APPS}/${name}`,
    rule: 0,
    port: 0,
    match: { path: { type: 'PREFIX', value: prefix }, headers: [], queryParams: [], method: '' },
    backends: [{ hostname: fqdn('echo'), namespace: APPS, port: 80, weight: 1, invalid: false, subset }],
    directStatus: 0,
    name: `${APPS}.${name}.0`,
  };
}

const ROUTES: WaypointRoute[] = [
  toSubset('/only-a', 'a'),
  toSubset('/only-b', 'b'),
  toSubset('/no-such-subset', 'c'),
  { ...toSubset('/', ''), backends: [{ hostname: fqdn('echo'), namespace: APPS, port: 80, weight: 1, invalid: false }] },
];

describe('DestinationRules at the waypoint', () => {
  let h: Harness;
  let client: MeshClient;
  let echo: [string, WaypointResource];
  let secure: [string, WaypointResource];

  /** Sends the echo Service (with ROUTES) and the Destinations given; waits until the waypoint has them. */
  async function configure(destinations: Record<string, WaypointCluster[]>): Promise<void> {
    const resources: Record<string, WaypointResource> = { [echo[0]]: { service: { ...echo[1].service!, routes: ROUTES } }, [secure[0]]: secure[1] };
    for (const [service, clusters] of Object.entries(destinations)) {
      resources[waypointResourceName('destination', APPS, fqdn(service))] = { destination: { hostname: fqdn(service), namespace: APPS, rule: `${APPS}/${service}`, clusters } };
    }
    const stale = [...h.source.snapshot(TYPE_WAYPOINT).keys()].filter((n) => n.includes('/destination/') && !(n in resources));
    h.source.set(TYPE_WAYPOINT, resources, stale);
    await h.waitForConfig('the destinations', (dump) => {
      const got = Object.fromEntries((dump.destinations as { hostname: string; clusters: WaypointCluster[] }[]).map((d) => [d.hostname, d.clusters]));
      const want = Object.fromEntries(Object.entries(destinations).map(([s, c]) => [fqdn(s), c]));
      return isDeepStrictEqual(got, want) && (dump.boundServices as { routes: unknown[] }[]).some((s) => s.routes.length === ROUTES.length);
    });
  }

  const cluster = (fields: Partial<WaypointCluster> = {}): WaypointCluster => ({ port: 80, subset: '', workloads: [], ...fields });
  const get = (path: string, headers: Record<string, string> = {}): Promise<HttpResult> => client.http1(h.authority('echo', 80), { path, headers: { host: fqdn('echo'), ...headers } });
  const backendOf = (r: HttpResult) => String(r.headers['x-backend']);

  before(async () => {
    h = await Harness.start();
    client = await MeshClient.dial(h);
    echo = Object.entries(boundService('echo'))[0]! as [string, WaypointResource];
    secure = Object.entries(boundService('secure'))[0]! as [string, WaypointResource];
  });

  after(async () => {
    client?.close();
    await h?.close();
  });

  beforeEach(async () => {
    await configure({});
  });

  it('ROUND_ROBIN takes the ready endpoints in turn', async () => {
    await configure({ echo: [cluster({ loadBalancer: { simple: 'ROUND_ROBIN' } })] });
    const seen: string[] = [];
    for (let i = 0; i < 8; i++) seen.push(backendOf(await get('/rr')));
    for (let i = 1; i < seen.length; i++) assert.notEqual(seen[i], seen[i - 1], `alternates: ${seen.join(' ')}`);
    assert.deepEqual(new Set(seen), new Set(['echo-a', 'echo-b']));
  });

  it('consistentHash on a header keeps a key on one endpoint and spreads keys over both', async () => {
    await configure({ echo: [cluster({ loadBalancer: { simple: 'LEAST_REQUEST', consistentHash: { httpHeaderName: 'x-user', maglev: false, tableSize: 1024 } } })] });
    const byUser = new Map<string, Set<string>>();
    for (let u = 0; u < 16; u++) {
      for (let i = 0; i < 3; i++) {
        const r = await get('/hash', { 'x-user': `user-${u}` });
        let set = byUser.get(`user-${u}`);
        if (set === undefined) byUser.set(`user-${u}`, (set = new Set()));
        set.add(backendOf(r));
      }
    }
    for (const [user, backends] of byUser) assert.equal(backends.size, 1, `${user} went to ${[...backends].join(', ')}`);
    const used = new Set([...byUser.values()].flatMap((s) => [...s]));
    // 16 keys on two endpoints: the chance that all land on one is 2 × 2^-16.
    assert.deepEqual(used, new Set(['echo-a', 'echo-b']));
  });

  it('consistentHash on a cookie with a TTL generates the cookie, and the cookie keeps the client on its endpoint', async () => {
    await configure({ echo: [cluster({ loadBalancer: { simple: 'LEAST_REQUEST', consistentHash: { httpCookie: { name: 'sticky', path: '/', ttlMs: 60_000 }, maglev: false, tableSize: 1024 } } })] });
    const first = await get('/cookie');
    const setCookie = first.headers['set-cookie']?.[0] ?? '';
    assert.match(setCookie, /^sticky="[0-9a-f]{16}"; Max-Age=60; Path=\/; HttpOnly$/);
    const cookie = setCookie.split(';')[0]!;
    for (let i = 0; i < 10; i++) {
      const r = await get('/cookie', { cookie: `other=1; ${cookie}` });
      assert.equal(backendOf(r), backendOf(first));
      assert.equal(r.headers['set-cookie'], undefined, 'a request with the cookie gets none');
    }
  });

  it('a subset route goes to the subset’s endpoints only; a subset the rule does not define is Envoy’s 503 NC', async () => {
    await configure({ echo: [cluster(), cluster({ subset: 'a', workloads: [ECHO_A] }), cluster({ subset: 'b', workloads: [ECHO_B] })] });
    for (let i = 0; i < 6; i++) {
      assert.equal(backendOf(await get('/only-a')), 'echo-a');
      assert.equal(backendOf(await get('/only-b')), 'echo-b');
    }
    const mark = h.accessLog.length;
    const r = await get('/no-such-subset');
    assert.equal(r.status, 503);
    const line = await eventually('access-log line', () => h.logged('"GET /no-such-subset HTTP/1.1"', mark)[0]);
    assert.ok(line.includes(' 503 NC cluster_not_found '), line);
  });

  it('circuit breaker: over maxConnections + http1MaxPendingRequests concurrent requests overflow with Envoy’s 503 UO', async () => {
    await configure({
      echo: [
        cluster({
          connectionPool: { maxConnections: 1, connectTimeoutMs: 0, maxPendingRequests: 1, maxRequests: 0, maxRequestsPerConnection: 0, maxRetries: 0, idleTimeoutMs: 0, h2Upgrade: false, useClientProtocol: false },
        }),
      ],
    });
    const mark = h.accessLog.length;
    const results = await Promise.all([0, 1, 2, 3].map(() => get('/slow', { 'x-delay-ms': '400' })));
    const overflowed = results.filter((r) => r.status === 503);
    // One on the connection, one pending; the other two overflow.
    assert.equal(overflowed.length, 2, results.map((r) => r.status).join(' '));
    assert.equal(results.filter((r) => r.status === 200).length, 2);
    for (const r of overflowed) {
      assert.equal(r.body.toString(), 'upstream connect error or disconnect/reset before headers. reset reason: overflow');
      assert.equal(r.headers['x-envoy-overloaded'], 'true');
    }
    const lines = await eventually('access-log lines', () => {
      const l = h.logged('"GET /slow HTTP/1.1"', mark);
      return l.length === 4 ? l : undefined;
    });
    assert.equal(lines.filter((l) => l.includes(' 503 UO upstream_reset_before_response_started{overflow} ')).length, 2, lines.join('\n'));
  });

  it('circuit breaker: http2MaxRequests caps requests in flight whatever the protocol', async () => {
    await configure({
      echo: [
        cluster({
          connectionPool: { maxConnections: 0, connectTimeoutMs: 0, maxPendingRequests: 0, maxRequests: 1, maxRequestsPerConnection: 0, maxRetries: 0, idleTimeoutMs: 0, h2Upgrade: false, useClientProtocol: false },
        }),
      ],
    });
    const results = await Promise.all([0, 1, 2].map(() => get('/slow', { 'x-delay-ms': '400' })));
    assert.deepEqual(results.map((r) => r.status).sort(), [200, 503, 503]);
    // The limit counts requests in flight: once they are done, the next one passes.
    assert.equal((await get('/after')).status, 200);
  });

  it('outlier detection ejects the endpoint answering 5xx in a row; the other takes all requests', async () => {
    await configure({
      echo: [
        cluster({
          loadBalancer: { simple: 'ROUND_ROBIN' },
          outlierDetection: { consecutiveErrors: 2, consecutiveGatewayErrors: 0, intervalMs: 1000, baseEjectionTimeMs: 30_000, maxEjectionPercent: 100, minHealthPercent: 0 },
        }),
      ],
    });
    const failA = { 'x-respond-status-from': 'echo-a:500' };
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await get('/flaky', failA)).status);
    // Round robin gives echo-a every other request: its second 500 ejects it.
    assert.equal(statuses.filter((s) => s === 500).length, 2, statuses.join(' '));
    for (let i = 0; i < 10; i++) {
      const r = await get('/flaky', failA);
      assert.equal(r.status, 200);
      assert.equal(backendOf(r), 'echo-b');
    }
    assert.ok(
      h.logLines.some((l) => l.includes('outlier detection: ejected') && l.includes(`${h.ip(2)}:8080`) && l.includes('2 consecutive 5xx')),
      'the ejection is logged',
    );
  });

  it('outlier detection never ejects beyond maxEjectionPercent', async () => {
    await configure({
      echo: [
        cluster({
          loadBalancer: { simple: 'ROUND_ROBIN' },
          outlierDetection: { consecutiveErrors: 1, consecutiveGatewayErrors: 0, intervalMs: 1000, baseEjectionTimeMs: 30_000, maxEjectionPercent: 50, minHealthPercent: 0 },
        }),
      ],
    });
    // Both endpoints fail: the first ejected is half of the endpoints, so the second stays.
    for (let i = 0; i < 6; i++) assert.equal((await get('/down', { 'x-respond-status': '503' })).status, 503);
    assert.equal((await get('/down')).status, 200, 'one endpoint is still in rotation');
  });

  it('maxRequestsPerConnection retires a connection after that many requests', async () => {
    const connects = () => h.backend('echoA').connects.length + h.backend('echoB').connects.length;
    await configure({
      echo: [
        cluster({
          connectionPool: { maxConnections: 0, connectTimeoutMs: 0, maxPendingRequests: 0, maxRequests: 0, maxRequestsPerConnection: 1, maxRetries: 0, idleTimeoutMs: 0, h2Upgrade: false, useClientProtocol: false },
        }),
      ],
    });
    const before = connects();
    for (let i = 0; i < 6; i++) assert.equal((await get('/once')).status, 200);
    // Each request on a connection (an HBONE CONNECT) of its own.
    assert.equal(connects() - before, 6);
  });

  it('maxRequestsPerConnection on an HTTP/2 upstream: every request is answered, each on a connection of its own', async () => {
    const grpc = Object.entries(boundService('grpc'))[0]! as [string, WaypointResource];
    const pool = { maxConnections: 0, connectTimeoutMs: 0, maxPendingRequests: 0, maxRequests: 0, maxRequestsPerConnection: 1, maxRetries: 0, idleTimeoutMs: 0, h2Upgrade: false, useClientProtocol: false };
    const name = waypointResourceName('destination', APPS, fqdn('grpc'));
    h.source.set(TYPE_WAYPOINT, { [grpc[0]]: grpc[1], [name]: { destination: { hostname: fqdn('grpc'), namespace: APPS, rule: `${APPS}/grpc`, clusters: [{ port: 50051, subset: '', workloads: [], connectionPool: pool }] } } });
    await h.waitForConfig('the grpc destination', (dump) => (dump.destinations as { hostname: string }[]).some((d) => d.hostname === fqdn('grpc')));
    const be = h.backend('grpcA');
    const before = be.connects.length;
    const session = await client.h2session(h.authority('grpc', 50051));
    try {
      for (let i = 0; i < 4; i++) {
        const status = await new Promise<number>((resolve, reject) => {
          const req = session.request({ ':path': `/h2/${i}`, ':authority': `${fqdn('grpc')}:50051` });
          req.on('response', (hd) => resolve(Number(hd[':status'])));
          req.on('error', reject);
          req.resume();
          req.end();
        });
        assert.equal(status, 200, `request ${i}`);
      }
    } finally {
      session.close();
    }
    assert.equal(be.connects.length - before, 4);
    h.source.set(TYPE_WAYPOINT, {}, [name]);
  });

  it('originates TLS to the endpoint: SIMPLE verified against caCertificates and subjectAltNames, with SNI; MUTUAL presents the client certificate', async () => {
    const authority = h.authority('secure', 80);
    const send = () => client.http1(authority, { path: '/tls', headers: { host: fqdn('secure') } });
    // Without a DestinationRule the waypoint speaks plain HTTP to a TLS port: no answer it can use.
    assert.notEqual((await send()).status, 200);

    const root = join(h.dir, 'ca', 'root-cert.pem');
    const serverSan = `spiffe://${TD}/ns/${APPS}/sa/secure`;
    const tlsCluster = (fields: Partial<NonNullable<WaypointCluster['tls']>>): WaypointCluster =>
      cluster({ tls: { mode: 'SIMPLE', sni: 'secure.example', subjectAltNames: [serverSan], insecureSkipVerify: false, caCertificates: root, clientCertificate: '', privateKey: '', ...fields } });
    await configure({ secure: [tlsCluster({})] });
    const simple = await send();
    assert.equal(simple.status, 200, simple.body.toString());
    assert.equal(simple.headers['x-tls-servername'], 'secure.example');
    assert.equal(simple.headers['x-client-san'], 'none');

    // A SAN the certificate does not carry fails the handshake: Envoy's 503 UF.
    await configure({ secure: [tlsCluster({ subjectAltNames: ['spiffe://cluster.local/ns/apps/sa/other'] })] });
    const wrongSan = await send();
    assert.equal(wrongSan.status, 503);
    assert.match(wrongSan.body.toString(), /^upstream connect error or disconnect\/reset before headers\. (retried and the latest )?reset reason: remote connection failure, transport failure reason: TLS error: /);

    const client1 = await h.issue(`spiffe://${TD}/ns/${APPS}/sa/client-cert`);
    const certFile = join(h.dir, 'client-cert.pem');
    const keyFile = join(h.dir, 'client-key.pem');
    writeFileSync(certFile, client1.chainPem.join(''));
    writeFileSync(keyFile, client1.keyPem);
    await configure({ secure: [tlsCluster({ mode: 'MUTUAL', clientCertificate: certFile, privateKey: keyFile })] });
    const mutual = await send();
    assert.equal(mutual.status, 200, mutual.body.toString());
    assert.equal(mutual.headers['x-client-san'], `URI:spiffe://${TD}/ns/${APPS}/sa/client-cert`);
  });

  it('a VirtualService tcp route sends a TCP port’s connections to its destination, with the destination’s DestinationRule', async () => {
    const tcp = Object.entries(boundService('tcp'))[0]! as [string, WaypointResource];
    const routed = { ...tcp[1].service!, tcpRoutes: [{ route: `${APPS}/to-sniff`, rule: 0, port: 9000, backends: [{ hostname: fqdn('sniff'), namespace: APPS, port: 7001, weight: 1, invalid: false }] }] };
    h.source.set(TYPE_WAYPOINT, { [tcp[0]]: { service: routed } });
    await h.waitForConfig('the tcp route', (dump) => (dump.boundServices as { hostname: string; tcpRoutes?: unknown[] }[]).some((x) => x.hostname === fqdn('tcp') && x.tcpRoutes?.length === 1));
    const before = { tcp: h.backend('tcpA').tcpConnections, sniff: h.backend('sniffA').tcpConnections };
    const s = await client.tunnel(h.authority('tcp', 9000));
    s.write('ping');
    assert.equal((await readBytes(s, 4)).toString(), 'ping');
    s.end();
    await drain(s);
    assert.deepEqual([h.backend('tcpA').tcpConnections - before.tcp, h.backend('sniffA').tcpConnections - before.sniff], [0, 1]);
    h.source.set(TYPE_WAYPOINT, { [tcp[0]]: tcp[1] });
  });
});
