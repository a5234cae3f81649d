// GRPCRoutes attached to Services (GAMMA) as istiod translates them for waypoints (conversion.go convertGRPCRoute,
// createGRPCURIMatch, createGRPCHeadersMatch, buildGRPCDestination) and orders them with the Service's HTTPRoutes
// (controller.go merges both kinds' VirtualServices per host; sortHTTPRoutes). Cases follow istio/istio
// pilot/pkg/config/kube/gateway/testdata grpc.yaml and http-grpc-same-host.yaml, with a Service parent instead of a
// Gateway, then the same through the ambient index.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Condition, GRPCRoute, HTTPRoute, Service } from '../../src/api/types.js';
import { AmbientIndex, type AmbientChange, type ObjectStatus } from '../../src/model/ambient.js';
import { orderServiceRoutes, serviceRoutes, translateGRPCRoute, translateHTTPRoute, type RouteContext } from '../../src/model/routes.js';
import { ConfigStore } from '../../src/model/store.js';
import { TYPE_WAYPOINT, type WaypointResource, type WaypointRoute } from '../../src/xds/types.js';
import { parseYaml, WAYPOINT_MESH } from './helpers.js';

const WAYPOINT_LABELS = { 'istio.io/use-waypoint': 'waypoint' };
const ECHO = 'Service/default/echo';

function service(namespace: string, name: string, labels: Record<string, string> = {}): Service {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace, labels }, spec: { ports: [{ name: 'grpc', port: 9090 }] } };
}

const ctx: RouteContext = {
  domainSuffix: 'cluster.local',
  service: (ns, name) => [service('default', 'echo', WAYPOINT_LABELS), service('default', 'httpbin'), service('default', 'grpcbin')].find((s) => s.metadata.namespace === ns && s.metadata.name === name),
  serviceEntry: () => undefined,
  namespace: () => undefined,
};

function grpcRoute(rules: string, name = 'grpc', creationTimestamp = '2026-01-01T00:00:00Z'): GRPCRoute {
  return parseYaml(`
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: ${name}, namespace: default, generation: 2, creationTimestamp: "${creationTimestamp}"}
spec:
  parentRefs: [{group: "", kind: Service, name: echo}]
  rules: ${rules}
`)[0] as GRPCRoute;
}

/** istiod's default route retry policy, which every route without a retry stanza carries. */
const DEFAULT_RETRY = { attempts: 2, codes: [], backoffMs: 0, perTryTimeoutMs: 0 };

const condition = (type: string, status: boolean, reason: string, message: string): Condition => ({ type, status: status ? 'True' : 'False', reason, message, observedGeneration: 2 });

/** A route's path and header matches in short form, to compare orders. */
function brief(r: WaypointRoute): string {
  const m = r.match!;
  const extra = [m.method, ...m.headers.map((h) => `h:${h.name}`), ...m.queryParams.map((q) => `q:${q.name}`)].filter(Boolean);
  return `${r.route}#${r.rule} ${m.path!.type} ${m.path!.value}${extra.length ? ` ${extra.join(',')}` : ''}`;
}

