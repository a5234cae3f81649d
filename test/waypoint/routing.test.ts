// HTTPRoutes at the waypoint, fed over xDS like the control plane sends them: a request goes to the first route that
// matches (path, header), to a backend chosen by weight, with the route's header filters; a rule without backends
// answers its direct status, an unresolved backend 500 NC; on a port with routes, no match is 404 NR; on a port without
// routes, the Service itself. Metrics and the access log name the backend Service and the route.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { TYPE_WAYPOINT, type WaypointResource, type WaypointRoute } from '../../src/xds/types.js';
import { APPS, Harness, MeshClient, boundService, eventually, fqdn, metricSum } from './harness.js';

const backend = (service: string, weight = 1) => ({ hostname: fqdn(service), namespace: APPS, port: 80, weight, invalid: false });

const ROUTES: WaypointRoute[] = [
  {
    route: `${APPS}/to-plain`,
    rule: 0,
    port: 0,
    match: { path: { type: 'PREFIX', value: '/plain' }, headers: [], queryParams: [], method: '' },
    backends: [backend('plain')],
    directStatus: 0,
    name: `${APPS}.to-plain.0`,
    requestHeaders: { set: [{ name: 'x-routed', value: 'plain' }], add: [], remove: ['x-secret'] },
    responseHeaders: { set: [], add: [{ name: 'x-route', value: 'to-plain' }], remove: [] },
  },
  {
    route: `${APPS}/split`,
    rule: 0,
    port: 0,
    match: { headers: [{ name: 'x-split', value: 'yes', regex: false }], queryParams: [], method: '' },
    backends: [backend('echo'), backend('plain')],
    directStatus: 0,
    name: 'split-rule',
  },
  { route: `${APPS}/nothing`, rule: 0, port: 0, match: { path: { type: 'EXACT', value: '/nothing' }, headers: [], queryParams: [], method: '' }, backends: [], directStatus: 500, name: `${APPS}.nothing.0` },
  {
    route: `${APPS}/invalid`,
    rule: 1,
    port: 0,
    match: { path: { type: 'PREFIX', value: '/invalid' }, headers: [], queryParams: [], method: '' },
    backends: [{ hostname: fqdn('missing'), namespace: APPS, port: 80, weight: 1, invalid: true }],
    directStatus: 0,
    name: `${APPS}.invalid.1`,
  },
  {
    route: `${APPS}/unknown`,
    rule: 0,
    port: 0,
    match: { path: { type: 'PREFIX', value: '/unknown' }, headers: [], queryParams: [], method: '' },
    backends: [{ hostname: fqdn('not-in-mesh'), namespace: APPS, port: 80, weight: 1, invalid: false }],
    directStatus: 0,
    name: `${APPS}.unknown.0`,
  },
  { route: `${APPS}/other-port`, rule: 0, port: 8080, match: { path: { type: 'PREFIX', value: '/' }, headers: [], queryParams: [], method: '' }, backends: [backend('plain')], directStatus: 0, name: `${APPS}.other-port.0` },
  { route: `${APPS}/echo-self`, rule: 0, port: 0, match: { path: { type: 'PREFIX', value: '/self' }, headers: [], queryParams: [], method: '' }, backends: [backend('echo')], directStatus: 0, name: `${APPS}.echo-self.0` },
  at('/redir-host', { redirect: { scheme: '', hostname: 'example.com', port: 0, statusCode: 302 } }),
  at('/redir-path', { redirect: { scheme: 'https', hostname: '', port: 0, path: { type: 'REPLACE_PREFIX_MATCH', value: '/new' }, statusCode: 301 } }),
  at('/redir-port', { redirect: { scheme: '', hostname: '', port: 8083, statusCode: 308 } }),
  at('/rw-prefix', { backends: [backend('plain')], rewrite: { hostname: 'rewritten.example', path: { type: 'REPLACE_PREFIX_MATCH', value: '/' } } }),
  at('/rw-full', { backends: [backend('plain')], rewrite: { hostname: '', path: { type: 'REPLACE_FULL_PATH', value: '/full' } } }),
  at('/slow', { backends: [backend('plain')], timeoutMs: 300 }),
  at('/retry', { backends: [backend('echo')], retry: { attempts: 2, codes: [503], backoffMs: 1, perTryTimeoutMs: 0 } }),
  at('/per-try', { backends: [backend('echo')], retry: { attempts: 1, codes: [], backoffMs: 1, perTryTimeoutMs: 200 } }),
  at('/mirrored', {
    backends: [backend('echo')],
    mirrors: [{ backend: { ...backend('plain'), requestHeaders: { set: [{ name: 'x-mirror', value: 'yes' }], add: [], remove: [] } }, percent: 100 }],
  }),
  at('/never-mirrored', { backends: [backend('echo')], mirrors: [{ backend: backend('plain'), percent: 0 }] }),
  // VirtualService forms: Envoy's retry_on conditions, a direct response body, a string prefix with prefix_rewrite.
  at('/retry-5xx', { backends: [backend('echo')], retry: { attempts: 2, codes: [], backoffMs: 1, perTryTimeoutMs: 0, conditions: ['5xx'] } }),
  at('/retry-gw', { backends: [backend('echo')], retry: { attempts: 1, codes: [], backoffMs: 1, perTryTimeoutMs: 0, conditions: ['gateway-error', 'retriable-4xx'] } }),
  at('/per-try-5xx', { backends: [backend('echo')], retry: { attempts: 1, codes: [], backoffMs: 1, perTryTimeoutMs: 200, conditions: ['5xx'] } }),
  at('/teapot', { directStatus: 418, directBody: 'short and stout' }),
  // VirtualService fault injection and CORS policies (Envoy's fault and CORS filters, before the router).
  at('/fault-abort', { backends: [backend('echo')], fault: fault({ abortStatus: 418, abortPercent: 100 }) }),
  at('/fault-delay', { backends: [backend('echo')], fault: fault({ delayMs: 150, delayPercent: 100 }) }),
  at('/fault-never', { backends: [backend('echo')], fault: fault({ delayMs: 5000, abortStatus: 500 }) }),
  at('/fault-grpc', { backends: [backend('echo')], fault: fault({ abortStatus: 200, abortPercent: 100, abortGrpc: true, abortGrpcStatus: 14 }) }),
  at('/cors', { backends: [backend('echo')], cors: cors(true) }),
  at('/cors-ignore', { backends: [backend('echo')], cors: cors(false) }),
  {
    ...at('/vs-pre', { backends: [backend('plain')], rewrite: { hostname: '', path: { type: 'PREFIX_REWRITE', value: '/x' } } }),
    match: { path: { type: 'STRING_PREFIX', value: '/vs-pre' }, headers: [], queryParams: [], method: '' },
  },
];

