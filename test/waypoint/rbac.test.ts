// The waypoint's L7 authorization against Istio's semantics: value forms from pilot/pkg/security/authz/model
// (generator.go, generator_test.go TestRequestPrincipal/TestServiceAccount/TestNamespaceMatcherRegex), the builder
// goldens (testdata/tcp/{allow,deny}-both-http-tcp, allow-only-http, dry-run-*) and the Envoy RBAC filter order.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  RBAC_DENIED_BODY,
  authorize,
  compilePolicies,
  type AuthzDecision,
  type RequestAttributes,
  type TrafficKind,
} from '../../src/waypoint/authz/rbac.js';
import type { PolicyRule, WaypointPolicy } from '../../src/xds/types.js';

interface RequestSpec {
  sourceIp?: string;
  remoteIp?: string;
  principal?: string | null; // null: no mTLS identity
  destinationIp?: string;
  destinationPort?: number;
  sni?: string;
  method?: string;
  path?: string;
  host?: string;
  headers?: Record<string, string>;
  jwt?: Record<string, unknown>;
  tcp?: boolean;
}

function request(s: RequestSpec = {}): RequestAttributes {
  const headers = s.headers ?? {};
  return {
    sourceIp: s.sourceIp ?? '10.0.0.1',
    remoteIp: s.remoteIp ?? s.sourceIp ?? '10.0.0.1',
    ...(s.principal !== null && { sourcePrincipal: s.principal ?? 'cluster.local/ns/foo/sa/bar' }),
    destinationIp: s.destinationIp ?? '10.0.0.2',
    destinationPort: s.destinationPort ?? 8080,
    ...(s.sni !== undefined && { sni: s.sni }),
    ...(!s.tcp && {
      http: {
        method: s.method ?? 'GET',
        path: s.path ?? '/public/page?x=1',
        host: s.host ?? 'svc.foo.svc.cluster.local',
        header: (name: string) => headers[name],
      },
    }),
    ...(s.jwt !== undefined && { jwt: { payload: s.jwt } }),
  };
}

function policy(rules: PolicyRule[] | undefined, extra: Partial<WaypointPolicy> = {}): WaypointPolicy {
  return { name: 'p', namespace: 'foo', action: 'ALLOW', dryRun: false, rules: rules as PolicyRule[], ...extra };
}

function decide(policies: WaypointPolicy[], r: RequestAttributes, kind: TrafficKind = 'http'): AuthzDecision {
  return authorize(compilePolicies(policies, kind).compiled, r);
}

/** Whether a single rule matches, seen through a lone ALLOW policy (allowed iff the rule matches). */
function ruleMatches(rule: PolicyRule, s: RequestSpec, kind: TrafficKind = 'http'): boolean {
  const { compiled, problems } = compilePolicies([policy([rule])], kind);
  assert.deepEqual(problems, [], 'the rule compiles without problems');
  return authorize(compiled, request(s)).allowed;
}

type Case = [name: string, rule: PolicyRule, request: RequestSpec, matches: boolean];

function cases(title: string, table: Case[]): void {
  describe(title, () => {
    for (const [name, rule, s, want] of table) {
      it(`${name} → ${want ? 'matches' : 'no match'}`, () => assert.equal(ruleMatches(rule, s), want));
    }
  });
}

const from = (source: NonNullable<PolicyRule['from']>[number]['source']): PolicyRule => ({ from: [{ source }] });
const to = (operation: NonNullable<PolicyRule['to']>[number]['operation']): PolicyRule => ({ to: [{ operation }] });
const when = (key: string, values?: string[], notValues?: string[]): PolicyRule => ({
  when: [{ key, ...(values && { values }), ...(notValues && { notValues }) }],
});

const noIdentity: RequestSpec = { principal: null };

cases('principals and source.principal (matched as spiffe://<principal>)', [
  ['exact', from({ principals: ['cluster.local/ns/foo/sa/bar'] }), {}, true],
  ['exact, other SA', from({ principals: ['cluster.local/ns/foo/sa/baz'] }), {}, false],
  ['a spiffe:// value never matches (Istio prefixes it again)', from({ principals: ['spiffe://cluster.local/ns/foo/sa/bar'] }), {}, false],
  ['prefix', from({ principals: ['cluster.local/ns/foo/*'] }), {}, true],
  ['prefix mismatch', from({ principals: ['cluster.local/ns/other/*'] }), {}, false],
  ['suffix', from({ principals: ['*/sa/bar'] }), {}, true],
  ['suffix mismatch', from({ principals: ['*/sa/baz'] }), {}, false],
  ['* with identity', from({ principals: ['*'] }), {}, true],
  ['* without identity', from({ principals: ['*'] }), noIdentity, false],
  ['notPrincipals * without identity', from({ notPrincipals: ['*'] }), noIdentity, true],
  ['notPrincipals * with identity', from({ notPrincipals: ['*'] }), {}, false],
  ['values are ORed', from({ principals: ['x', 'cluster.local/ns/foo/sa/bar'] }), {}, true],
  ['notPrincipals must match none', from({ notPrincipals: ['x', '*/sa/bar'] }), {}, false],
  ['source.principal', when('source.principal', ['cluster.local/ns/foo/sa/bar']), {}, true],
  ['source.principal notValues', when('source.principal', undefined, ['cluster.local/*']), {}, false],
  ['source.principal without identity', when('source.principal', ['*']), noIdentity, false],
]);

cases('namespaces and source.namespace (regex .*/ns/<ns>/.*, every * is .*)', [
  ['exact', from({ namespaces: ['foo'] }), {}, true],
  ['exact mismatch', from({ namespaces: ['fo'] }), {}, false],
  ['prefix', from({ namespaces: ['fo*'] }), {}, true],
  ['suffix', from({ namespaces: ['*oo'] }), {}, true],
  ['inner wildcard (Envoy only)', from({ namespaces: ['f*o'] }), {}, true],
  ['*', from({ namespaces: ['*'] }), {}, true],
  ['* without identity', from({ namespaces: ['*'] }), noIdentity, false],
  ['dot is literal', from({ namespaces: ['ns.prod'] }), { principal: 'cluster.local/ns/nsXprod/sa/admin' }, false],
  ['dot with wildcard', from({ namespaces: ['ns.*.prod'] }), { principal: 'cluster.local/ns/ns.any.prod/sa/admin' }, true],
  ['dot with wildcard, literal dots required', from({ namespaces: ['ns.*.prod'] }), { principal: 'cluster.local/ns/nsXanyXprod/sa/admin' }, false],
  ['/ns/ anywhere in the identity', from({ namespaces: ['foo'] }), { principal: 'td/x/ns/foo/sa/y' }, true],
  ['/ns/ right after spiffe://', from({ namespaces: ['foo'] }), { principal: 'ns/foo/sa/y' }, true],
  ['notNamespaces', from({ notNamespaces: ['foo'] }), {}, false],
  ['notNamespaces without identity', from({ notNamespaces: ['foo'] }), noIdentity, true],
  ['source.namespace', when('source.namespace', ['foo']), {}, true],
  ['source.namespace notValues', when('source.namespace', undefined, ['bar']), {}, true],
]);