describe('GRPCRoute translation (convertGRPCRoute)', () => {
  it('testdata/grpc.yaml: a service prefix with a header match and a header filter, a method regex; named as HTTPRoute rules', () => {
    const t = translateGRPCRoute(
      grpcRoute(`
  - matches:
    - method: {service: foo}
      headers: [{name: my-header, value: some-value, type: Exact}]
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier: {add: [{name: my-added-header, value: added-value}], remove: [my-removed-header]}
    backendRefs: [{name: httpbin, port: 80}]
  - matches: [{method: {type: RegularExpression, method: bar}}]
    backendRefs: [{name: httpbin, port: 80}]
`),
      ctx,
    );
    const backends = [{ hostname: 'httpbin.default.svc.cluster.local', namespace: 'default', port: 80, weight: 1, invalid: false }];
    assert.deepEqual(t.services.get(ECHO), [
      {
        route: 'default/grpc',
        rule: 0,
        name: 'default.grpc.0',
        port: 0,
        // istiod's prefix "/foo/", as Envoy gets it for a gateway-semantics route (path_separated_prefix "/foo").
        match: { path: { type: 'PREFIX', value: '/foo' }, headers: [{ name: 'my-header', value: 'some-value', regex: false }], queryParams: [], method: '' },
        requestHeaders: { set: [], add: [{ name: 'my-added-header', value: 'added-value' }], remove: ['my-removed-header'] },
        backends,
        directStatus: 0,
        retry: DEFAULT_RETRY,
      },
      {
        route: 'default/grpc',
        rule: 1,
        name: 'default.grpc.1',
        port: 0,
        match: { path: { type: 'REGEX', value: '/[^/]+/bar' }, headers: [], queryParams: [], method: '' },
        backends,
        directStatus: 0,
        retry: DEFAULT_RETRY,
      },
    ]);
    assert.deepEqual(t.parents[0]!.conditions.slice(0, 2), [condition('Accepted', true, 'Accepted', 'Route was valid'), condition('ResolvedRefs', true, 'ResolvedRefs', 'All references resolved')]);
  });

  it('createGRPCURIMatch: Exact service/method, service, method; RegularExpression likewise; no method: every path; no method match (gRPC is POST, istiod matches no method)', () => {
    const t = translateGRPCRoute(
      grpcRoute(`
  - name: methods
    matches:
    - method: {service: helloworld.Greeter, method: SayHello}
    - method: {type: Exact, service: helloworld.Greeter}
    - method: {method: SayHello}
    - method: {type: RegularExpression, service: "helloworld\\\\..*", method: "Say.*"}
    - method: {type: RegularExpression, service: "helloworld\\\\..*"}
    - method: {type: RegularExpression, method: "Say.*"}
    - headers: [{name: X-Tenant, type: RegularExpression, value: "a|b"}]
    backendRefs: [{name: grpcbin, port: 9090}]
  - backendRefs: [{name: grpcbin, port: 9090}]
`),
      ctx,
    );
    const routes = t.services.get(ECHO)!;
    assert.deepEqual(
      routes.map((r) => [r.name, r.match]),
      [
        ['methods', { path: { type: 'EXACT', value: '/helloworld.Greeter/SayHello' }, headers: [], queryParams: [], method: '' }],
        ['methods', { path: { type: 'PREFIX', value: '/helloworld.Greeter' }, headers: [], queryParams: [], method: '' }],
        ['methods', { path: { type: 'REGEX', value: '/[^/]+/SayHello' }, headers: [], queryParams: [], method: '' }],
        ['methods', { path: { type: 'REGEX', value: '/helloworld\\..*/Say.*' }, headers: [], queryParams: [], method: '' }],
        ['methods', { path: { type: 'REGEX', value: '/helloworld\\..*/.+' }, headers: [], queryParams: [], method: '' }],
        ['methods', { path: { type: 'REGEX', value: '/[^/]+/Say.*' }, headers: [], queryParams: [], method: '' }],
        ['methods', { path: { type: 'PREFIX', value: '/' }, headers: [{ name: 'x-tenant', value: 'a|b', regex: true }], queryParams: [], method: '' }],
        ['default.grpc.1', { path: { type: 'PREFIX', value: '/' }, headers: [], queryParams: [], method: '' }],
      ],
    );
    // What istiod sorts by: the URI as it wrote it ("/helloworld.Greeter/" is 20 bytes), none for the header-only
    // match, and a rule without matches after everything.
    assert.deepEqual(
      t.precedence.get(ECHO)!.map((p) => [p.uriRank, p.uriLength]),
      [
        [3, 28],
        [2, 20],
        [1, 15],
        [1, 21],
        [1, 18],
        [1, 12],
        [-1, 0],
        [-2, 0],
      ],
    );
  });

  it('no backendRefs, or only weight 0 ones: a direct 500 (grpcWeightSum); a missing backend: invalid, ResolvedRefs False/BackendNotFound', () => {
    const t = translateGRPCRoute(grpcRoute('[{matches: [{method: {service: a}}]}, {matches: [{method: {service: b}}], backendRefs: [{name: nowhere, port: 80, weight: 0}]}, {backendRefs: [{name: nowhere, port: 80}]}]'), ctx);
    assert.deepEqual(
      t.services.get(ECHO)!.map((r) => [r.match!.path!.value, r.directStatus, r.backends.map((b) => [b.hostname, b.invalid])]),
      [
        ['/a', 500, []],
        ['/b', 500, []],
        ['/', 0, [['nowhere.default.svc.cluster.local', true]]],
      ],
    );
    assert.deepEqual(t.parents[0]!.conditions[1], condition('ResolvedRefs', false, 'BackendNotFound', 'backend(nowhere.default.svc.cluster.local) not found'));
  });

  it('ResponseHeaderModifier on the rule, RequestHeaderModifier on a backend (buildGRPCDestination)', () => {
    const r = translateGRPCRoute(
      grpcRoute(`
  - filters: [{type: ResponseHeaderModifier, responseHeaderModifier: {set: [{name: X-Served-By, value: grpc}]}}]
    backendRefs: [{name: grpcbin, port: 9090, filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: X-Backend, value: grpcbin}]}}]}]
`),
      ctx,
    ).services.get(ECHO)![0]!;
    assert.deepEqual(r.responseHeaders, { set: [{ name: 'x-served-by', value: 'grpc' }], add: [], remove: [] });
    assert.deepEqual(r.backends[0]!.requestHeaders, { set: [{ name: 'x-backend', value: 'grpcbin' }], add: [], remove: [] });
  });

  it('RequestMirror: the mirror as istiod builds it; a mirror backend that does not resolve is fatal for a GRPCRoute', () => {
    let t = translateGRPCRoute(grpcRoute('[{filters: [{type: RequestMirror, requestMirror: {backendRef: {name: httpbin, port: 80}, percent: 25}}], backendRefs: [{name: httpbin, port: 80}]}]'), ctx);
    assert.deepEqual(t.services.get(ECHO)![0]!.mirrors, [{ backend: { hostname: 'httpbin.default.svc.cluster.local', namespace: 'default', port: 80, weight: 1, invalid: false }, percent: 25 }]);
    t = translateGRPCRoute(grpcRoute('[{filters: [{type: RequestMirror, requestMirror: {backendRef: {name: nosuch, port: 80}}}], backendRefs: [{name: httpbin, port: 80}]}]'), ctx);
    assert.equal(t.services.size, 0);
    assert.deepEqual(t.parents[0]!.conditions[1], condition('ResolvedRefs', false, 'BackendNotFound', 'backend(nosuch.default.svc.cluster.local) not found'));
  });

  for (const type of ['ExtensionRef', 'RequestRedirect', 'URLRewrite', 'CORS']) {
    it(`${type} (not a GRPCRoute filter istiod converts): nothing programmed, ResolvedRefs False/InvalidFilter`, () => {
      const t = translateGRPCRoute(grpcRoute(`[{filters: [{type: ${type}}], backendRefs: [{name: grpcbin, port: 9090}]}]`), ctx);
      assert.equal(t.services.size, 0);
      assert.deepEqual(t.parents[0]!.conditions[0], condition('Accepted', true, 'Accepted', 'Route was valid'));
      assert.deepEqual(t.parents[0]!.conditions[1], condition('ResolvedRefs', false, 'InvalidFilter', `unsupported filter type "${type}"`));
    });
  }

  it('parents as for HTTPRoutes: one status entry per Service parent, a port restricts the routes, a missing Service is NoMatchingParent', () => {
    const r = grpcRoute('[{backendRefs: [{name: grpcbin, port: 9090}]}]');
    r.spec.parentRefs = [{ group: '', kind: 'Service', name: 'echo', port: 9090 }, { group: '', kind: 'Service', name: 'ghost' }, { name: 'gateway', namespace: 'istio-system' }];
    const t = translateGRPCRoute(r, ctx);
    assert.deepEqual(
      t.parents.map((p) => [p.parentRef.name, p.controllerName, p.conditions.map((c) => `${c.type}=${c.status}`)]),
      [
        ['ghost', 'istio.io/gateway-controller', ['Accepted=False', 'ResolvedRefs=True', 'ResolvedWaypoints=True']],
        ['echo', 'istio.io/gateway-controller', ['Accepted=True', 'ResolvedRefs=True', 'ResolvedWaypoints=True']],
      ],
    );
    assert.deepEqual([...t.services.keys()], [ECHO]);
    assert.deepEqual(t.services.get(ECHO)!.map((x) => x.port), [9090]);
  });
});

