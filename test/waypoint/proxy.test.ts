// The waypoint proxy end to end in one process on loopback: a real control plane and CA, the waypoint started as its
// process starts it, endpoint workloads behind their own HBONE servers (or plain TCP), and a client speaking HBONE to
// the waypoint as the source ztunnel does. Expected behaviour is Envoy's as Istio configures a waypoint
// (../shared/reference/envoy-l7.md §0, §1.1, §3.1, §3.3, §3.7, §3.8, §5).
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import * as net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { HboneStatusError } from '../../src/hbone/client.js';
import { TYPE_ADDRESS, TYPE_WAYPOINT } from '../../src/xds/types.js';
import {
  APPS,
  CLIENT_ID,
  ECHO_ID,
  HOST,
  Harness,
  MeshClient,
  VIP,
  WAYPOINT_ID,
  WP_NS,
  boundService,
  drain,
  eventually,
  fqdn,
  grpcFrame,
  httpGet,
  metricLabelSets,
  metricSum,
  policy,
  readBytes,
  within,
  waypointResourceName,
  waypointSelf,
} from './harness.js';

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const REFUSED_BODY =
  'upstream connect error or disconnect/reset before headers. retried and the latest reset reason: remote connection failure, ' +
  'transport failure reason: delayed connect error: Connection refused';

