// HTTPRoutes attached to Services (GAMMA) as istiod translates them for waypoints, and the route status it writes.
// Cases follow istio/istio pilot/pkg/config/kube/gateway/testdata (route-precedence, mesh, invalid,
// valid-invalid-parent-ref, zero, serviceentry) translated into Ambit's waypoint route types, then the same through the ambient
// index: which waypoint resources a route change re-sends, and the status written.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Condition, GRPCRoute, HTTPRoute, Namespace, Service, ServiceEntry } from '../../src/api/types.js';
import { AmbientIndex, type AmbientChange, type ObjectStatus } from '../../src/model/ambient.js';
import { renderWaypointConfig } from '../../src/model/configdump.js';
import { orderServiceRoutes, routesForWaypoint, serviceRoutes, translateGRPCRoute, translateHTTPRoute, type RouteContext, type RouteParentStatus } from '../../src/model/routes.js';
import { ConfigStore } from '../../src/model/store.js';
import { TYPE_WAYPOINT, type WaypointResource, type WaypointRoute } from '../../src/xds/types.js';
import { parseYaml, WAYPOINT_MESH } from './helpers.js';

const MISSING_LABEL = 'istio.io/use-waypoint label missing from parent and parent namespace; in ambient mode, route will not be respected';

function service(namespace: string, name: string, labels: Record<string, string> = {}, ports = [{ name: 'http', port: 80 }]): Service {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace, labels }, spec: { ports } };
}

/** A cluster of Services, Namespaces and ServiceEntries to translate against. */
function context(services: Service[], namespaces: Namespace[] = [], entries: ServiceEntry[] = []): RouteContext {
  return {
    domainSuffix: 'cluster.local',
    service: (ns, name) => services.find((s) => s.metadata.namespace === ns && s.metadata.name === name),
    serviceEntry: (ns, name) => entries.find((e) => e.metadata.namespace === ns && e.metadata.name === name),
    namespace: (name) => namespaces.find((n) => n.metadata.name === name),
  };
}

function route(yaml: string): HTTPRoute {
  return parseYaml(yaml)[0] as HTTPRoute;
}

const condition = (type: string, status: boolean, reason: string, message: string): Condition => ({ type, status: status ? 'True' : 'False', reason, message });
const valid = (waypoints = 'All waypoints resolved') => [
  condition('Accepted', true, 'Accepted', 'Route was valid'),
  condition('ResolvedRefs', true, 'ResolvedRefs', 'All references resolved'),
  condition('ResolvedWaypoints', true, 'ResolvedWaypoints', waypoints),
];
const parent = (parentRef: RouteParentStatus['parentRef'], conditions = valid()): RouteParentStatus => ({ parentRef, controllerName: 'istio.io/gateway-controller', conditions });

/** A route's path, method, header and query matches in short form, to compare orders. */
function brief(r: WaypointRoute): string {
  const m = r.match!;
  const extra = [m.method, ...m.headers.map((h) => `h:${h.name}`), ...m.queryParams.map((q) => `q:${q.name}`)].filter(Boolean);
  return `${r.route}#${r.rule} ${m.path!.type} ${m.path!.value}${extra.length ? ` ${extra.join(',')}` : ''}`;
}

const WAYPOINT_LABELS = { 'istio.io/use-waypoint': 'waypoint' };

describe('HTTPRoute matches (createURIMatch, createHeadersMatch, createQueryParamsMatch, createMethodMatch)', () => {
  const ctx = context([service('default', 'echo', WAYPOINT_LABELS)]);

  it('one route per rule × match; PathPrefix trailing "/" trimmed (but "/" kept), Exact and RegularExpression as written', () => {
    const r = route(`
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: paths, namespace: default}
spec:
  parentRefs: [{group: "", kind: Service, name: echo}]
  rules:
  - matches:
    - path: {type: PathPrefix, value: /foo/}
    - path: {type: PathPrefix, value: /}
    - path: {type: Exact, value: /exact/}
    backendRefs: [{name: echo, port: 80}]
  - matches:
    - path: {type: RegularExpression, value: "/foo((\\\\/).*)?"}
    - headers: [{name: My-Header, value: v}]
    backendRefs: [{name: echo, port: 80}]
`);
    const routes = translateHTTPRoute(r, ctx).services.get('Service/default/echo')!;
    assert.deepEqual(
      routes.map((x) => [x.rule, x.match!.path]),
      [
        [0, { type: 'PREFIX', value: '/foo' }],
        [0, { type: 'PREFIX', value: '/' }],
        [0, { type: 'EXACT', value: '/exact/' }],
        [1, { type: 'REGEX', value: '/foo((\\/).*)?' }],
        // A match without a path matches every path (the CRD's default).
        [1, { type: 'PREFIX', value: '/' }],
      ],
    );
  });

  it('a rule without matches matches every request: PathPrefix "/"', () => {
    const r = route(`
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: all, namespace: default}
spec:
  parentRefs: [{group: "", kind: Service, name: echo}]
  rules: [{backendRefs: [{name: echo, port: 80}]}]
`);
    assert.deepEqual(translateHTTPRoute(r, ctx).services.get('Service/default/echo'), [
      {
        route: 'default/all',
        rule: 0,
        name: 'default.all.0',
        port: 0,
        match: { path: { type: 'PREFIX', value: '/' }, headers: [], queryParams: [], method: '' },
        backends: [{ hostname: 'echo.default.svc.cluster.local', namespace: 'default', port: 80, weight: 1, invalid: false }],
        directStatus: 0,
        // istiod's default route retry policy: a rule without a retry stanza still retries connection failures.
        retry: { attempts: 2, codes: [], backoffMs: 0, perTryTimeoutMs: 0 },
      },
    ]);
  });

  it('headers by lower-case name, query parameters as written, Exact or RegularExpression; the method', () => {
    const r = route(`
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: hq, namespace: default}
spec:
  parentRefs: [{group: "", kind: Service, name: echo}]
  rules:
  - matches:
    - method: PATCH
      headers: [{name: X-Version, value: v2}, {name: X-Canary, type: RegularExpression, value: "yes|true"}]
      queryParams: [{name: Debug, value: "1"}, {name: tag, type: RegularExpression, value: "^a.*"}]
    backendRefs: [{name: echo, port: 80}]
`);
    assert.deepEqual(translateHTTPRoute(r, ctx).services.get('Service/default/echo')![0]!.match, {
      path: { type: 'PREFIX', value: '/' },
      headers: [
        { name: 'x-canary', value: 'yes|true', regex: true },
        { name: 'x-version', value: 'v2', regex: false },
      ],
      queryParams: [
        { name: 'Debug', value: '1', regex: false },
        { name: 'tag', value: '^a.*', regex: true },
      ],
      method: 'PATCH',
    });
  });
});

