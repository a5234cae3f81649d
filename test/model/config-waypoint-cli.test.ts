// `ambit config waypoint` as a user runs it: the real CLI process, fixture files written here.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

// Only the Gateway: its Service and pods are the control plane's to create, and the view assumes they run.
const MESH = `
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {istio.io/dataplane-mode: ambient}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: wp, namespace: shop}
spec:
  gatewayClassName: istio-waypoint
  listeners: [{name: mesh, port: 15008, protocol: HBONE}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop, labels: {istio.io/use-waypoint: wp}}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80}, {name: grpc, port: 9090, appProtocol: grpc}]
---
apiVersion: v1
kind: Service
metadata: {name: web-v2, namespace: shop}
spec:
  selector: {app: web, version: v2}
  ports: [{name: http, port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: pods-only, namespace: shop, labels: {istio.io/use-waypoint: wp-workload}}
spec:
  ports: [{name: http, port: 80}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: wp-workload, namespace: shop, labels: {istio.io/waypoint-for: workload}}
spec:
  gatewayClassName: istio-waypoint
  listeners: [{name: mesh, port: 15008, protocol: HBONE}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: a-prefix, namespace: shop, generation: 3}
spec:
  parentRefs: [{group: "", kind: Service, name: web, port: 80}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /api}}]
    backendRefs: [{name: web, port: 80, weight: 90}, {name: web-v2, port: 80, weight: 10}]
    timeouts: {request: 5s}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: b-exact, namespace: shop}
spec:
  parentRefs: [{group: "", kind: Service, name: web, port: 80}]
  rules:
  - matches: [{path: {type: Exact, value: /api/v1/health}}]
    filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: X-Probe, value: "1"}]}}]
    backendRefs: [{name: web-v2, port: 80}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: rpc, namespace: shop}
spec:
  parentRefs: [{group: "", kind: Service, name: web, port: 9090}]
  rules:
  - matches: [{method: {service: shop.Cart, method: Get}}]
    backendRefs: [{name: web, port: 9090}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: elsewhere, namespace: shop}
spec:
  parentRefs: [{group: "", kind: Service, name: web-v2}]
  rules: [{backendRefs: [{name: web-v2, port: 80}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: web-get-only, namespace: shop}
spec:
  targetRefs: [{group: "", kind: Service, name: web}]
  action: ALLOW
  rules: [{to: [{operation: {methods: [GET]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: gateway-deny, namespace: shop}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: wp}]
  action: DENY
  rules: [{to: [{operation: {paths: [/admin]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ext-authz, namespace: shop}
spec:
  targetRefs: [{group: "", kind: Service, name: web}]
  action: CUSTOM
  provider: {name: opa}
  rules: [{}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: l4-only, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  rules: [{from: [{source: {namespaces: [shop]}}]}]
`;

const OTHER_GATEWAYS = `
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: ingress, namespace: shop}
spec:
  gatewayClassName: istio
  listeners: [{name: http, port: 80, protocol: HTTP}]
`;

let dir = '';
let mesh = '';
let others = '';
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'ambit-waypoint-cli-'));
  mesh = join(dir, 'mesh.yaml');
  others = join(dir, 'others.yaml');
  writeFileSync(mesh, MESH);
  writeFileSync(others, OTHER_GATEWAYS);
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** Condition timestamps are the clock's: left out to compare runs. */
function withoutTimes(v: unknown): unknown {
  return JSON.parse(JSON.stringify(v), (k, x: unknown) => (k === 'lastTransitionTime' ? undefined : x));
}

const RETRY = { attempts: 2, codes: [], backoffMs: 0, perTryTimeoutMs: 0 };
const ok = (type: string, reason: string, message: string) => ({ type, status: 'True', reason, message });