// generator_test.go TestServiceAccount, over the principal without spiffe://.
const sa = (identity: string, value = 'my-ns/my-sa'): Case => [`${value} vs ${identity}`, from({ serviceAccounts: [value] }), { principal: identity }, false];
cases('serviceAccounts and source.serviceAccount', [
  [...sa('cluster.local/ns/my-ns/sa/my-sa').slice(0, 3), true] as Case,
  [...sa('cluster.local/ns/my-ns/sa/my-sa/k/v').slice(0, 3), true] as Case,
  [...sa('cluster.local/k/v/ns/my-ns/sa/my-sa').slice(0, 3), true] as Case,
  [...sa('cluster.local/ns/my-ns/k/v/sa/my-sa').slice(0, 3), true] as Case,
  [...sa('cluster.local/k1/v1/ns/my-ns/k2/v2/sa/my-sa/k3/v3').slice(0, 3), true] as Case,
  sa('cluster.local/ns/my-ns/sa/my-sa-suffix'),
  sa('cluster.local/ns/my-ns-suffix/sa/my-sa'),
  sa('ns/my-ns/sa/my-sa'), // no trust domain
  sa('cluster.local/ns/my-ns'),
  sa('cluster.local/sa/my-sa'),
  [...sa('cluster.local/ns/my.ns/sa/my.sa', 'my.ns/my.sa').slice(0, 3), true] as Case,
  sa('cluster.local/ns/myXns/sa/my.sa', 'my.ns/my.sa'),
  sa('cluster.local/ns/my.ns/sa/myXsa', 'my.ns/my.sa'),
  ['bare SA means the policy namespace', from({ serviceAccounts: ['bar'] }), {}, true],
  ['bare SA in another namespace', from({ serviceAccounts: ['bar'] }), { principal: 'cluster.local/ns/other/sa/bar' }, false],
  ['no identity', from({ serviceAccounts: ['foo/bar'] }), noIdentity, false],
  ['notServiceAccounts', from({ notServiceAccounts: ['foo/bar'] }), {}, false],
  ['source.serviceAccount', when('source.serviceAccount', ['foo/bar']), {}, true],
  ['source.serviceAccount bare', when('source.serviceAccount', ['baz']), {}, false],
]);

cases('trustDomains and source.trustDomain', [
  ['exact', from({ trustDomains: ['cluster.local'] }), {}, true],
  ['exact needs the whole trust domain', from({ trustDomains: ['cluster'] }), {}, false],
  ['*', from({ trustDomains: ['*'] }), {}, true],
  ['* without identity', from({ trustDomains: ['*'] }), noIdentity, false],
  ['prefix', from({ trustDomains: ['cluster.*'] }), {}, true],
  ['suffix', from({ trustDomains: ['*local'] }), {}, true],
  ['wildcard stays inside the trust domain', from({ trustDomains: ['*foo'] }), {}, false],
  ['dot is literal', from({ trustDomains: ['cluster.*'] }), { principal: 'clusterXlocal/ns/foo/sa/bar' }, false],
  ['notTrustDomains', from({ notTrustDomains: ['other.td'] }), {}, true],
  ['source.trustDomain', when('source.trustDomain', ['cluster.local']), {}, true],
]);

cases('ipBlocks / source.ip (direct peer) and remoteIpBlocks / remote.ip (trusted client address)', [
  ['single IP', from({ ipBlocks: ['10.0.0.1'] }), {}, true],
  ['other IP', from({ ipBlocks: ['10.0.0.9'] }), {}, false],
  ['CIDR', from({ ipBlocks: ['10.0.0.0/24'] }), {}, true],
  ['CIDR with host bits (Envoy masks them)', from({ ipBlocks: ['10.0.0.77/24'] }), {}, true],
  ['CIDR mismatch', from({ ipBlocks: ['10.0.1.0/24'] }), {}, false],
  ['/0', from({ ipBlocks: ['0.0.0.0/0'] }), {}, true],
  ['notIpBlocks', from({ notIpBlocks: ['10.0.0.0/8'] }), {}, false],
  ['IPv6 CIDR', from({ ipBlocks: ['fd00::/16'] }), { sourceIp: 'fd00::1' }, true],
  ['IPv6 CIDR mismatch', from({ ipBlocks: ['fd00::/16'] }), { sourceIp: 'fd01::1' }, false],
  ['IPv6 CIDR odd prefix length', from({ ipBlocks: ['2001:db8:8000::/33'] }), { sourceIp: '2001:db8:ffff::1' }, true],
  ['IPv6 CIDR odd prefix length mismatch', from({ ipBlocks: ['2001:db8:8000::/33'] }), { sourceIp: '2001:db8:7fff::1' }, false],
  ['IPv6 single address', from({ ipBlocks: ['2001:db8::1'] }), { sourceIp: '2001:db8:0:0::1' }, true],
  ['IPv4 block never matches an IPv6 peer', from({ ipBlocks: ['0.0.0.0/0'] }), { sourceIp: '::1' }, false],
  ['IPv6 block never matches an IPv4 peer', from({ ipBlocks: ['::/0'] }), {}, false],
  ['IPv4-mapped IPv6', from({ ipBlocks: ['::ffff:10.0.0.0/120'] }), { sourceIp: '::ffff:10.0.0.5' }, true],
  ['ipBlocks ignores the remote address', from({ ipBlocks: ['192.168.1.1'] }), { remoteIp: '192.168.1.1' }, false],
  ['remoteIpBlocks uses the remote address', from({ remoteIpBlocks: ['192.168.1.0/24'] }), { remoteIp: '192.168.1.1' }, true],
  ['remoteIpBlocks ignores the peer', from({ remoteIpBlocks: ['10.0.0.1'] }), { remoteIp: '192.168.1.1' }, false],
  ['notRemoteIpBlocks', from({ notRemoteIpBlocks: ['192.168.1.1'] }), { remoteIp: '192.168.1.1' }, false],
  ['source.ip', when('source.ip', ['10.0.0.1']), {}, true],
  ['source.ip notValues', when('source.ip', undefined, ['10.0.0.0/8']), {}, false],
  ['remote.ip', when('remote.ip', ['203.0.113.0/24']), { remoteIp: '203.0.113.9' }, true],
  ['destination.ip', when('destination.ip', ['10.0.0.2']), {}, true],
  ['destination.ip CIDR mismatch', when('destination.ip', ['10.1.0.0/16']), {}, false],
  ['destination.ip notValues', when('destination.ip', undefined, ['10.0.0.2']), {}, false],
]);

