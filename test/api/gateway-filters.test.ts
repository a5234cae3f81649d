// HTTPRoute and GRPCRoute filters and the rules about them, as the Gateway API CRDs (v1.6) refuse them: every rule
// with the CRD's message (CEL rules word for word) at the path kube-apiserver reports, and valid routes still pass.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { formatPath, validateResource } from '../../src/api/validation.js';
import { formatIssue, loadPaths } from '../../src/config/loader.js';
import { RFC1123_LABEL_RULE, invalid } from '../support/kube-messages.js';

const EXAMPLES = fileURLToPath(new URL('../../../examples/', import.meta.url));

type Obj = Record<string, unknown>;

function errors(kind: 'HTTPRoute' | 'GRPCRoute', rules: Obj[]): string[] {
  const r = validateResource({ apiVersion: 'gateway.networking.k8s.io/v1', kind, metadata: { name: 'r' }, spec: { rules } });
  return r.issues.filter((i) => i.severity === 'error').map((i) => `${formatPath(i.path)}: ${i.message}`);
}
const http = (...rules: Obj[]) => errors('HTTPRoute', rules);
const grpc = (...rules: Obj[]) => errors('GRPCRoute', rules);
/** One rule with these filters. */
const withFilters = (...filters: Obj[]) => http({ filters });
/** One filter of the given type carrying the settings in the matching field. */
const f = (type: string, field: string, settings: unknown): Obj => ({ type, [field]: settings });
const headers = (settings: unknown) => f('RequestHeaderModifier', 'requestHeaderModifier', settings);
const redirect = (settings: unknown) => f('RequestRedirect', 'requestRedirect', settings);
const rewrite = (settings: unknown) => f('URLRewrite', 'urlRewrite', settings);
const mirror = (settings: unknown) => f('RequestMirror', 'requestMirror', settings);
const backend = { name: 'svc', port: 80 };
const F0 = 'spec.rules[0].filters[0]';