describe('HTTPRoute order (sortRoutesByCreationTime, then sortHTTPRoutes)', () => {
  // testdata/route-precedence.yaml: its two HTTPRoutes' rules, merged for one host, in the golden's order.
  const ctx = context([service('allowed', 'a-example', WAYPOINT_LABELS), ...['svc1', 'svc2', 'svc3'].map((n) => service('allowed', n))]);
  const routes = parseYaml(`
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: http-1, namespace: allowed, creationTimestamp: "2026-01-01T00:00:00Z"}
spec:
  parentRefs: [{group: "", kind: Service, name: a-example}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /foo}, headers: [{name: my-header, value: some-value, type: Exact}]}]
    backendRefs: [{name: svc1, port: 80}]
  - matches: [{path: {type: RegularExpression, value: "/foo((\\\\/).*)?"}}]
    backendRefs: [{name: svc2, port: 80}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: http-2, namespace: allowed, creationTimestamp: "2026-01-01T00:00:00Z"}
spec:
  parentRefs: [{group: "", kind: Service, name: a-example}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /foo/bar}}, {path: {type: PathPrefix, value: /bar}}]
    backendRefs: [{name: svc2, port: 80}]
  - matches:
    - path: {type: Exact, value: /baz}
      headers: [{name: my-header, value: some-value, type: Exact}]
      queryParams: [{name: my-param, value: some-value, type: RegularExpression}]
    backendRefs: [{name: svc2, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /}}]
    backendRefs: [{name: svc3, port: 80}]
  - matches: [{method: PATCH, path: {type: PathPrefix, value: /}}]
    backendRefs: [{name: svc2, port: 80}]
`) as HTTPRoute[];

  const contributions = (list: HTTPRoute[]) => list.map((r) => serviceRoutes(r, translateHTTPRoute(r, ctx), 'Service/allowed/a-example')!);

  it('Exact > PathPrefix > RegularExpression, longer paths, a method, more headers, more query parameters first', () => {
    assert.deepEqual(orderServiceRoutes(contributions(routes)).map(brief), [
      'allowed/http-2#1 EXACT /baz h:my-header,q:my-param',
      'allowed/http-2#0 PREFIX /foo/bar',
      'allowed/http-1#0 PREFIX /foo h:my-header',
      'allowed/http-2#0 PREFIX /bar',
      'allowed/http-2#3 PREFIX / PATCH',
      'allowed/http-2#2 PREFIX /',
      'allowed/http-1#1 REGEX /foo((\\/).*)?',
    ]);
  });

  it('a rule without matches after every match, regular expressions too (sortHTTPRoutes; testdata/mesh.yaml: header.0 before echo.0)', () => {
    const catchAll = route(`
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: echo, namespace: allowed, creationTimestamp: "2025-01-01T00:00:00Z"}
spec:
  parentRefs: [{group: "", kind: Service, name: a-example}]
  rules: [{backendRefs: [{name: svc1, port: 80}]}]
`);
    assert.deepEqual(orderServiceRoutes(contributions([catchAll, ...routes])).map(brief).slice(-2), ['allowed/http-1#1 REGEX /foo((\\/).*)?', 'allowed/echo#0 PREFIX /']);
  });

  it('ties keep the older HTTPRoute first, then namespace/name, then rule order; the input order does not matter', () => {
    const same = (name: string, creationTimestamp: string, path: string): HTTPRoute => ({
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'HTTPRoute',
      metadata: { name, namespace: 'allowed', creationTimestamp },
      spec: { parentRefs: [{ group: '', kind: 'Service', name: 'a-example' }], rules: [{ matches: [{ path: { value: path } }], backendRefs: [{ name: 'svc1', port: 80 }] }] },
    });
    const list = [same('b', '2026-01-01T00:00:00Z', '/ab'), same('a', '2026-01-02T00:00:00Z', '/aa'), same('c', '2026-01-01T00:00:00Z', '/ac')];
    const expected = ['allowed/b#0 PREFIX /ab', 'allowed/c#0 PREFIX /ac', 'allowed/a#0 PREFIX /aa'];
    assert.deepEqual(orderServiceRoutes(contributions(list)).map(brief), expected);
    assert.deepEqual(orderServiceRoutes(contributions([...list].reverse())).map(brief), expected);
  });
});