describe('IP parsing', () => {
  it('request addresses: every IPv6 spelling parses, malformed ones match nothing', () => {
    const anyV6 = from({ ipBlocks: ['::/0'] });
    for (const ip of ['::', '::1', '1::', '1:2:3:4:5:6:7::', 'fd00::1.2.3.4', '1:2:3:4:5:6:7:8', 'fe80::1%eth0']) {
      assert.equal(ruleMatches(anyV6, { sourceIp: ip }), true, ip);
    }
    for (const ip of ['1:2:3:4:5:6::7:8', ':::', '1::2::3', '12345::', '1:2:3:4:5:6:7:8:9', '1:', '::1.2.3', '']) {
      assert.equal(ruleMatches(anyV6, { sourceIp: ip }), false, ip);
      assert.equal(ruleMatches(from({ ipBlocks: ['0.0.0.0/0'] }), { sourceIp: ip }), false, ip);
    }
  });

  it('the per-request IPv6 buffers are rewritten completely on every request', () => {
    const { compiled } = compilePolicies([policy([from({ ipBlocks: ['fd00::/64'] })])], 'http');
    assert.equal(authorize(compiled, request({ sourceIp: 'fd00:1:2:3:4:5:6:7' })).allowed, false);
    assert.equal(authorize(compiled, request({ sourceIp: 'fd00::7' })).allowed, true);
  });

  it('a zone is accepted on a bare IP but not in a CIDR (netip.ParseAddr vs ParsePrefix)', () => {
    assert.deepEqual(compilePolicies([policy([from({ ipBlocks: ['fe80::1%eth0'] })])], 'http').problems, []);
    assert.equal(compilePolicies([policy([from({ ipBlocks: ['fe80::1%eth0/64'] })])], 'http').problems.length, 1);
  });
});

cases('ports and destination.port', [
  ['port', to({ ports: ['8080'] }), {}, true],
  ['other port', to({ ports: ['80'] }), {}, false],
  ['leading zeros parse as the number', to({ ports: ['08080'] }), {}, true],
  ['notPorts', to({ notPorts: ['8080'] }), {}, false],
  ['notPorts other', to({ notPorts: ['80'] }), {}, true],
  ['destination.port', when('destination.port', ['8080']), {}, true],
  ['destination.port notValues', when('destination.port', ['8080'], ['8080']), {}, false],
]);

cases('hosts (:authority, case-insensitive, port included)', [
  ['exact', to({ hosts: ['svc.foo.svc.cluster.local'] }), {}, true],
  ['value case is ignored', to({ hosts: ['SVC.Foo.svc.cluster.local'] }), {}, true],
  ['request case is ignored', to({ hosts: ['svc.foo.svc.cluster.local'] }), { host: 'Svc.FOO.svc.cluster.local' }, true],
  ['the port is part of the authority', to({ hosts: ['a.com'] }), { host: 'a.com:8080' }, false],
  ['prefix covers the port', to({ hosts: ['a.com:*'] }), { host: 'a.com:8080' }, true],
  ['suffix', to({ hosts: ['*.cluster.local'] }), {}, true],
  ['suffix, case-insensitive', to({ hosts: ['*.COM'] }), { host: 'x.com' }, true],
  ['prefix', to({ hosts: ['svc.*'] }), {}, true],
  ['* = present', to({ hosts: ['*'] }), {}, true],
  ['* without :authority', to({ hosts: ['*'] }), { host: '' }, false],
  ['notHosts', to({ notHosts: ['SVC.foo.svc.cluster.local'] }), {}, false],
  ['notHosts other', to({ notHosts: ['other'] }), {}, true],
]);

cases('methods (:method, case-sensitive)', [
  ['exact', to({ methods: ['GET'] }), {}, true],
  ['case matters', to({ methods: ['get'] }), {}, false],
  ['prefix', to({ methods: ['G*'] }), {}, true],
  ['suffix', to({ methods: ['*ET'] }), {}, true],
  ['* = present', to({ methods: ['*'] }), {}, true],
  ['notMethods', to({ notMethods: ['GET'] }), {}, false],
  ['notMethods other', to({ notMethods: ['POST'] }), { method: 'GET' }, true],
  ['gRPC is POST', to({ methods: ['POST'] }), { method: 'POST', path: '/pkg.Svc/Call' }, true],
]);

cases('paths (url_path: query and fragment stripped, case-sensitive)', [
  ['exact ignores the query', to({ paths: ['/public/page'] }), {}, true],
  ['exact ignores the fragment', to({ paths: ['/a'] }), { path: '/a#x' }, true],
  ['exact is case-sensitive', to({ paths: ['/Public/page'] }), {}, false],
  ['exact is the whole path', to({ paths: ['/public'] }), {}, false],
  ['prefix', to({ paths: ['/public*'] }), {}, true],
  ['prefix does not see the query', to({ paths: ['/public/page?x*'] }), {}, false],
  ['suffix', to({ paths: ['*/page'] }), {}, true],
  ['suffix before the query', to({ paths: ['*x=1'] }), {}, false],
  ['* matches any path', to({ paths: ['*'] }), {}, true],
  ['an inner * is literal', to({ paths: ['/pub*ic/page'] }), {}, false],
  ['notPaths', to({ notPaths: ['/public*'] }), {}, false],
  ['notPaths other', to({ notPaths: ['/private*'] }), {}, true],
  ['{*} is one segment', to({ paths: ['/public/{*}'] }), {}, true],
  ['{*} is not two segments', to({ paths: ['/public/{*}'] }), { path: '/public/a/b' }, false],
  ['{*} is not empty', to({ paths: ['/public/{*}'] }), { path: '/public/' }, false],
  ['{*} in the middle', to({ paths: ['/{*}/page'] }), {}, true],
  ['{**} at the end spans segments', to({ paths: ['/public/{**}'] }), { path: '/public/a/b/c' }, true],
  ['{**} may be empty after its slash', to({ paths: ['/public/{**}'] }), { path: '/public/' }, true],
  ['{**} still needs its slash', to({ paths: ['/public/{**}'] }), { path: '/public' }, false],
  ['{**} followed by a literal', to({ paths: ['/{**}/page'] }), { path: '/x/y/page' }, true],
  ['{**} followed by a literal, mismatch', to({ paths: ['/{**}/page'] }), { path: '/x/y/other' }, false],
  ['template ignores the query', to({ paths: ['/public/{*}'] }), { path: '/public/page?a=/b' }, true],
  ['template literal is case-sensitive', to({ paths: ['/Public/{*}'] }), {}, false],
  ['template trailing slash', to({ paths: ['/{*}/'] }), { path: '/public/' }, true],
  ['template glob excludes non-pchar characters', to({ paths: ['/{*}'] }), { path: '/a%20b' }, true],
  ['template glob excludes "', to({ paths: ['/{**}'] }), { path: '/a"b' }, false],
]);