describe('waypoint proxy on loopback', { timeout: 60_000 }, () => {
  let h: Harness;
  let client: MeshClient;

  before(async () => {
    h = await Harness.start();
    client = await MeshClient.dial(h);
  });

  after(async () => {
    client?.close();
    await h?.close();
  });

  const echoBackends = () => [h.backend('echoA'), h.backend('echoB')];
  const echoRequestCount = () => echoBackends().reduce((n, b) => n + b.requests.length, 0) + h.backend('echoC').requests.length;

  describe('HTTP/1.1', () => {
    it('proxies a 1 MiB POST to an HBONE endpoint with Envoy request and response headers and its own identity upstream', async () => {
      const body = randomBytes(1 << 20);
      const r = await client.http1(h.authority('echo', 80), {
        method: 'POST',
        path: '/upload?x=1',
        body,
        headers: {
          'content-type': 'application/octet-stream',
          'x-request-id': 'client-chosen-request-id',
          'x-forwarded-client-cert': 'By=spiffe://cluster.local/ns/evil/sa/evil;Hash=00;URI=spiffe://cluster.local/ns/evil/sa/evil',
          'x-forwarded-proto': 'https',
          'proxy-connection': 'keep-alive',
          'keep-alive': 'timeout=30',
        },
      });
      assert.equal(r.status, 200);
      assert.ok(r.body.equals(body), `response body intact (${r.body.length} bytes back)`);
      assert.equal(r.headers.server, 'istio-envoy');
      assert.match(String(r.headers['x-envoy-upstream-service-time']), /^\d+$/);
      assert.equal(r.headers['keep-alive'], undefined, 'the endpoint’s hop-by-hop Keep-Alive header is not forwarded');

      const be = r.headers['x-backend'] === 'echo-a' ? h.backend('echoA') : h.backend('echoB');
      assert.ok(['echo-a', 'echo-b'].includes(String(r.headers['x-backend'])), `served by ${r.headers['x-backend']}`);
      const seen = be.requests.at(-1)!;
      assert.equal(seen.method, 'POST');
      assert.equal(seen.url, '/upload?x=1');
      assert.equal(seen.httpVersion, '1.1');
      assert.equal(seen.bodyLength, body.length);
      assert.equal(seen.bodySha256, createHash('sha256').update(body).digest('hex'));
      assert.equal(seen.headers.host, fqdn('echo'), 'Host as the client sent it');
      assert.equal(seen.headers['x-forwarded-proto'], 'http', 'x-forwarded-proto overwritten');
      assert.equal(seen.headers['x-request-id'], 'client-chosen-request-id', 'a client x-request-id is kept');
      assert.equal(seen.headers['x-forwarded-client-cert'], undefined, 'XFCC sanitized');
      assert.equal(seen.headers['x-forwarded-for'], undefined, 'the waypoint does not append to XFF');
      assert.equal(seen.headers['proxy-connection'], undefined, 'hop-by-hop request headers are dropped');
      assert.equal(seen.headers['keep-alive'], undefined, 'hop-by-hop request headers are dropped');
      const line = await eventually('access-log line', () => h.logged('"POST /upload?x=1 HTTP/1.1"')[0]);
      assert.match(line, / 200 - via_upstream - "-" 1048576 1048576 \d+ \d+ "-" "-" "client-chosen-request-id" /, 'body bytes both ways');

      // The endpoint's ztunnel saw the waypoint (not the client) as the HBONE peer, addressed to the endpoint itself.
      assert.ok(be.connects.length > 0, 'the endpoint was reached over HBONE');
      for (const c of be.connects) {
        assert.equal(c.srcIdentity, WAYPOINT_ID);
        assert.equal(c.authority, `${be.ip}:8080`);
      }
    });

    it('generates a UUID x-request-id when the client sent none, and logs it', async () => {
      const mark = h.accessLog.length;
      const r = await client.http1(h.authority('echo', 80), { path: '/no-request-id' });
      assert.equal(r.status, 200);
      const seen = echoBackends()
        .flatMap((b) => b.requests)
        .find((q) => q.url === '/no-request-id')!;
      const id = String(seen.headers['x-request-id']);
      assert.match(id, UUID_V4);
      await eventually('access-log line', () => h.logged('"GET /no-request-id HTTP/1.1"', mark)[0]);
      assert.ok(h.logged('"GET /no-request-id HTTP/1.1"', mark)[0]!.includes(`"${id}"`), 'the access log shows the generated id');
    });

    it('reaches a tunnelProtocol NONE endpoint over plain TCP', async () => {
      const before = h.backend('plainA').requests.length;
      const r = await client.http1(h.authority('plain', 80), { path: '/plain', headers: { 'x-forwarded-client-cert': 'Hash=1', 'x-forwarded-for': '192.0.2.1, 198.51.100.7' } });
      assert.equal(r.status, 200);
      assert.equal(r.body.toString(), 'hello from plain-a\n');
      assert.equal(r.headers.server, 'istio-envoy');
      assert.match(String(r.headers['x-envoy-upstream-service-time']), /^\d+$/);
      const seen = h.backend('plainA').requests.slice(before);
      assert.equal(seen.length, 1);
      assert.equal(seen[0]!.headers['x-forwarded-proto'], 'http');
      assert.equal(seen[0]!.headers['x-forwarded-client-cert'], undefined);
      assert.match(String(seen[0]!.headers['x-request-id']), UUID_V4);
      assert.equal(seen[0]!.headers['x-forwarded-for'], '192.0.2.1, 198.51.100.7', 'XFF passes untouched');
    });

    it('reuses kept-alive upstream connections without piling up listeners', async () => {
      const before = h.backend('plainA').requests.length;
      for (let i = 0; i < 15; i++) assert.equal((await client.http1(h.authority('plain', 80), { path: `/keep-alive/${i}` })).status, 200);
      assert.equal(h.backend('plainA').requests.length - before, 15);
      // Node's HTTP client removes its per-request 'timeout' listener with socket.setTimeout(0, listener) when it
      // returns a socket to the agent; a socket that adds the listener there instead gains one per request.
      await new Promise((r) => setImmediate(r));
      const leaks = h.warnings.filter((w) => w.name === 'MaxListenersExceededWarning');
      assert.deepEqual(leaks.map((w) => w.message), []);
    });

    it('balances over the healthy endpoints only (least request, two random choices), and follows health changes', async () => {
      // One request at a time leaves every endpoint with nothing in flight, so each pick is a fair coin: 40 requests
      // all landing on one endpoint would happen once in 10^12 runs.
      const counts = new Map<string, number>();
      const cBefore = h.backend('echoC').requests.length;
      for (let i = 0; i < 40; i++) {
        const r = await client.http1(h.authority('echo', 80), { path: `/lb/${i}` });
        assert.equal(r.status, 200);
        const name = String(r.headers['x-backend']);
        counts.set(name, (counts.get(name) ?? 0) + 1);
      }
      assert.equal(h.backend('echoC').requests.length, cBefore, 'the UNHEALTHY endpoint got nothing');
      assert.deepEqual([...counts.keys()].sort(), ['echo-a', 'echo-b'], JSON.stringify(Object.fromEntries(counts)));

      // echo-b turns unhealthy: everything goes to echo-a; healthy again: both share again.
      h.source.set(TYPE_ADDRESS, h.workloadAddress('echoB', { status: 'UNHEALTHY' }));
      await eventually('echo-b unhealthy at the waypoint', () => h.waypoint.state.workloadByIp(h.ip(HOST.echoB))?.status === 'UNHEALTHY');
      for (let i = 0; i < 4; i++) assert.equal((await client.http1(h.authority('echo', 80), { path: `/lb-one/${i}` })).headers['x-backend'], 'echo-a');
      h.source.set(TYPE_ADDRESS, h.workloadAddress('echoB'));
      await eventually('echo-b healthy at the waypoint', () => h.waypoint.state.workloadByIp(h.ip(HOST.echoB))?.status === 'HEALTHY');
      const again = new Set<string>();
      for (let i = 0; i < 40 && again.size < 2; i++) again.add(String((await client.http1(h.authority('echo', 80), { path: `/lb-two/${i}` })).headers['x-backend']));
      assert.deepEqual([...again].sort(), ['echo-a', 'echo-b']);
    });
  });

  describe('HTTP/2', () => {
    it('carries h2c to an HTTP2 port, gRPC trailers included, and answers a denied gRPC call trailers-only', async () => {
      const be = h.backend('grpcA');
      const session = await client.h2session(h.authority('grpc', 50051));
      try {
        const authority = `${fqdn('grpc')}:50051`;
        const plain = await MeshClient.h2request(session, { ':method': 'GET', ':path': '/h2', ':authority': authority });
        assert.equal(plain.status, 200);
        assert.equal(plain.body.toString(), 'h2 hello from grpc-a\n');
        assert.equal(plain.headers.server, 'istio-envoy');
        assert.match(String(plain.headers['x-envoy-upstream-service-time']), /^\d+$/);
        const seenPlain = be.requests.at(-1)!;
        assert.equal(seenPlain.httpVersion, '2.0', 'HTTP2 ports talk h2 upstream');
        assert.equal(seenPlain.headers['x-forwarded-proto'], 'http');
        assert.equal((seenPlain.headers as Record<string, string>)[':authority'], authority);

        const message = grpcFrame(Buffer.from('ping'));
        const grpc = await MeshClient.h2request(
          session,
          { ':method': 'POST', ':path': '/test.Echo/Say', ':authority': authority, 'content-type': 'application/grpc', te: 'trailers' },
          message,
        );
        assert.equal(grpc.status, 200);
        assert.equal(grpc.headers['content-type'], 'application/grpc');
        assert.equal(grpc.headers.server, 'istio-envoy');
        assert.ok(grpc.body.equals(grpcFrame(Buffer.from('reply from grpc-a'))), 'response message intact');
        assert.ok(grpc.gotTrailers, 'trailers reached the client');
        assert.equal(grpc.trailers['grpc-status'], '0');
        assert.equal(grpc.trailers['grpc-message'], 'all good');
        const seenGrpc = be.requests.at(-1)!;
        assert.equal(seenGrpc.url, '/test.Echo/Say');
        assert.equal(seenGrpc.headers.te, 'trailers', 'te: trailers reaches a gRPC server');
        assert.equal(seenGrpc.bodyLength, message.length);

        const before = be.requests.length;
        const grpcLabels = { reporter: 'waypoint', destination_service: fqdn('grpc'), request_protocol: 'grpc', response_code: '200', grpc_response_status: '7', response_flags: '-' };
        const scrapeBefore = await h.scrape();
        const denied = await MeshClient.h2request(
          session,
          { ':method': 'POST', ':path': '/test.Denied/Call', ':authority': authority, 'content-type': 'application/grpc', te: 'trailers' },
          message,
        );
        assert.equal(denied.status, 200, 'gRPC local replies are HTTP 200');
        assert.ok(denied.endedWithHeaders, 'trailers-only: HEADERS with END_STREAM');
        assert.equal(denied.gotTrailers, false);
        assert.equal(denied.headers['content-type'], 'application/grpc');
        assert.equal(denied.headers['grpc-status'], '7');
        assert.equal(denied.headers['grpc-message'], 'RBAC: access denied');
        assert.equal(denied.body.length, 0);
        assert.equal(be.requests.length, before, 'the denied call never reached the endpoint');
        assert.equal(metricSum(await h.scrape(), 'istio_requests_total', grpcLabels) - metricSum(scrapeBefore, 'istio_requests_total', grpcLabels), 1);
      } finally {
        session.close();
      }
    });

    it('talks h2 upstream for HTTP/1.1 clients of an HTTP2 port', async () => {
      const r = await client.http1(h.authority('grpc', 50051), { path: '/h1-to-h2' });
      assert.equal(r.status, 200);
      assert.equal(r.body.toString(), 'h2 hello from grpc-a\n');
      assert.equal(r.headers.server, 'istio-envoy');
      const seen = h.backend('grpcA').requests.at(-1)!;
      assert.equal(seen.url, '/h1-to-h2');
      assert.equal(seen.httpVersion, '2.0');
      assert.equal((seen.headers as Record<string, string>)[':authority'], `${fqdn('grpc')}:50051`, 'Host becomes :authority');
    });

    it('translates HTTP/2 downstream to HTTP/1.1 upstream on an HTTP port', async () => {
      const session = await client.h2session(h.authority('echo', 80));
      try {
        const r = await MeshClient.h2request(session, { ':method': 'GET', ':path': '/h2-to-h1', ':authority': fqdn('echo') });
        assert.equal(r.status, 200);
        assert.equal(r.headers.server, 'istio-envoy');
        const seen = echoBackends()
          .flatMap((b) => b.requests)
          .find((q) => q.url === '/h2-to-h1')!;
        assert.equal(seen.httpVersion, '1.1');
        assert.equal(seen.headers.host, fqdn('echo'), ':authority becomes Host');
        assert.equal(seen.headers['x-forwarded-proto'], 'http');

        // A body larger than HTTP/2's initial windows, through the tunnel's nested HTTP/2 flow control both ways.
        const body = randomBytes(1 << 20);
        const post = await MeshClient.h2request(session, { ':method': 'POST', ':path': '/h2-upload', ':authority': fqdn('echo') }, body);
        assert.equal(post.status, 200);
        assert.ok(post.body.equals(body), `response body intact (${post.body.length} bytes back)`);
      } finally {
        session.close();
      }
    });
  });

  describe('authorization', () => {
    it('denies with a DENY policy on the Service: 403 "RBAC: access denied", text/plain, no response flag', async () => {
      const before = echoRequestCount();
      const mark = h.accessLog.length;
      const r = await client.http1(h.authority('echo', 80), { method: 'DELETE', path: '/rbac/delete' });
      assert.equal(r.status, 403);
      assert.equal(r.body.toString(), 'RBAC: access denied');
      assert.equal(r.headers['content-type'], 'text/plain');
      assert.equal(r.headers['content-length'], '19');
      assert.equal(r.headers.server, 'istio-envoy');
      assert.equal(echoRequestCount(), before, 'nothing reached an endpoint');
      const line = await eventually('access-log line', () => h.logged('"DELETE /rbac/delete HTTP/1.1"', mark)[0]);
      assert.match(line, / 403 - rbac_access_denied_matched_policy\[ns\[apps\]-policy\[deny-delete\]-rule\[0\]\] - "-" 0 19 /);
      assert.equal((await client.http1(h.authority('echo', 80), { method: 'GET', path: '/rbac/get' })).status, 200, 'other methods pass');
    });

    it('enforces ALLOW policies listed on the waypoint itself, by path prefix and by request header', async () => {
      const name = waypointResourceName('policy', WP_NS, 'allow-listed');
      h.source.set(TYPE_WAYPOINT, {
        ...policy(WP_NS, 'allow-listed', 'ALLOW', [
          { to: [{ operation: { paths: ['/public*'] } }] },
          { when: [{ key: 'request.headers[x-allow]', values: ['yes'] }] },
        ]),
        [waypointResourceName('waypoint')]: waypointSelf([`${WP_NS}/allow-listed`]),
      });
      await h.waitForConfig('waypoint ALLOW policy applied', (d) => d.waypoint?.policies?.includes(`${WP_NS}/allow-listed`) && d.policies.some((p: any) => p.name === 'allow-listed'));
      try {
        const get = (path: string, headers = {}) => client.http1(h.authority('echo', 80), { path, headers });
        assert.equal((await get('/public/page')).status, 200);
        const mark = h.accessLog.length;
        const denied = await get('/private');
        assert.equal(denied.status, 403);
        assert.equal(denied.body.toString(), 'RBAC: access denied');
        const line = await eventually('access-log line', () => h.logged('"GET /private HTTP/1.1"', mark)[0]);
        assert.match(line, / 403 - rbac_access_denied_matched_policy\[none\] /);
        assert.equal((await get('/private', { 'x-allow': 'yes' })).status, 200, 'the header rule allows');
        assert.equal((await get('/private', { 'x-allow': 'YES' })).status, 403, 'header values are case-sensitive');
        assert.equal((await get('/public/../private')).status, 403, 'paths are matched after normalization');
        assert.equal((await get('/public/%2E%2E/private')).status, 403, '%2E counts as a dot');
        // A policy on the waypoint applies to every Service bound to it.
        assert.equal((await client.http1(h.authority('plain', 80), { path: '/private' })).status, 403);
      } finally {
        h.source.set(TYPE_WAYPOINT, { [waypointResourceName('waypoint')]: waypointSelf() }, [name]);
        await h.waitForConfig('waypoint ALLOW policy removed', (d) => d.waypoint?.policies?.length === 0 && !d.policies.some((p: any) => p.name === 'allow-listed'));
      }
      assert.equal((await client.http1(h.authority('echo', 80), { path: '/private' })).status, 200);
    });

    it('does not enforce a dry-run DENY, and logs its shadow result', async () => {
      h.source.set(TYPE_WAYPOINT, { ...policy(APPS, 'dry-deny', 'DENY', [{}], true), ...boundService('echo', ['apps/deny-delete', 'apps/dry-deny']) });
      await h.waitForConfig('dry-run policy applied', (d) => d.policies.some((p: any) => p.name === 'dry-deny') && d.boundServices.some((s: any) => s.policies.includes('apps/dry-deny')));
      try {
        const mark = h.logLines.length;
        const r = await client.http1(h.authority('echo', 80), { path: '/dry-run' });
        assert.equal(r.status, 200);
        assert.ok(
          h.logLines.slice(mark).some((l) => l.includes('shadow deny engine: dry-run result denied')),
          `shadow result logged:\n${h.logLines.slice(mark).join('')}`,
        );
      } finally {
        h.source.set(TYPE_WAYPOINT, boundService('echo', ['apps/deny-delete']), [waypointResourceName('policy', APPS, 'dry-deny')]);
        await h.waitForConfig('dry-run policy removed', (d) => !d.policies.some((p: any) => p.name === 'dry-deny'));
      }
    });

    it('applies policy changes from xDS to the next request', async () => {
      const get = () => client.http1(h.authority('echo', 80), { path: '/blocked' });
      assert.equal((await get()).status, 200);
      h.source.set(TYPE_WAYPOINT, {
        ...policy(APPS, 'block-path', 'DENY', [{ to: [{ operation: { paths: ['/blocked'] } }] }]),
        ...boundService('echo', ['apps/deny-delete', 'apps/block-path']),
      });
      await h.waitForConfig('block-path applied', (d) => d.policies.some((p: any) => p.name === 'block-path') && d.boundServices.some((s: any) => s.policies.includes('apps/block-path')));
      assert.equal((await get()).status, 403, 'the first request after the update is denied');
      h.source.set(TYPE_WAYPOINT, policy(APPS, 'block-path', 'DENY', [{ to: [{ operation: { paths: ['/elsewhere'] } }] }]));
      await h.waitForConfig('block-path changed', (d) => d.policies.some((p: any) => p.name === 'block-path' && p.rules[0]?.to?.[0]?.operation?.paths?.[0] === '/elsewhere'));
      assert.equal((await get()).status, 200, 'a changed policy is recompiled');
      h.source.set(TYPE_WAYPOINT, boundService('echo', ['apps/deny-delete']), [waypointResourceName('policy', APPS, 'block-path')]);
      await h.waitForConfig('block-path removed', (d) => !d.policies.some((p: any) => p.name === 'block-path'));
    });
    it('denies every request to a Service bound to a policy that never arrived, warning once, until it arrives', async () => {
      // What the waypoint sees when the xDS client dropped a policy it could not decode (or the server one it could
      // not encode): the Service lists the id, no policy resource carries it. Skipping it would allow everything.
      const missing = `${APPS}/lost-allow`;
      h.source.set(TYPE_WAYPOINT, boundService('echo', ['apps/deny-delete', missing]));
      await h.waitForConfig('echo bound to a missing policy', (d) => d.boundServices.some((s: any) => s.policies.includes(missing)));
      const get = (path: string, method = 'GET') => client.http1(h.authority('echo', 80), { method, path });
      try {
        const before = echoRequestCount();
        const logMark = h.logLines.length;
        const mark = h.accessLog.length;
        for (const path of ['/lost/1', '/lost/2']) {
          const r = await get(path);
          assert.equal(r.status, 403);
          assert.equal(r.body.toString(), 'RBAC: access denied');
        }
        assert.equal((await get('/lost/delete', 'DELETE')).status, 403);
        assert.equal(echoRequestCount(), before, 'nothing reached an endpoint');
        for (const request of ['"GET /lost/1 HTTP/1.1"', '"DELETE /lost/delete HTTP/1.1"']) {
          const line = await eventually(`access-log line ${request}`, () => h.logged(request, mark)[0]);
          assert.match(line, / 403 - rbac_access_denied_matched_policy\[none\] /, 'no policy matched, not even the DENY one that is there');
        }
        assert.equal((await client.http1(h.authority('plain', 80), { path: '/lost/elsewhere' })).status, 200, 'other Services are not affected');
        const warnings = h.logLines.slice(logMark).filter((l) => l.includes(missing));
        assert.equal(warnings.length, 1, `one warning for the missing policy:\n${warnings.join('')}`);
        assert.match(warnings[0]!, /warn/i);

        h.source.set(TYPE_WAYPOINT, policy(APPS, 'lost-allow', 'ALLOW', [{ to: [{ operation: { paths: ['/arrived'] } }] }]));
        await h.waitForConfig('the missing policy arrived', (d) => d.policies.some((p: any) => p.name === 'lost-allow'));
        assert.equal((await get('/arrived')).status, 200, 'the policy, once there, is enforced as written');
        assert.equal((await get('/lost/3')).status, 403);
        assert.equal((await get('/arrived', 'DELETE')).status, 403, 'with the DENY policy next to it');
      } finally {
        h.source.set(TYPE_WAYPOINT, boundService('echo', ['apps/deny-delete']), [waypointResourceName('policy', APPS, 'lost-allow')]);
        await h.waitForConfig('echo back to its own policy', (d) => !d.policies.some((p: any) => p.name === 'lost-allow') && d.boundServices.some((s: any) => s.hostname === fqdn('echo') && s.policies.length === 1));
      }
      assert.equal((await get('/lost/4')).status, 200);
    });

    it('denies all traffic while the waypoint resource itself is missing', async () => {
      // Without it the waypoint does not know which policies apply to all of its traffic.
      h.source.set(TYPE_WAYPOINT, {}, [waypointResourceName('waypoint')]);
      await h.waitForConfig('waypoint resource removed', (d) => d.waypoint === null);
      try {
        const logMark = h.logLines.length;
        const mark = h.accessLog.length;
        assert.equal((await client.http1(h.authority('plain', 80), { path: '/no-waypoint' })).status, 403);
        assert.equal((await client.http1(h.authority('echo', 80), { path: '/no-waypoint' })).status, 403);
        const line = await eventually('access-log line', () => h.logged('"GET /no-waypoint HTTP/1.1"', mark)[0]);
        assert.match(line, / 403 - rbac_access_denied_matched_policy\[none\] /);
        const warnings = h.logLines.slice(logMark).filter((l) => l.includes('waypoint resource'));
        assert.equal(warnings.length, 1, `one warning for the missing waypoint resource:\n${warnings.join('')}`);
      } finally {
        h.source.set(TYPE_WAYPOINT, { [waypointResourceName('waypoint')]: waypointSelf() });
        await h.waitForConfig('waypoint resource back', (d) => d.waypoint !== null);
      }
      assert.equal((await client.http1(h.authority('plain', 80), { path: '/waypoint-back' })).status, 200);
    });
  });

  describe('local replies', () => {
    it('answers 503 "no healthy upstream" (UH) for a bound Service without a healthy endpoint', async () => {
      const mark = h.accessLog.length;
      const cBefore = h.backend('echoC').requests.length;
      const r = await client.http1(h.authority('empty', 80), { path: '/empty' });
      assert.equal(r.status, 503);
      assert.equal(r.body.toString(), 'no healthy upstream');
      assert.equal(r.headers['content-type'], 'text/plain');
      assert.equal(r.headers.server, 'istio-envoy');
      assert.equal(r.headers['x-envoy-upstream-service-time'], undefined, 'no upstream, no upstream time');
      assert.equal(h.backend('echoC').requests.length, cBefore);
      const line = await eventually('access-log line', () => h.logged('"GET /empty HTTP/1.1"', mark)[0]);
      assert.match(line, / 503 UH no_healthy_upstream - "-" 0 19 /);
    });

    it('retries a refused connection twice, then answers Envoy’s 503 with UF,URX', async () => {
      const mark = h.accessLog.length;
      const before = await h.scrape();
      const labels = { reporter: 'waypoint', destination_service: fqdn('refused'), response_code: '503', response_flags: 'UF,URX' };
      const r = await client.http1(h.authority('refused', 80), { path: '/refused' });
      assert.equal(r.status, 503);
      assert.equal(r.headers['content-type'], 'text/plain');
      assert.equal(r.headers.server, 'istio-envoy');
      const line = await eventually('access-log line', () => h.logged('"GET /refused HTTP/1.1"', mark)[0]);
      assert.match(
        line,
        / 503 UF,URX upstream_reset_before_response_started\{remote_connection_failure,delayed_connect_error:_Connection_refused\} - "delayed connect error: Connection refused" /,
      );
      assert.equal(metricSum(await h.scrape(), 'istio_requests_total', labels) - metricSum(before, 'istio_requests_total', labels), 1);
      // Envoy says the last of several attempts failed (router.cc: `retried and the latest ` when the request was retried).
      assert.equal(r.body.toString(), REFUSED_BODY);
    });

    it('dials a failing HBONE endpoint three times for HTTP, once for gRPC', async () => {
      const be = h.backend('resetA');
      const mark = h.accessLog.length;
      const before = be.connects.length;
      const r = await client.http1(h.authority('reset', 80), { path: '/reset' });
      assert.equal(r.status, 503);
      assert.ok(r.body.toString().startsWith('upstream connect error or disconnect/reset before headers.'), r.body.toString());
      assert.equal(be.connects.length - before, 3, 'one attempt and two retries');
      for (const c of be.connects.slice(before)) assert.equal(c.srcIdentity, WAYPOINT_ID);
      const line = await eventually('access-log line', () => h.logged('"GET /reset HTTP/1.1"', mark)[0]);
      assert.match(line, / 503 UF,URX upstream_reset_before_response_started\{/);

      const session = await client.h2session(h.authority('reset', 81));
      try {
        const grpcBefore = be.connects.length;
        const g = await MeshClient.h2request(
          session,
          { ':method': 'POST', ':path': '/test.Echo/Say', ':authority': `${fqdn('reset')}:81`, 'content-type': 'application/grpc', te: 'trailers' },
          grpcFrame(Buffer.from('x')),
        );
        assert.equal(be.connects.length - grpcBefore, 1, 'gRPC requests are not retried');
        assert.equal(g.status, 200);
        assert.ok(g.endedWithHeaders, 'trailers-only');
        assert.equal(g.headers['grpc-status'], '14', '503 maps to UNAVAILABLE');
        assert.match(String(g.headers['grpc-message']), /^upstream connect error or disconnect\/reset before headers\. reset reason: /);
        const gline = await eventually('gRPC access-log line', () => h.logged('"POST /test.Echo/Say HTTP/2"', mark).find((l) => l.includes(`${fqdn('reset')}:81`)));
        assert.match(gline, / 200 UF upstream_reset_before_response_started\{/, 'one attempt: UF without URX');
      } finally {
        session.close();
      }
    });
  });

  describe('CONNECT admission', () => {
    it('refuses CONNECTs that are not for a bound Service port, and keeps serving other streams', async () => {
      const tcp = await client.tunnel(h.authority('tcp', 9000));
      tcp.write('before');
      assert.equal((await readBytes(tcp, 6)).toString(), 'before');

      const refused = async (authority: string) =>
        assert.rejects(client.tunnel(authority), (e: Error) => {
          assert.ok(e instanceof HboneStatusError, `${authority}: ${e.message}`);
          assert.notEqual(e.status, 200);
          return true;
        });
      await refused(h.authority('unbound', 80));
      await refused(`${h.ip(VIP.echo)}:8443`);
      await refused(`${fqdn('echo')}:80`);
      await refused(`${h.ip(HOST.echoA)}:8080`); // a workload address: this waypoint is for Services only
      await refused(`${h.ip(250)}:80`); // nobody

      tcp.write('after');
      assert.equal((await readBytes(tcp, 5)).toString(), 'after', 'the open stream still relays');
      tcp.end();
      const rest = await drain(tcp);
      assert.equal(rest.data.toString(), '[eof]');
      assert.equal((await client.http1(h.authority('echo', 80), { path: '/after-refusals' })).status, 200, 'the same HBONE connection still works');
    });
  });

  describe('TCP', () => {
    it('relays bytes both ways with half-close', async () => {
      const before = h.backend('tcpA').tcpConnections;
      const s = await client.tunnel(h.authority('tcp', 9000));
      const data = randomBytes(256 * 1024);
      s.write(data);
      assert.ok((await readBytes(s, data.length)).equals(data));
      s.end(); // our FIN: the endpoint answers after it, on the still-open other direction
      const rest = await drain(s);
      assert.equal(rest.data.toString(), '[eof]');
      assert.equal(rest.ended, true);
      assert.equal(h.backend('tcpA').tcpConnections - before, 1);
    });

    it('moves the TCP byte counters while the connection is open', async () => {
      const labels = { reporter: 'waypoint', source_workload: 'sleep', destination_service: fqdn('tcp'), request_protocol: 'tcp' };
      const base = await h.scrape();
      const value = (text: string, name: string) => metricSum(text, name, labels) - metricSum(base, name, labels);
      const s = await client.tunnel(h.authority('tcp', 9000));
      s.write(Buffer.alloc(1000, 1));
      await readBytes(s, 1000);
      let now = await h.scrape();
      assert.equal(value(now, 'istio_tcp_received_bytes_total'), 1000);
      assert.equal(value(now, 'istio_tcp_sent_bytes_total'), 1000);
      assert.equal(value(now, 'istio_tcp_connections_opened_total'), 1);
      assert.equal(value(now, 'istio_tcp_connections_closed_total'), 0);
      s.write(Buffer.alloc(500, 2));
      await readBytes(s, 500);
      now = await h.scrape();
      assert.equal(value(now, 'istio_tcp_received_bytes_total'), 1500);
      assert.equal(value(now, 'istio_tcp_sent_bytes_total'), 1500);
      const sets = metricLabelSets(now, 'istio_tcp_sent_bytes_total', labels);
      assert.ok(
        sets.some((l) => l.includes(`source_principal="${CLIENT_ID}"`) && l.includes(`destination_principal="spiffe://cluster.local/ns/apps/sa/tcp"`) && l.includes('connection_security_policy="mutual_tls"')),
        sets.join('\n'),
      );
      s.end();
      await drain(s);
      await eventually('connection counted closed', async () => value(await h.scrape(), 'istio_tcp_connections_closed_total') === 1);
      now = await h.scrape();
      assert.equal(value(now, 'istio_tcp_sent_bytes_total'), 1505, 'the bytes after our FIN count too');
      assert.equal(value(now, 'istio_tcp_connections_opened_total'), 1);
    });

    it('closes a connection a TCP DENY policy matches, without reaching the endpoint', async () => {
      h.source.set(TYPE_WAYPOINT, {
        ...policy(APPS, 'tcp-deny', 'DENY', [{ from: [{ source: { principals: ['cluster.local/ns/client/sa/sleep'] } }] }]),
        ...boundService('tcp', ['apps/tcp-deny']),
      });
      await h.waitForConfig('tcp-deny applied', (d) => d.policies.some((p: any) => p.name === 'tcp-deny') && d.boundServices.some((s: any) => s.policies.includes('apps/tcp-deny')));
      const be = h.backend('tcpA');
      const before = { connects: be.connects.length, tcp: be.tcpConnections };
      try {
        let result: { data: Buffer } | undefined;
        try {
          const s = await client.tunnel(h.authority('tcp', 9000));
          s.write('let me in');
          result = await drain(s);
        } catch (e) {
          // Refusing the CONNECT itself would close it too.
          assert.ok(e instanceof HboneStatusError, (e as Error).message);
        }
        assert.equal(result?.data.length ?? 0, 0, 'no byte came back');
        assert.equal(be.connects.length, before.connects, 'no CONNECT to the endpoint');
        assert.equal(be.tcpConnections, before.tcp);
      } finally {
        h.source.set(TYPE_WAYPOINT, boundService('tcp'), [waypointResourceName('policy', APPS, 'tcp-deny')]);
        await h.waitForConfig('tcp-deny removed', (d) => !d.policies.some((p: any) => p.name === 'tcp-deny'));
      }
      const s = await client.tunnel(h.authority('tcp', 9000));
      s.end('ok');
      assert.equal((await drain(s)).data.toString(), 'ok[eof]');
    });

    it('gives no HTTP treatment to HTTP bytes on a TCP port', async () => {
      const s = await client.tunnel(h.authority('tcp', 9000));
      const request = `GET / HTTP/1.1\r\nHost: ${fqdn('tcp')}\r\n\r\n`;
      s.end(request);
      assert.equal((await drain(s)).data.toString(), `${request}[eof]`);
    });
  });

  describe('protocol sniffing', () => {
    it('gives HTTP treatment to HTTP/1.1 on an UNSPECIFIED port', async () => {
      const mark = h.accessLog.length;
      const r = await client.http1(h.authority('sniff', 7000), { path: '/sniffed' });
      assert.equal(r.status, 200);
      assert.equal(r.headers.server, 'istio-envoy');
      assert.match(String(r.headers['x-envoy-upstream-service-time']), /^\d+$/);
      const seen = h.backend('sniffA').requests.at(-1)!;
      assert.equal(seen.url, '/sniffed');
      assert.equal(seen.headers['x-forwarded-proto'], 'http');
      const line = await eventually('access-log line', () => h.logged('"GET /sniffed HTTP/1.1"', mark)[0]);
      assert.ok(line.includes(` inbound-vip|7000|http|${fqdn('sniff')} `), line);
    });

    it('recognises the HTTP/2 preface on an UNSPECIFIED port and talks h2 upstream', async () => {
      const session = await client.h2session(h.authority('sniff', 7002));
      try {
        const r = await MeshClient.h2request(session, { ':method': 'GET', ':path': '/sniffed-h2', ':authority': `${fqdn('sniff')}:7002` });
        assert.equal(r.status, 200);
        assert.equal(r.headers.server, 'istio-envoy');
        assert.equal(r.body.toString(), 'h2 hello from sniff-a\n');
        const seen = h.backend('sniffA').requests.at(-1)!;
        assert.equal(seen.url, '/sniffed-h2');
        assert.equal(seen.httpVersion, '2.0', 'sniffed ports keep the downstream protocol');
      } finally {
        session.close();
      }
    });

    it('relays other bytes on an UNSPECIFIED port as TCP', async () => {
      const before = h.backend('sniffA').tcpConnections;
      const s = await client.tunnel(h.authority('sniff', 7001));
      const payload = '\x16\x03\x01 hello, not HTTP\r\n';
      s.write(payload, 'latin1');
      assert.equal((await readBytes(s, payload.length)).toString('latin1'), payload);
      s.end();
      assert.equal((await drain(s)).data.toString(), '[eof]');
      assert.equal(h.backend('sniffA').tcpConnections - before, 1);
    });
  });

  describe('telemetry', () => {
    it('counts the request in istio_requests_total with the peers’ labels and writes Istio’s access-log line', async () => {
      const labels = {
        reporter: 'waypoint',
        source_workload: 'sleep',
        source_canonical_service: 'sleep',
        source_canonical_revision: 'v1',
        source_workload_namespace: 'client',
        source_principal: CLIENT_ID,
        source_cluster: 'Kubernetes',
        destination_workload_namespace: APPS,
        destination_principal: ECHO_ID,
        destination_canonical_service: 'echo',
        destination_service: fqdn('echo'),
        destination_service_name: 'echo',
        destination_service_namespace: APPS,
        destination_cluster: 'Kubernetes',
        request_protocol: 'http',
        response_code: '200',
        grpc_response_status: '',
        response_flags: '-',
        connection_security_policy: 'mutual_tls',
      };
      const before = await h.scrape();
      const mark = h.accessLog.length;
      const r = await client.http1(h.authority('echo', 80), { path: '/telemetry?q=1', headers: { 'x-request-id': 'telemetry-probe', 'user-agent': 'probe/1.0' } });
      assert.equal(r.status, 200);
      const after = await h.scrape();
      assert.equal(metricSum(after, 'istio_requests_total', labels) - metricSum(before, 'istio_requests_total', labels), 1);
      assert.equal(metricSum(after, 'istio_request_duration_milliseconds_count', labels) - metricSum(before, 'istio_request_duration_milliseconds_count', labels), 1);
      const served = String(r.headers['x-backend']);
      assert.ok(metricLabelSets(after, 'istio_requests_total', { ...labels, destination_workload: served }).length === 1, `a series for ${served}`);
      // Envoy's label order (reporter first, connection_security_policy last).
      const set = metricLabelSets(after, 'istio_requests_total', { ...labels, destination_workload: served })[0]!;
      assert.match(set, /^reporter="waypoint",source_workload="sleep",source_canonical_service="sleep",.*,connection_security_policy="mutual_tls"$/);

      const line = await eventually('access-log line', () => h.logged('"GET /telemetry?q=1 HTTP/1.1"', mark)[0]);
      const ip = served === 'echo-a' ? h.ip(HOST.echoA) : h.ip(HOST.echoB);
      const re = new RegExp(
        String.raw`^\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\] "GET /telemetry\?q=1 HTTP/1\.1" 200 - via_upstream - "-" 0 ${r.body.length} \d+ \d+ ` +
          String.raw`"-" "probe/1\.0" "telemetry-probe" "${fqdn('echo')}" "(envoy://connect_originate/)?${ip}:8080" ` +
          String.raw`inbound-vip\|80\|http\|${fqdn('echo')} \S+ ${h.ip(VIP.echo)}:80 ${h.ip(HOST.client)}:\d+ - default$`,
      );
      assert.match(line, re);
    });
  });

  describe('resilience', () => {
    it('reports not ready until configuration and certificate arrive, then ready', async () => {
      const late = await h.startWaypoint({ gatewayName: 'late', serviceAccount: 'late', podName: 'late-0', podAllowed: false });
      await eventually('the control plane refused the token', () => h.cpLog.has('authentication failure'));
      const notReady = await httpGet(late.ports.status, '/healthz/ready');
      assert.equal(notReady.status, 500);
      assert.equal(notReady.body, 'not ready, pending: certificate, xds\n');
      h.livePods.add(`${WP_NS}/late-0`);
      await eventually('late waypoint ready', async () => (await httpGet(late.ports.status, '/healthz/ready')).status === 200, { timeoutMs: 15_000 });
      assert.equal((await httpGet(late.ports.status, '/healthz/ready')).body, 'ready\n');
      await late.waypoint.close();
    });

    it('answers a malformed HTTP/1.1 request with 400 and keeps serving', async () => {
      for (const garbage of ['NOT A VALID REQUEST LINE\r\n\r\n', `GET / HTTP/1.1\r\nHost: ${fqdn('echo')}\r\nno colon here\r\n\r\n`, 'GET /\x00 HTTP/1.1\r\n\r\n']) {
        const s = await client.tunnel(h.authority('echo', 80));
        s.write(garbage, 'latin1');
        const reply = await drain(s);
        assert.match(reply.data.toString('latin1'), /^HTTP\/1\.1 400 /, `reply to ${JSON.stringify(garbage)}`);
      }
      assert.equal((await client.http1(h.authority('echo', 80), { path: '/after-garbage' })).status, 200);
    });

    it('survives HTTP/2 garbage inside a tunnel, closing that tunnel, and non-TLS bytes on the HBONE port', async () => {
      const preface = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
      const emptySettings = Buffer.from([0, 0, 0, 0x4, 0, 0, 0, 0, 0]);
      const cases: Record<string, Buffer> = {
        'SETTINGS on stream 1': Buffer.from([0, 0, 0, 0x4, 0, 0, 0, 0, 1]),
        'HEADERS with an undecodable HPACK block': Buffer.concat([emptySettings, Buffer.from([0, 0, 8, 0x1, 0x5, 0, 0, 0, 1]), Buffer.alloc(8, 0xff)]),
        'a frame over the maximum frame size': Buffer.from([0xff, 0xff, 0xff, 0x0, 0, 0, 0, 0, 1]),
        'no frame at all': Buffer.from('not a frame, just text after the preface'),
      };
      const left: string[] = [];
      for (const [what, bytes] of Object.entries(cases)) {
        const s = await client.tunnel(h.authority('grpc', 50051));
        s.write(Buffer.concat([preface, bytes]));
        // Envoy answers a connection error with GOAWAY and closes the connection, so the CONNECT stream ends.
        const done = await within(3000, drain(s));
        if (done === undefined) {
          left.push(what);
          s.destroy();
        }
      }
      // Plain bytes straight at the HBONE listener.
      await new Promise<void>((resolve) => {
        const sock = net.connect({ host: '127.0.0.1', port: h.ports.hbone }, () => sock.end('GET / HTTP/1.1\r\n\r\n'));
        sock.on('error', () => resolve());
        sock.on('close', () => resolve());
        sock.resume();
      });
      const session = await client.h2session(h.authority('grpc', 50051));
      try {
        const r = await MeshClient.h2request(session, { ':method': 'GET', ':path': '/after-garbage', ':authority': `${fqdn('grpc')}:50051` });
        assert.equal(r.status, 200);
      } finally {
        session.close();
      }
      const fresh = await MeshClient.dial(h);
      try {
        assert.equal((await fresh.http1(h.authority('echo', 80), { path: '/fresh-connection' })).status, 200);
      } finally {
        fresh.close();
      }
      assert.deepEqual(left, [], 'tunnels the waypoint left open after a connection-level HTTP/2 error');
    });

    it('keeps serving with its last configuration when the control plane goes away', async () => {
      await h.stopControlPlane();
      assert.equal((await client.http1(h.authority('echo', 80), { path: '/cp-down' })).status, 200);
      assert.equal((await client.http1(h.authority('echo', 80), { method: 'DELETE', path: '/cp-down' })).status, 403, 'policies still enforced');
      const s = await client.tunnel(h.authority('tcp', 9000));
      s.end('still');
      assert.equal((await drain(s)).data.toString(), 'still[eof]');
      const fresh = await MeshClient.dial(h);
      try {
        assert.equal((await fresh.http1(h.authority('plain', 80), { path: '/cp-down-new-connection' })).status, 200, 'new HBONE connections still accepted');
      } finally {
        fresh.close();
      }
      assert.equal((await httpGet(h.ports.status, '/healthz/ready')).status, 200, 'still ready');
    });
  });
});
