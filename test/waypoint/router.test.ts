// The waypoint's route matching against Envoy's semantics for what Istio generates from an HTTPRoute (and a
// VirtualService: plain string prefixes, prefix value matches, prefix_rewrite): segment-aware path prefixes, exact paths without the query string, regular expressions matched in full, header and query matches,
// method and port restrictions, first match wins; weighted backends; header filters.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RouteTable, modifyHeaders, rewritePath, type RoutableRequest } from '../../src/waypoint/http/router.js';
import type { WaypointRoute, WaypointRouteMatch } from '../../src/xds/types.js';

const req = (path: string, headers: Record<string, string> = {}, method = 'GET', authority = 'echo.apps.svc.cluster.local'): RoutableRequest => ({ method, path, authority, header: (n) => headers[n] });

function route(name: string, match: Partial<WaypointRouteMatch> | undefined, port = 0): WaypointRoute {
  return {
    route: `ns/${name}`,
    rule: 0,
    port,
    ...(match ? { match: { headers: [], queryParams: [], method: '', ...match } } : {}),
    backends: [{ hostname: `${name}.ns.svc.cluster.local`, namespace: 'ns', port: 80, weight: 1, invalid: false }],
    directStatus: 0,
    name: `ns.${name}.0`,
  };
}

const chosen = (routes: WaypointRoute[], r: RoutableRequest, port = 80) => {
  const c = new RouteTable(routes).select(port, r);
  return c === 'none' ? undefined : c?.route.route;
};

describe('path matches', () => {
  const prefix = (value: string) => [route('p', { path: { type: 'PREFIX', value } })];
  // [prefix, path, matches]: Envoy's path_separated_prefix, which Istio uses for PathPrefix.
  const table: [string, string, boolean][] = [
    ['/', '/', true],
    ['/', '/anything/at/all', true],
    ['/api', '/api', true],
    ['/api', '/api/', true],
    ['/api', '/api/v1', true],
    ['/api', '/api?x=1', true],
    ['/api', '/apiv1', false],
    ['/api', '/ap', false],
    ['/api', '/API', false],
    ['/api/', '/api', true],
    ['/api/v1', '/api/v1/users', true],
    ['/api/v1', '/api/v10', false],
  ];
  for (const [p, path, want] of table) {
    it(`prefix ${p} ${want ? 'matches' : 'does not match'} ${path}`, () => assert.equal(chosen(prefix(p), req(path)) !== undefined, want));
  }

  it('exact ignores the query string and nothing else', () => {
    const r = [route('e', { path: { type: 'EXACT', value: '/status' } })];
    assert.equal(chosen(r, req('/status')), 'ns/e');
    assert.equal(chosen(r, req('/status?verbose=1')), 'ns/e');
    assert.equal(chosen(r, req('/status/')), undefined);
    assert.equal(chosen(r, req('/statuses')), undefined);
  });

  it('a regular expression must match the whole path', () => {
    const r = [route('re', { path: { type: 'REGEX', value: '/v[0-9]+/.*' } })];
    assert.equal(chosen(r, req('/v2/users')), 'ns/re');
    assert.equal(chosen(r, req('/v2/users?x')), 'ns/re');
    assert.equal(chosen(r, req('/api/v2/users')), undefined, 'not a search');
    assert.equal(chosen([route('bad', { path: { type: 'REGEX', value: '(' } })], req('/(')), undefined, 'an expression that does not compile matches nothing');
    assert.equal(chosen([route('ci', { path: { type: 'REGEX', value: '(?i)/status' } })], req('/STATUS')), 'ns/ci', 'RE2 syntax');
  });

  it('a string prefix (VirtualService) is plain: /api matches /apix too, and still not the query string', () => {
    const r = [route('s', { path: { type: 'STRING_PREFIX', value: '/api' } })];
    assert.equal(chosen(r, req('/api')), 'ns/s');
    assert.equal(chosen(r, req('/apix/y')), 'ns/s');
    assert.equal(chosen(r, req('/ap?i')), undefined);
    assert.equal(chosen(r, req('/API')), undefined);
    assert.equal(chosen([route('all', { path: { type: 'STRING_PREFIX', value: '/' } })], req('/anything')), 'ns/all');
  });

  it('matches in linear time: a pattern that backtracks exponentially elsewhere cannot stall the waypoint', () => {
    const r = [route('evil', { headers: [{ name: 'x', value: '(a+)+b', regex: true }] })];
    const started = performance.now();
    assert.equal(chosen(r, req('/', { x: 'a'.repeat(5000) })), undefined);
    // Not a speed assertion: JavaScript's own engine would take years on this input, RE2 milliseconds.
    assert.ok(performance.now() - started < 10_000);
  });
});