describe('GRPCRoute order, alone and with HTTPRoutes (mergeHTTPRoutes over both kinds, sortHTTPRoutes)', () => {
  const httpRoute = (name: string, creationTimestamp: string, rules: string): HTTPRoute =>
    parseYaml(`
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: ${name}, namespace: default, creationTimestamp: "${creationTimestamp}"}
spec:
  parentRefs: [{group: "", kind: Service, name: echo}]
  rules: ${rules}
`)[0] as HTTPRoute;
  const order = (...routes: (HTTPRoute | GRPCRoute)[]) =>
    orderServiceRoutes(routes.map((r) => serviceRoutes(r, r.kind === 'HTTPRoute' ? translateHTTPRoute(r, ctx) : translateGRPCRoute(r, ctx), ECHO)!)).map(brief);

  it('testdata/http-grpc-same-host.yaml: the gRPC service prefix (longer) before the HTTP prefix', () => {
    const http = httpRoute('http', '2026-01-01T00:00:00Z', '[{matches: [{path: {type: PathPrefix, value: /api}}], backendRefs: [{name: httpbin, port: 80}]}]');
    const grpc = grpcRoute('[{matches: [{method: {service: foo.FooService, type: Exact}}], backendRefs: [{name: grpcbin, port: 9090}]}]');
    const expected = ['default/grpc#0 PREFIX /foo.FooService', 'default/http#0 PREFIX /api'];
    assert.deepEqual(order(http, grpc), expected);
    assert.deepEqual(order(grpc, http), expected);
  });

  it('a service prefix counts its trailing "/" as istiod wrote it: "/abc/" ties "/abcd" and the older route goes first', () => {
    const http = (ts: string) => httpRoute('http', ts, '[{matches: [{path: {value: /abcd}}], backendRefs: [{name: httpbin, port: 80}]}]');
    const grpc = (ts: string) => grpcRoute('[{matches: [{method: {service: abc}}], backendRefs: [{name: grpcbin, port: 9090}]}]', 'grpc', ts);
    assert.deepEqual(order(http('2026-01-02T00:00:00Z'), grpc('2026-01-01T00:00:00Z')), ['default/grpc#0 PREFIX /abc', 'default/http#0 PREFIX /abcd']);
    assert.deepEqual(order(http('2026-01-01T00:00:00Z'), grpc('2026-01-02T00:00:00Z')), ['default/http#0 PREFIX /abcd', 'default/grpc#0 PREFIX /abc']);
  });

  it('a match without a method (no URI) after every path match; a rule without matches last, also for HTTPRoutes', () => {
    const grpc = grpcRoute('[{backendRefs: [{name: grpcbin, port: 9090}]}, {matches: [{headers: [{name: x-tenant, value: a}]}], backendRefs: [{name: grpcbin, port: 9090}]}]', 'grpc', '2026-01-01T00:00:00Z');
    const http = httpRoute('http', '2026-01-02T00:00:00Z', '[{backendRefs: [{name: httpbin, port: 80}]}, {matches: [{path: {type: RegularExpression, value: "/x.*"}}], backendRefs: [{name: httpbin, port: 80}]}]');
    assert.deepEqual(order(grpc, http), ['default/http#1 REGEX /x.*', 'default/grpc#1 PREFIX / h:x-tenant', 'default/grpc#0 PREFIX /', 'default/http#0 PREFIX /']);
  });

  it('with a parent port, a rule without matches is a match without a URI (augmentPortMatch): ordered among those', () => {
    const older = grpcRoute('[{backendRefs: [{name: grpcbin, port: 9090}]}]', 'older', '2026-01-01T00:00:00Z');
    const newer = grpcRoute('[{matches: [{}], backendRefs: [{name: grpcbin, port: 9090}]}]', 'newer', '2026-01-02T00:00:00Z');
    for (const r of [older, newer]) r.spec.parentRefs = [{ group: '', kind: 'Service', name: 'echo', port: 9090 }];
    assert.deepEqual(order(newer, older), ['default/older#0 PREFIX /', 'default/newer#0 PREFIX /']);
    older.spec.parentRefs = [{ group: '', kind: 'Service', name: 'echo' }];
    assert.deepEqual(order(newer, older), ['default/newer#0 PREFIX /', 'default/older#0 PREFIX /']);
  });

  it('an HTTPRoute and a GRPCRoute of the same age, namespace and name: the HTTPRoute first, whatever the input order', () => {
    // Equal precedence: the GRPCRoute's exact path and the HTTPRoute's, both one header match.
    const http = httpRoute('same', '2026-01-01T00:00:00Z', '[{matches: [{path: {type: Exact, value: /a/Bc}, headers: [{name: x, value: "1"}]}], backendRefs: [{name: httpbin, port: 80}]}]');
    const grpc = grpcRoute('[{matches: [{method: {service: a, method: Bd}, headers: [{name: x, value: "1"}]}], backendRefs: [{name: grpcbin, port: 9090}]}]', 'same');
    const expected = ['default/same#0 EXACT /a/Bc h:x', 'default/same#0 EXACT /a/Bd h:x'];
    assert.deepEqual(order(http, grpc), expected);
    assert.deepEqual(order(grpc, http), expected);
  });
});