const headers = { 'x-header': 'header-value', 'x-empty': '', 'x-multi': 'a,b' };
cases('request.headers[<name>]', [
  ['exact', when('request.headers[X-Header]', ['header-value']), { headers }, true],
  ['value is case-sensitive', when('request.headers[x-header]', ['Header-value']), { headers }, false],
  ['prefix', when('request.headers[x-header]', ['header-*']), { headers }, true],
  ['suffix', when('request.headers[x-header]', ['*-value']), { headers }, true],
  ['* = present', when('request.headers[x-header]', ['*']), { headers }, true],
  ['* = present, even empty', when('request.headers[x-empty]', ['*']), { headers }, true],
  ['absent', when('request.headers[x-missing]', ['*']), { headers }, false],
  ['several values joined by ,', when('request.headers[x-multi]', ['a,b']), { headers }, true],
  ['notValues', when('request.headers[x-header]', undefined, ['header-value']), { headers }, false],
  ['notValues on an absent header', when('request.headers[x-missing]', undefined, ['*']), { headers }, true],
  ['values and notValues are ANDed', when('request.headers[x-header]', ['header-*'], ['*-value']), { headers }, false],
  ['pseudo-header :method', when('request.headers[:method]', ['GET']), {}, true],
  ['pseudo-header :path keeps the query', when('request.headers[:path]', ['*?x=1']), {}, true],
  ['pseudo-header :authority', when('request.headers[:authority]', ['svc.*']), {}, true],
]);

const jwt = {
  iss: 'https://issuer.example',
  sub: 'user-1',
  aud: ['api', 'web'],
  azp: 'client-1',
  groups: ['admin', 'dev'],
  scope: 'read  write',
  permission: 'p1 p2',
  team: 'core infra',
  exp: 1700000000,
  nested: { level: { name: 'deep' }, list: ['x'] },
};
cases('requestPrincipals and request.auth.principal (iss/sub split at the last /)', [
  ['iss/sub exact', from({ requestPrincipals: ['https://issuer.example/user-1'] }), { jwt }, true],
  ['other sub', from({ requestPrincipals: ['https://issuer.example/user-2'] }), { jwt }, false],
  ['no token', from({ requestPrincipals: ['*'] }), {}, false],
  ['*: both present', from({ requestPrincipals: ['*'] }), { jwt }, true],
  ['* needs a non-empty sub', from({ requestPrincipals: ['*'] }), { jwt: { ...jwt, sub: '' } }, false],
  ['iss/*', from({ requestPrincipals: ['https://issuer.example/*'] }), { jwt }, true],
  ['iss/prefix*', from({ requestPrincipals: ['https://issuer.example/user*'] }), { jwt }, true],
  ['iss/prefix* mismatch', from({ requestPrincipals: ['https://issuer.example/admin*'] }), { jwt }, false],
  ['*/sub', from({ requestPrincipals: ['*/user-1'] }), { jwt }, true],
  ['*/sub needs a non-empty iss', from({ requestPrincipals: ['*/user-1'] }), { jwt: { iss: '', sub: 'user-1' } }, false],
  ['*suffix/sub', from({ requestPrincipals: ['*.example/user-1'] }), { jwt }, true],
  ['*suffix/sub mismatch', from({ requestPrincipals: ['*.other/user-1'] }), { jwt }, false],
  ['prefix* without / is the issuer prefix', from({ requestPrincipals: ['https:*'] }), { jwt: { iss: 'https:x', sub: 'y' } }, true],
  ['prefix* with / splits at the last /', from({ requestPrincipals: ['https://issuer*'] }), { jwt }, false],
  ['*suffix without / is the subject suffix', from({ requestPrincipals: ['*-1'] }), { jwt }, true],
  ['a non-string sub never matches', from({ requestPrincipals: ['*'] }), { jwt: { iss: 'i', sub: 7 } }, false],
  ['notRequestPrincipals * without a token', from({ notRequestPrincipals: ['*'] }), {}, true],
  ['notRequestPrincipals * with a token', from({ notRequestPrincipals: ['*'] }), { jwt }, false],
  ['request.auth.principal', when('request.auth.principal', ['https://issuer.example/user-1']), { jwt }, true],
  ['request.auth.principal notValues', when('request.auth.principal', undefined, ['*']), { jwt }, false],
]);

