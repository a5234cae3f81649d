// VirtualServices at waypoints as istiod applies them (pilot/pkg/networking/core/listener_waypoint.go and
// route/route.go, route/retry/retry.go): which VirtualServices apply to a Service, how each http route × match
// becomes a waypoint route, what Ambit refuses rather than half-applies, then the same through the ambient index.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Service, VirtualService } from '../../src/api/types.js';
import { renderWaypointConfig } from '../../src/model/configdump.js';
import { resolveHost, translateVirtualService, virtualServiceRoutes, virtualServiceTcpRoutes, type VirtualServiceContext } from '../../src/model/virtualservices.js';
import { TYPE_WAYPOINT, type WaypointResource, type WaypointRoute } from '../../src/xds/types.js';
import { parseYaml, WAYPOINT_MESH, waypointIndex } from './helpers.js';

function service(namespace: string, name: string, ports = [{ name: 'http', port: 80 }]): Service {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace }, spec: { ports } };
}

const ctx: VirtualServiceContext = (() => {
  const services = [service('shop', 'web'), service('shop', 'web-v2'), service('shop', 'multi', [{ name: 'http', port: 80 }, { name: 'admin', port: 8080 }]), service('other', 'api')];
  return { domainSuffix: 'cluster.local', service: (ns, name) => services.find((s) => s.metadata.namespace === ns && s.metadata.name === name) };
})();

function vs(http: string, extra = ''): VirtualService {
  return parseYaml(`
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web, namespace: shop${extra}}
spec:
  hosts: [web]
  http:
${http}`)[0] as VirtualService;
}

/** A route's match in short form. */
function brief(r: WaypointRoute): string {
  const m = r.match!;
  const values = (l: typeof m.headers, tag: string) => l.map((v) => `${tag}:${v.name}${v.regex ? '~' : v.prefix ? '^' : '='}${v.value}`);
  const extra = [m.method, ...values(m.headers, 'h'), ...values(m.queryParams, 'q'), r.port ? `port:${r.port}` : ''].filter(Boolean);
  return `${m.path!.type} ${m.path!.value}${extra.length ? ` ${extra.join(' ')}` : ''}`;
}

const backend = (name: string, port = 80, weight = 1) => ({ hostname: `${name}.shop.svc.cluster.local`, namespace: 'shop', port, weight, invalid: false });
const DEFAULT_RETRY = { attempts: 2, codes: [], backoffMs: 0, perTryTimeoutMs: 0 };

describe('VirtualService hosts (getVirtualServiceForWaypoint)', () => {
  it('resolves short names in the VirtualService namespace; FQDNs and wildcards stay', () => {
    assert.equal(resolveHost('web', 'shop', 'cluster.local'), 'web.shop.svc.cluster.local');
    assert.equal(resolveHost('api.other.svc.cluster.local', 'shop', 'cluster.local'), 'api.other.svc.cluster.local');
    assert.equal(resolveHost('*', 'shop', 'cluster.local'), '*');
    assert.equal(resolveHost('*.shop.svc.cluster.local', 'shop', 'cluster.local'), '*.shop.svc.cluster.local');
  });

  it('applies VirtualServices of the Service’s or the waypoint’s namespace naming the Service, oldest first, concatenated', () => {
    const make = (ns: string, name: string, hosts: string[], created: string) => {
      const v = vs(`  - route: [{destination: {host: web.shop.svc.cluster.local}}]`);
      v.metadata = { name, namespace: ns, creationTimestamp: created };
      v.spec.hosts = hosts;
      return translateVirtualService(v, ctx);
    };
    const all = [
      make('shop', 'newer', ['web'], '2026-01-02T00:00:00Z'),
      make('shop', 'older', ['*.shop.svc.cluster.local'], '2026-01-01T00:00:00Z'),
      make('mesh', 'waypoint-ns', ['web.shop.svc.cluster.local'], '2026-01-03T00:00:00Z'),
      make('consumer', 'elsewhere', ['web.shop.svc.cluster.local'], '2026-01-01T00:00:00Z'),
      make('shop', 'other-host', ['web-v2'], '2026-01-01T00:00:00Z'),
    ];
    assert.deepEqual(
      virtualServiceRoutes(all, 'web.shop.svc.cluster.local', 'shop', 'mesh').map((r) => r.route),
      ['shop/older', 'shop/newer', 'mesh/waypoint-ns'],
    );
  });
});