describe('HTTPRoute backends (buildHTTPDestination, buildDestination)', () => {
  const ctx = context([service('default', 'echo', WAYPOINT_LABELS), service('default', 'v1'), service('default', 'v2'), service('other', 'remote')]);
  const translate = (rules: string) =>
    translateHTTPRoute(
      route(`
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: default, generation: 3}
spec:
  parentRefs: [{group: "", kind: Service, name: echo}]
  rules: ${rules}
`),
      ctx,
    );

  it('weights as written (default 1), weight 0 left out; a Service in another namespace resolves (no ReferenceGrant for mesh routes)', () => {
    const t = translate('[{backendRefs: [{name: v1, port: 8080, weight: 90}, {name: v2, port: 8080, weight: 0}, {name: remote, namespace: other, port: 80}]}]');
    assert.deepEqual(t.services.get('Service/default/echo')![0]!.backends, [
      { hostname: 'v1.default.svc.cluster.local', namespace: 'default', port: 8080, weight: 90, invalid: false },
      { hostname: 'remote.other.svc.cluster.local', namespace: 'other', port: 80, weight: 1, invalid: false },
    ]);
    assert.deepEqual(t.parents[0]!.conditions, valid().map((c) => ({ ...c, observedGeneration: 3 })));
  });

  it('no backendRefs, or only weight 0 ones: a direct 500 (testdata/zero.yaml), the weight 0 one not even resolved', () => {
    const t = translate('[{matches: [{path: {value: /none}}]}, {matches: [{path: {value: /zero}}], backendRefs: [{name: nowhere, port: 80, weight: 0}]}]');
    assert.deepEqual(
      t.services.get('Service/default/echo')!.map((r) => [r.match!.path!.value, r.backends, r.directStatus]),
      [
        ['/none', [], 500],
        ['/zero', [], 500],
      ],
    );
    assert.equal(t.parents[0]!.conditions[1]!.status, 'True');
  });

  it('a Service that does not exist or a kind Ambit cannot route to: sent invalid, ResolvedRefs False with the last of them (testdata/invalid.yaml)', () => {
    const t = translate('[{backendRefs: [{name: v1, port: 80}, {name: nonexistent, port: 80}, {name: httpbin, kind: GcsBucket}]}]');
    assert.deepEqual(t.services.get('Service/default/echo')![0]!.backends, [
      { hostname: 'v1.default.svc.cluster.local', namespace: 'default', port: 80, weight: 1, invalid: false },
      { hostname: 'nonexistent.default.svc.cluster.local', namespace: 'default', port: 80, weight: 1, invalid: true },
      { hostname: '', namespace: 'default', port: 0, weight: 1, invalid: true },
    ]);
    assert.deepEqual(t.parents[0]!.conditions[0], { ...condition('Accepted', true, 'Accepted', 'Route was valid'), observedGeneration: 3 });
    assert.deepEqual(t.parents[0]!.conditions[1], {
      ...condition('ResolvedRefs', false, 'InvalidKind', 'referencing unsupported backendRef: group "" kind "GcsBucket"'),
      observedGeneration: 3,
    });
    const notFound = translate('[{backendRefs: [{name: nonexistent, port: 80}]}]');
    assert.deepEqual(notFound.parents[0]!.conditions[1], {
      ...condition('ResolvedRefs', false, 'BackendNotFound', 'backend(nonexistent.default.svc.cluster.local) not found'),
      observedGeneration: 3,
    });
  });

  it('a hostname for a Service name: nothing of the route is programmed, ResolvedRefs False/InvalidDestination', () => {
    const t = translate('[{backendRefs: [{name: v1, port: 80}]}, {backendRefs: [{name: v1.default.svc.cluster.local, port: 80}]}]');
    assert.equal(t.services.size, 0);
    assert.deepEqual(t.parents[0]!.conditions[1], {
      ...condition('ResolvedRefs', false, 'InvalidDestination', 'service name invalid; the name of the Service must be used, not the hostname.'),
      observedGeneration: 3,
    });
  });

  it('backendRefs depend on their Services, parents on their Service and Namespace', () => {
    const t = translate('[{backendRefs: [{name: v1, port: 80}, {name: remote, namespace: other, port: 80}]}]');
    assert.deepEqual(t.dependencies, ['Namespace//default', 'Service/default/echo', 'Service/default/v1', 'Service/other/remote']);
  });
});