cases('request.auth.audiences / presenter / claims', [
  ['audiences: one element of the aud list', when('request.auth.audiences', ['web']), { jwt }, true],
  ['audiences: string aud', when('request.auth.audiences', ['api']), { jwt: { aud: 'api' } }, true],
  ['audiences: prefix', when('request.auth.audiences', ['w*']), { jwt }, true],
  ['audiences: mismatch', when('request.auth.audiences', ['other']), { jwt }, false],
  ['audiences: no token', when('request.auth.audiences', ['*']), {}, false],
  ['audiences: notValues without a token', when('request.auth.audiences', undefined, ['api']), {}, true],
  ['presenter is azp', when('request.auth.presenter', ['client-1']), { jwt }, true],
  ['presenter mismatch', when('request.auth.presenter', ['client-2']), { jwt }, false],
  ['claims: list element', when('request.auth.claims[groups]', ['admin']), { jwt }, true],
  ['claims: list, no element', when('request.auth.claims[groups]', ['ops']), { jwt }, false],
  ['claims: string', when('request.auth.claims[iss]', ['https://issuer.example']), { jwt }, true],
  ['claims: suffix', when('request.auth.claims[iss]', ['*.example']), { jwt }, true],
  ['claims: * is non-empty', when('request.auth.claims[azp]', ['*']), { jwt }, true],
  ['claims: absent claim', when('request.auth.claims[missing]', ['*']), { jwt }, false],
  ['claims: numbers are not strings', when('request.auth.claims[exp]', ['1700000000']), { jwt }, false],
  ['claims: nested', when('request.auth.claims[nested][level][name]', ['deep']), { jwt }, true],
  ['claims: nested list', when('request.auth.claims[nested][list]', ['x']), { jwt }, true],
  ['claims: nested through a non-object', when('request.auth.claims[iss][x]', ['*']), { jwt }, false],
  ['claims: inherited properties are not claims', when('request.auth.claims[role]', ['admin']), { jwt: Object.assign(Object.create({ role: 'admin' }), jwt) }, false],
  ['claims: scope is split on spaces', when('request.auth.claims[scope]', ['write']), { jwt }, true],
  ['claims: scope words, prefix', when('request.auth.claims[scope]', ['wr*']), { jwt }, true],
  ['claims: scope is no longer the whole string', when('request.auth.claims[scope]', ['read  write']), { jwt }, false],
  ['claims: a scope without words stays a string', when('request.auth.claims[scope]', ['  ']), { jwt: { scope: '  ' } }, true],
  ['claims: permission is split on spaces', when('request.auth.claims[permission]', ['p2']), { jwt }, true],
  ['claims: other claims are not split', when('request.auth.claims[team]', ['core']), { jwt }, false],
  ['claims: other claims match whole', when('request.auth.claims[team]', ['core infra']), { jwt }, true],
  ['claims: notValues', when('request.auth.claims[groups]', undefined, ['admin']), { jwt }, false],
]);

cases('connection.sni (empty at the waypoint unless set)', [
  ['exact', when('connection.sni', ['svc.example']), { sni: 'svc.example' }, true],
  ['suffix', when('connection.sni', ['*.example']), { sni: 'svc.example' }, true],
  ['no SNI does not match *', when('connection.sni', ['*']), {}, false],
  ['no SNI passes notValues *', when('connection.sni', undefined, ['*']), {}, true],
  ['no SNI is the empty server name', when('connection.sni', ['']), {}, true],
]);

cases('rule structure: from OR, to OR, fields AND, when AND; absent = any', [
  ['empty rule matches everything', {}, {}, true],
  ['empty rule matches without identity or token', {}, { principal: null }, true],
  ['empty source matches', { from: [{}] }, {}, true],
  ['empty operation matches', { to: [{ operation: {} }] }, {}, true],
  ['fields in one source are ANDed', from({ namespaces: ['foo'], ipBlocks: ['10.9.9.9'] }), {}, false],
  ['sources are ORed', { from: [{ source: { namespaces: ['x'] } }, { source: { ipBlocks: ['10.0.0.1'] } }] }, {}, true],
  ['fields in one operation are ANDed', to({ methods: ['GET'], paths: ['/other'] }), {}, false],
  ['operations are ORed', { to: [{ operation: { methods: ['POST'] } }, { operation: { paths: ['/public*'] } }] }, {}, true],
  ['from AND to', { from: [{ source: { namespaces: ['foo'] } }], to: [{ operation: { methods: ['POST'] } }] }, {}, false],
  ['all when conditions must match', { when: [{ key: 'source.ip', values: ['10.0.0.1'] }, { key: 'destination.port', values: ['1'] }] }, {}, false],
  ['a when condition with neither list is no condition', { when: [{ key: 'source.ip' }] }, {}, true],
  ['values and notValues together', when('source.ip', ['10.0.0.0/8'], ['10.0.0.1']), {}, false],
  ['not-fields and fields together', from({ namespaces: ['foo'], notPrincipals: ['*/sa/other'] }), {}, true],
]);

describe('evaluation order: DENY, then ALLOW; AUDIT never decides', () => {
  const denyGet = policy([to({ methods: ['POST'] }), to({ methods: ['GET'] })], { name: 'deny-get', action: 'DENY' });
  const allowFoo = policy([from({ namespaces: ['foo'] })], { name: 'allow-foo' });
  const allowNobody = policy([from({ namespaces: ['nobody'] })], { name: 'allow-nobody' });

  it('no policies: allowed', () => {
    assert.deepEqual(decide([], request()), { allowed: true });
  });

  it('a DENY match denies with the id of the matching rule', () => {
    assert.deepEqual(decide([denyGet], request()), { allowed: false, matchedPolicy: 'ns[foo]-policy[deny-get]-rule[1]' });
    assert.deepEqual(decide([denyGet], request({ method: 'PUT' })), { allowed: true });
  });

  it('DENY wins over a matching ALLOW', () => {
    assert.equal(decide([allowFoo, denyGet], request()).matchedPolicy, 'ns[foo]-policy[deny-get]-rule[1]');
    assert.equal(decide([allowFoo, denyGet], request({ method: 'PUT' })).allowed, true);
  });

  it('ALLOW policies without a match deny with `none`', () => {
    assert.deepEqual(decide([allowNobody], request()), { allowed: false, matchedPolicy: 'none' });
    assert.deepEqual(decide([allowNobody, allowFoo], request()), { allowed: true });
  });

  it('ALLOW without rules (spec: {}) denies everything; DENY without rules denies nothing', () => {
    assert.deepEqual(decide([policy(undefined)], request()), { allowed: false, matchedPolicy: 'none' });
    assert.deepEqual(decide([policy([])], request({ principal: null })), { allowed: false, matchedPolicy: 'none' });
    assert.deepEqual(decide([policy([], { action: 'DENY' })], request()), { allowed: true });
  });

  it('ALLOW with an empty rule allows everything', () => {
    assert.deepEqual(decide([policy([{}])], request({ principal: null })), { allowed: true });
  });

  it('DENY ids come in Envoy order: sorted policy ids, so rule[10] before rule[2]', () => {
    const rules: PolicyRule[] = Array.from({ length: 11 }, (_, i) => (i === 2 || i === 10 ? {} : to({ methods: ['NEVER'] })));
    assert.equal(decide([policy(rules, { action: 'DENY' })], request()).matchedPolicy, 'ns[foo]-policy[p]-rule[10]');
    const b = policy([{}], { name: 'b', action: 'DENY' });
    const a = policy([{}], { name: 'a', action: 'DENY' });
    const other = policy([{}], { name: 'a', namespace: 'bar', action: 'DENY' });
    assert.equal(decide([b, a], request()).matchedPolicy, 'ns[foo]-policy[a]-rule[0]');
    assert.equal(decide([b, a, other], request()).matchedPolicy, 'ns[bar]-policy[a]-rule[0]');
  });

  it('absent action means ALLOW, absent dryRun means enforced', () => {
    const p = { name: 'p', namespace: 'foo', rules: [from({ namespaces: ['nobody'] })] } as unknown as WaypointPolicy;
    assert.deepEqual(decide([p], request()), { allowed: false, matchedPolicy: 'none' });
  });

  it('AUDIT reports matching policies (one id each) and never denies', () => {
    const audit = policy([to({ methods: ['POST'] }), to({ methods: ['GET'] }), {}], { name: 'audit', action: 'AUDIT' });
    const auditMiss = policy([to({ methods: ['POST'] })], { name: 'audit-miss', action: 'AUDIT' });
    const audit2 = policy([{}], { name: 'audit-2', action: 'AUDIT' });
    assert.deepEqual(decide([audit, auditMiss, audit2], request()), {
      allowed: true,
      audited: ['ns[foo]-policy[audit-2]-rule[0]', 'ns[foo]-policy[audit]-rule[1]'],
    });
    assert.deepEqual(decide([auditMiss], request()), { allowed: true });
    assert.deepEqual(decide([audit, allowNobody], request()), {
      allowed: false,
      matchedPolicy: 'none',
      audited: ['ns[foo]-policy[audit]-rule[1]'],
    });
    assert.deepEqual(decide([policy([], { action: 'AUDIT' })], request()), { allowed: true }, 'AUDIT does not create an ALLOW engine');
  });

  it('the denial body is Envoy’s', () => {
    assert.equal(RBAC_DENIED_BODY, 'RBAC: access denied');
  });
});