test('prints the waypoint, its bound Service with routes in evaluation order, its policies and their status', async () => {
  const r = await run(['config', 'waypoint', 'shop/wp', '-f', mesh]);
  assert.doesNotMatch(r.stderr, /: error: /);
  assert.equal(r.code, 0, r.stderr);
  const dump = withoutTimes(JSON.parse(r.stdout)) as Record<string, any>;
  assert.deepEqual(Object.keys(dump), ['waypoint', 'services', 'policies', 'serviceStatus', 'routeStatus', 'policyStatus']);
  assert.deepEqual(dump.waypoint, {
    name: 'wp',
    namespace: 'shop',
    hostname: 'wp.shop.svc.cluster.local',
    trustDomain: 'cluster.local',
    trafficType: 'SERVICE',
    policies: ['shop/gateway-deny'],
  });
  // Only the Service bound to this waypoint; pods-only names the other one.
  assert.equal(dump.services.length, 1);
  const web = dump.services[0];
  assert.deepEqual(
    { ...web, routes: undefined },
    {
      name: 'web',
      namespace: 'shop',
      hostname: 'web.shop.svc.cluster.local',
      ports: [
        { port: 80, name: 'http', protocol: 'HTTP' },
        { port: 9090, name: 'grpc', protocol: 'GRPC' },
      ],
      policies: ['shop/web-get-only'],
      routes: undefined,
    },
  );
  // istiod's order: exact paths (the longer first) before prefixes, whatever the file order or the names.
  assert.deepEqual(
    web.routes.map((x: { route: string }) => x.route),
    ['shop/b-exact', 'shop/rpc', 'shop/a-prefix'],
  );
  const [exact, rpc, prefix] = web.routes;
  assert.deepEqual(exact, {
    route: 'shop/b-exact',
    rule: 0,
    name: 'shop.b-exact.0',
    port: 80,
    match: { path: { type: 'EXACT', value: '/api/v1/health' }, headers: [], queryParams: [], method: '' },
    backends: [{ hostname: 'web-v2.shop.svc.cluster.local', namespace: 'shop', port: 80, weight: 1, invalid: false }],
    directStatus: 0,
    requestHeaders: { set: [{ name: 'x-probe', value: '1' }], add: [], remove: [] },
    retry: RETRY,
  });
  assert.deepEqual(rpc.match, { path: { type: 'EXACT', value: '/shop.Cart/Get' }, headers: [], queryParams: [], method: '' });
  assert.equal(rpc.port, 9090);
  assert.deepEqual(
    prefix.backends.map((b: { hostname: string; weight: number }) => [b.hostname, b.weight]),
    [
      ['web.shop.svc.cluster.local', 90],
      ['web-v2.shop.svc.cluster.local', 10],
    ],
  );
  assert.equal(prefix.timeoutMs, 5000);
  assert.deepEqual(prefix.match.path, { type: 'PREFIX', value: '/api' });

  // Sent: the Gateway's and the Service's policies, by name; CUSTOM is never sent, a selector policy is ztunnel's.
  assert.deepEqual(dump.policies, [
    { name: 'gateway-deny', namespace: 'shop', action: 'DENY', rules: [{ to: [{ operation: { paths: ['/admin'] } }] }], dryRun: false },
    { name: 'web-get-only', namespace: 'shop', action: 'ALLOW', rules: [{ to: [{ operation: { methods: ['GET'] } }] }], dryRun: false },
  ]);

  assert.deepEqual(dump.serviceStatus, [
    { namespace: 'shop', name: 'web', conditions: [ok('istio.io/WaypointBound', 'WaypointAccepted', 'Successfully attached to waypoint shop/wp')] },
  ]);
  // The routes whose parent is bound here (not `elsewhere`), with their parents' conditions.
  assert.deepEqual(
    dump.routeStatus.map((s: { kind: string; name: string }) => `${s.kind} ${s.name}`),
    ['GRPCRoute rpc', 'HTTPRoute a-prefix', 'HTTPRoute b-exact'],
  );
  assert.deepEqual(dump.routeStatus[1].parents, [
    {
      parentRef: { group: '', kind: 'Service', name: 'web', port: 80 },
      controllerName: 'istio.io/gateway-controller',
      conditions: [
        { ...ok('Accepted', 'Accepted', 'Route was valid'), observedGeneration: 3 },
        { ...ok('ResolvedRefs', 'ResolvedRefs', 'All references resolved'), observedGeneration: 3 },
        { ...ok('ResolvedWaypoints', 'ResolvedWaypoints', 'All waypoints resolved'), observedGeneration: 3 },
      ],
    },
  ]);
  const policyStatus = Object.fromEntries(dump.policyStatus.map((s: { name: string; conditions: { reason: string }[] }) => [s.name, s.conditions.map((c) => c.reason)]));
  assert.deepEqual(policyStatus, { 'ext-authz': ['UnsupportedValue'], 'gateway-deny': ['Accepted'], 'web-get-only': ['Accepted'] });
  assert.match(dump.policyStatus[2].conditions[0].message, /^bound to shop\/wp$/);
});

test('-o yaml prints the same document as YAML', async () => {
  const [json, yaml] = await Promise.all([run(['config', 'waypoint', 'shop/wp', '-f', mesh]), run(['config', 'waypoint', 'shop/wp', '-f', mesh, '-o', 'yaml'])]);
  assert.equal(yaml.code, 0);
  assert.deepEqual(withoutTimes(parse(yaml.stdout)), withoutTimes(JSON.parse(json.stdout)));
  assert.match(yaml.stdout, /^ {6}- route: shop\/b-exact$/m);
});