describe('HTTPRoute filters', () => {
  const ctx = context([service('default', 'echo', WAYPOINT_LABELS)]);
  const translate = (rule: string) =>
    translateHTTPRoute(
      route(`
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: default}
spec:
  parentRefs: [{group: "", kind: Service, name: echo}]
  rules: [${rule}]
`),
      ctx,
    );

  it('Request/ResponseHeaderModifier on the rule and RequestHeaderModifier on a backend: names lower-cased, the first of a name wins', () => {
    const t = translate(`{
      filters: [
        {type: RequestHeaderModifier, requestHeaderModifier: {add: [{name: My-Added-Header, value: added-value}], set: [{name: X-A, value: "1"}, {name: x-a, value: "2"}], remove: [X-Gone]}},
        {type: ResponseHeaderModifier, responseHeaderModifier: {set: [{name: Cache-Control, value: no-store}]}}],
      backendRefs: [{name: echo, port: 80, filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: X-Backend, value: echo}]}}]}]}`);
    const r = t.services.get('Service/default/echo')![0]!;
    assert.deepEqual(r.requestHeaders, { set: [{ name: 'x-a', value: '1' }], add: [{ name: 'my-added-header', value: 'added-value' }], remove: ['x-gone'] });
    assert.deepEqual(r.responseHeaders, { set: [{ name: 'cache-control', value: 'no-store' }], add: [], remove: [] });
    assert.deepEqual(r.backends[0]!.requestHeaders, { set: [{ name: 'x-backend', value: 'echo' }], add: [], remove: [] });
  });

  it('a header value with control characters: not programmed, ResolvedRefs False/InvalidFilter', () => {
    const t = translate('{filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: X-Bad, value: "a\\u0001b"}]}}], backendRefs: [{name: echo, port: 80}]}');
    assert.equal(t.services.size, 0);
    assert.deepEqual(t.parents[0]!.conditions[1], condition('ResolvedRefs', false, 'InvalidFilter', 'header "X-Bad" value contains invalid characters'));
  });

  for (const [what, rule, message] of [
    [
      'a backend ResponseHeaderModifier',
      '{backendRefs: [{name: echo, port: 80, filters: [{type: ResponseHeaderModifier, responseHeaderModifier: {set: [{name: a, value: b}]}}]}]}',
      'Ambit does not implement the ResponseHeaderModifier filter on a backendRef yet',
    ],
  ] as const) {
    it(`${what}: the whole route is not programmed, Accepted False/UnsupportedValue naming it`, () => {
      const t = translate(rule);
      assert.equal(t.services.size, 0);
      assert.deepEqual(t.parents[0]!.conditions[0], condition('Accepted', false, 'UnsupportedValue', message));
      assert.deepEqual(t.parents[0]!.conditions[1], condition('ResolvedRefs', true, 'ResolvedRefs', 'All references resolved'));
    });
  }

  it('CORS (createCorsFilter): `*` any well-formed origin, a trailing `*` a prefix, other wildcards an anchored expression; unmatched preflights answered', () => {
    const r = translate(
      '{filters: [{type: CORS, cors: {allowOrigins: ["*", "https://a.example", "https://b.example:*", "https://*.c.example"], allowMethods: [GET, PUT], allowHeaders: [x-a], exposeHeaders: [x-b], maxAge: 60, allowCredentials: true}}], backendRefs: [{name: echo, port: 80}]}',
    ).services.get('Service/default/echo')![0]!;
    assert.deepEqual(r.cors, {
      allowOrigins: [
        { name: '', value: '^[a-zA-Z][a-zA-Z0-9+.-]*://[^/\\s?#]+$', regex: true },
        { name: '', value: 'https://a.example', regex: false },
        { name: '', value: 'https://b.example:', regex: false, prefix: true },
        { name: '', value: '^https://.*\\.c\\.example$', regex: true },
      ],
      allowMethods: 'GET,PUT',
      allowHeaders: 'x-a',
      exposeHeaders: 'x-b',
      maxAge: '60',
      allowCredentials: true,
      forwardUnmatchedPreflights: false,
    });
  });

  it('RequestRedirect (createRedirectFilter): 302 unless told, parts as given; no 500 without backends', () => {
    let r = translate('{filters: [{type: RequestRedirect, requestRedirect: {hostname: example.com}}]}').services.get('Service/default/echo')![0]!;
    assert.deepEqual([r.redirect, r.directStatus, r.backends], [{ scheme: '', hostname: 'example.com', port: 0, statusCode: 302 }, 0, []]);
    r = translate('{filters: [{type: RequestRedirect, requestRedirect: {scheme: https, port: 8443, statusCode: 301, path: {type: ReplacePrefixMatch, replacePrefixMatch: /new}}}]}').services.get('Service/default/echo')![0]!;
    assert.deepEqual(r.redirect, { scheme: 'https', hostname: '', port: 8443, path: { type: 'REPLACE_PREFIX_MATCH', value: '/new' }, statusCode: 301 });
  });

  it('RequestMirror (createMirrorFilter): the backend resolved, percent or fraction (default 100); an unresolved mirror is reported, not fatal', () => {
    const routeOf = (rule: string) => translate(rule).services.get('Service/default/echo')![0]!;
    const echo = { hostname: 'echo.default.svc.cluster.local', namespace: 'default', port: 80, weight: 1, invalid: false };
    assert.deepEqual(routeOf('{filters: [{type: RequestMirror, requestMirror: {backendRef: {name: echo, port: 80}}}], backendRefs: [{name: echo, port: 80}]}').mirrors, [{ backend: echo, percent: 100 }]);
    assert.deepEqual(routeOf('{filters: [{type: RequestMirror, requestMirror: {backendRef: {name: echo, port: 80}, fraction: {numerator: 1, denominator: 8}}}], backendRefs: [{name: echo, port: 80}]}').mirrors, [{ backend: echo, percent: 12.5 }]);
    const t = translate('{filters: [{type: RequestMirror, requestMirror: {backendRef: {name: nosuch, port: 80}}}], backendRefs: [{name: echo, port: 80}]}');
    const r = t.services.get('Service/default/echo')![0]!;
    assert.deepEqual([r.mirrors, r.backends.length], [undefined, 1], 'the route is programmed without the mirror');
    assert.deepEqual(t.parents[0]!.conditions[1], condition('ResolvedRefs', false, 'BackendNotFound', 'backend(nosuch.default.svc.cluster.local) not found'));
  });

  it('a regular expression RE2 cannot compile: not programmed, Accepted False/UnsupportedValue', () => {
    const t = translate('{matches: [{path: {type: RegularExpression, value: "/v(1"}}], backendRefs: [{name: echo, port: 80}]}');
    assert.equal(t.services.size, 0);
    assert.equal(t.parents[0]!.conditions[0]!.status, 'False');
    assert.equal(t.parents[0]!.conditions[0]!.reason, 'UnsupportedValue');
    assert.match(t.parents[0]!.conditions[0]!.message, /^invalid RE2 regular expression "\/v\(1": /);
  });

  it('URLRewrite (createRewriteFilter): hostname and path', () => {
    const r = translate('{filters: [{type: URLRewrite, urlRewrite: {hostname: x.example, path: {type: ReplaceFullPath, replaceFullPath: /full}}}], backendRefs: [{name: echo, port: 80}]}').services.get('Service/default/echo')![0]!;
    assert.deepEqual(r.rewrite, { hostname: 'x.example', path: { type: 'REPLACE_FULL_PATH', value: '/full' } });
  });

  it('retry and timeouts as istiod converts them: attempts default 2, backendRequest per try with a retry, else the route timeout', () => {
    const routeOf = (rule: string) => translate(rule).services.get('Service/default/echo')![0]!;
    let r = routeOf('{retry: {codes: [503, 504], backoff: 50ms}, timeouts: {request: 10s, backendRequest: 2s}, backendRefs: [{name: echo, port: 80}]}');
    assert.deepEqual([r.retry, r.timeoutMs], [{ attempts: 2, codes: [503, 504], backoffMs: 50, perTryTimeoutMs: 2000 }, 10000]);
    r = routeOf('{timeouts: {backendRequest: 1500ms}, backendRefs: [{name: echo, port: 80}]}');
    assert.deepEqual([r.retry, r.timeoutMs], [{ attempts: 2, codes: [], backoffMs: 0, perTryTimeoutMs: 0 }, 1500], 'no retry stanza: the route timeout, and the default policy');
    r = routeOf('{retry: {attempts: 0, codes: [503]}, backendRefs: [{name: echo, port: 80}]}');
    assert.deepEqual(r.retry, { attempts: 0, codes: [], backoffMs: 0, perTryTimeoutMs: 0 }, 'no attempts: nothing is retried');
    r = routeOf('{timeouts: {request: 0s}, backendRefs: [{name: echo, port: 80}]}');
    assert.equal(r.timeoutMs, undefined, 'a zero timeout sets none');
  });

  it('ExtensionRef (istiod implements none): not programmed, ResolvedRefs False/InvalidFilter "unsupported filter type"', () => {
    const t = translate('{filters: [{type: ExtensionRef, extensionRef: {group: example.com, kind: X, name: x}}], backendRefs: [{name: echo, port: 80}]}');
    assert.equal(t.services.size, 0);
    assert.deepEqual(t.parents[0]!.conditions[0], condition('Accepted', true, 'Accepted', 'Route was valid'));
    assert.deepEqual(t.parents[0]!.conditions[1], condition('ResolvedRefs', false, 'InvalidFilter', 'unsupported filter type "ExtensionRef"'));
  });
});