describe('dry-run policies only produce shadow results', () => {
  const dryDeny = policy([to({ methods: ['GET'] })], { name: 'dry-deny', action: 'DENY', dryRun: true });
  const dryAllow = policy([from({ namespaces: ['nobody'] }), from({ namespaces: ['foo'] })], { name: 'dry-allow', dryRun: true });
  const denyAll = policy([{}], { name: 'deny-all', action: 'DENY' });

  it('a matching dry-run DENY does not deny', () => {
    assert.deepEqual(decide([dryDeny], request()), {
      allowed: true,
      shadow: { deny: { policy: 'ns[foo]-policy[dry-deny]-rule[0]', result: 'denied' } },
    });
    assert.deepEqual(decide([dryDeny], request({ method: 'POST' })), { allowed: true, shadow: { deny: { policy: '', result: 'allowed' } } });
  });

  it('a dry-run ALLOW is not an ALLOW policy; its shadow result tells what it would do', () => {
    assert.deepEqual(decide([dryAllow], request()), {
      allowed: true,
      shadow: { allow: { policy: 'ns[foo]-policy[dry-allow]-rule[1]', result: 'allowed' } },
    });
    assert.deepEqual(decide([dryAllow], request({ principal: 'cluster.local/ns/x/sa/y' })), {
      allowed: true,
      shadow: { allow: { policy: '', result: 'denied' } },
    });
  });

  it('the ALLOW filter (and its shadow) is not reached after an enforced DENY', () => {
    assert.deepEqual(decide([dryDeny, dryAllow, denyAll], request()), {
      allowed: false,
      matchedPolicy: 'ns[foo]-policy[deny-all]-rule[0]',
      shadow: { deny: { policy: 'ns[foo]-policy[dry-deny]-rule[0]', result: 'denied' } },
    });
  });

  it('enforced and dry-run results side by side', () => {
    const allowNobody = policy([from({ namespaces: ['nobody'] })], { name: 'allow-nobody' });
    assert.deepEqual(decide([dryDeny, dryAllow, allowNobody], request({ method: 'POST' })), {
      allowed: false,
      matchedPolicy: 'none',
      shadow: { deny: { policy: '', result: 'allowed' }, allow: { policy: 'ns[foo]-policy[dry-allow]-rule[1]', result: 'allowed' } },
    });
  });

  it('a dry-run ALLOW whose rules were all dropped still reports a shadow denial', () => {
    const dropped = policy([to({ methods: ['GET'] })], { name: 'http-only', dryRun: true });
    assert.deepEqual(decide([dropped], request({ tcp: true }), 'tcp'), { allowed: true, shadow: { allow: { policy: '', result: 'denied' } } });
  });

  it('a dry-run AUDIT has no effect', () => {
    assert.deepEqual(decide([policy([{}], { action: 'AUDIT', dryRun: true })], request()), { allowed: true });
  });
});