describe('HTTPRoute filters: valid routes', () => {
  it('accepts every filter kind filled in as the API documents it', () => {
    assert.deepEqual(
      http(
        {
          matches: [{ path: { type: 'PathPrefix', value: '/api' } }],
          filters: [
            headers({ set: [{ name: 'x-a', value: '1' }], add: [{ name: "!#$%&'*+-.^_`|~", value: 'v' }], remove: ['x-b', 'X-C'] }),
            f('ResponseHeaderModifier', 'responseHeaderModifier', { remove: ['server'] }),
            mirror({ backendRef: { name: 'shadow', port: 8080 }, fraction: { numerator: 1 } }),
            rewrite({ hostname: 'api.example.com', path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/v2' } }),
            f('CORS', 'cors', {
              allowOrigins: ['https://example.com', 'http://*.example.com:8080'],
              allowMethods: ['GET', 'POST'],
              allowHeaders: ['x-a'],
              exposeHeaders: ['x-b'],
              allowCredentials: true,
              maxAge: 60,
            }),
            f('ExtensionRef', 'extensionRef', { group: '', kind: 'ConfigMap', name: 'ext' }),
          ],
          backendRefs: [{ ...backend, filters: [headers({ set: [{ name: 'x-a', value: '2' }] }), mirror({ backendRef: { group: 'example.com', kind: 'Thing', name: 't' }, percent: 50 })] }],
          timeouts: { request: '10s', backendRequest: '2s' },
          retry: { attempts: 0, codes: [503, 504], backoff: '50ms' },
        },
        { filters: [redirect({ scheme: 'https', hostname: 'example.com', port: 8443, statusCode: 308, path: { type: 'ReplaceFullPath', replaceFullPath: '/' } })] },
        // No matches: the CRD defaults them to one PathPrefix "/" match.
        { filters: [redirect({ path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/new' } })] },
        { timeouts: { request: '0s', backendRequest: '1h' } },
      ),
      [],
    );
  });

  it('accepts the waypoint example route', async () => {
    const r = await loadPaths([EXAMPLES + 'waypoint/20-httproute.yaml']);
    assert.deepEqual(r.issues.filter((i) => i.severity === 'error').map(formatIssue), []);
    assert.deepEqual(r.objects.map((o) => o.resource.kind), ['HTTPRoute']);
  });

  it('accepts every redirect status code Istio converts', () => {
    for (const statusCode of [301, 302, 303, 307, 308]) assert.deepEqual(withFilters(redirect({ statusCode })), [], String(statusCode));
  });
});

describe('HTTPRoute filters: filter type and union', () => {
  it('refuses an unknown type', () => {
    assert.deepEqual(withFilters({ type: 'ExternalAuth' }), [
      `${F0}.type: expected one of RequestHeaderModifier, ResponseHeaderModifier, RequestMirror, RequestRedirect, URLRewrite, ExtensionRef, CORS; found "ExternalAuth"`,
    ]);
    assert.deepEqual(withFilters({}), [`${F0}.type: required`]);
  });

  const UNION = [
    ['RequestHeaderModifier', 'requestHeaderModifier', {}],
    ['ResponseHeaderModifier', 'responseHeaderModifier', {}],
    ['RequestMirror', 'requestMirror', { backendRef: backend }],
    ['RequestRedirect', 'requestRedirect', {}],
    ['URLRewrite', 'urlRewrite', {}],
    ['CORS', 'cors', {}],
    ['ExtensionRef', 'extensionRef', { group: '', kind: 'K', name: 'n' }],
  ] as const;
  for (const [type, field, settings] of UNION) {
    it(`${type}: ${field} must be specified, and only for that type`, () => {
      assert.deepEqual(withFilters({ type }), [`${F0}: filter.${field} must be specified for ${type} filter.type`]);
      const other = type === 'CORS' ? 'ExtensionRef' : 'CORS';
      const otherField = type === 'CORS' ? 'extensionRef' : 'cors';
      const otherSettings = type === 'CORS' ? { group: '', kind: 'K', name: 'n' } : {};
      assert.deepEqual(withFilters({ type: other, [otherField]: otherSettings, [field]: settings }), [
        `${F0}: filter.${field} must be nil if the filter.type is not ${type}`,
      ]);
    });
  }
});

describe('HTTPRoute filters: HTTPHeaderFilter', () => {
  const H = `${F0}.requestHeaderModifier`;
  it('checks header names and values', () => {
    assert.deepEqual(withFilters(headers({ set: [{ name: 'x a', value: 'v' }, { name: '', value: '' }, { name: 'x'.repeat(257), value: 'v'.repeat(4097) }] })), [
      `${H}.set[0].name: must be an HTTP header name (1-256 letters, digits or !#$%&'*+-.^_\`|~), found "x a"`,
      `${H}.set[1].name: must be an HTTP header name (1-256 letters, digits or !#$%&'*+-.^_\`|~), found ""`,
      `${H}.set[1].value: must not be empty`,
      `${H}.set[2].name: must be an HTTP header name (1-256 letters, digits or !#$%&'*+-.^_\`|~), found "${'x'.repeat(76)}...`,
      `${H}.set[2].value: must be at most 4096 characters, found 4097`,
    ]);
    assert.deepEqual(withFilters(headers({ add: [{ name: 'x-a' }] })), [`${H}.add[0].value: required`]);
  });

  it('allows at most 16 entries in set, add and remove', () => {
    const many = Array.from({ length: 17 }, (_, i) => ({ name: `x-${i}`, value: 'v' }));
    assert.deepEqual(withFilters(headers({ set: many, add: many, remove: many.map((h) => h.name) })), [
      `${H}.set: must have at most 16 items, found 17`,
      `${H}.add: must have at most 16 items, found 17`,
      `${H}.remove: must have at most 16 items, found 17`,
    ]);
  });

  it('refuses a header name repeated exactly in set or add (a map list keyed by name), and a name repeated in remove', () => {
    assert.deepEqual(withFilters(headers({ set: [{ name: 'X-A', value: '1' }, { name: 'x-b', value: '2' }, { name: 'x-b', value: '3' }], add: [{ name: 'x-a', value: '1' }, { name: 'x-a', value: '2' }], remove: ['x-a', 'x-b', 'x-a'] })), [
      `${H}.set[2]: Duplicate value: map[string]interface {}{"name":"x-b"}`,
      `${H}.add[1]: Duplicate value: map[string]interface {}{"name":"x-a"}`,
      `${H}.remove[2]: Duplicate value: "x-a"`,
    ]);
    assert.deepEqual(withFilters(headers({ set: [{ name: 'X-A', value: '1' }, { name: 'x-a', value: '2' }] })), [], 'another case is another key');
  });

  it('checks responseHeaderModifier the same way', () => {
    assert.deepEqual(withFilters(f('ResponseHeaderModifier', 'responseHeaderModifier', { add: [{ name: 'a:b', value: 'v' }] })), [
      `${F0}.responseHeaderModifier.add[0].name: must be an HTTP header name (1-256 letters, digits or !#$%&'*+-.^_\`|~), found "a:b"`,
    ]);
  });
});

describe('HTTPRoute filters: RequestRedirect and URLRewrite', () => {
  const R = `${F0}.requestRedirect`;
  it('checks scheme, hostname, port and statusCode', () => {
    assert.deepEqual(withFilters(redirect({ scheme: 'ftp', hostname: '*.example.com', port: 0, statusCode: 304 })), [
      `${R}.scheme: expected one of http, https; found "ftp"`,
      `${R}.hostname: must be a hostname such as "example.com" (no wildcard, no port), found "*.example.com"`,
      `${R}.port: must be a port number 1-65535, found number 0`,
      `${R}.statusCode: expected one of 301, 302, 303, 307, 308; found number 304`,
    ]);
  });

  it('HTTPPathModifier: type enum, lengths, and the four type/field rules', () => {
    assert.deepEqual(withFilters(redirect({ path: { type: 'Replace', replaceFullPath: 'x'.repeat(1025) } })), [
      `${R}.path.type: expected one of ReplaceFullPath, ReplacePrefixMatch; found "Replace"`,
      `${R}.path.replaceFullPath: must be at most 1024 characters, found 1025`,
      `${R}.path: type must be 'ReplaceFullPath' when replaceFullPath is set`,
    ]);
    assert.deepEqual(withFilters(redirect({ path: { replacePrefixMatch: '/' } })), [`${R}.path.type: required`]);
    assert.deepEqual(withFilters(redirect({ path: { type: 'ReplaceFullPath' } })), [`${R}.path: replaceFullPath must be specified when type is set to 'ReplaceFullPath'`]);
    assert.deepEqual(withFilters(redirect({ path: { type: 'ReplaceFullPath', replacePrefixMatch: '/' } })), [
      `${R}.path: replaceFullPath must be specified when type is set to 'ReplaceFullPath'`,
      `${R}.path: type must be 'ReplacePrefixMatch' when replacePrefixMatch is set`,
    ]);
    assert.deepEqual(withFilters(redirect({ path: { type: 'ReplacePrefixMatch', replaceFullPath: '/' } })), [
      `${R}.path: type must be 'ReplaceFullPath' when replaceFullPath is set`,
      `${R}.path: replacePrefixMatch must be specified when type is set to 'ReplacePrefixMatch'`,
    ]);
  });

  it('URLRewrite: hostname and path', () => {
    assert.deepEqual(withFilters(rewrite({ hostname: 'Example.com', path: { type: 'ReplacePrefixMatch' } })), [
      `${F0}.urlRewrite.hostname: must be a hostname such as "example.com" (no wildcard, no port), found "Example.com"`,
      `${F0}.urlRewrite.path: replacePrefixMatch must be specified when type is set to 'ReplacePrefixMatch'`,
    ]);
  });
});

describe('HTTPRoute filters: RequestMirror', () => {
  const M = `${F0}.requestMirror`;
  it('checks the backendRef as a BackendObjectReference', () => {
    assert.deepEqual(withFilters(mirror({ backendRef: { name: 'shadow' } })), [`${M}.backendRef: Must have port for Service reference`]);
    assert.deepEqual(withFilters(mirror({ backendRef: { name: '', namespace: 'Bad', port: 70000 } })), [
      `${M}.backendRef.name: must not be empty`,
      `${M}.backendRef.namespace: ${invalid('Bad', RFC1123_LABEL_RULE)}`,
      `${M}.backendRef.port: must be a port number 1-65535, found number 70000`,
    ]);
    assert.deepEqual(withFilters(mirror({})), [`${M}.backendRef: required`]);
  });

  it('percent 0-100, fraction numerator >= 0 and <= denominator (default 100), denominator > 0', () => {
    assert.deepEqual(withFilters(mirror({ backendRef: backend, percent: 101 })), [`${M}.percent: must be at most 100, found number 101`]);
    assert.deepEqual(withFilters(mirror({ backendRef: backend, fraction: { numerator: -1, denominator: 0 } })), [
      `${M}.fraction.numerator: must be at least 0, found number -1`,
      `${M}.fraction.denominator: must be at least 1, found number 0`,
    ]);
    assert.deepEqual(withFilters(mirror({ backendRef: backend, fraction: { numerator: 101 } })), [`${M}.fraction: numerator must be less than or equal to denominator`]);
    assert.deepEqual(withFilters(mirror({ backendRef: backend, fraction: { numerator: 3, denominator: 2 } })), [`${M}.fraction: numerator must be less than or equal to denominator`]);
    assert.deepEqual(withFilters(mirror({ backendRef: backend, fraction: { denominator: 2 } })), [`${M}.fraction.numerator: required`]);
  });

  it('only one of percent or fraction', () => {
    assert.deepEqual(withFilters(mirror({ backendRef: backend, percent: 10, fraction: { numerator: 1 } })), [
      `${M}: Only one of percent or fraction may be specified in HTTPRequestMirrorFilter`,
    ]);
  });
});

describe('HTTPRoute filters: CORS and ExtensionRef', () => {
  const C = `${F0}.cors`;
  it('checks origins, methods, headers and maxAge', () => {
    assert.deepEqual(withFilters(f('CORS', 'cors', { allowOrigins: ['example.com'], allowMethods: ['FETCH'], allowHeaders: ['a b'], maxAge: 0, allowCredentials: 'yes' })), [
      `${C}.allowOrigins[0]: must be "*" or an origin such as "https://example.com", "https://*.example.com" or "http://example.com:8080", found "example.com"`,
      `${C}.allowCredentials: expected true or false, found "yes"`,
      `${C}.allowMethods[0]: expected one of GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, PATCH, *; found "FETCH"`,
      `${C}.allowHeaders[0]: must be an HTTP header name (1-256 letters, digits or !#$%&'*+-.^_\`|~), found "a b"`,
      `${C}.maxAge: must be at least 1, found number 0`,
    ]);
  });

  it("refuses '*' beside other values and repeated values", () => {
    assert.deepEqual(withFilters(f('CORS', 'cors', { allowOrigins: ['*', 'https://a.example'], allowMethods: ['GET', '*'], allowHeaders: ['*', 'x-a'], exposeHeaders: ['x-a', 'x-a'] })), [
      `${C}.allowOrigins: AllowOrigins cannot contain '*' alongside other origins`,
      `${C}.allowMethods: AllowMethods cannot contain '*' alongside other methods`,
      `${C}.allowHeaders: AllowHeaders cannot contain '*' alongside other methods`,
      `${C}.exposeHeaders[1]: Duplicate value: "x-a"`,
    ]);
  });

  it('ExtensionRef needs group, kind and name', () => {
    assert.deepEqual(withFilters(f('ExtensionRef', 'extensionRef', { name: 'ext' })), [`${F0}.extensionRef.group: required`, `${F0}.extensionRef.kind: required`]);
  });
});

describe('HTTPRoute filters: list and rule rules', () => {
  for (const [type, field, settings] of [
    ['RequestHeaderModifier', 'requestHeaderModifier', {}],
    ['ResponseHeaderModifier', 'responseHeaderModifier', {}],
    ['RequestRedirect', 'requestRedirect', {}],
    ['URLRewrite', 'urlRewrite', {}],
    ['CORS', 'cors', {}],
  ] as const) {
    it(`${type} filter cannot be repeated, on the rule and on a backend`, () => {
      const twice = [f(type, field, settings), f(type, field, settings)];
      assert.deepEqual(withFilters(...twice), [`spec.rules[0].filters: ${type} filter cannot be repeated`]);
      assert.deepEqual(http({ backendRefs: [{ ...backend, filters: twice }] }), [`spec.rules[0].backendRefs[0].filters: ${type} filter cannot be repeated`]);
    });
  }

  it('RequestMirror and ExtensionRef may be repeated', () => {
    assert.deepEqual(withFilters(mirror({ backendRef: backend }), mirror({ backendRef: backend }), f('ExtensionRef', 'extensionRef', { group: '', kind: 'K', name: 'a' }), f('ExtensionRef', 'extensionRef', { group: '', kind: 'K', name: 'b' })), []);
  });

  it('RequestRedirect and URLRewrite exclude each other, on the rule and on a backend', () => {
    const both = [redirect({}), rewrite({})];
    assert.deepEqual(withFilters(...both), ['spec.rules[0].filters: May specify either httpRouteFilterRequestRedirect or httpRouteFilterRequestRewrite, but not both']);
    assert.deepEqual(http({ backendRefs: [{ ...backend, filters: both }] }), [
      'spec.rules[0].backendRefs[0].filters: May specify either httpRouteFilterRequestRedirect or httpRouteFilterRequestRewrite, but not both',
    ]);
  });

  it('RequestRedirect filter must not be used together with backendRefs', () => {
    assert.deepEqual(http({ filters: [redirect({})], backendRefs: [backend] }), ['spec.rules[0]: RequestRedirect filter must not be used together with backendRefs']);
    assert.deepEqual(http({ filters: [redirect({})], backendRefs: [] }), []);
  });

  it('replacePrefixMatch needs exactly one PathPrefix match, for the rule\'s and the backends\' filters', () => {
    const prefix = { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/new' } };
    const two = [{ path: { value: '/a' } }, { path: { value: '/b' } }];
    const exact = [{ path: { type: 'Exact', value: '/a' } }];
    assert.deepEqual(http({ matches: two, filters: [redirect(prefix)] }), [
      'spec.rules[0]: When using RequestRedirect filter with path.replacePrefixMatch, exactly one PathPrefix match must be specified',
    ]);
    assert.deepEqual(http({ matches: exact, filters: [rewrite(prefix)] }), [
      'spec.rules[0]: When using URLRewrite filter with path.replacePrefixMatch, exactly one PathPrefix match must be specified',
    ]);
    assert.deepEqual(http({ matches: two, backendRefs: [{ ...backend, filters: [redirect(prefix)] }] }), [
      'spec.rules[0]: Within backendRefs, when using RequestRedirect filter with path.replacePrefixMatch, exactly one PathPrefix match must be specified',
    ]);
    assert.deepEqual(http({ matches: [], backendRefs: [{ ...backend, filters: [rewrite(prefix)] }] }), [
      'spec.rules[0]: Within backendRefs, When using URLRewrite filter with path.replacePrefixMatch, exactly one PathPrefix match must be specified',
    ]);
    // One match whose path is absent or untyped is a PathPrefix match; ReplaceFullPath has no such rule.
    assert.deepEqual(http({ matches: [{ headers: [{ name: 'x', value: 'y' }] }], filters: [rewrite(prefix)] }, { matches: [{ path: { value: '/a' } }], filters: [rewrite(prefix)] }), []);
    assert.deepEqual(http({ matches: two, filters: [rewrite({ path: { type: 'ReplaceFullPath', replaceFullPath: '/' } })] }), []);
  });

  it('backendRequest timeout cannot be longer than request timeout (a zero request timeout is no limit)', () => {
    assert.deepEqual(http({ timeouts: { request: '1s', backendRequest: '1001ms' } }), ['spec.rules[0].timeouts: backendRequest timeout cannot be longer than request timeout']);
    assert.deepEqual(http({ timeouts: { request: '1m', backendRequest: '1h' } }), ['spec.rules[0].timeouts: backendRequest timeout cannot be longer than request timeout']);
    assert.deepEqual(http({ timeouts: { request: '1h30m', backendRequest: '90m' } }, { timeouts: { request: '0ms', backendRequest: '5s' } }), []);
  });

  it('retry: codes 400-599 without repeats, attempts not negative', () => {
    assert.deepEqual(http({ retry: { attempts: -1, codes: [503, 200, 503], backoff: '1.5s' } }), [
      'spec.rules[0].retry.attempts: must be at least 0, found number -1',
      'spec.rules[0].retry.backoff: must be a duration such as "10s" or "1h30m", found "1.5s"',
      'spec.rules[0].retry.codes[1]: must be at least 400, found number 200',
      'spec.rules[0].retry.codes[2]: Duplicate value: 503',
    ]);
  });
});

describe('GRPCRoute filters', () => {
  it('accepts header modifiers, mirror and ExtensionRef, on the rule and on backends', () => {
    assert.deepEqual(
      grpc({
        filters: [headers({ set: [{ name: 'x-a', value: '1' }] }), f('ResponseHeaderModifier', 'responseHeaderModifier', { remove: ['x-b'] }), mirror({ backendRef: backend, percent: 5 }), f('ExtensionRef', 'extensionRef', { group: 'example.com', kind: 'K', name: 'n' })],
        backendRefs: [{ ...backend, filters: [headers({ add: [{ name: 'x-a', value: '1' }] })] }],
      }),
      [],
    );
  });

  it("has its own type enum: HTTPRoute's redirect, rewrite and CORS are refused", () => {
    for (const [type, field] of [['RequestRedirect', 'requestRedirect'], ['URLRewrite', 'urlRewrite'], ['CORS', 'cors']]) {
      assert.deepEqual(grpc({ filters: [f(type!, field!, {})] }), [
        `${F0}.type: expected one of ResponseHeaderModifier, RequestHeaderModifier, RequestMirror, ExtensionRef; found "${type}"`,
      ]);
    }
  });

  it('union rules and filter contents as for HTTPRoute', () => {
    assert.deepEqual(grpc({ filters: [{ type: 'RequestMirror', requestHeaderModifier: { set: [{ name: 'x y', value: 'v' }] } }] }), [
      `${F0}.requestHeaderModifier.set[0].name: must be an HTTP header name (1-256 letters, digits or !#$%&'*+-.^_\`|~), found "x y"`,
      `${F0}: filter.requestHeaderModifier must be nil if the filter.type is not RequestHeaderModifier`,
      `${F0}: filter.requestMirror must be specified for RequestMirror filter.type`,
    ]);
    assert.deepEqual(grpc({ backendRefs: [{ ...backend, filters: [{ type: 'ExtensionRef' }] }] }), [
      'spec.rules[0].backendRefs[0].filters[0]: filter.extensionRef must be specified for ExtensionRef filter.type',
    ]);
  });

  it('header modifiers cannot be repeated on the rule (the CRD has no such rule for backends)', () => {
    const twice = [headers({}), headers({})];
    assert.deepEqual(grpc({ filters: twice }), ['spec.rules[0].filters: RequestHeaderModifier filter cannot be repeated']);
    const responseTwice = [f('ResponseHeaderModifier', 'responseHeaderModifier', {}), f('ResponseHeaderModifier', 'responseHeaderModifier', {})];
    assert.deepEqual(grpc({ filters: responseTwice }), ['spec.rules[0].filters: ResponseHeaderModifier filter cannot be repeated']);
    assert.deepEqual(grpc({ backendRefs: [{ ...backend, filters: twice }] }), []);
  });

  it('GRPCMethodMatch: Exact service and method names must be protobuf identifiers', () => {
    const M = 'spec.rules[0].matches[0].method';
    const match = (method: Obj) => grpc({ matches: [{ method }] });
    assert.deepEqual(match({ service: 'foo.v1.Echo', method: 'Say_Hello2' }), []);
    assert.deepEqual(match({ service: '.Echo' }), []);
    assert.deepEqual(match({ type: 'Exact', service: 'foo/Echo', method: 'Say-Hello' }), [
      `${M}: service must only contain valid characters (matching ^(?i)\\.?[a-z_][a-z_0-9]*(\\.[a-z_][a-z_0-9]*)*$)`,
      `${M}: method must only contain valid characters (matching ^[A-Za-z_][A-Za-z_0-9]*$)`,
    ]);
    assert.deepEqual(match({ type: 'RegularExpression', service: 'foo/.*', method: '.*' }), []);
    assert.deepEqual(match({ type: 'Exact' }), [`${M}: One or both of 'service' or 'method' must be specified`]);
  });
});