describe('HTTPRoute parents and status (referenceAllowed, createRouteStatus)', () => {
  const ns = (name: string, labels: Record<string, string> = {}): Namespace => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } });

  it('testdata/mesh.yaml multi-service: one entry per parentRef, parentRefString descending; port restricts the routes', () => {
    const ctx = context([service('default', 'echo-1', WAYPOINT_LABELS, [{ name: 'http', port: 80 }, { name: 'http-alt', port: 8080 }]), service('default', 'echo-2', WAYPOINT_LABELS), service('default', 'echo')]);
    const t = translateHTTPRoute(
      route(`
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: multi-service, namespace: default}
spec:
  parentRefs:
  - {group: "", kind: Service, name: echo-1, port: 80}
  - {group: "", kind: Service, name: echo-1, port: 8080}
  - {group: "", kind: Service, name: echo-2}
  - {name: gateway, namespace: istio-system}
  rules: [{backendRefs: [{name: echo, port: 80}]}]
`),
      ctx,
    );
    assert.deepEqual(t.parents, [
      parent({ group: '', kind: 'Service', name: 'echo-2' }),
      parent({ group: '', kind: 'Service', name: 'echo-1', port: 8080 }),
      parent({ group: '', kind: 'Service', name: 'echo-1', port: 80 }),
    ]);
    assert.deepEqual(
      [...t.services].map(([k, routes]) => [k, routes.map((r) => r.port)]),
      [
        ['Service/default/echo-2', [0]],
        ['Service/default/echo-1', [8080, 80]],
      ],
    );
  });

  it('a parent Service that does not exist: Accepted False/NoMatchingParent (testdata/valid-invalid-parent-ref.yaml)', () => {
    const t = translateHTTPRoute(
      route(`
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: default}
spec:
  parentRefs: [{group: "", kind: Service, name: random, namespace: nonexistent}]
  rules: [{backendRefs: [{name: echo, port: 80}]}]
`),
      context([service('default', 'echo')]),
    );
    assert.deepEqual(t.parents, [
      parent({ group: '', kind: 'Service', name: 'random', namespace: 'nonexistent' }, [
        condition('Accepted', false, 'NoMatchingParent', 'parent service: "random" not found'),
        condition('ResolvedRefs', true, 'ResolvedRefs', 'All references resolved'),
        condition('ResolvedWaypoints', true, 'ResolvedWaypoints', 'parent not found'),
      ]),
    ]);
    assert.equal(t.services.size, 0);
  });

  it('ResolvedWaypoints: the Service or its namespace must name a waypoint (not "none"); istiod keeps the status True', () => {
    const r = route(`
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: shop}
spec:
  parentRefs: [{group: "", kind: Service, name: web}]
`);
    const waypoints = (svcLabels: Record<string, string>, nsLabels: Record<string, string>) =>
      translateHTTPRoute(r, context([service('shop', 'web', svcLabels)], [ns('shop', nsLabels)])).parents[0]!.conditions[2]!.message;
    assert.equal(waypoints({}, {}), MISSING_LABEL);
    assert.equal(waypoints({ 'istio.io/use-waypoint': 'none' }, {}), MISSING_LABEL);
    assert.equal(waypoints(WAYPOINT_LABELS, {}), 'All waypoints resolved');
    assert.equal(waypoints({}, WAYPOINT_LABELS), 'All waypoints resolved');
    assert.equal(waypoints({ 'istio.io/use-waypoint': 'none' }, WAYPOINT_LABELS), 'All waypoints resolved', "istiod's quirk: the namespace label counts");
  });

  it('sectionName names a Service port; one the Service lacks is Accepted False/NoMatchingParent', () => {
    const ctx = context([service('default', 'echo', WAYPOINT_LABELS, [{ name: 'http', port: 80 }, { name: 'admin', port: 9000 }])]);
    const t = translateHTTPRoute(
      route(`
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: default}
spec:
  parentRefs: [{group: "", kind: Service, name: echo, sectionName: admin}, {group: "", kind: Service, name: echo, sectionName: metrics}]
  rules: [{backendRefs: [{name: echo, port: 80}]}]
`),
      ctx,
    );
    assert.deepEqual(t.services.get('Service/default/echo')!.map((r) => r.port), [9000]);
    assert.deepEqual(t.parents.map((p) => [p.parentRef.sectionName, p.conditions[0]!.status, p.conditions[0]!.message]), [
      ['metrics', 'False', 'sectionName "metrics" not found'],
      ['admin', 'True', 'Route was valid'],
    ]);
  });

  it('parents that are not core Services (a Gateway; kind Service without group "") get no status and no routes from us', () => {
    const t = translateHTTPRoute(
      route(`
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: default}
spec:
  parentRefs: [{name: gateway, namespace: istio-system}, {kind: Service, name: echo}]
  rules: [{backendRefs: [{name: echo, port: 80}]}]
`),
      context([service('default', 'echo', WAYPOINT_LABELS)]),
    );
    assert.deepEqual(t, { parents: [], services: new Map(), precedence: new Map(), dependencies: [] });
  });

  it('a waypoint applies the routes of HTTPRoutes in its own or the Service’s namespace only (getVirtualServiceForWaypoint)', () => {
    const r = (ns: string): WaypointRoute => ({ route: `${ns}/r`, rule: 0, name: `${ns}.r.0`, port: 0, backends: [], directStatus: 500 });
    assert.deepEqual(routesForWaypoint([r('shop'), r('consumer'), r('mesh')], 'shop', 'mesh').map((x) => x.route), ['shop/r', 'mesh/r']);
  });
});