describe('generation errors: ALLOW drops the rule, DENY/AUDIT ignore the value', () => {
  it('an invalid port drops the whole ALLOW rule, not only its operation', () => {
    const p = policy([{ to: [{ operation: { ports: ['http'] } }, { operation: { methods: ['GET'] } }] }, from({ namespaces: ['nobody'] })]);
    const { compiled, problems } = compilePolicies([p], 'http');
    assert.deepEqual(problems, [{ policy: 'foo/p', rule: 0, message: 'to[0].operation.ports: invalid port "http"; the ALLOW rule is dropped' }]);
    assert.deepEqual(authorize(compiled, request()), { allowed: false, matchedPolicy: 'none' });
  });

  it('an invalid value in a DENY list is skipped, the others still match', () => {
    const p = policy([from({ ipBlocks: ['not-an-ip', '10.0.0.1'] })], { action: 'DENY' });
    const { compiled, problems } = compilePolicies([p], 'http');
    assert.equal(problems.length, 1);
    assert.match(problems[0]!.message, /from\[0\]\.source\.ipBlocks: invalid IP address or CIDR "not-an-ip"; ignored, which widens the DENY rule/);
    assert.equal(authorize(compiled, request()).allowed, false);
    assert.equal(authorize(compiled, request({ sourceIp: '10.0.0.9' })).allowed, true);
  });

  it('a DENY condition with only invalid values disappears (denies more)', () => {
    const p = policy([{ from: [{ source: { ipBlocks: ['300.0.0.1', '10.0.0.0/33'] } }], to: [{ operation: { methods: ['GET'] } }] }], { action: 'DENY' });
    const { compiled, problems } = compilePolicies([p], 'http');
    assert.equal(problems.length, 2);
    assert.equal(authorize(compiled, request({ sourceIp: '192.168.0.1' })).allowed, false);
    assert.equal(authorize(compiled, request({ method: 'POST' })).allowed, true);
  });

  it('invalid notValues in a DENY are dropped too', () => {
    const p = policy([when('destination.port', undefined, ['x'])], { action: 'DENY' });
    assert.equal(decide([p], request()).allowed, false);
  });

  it('invalid values in ALLOW when conditions and sources drop the rule', () => {
    for (const rule of [when('destination.ip', ['10.0.0.2', 'nope']), when('destination.port', ['99999']), from({ remoteIpBlocks: ['1.2.3'] })]) {
      const { compiled, problems } = compilePolicies([policy([rule, to({ methods: ['POST'] })])], 'http');
      assert.equal(problems.length, 1, JSON.stringify(rule));
      assert.equal(problems[0]!.rule, 0);
      assert.equal(authorize(compiled, request()).allowed, false, JSON.stringify(rule));
    }
  });

  it('invalid path templates are generation errors', () => {
    for (const template of ['/{**}/{*}', '/a{*}', '/{*}/a b', '/{*}//x', '/{name}/{*}', 'a/{*}']) {
      const { problems } = compilePolicies([policy([to({ paths: [template] })])], 'http');
      assert.deepEqual(problems.map((p) => p.message), [`to[0].operation.paths: invalid or unsupported path template "${template}"; the ALLOW rule is dropped`]);
    }
    const deny = policy([to({ paths: ['/{**}/{*}'], methods: ['GET'] })], { action: 'DENY' });
    assert.equal(decide([deny], request({ path: '/anything' })).allowed, false, 'DENY ignores the bad template');
  });

  it('an unknown when key skips the rule for every action', () => {
    const rule: PolicyRule = { when: [{ key: 'request.header[x]', values: ['1'] }] };
    const allow = compilePolicies([policy([rule, to({ methods: ['POST'] })])], 'http');
    assert.deepEqual(allow.problems, [{ policy: 'foo/p', rule: 0, message: 'when[0]: unknown attribute request.header[x]; the rule is skipped' }]);
    assert.equal(authorize(allow.compiled, request()).allowed, false);
    const deny = compilePolicies([policy([rule], { action: 'DENY' })], 'http');
    assert.equal(deny.problems.length, 1);
    assert.equal(authorize(deny.compiled, request()).allowed, true, 'the DENY rule is gone, not widened');
  });

  it('experimental.envoy.filters.* cannot be evaluated: ALLOW drops, DENY ignores', () => {
    const rule = when('experimental.envoy.filters.network.mysql_proxy[db.table]', ['[update]']);
    const allow = compilePolicies([policy([rule])], 'http');
    assert.equal(allow.problems.length, 1);
    assert.equal(authorize(allow.compiled, request()).allowed, false);
    const deny = compilePolicies([policy([{ ...rule, to: [{ operation: { methods: ['GET'] } }] }], { action: 'DENY' })], 'http');
    assert.equal(authorize(deny.compiled, request()).allowed, false);
    assert.equal(authorize(deny.compiled, request({ method: 'PUT' })).allowed, true);
  });

  it('malformed bracket keys are generation errors', () => {
    for (const key of ['request.headers', 'request.headers[x', 'request.auth.claims[a]b', 'request.auth.claims[a][b']) {
      const { compiled, problems } = compilePolicies([policy([when(key, ['v'])], { action: 'DENY' })], 'http');
      assert.equal(problems.length, 1, key);
      assert.equal(authorize(compiled, request()).allowed, false, `${key}: the DENY condition is ignored`);
    }
  });

  it('a single claim name may contain brackets when they do not pair up', () => {
    assert.equal(ruleMatches(when('request.auth.claims[a[b]]', ['v']), { jwt: { 'a[b]': 'v' } }), true);
  });
});

