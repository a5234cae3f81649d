// The waypoint end to end in one local cluster (2 nodes): `ambit waypoint apply --enroll-namespace --wait` deploys
// it and the Gateway becomes Programmed; traffic to bound Services crosses it (client ztunnel → waypoint → server
// ztunnel, both hops HBONE) with L7 authorization, Istio's metrics (scraped by a real Prometheus and queried with the
// user guide's PromQL) and access log, for HTTP, gRPC and TCP; `istio.io/use-waypoint: none` opts a Service out; a
// ServiceEntry bound to the waypoint gets its policy and VirtualService there on the way out of the mesh; a canary
// waypoint takes its weight's share of new connections; a
// rollout restart of the waypoint costs no more than the requests in flight; deleting the Gateway removes what was
// deployed and traffic goes direct again. One cluster serves every assertion; tests run in order.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { TCP_ROUND_TRIP, eventually, hostSnapshot } from './local-harness.js';
import { MeshCluster, samples } from './mesh-harness.js';

const NS = (name: string) => `apiVersion: v1\nkind: Namespace\nmetadata: {name: ${name}, labels: {istio.io/dataplane-mode: ambient}}\n`;
const SA = (name: string, ns: string) => `apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: ${name}, namespace: ${ns}}\n`;
const SLEEPER = (name: string, ns: string, node: string, sa: string) => `
apiVersion: v1
kind: Pod
metadata: {name: ${name}, namespace: ${ns}}
spec:
  nodeName: ${node}
  serviceAccountName: ${sa}
  containers:
  - {name: main, command: [sleep, infinity]}
`;
const ECHO = (name: string, node: string) => `
apiVersion: v1
kind: Pod
metadata: {name: ${name}, namespace: shop, labels: {app: ${name}}}
spec:
  nodeName: ${node}
  serviceAccountName: ${name}
  containers:
  - name: echo
    command: [ambit-echo, --http-port, "8080", --tcp-port, "9090", --grpc-port, "7070"]
    env:
    - name: POD_NAME
      valueFrom: {fieldRef: {fieldPath: metadata.name}}
    ports:
    - {name: http, containerPort: 8080}
    - {name: tcp-echo, containerPort: 9090}
    - {name: grpc, containerPort: 7070}
    readinessProbe:
      httpGet: {path: /healthz, port: 8080}
      periodSeconds: 1
`;
const SERVICE = (name: string, labels = '{}') => `
apiVersion: v1
kind: Service
metadata: {name: ${name}, namespace: shop, labels: ${labels}}
spec:
  selector: {app: ${name}}
  ports:
  - {name: http, port: 80, targetPort: http}
  - {name: tcp-echo, port: 9090, targetPort: tcp-echo}
  - {name: grpc, port: 7070, targetPort: grpc}
`;

const APP = [
  NS('shop'),
  NS('visitors'),
  SA('server', 'shop'),
  SA('direct', 'shop'),
  SA('client', 'shop'),
  SA('guest', 'visitors'),
  ECHO('server', 'node-2'),
  ECHO('direct', 'node-2'),
  SERVICE('server'),
  // Opted out of the namespace's waypoint.
  SERVICE('direct', '{istio.io/use-waypoint: none}'),
  SLEEPER('client', 'shop', 'node-1', 'client'),
  SLEEPER('guest', 'visitors', 'node-1', 'guest'),
].join('---\n');

const ID = (ns: string, sa: string) => `spiffe://cluster.local/ns/${ns}/sa/${sa}`;
const POLICY = (name: string, target: string, action: string, rules: string) => `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ${name}, namespace: shop}
spec:
  targetRefs:
  - ${target}
  action: ${action}
  rules:
${rules}`;
const TO_SERVICE = `{kind: Service, group: "", name: server}`;
const TO_GATEWAY = `{kind: Gateway, group: gateway.networking.k8s.io, name: waypoint}`;

/** One HTTP request from a pod with curl: `<status> <body>`. */
const CURL = (url: string, ...args: string[]) => ['curl', '-s', '-w', '\n%{http_code}', '--max-time', '5', ...args, url];