describe('HTTPRoute and GRPCRoute parents of kind ServiceEntry (referenceAllowed, testdata/serviceentry.yaml)', () => {
  const ns = (name: string, labels: Record<string, string> = {}): Namespace => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } });
  /** testdata/serviceentry.yaml's entry: two hosts, an HTTP and a TLS port. */
  const egress = (labels: Record<string, string> = WAYPOINT_LABELS): ServiceEntry => ({
    apiVersion: 'networking.istio.io/v1',
    kind: 'ServiceEntry',
    metadata: { name: 'egress', namespace: 'default', labels },
    spec: { hosts: ['google.com', '*.egress.com'], ports: [{ number: 80, name: 'http', protocol: 'HTTP' }, { number: 443, name: 'tls', protocol: 'TLS' }] },
  });
  const SE = { group: 'networking.istio.io', kind: 'ServiceEntry' };
  const httpRoute = (parentRefs: string, rules = '[{backendRefs: [{name: echo, port: 80}]}]') =>
    route(`
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: egress, namespace: default}
spec:
  parentRefs: ${parentRefs}
  hostnames: [google.com]
  rules: ${rules}
`);
  const cluster = (entries: ServiceEntry[], namespaces: Namespace[] = []) => context([service('default', 'echo')], namespaces, entries);

  const cases: { name: string; parentRefs: string; entries: ServiceEntry[]; namespaces?: Namespace[]; ports: [string, number[]][]; parents: RouteParentStatus[] }[] = [
    {
      name: 'an entry with two hosts takes the route on every port (filed under the entry: every host it owns); hostnames do not matter',
      parentRefs: '[{group: networking.istio.io, kind: ServiceEntry, name: egress}]',
      entries: [egress()],
      ports: [['ServiceEntry/default/egress', [0]]],
      parents: [parent({ ...SE, name: 'egress' })],
    },
    {
      name: '`port` restricts the routes to that port of the entry',
      parentRefs: '[{group: networking.istio.io, kind: ServiceEntry, name: egress, port: 443}]',
      entries: [egress()],
      ports: [['ServiceEntry/default/egress', [443]]],
      parents: [parent({ ...SE, name: 'egress', port: 443 })],
    },
    {
      name: '`sectionName` names a port of the entry (as for a Service); one it lacks is Accepted False',
      parentRefs: '[{group: networking.istio.io, kind: ServiceEntry, name: egress, sectionName: tls}, {group: networking.istio.io, kind: ServiceEntry, name: egress, sectionName: grpc}]',
      entries: [egress()],
      ports: [['ServiceEntry/default/egress', [443]]],
      parents: [
        parent({ ...SE, name: 'egress', sectionName: 'tls' }),
        parent({ ...SE, name: 'egress', sectionName: 'grpc' }, [
          condition('Accepted', false, 'NoMatchingParent', 'sectionName "grpc" not found'),
          condition('ResolvedRefs', true, 'ResolvedRefs', 'All references resolved'),
          condition('ResolvedWaypoints', true, 'ResolvedWaypoints', 'All waypoints resolved'),
        ]),
      ],
    },
    {
      name: 'an entry that does not exist: Accepted False/NoMatchingParent, "parent service entry" not found',
      parentRefs: '[{group: networking.istio.io, kind: ServiceEntry, name: nope, namespace: other}]',
      entries: [egress()],
      ports: [],
      parents: [
        parent({ ...SE, name: 'nope', namespace: 'other' }, [
          condition('Accepted', false, 'NoMatchingParent', 'parent service entry: "nope" not found'),
          condition('ResolvedRefs', true, 'ResolvedRefs', 'All references resolved'),
          condition('ResolvedWaypoints', true, 'ResolvedWaypoints', 'parent not found'),
        ]),
      ],
    },
    {
      name: 'an entry without istio.io/use-waypoint in a namespace without it: programmed, ResolvedWaypoints says the label is missing',
      parentRefs: '[{group: networking.istio.io, kind: ServiceEntry, name: egress}]',
      entries: [egress({})],
      namespaces: [ns('default')],
      ports: [['ServiceEntry/default/egress', [0]]],
      parents: [parent({ ...SE, name: 'egress' }, valid(MISSING_LABEL))],
    },
    {
      name: 'an entry without the label in a namespace with it: all waypoints resolved',
      parentRefs: '[{group: networking.istio.io, kind: ServiceEntry, name: egress}]',
      entries: [egress({ 'istio.io/use-waypoint': 'none' })],
      namespaces: [ns('default', WAYPOINT_LABELS)],
      ports: [['ServiceEntry/default/egress', [0]]],
      parents: [parent({ ...SE, name: 'egress' })],
    },
    {
      name: 'a Service and an entry of one name are two parents; the entry parent needs its group (else a Gateway, not ours)',
      parentRefs: '[{group: networking.istio.io, kind: ServiceEntry, name: egress}, {group: "", kind: Service, name: egress}, {kind: ServiceEntry, name: egress}]',
      entries: [egress()],
      ports: [['ServiceEntry/default/egress', [0]]],
      parents: [
        parent({ ...SE, name: 'egress' }),
        parent({ group: '', kind: 'Service', name: 'egress' }, [
          condition('Accepted', false, 'NoMatchingParent', 'parent service: "egress" not found'),
          condition('ResolvedRefs', true, 'ResolvedRefs', 'All references resolved'),
          condition('ResolvedWaypoints', true, 'ResolvedWaypoints', 'parent not found'),
        ]),
      ],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const t = translateHTTPRoute(httpRoute(c.parentRefs), cluster(c.entries, c.namespaces));
      assert.deepEqual(t.parents, c.parents);
      assert.deepEqual(
        [...t.services].map(([k, routes]) => [k, routes.map((r) => r.port)]),
        c.ports,
      );
    });
  }

  it('the translation depends on the entry and its namespace (re-translated when either changes)', () => {
    const t = translateHTTPRoute(httpRoute('[{group: networking.istio.io, kind: ServiceEntry, name: egress, namespace: other}]'), cluster([]));
    assert.deepEqual(t.dependencies, ['Namespace//other', 'Service/default/echo', 'ServiceEntry/other/egress']);
  });

  it('a GRPCRoute with an entry parent: the same parents and status, its routes filed under the entry', () => {
    const r = parseYaml(`
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: grpc, namespace: default}
spec:
  parentRefs: [{group: networking.istio.io, kind: ServiceEntry, name: egress, port: 80}]
  rules:
  - matches: [{method: {service: pkg.Svc}}]
    backendRefs: [{name: echo, port: 80}]
`)[0] as GRPCRoute;
    const t = translateGRPCRoute(r, cluster([egress()]));
    assert.deepEqual(t.parents, [parent({ ...SE, name: 'egress', port: 80 })]);
    assert.deepEqual(
      t.services.get('ServiceEntry/default/egress')!.map((x) => [x.route, x.port, x.match!.path]),
      [['default/grpc', 80, { type: 'PREFIX', value: '/pkg.Svc' }]],
    );
    const missing = translateGRPCRoute(r, cluster([]));
    assert.equal(missing.parents[0]!.conditions[0]!.message, 'parent service entry: "egress" not found');
    assert.equal(missing.services.size, 0);
  });
});