// ---- through the ambient index ---------------------------------------------------------------------------------------

const NOW = '2026-01-01T00:00:00Z';
const BASE = `
${WAYPOINT_MESH}---
apiVersion: v1
kind: Service
metadata: {name: greeter, namespace: shop, labels: {istio.io/use-waypoint: wp}}
spec: {clusterIP: 10.96.0.1, ports: [{name: grpc, port: 9090, appProtocol: grpc}]}
---
apiVersion: v1
kind: Service
metadata: {name: greeter-v2, namespace: shop}
spec: {clusterIP: 10.96.0.2, ports: [{name: grpc, port: 9090, appProtocol: grpc}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: health, namespace: shop, creationTimestamp: "2026-01-01T00:00:00Z"}
spec:
  parentRefs: [{group: "", kind: Service, name: greeter}]
  rules: [{matches: [{path: {type: Exact, value: /healthz}}], backendRefs: [{name: greeter, port: 9090}]}]
`;
const ROUTE = `
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: canary, namespace: shop, generation: 1, creationTimestamp: "2026-01-01T00:00:00Z"}
spec:
  parentRefs: [{group: "", kind: Service, name: greeter}]
  rules:
  - matches: [{method: {service: helloworld.Greeter}}]
    backendRefs: [{name: greeter-v2, port: 9090}]
`;
const GREETER = 'shop/wp/service/shop/greeter.shop.svc.cluster.local';