function fault(f: Partial<NonNullable<WaypointRoute['fault']>>): WaypointRoute['fault'] {
  return { delayMs: 0, delayPercent: 0, abortStatus: 0, abortPercent: 0, abortGrpc: false, abortGrpcStatus: 0, ...f };
}

function cors(forwardUnmatchedPreflights: boolean): WaypointRoute['cors'] {
  return {
    allowOrigins: [{ name: '', value: 'https://ok.example', regex: false }],
    allowMethods: 'GET,POST',
    allowHeaders: 'x-a',
    exposeHeaders: 'x-b',
    maxAge: '60',
    allowCredentials: true,
    forwardUnmatchedPreflights,
  };
}

/** A route on a path prefix of `echo`, named after it. */
function at(prefix: string, fields: Partial<WaypointRoute>): WaypointRoute {
  const name = prefix.slice(1);
  return {
    route: `${APPS}/${name}`,
    rule: 0,
    port: 0,
    match: { path: { type: 'PREFIX', value: prefix }, headers: [], queryParams: [], method: '' },
    backends: [],
    directStatus: 0,
    name: `${APPS}.${name}.0`,
    ...fields,
  };
}

describe('HTTPRoutes at the waypoint', () => {
  let h: Harness;
  let client: MeshClient;

  before(async () => {
    h = await Harness.start();
    client = await MeshClient.dial(h);
    const echo = boundService('echo', ['apps/deny-delete']);
    const [name, resource] = Object.entries(echo)[0]! as [string, WaypointResource];
    h.source.set(TYPE_WAYPOINT, { [name]: { service: { ...resource.service!, routes: ROUTES } } });
    await eventually('the routes at the waypoint', () => {
      const svc = h.waypoint.state.serviceByVip(h.ip(100));
      return (svc && h.waypoint.state.boundService(svc)?.routes.length === ROUTES.length) || undefined;
    });
  });

  after(async () => {
    client?.close();
    await h?.close();
  });

  const get = (path: string, headers: Record<string, string> = {}) => client.http1(h.authority('echo', 80), { path, headers: { host: fqdn('echo'), ...headers } });

  it('sends a matching request to the route’s backend with its header filters, and names it in metrics and log', async () => {
    const plain = h.backend('plainA');
    const before = plain.requests.length;
    const mark = h.accessLog.length;
    const r = await get('/plain/x', { 'x-secret': 's' });
    assert.equal(r.status, 200, r.body.toString());
    assert.equal(plain.requests.length, before + 1, 'the plain Service’s endpoint got it');
    const seen = plain.requests.at(-1)!;
    assert.equal(seen.url, '/plain/x', 'the path is unchanged');
    assert.equal(seen.headers['x-routed'], 'plain');
    assert.equal(seen.headers['x-secret'], undefined);
    assert.equal(r.headers['x-route'], 'to-plain');
    const line = await eventually('access-log line', () => h.logged('"GET /plain/x HTTP/1.1"', mark)[0]);
    assert.match(line, /outbound\|80\|\|plain\.apps\.svc\.cluster\.local|inbound-vip\|80\|http\|plain\.apps\.svc\.cluster\.local/);
    assert.match(line, / apps\.to-plain\.0$/, 'the route name ends the line');
    const m = await h.scrape();
    assert.ok(metricSum(m, 'istio_requests_total', { reporter: 'waypoint', destination_service: fqdn('plain'), response_code: '200' }) >= 1, 'destination_service is the backend');
  });

  it('splits by weight across backends', async () => {
    const plain = h.backend('plainA');
    const echoes = [h.backend('echoA'), h.backend('echoB')];
    const before = { plain: plain.requests.length, echo: echoes.reduce((n, b) => n + b.requests.length, 0) };
    for (let i = 0; i < 40; i++) assert.equal((await get('/split', { 'x-split': 'yes' })).status, 200);
    const plainGot = plain.requests.length - before.plain;
    const echoGot = echoes.reduce((n, b) => n + b.requests.length, 0) - before.echo;
    assert.equal(plainGot + echoGot, 40);
    // 50/50 over 40 requests: both sides get some (the chance that one gets none is 2 × 2^-40).
    assert.ok(plainGot > 0 && echoGot > 0, `plain ${plainGot}, echo ${echoGot}`);
  });

  it('answers Envoy’s local replies: the direct status without backends, 500 NC for an unresolved backend, 503 NC for a Service the mesh does not know, 404 NR without a match', async () => {
    const cases: [string, number, string][] = [
      ['/nothing', 500, '- direct_response'],
      ['/invalid/x', 500, 'NC cluster_not_found'],
      ['/unknown', 503, 'NC cluster_not_found'],
      ['/elsewhere', 404, 'NR route_not_found'],
    ];
    for (const [path, status, flagsAndDetails] of cases) {
      const mark = h.accessLog.length;
      const r = await get(path);
      assert.equal(r.status, status, path);
      assert.equal(r.body.length, 0, `${path}: empty body`);
      const line = await eventually(`access-log line for ${path}`, () => h.logged(`"GET ${path} HTTP/1.1"`, mark)[0]);
      assert.ok(line.includes(` ${status} ${flagsAndDetails} `), `${path}: ${line}`);
    }
  });

  it('decides authorization for the Service addressed, before routing', async () => {
    const echoes = [h.backend('echoA'), h.backend('echoB')];
    const before = echoes.reduce((n, b) => n + b.requests.length, 0);
    assert.equal((await get('/self')).status, 200);
    assert.equal(echoes.reduce((n, b) => n + b.requests.length, 0), before + 1);
    const denied = await client.http1(h.authority('echo', 80), { method: 'DELETE', path: '/plain/x', headers: { host: fqdn('echo') } });
    assert.equal(denied.status, 403, 'the Service’s DENY applies to a request its route sends elsewhere');
  });

  it('redirects as Envoy does: 302 by default, the host, scheme, port and path swapped independently, empty body', async () => {
    const cases: [string, number, string][] = [
      ['/redir-host/x?q=1', 302, 'http://example.com/redir-host/x?q=1'],
      ['/redir-path/a/b', 301, `https://${fqdn('echo')}/new/a/b`],
      ['/redir-port', 308, `http://${fqdn('echo')}:8083/redir-port`],
    ];
    const plain = h.backend('plainA');
    const before = plain.requests.length;
    for (const [path, status, location] of cases) {
      const r = await get(path);
      assert.equal(r.status, status, path);
      assert.equal(r.headers.location, location, path);
      assert.equal(r.body.length, 0);
    }
    assert.equal(plain.requests.length, before, 'no backend saw a redirected request');
  });

  it('rewrites the path and host the backend sees, keeping the original path in x-envoy-original-path and the log', async () => {
    const plain = h.backend('plainA');
    const mark = h.accessLog.length;
    assert.equal((await get('/rw-prefix/items?x=1')).status, 200);
    let seen = plain.requests.at(-1)!;
    assert.deepEqual([seen.url, seen.headers.host, seen.headers['x-envoy-original-path']], ['/items?x=1', 'rewritten.example', '/rw-prefix/items?x=1']);
    assert.ok((await eventually('access-log line', () => h.logged('"GET /rw-prefix/items?x=1 HTTP/1.1"', mark)[0])).length > 0);
    assert.equal((await get('/rw-full/a/b')).status, 200);
    seen = plain.requests.at(-1)!;
    assert.deepEqual([seen.url, seen.headers.host], ['/full', fqdn('echo')]);
  });

  it('answers 504 "upstream request timeout" (UT) when the route timeout passes first', async () => {
    const mark = h.accessLog.length;
    const started = Date.now();
    const r = await get('/slow', { 'x-delay-ms': '5000' });
    assert.equal(r.status, 504);
    assert.equal(r.body.toString(), 'upstream request timeout');
    assert.ok(Date.now() - started < 4000, 'answered at the timeout, not when the backend was done');
    const line = await eventually('access-log line', () => h.logged('"GET /slow HTTP/1.1"', mark)[0]);
    assert.ok(line.includes(' 504 UT response_timeout '), line);
    assert.equal((await get('/slow')).status, 200, 'a fast answer is unaffected');
  });

  it('retries the statuses a route’s retry policy names, on another endpoint, and flags exhausted retries URX', async () => {
    const echoes = [h.backend('echoA'), h.backend('echoB')];
    const count = () => echoes.reduce((n, b) => n + b.requests.length, 0);
    let before = count();
    const recovered = await get('/retry', { 'x-fail-times': `recover-${Date.now()}:1` });
    assert.equal(recovered.status, 200, 'the second try succeeded');
    assert.equal(count() - before, 2);
    before = count();
    const mark = h.accessLog.length;
    const failed = await get('/retry', { 'x-respond-status': '503' });
    assert.equal(failed.status, 503, 'the last response is relayed');
    assert.equal(count() - before, 3, 'the first try and two retries');
    const line = await eventually('access-log line', () => h.logged('"GET /retry HTTP/1.1"', mark)[0]);
    assert.ok(line.includes(' 503 URX via_upstream '), line);
    before = count();
    assert.equal((await get('/retry', { 'x-respond-status': '500' })).status, 500, 'a status the policy does not name is not retried');
    assert.equal(count() - before, 1);
  });

  it('cuts a try at the per-try timeout and answers 504 UT: Istio’s route retry policy does not retry it', async () => {
    const echoes = [h.backend('echoA'), h.backend('echoB')];
    const count = () => echoes.reduce((n, b) => n + b.requests.length, 0);
    const before = count();
    const mark = h.accessLog.length;
    const r = await get('/per-try', { 'x-delay-ms': '5000' });
    assert.equal(r.status, 504);
    assert.equal(r.body.toString(), 'upstream request timeout');
    assert.equal(count() - before, 1, 'one try, cut short');
    const line = await eventually('access-log line', () => h.logged('"GET /per-try HTTP/1.1"', mark)[0]);
    assert.ok(line.includes(' 504 UT upstream_per_try_timeout '), line);
  });

  it('retries on Envoy’s conditions: 5xx any 5xx, gateway-error 502–504 only, retriable-4xx 409', async () => {
    const echoes = [h.backend('echoA'), h.backend('echoB')];
    const count = () => echoes.reduce((n, b) => n + b.requests.length, 0);
    const tries = async (path: string, status: string) => {
      const before = count();
      const r = await get(path, { 'x-respond-status': status });
      assert.equal(r.status, Number(status), `${path} ${status}: the last response is relayed`);
      return count() - before;
    };
    assert.equal(await tries('/retry-5xx', '500'), 3);
    assert.equal(await tries('/retry-5xx', '404'), 1);
    assert.equal(await tries('/retry-gw', '502'), 2);
    assert.equal(await tries('/retry-gw', '500'), 1);
    assert.equal(await tries('/retry-gw', '409'), 2);
  });

  it('retries a per-try timeout when the conditions include 5xx', async () => {
    const echoes = [h.backend('echoA'), h.backend('echoB')];
    const count = () => echoes.reduce((n, b) => n + b.requests.length, 0);
    const before = count();
    const r = await get('/per-try-5xx', { 'x-delay-ms': '5000' });
    assert.equal(r.status, 504);
    assert.equal(count() - before, 2, 'the first try and one retry, each cut short');
  });

  it('answers a direct response with its body; routes a string prefix and swaps it literally', async () => {
    const teapot = await get('/teapot');
    assert.deepEqual([teapot.status, teapot.body.toString(), teapot.headers['content-type']], [418, 'short and stout', 'text/plain']);
    const plain = h.backend('plainA');
    assert.equal((await get('/vs-prefixed/a?q=1')).status, 200);
    assert.equal(plain.requests.at(-1)!.url, '/xfixed/a?q=1');
  });

  it('mirrors a request, body included, to another Service and answers from the backend alone', async () => {
    const plain = h.backend('plainA');
    const echoes = [h.backend('echoA'), h.backend('echoB')];
    const count = () => echoes.reduce((n, b) => n + b.requests.length, 0);
    const before = { plain: plain.requests.length, echo: count() };
    const body = Buffer.alloc(200_000, 0x61);
    const r = await client.http1(h.authority('echo', 80), { method: 'POST', path: '/mirrored', headers: { host: fqdn('echo') }, body });
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-backend']?.toString().startsWith('echo'), true, 'the answer is the backend’s');
    assert.equal(count(), before.echo + 1);
    const copy = await eventually('the mirrored copy', () => (plain.requests.length > before.plain ? plain.requests.at(-1) : undefined));
    assert.deepEqual([copy.method, copy.url, copy.bodyLength, copy.headers['x-mirror'], copy.headers.host], ['POST', '/mirrored', body.length, 'yes', fqdn('echo')]);
    const p0 = plain.requests.length;
    for (let i = 0; i < 5; i++) assert.equal((await get('/never-mirrored')).status, 200);
    assert.equal(plain.requests.length, p0, 'a 0 % mirror sends nothing');
  });

  it('injects faults: an abort answers its status with `fault filter abort` (FI), a delay holds the request (DI), 0 % never, a gRPC abort is trailers-only', async () => {
    const echoes = [h.backend('echoA'), h.backend('echoB')];
    const count = () => echoes.reduce((n, b) => n + b.requests.length, 0);
    const before = count();
    let mark = h.accessLog.length;
    const aborted = await get('/fault-abort');
    assert.deepEqual([aborted.status, aborted.body.toString(), aborted.headers['content-type']], [418, 'fault filter abort', 'text/plain']);
    assert.equal(count(), before, 'an aborted request never reaches the backend');
    let line = await eventually('access-log line', () => h.logged('"GET /fault-abort HTTP/1.1"', mark)[0]);
    assert.ok(line.includes(' 418 FI fault_filter_abort '), line);

    mark = h.accessLog.length;
    const start = performance.now();
    const delayed = await get('/fault-delay');
    assert.equal(delayed.status, 200);
    assert.ok(performance.now() - start >= 140, 'the request waited for the delay');
    assert.equal(count(), before + 1);
    line = await eventually('access-log line', () => h.logged('"GET /fault-delay HTTP/1.1"', mark)[0]);
    assert.ok(line.includes(' 200 DI via_upstream '), line);

    for (let i = 0; i < 5; i++) assert.equal((await get('/fault-never')).status, 200);

    const grpc = await get('/fault-grpc');
    assert.deepEqual([grpc.status, grpc.headers['content-type'], grpc.headers['grpc-status'], grpc.headers['grpc-message']], [200, 'application/grpc', '14', 'fault filter abort']);
  });

  it('applies a CORS policy: answers an allowed preflight, forwards or answers an unmatched one, adds the allow headers to allowed requests', async () => {
    const echoes = [h.backend('echoA'), h.backend('echoB')];
    const count = () => echoes.reduce((n, b) => n + b.requests.length, 0);
    const preflight = (path: string, origin: string) =>
      client.http1(h.authority('echo', 80), { method: 'OPTIONS', path, headers: { host: fqdn('echo'), origin, 'access-control-request-method': 'POST' } });
    let before = count();
    const ok = await preflight('/cors', 'https://ok.example');
    assert.equal(ok.status, 200);
    assert.deepEqual(
      [ok.headers['access-control-allow-origin'], ok.headers['access-control-allow-methods'], ok.headers['access-control-allow-headers'], ok.headers['access-control-max-age'], ok.headers['access-control-allow-credentials']],
      ['https://ok.example', 'GET,POST', 'x-a', '60', 'true'],
    );
    assert.equal(count(), before, 'the waypoint answered the preflight');

    const forwarded = await preflight('/cors', 'https://evil.example');
    assert.equal(forwarded.headers['access-control-allow-origin'], undefined);
    assert.equal(count(), before + 1, 'an unmatched preflight goes on to the application (FORWARD)');
    before = count();
    const ignored = await preflight('/cors-ignore', 'https://evil.example');
    assert.deepEqual([ignored.status, ignored.headers['access-control-allow-origin']], [200, undefined]);
    assert.equal(count(), before, 'IGNORE: answered by the waypoint, without CORS headers');

    const allowed = await get('/cors', { origin: 'https://ok.example' });
    assert.deepEqual(
      [allowed.status, allowed.headers['access-control-allow-origin'], allowed.headers['access-control-allow-credentials'], allowed.headers['access-control-expose-headers']],
      [200, 'https://ok.example', 'true', 'x-b'],
    );
    const other = await get('/cors', { origin: 'https://evil.example' });
    assert.deepEqual([other.status, other.headers['access-control-allow-origin']], [200, undefined]);
  });
});