describe('VirtualService matches (TranslateRouteMatch)', () => {
  it('one route per http route × match; a uri prefix is a plain string prefix; headers, query parameters, method, port', () => {
    const t = translateVirtualService(
      vs(`  - name: r
    match:
    - {name: m, uri: {prefix: /api/}, headers: {X-B: {prefix: v}, x-a: {exact: "1"}, x-c: {regex: "v[0-9]"}, x-d: {}}}
    - {uri: {exact: /exact}, method: {exact: POST}, queryParams: {q: {exact: "1"}, r: {regex: "a.*"}}}
    - {uri: {regex: "/re/.*"}, port: 8080}
    route: [{destination: {host: web}}]`),
      ctx,
    );
    assert.deepEqual(t.unsupported, []);
    assert.deepEqual(t.routes.map(brief), [
      'STRING_PREFIX /api/ h:x-a=1 h:x-b^v h:x-c~v[0-9] h:x-d^',
      'EXACT /exact POST q:q=1 q:r~a.*',
      'REGEX /re/.* port:8080',
    ]);
    assert.deepEqual(t.routes.map((r) => `${r.route}#${r.rule} ${r.name}`), ['shop/web#0 r.m', 'shop/web#0 r', 'shop/web#0 r']);
  });

  it('drops matches with sourceLabels or for gateways only; stops after a catch-all route', () => {
    const t = translateVirtualService(
      vs(`  - match: [{sourceLabels: {app: a}, uri: {prefix: /a}}, {gateways: [ingress], uri: {prefix: /g}}, {uri: {prefix: /b}}]
    route: [{destination: {host: web}}]
  - match: [{uri: {prefix: /c}, port: 8080}, {uri: {prefix: /}}, {uri: {prefix: /never}}]
    route: [{destination: {host: web}}]
  - route: [{destination: {host: web}}]`),
      ctx,
    );
    assert.deepEqual(t.routes.map(brief), ['STRING_PREFIX /b', 'STRING_PREFIX /c port:8080', 'STRING_PREFIX /']);
  });

  it('a route without matches matches everything and ends the list', () => {
    const t = translateVirtualService(vs(`  - route: [{destination: {host: web}}]\n  - route: [{destination: {host: web-v2}}]`), ctx);
    assert.deepEqual(t.routes.map(brief), ['STRING_PREFIX /']);
  });

  it('refuses what it cannot match yet, and RE2 expressions that do not compile', () => {
    const t = translateVirtualService(
      vs(`  - match: [{sourceNamespace: other, uri: {prefix: /w}}, {method: {prefix: G}, uri: {prefix: /m}}, {uri: {regex: "(("}}]
    route: [{destination: {host: web}}]`),
      ctx,
    );
    assert.deepEqual(t.routes, []);
    assert.equal(t.unsupported.length, 3, t.unsupported.join('\n'));
  });
});