// ---- through the ambient index ---------------------------------------------------------------------------------------

const NOW = '2026-01-01T00:00:00Z';
const BASE = `
${WAYPOINT_MESH}---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop, labels: {istio.io/use-waypoint: wp}}
spec: {clusterIP: 10.96.0.1, ports: [{name: http, port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: web-v2, namespace: shop}
spec: {clusterIP: 10.96.0.2, ports: [{name: http, port: 80}]}
`;
const ROUTE = `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: canary, namespace: shop, generation: 1}
spec:
  parentRefs: [{group: "", kind: Service, name: web}]
  rules:
  - matches: [{headers: [{name: x-canary, value: "1"}]}]
    backendRefs: [{name: web-v2, port: 80}]
`;
const WEB = 'shop/wp/service/shop/web.shop.svc.cluster.local';

function setup(yaml: string) {
  const store = new ConfigStore();
  store.apply(parseYaml(yaml));
  const index = new AmbientIndex(store, {}, () => new Date(NOW));
  const changes: AmbientChange[] = [];
  const statuses: ObjectStatus[][] = [];
  index.onChange((c) => changes.push(c));
  index.onStatusChange((s) => statuses.push(s));
  const waypointService = () => (index.snapshot(TYPE_WAYPOINT).get(WEB) as WaypointResource | undefined)?.service;
  const routeStatus = () => index.statuses().find((s) => s.kind === 'HTTPRoute');
  return { store, index, changes, statuses, waypointService, routeStatus };
}