describe('header, query and method matches', () => {
  it('headers: exact, regular expression in full, missing never matches', () => {
    const r = [
      route('exact', { headers: [{ name: 'x-version', value: 'v2', regex: false }] }),
      route('regex', { headers: [{ name: 'x-user', value: 'test-.*', regex: true }] }),
    ];
    assert.equal(chosen(r, req('/', { 'x-version': 'v2' })), 'ns/exact');
    assert.equal(chosen(r, req('/', { 'x-version': 'V2' })), undefined, 'values are case-sensitive');
    assert.equal(chosen(r, req('/', { 'x-user': 'test-1' })), 'ns/regex');
    assert.equal(chosen(r, req('/', { 'x-user': 'a-test-1' })), undefined);
    assert.equal(chosen(r, req('/')), undefined);
  });

  it('headers and query parameters by prefix (VirtualService); an empty prefix means present', () => {
    const r = [
      route('pre', { headers: [{ name: 'x-version', value: 'v2', regex: false, prefix: true }] }),
      route('present', { queryParams: [{ name: 'debug', value: '', regex: false, prefix: true }] }),
    ];
    assert.equal(chosen(r, req('/', { 'x-version': 'v2.1' })), 'ns/pre');
    assert.equal(chosen(r, req('/', { 'x-version': 'v1' })), undefined);
    assert.equal(chosen(r, req('/?debug')), 'ns/present');
    assert.equal(chosen(r, req('/?debug=1')), 'ns/present');
    assert.equal(chosen(r, req('/?other=1')), undefined);
  });

  it('all headers of a match must match', () => {
    const r = [route('both', { headers: [{ name: 'a', value: '1', regex: false }, { name: 'b', value: '2', regex: false }] })];
    assert.equal(chosen(r, req('/', { a: '1', b: '2' })), 'ns/both');
    assert.equal(chosen(r, req('/', { a: '1' })), undefined);
  });

  it('query parameters: compared as sent (not decoded), the first occurrence counts', () => {
    const r = [route('q', { queryParams: [{ name: 'mode', value: 'fast', regex: false }] })];
    assert.equal(chosen(r, req('/x?mode=fast')), 'ns/q');
    assert.equal(chosen(r, req('/x?other=1&mode=fast')), 'ns/q');
    assert.equal(chosen(r, req('/x?mode=slow&mode=fast')), undefined);
    assert.equal(chosen(r, req('/x')), undefined);
    const encoded = [route('enc', { queryParams: [{ name: 'q', value: 'a b', regex: false }] })];
    assert.equal(chosen(encoded, req('/x?q=a%20b')), undefined, 'Envoy compares the raw value');
    assert.equal(chosen(encoded, req('/x?q=a+b')), undefined);
  });

  it('withoutHeaders (VirtualService): an inverted matcher holds when the header is absent or does not match', () => {
    const r = [route('not-canary', { headers: [{ name: 'x-canary', value: 'yes', regex: false, invert: true }] })];
    assert.equal(chosen(r, req('/')), 'ns/not-canary');
    assert.equal(chosen(r, req('/', { 'x-canary': 'no' })), 'ns/not-canary');
    assert.equal(chosen(r, req('/', { 'x-canary': 'yes' })), undefined);
  });

  it(':authority and :scheme matchers see the request’s authority and its scheme (plaintext inside the tunnel)', () => {
    const r = [
      route('host', { headers: [{ name: ':authority', value: 'shop.example', regex: false, prefix: true }] }),
      route('https', { headers: [{ name: ':scheme', value: 'https', regex: false }] }),
      route('http', { headers: [{ name: ':scheme', value: 'http', regex: false }] }),
    ];
    assert.equal(chosen(r, req('/', {}, 'GET', 'shop.example:8080')), 'ns/host');
    assert.equal(chosen(r, req('/', { ':authority': 'shop.example' }, 'GET', 'other.example')), 'ns/http', 'the authority, not a header of that name');
  });

  it('ignoreUriCase (VirtualService): exact, prefixes and expressions compare case-insensitively', () => {
    const r = [
      route('exact', { path: { type: 'EXACT', value: '/Login', ignoreCase: true } }),
      route('prefix', { path: { type: 'STRING_PREFIX', value: '/API', ignoreCase: true } }),
      route('regex', { path: { type: 'REGEX', value: '/img/[a-z]+\\.png', ignoreCase: true } }),
    ];
    assert.equal(chosen(r, req('/login')), 'ns/exact');
    assert.equal(chosen(r, req('/LOGIN?x=Y')), 'ns/exact');
    assert.equal(chosen(r, req('/api/v1')), 'ns/prefix');
    assert.equal(chosen(r, req('/IMG/Cat.PNG')), 'ns/regex');
    assert.equal(chosen([route('cs', { path: { type: 'EXACT', value: '/Login' } })], req('/login')), undefined, 'case-sensitive without it');
  });

  it('method', () => {
    const r = [route('post', { method: 'POST' })];
    assert.equal(chosen(r, req('/', {}, 'POST')), 'ns/post');
    assert.equal(chosen(r, req('/', {}, 'GET')), undefined);
  });
});