describe('TCP chains: HTTP-only fields are generation errors', () => {
  // builder testdata/tcp/allow-both-http-tcp: only rule[3] survives.
  const allowBoth = policy(
    [
      { from: [{ source: { requestPrincipals: ['id-1'] } }], to: [{ operation: { methods: ['GET'] } }] },
      { from: [{ source: { namespaces: ['ns-1'] } }], to: [{ operation: { ports: ['8080'], methods: ['GET'] } }] },
      { from: [{ source: { namespaces: ['ns-2'], requestPrincipals: ['id-2'] } }], to: [{ operation: { ports: ['9090'] } }] },
      { from: [{ source: { namespaces: ['ns-1'] } }], to: [{ operation: { ports: ['80'] } }] },
    ],
    { name: 'httpbin-allow' },
  );
  const tcp = (principal: string | null, destinationPort: number): RequestAttributes => request({ tcp: true, principal, destinationPort });

  it('ALLOW keeps only the rules without HTTP fields', () => {
    const { compiled, problems } = compilePolicies([allowBoth], 'tcp');
    assert.deepEqual(problems.map((p) => p.rule), [0, 0, 1, 2]);
    assert.equal(problems[0]!.message, 'from[0].source.requestPrincipals: "requestPrincipals" is HTTP only; the ALLOW rule is dropped');
    assert.equal(authorize(compiled, tcp('cluster.local/ns/ns-1/sa/a', 80)).allowed, true);
    assert.deepEqual(authorize(compiled, tcp('cluster.local/ns/ns-1/sa/a', 8080)), { allowed: false, matchedPolicy: 'none' });
    assert.equal(authorize(compiled, tcp('cluster.local/ns/ns-2/sa/a', 9090)).allowed, false);
  });

  it('the same ALLOW policy on HTTP keeps every rule', () => {
    const { compiled, problems } = compilePolicies([allowBoth], 'http');
    assert.deepEqual(problems, []);
    assert.equal(authorize(compiled, request({ principal: 'cluster.local/ns/ns-1/sa/a', method: 'GET' })).allowed, true);
  });

  it('ALLOW with only HTTP rules denies all TCP traffic (allow-only-http)', () => {
    const onlyHttp = policy([
      { from: [{ source: { requestPrincipals: ['id-1'] } }], to: [{ operation: { methods: ['GET'] } }] },
      { from: [{ source: { namespaces: ['ns-1'] } }], to: [{ operation: { hosts: ['example.com'] } }] },
    ]);
    assert.deepEqual(decide([onlyHttp], tcp('cluster.local/ns/ns-1/sa/a', 80), 'tcp'), { allowed: false, matchedPolicy: 'none' });
  });

  // builder testdata/tcp/deny-both-http-tcp rules 0–9: HTTP parts vanish, what is left decides.
  const denyRules: PolicyRule[] = [
    { from: [{ source: { requestPrincipals: ['id-1'] } }], to: [{ operation: { methods: ['GET'] } }] },
    { to: [{ operation: { methods: ['GET'] } }] },
    { from: [{ source: { requestPrincipals: ['id-1'] } }] },
    { from: [{ source: { namespaces: ['ns-1'] } }], to: [{ operation: { methods: ['GET'] } }] },
    { from: [{ source: { requestPrincipals: ['id-1'] } }], to: [{ operation: { ports: ['80'] } }] },
    { from: [{ source: { requestPrincipals: ['id-1'] } }], to: [{ operation: { ports: ['8080'], methods: ['GET'] } }] },
    { from: [{ source: { namespaces: ['ns-2'], requestPrincipals: ['id-1'] } }], to: [{ operation: { ports: ['8080'], methods: ['GET'] } }] },
    { from: [{ source: { namespaces: ['ns-1'] } }], to: [{ operation: { ports: ['80'] } }] },
    { when: [{ key: 'request.headers[:method]', values: ['GET'] }] },
    { when: [{ key: 'destination.port', values: ['80'] }] },
  ];
  // Expected per rule for: ns-1 on port 80, ns-2 on port 8080, no identity on port 9090.
  const expected: [boolean, boolean, boolean][] = [
    [true, true, true],
    [true, true, true],
    [true, true, true],
    [true, false, false],
    [true, false, false],
    [false, true, false],
    [false, true, false],
    [true, false, false],
    [true, true, true],
    [true, false, false],
  ];
  denyRules.forEach((rule, i) => {
    it(`DENY rule[${i}] on TCP`, () => {
      const { compiled } = compilePolicies([policy([rule], { name: 'httpbin-deny', action: 'DENY' })], 'tcp');
      const got = [tcp('cluster.local/ns/ns-1/sa/a', 80), tcp('cluster.local/ns/ns-2/sa/a', 8080), tcp(null, 9090)].map(
        (r) => !authorize(compiled, r).allowed,
      );
      assert.deepEqual(got, expected[i]);
    });
  });

  it('the DENY id still names the rule', () => {
    const { compiled, problems } = compilePolicies([policy(denyRules, { name: 'httpbin-deny', action: 'DENY' })], 'tcp');
    assert.ok(problems.length >= 7);
    assert.match(problems[0]!.message, /"requestPrincipals" is HTTP only; ignored, which widens the DENY rule/);
    assert.equal(authorize(compiled, tcp(null, 9090)).matchedPolicy, 'ns[foo]-policy[httpbin-deny]-rule[0]');
  });

  it('HTTP-only when keys on TCP: request.headers, request.auth.*', () => {
    for (const key of ['request.headers[x]', 'request.auth.principal', 'request.auth.audiences', 'request.auth.presenter', 'request.auth.claims[c]']) {
      const allow = compilePolicies([policy([when(key, ['v'])])], 'tcp');
      assert.match(allow.problems[0]?.message ?? '', /is HTTP only; the ALLOW rule is dropped/, key);
      assert.equal(authorize(allow.compiled, tcp(null, 80)).allowed, false, key);
      const deny = compilePolicies([policy([when(key, undefined, ['v'])], { action: 'DENY' })], 'tcp');
      assert.equal(authorize(deny.compiled, tcp(null, 80)).allowed, false, `${key}: DENY ignores it`);
    }
  });

  it('TCP-capable fields work on TCP', () => {
    const rule: PolicyRule = {
      from: [{ source: { namespaces: ['ns-1'], remoteIpBlocks: ['10.0.0.0/8'], ipBlocks: ['10.0.0.1'], trustDomains: ['cluster.local'] } }],
      to: [{ operation: { ports: ['80'] } }],
      when: [
        { key: 'destination.ip', values: ['10.0.0.2'] },
        { key: 'connection.sni', notValues: ['blocked.example'] },
        { key: 'source.serviceAccount', values: ['ns-1/a'] },
      ],
    };
    assert.equal(ruleMatches(rule, { tcp: true, principal: 'cluster.local/ns/ns-1/sa/a', destinationPort: 80 }, 'tcp'), true);
    assert.equal(ruleMatches(rule, { tcp: true, principal: 'cluster.local/ns/ns-1/sa/a', destinationPort: 81 }, 'tcp'), false);
  });
});

describe('many policies', () => {
  it('authorize over 20 compiled policies gives the expected decisions, repeatedly', () => {
    const policies: WaypointPolicy[] = [];
    for (let i = 0; i < 8; i++) {
      policies.push(policy([{ from: [{ source: { namespaces: [`team-${i}`] } }], to: [{ operation: { paths: [`/api/v${i}/*`], methods: ['GET', 'POST'] } }] }], { name: `allow-${i}` }));
    }
    for (let i = 0; i < 6; i++) {
      policies.push(policy([{ to: [{ operation: { paths: [`/admin/${i}/{**}`] } }], when: [{ key: 'request.headers[x-user]', notValues: ['root'] }] }], { name: `deny-${i}`, action: 'DENY' }));
    }
    for (let i = 0; i < 3; i++) policies.push(policy([from({ ipBlocks: [`192.168.${i}.0/24`] })], { name: `audit-${i}`, action: 'AUDIT' }));
    for (let i = 0; i < 3; i++) policies.push(policy([when('request.auth.claims[groups]', [`g${i}`])], { name: `dry-${i}`, dryRun: true }));
    assert.equal(policies.length, 20);
    const { compiled, problems } = compilePolicies(policies, 'http');
    assert.deepEqual(problems, []);

    const team3 = 'cluster.local/ns/team-3/sa/app';
    const ok = request({ principal: team3, path: '/api/v3/items?page=2', method: 'POST' });
    const wrongPath = request({ principal: team3, path: '/api/v4/items' });
    const admin = request({ principal: team3, path: '/admin/5/x/y', headers: { 'x-user': 'alice' } });
    const adminRoot = request({ principal: 'cluster.local/ns/team-0/sa/app', path: '/admin/5/x', headers: { 'x-user': 'root' }, sourceIp: '192.168.1.7' });
    for (let round = 0; round < 3; round++) {
      assert.deepEqual(authorize(compiled, ok), { allowed: true, shadow: { allow: { policy: '', result: 'denied' } } });
      assert.deepEqual(authorize(compiled, wrongPath), { allowed: false, matchedPolicy: 'none', shadow: { allow: { policy: '', result: 'denied' } } });
      assert.deepEqual(authorize(compiled, admin), { allowed: false, matchedPolicy: 'ns[foo]-policy[deny-5]-rule[0]' });
      assert.deepEqual(authorize(compiled, adminRoot), {
        allowed: false,
        matchedPolicy: 'none',
        audited: ['ns[foo]-policy[audit-1]-rule[0]'],
        shadow: { allow: { policy: '', result: 'denied' } },
      });
    }
  });
});