describe('HTTPRoutes in the ambient index', () => {
  it('sends the routes with the bound Service to its waypoint and writes the route status', () => {
    const t = setup(BASE + '---' + ROUTE);
    assert.deepEqual(t.waypointService()?.routes.map(brief), ['shop/canary#0 PREFIX / h:x-canary']);
    assert.deepEqual(t.waypointService()?.routes[0]!.backends, [{ hostname: 'web-v2.shop.svc.cluster.local', namespace: 'shop', port: 80, weight: 1, invalid: false }]);
    assert.deepEqual(t.routeStatus(), {
      kind: 'HTTPRoute',
      namespace: 'shop',
      name: 'canary',
      conditions: [],
      parents: [parent({ group: '', kind: 'Service', name: 'web' }, valid().map((c) => ({ ...c, observedGeneration: 1, lastTransitionTime: NOW })))],
    });
    t.index.close();
  });

  it('a route edit re-sends exactly the Service resource; moving it to another parent re-sends both', () => {
    const t = setup(BASE + '---' + ROUTE);
    t.store.apply(parseYaml(ROUTE.replace('value: "1"', 'value: "2"')));
    assert.deepEqual(
      t.changes.map((c) => [c.typeUrl, [...c.upserted.keys()], c.removed]),
      [[TYPE_WAYPOINT, [WEB], []]],
    );
    assert.equal(t.statuses.length, 0, 'the status did not change');

    t.changes.length = 0;
    t.store.apply(parseYaml(`apiVersion: v1\nkind: Service\nmetadata: {name: web-v2, namespace: shop, labels: {istio.io/use-waypoint: wp}}\nspec: {clusterIP: 10.96.0.2, ports: [{name: http, port: 80}]}`));
    t.changes.length = 0;
    t.store.apply(parseYaml(ROUTE.replace('name: web}', 'name: web-v2}')));
    const upserted = t.changes.filter((c) => c.typeUrl === TYPE_WAYPOINT).flatMap((c) => [...c.upserted.keys()]);
    assert.deepEqual(upserted.sort(), ['shop/wp/service/shop/web-v2.shop.svc.cluster.local', WEB]);
    assert.deepEqual(t.waypointService()?.routes, []);
    assert.deepEqual(t.routeStatus()?.parents?.map((p) => p.parentRef.name), ['web-v2']);
    t.index.close();
  });

  it('a backend Service appearing resolves the route; the parent losing its waypoint label changes ResolvedWaypoints', () => {
    const t = setup(BASE.replace(/---\napiVersion: v1\nkind: Service\nmetadata: \{name: web-v2[^]*$/, '') + '---' + ROUTE);
    assert.deepEqual(t.routeStatus()?.parents?.[0]?.conditions[1], {
      ...condition('ResolvedRefs', false, 'BackendNotFound', 'backend(web-v2.shop.svc.cluster.local) not found'),
      observedGeneration: 1,
      lastTransitionTime: NOW,
    });
    assert.equal(t.waypointService()?.routes[0]!.backends[0]!.invalid, true);
    t.store.apply(parseYaml(`apiVersion: v1\nkind: Service\nmetadata: {name: web-v2, namespace: shop}\nspec: {clusterIP: 10.96.0.2, ports: [{name: http, port: 80}]}`));
    assert.equal(t.routeStatus()?.parents?.[0]?.conditions[1]!.status, 'True');
    assert.equal(t.waypointService()?.routes[0]!.backends[0]!.invalid, false);

    t.store.apply(parseYaml(`apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop}\nspec: {clusterIP: 10.96.0.1, ports: [{name: http, port: 80}]}`));
    assert.equal(t.waypointService(), undefined, 'no longer bound: the waypoint drops the Service');
    assert.equal(t.routeStatus()?.parents?.[0]?.conditions[2]!.message, MISSING_LABEL);
    t.index.close();
  });

  it('deleting the route clears its status and the Service resource loses the routes', () => {
    const t = setup(BASE + '---' + ROUTE);
    t.store.remove(['HTTPRoute/shop/canary']);
    assert.deepEqual(t.waypointService()?.routes, []);
    assert.equal(t.routeStatus(), undefined);
    assert.deepEqual(t.statuses.at(-1), [{ kind: 'HTTPRoute', namespace: 'shop', name: 'canary', conditions: [] }]);
    t.index.close();
  });

  it('an HTTPRoute whose parents are all Gateways writes nothing', () => {
    const t = setup(BASE + '---' + ROUTE.replace('{group: "", kind: Service, name: web}', '{name: wp}'));
    assert.equal(t.routeStatus(), undefined);
    assert.deepEqual(t.waypointService()?.routes, []);
    t.index.close();
  });
});

describe('HTTPRoutes with a ServiceEntry parent in the ambient index', () => {
  const ENTRY = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: egress, namespace: shop, labels: {istio.io/use-waypoint: wp}}
spec:
  hosts: [api.example.com, db.example.com]
  ports: [{number: 80, name: http, protocol: HTTP}, {number: 5432, name: tcp, protocol: TCP}]
  resolution: DNS
`;
  const SE_ROUTE = ROUTE.replace('{group: "", kind: Service, name: web}', '{group: networking.istio.io, kind: ServiceEntry, name: egress, port: 80}');
  const HOSTS = ['shop/wp/service/shop/api.example.com', 'shop/wp/service/shop/db.example.com'];
  const entryRoutes = (index: AmbientIndex) =>
    [...index.snapshot(TYPE_WAYPOINT)]
      .filter(([, r]) => (r as WaypointResource).service?.hostname.endsWith('.example.com'))
      .map(([name, r]) => [name, (r as WaypointResource).service!.routes.map((x) => `${brief(x)} :${x.port}`)]);
  const accepted = (t: ReturnType<typeof setup>) => t.routeStatus()?.parents?.map((p) => [p.conditions[0]!.message, p.conditions[2]!.message]);

  it('every host of the bound entry gets the routes; a route edit re-sends exactly those hosts', () => {
    const t = setup(BASE + '---' + ENTRY + '---' + SE_ROUTE);
    assert.deepEqual(entryRoutes(t.index), HOSTS.map((h) => [h, ['shop/canary#0 PREFIX / h:x-canary :80']]));
    assert.deepEqual(t.routeStatus()?.parents?.map((p) => p.parentRef), [{ group: 'networking.istio.io', kind: 'ServiceEntry', name: 'egress', port: 80 }]);
    assert.deepEqual(accepted(t), [['Route was valid', 'All waypoints resolved']]);
    t.changes.length = 0;
    t.store.apply(parseYaml(SE_ROUTE.replace('value: "1"', 'value: "2"')));
    assert.deepEqual(
      t.changes.map((c) => [c.typeUrl, [...c.upserted.keys()].sort(), c.removed]),
      [[TYPE_WAYPOINT, HOSTS, []]],
    );
    t.index.close();
  });

  it('relabelling, deleting and recreating the entry re-translates the route and re-sends its waypoint', () => {
    const t = setup(BASE + '---' + ENTRY + '---' + SE_ROUTE);
    t.store.apply(parseYaml(ENTRY.replace('labels: {istio.io/use-waypoint: wp}', 'labels: {}')));
    assert.deepEqual(entryRoutes(t.index), [], 'no longer bound: the waypoint drops its hosts');
    assert.deepEqual(accepted(t), [['Route was valid', MISSING_LABEL]]);

    t.store.apply(parseYaml(ENTRY));
    assert.equal(entryRoutes(t.index).length, 2);
    assert.deepEqual(accepted(t), [['Route was valid', 'All waypoints resolved']]);

    t.store.remove(['ServiceEntry/shop/egress']);
    assert.deepEqual(accepted(t), [['parent service entry: "egress" not found', 'parent not found']]);
    t.store.apply(parseYaml(ENTRY));
    assert.deepEqual(entryRoutes(t.index), HOSTS.map((h) => [h, ['shop/canary#0 PREFIX / h:x-canary :80']]));
    t.index.close();
  });

  it('`ambit config waypoint` lists the status of routes whose parent is an entry naming the waypoint', () => {
    // A Service of the entry's name that is not bound here: its routes are not this waypoint's.
    const other = `\napiVersion: v1\nkind: Service\nmetadata: {name: egress, namespace: shop}\nspec: {clusterIP: 10.96.0.9, ports: [{name: http, port: 80}]}\n`;
    const svcRoute = ROUTE.replace('name: canary', 'name: other').replace('{group: "", kind: Service, name: web}', '{group: "", kind: Service, name: egress}');
    const t = setup(BASE + '---' + ENTRY + '---' + SE_ROUTE + '---' + other + '---' + svcRoute);
    const routeStatus = () => renderWaypointConfig(t.index, 'shop/wp')?.routeStatus.map((s) => [s.kind, s.name, s.parents.map((p) => `${p.parentRef.kind}/${p.parentRef.name}`)]);
    assert.deepEqual(routeStatus(), [['HTTPRoute', 'canary', ['ServiceEntry/egress']]]);
    t.store.apply(parseYaml(ENTRY.replace('labels: {istio.io/use-waypoint: wp}', 'labels: {}')));
    assert.deepEqual(routeStatus(), []);
    t.index.close();
  });

  it('moving the route from the entry to a Service re-sends both', () => {
    const t = setup(BASE + '---' + ENTRY + '---' + SE_ROUTE);
    t.changes.length = 0;
    t.store.apply(parseYaml(ROUTE));
    const upserted = t.changes.filter((c) => c.typeUrl === TYPE_WAYPOINT).flatMap((c) => [...c.upserted.keys()]);
    assert.deepEqual(upserted.sort(), [...HOSTS, WEB]);
    assert.deepEqual(entryRoutes(t.index), HOSTS.map((h) => [h, []]));
    assert.equal(t.waypointService()?.routes.length, 1);
    t.index.close();
  });
});