test('a Service that cannot bind is not sent; its condition says why', async () => {
  const r = await run(['config', 'waypoint', 'shop/wp-workload', '-f', mesh]);
  assert.equal(r.code, 0, r.stderr);
  const dump = withoutTimes(JSON.parse(r.stdout)) as Record<string, any>;
  assert.equal(dump.waypoint.trafficType, 'WORKLOAD');
  assert.deepEqual(dump.services, []);
  assert.deepEqual(dump.serviceStatus, [
    {
      namespace: 'shop',
      name: 'pods-only',
      conditions: [
        {
          type: 'istio.io/WaypointBound',
          status: 'False',
          reason: 'UnsupportedTrafficType',
          message: 'attempting to bind to traffic type "service" which the waypoint "shop/wp-workload" does not support',
        },
      ],
    },
  ]);
});

test('without NS/NAME: the only waypoint in the files', async () => {
  const only = join(dir, 'only.yaml');
  writeFileSync(only, MESH.split('---').filter((d) => !d.includes('wp-workload')).join('---'));
  const [implicit, named] = await Promise.all([run(['config', 'waypoint', '-f', only]), run(['config', 'waypoint', 'shop/wp', '-f', only])]);
  assert.equal(implicit.code, 0, implicit.stderr);
  assert.equal(JSON.parse(implicit.stdout).waypoint.name, 'wp');
  assert.deepEqual(withoutTimes(JSON.parse(implicit.stdout)), withoutTimes(JSON.parse(named.stdout)));
});

test('without NS/NAME and several waypoints: asks which, listing them', async () => {
  const r = await run(['config', 'waypoint', '-f', mesh]);
  assert.equal(r.code, 1);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /^error: several waypoints in the files, name one as NS\/NAME: shop\/wp, shop\/wp-workload$/m);
});

test('an unknown waypoint is an error naming it and listing the waypoints found', async () => {
  const missing = await run(['config', 'waypoint', 'shop/nope', '-f', mesh, '-f', others]);
  assert.equal(missing.code, 1);
  assert.equal(missing.stdout, '');
  assert.match(
    missing.stderr,
    /^error: unknown waypoint "shop\/nope": no Gateway shop\/nope in the files; waypoints \(Gateways of class istio-waypoint\) in the files: shop\/wp, shop\/wp-workload$/m,
  );
  const otherClass = await run(['config', 'waypoint', 'shop/ingress', '-f', mesh, '-f', others]);
  assert.equal(otherClass.code, 1);
  assert.match(otherClass.stderr, /^error: unknown waypoint "shop\/ingress": Gateway shop\/ingress is of class "istio", not istio-waypoint; .*: shop\/wp, shop\/wp-workload$/m);
  const none = await run(['config', 'waypoint', '-f', others]);
  assert.equal(none.code, 1);
  assert.match(none.stderr, /^error: no waypoint to show: the files hold no waypoint \(Gateway of class istio-waypoint\)$/m);
  const malformed = await run(['config', 'waypoint', 'wp', '-f', mesh]);
  assert.equal(malformed.code, 1);
  assert.match(malformed.stderr, /^error: waypoint "wp": expected NS\/NAME/m);
});

test('bad documents are refused with file:line:col as in config ztunnel; the rest is still printed, exit 1', async () => {
  const bad = join(dir, 'bad.yaml');
  writeFileSync(
    bad,
    [
      'apiVersion: security.istio.io/v1',
      'kind: AuthorizationPolicy',
      'metadata: {name: bad-action, namespace: shop}',
      'spec:',
      '  targetRefs: [{group: "", kind: Service, name: web}]',
      '  action: PERMIT',
      '',
    ].join('\n'),
  );
  const r = await run(['config', 'waypoint', 'shop/wp', '-f', mesh, '-f', bad]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`^${bad.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:6:\\d+: error: AuthorizationPolicy shop/bad-action: spec\\.action: `, 'm'));
  const dump = JSON.parse(r.stdout);
  assert.deepEqual(
    dump.policies.map((p: { name: string }) => p.name),
    ['gateway-deny', 'web-get-only'],
  );
});

test('an unknown output format or a missing path is refused as in config ztunnel', async () => {
  const format = await run(['config', 'waypoint', 'shop/wp', '-f', mesh, '-o', 'xml']);
  assert.equal(format.code, 1);
  assert.match(format.stderr, /unknown output format "xml" for -o\/--output \(expected one of: json, yaml\)/);
  assert.equal(format.stdout, '');
  const missing = await run(['config', 'waypoint', 'shop/wp', '-f', '/nonexistent/ambit-waypoint-cli.yaml']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /\/nonexistent\/ambit-waypoint-cli\.yaml: error: cannot read/);
});