describe('waypoint in the local cluster', () => {
  const c = new MeshCluster();
  let hostBefore: ReturnType<typeof hostSnapshot>;
  let prometheus: ChildProcess | undefined;
  const promDir = mkdtempSync(join(tmpdir(), 'ambit-prom-'));

  const curl = async (from: string, url: string, ...args: string[]) => {
    const r = await c.cli(['exec', from, '--', ...CURL(url, ...args)], undefined, 30_000);
    const nl = r.stdout.lastIndexOf('\n');
    return { status: Number(r.stdout.slice(nl + 1)), body: r.stdout.slice(0, Math.max(0, nl)), stderr: r.stderr };
  };
  const expectStatus = (from: string, url: string, status: number, ...args: string[]) =>
    eventually(`${from} → ${url} ${args.join(' ')} answers ${status}`, async () => ((await curl(from, url, ...args)).status === status) || undefined, 20_000);
  const waypointPod = async (gateway = 'waypoint') => (await c.pods('shop')).find((p) => p.labels['gateway.networking.k8s.io/gateway-name'] === gateway && p.ready);
  const waypointMetrics = async (gateway = 'waypoint') => {
    const pod = await waypointPod(gateway);
    assert.ok(pod, 'a ready waypoint pod');
    const r = await c.cli(['exec', `shop/${pod.name}`, '--', 'curl', '-s', 'http://127.0.0.1:15020/stats/prometheus'], undefined, 30_000);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout;
  };
  const requestsTo = async (service: string, code: string, gateway = 'waypoint') =>
    samples(await waypointMetrics(gateway), 'istio_requests_total', { reporter: 'waypoint', destination_service: `${service}.shop.svc.cluster.local`, response_code: code }).reduce((a, b) => a + b, 0);

  before(async () => {
    hostBefore = hostSnapshot();
    await c.ok(['up', '-f', c.manifest('app.yaml', APP)]);
    c.recordNetns();
  });
  // A failed test must not leave its policies to fail the next ones.
  afterEach(async () => {
    const r = await c.cli(['get', 'authorizationpolicies', '-n', 'shop', '-o', 'json']);
    const names = r.code === 0 ? (JSON.parse(r.stdout) as { items: { metadata: { name: string } }[] }).items.map((i) => i.metadata.name) : [];
    if (names.length) await c.cli(['delete', 'authorizationpolicies', ...names, '-n', 'shop']);
  });
  after(async () => {
    prometheus?.kill('SIGKILL');
    rmSync(promDir, { recursive: true, force: true });
    await c.destroy();
    assert.deepEqual(hostSnapshot(), hostBefore, "the host's interfaces and nft tables must be untouched");
  });

  it('deploys a waypoint for a Gateway of class istio-waypoint and reports it Programmed', async () => {
    const out = await c.ok(['waypoint', 'apply', '-n', 'shop', '--enroll-namespace', '--wait']);
    assert.match(out, /✅ waypoint shop\/waypoint applied/);
    assert.match(out, /✅ waypoint shop\/waypoint is ready!/);
    assert.match(out, /✅ namespace shop labeled with "istio.io\/use-waypoint: waypoint"/);
    const gtw = await c.ok(['get', 'gateway', '-n', 'shop']);
    assert.match(gtw, /^NAME\s+CLASS\s+ADDRESS\s+PROGRAMMED\s+AGE\n/);
    assert.match(gtw, /\nwaypoint\s+istio-waypoint\s+10\.96\.\d+\.\d+\s+True\s+/);
    const g = JSON.parse(await c.ok(['get', 'gateway', 'waypoint', '-n', 'shop', '-o', 'json'])) as { metadata: { uid: string }; status: { addresses: { type: string; value: string }[]; conditions: { type: string; message: string }[] } };
    assert.deepEqual(g.status.addresses.map((a) => a.type), ['IPAddress', 'Hostname']);
    assert.equal(g.status.addresses[1]!.value, 'waypoint.shop.svc.cluster.local');
    assert.equal(g.status.conditions.find((x) => x.type === 'Programmed')?.message, 'Resource programmed, assigned to service(s) waypoint.shop.svc.cluster.local:15008');
    // What istiod deploys, owned by the Gateway, and the pods found by the label the user guide greps for.
    for (const kind of ['deployment', 'service', 'serviceaccount']) {
      const o = JSON.parse(await c.ok(['get', kind, 'waypoint', '-n', 'shop', '-o', 'json'])) as { metadata: { ownerReferences?: { kind: string; uid: string }[] } };
      assert.deepEqual(o.metadata.ownerReferences?.map((r) => [r.kind, r.uid]), [['Gateway', g.metadata.uid]], kind);
    }
    const pods = await c.ok(['get', 'pods', '-n', 'shop', '-l', 'gateway.networking.k8s.io/gateway-name=waypoint']);
    assert.match(pods, /\nwaypoint-[a-z0-9]+-[a-z0-9]+\s+1\/1\s+Running/);
    assert.doesNotMatch(pods, /server|direct/);
    const list = await c.ok(['waypoint', 'list', '-n', 'shop']);
    assert.match(list, /waypoint\s+default\s+none\s+True/);
    // The Service is bound, the opted-out one is not.
    const svc = JSON.parse(await c.ok(['get', 'service', 'server', '-n', 'shop', '-o', 'json'])) as { status?: { conditions?: { type: string; status: string; message: string }[] } };
    assert.deepEqual(svc.status?.conditions?.map((x) => [x.type, x.status, x.message]), [['istio.io/WaypointBound', 'True', 'Successfully attached to waypoint shop/waypoint']]);
    const direct = JSON.parse(await c.ok(['get', 'service', 'direct', '-n', 'shop', '-o', 'json'])) as { status?: { conditions?: unknown[] } };
    assert.equal(direct.status?.conditions, undefined);
  });

  it('sends bound Service traffic through the waypoint and opted-out traffic direct', async () => {
    await expectStatus('shop/client', 'http://server.shop/', 200);
    const before = await requestsTo('server', '200');
    const r = await curl('shop/client', 'http://server.shop/hello', '-H', 'x-request-id: e2e-1');
    assert.equal(r.status, 200, r.stderr);
    // The waypoint's request headers reached the application.
    assert.match(r.body, /RequestHeader=X-Forwarded-Proto:http/i);
    assert.match(r.body, /RequestHeader=X-Request-Id:e2e-1/i);
    assert.equal(await requestsTo('server', '200'), before + 1);
    // The server's ztunnel saw the waypoint's identity, not the client's.
    await eventually('inbound access log with the waypoint identity', async () =>
      (await c.ztunnelLog('node-2')).split('\n').some((l) => l.includes('direction="inbound"') && l.includes(`src.identity="${ID('shop', 'waypoint')}"`) && l.includes('dst.service="server.shop.svc.cluster.local"')) || undefined,
    );
    // The opted-out Service is reached directly: the waypoint counts nothing for it.
    assert.equal((await curl('shop/client', 'http://direct.shop/')).status, 200);
    assert.equal(await requestsTo('direct', '200'), 0);
    await eventually('direct inbound with the client identity', async () =>
      (await c.ztunnelLog('node-2')).split('\n').some((l) => l.includes('direction="inbound"') && l.includes(`src.identity="${ID('shop', 'client')}"`) && l.includes('dst.service="direct.shop.svc.cluster.local"')) || undefined,
    );
    // One access-log line per request, in Istio's format.
    const pod = (await waypointPod())!;
    const log = await c.ok(['logs', `shop/${pod.name}`]);
    assert.match(log, /\[\S+Z\] "GET \/hello HTTP\/1\.1" 200 - via_upstream - "-" 0 \d+ \d+ \d+ "-" "curl\/[^"]+" "e2e-1" "server\.shop" "envoy:\/\/connect_originate\/10\.244\.2\.\d+:8080" inbound-vip\|80\|http\|server\.shop\.svc\.cluster\.local envoy:\/\/internal_client_address\/ /);
  });

  it('enforces L7 AuthorizationPolicies on the Service and on the Gateway', async () => {
    await c.apply(
      'allow.yaml',
      POLICY('allow-client-reads', TO_SERVICE, 'ALLOW', `  - from:\n    - source: {principals: ["cluster.local/ns/shop/sa/client"]}\n    to:\n    - operation: {methods: ["GET"], paths: ["/public*"]}\n`),
    );
    await expectStatus('shop/client', 'http://server.shop/public/x', 200);
    const post = await curl('shop/client', 'http://server.shop/public/x', '-X', 'POST', '-d', 'x');
    assert.equal(post.status, 403);
    assert.equal(post.body, 'RBAC: access denied');
    assert.equal((await curl('shop/client', 'http://server.shop/private')).status, 403, 'path');
    assert.equal((await curl('visitors/guest', 'http://server.shop/public/x')).status, 403, 'principal');
    // Path normalization: a dot segment does not escape the allowed prefix.
    assert.equal((await curl('shop/client', 'http://server.shop/public/%2e%2e/private', '--path-as-is')).status, 403);
    const ap = await eventually('WaypointAccepted on the policy', async () => {
      const o = JSON.parse(await c.ok(['get', 'ap', 'allow-client-reads', '-n', 'shop', '-o', 'json'])) as { status?: { conditions?: { type: string; status: string; message: string }[] } };
      return o.status?.conditions?.find((x) => x.type === 'WaypointAccepted');
    });
    assert.deepEqual([ap.status, ap.message], ['True', 'bound to shop/waypoint']);
    // DENY on the Gateway by header applies to all of the waypoint's traffic.
    await c.apply('deny.yaml', POLICY('deny-flagged', TO_GATEWAY, 'DENY', `  - when:\n    - key: request.headers[x-block]\n      values: ["yes"]\n`));
    await expectStatus('shop/client', 'http://server.shop/public/x', 403, '-H', 'x-block: yes');
    assert.equal((await curl('shop/client', 'http://server.shop/public/x', '-H', 'x-block: no')).status, 200);
    const pod = (await waypointPod())!;
    assert.match(await c.ok(['logs', `shop/${pod.name}`]), /403 - rbac_access_denied_matched_policy\[ns\[shop\]-policy\[deny-flagged\]-rule\[0\]\]/);
    await c.ok(['delete', 'authorizationpolicy', 'allow-client-reads', 'deny-flagged', '-n', 'shop']);
    await expectStatus('shop/client', 'http://server.shop/private', 200);
  });

  it('carries gRPC and TCP through the waypoint', async () => {
    const grpc = await c.cli(['exec', 'shop/client', '--', 'ambit-client', 'grpc://server.shop:7070', '-n', '3'], undefined, 30_000);
    assert.equal(grpc.code, 0, grpc.stdout + grpc.stderr);
    await eventually('grpc request metrics', async () =>
      samples(await waypointMetrics(), 'istio_requests_total', { reporter: 'waypoint', request_protocol: 'grpc', grpc_response_status: '0' }).some((v) => v >= 3) || undefined,
    );
    const tcp = await c.exec('shop/client', TCP_ROUND_TRIP, 'server.shop', '9090');
    assert.equal(tcp.code, 0, tcp.stderr);
    assert.equal(tcp.stdout.trim(), 'ping');
    const m = await waypointMetrics();
    assert.ok(samples(m, 'istio_tcp_connections_opened_total', { reporter: 'waypoint', destination_service: 'server.shop.svc.cluster.local' }).some((v) => v >= 1), m.slice(0, 2000));
    assert.ok(samples(m, 'istio_tcp_received_bytes_total', { reporter: 'waypoint', destination_service: 'server.shop.svc.cluster.local' }).some((v) => v > 0));
  });

  it("answers the user guide's PromQL from a real Prometheus scrape", async () => {
    const pod = (await waypointPod())!;
    const ip = (await c.pods('shop')).find((p) => p.name === pod.name)!.ip;
    const port = 19090;
    writeFileSync(
      join(promDir, 'prometheus.yml'),
      `global: {scrape_interval: 1s}\nscrape_configs:\n- job_name: waypoint\n  metrics_path: /stats/prometheus\n  static_configs:\n  - targets: ["${ip}:15020"]\n`,
    );
    // Prometheus runs in node-1's namespace, from where pod addresses are routed.
    prometheus = spawn('nsenter', [`--net=${c.netns('node-1')}`, '--', 'prometheus', `--config.file=${join(promDir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(promDir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`], {
      stdio: 'ignore',
    });
    const query = `sum(rate(istio_requests_total{reporter="waypoint"}[5m])) by (destination_service, response_code)`;
    const loop = c.spawnExec('shop/client', `setInterval(() => fetch('http://server.shop/').then((r) => r.text()).catch(() => {}), 100)`);
    try {
      const result = await eventually('PromQL result', async () => {
        const r = await c.inNode('node-1', `fetch('http://127.0.0.1:${port}/api/v1/query?query=' + encodeURIComponent(process.argv[1])).then((r) => r.text()).then((t) => process.stdout.write(t))`, query);
        const body = r.code === 0 ? (JSON.parse(r.stdout) as { data?: { result?: { metric: Record<string, string>; value: [number, string] }[] } }) : undefined;
        return body?.data?.result?.find((s) => s.metric.destination_service === 'server.shop.svc.cluster.local' && s.metric.response_code === '200' && Number(s.value[1]) > 0);
      }, 60_000);
      assert.ok(Number(result.value[1]) > 0);
    } finally {
      loop.child.kill();
      prometheus.kill('SIGTERM');
    }
  });

  it('routes by HTTPRoute at the waypoint and reports the route’s status as istiod does', async () => {
    await c.apply('route.yaml', `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: server-v2, namespace: shop}
spec:
  parentRefs:
  - {group: "", kind: Service, name: server, port: 80}
  rules:
  - matches:
    - path: {type: PathPrefix, value: /v2}
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier:
        set: [{name: x-routed, value: v2}]
    backendRefs:
    - {name: direct, port: 80}
  - matches:
    - path: {type: PathPrefix, value: /moved}
    filters:
    - type: RequestRedirect
      requestRedirect: {hostname: example.com, statusCode: 301}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: no-parent, namespace: shop}
spec:
  parentRefs:
  - {group: "", kind: Service, name: nosuch}
  rules:
  - backendRefs:
    - {name: server, port: 80}
`);
    const answered = async (path: string) => {
      const r = await curl('shop/client', `http://server.shop${path}`, '-H', 'accept: application/json');
      return r.status === 200 ? (JSON.parse(r.body) as { pod: string; headers: Record<string, string> }) : undefined;
    };
    try {
      const routed = await eventually('a /v2 request answered by the route’s backend', async () => {
        const body = await answered('/v2/items');
        return body?.pod === 'direct' ? body : undefined;
      });
      assert.equal(routed.headers['x-routed'], 'v2');
      // The waypoint answers the redirect itself (curl -D - prints the response head).
      const moved = await curl('shop/client', 'http://server.shop/moved/here', '-D', '-');
      assert.equal(moved.status, 301);
      assert.match(moved.body, /^location: http:\/\/example\.com\/moved\/here\r?$/m);
      // With a route on the port there is no fallback to the Service: Envoy's 404 (NR).
      assert.equal((await curl('shop/client', 'http://server.shop/v1/items')).status, 404);
      type Parent = { parentRef: { name: string }; controllerName: string; conditions: { type: string; status: string; message: string }[] };
      const parents = async (name: string) =>
        (JSON.parse(await c.ok(['get', 'httproute', name, '-n', 'shop', '-o', 'json'])) as { status?: { parents?: Parent[] } }).status?.parents ?? [];
      const accepted = await eventually('server-v2 status', async () => {
        const p = (await parents('server-v2'))[0];
        return p?.conditions.length ? p : undefined;
      });
      assert.equal(accepted.controllerName, 'istio.io/gateway-controller');
      assert.deepEqual(
        accepted.conditions.map((x) => [x.type, x.status, x.message]),
        [
          ['Accepted', 'True', 'Route was valid'],
          ['ResolvedRefs', 'True', 'All references resolved'],
          ['ResolvedWaypoints', 'True', 'All waypoints resolved'],
        ],
      );
      const orphan = await eventually('no-parent status', async () => (await parents('no-parent'))[0]?.conditions.find((x) => x.type === 'Accepted'));
      assert.deepEqual([orphan.status, orphan.message], ['False', 'parent service: "nosuch" not found']);
    } finally {
      await c.ok(['delete', 'httproute', 'server-v2', 'no-parent', '-n', 'shop']);
    }
    await eventually('/v2 back to the Service itself', async () => ((await answered('/v2/items'))?.pod === 'server') || undefined);
  });

  it('routes gRPC by GRPCRoute method match at the waypoint', async () => {
    await c.apply('grpcroute.yaml', `
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: echo-to-direct, namespace: shop}
spec:
  parentRefs:
  - {group: "", kind: Service, name: server, port: 7070}
  rules:
  - matches:
    - method: {service: ambit.echo.v1.EchoService, method: Echo}
    backendRefs:
    - {name: direct, port: 7070}
`);
    try {
      const toDirect = () =>
        waypointMetrics().then((m) => samples(m, 'istio_requests_total', { reporter: 'waypoint', destination_service: 'direct.shop.svc.cluster.local', request_protocol: 'grpc', grpc_response_status: '0' }).reduce((a, b) => a + b, 0));
      const before = await toDirect();
      await eventually('gRPC calls routed to direct', async () => {
        const r = await c.cli(['exec', 'shop/client', '--', 'ambit-client', 'grpc://server.shop:7070', '-n', '3'], undefined, 30_000);
        return (r.code === 0 && (await toDirect()) >= before + 3) || undefined;
      });
    } finally {
      await c.ok(['delete', 'grpcroute', 'echo-to-direct', '-n', 'shop']);
    }
  });

  it('routes by VirtualService at the waypoint: prefix match, headers, direct response', async () => {
    await c.apply('vs.yaml', `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: server, namespace: shop}
spec:
  hosts: [server]
  http:
  - match: [{uri: {prefix: /vs}}]
    headers:
      request:
        set: {x-vs: "yes"}
    route:
    - destination: {host: direct, port: {number: 80}}
  - match: [{uri: {exact: /teapot}}]
    directResponse: {status: 418, body: {string: "short and stout"}}
  - route:
    - destination: {host: server, port: {number: 80}}
`);
    try {
      const routed = await eventually('a /vs request answered by direct', async () => {
        const r = await curl('shop/client', 'http://server.shop/vs/x', '-H', 'accept: application/json');
        const body = r.status === 200 ? (JSON.parse(r.body) as { pod: string; headers: Record<string, string> }) : undefined;
        return body?.pod === 'direct' ? body : undefined;
      });
      assert.equal(routed.headers['x-vs'], 'yes');
      const teapot = await curl('shop/client', 'http://server.shop/teapot');
      assert.deepEqual([teapot.status, teapot.body], [418, 'short and stout']);
      const rest = await curl('shop/client', 'http://server.shop/other', '-H', 'accept: application/json');
      assert.equal((JSON.parse(rest.body) as { pod: string }).pod, 'server', 'the catch-all route: the Service itself');
    } finally {
      await c.ok(['delete', 'virtualservice', 'server', '-n', 'shop']);
    }
  });

  it('takes traffic to a ServiceEntry bound to it: the entry\'s policy and VirtualService apply, then the endpoint outside the mesh', async () => {
    // An API outside the mesh: a pod in a namespace without the ambient label, reached by the entry's host name.
    await c.apply('outside.yaml', `
apiVersion: v1
kind: Namespace
metadata: {name: outside}
---
apiVersion: v1
kind: Pod
metadata: {name: api, namespace: outside}
spec:
  nodeName: node-2
  containers:
  - name: echo
    command: [ambit-echo, --http-port, "8080"]
    env:
    - name: POD_NAME
      valueFrom: {fieldRef: {fieldPath: metadata.name}}
    readinessProbe:
      httpGet: {path: /healthz, port: 8080}
      periodSeconds: 1
`);
    const api = await eventually('the api pod ready', async () => (await c.pods('outside')).find((p) => p.name === 'api' && p.ready && p.ip));
    await c.apply('entry.yaml', `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api, namespace: shop, labels: {istio.io/use-waypoint: waypoint}}
spec:
  hosts: [api.external.test]
  ports: [{number: 80, name: http, protocol: HTTP, targetPort: 8080}]
  resolution: STATIC
  endpoints: [{address: ${api.ip}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: api, namespace: shop}
spec:
  hosts: [api.external.test]
  http:
  - headers:
      request:
        set: {x-egress: waypoint}
    route:
    - destination: {host: api.external.test, port: {number: 80}}
---${POLICY('api-admin', '{kind: ServiceEntry, group: networking.istio.io, name: api}', 'DENY', '  - to:\n    - operation: {paths: [/admin]}\n')}`);
    try {
      const reached = await eventually('api.external.test answered by the api pod through the waypoint', async () => {
        const r = await curl('shop/client', 'http://api.external.test/v1', '-H', 'accept: application/json');
        const body = r.status === 200 ? (JSON.parse(r.body) as { pod: string; headers: Record<string, string> }) : undefined;
        return body?.pod === 'api' ? body : undefined;
      });
      assert.equal(reached.headers['x-egress'], 'waypoint', "the entry's VirtualService applied at the waypoint");
      const denied = await curl('shop/client', 'http://api.external.test/admin');
      assert.deepEqual([denied.status, denied.body], [403, 'RBAC: access denied']);
      const r = await c.cli(['get', 'authorizationpolicy', 'api-admin', '-n', 'shop', '-o', 'json']);
      const cond = (JSON.parse(r.stdout) as { status: { conditions: { type: string; status: string; message: string }[] } }).status.conditions.find((x) => x.type === 'WaypointAccepted');
      assert.deepEqual([cond?.status, cond?.message], ['True', 'bound to shop/waypoint']);
    } finally {
      await c.ok(['delete', 'virtualservice', 'api', '-n', 'shop']);
      await c.ok(['delete', 'serviceentry', 'api', '-n', 'shop']);
      await c.ok(['delete', 'namespace', 'outside']);
    }
  });

  it('splits new connections between the primary and a canary waypoint by the canary weight', async () => {
    await c.ok(['waypoint', 'apply', '-n', 'shop', '--name', 'canary', '--wait']);
    await c.apply('canary.yaml', SERVICE('server', '{istio.io/use-waypoint-canary: canary}').replace('labels: {istio.io/use-waypoint-canary: canary}}', 'labels: {istio.io/use-waypoint-canary: canary}, annotations: {istio.io/use-waypoint-canary-weight: "50"}}'));
    try {
      const before = { primary: await requestsTo('server', '200'), canary: await requestsTo('server', '200', 'canary') };
      // Each curl is a new connection; at 50 % both waypoints take some of 30 (all to one: 2 × 2^-30).
      await eventually('both waypoints serve server', async () => {
        for (let i = 0; i < 30; i++) assert.equal((await curl('shop/client', 'http://server.shop/')).status, 200);
        const primary = (await requestsTo('server', '200')) - before.primary;
        const canary = (await requestsTo('server', '200', 'canary')) - before.canary;
        return (primary > 0 && canary > 0) || undefined;
      });
      const svc = JSON.parse(await c.ok(['get', 'service', 'server', '-n', 'shop', '-o', 'json'])) as { status?: { conditions?: { type: string; status: string; message: string }[] } };
      assert.deepEqual(svc.status?.conditions?.map((x) => [x.type, x.status, x.message]), [['istio.io/WaypointBound', 'True', 'Successfully attached to waypoint shop/waypoint']]);
    } finally {
      await c.apply('server.yaml', SERVICE('server'));
      await c.ok(['waypoint', 'delete', 'canary', '-n', 'shop']);
    }
  });

  it('loses no more than the requests in flight when the waypoint is restarted', async () => {
    // Requests one after another for 25 s, then a summary line: covers the new pod's start and the old one's drain.
    const load = c.spawnExec('shop/client', `
      let ok = 0, failed = 0;
      const errors = [];
      const end = Date.now() + 25000;
      (async () => {
        while (Date.now() < end) {
          try { const r = await fetch('http://server.shop/', { signal: AbortSignal.timeout(5000) }); await r.text(); if (r.status === 200) ok++; else { failed++; errors.push(r.status); } }
          catch (e) { failed++; errors.push(String(e.cause ?? e)); }
          await new Promise((r) => setTimeout(r, 20));
        }
        console.log(JSON.stringify({ ok, failed, errors }));
      })();`);
    await eventually('load running', async () => (await requestsTo('server', '200')) > 0 || undefined);
    const old = (await waypointPod())!;
    // A rollout restart, as `kubectl rollout restart` does it: a new template annotation; the new pod serves before the old goes.
    const d = JSON.parse(await c.ok(['get', 'deployment', 'waypoint', '-n', 'shop', '-o', 'json'])) as { spec: { template: { metadata: { annotations?: Record<string, string> } } } } & Record<string, unknown>;
    d.spec.template.metadata.annotations = { ...d.spec.template.metadata.annotations, 'kubectl.kubernetes.io/restartedAt': new Date().toISOString() };
    delete d.status;
    await c.apply('restart.yaml', JSON.stringify(d));
    await eventually('a new waypoint pod serves and the old one is gone', async () => {
      const pods = (await c.pods('shop')).filter((p) => p.labels['gateway.networking.k8s.io/gateway-name'] === 'waypoint');
      return (pods.length === 1 && pods[0]!.name !== old.name && pods[0]!.ready) || undefined;
    }, 60_000);
    const result = await eventually('load result', async () => {
      const line = load.output().split('\n').find((l) => l.startsWith('{'));
      return line ? (JSON.parse(line) as { ok: number; failed: number }) : undefined;
    }, 40_000);
    assert.ok(result.ok > 50, `requests went through: ${JSON.stringify(result)}`);
    assert.ok(result.failed <= 1, `at most the one request in flight fails: ${JSON.stringify(result)}`);
  });

  it('removes what it deployed when the Gateway is deleted, and traffic goes direct again', async () => {
    await c.ok(['waypoint', 'delete', 'waypoint', '-n', 'shop']);
    await eventually('deployment, service and pods gone', async () => {
      const left = await Promise.all(['deployment', 'service', 'serviceaccount'].map((k) => c.cli(['get', k, 'waypoint', '-n', 'shop'])));
      const pods = (await c.pods('shop')).filter((p) => p.labels['gateway.networking.k8s.io/gateway-name'] === 'waypoint');
      return (left.every((r) => r.code !== 0) && pods.length === 0) || undefined;
    }, 60_000);
    await expectStatus('shop/client', 'http://server.shop/', 200);
    await eventually('direct inbound to server with the client identity', async () =>
      (await c.ztunnelLog('node-2')).split('\n').some((l) => l.includes('direction="inbound"') && l.includes(`src.identity="${ID('shop', 'client')}"`) && l.includes('dst.service="server.shop.svc.cluster.local"')) || undefined,
    );
    const svc = await eventually('WaypointBound says not ready', async () => {
      const o = JSON.parse(await c.ok(['get', 'service', 'server', '-n', 'shop', '-o', 'json'])) as { status?: { conditions?: { reason: string; message: string }[] } };
      return o.status?.conditions?.find((x) => x.reason === 'WaypointIsNotReady');
    });
    assert.equal(svc.message, 'waypoint "shop/waypoint" is not ready');
  });
});