describe('route selection', () => {
  it('the first route that matches wins; a route without a match takes everything', () => {
    const r = [route('api', { path: { type: 'PREFIX', value: '/api' } }), route('all', undefined)];
    assert.equal(chosen(r, req('/api/x')), 'ns/api');
    assert.equal(chosen(r, req('/other')), 'ns/all');
  });

  it('a route restricted to a port applies to that port only', () => {
    const r = [route('on8080', undefined, 8080), route('any', undefined)];
    assert.equal(chosen(r, req('/'), 8080), 'ns/on8080');
    assert.equal(chosen(r, req('/'), 80), 'ns/any');
    const only8080 = new RouteTable([route('on8080', undefined, 8080)]);
    assert.equal(only8080.select(80, req('/')), undefined, 'no route for the port: the Service itself');
  });

  it('on a port with routes, a request none matches has no route (Envoy answers 404 NR)', () => {
    const t = new RouteTable([route('api', { path: { type: 'PREFIX', value: '/api' } })]);
    assert.equal(t.select(80, req('/other')), 'none');
    assert.equal(new RouteTable([]).select(80, req('/')), undefined);
  });

  it('picks backends in proportion to their weights', () => {
    const r = route('split', undefined);
    r.backends = [
      { hostname: 'a', namespace: 'ns', port: 80, weight: 90, invalid: false },
      { hostname: 'b', namespace: 'ns', port: 80, weight: 10, invalid: false },
    ];
    const compiled = new RouteTable([r]).select(80, req('/'));
    assert.ok(compiled !== undefined && compiled !== 'none');
    // Deterministic draws across [0, 1): 90 % land on `a`.
    const counts: Record<string, number> = { a: 0, b: 0 };
    for (let i = 0; i < 1000; i++) counts[compiled.pickBackend(() => i / 1000)!.hostname]!++;
    assert.deepEqual(counts, { a: 900, b: 100 });
  });
});

describe('header filters', () => {
  it('remove deletes, then set replaces and add appends (Envoy removes first)', () => {
    const h: Record<string, string | string[] | number | undefined> = { 'x-a': '1', 'x-b': '2', 'x-c': '3' };
    modifyHeaders(h, { set: [{ name: 'x-a', value: 'one' }, { name: 'x-new', value: 'n' }], add: [{ name: 'x-b', value: 'two' }, { name: 'x-d', value: 'd' }], remove: ['x-c', 'x-new'] });
    assert.deepEqual(h, { 'x-a': 'one', 'x-b': ['2', 'two'], 'x-d': 'd', 'x-new': 'n' });
  });
});

describe('path rewrites', () => {
  // The Gateway API's ReplacePrefixMatch table (HTTPPathModifier), plus the query string and full-path replacement.
  const table: [string, string, string, string][] = [
    ['/foo/bar', '/foo', '/xyz', '/xyz/bar'],
    ['/foo/bar', '/foo', '/xyz/', '/xyz/bar'],
    ['/foo/bar', '/foo/', '/xyz', '/xyz/bar'],
    ['/foo/bar', '/foo/', '/xyz/', '/xyz/bar'],
    ['/foo', '/foo', '/xyz', '/xyz'],
    ['/foo', '/foo', '/xyz/', '/xyz'],
    ['/foo/', '/foo', '/xyz', '/xyz/'],
    ['/foo/bar', '/foo', '', '/bar'],
    ['/foo/', '/foo', '', '/'],
    ['/foo', '/foo', '', '/'],
    ['/foo/', '/foo', '/', '/'],
    ['/foo', '/foo', '/', '/'],
    ['/a/b?x=1', '/', '/new', '/new/a/b?x=1'],
    ['/foo/bar?x=1', '/foo', '/xyz', '/xyz/bar?x=1'],
  ];
  for (const [path, prefix, value, want] of table) {
    it(`${path} with prefix ${prefix} replaced by "${value}" is ${want}`, () =>
      assert.equal(rewritePath(path, { type: 'REPLACE_PREFIX_MATCH', value }, { type: 'PREFIX', value: prefix }), want));
  }
  it('a full-path replacement keeps the query string', () => assert.equal(rewritePath('/a/b?x=1', { type: 'REPLACE_FULL_PATH', value: '/c' }, undefined), '/c?x=1'));
  it('Envoy’s prefix_rewrite (VirtualService) swaps the matched string prefix literally, or the whole path for other matches', () => {
    const rewrite = { type: 'PREFIX_REWRITE' as const, value: '/new' };
    assert.equal(rewritePath('/old/a?x=1', rewrite, { type: 'STRING_PREFIX', value: '/old' }), '/new/a?x=1');
    assert.equal(rewritePath('/oldish', rewrite, { type: 'STRING_PREFIX', value: '/old' }), '/newish');
    assert.equal(rewritePath('/a/b', { type: 'PREFIX_REWRITE', value: '/' }, { type: 'STRING_PREFIX', value: '/a/' }), '/b');
    assert.equal(rewritePath('/exact?q', rewrite, { type: 'EXACT', value: '/exact' }), '/new?q');
    assert.equal(rewritePath('/re/1', rewrite, { type: 'REGEX', value: '/re/.*' }), '/new');
  });
});