describe('VirtualService actions (TranslateRoute, applyHTTPRouteDestination)', () => {
  it('weighted destinations (weight 0 left out), the only port of a Service, per-destination request headers', () => {
    const t = translateVirtualService(
      vs(`  - route:
    - {destination: {host: web}, weight: 90, headers: {request: {set: {X-Dst: a}}}}
    - {destination: {host: web-v2, port: {number: 80}}, weight: 10}
    - {destination: {host: api.other.svc.cluster.local}, weight: 0}`),
      ctx,
    );
    assert.deepEqual(t.routes[0]!.backends, [
      { ...backend('web', 80, 90), requestHeaders: { set: [{ name: 'x-dst', value: 'a' }], add: [], remove: [] } },
      backend('web-v2', 80, 10),
    ]);
    assert.deepEqual(t.routes[0]!.retry, DEFAULT_RETRY);
    assert.deepEqual(t.dependencies, ['Service/shop/web', 'Service/shop/web-v2'], 'a weight-0 destination is not read');
  });

  it('an unknown host is kept (the waypoint has no cluster for it: 503); a Service with several ports needs the port; a subset is named', () => {
    const unknown = translateVirtualService(vs(`  - route: [{destination: {host: ghost, port: {number: 80}}}]`), ctx);
    assert.deepEqual(unknown.routes[0]!.backends, [backend('ghost')]);
    assert.deepEqual(translateVirtualService(vs(`  - route: [{destination: {host: multi, port: {number: 8080}}}]`), ctx).routes[0]!.backends, [backend('multi', 8080)]);
    const noPort = translateVirtualService(vs(`  - route: [{destination: {host: multi}}]`), ctx);
    assert.deepEqual([noPort.routes, noPort.unsupported], [[], ['destination "multi" needs a port']]);
    const subset = translateVirtualService(vs(`  - route: [{destination: {host: web, subset: v1}}]`), ctx);
    assert.deepEqual([subset.routes[0]!.backends, subset.unsupported], [[{ ...backend('web'), subset: 'v1' }], []]);
  });

  it('headers: set overwrites, add appends, pseudo-headers dropped, :authority/host become the authority; a single destination’s come after the route’s', () => {
    const t = translateVirtualService(
      vs(`  - headers:
      request: {set: {X-A: "1", ":authority": set.example}, add: {x-b: "2"}, remove: [x-c, ":path"]}
      response: {set: {x-r: "3"}, remove: [server]}
    route: [{destination: {host: web}, headers: {request: {set: {x-a: "4", host: dst.example}}, response: {add: {x-s: "5"}}}}]`),
      ctx,
    );
    const r = t.routes[0]!;
    assert.deepEqual(r.requestHeaders, { set: [{ name: 'x-a', value: '1' }, { name: 'x-a', value: '4' }], add: [{ name: 'x-b', value: '2' }], remove: ['x-c'] });
    assert.deepEqual(r.responseHeaders, { set: [{ name: 'x-r', value: '3' }], add: [{ name: 'x-s', value: '5' }], remove: ['server'] });
    assert.deepEqual(r.rewrite, { hostname: 'set.example' }, 'the route’s authority wins over the destination’s');
  });

  it('rewrite: uri is Envoy’s prefix_rewrite, authority the host; the destination’s authority when the route has none', () => {
    const t = translateVirtualService(
      vs(`  - match: [{uri: {prefix: /old}}]
    rewrite: {uri: /new, authority: rewritten.example}
    route: [{destination: {host: web}}]
  - route: [{destination: {host: web, port: {number: 80}}, headers: {request: {set: {host: dst.example}}}}]`),
      ctx,
    );
    assert.deepEqual(t.routes[0]!.rewrite, { hostname: 'rewritten.example', path: { type: 'PREFIX_REWRITE', value: '/new' } });
    assert.deepEqual(t.routes[1]!.rewrite, { hostname: 'dst.example' });
  });

  it('redirect: 301 unless told, uri replaces the path; directResponse with its body', () => {
    const t = translateVirtualService(
      vs(`  - match: [{uri: {exact: /r}}]
    redirect: {uri: /moved, authority: new.example, port: 8443, scheme: https}
  - match: [{uri: {exact: /r2}}]
    redirect: {authority: new.example, redirectCode: 307}
  - directResponse: {status: 418, body: {string: "short and stout"}}`),
      ctx,
    );
    assert.deepEqual(t.routes[0]!.redirect, { scheme: 'https', hostname: 'new.example', port: 8443, path: { type: 'REPLACE_FULL_PATH', value: '/moved' }, statusCode: 301 });
    assert.deepEqual(t.routes[1]!.redirect, { scheme: '', hostname: 'new.example', port: 0, statusCode: 307 });
    const direct = t.routes[2]!;
    assert.deepEqual([direct.directStatus, direct.directBody, direct.backends, direct.retry], [418, 'short and stout', [], undefined]);
  });

  it('timeout and retries (ConvertPolicy, parseRetryOn): codes and conditions split; attempts 0 disables retries', () => {
    const t = translateVirtualService(
      vs(`  - match: [{uri: {prefix: /a}}]
    timeout: 5s
    retries: {attempts: 3, perTryTimeout: 1s, retryOn: "5xx,gateway-error, 503,retriable-4xx,999"}
    route: [{destination: {host: web}}]
  - match: [{uri: {prefix: /b}}]
    retries: {attempts: 0, retryOn: 5xx}
    route: [{destination: {host: web}}]
  - retries: {attempts: 1}
    route: [{destination: {host: web}}]`),
      ctx,
    );
    assert.equal(t.routes[0]!.timeoutMs, 5000);
    assert.deepEqual(t.routes[0]!.retry, { attempts: 3, codes: [503], backoffMs: 0, perTryTimeoutMs: 1000, conditions: ['5xx', 'gateway-error', 'retriable-4xx', '999'] });
    assert.deepEqual(t.routes[1]!.retry, { attempts: 0, codes: [], backoffMs: 0, perTryTimeoutMs: 0 });
    assert.deepEqual(t.routes[2]!.retry, { attempts: 1, codes: [], backoffMs: 0, perTryTimeoutMs: 0 });
  });

  it('mirror with mirrorPercentage, mirrors (0 %: none; unknown Services mirror nothing)', () => {
    const t = translateVirtualService(
      vs(`  - route: [{destination: {host: web}}]
    mirror: {host: web-v2}
    mirrorPercentage: {value: 25.5}
    mirrors:
    - {destination: {host: web-v2, port: {number: 80}}}
    - {destination: {host: web}, percentage: {value: 0}}
    - {destination: {host: ghost, port: {number: 80}}}`),
      ctx,
    );
    assert.deepEqual(t.routes[0]!.mirrors, [
      { backend: backend('web-v2'), percent: 25.5 },
      { backend: backend('web-v2'), percent: 100 },
    ]);
  });

  it('fault (translateFault): delay and abort with their percentages, none without one, gRPC status names; exponentialDelay and http2Error unsupported', () => {
    const t = translateVirtualService(
      vs(`  - match: [{uri: {prefix: /a}}]
    fault: {delay: {fixedDelay: 1.5s, percentage: {value: 25}}, abort: {httpStatus: 503, percentage: {value: 100}}}
    route: [{destination: {host: web}}]
  - match: [{uri: {prefix: /b}}]
    fault: {delay: {fixedDelay: 2s, percent: 10}, abort: {grpcStatus: UNAVAILABLE, percentage: {value: 50}}}
    route: [{destination: {host: web}}]
  - match: [{uri: {prefix: /c}}]
    fault: {abort: {httpStatus: 500}}
    route: [{destination: {host: web}}]`),
      ctx,
    );
    assert.deepEqual(
      t.routes.map((r) => r.fault),
      [
        { delayMs: 1500, delayPercent: 25, abortStatus: 503, abortPercent: 100, abortGrpc: false, abortGrpcStatus: 0 },
        { delayMs: 2000, delayPercent: 10, abortStatus: 200, abortPercent: 50, abortGrpc: true, abortGrpcStatus: 14 },
        { delayMs: 0, delayPercent: 0, abortStatus: 500, abortPercent: 0, abortGrpc: false, abortGrpcStatus: 0 },
      ],
    );
    const bad = translateVirtualService(
      vs(`  - fault: {delay: {exponentialDelay: 1s, percentage: {value: 1}}, abort: {grpcStatus: NOPE, percentage: {value: 1}}}
    route: [{destination: {host: web}}]`),
      ctx,
    );
    assert.deepEqual(bad.unsupported, ['fault.delay.exponentialDelay is not supported yet', 'fault.abort.grpcStatus "NOPE" is not a gRPC status name']);
  });

  it('corsPolicy (TranslateCORSPolicy): origins as string matches, lists joined by ",", maxAge in seconds, unmatched preflights forwarded unless IGNORE', () => {
    const t = translateVirtualService(
      vs(`  - corsPolicy:
      allowOrigins: [{exact: "https://a.example"}, {prefix: "https://b."}, {regex: "https://.*\\\\.c\\\\.example"}]
      allowMethods: [GET, POST]
      allowHeaders: [x-a, x-b]
      exposeHeaders: [x-c]
      maxAge: 24h
      allowCredentials: true
    route: [{destination: {host: web}}]`),
      ctx,
    );
    assert.deepEqual(t.routes[0]!.cors, {
      allowOrigins: [
        { name: '', value: 'https://a.example', regex: false },
        { name: '', value: 'https://b.', regex: false, prefix: true },
        { name: '', value: 'https://.*\\.c\\.example', regex: true },
      ],
      allowMethods: 'GET,POST',
      allowHeaders: 'x-a,x-b',
      exposeHeaders: 'x-c',
      maxAge: '86400',
      allowCredentials: true,
      forwardUnmatchedPreflights: true,
    });
    const ignore = translateVirtualService(vs(`  - corsPolicy: {allowOrigins: [{exact: a}], unmatchedPreflights: IGNORE}\n    route: [{destination: {host: web}}]`), ctx);
    assert.equal(ignore.routes[0]!.cors!.forwardUnmatchedPreflights, false);
  });

  it('tls and tcp routes (getWaypointTCPRoutes): per port, the first tls rule whose only SNI host is the Service, else the first tcp rule; the connection’s port unless one is given', () => {
    const v = parseYaml(`
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: l4, namespace: shop}
spec:
  hosts: [multi]
  tls:
  - match: [{sniHosts: [multi], port: 8080}]
    route: [{destination: {host: web, port: {number: 443}}}]
  - match: [{sniHosts: [a, b]}]
    route: [{destination: {host: web}}]
  tcp:
  - match: [{port: 8080}]
    route: [{destination: {host: web}}]
  - match: [{sourceLabels: {app: x}}]
    route: [{destination: {host: web-v2}}]
  - route: [{destination: {host: web, subset: v1}, weight: 90}, {destination: {host: web-v2}, weight: 10}, {destination: {host: web-v2}, weight: 0}]
`)[0] as VirtualService;
    const t = translateVirtualService(v, ctx);
    assert.deepEqual(t.unsupported, []);
    const routes = virtualServiceTcpRoutes([t], 'multi.shop.svc.cluster.local', 'shop', 'shop', [80, 8080]);
    assert.deepEqual(routes, [
      { route: 'shop/l4', rule: 2, port: 80, backends: [{ ...backend('web', 80, 90), subset: 'v1' }, backend('web-v2', 80, 10)] },
      { route: 'shop/l4', rule: 0, port: 8080, backends: [backend('web', 443)] },
    ]);
  });

  it('authority, scheme and withoutHeaders become header matchers (:authority, :scheme, inverted); ignoreUriCase the path’s', () => {
    const t = translateVirtualService(
      vs(`  - match:
    - uri: {exact: /Login}
      ignoreUriCase: true
      authority: {prefix: shop.example}
      scheme: {exact: http}
      withoutHeaders: {x-canary: {exact: "yes"}}
    route: [{destination: {host: web}}]`),
      ctx,
    );
    assert.deepEqual(t.unsupported, []);
    assert.deepEqual(t.routes[0]!.match, {
      path: { type: 'EXACT', value: '/Login', ignoreCase: true },
      headers: [
        { name: ':authority', value: 'shop.example', regex: false, prefix: true },
        { name: ':scheme', value: 'http', regex: false },
        { name: 'x-canary', value: 'yes', regex: false, invert: true },
      ],
      queryParams: [],
      method: '',
    });
  });

  it('delegate (MergeHTTPRoutes): the delegate’s routes merged with the root route — matches narrowed (conflicts dropped), root fields inherited, hosts resolved in the delegate’s namespace', () => {
    const delegates = new Map<string, VirtualService>();
    const delegate = (ns: string, name: string, http: string, exportTo?: string) => {
      const d = parseYaml(`apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: ${name}, namespace: ${ns}}\nspec:\n${exportTo ? `  exportTo: [${exportTo}]\n` : ''}  http:\n${http}`)[0] as VirtualService;
      delegates.set(`${ns}/${name}`, d);
    };
    delegate(
      'other',
      'reviews-routes',
      `  - name: v1
    match: [{uri: {exact: /reviews/v1}, headers: {x-user: {exact: alice}}}]
    route: [{destination: {host: api, port: {number: 80}}}]
  - match: [{uri: {prefix: /elsewhere}}]
    route: [{destination: {host: api, port: {number: 80}}}]
  - route: [{destination: {host: api, port: {number: 80}}}]
    timeout: 2s`,
    );
    delegate('other', 'private', `  - route: [{destination: {host: api, port: {number: 80}}}]`, '"."');
    const dctx: VirtualServiceContext = { ...ctx, virtualService: (ns, name) => delegates.get(`${ns}/${name}`) };
    const t = translateVirtualService(
      vs(`  - name: reviews
    match: [{uri: {prefix: /reviews}}]
    delegate: {name: reviews-routes, namespace: other}
    timeout: 5s
  - match: [{uri: {prefix: /private}}]
    delegate: {name: private, namespace: other}
  - match: [{uri: {prefix: /missing}}]
    delegate: {name: missing}
  - route: [{destination: {host: web}}]`),
      dctx,
    );
    assert.deepEqual(t.unsupported, []);
    assert.deepEqual(
      t.routes.map((r) => [r.name, brief(r), r.backends[0]!.hostname, r.timeoutMs]),
      [
        ['reviews-v1', 'EXACT /reviews/v1 h:x-user=alice', 'api.other.svc.cluster.local', 5000],
        ['reviews', 'STRING_PREFIX /reviews', 'api.other.svc.cluster.local', 2000],
        // Indexes count in the merged list, as istiod's do.
        ['shop.web.2', 'STRING_PREFIX /', 'web.shop.svc.cluster.local', undefined],
      ],
    );
    assert.deepEqual(t.dependencies.filter((d) => d.startsWith('VirtualService/')), ['VirtualService/other/private', 'VirtualService/other/reviews-routes', 'VirtualService/shop/missing']);
  });
});