function setup(yaml: string) {
  const store = new ConfigStore();
  store.apply(parseYaml(yaml));
  const index = new AmbientIndex(store, {}, () => new Date(NOW));
  const changes: AmbientChange[] = [];
  const statuses: ObjectStatus[][] = [];
  index.onChange((c) => changes.push(c));
  index.onStatusChange((s) => statuses.push(s));
  const routes = () => (index.snapshot(TYPE_WAYPOINT).get(GREETER) as WaypointResource | undefined)?.service?.routes.map(brief);
  const routeStatus = () => index.statuses().find((s) => s.kind === 'GRPCRoute');
  return { store, index, changes, statuses, routes, routeStatus };
}

describe('GRPCRoutes in the ambient index', () => {
  it('merges the routes with the Service’s HTTPRoutes for its waypoint and writes status.parents', () => {
    const t = setup(BASE + '---' + ROUTE);
    assert.deepEqual(t.routes(), ['shop/health#0 EXACT /healthz', 'shop/canary#0 PREFIX /helloworld.Greeter']);
    const at = { observedGeneration: 1, lastTransitionTime: NOW };
    assert.deepEqual(t.routeStatus(), {
      kind: 'GRPCRoute',
      namespace: 'shop',
      name: 'canary',
      conditions: [],
      parents: [
        {
          parentRef: { group: '', kind: 'Service', name: 'greeter' },
          controllerName: 'istio.io/gateway-controller',
          conditions: [
            { type: 'Accepted', status: 'True', reason: 'Accepted', message: 'Route was valid', ...at },
            { type: 'ResolvedRefs', status: 'True', reason: 'ResolvedRefs', message: 'All references resolved', ...at },
            { type: 'ResolvedWaypoints', status: 'True', reason: 'ResolvedWaypoints', message: 'All waypoints resolved', ...at },
          ],
        },
      ],
    });
    t.index.close();
  });

  it('an edit re-sends exactly the parent Service’s resource; a backend vanishing changes ResolvedRefs', () => {
    const t = setup(BASE + '---' + ROUTE);
    t.store.apply(parseYaml(ROUTE.replace('service: helloworld.Greeter', 'service: helloworld.Greeter, method: SayHello')));
    assert.deepEqual(
      t.changes.map((c) => [c.typeUrl, [...c.upserted.keys()], c.removed]),
      [[TYPE_WAYPOINT, [GREETER], []]],
    );
    assert.deepEqual(t.routes(), ['shop/canary#0 EXACT /helloworld.Greeter/SayHello', 'shop/health#0 EXACT /healthz']);
    assert.equal(t.statuses.length, 0, 'the status did not change');

    t.store.remove(['Service/shop/greeter-v2']);
    assert.equal(t.routeStatus()?.parents?.[0]?.conditions[1]!.reason, 'BackendNotFound');
    t.index.close();
  });

  it('deleting the route clears its status and leaves the HTTPRoute’s routes', () => {
    const t = setup(BASE + '---' + ROUTE);
    t.store.remove(['GRPCRoute/shop/canary']);
    assert.deepEqual(t.routes(), ['shop/health#0 EXACT /healthz']);
    assert.equal(t.routeStatus(), undefined);
    assert.deepEqual(t.statuses.at(-1), [{ kind: 'GRPCRoute', namespace: 'shop', name: 'canary', conditions: [] }]);
    t.index.close();
  });
});