// ---- through the ambient index ---------------------------------------------------------------------------------------

const BASE = `
${WAYPOINT_MESH}---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop, labels: {istio.io/use-waypoint: wp}}
spec: {clusterIP: 10.96.0.1, ports: [{name: http, port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: web-v2, namespace: shop, labels: {istio.io/use-waypoint: wp}}
spec: {clusterIP: 10.96.0.2, ports: [{name: http, port: 80}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: gamma, namespace: shop}
spec:
  parentRefs: [{group: "", kind: Service, name: web}]
  rules: [{backendRefs: [{name: web, port: 80}]}]
`;
const VS = `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: canary, namespace: shop}
spec:
  hosts: [web]
  http:
  - match: [{headers: {x-canary: {exact: "1"}}}]
    route: [{destination: {host: web-v2}}]
`;
const WEB = 'shop/wp/service/shop/web.shop.svc.cluster.local';
const WEB_V2 = 'shop/wp/service/shop/web-v2.shop.svc.cluster.local';

function setup(yaml: string) {
  const t = waypointIndex(yaml);
  const routes = (name: string) => t.resource(name)?.service?.routes.map((r) => `${r.route} ${brief(r)}`);
  return { ...t, routes };
}

describe('VirtualServices in the ambient index', () => {
  it('sends a VirtualService’s routes before the Service’s HTTPRoute routes', () => {
    const t = setup(BASE + '---' + VS);
    assert.deepEqual(t.routes(WEB), ['shop/canary STRING_PREFIX / h:x-canary=1', 'shop/gamma PREFIX /']);
    assert.deepEqual(t.routes(WEB_V2), []);
    t.index.close();
  });

  it('an edit re-sends the Services its hosts name, before and after; removal restores the HTTPRoute routes', () => {
    const t = setup(BASE + '---' + VS);
    t.store.apply(parseYaml(VS.replace('"1"', '"2"')));
    assert.deepEqual(t.resent(), [WEB]);
    t.changes.length = 0;
    t.store.apply(parseYaml(VS.replace('"1"', '"2"').replace('hosts: [web]', 'hosts: [web-v2.shop.svc.cluster.local]')));
    assert.deepEqual(t.resent(), [WEB_V2, WEB]);
    assert.deepEqual(t.routes(WEB), ['shop/gamma PREFIX /']);
    assert.deepEqual(t.routes(WEB_V2), ['shop/canary STRING_PREFIX / h:x-canary=2']);
    t.changes.length = 0;
    t.store.remove(['VirtualService/shop/canary']);
    assert.deepEqual(t.resent(), [WEB_V2]);
    assert.deepEqual(t.routes(WEB_V2), []);
    t.index.close();
  });

  it('a destination Service gaining a port re-checks the VirtualService (its port becomes required)', () => {
    const t = setup(BASE + '---' + VS);
    t.store.apply(parseYaml(`apiVersion: v1\nkind: Service\nmetadata: {name: web-v2, namespace: shop, labels: {istio.io/use-waypoint: wp}}\nspec: {clusterIP: 10.96.0.2, ports: [{name: http, port: 80}, {name: admin, port: 8080}]}`));
    assert.ok(t.resent().includes(WEB));
    assert.deepEqual(t.routes(WEB), ['shop/gamma PREFIX /']);
    t.index.close();
  });

  it('a tcp route reaches the Service’s waypoint resource with the port it applies to', () => {
    const t = setup(BASE + '---' + VS.replace('  http:\n  - match: [{headers: {x-canary: {exact: "1"}}}]\n    route: [{destination: {host: web-v2}}]', '  tcp:\n  - route: [{destination: {host: web-v2}}]'));
    const svc = (t.index.snapshot(TYPE_WAYPOINT).get(WEB) as WaypointResource).service!;
    assert.deepEqual(svc.tcpRoutes, [{ route: 'shop/canary', rule: 0, port: 80, backends: [{ ...backend('web-v2'), port: 80 }] }]);
    assert.deepEqual(t.routes(WEB), ['shop/gamma PREFIX /']);
    t.index.close();
  });

  it('a change of a delegate VirtualService re-sends the Services of the VirtualServices delegating to it', () => {
    const root = VS.replace('    route: [{destination: {host: web-v2}}]', '    delegate: {name: canary-routes}');
    const delegate = (value: string) =>
      `apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: canary-routes, namespace: shop}\nspec:\n  http:\n  - match: [{queryParams: {v: {exact: "${value}"}}}]\n    route: [{destination: {host: web-v2}}]\n`;
    const t = setup(BASE + '---' + root + '---\n' + delegate('1'));
    assert.deepEqual(t.routes(WEB), ['shop/canary STRING_PREFIX / h:x-canary=1 q:v=1', 'shop/gamma PREFIX /']);
    t.changes.length = 0;
    t.store.apply(parseYaml(delegate('2')));
    assert.deepEqual(t.resent(), [WEB]);
    assert.deepEqual(t.routes(WEB), ['shop/canary STRING_PREFIX / h:x-canary=1 q:v=2', 'shop/gamma PREFIX /']);
    t.index.close();
  });

  it('a wildcard host reaches every Service it covers, including one created later', () => {
    const t = setup(BASE + '---' + VS.replace('hosts: [web]', 'hosts: ["*.shop.svc.cluster.local"]'));
    assert.deepEqual(t.routes(WEB_V2), ['shop/canary STRING_PREFIX / h:x-canary=1']);
    t.store.apply(parseYaml(`apiVersion: v1\nkind: Service\nmetadata: {name: web-v3, namespace: shop, labels: {istio.io/use-waypoint: wp}}\nspec: {clusterIP: 10.96.0.3, ports: [{name: http, port: 80}]}`));
    assert.deepEqual(t.routes('shop/wp/service/shop/web-v3.shop.svc.cluster.local'), ['shop/canary STRING_PREFIX / h:x-canary=1']);
    t.index.close();
  });

  it('a VirtualService with unsupported fields is not programmed; the offline waypoint view says why', () => {
    const t = setup(BASE + '---' + VS.replace('route: [{destination: {host: web-v2}}]', 'route: [{destination: {host: web-v2}}]\n    rewrite: {uriRegexRewrite: {match: ^/a, rewrite: /b}}'));
    assert.deepEqual(t.routes(WEB), ['shop/gamma PREFIX /']);
    assert.deepEqual(renderWaypointConfig(t.index, 'shop/wp')?.unprogrammedVirtualServices, [{ namespace: 'shop', name: 'canary', unsupported: ['rewrite.uriRegexRewrite is not supported yet'] }]);
    t.store.apply(parseYaml(VS));
    assert.equal(renderWaypointConfig(t.index, 'shop/wp')?.unprogrammedVirtualServices, undefined);
    t.index.close();
  });
});
