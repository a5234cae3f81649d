// validateResource on decoded objects: which kinds/versions are accepted, what happens to unknown input, and what
// the returned resource looks like (defaults applied, unknown fields carried through, input left untouched).
// Rule-by-rule messages and positions are covered through the loader in test/config/rules.test.ts.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { RESOURCE_TYPES, groupVersion } from '../../src/api/kinds.js';
import type { Kind } from '../../src/api/types.js';
import { formatPath, validateResource } from '../../src/api/validation.js';

/** Every kind the mesh reads and the apiVersions accepted for it. */
const SUPPORTED_KINDS = RESOURCE_TYPES.filter((t) => t.model).map((t) => ({ kind: t.kind as Kind, apiVersions: t.versions.map((v) => groupVersion(t.group, v)) }));
import { RFC1123_LABEL_RULE, RFC1123_SUBDOMAIN_RULE, invalid } from '../support/kube-messages.js';

/** The smallest valid object of each kind (metadata added by the test). */
const MINIMAL: Record<string, Record<string, unknown>> = {
  Namespace: {},
  ServiceAccount: {},
  Service: { spec: { ports: [{ port: 80 }] } },
  Pod: { spec: { containers: [{ name: 'c' }] } },
  Node: {},
  EndpointSlice: { addressType: 'IPv4', endpoints: [] },
  ServiceEntry: { spec: { hosts: ['api.example.com'] } },
  WorkloadEntry: { spec: { address: '10.0.0.1' } },
  Deployment: { spec: { selector: { matchLabels: { app: 'a' } }, template: { metadata: { labels: { app: 'a' } }, spec: { containers: [{ name: 'c' }] } } } },
  AuthorizationPolicy: {},
  PeerAuthentication: {},
  RequestAuthentication: { spec: { targetRefs: [{ kind: 'Gateway', group: 'gateway.networking.k8s.io', name: 'wp' }] } },
  DestinationRule: { spec: { host: 'reviews' } },
  VirtualService: { spec: { hosts: ['reviews'] } },
  Telemetry: {},
  Gateway: { spec: { gatewayClassName: 'istio-waypoint', listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE' }] } },
  GatewayClass: { spec: { controllerName: 'istio.io/mesh-controller' } },
  HTTPRoute: {},
  GRPCRoute: {},
};

describe('validateResource', () => {
  it('accepts every supported kind in every served apiVersion', () => {
    assert.equal(SUPPORTED_KINDS.length, 19);
    let checked = 0;
    for (const { kind, apiVersions } of SUPPORTED_KINDS) {
      for (const apiVersion of apiVersions) {
        const r = validateResource({ apiVersion, kind, metadata: { name: 'x' }, ...MINIMAL[kind] });
        assert.deepEqual(r.issues, [], `${apiVersion}/${kind}`);
        assert.equal(r.resource?.kind, kind);
        assert.equal(r.resource?.apiVersion, apiVersion, 'the apiVersion is kept as written');
        checked++;
      }
    }
    assert.equal(checked, 34);
  });

  it('accepts the versions the brief and Istio serve', () => {
    const served = Object.fromEntries(SUPPORTED_KINDS.map((k) => [k.kind, k.apiVersions]));
    assert.deepEqual(served.AuthorizationPolicy, ['security.istio.io/v1', 'security.istio.io/v1beta1']);
    assert.deepEqual(served.DestinationRule, ['networking.istio.io/v1', 'networking.istio.io/v1beta1', 'networking.istio.io/v1alpha3']);
    assert.deepEqual(served.HTTPRoute, ['gateway.networking.k8s.io/v1', 'gateway.networking.k8s.io/v1beta1']);
    assert.deepEqual(served.Deployment, ['apps/v1']);
  });

  it('refuses apiVersions/kinds the registry does not serve, as kube\'s REST mapper; checks its other kinds for unknown fields only', () => {
    assert.deepEqual(validateResource({ apiVersion: 'apps/v1beta1', kind: 'Deployment', metadata: { name: 'x' } }), {
      issues: [{ path: [], severity: 'error', message: 'no matches for kind "Deployment" in version "apps/v1beta1"' }],
      unknownKind: true,
    });
    // An inherited property name must not be mistaken for a kind.
    assert.equal(validateResource({ apiVersion: 'v1', kind: 'toString', metadata: { name: 'x' } }).unknownKind, true);
    // A ConfigMap is served but not read by the mesh: no typed resource, only its unknown fields.
    const cm = validateResource({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x' }, data: { a: '1' }, dat: {} }, 'default', 'Strict');
    assert.equal(cm.resource, undefined);
    assert.equal(cm.type?.kind, 'ConfigMap');
    assert.deepEqual(cm.issues, [{ path: ['dat'], severity: 'error', message: 'unknown field "dat"', aboutKey: true, unknownField: true }]);
  });

  it('rejects documents that are not objects and objects without apiVersion/kind', () => {
    assert.deepEqual(validateResource([1, 2]).issues, [
      { path: [], severity: 'error', message: 'expected a Kubernetes object (a mapping with apiVersion, kind and metadata), found a list' },
    ]);
    assert.deepEqual(validateResource({ apiVersion: 1, metadata: {} }).issues, [
      { path: ['apiVersion'], severity: 'error', message: 'expected a string, found number 1' },
      { path: ['kind'], severity: 'error', message: 'required' },
    ]);
  });

  it('returns no resource when there is any error, and the resource with warnings otherwise', () => {
    const bad = validateResource({ apiVersion: 'v1', kind: 'Service', metadata: { name: 's' }, spec: { ports: [{ port: 0 }] } });
    assert.equal(bad.resource, undefined);
    assert.deepEqual(bad.issues, [{ path: ['spec', 'ports', 0, 'port'], severity: 'error', message: 'must be a port number 1-65535, found number 0' }]);
    const warned = validateResource({ apiVersion: 'security.istio.io/v1', kind: 'PeerAuthentication', metadata: { name: 'p' }, spec: { mtls: { mode: 'DISABLE' } } });
    assert.equal(warned.resource?.kind, 'PeerAuthentication');
    assert.deepEqual(warned.issues.map((i) => i.severity), ['warning']);
  });

  it('types the volumes the local cluster acts on: projected service account tokens and volume mounts', () => {
    const pod = (volumes: unknown, volumeMounts: unknown) =>
      validateResource({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec: { containers: [{ name: 'c', volumeMounts }], volumes } }).issues;
    const token = { name: 'istio-token', projected: { sources: [{ serviceAccountToken: { audience: 'istio-ca', expirationSeconds: 43200, path: 'istio-token' } }] } };
    // Other volume types and sources are carried through unchecked.
    assert.deepEqual(pod([token, { name: 'data', emptyDir: {} }, { name: 'ca', projected: { sources: [{ configMap: { name: 'c' } }] } }], [{ name: 'istio-token', mountPath: '/var/run/secrets/tokens' }]), []);
    assert.deepEqual(
      pod([{ name: 'Token', projected: { sources: [{ serviceAccountToken: { expirationSeconds: '12h' } }] } }], [{ name: 'istio-token', readOnly: 'yes' }]).map((i) => `${formatPath(i.path)}: ${i.message}`),
      [
        'spec.containers[0].volumeMounts[0].mountPath: required',
        'spec.containers[0].volumeMounts[0].readOnly: expected true or false, found "yes"',
        `spec.volumes[0].name: ${invalid('Token', RFC1123_LABEL_RULE)}`,
        'spec.volumes[0].projected.sources[0].serviceAccountToken.expirationSeconds: expected a number, found "12h"',
        'spec.volumes[0].projected.sources[0].serviceAccountToken.path: required',
      ],
    );
  });

  it('defaults the namespace, an absent spec and drops nulls, without touching the input', () => {
    const raw = { apiVersion: 'security.istio.io/v1', kind: 'AuthorizationPolicy', metadata: { name: 'a', labels: null } };
    const snapshot = structuredClone(raw);
    const r = validateResource(raw);
    assert.deepEqual(r.issues, []);
    assert.deepEqual(r.resource, { apiVersion: 'security.istio.io/v1', kind: 'AuthorizationPolicy', metadata: { name: 'a', namespace: 'default' }, spec: {} });
    assert.deepEqual(raw, snapshot);
  });

  it('treats unknown fields as kube-apiserver\'s fieldValidation: Strict refuses, Warn (the default) carries them through, Ignore is silent', () => {
    const raw = {
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: { name: 'a', namespace: 'n', finalizers: ['x'] },
      spec: { action: 'ALLOW', futureField: { enabled: true }, rules: [{ from: [{ source: { principals: ['p'], newMatcher: null } }] }] },
      extraTopLevel: 'kept',
    };
    // A custom resource's unknown fields come sorted, as apiextensions-apiserver lists them; a null value counts too.
    const unknown = ['extraTopLevel', 'spec.futureField', 'spec.rules[0].from[0].source.newMatcher'];
    const strict = validateResource(raw, 'default', 'Strict');
    assert.equal(strict.resource, undefined);
    assert.deepEqual(strict.issues.map((i) => [i.severity, formatPath(i.path), i.message, i.aboutKey]), unknown.map((f) => ['error', f, `unknown field "${f}"`, true]));
    const warned = validateResource(raw);
    assert.deepEqual(warned.issues.map((i) => [i.severity, i.message]), unknown.map((f) => ['warning', `unknown field "${f}"`]));
    const spec = (warned.resource as unknown as { spec: Record<string, unknown> }).spec;
    assert.deepEqual(spec.futureField, { enabled: true });
    assert.equal((warned.resource as unknown as Record<string, unknown>).extraTopLevel, 'kept');
    const ignored = validateResource(raw, 'default', 'Ignore');
    assert.deepEqual(ignored.issues, []);
    assert.equal(ignored.resource?.kind, 'AuthorizationPolicy');
    // Fields the schemas leave untyped are still known fields of the kind.
    const pod = validateResource({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec: { containers: [{ name: 'c', resources: { limits: { cpu: '1' } } }], volumes: [] } }, 'default', 'Strict');
    assert.deepEqual(pod.issues, []);
    assert.deepEqual((pod.resource as unknown as { spec: { volumes: unknown } }).spec.volumes, []);
  });

  it('reports unknown fields together with the schema\'s errors', () => {
    const r = validateResource({ apiVersion: 'v1', kind: 'Service', metadata: { name: 's' }, spec: { ports: [{ port: 0, nmae: 'http' }] } }, 'default', 'Strict');
    assert.deepEqual(r.issues.map((i) => `${formatPath(i.path)}: ${i.message}`), [
      'spec.ports[0].nmae: unknown field "spec.ports[0].nmae"',
      'spec.ports[0].port: must be a port number 1-65535, found number 0',
    ]);
  });

  it('reports every independent problem of an object in one pass', () => {
    const r = validateResource({
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: { name: 'Bad_Name' },
      spec: { selector: { matchLabels: { app: 'a' } }, targetRefs: [{ kind: 'Gateway', name: 'w' }], action: 'ALLOW', provider: { name: 'ext' }, rules: [{ when: [{ key: 'source.ip' }] }] },
    });
    assert.deepEqual(
      r.issues.map((i) => `${formatPath(i.path)}: ${i.message}`),
      [
        `metadata.name: ${invalid('Bad_Name', RFC1123_SUBDOMAIN_RULE)}`,
        'spec.rules[0].when[0]: at least one of `values` or `notValues` must be set for key source.ip',
        'spec.targetRefs: only one of targetRefs or selector can be set',
        'spec.provider: `provider` must not be with non CUSTOM action, found ALLOW',
      ],
    );
  });

  it('marks issues about a mapping key so the loader can point at the key', () => {
    const r = validateResource({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'n', labels: { 'a b': 'x' } } });
    assert.deepEqual(r.issues.map((i) => [i.path, i.aboutKey]), [[['metadata', 'labels', 'a b'], true]]);
  });
});

describe('formatPath', () => {
  it('renders indexes in brackets and quotes keys that are not identifiers', () => {
    assert.equal(formatPath(['spec', 'rules', 0, 'when', 1, 'key']), 'spec.rules[0].when[1].key');
    assert.equal(formatPath(['metadata', 'labels', 'app.kubernetes.io/name']), 'metadata.labels["app.kubernetes.io/name"]');
    assert.equal(formatPath(['spec', 'portLevelMtls', '8080', 'mode']), 'spec.portLevelMtls["8080"].mode');
    assert.equal(formatPath([]), '');
  });
});

describe('DestinationRule traffic policies (the CRD and istiod’s validateTrafficPolicy)', () => {
  /** The issues of a DestinationRule whose trafficPolicy is `policy`, as `<severity> <path>: <message>`. */
  const issues = (policy: unknown, extra: Record<string, unknown> = {}) =>
    validateResource({ apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'r', namespace: 'ns' }, spec: { host: 'reviews', trafficPolicy: policy, ...extra } }).issues.map(
      (i) => `${i.severity} ${formatPath(i.path)}: ${i.message}`,
    );
  const P = 'spec.trafficPolicy';

  it('accepts every field the waypoint translation reads', () => {
    const lb = { loadBalancer: { consistentHash: { httpCookie: { name: 'c', path: '/', ttl: '10s' }, ringHash: { minimumRingSize: 2048 } }, warmupDurationSecs: '30s' } };
    assert.deepEqual(
      issues({
        ...lb,
        connectionPool: { tcp: { maxConnections: 1, connectTimeout: '1s', idleTimeout: '0s', maxConnectionDuration: '1h', tcpKeepalive: { probes: 3, time: '10s', interval: '5s' } }, http: { maxConcurrentStreams: 10, h2UpgradePolicy: 'UPGRADE' } },
        outlierDetection: { consecutive5xxErrors: 0, consecutiveLocalOriginFailures: 2, splitExternalLocalOriginErrors: true, minHealthPercent: 50, maxEjectionPercent: 100 },
        tls: { mode: 'SIMPLE', subjectAltNames: ['reviews.example'], caCertificates: '/ca.pem', caCrl: '/crl.pem' },
        portLevelSettings: [{ port: { number: 80 }, loadBalancer: { consistentHash: { maglev: { tableSize: 65537 }, useSourceIp: true } } }],
      }, { subsets: [{ name: 'v1', trafficPolicy: { loadBalancer: { localityLbSetting: { distribute: [{ from: 'us/*', to: { 'us/a/*': 60, 'eu/*': 40 } }] } } } }] }),
      [],
    );
  });

  const errors: [string, unknown, string[]][] = [
    ['an empty traffic policy', {}, [`error ${P}: traffic policy must have at least one field`]],
    ['an empty connection pool', { connectionPool: {} }, [`error ${P}.connectionPool: connection pool must have at least one field`]],
    ['an empty port traffic policy', { portLevelSettings: [{ port: { number: 80 } }] }, [`error ${P}.portLevelSettings[0]: port traffic policy must have at least one field`]],
    ['tunnel with proxyProtocol', { tunnel: { targetHost: 'a', targetPort: 1 }, proxyProtocol: {} }, [`error ${P}.proxyProtocol: tunnel and proxyProtocol must not be set together`]],
    ['simple with consistentHash', { loadBalancer: { simple: 'RANDOM', consistentHash: { useSourceIp: true } } }, [`error ${P}.loadBalancer.consistentHash: only one of simple or consistentHash may be set`]],
    [
      'two hash keys',
      { loadBalancer: { consistentHash: { httpHeaderName: 'x', useSourceIp: true } } },
      [`error ${P}.loadBalancer.consistentHash.useSourceIp: only one of httpHeaderName, httpCookie, useSourceIp, httpQueryParameterName may be set, found httpHeaderName and useSourceIp`],
    ],
    ['ringHash with maglev', { loadBalancer: { consistentHash: { useSourceIp: true, ringHash: {}, maglev: { tableSize: 7 } } } }, [`error ${P}.loadBalancer.consistentHash.maglev: only one of ringHash or maglev may be set`]],
    [
      'the deprecated minimumRingSize with ringHash',
      { loadBalancer: { consistentHash: { useSourceIp: true, minimumRingSize: 10, ringHash: {} } } },
      [`error ${P}.loadBalancer.consistentHash.minimumRingSize: only one of MinimumRingSize or Maglev/Ringhash can be specified`],
    ],
    ['a cookie without a name', { loadBalancer: { consistentHash: { httpCookie: { ttl: '1s' } } } }, [`error ${P}.loadBalancer.consistentHash.httpCookie.name: required`]],
    ['a maglev table without a size', { loadBalancer: { consistentHash: { useSourceIp: true, maglev: {} } } }, [`error ${P}.loadBalancer.consistentHash.maglev.tableSize: tableSize must be set for maglev`]],
    ['a maglev table not prime', { loadBalancer: { consistentHash: { useSourceIp: true, maglev: { tableSize: 1024 } } } }, [`error ${P}.loadBalancer.consistentHash.maglev.tableSize: tableSize must be a prime number for maglev, found 1024`]],
    ['a maglev table too big', { loadBalancer: { consistentHash: { useSourceIp: true, maglev: { tableSize: 5000011 } } } }, [`error ${P}.loadBalancer.consistentHash.maglev.tableSize: tableSize must be less than 5000011 for maglev, found 5000011`]],
    [
      'locality distribute and failover together',
      { loadBalancer: { localityLbSetting: { distribute: [{ from: 'a', to: { b: 100 } }], failover: [{ from: 'a', to: 'b' }] } }, outlierDetection: {} },
      [`error ${P}.loadBalancer.localityLbSetting.failover: can not simultaneously specify 'distribute' and 'failover'`],
    ],
    [
      'locality weights',
      { loadBalancer: { localityLbSetting: { distribute: [{ from: 'a/*', to: { b: 50, c: 40 } }, { from: 'a/b/c/*', to: { d: 0, e: 100 } }, { from: '*/a', to: { 'b//c': 100 } }] } } },
      [
        `error ${P}.loadBalancer.localityLbSetting.distribute[0].to: total locality weight 90 != 100`,
        `error ${P}.loadBalancer.localityLbSetting.distribute[1].to: locality weight must be in range [1, 100]`,
        `error ${P}.loadBalancer.localityLbSetting.distribute[2].from: locality "*/a" wildcard '*' number can not exceed 1 and must be in the end`,
        `error ${P}.loadBalancer.localityLbSetting.distribute[2].to["b//c"]: locality "b//c" must not contain empty region/zone/subzone info`,
      ],
    ],
    [
      'locality failover',
      { loadBalancer: { localityLbSetting: { failover: [{ from: 'us', to: 'us' }, { from: 'us/a', to: 'eu*' }], failoverPriority: ['topology.kubernetes.io/zone'] } }, outlierDetection: {} },
      [
        `error ${P}.loadBalancer.localityLbSetting.failoverPriority: can not simultaneously set 'failover' and topology label 'topology.kubernetes.io/zone' in 'failover_priority'`,
        `error ${P}.loadBalancer.localityLbSetting.failover[0]: locality lb failover settings must specify different regions`,
        `error ${P}.loadBalancer.localityLbSetting.failover[1]: locality lb failover only specify region`,
        `error ${P}.loadBalancer.localityLbSetting.failover[1]: locality lb failover region should not contain '*' wildcard`,
      ],
    ],
    ['warmup without a duration', { loadBalancer: { warmup: { minimumPercent: 101, aggression: 0 } } }, [
      `error ${P}.loadBalancer.warmup.duration: required`,
      `error ${P}.loadBalancer.warmup.minimumPercent: must be at most 100, found number 101`,
      `error ${P}.loadBalancer.warmup.aggression: aggression should be greater than 0`,
    ]],
    ['bad durations', { loadBalancer: { warmupDurationSecs: 30 }, connectionPool: { tcp: { maxConnectionDuration: '1d', tcpKeepalive: { time: 'soon', probes: -1 } } } }, [
      `error ${P}.loadBalancer.warmupDurationSecs: expected a string, found number 30`,
      `error ${P}.connectionPool.tcp.maxConnectionDuration: must be a duration such as "5s" or "100ms", found "1d"`,
      `error ${P}.connectionPool.tcp.tcpKeepalive.probes: must be at least 0, found number -1`,
      `error ${P}.connectionPool.tcp.tcpKeepalive.time: must be a duration such as "5s" or "100ms", found "soon"`,
    ]],
    ['UPGRADE with useClientProtocol; negative streams', { connectionPool: { http: { h2UpgradePolicy: 'UPGRADE', useClientProtocol: true, maxConcurrentStreams: -1 } } }, [
      `error ${P}.connectionPool.http.maxConcurrentStreams: must be at least 0, found number -1`,
      `error ${P}.connectionPool.http.useClientProtocol: use client protocol must not be true when H2UpgradePolicy is UPGRADE`,
    ]],
    ['percentages', { outlierDetection: { maxEjectionPercent: 101, minHealthPercent: -1 } }, [
      `error ${P}.outlierDetection.maxEjectionPercent: must be at most 100, found number 101`,
      `error ${P}.outlierDetection.minHealthPercent: must be at least 0, found number -1`,
    ]],
    ['local origin failures without the split', { outlierDetection: { consecutiveLocalOriginFailures: 3 } }, [
      `error ${P}.outlierDetection.consecutiveLocalOriginFailures: outlier detection consecutive local origin failures is specified, but split external local origin errors is set to false`,
    ]],
    ['insecureSkipVerify with a CA (SIMPLE)', { tls: { mode: 'SIMPLE', insecureSkipVerify: true, subjectAltNames: ['a'] } }, [
      `error ${P}.tls.insecureSkipVerify: cannot specify CaCertificates or CredentialName or SubjectAltNames when InsecureSkipVerify is set true`,
    ]],
    ['insecureSkipVerify with a CA (MUTUAL)', { tls: { mode: 'MUTUAL', insecureSkipVerify: true, caCertificates: '/ca', clientCertificate: '/c', privateKey: '/k' } }, [
      `error ${P}.tls.insecureSkipVerify: cannot specify CaCertificates or SubjectAltNames when InsecureSkipVerify is set true`,
    ]],
    ['credentialName with files', { tls: { mode: 'SIMPLE', credentialName: 'c', caCrl: '/crl' } }, [`error ${P}.tls.credentialName: cannot specify client certificates or CA certificate or CA CRL If credentialName is set`]],
    ['MUTUAL without a certificate', { tls: { mode: 'MUTUAL' } }, [`error ${P}.tls.clientCertificate: client certificate required for mutual tls`, `error ${P}.tls.privateKey: private key required for mutual tls`]],
  ];
  for (const [name, policy, want] of errors) it(`rejects ${name}`, () => assert.deepEqual(issues(policy), want));

  it('checks port-level and subset policies the same way', () => {
    assert.deepEqual(issues({ portLevelSettings: [{ port: { number: 80 }, outlierDetection: { minHealthPercent: 200 } }] }, { subsets: [{ name: 'v1', trafficPolicy: { tls: { mode: 'MUTUAL', clientCertificate: '/c' } } }] }), [
      `error ${P}.portLevelSettings[0].outlierDetection.minHealthPercent: must be at most 100, found number 200`,
      'error spec.subsets[0].trafficPolicy.tls.privateKey: private key required for mutual tls',
    ]);
  });

  const warnings: [string, unknown, string[]][] = [
    ['a consistent hash without a key', { loadBalancer: { consistentHash: { ringHash: { minimumRingSize: 1024 } } } }, [
      `warning ${P}.loadBalancer.consistentHash: consistentHash sets none of httpHeaderName, httpCookie, useSourceIp or httpQueryParameterName: requests have no hash and go to random endpoints`,
    ]],
    ['the deprecated minimumRingSize', { loadBalancer: { consistentHash: { useSourceIp: true, minimumRingSize: 2048 } } }, [
      `warning ${P}.loadBalancer.consistentHash.minimumRingSize: consistent hash MinimumRingSize is deprecated, use ConsistentHashLB's RingHash configuration instead`,
    ]],
    ['the deprecated consecutiveErrors', { portLevelSettings: [{ port: { number: 80 }, outlierDetection: { consecutiveErrors: 5 } }] }, [
      `warning ${P}.portLevelSettings[0].outlierDetection.consecutiveErrors: outlier detection consecutive errors is deprecated, use consecutiveGatewayErrors or consecutive5xxErrors instead`,
    ]],
    ['locality failover without outlier detection', { loadBalancer: { localityLbSetting: { failoverPriority: ['topology.kubernetes.io/region'] } } }, [
      `warning ${P}.loadBalancer.localityLbSetting: outlier detection policy must be provided for failover`,
    ]],
  ];
  for (const [name, policy, want] of warnings) it(`warns about ${name}`, () => assert.deepEqual(issues(policy), want));
});

describe('VirtualService fault and corsPolicy (istiod’s validateHTTPFaultInjection and validateCORSPolicy)', () => {
  /** The issues of a VirtualService whose only http route has `fields`, as `<severity> <path>: <message>`. */
  const issues = (fields: Record<string, unknown>) =>
    validateResource({
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: { name: 'r', namespace: 'ns' },
      spec: { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews' } }], ...fields }] },
    }).issues.map((i) => `${i.severity} ${formatPath(i.path)}: ${i.message}`);
  const P = 'spec.http[0]';

  it('accepts what the waypoint applies', () => {
    assert.deepEqual(issues({ fault: { delay: { fixedDelay: '1.5s', percentage: { value: 0.5 } }, abort: { grpcStatus: 'UNAVAILABLE', percentage: { value: 100 } } } }), []);
    assert.deepEqual(
      issues({ corsPolicy: { allowOrigins: [{ exact: 'https://a.example' }, { regex: 'https://.*' }], allowMethods: ['GET', 'POST'], allowHeaders: ['x-a', '*'], maxAge: '24h', allowCredentials: true, unmatchedPreflights: 'IGNORE' } }),
      [],
    );
  });

  const refused: [string, Record<string, unknown>, string[]][] = [
    ['an empty fault', { fault: {} }, [`error ${P}.fault: HTTP fault injection must have an abort and/or a delay`]],
    ['an abort status out of range', { fault: { abort: { httpStatus: 700 } } }, [`error ${P}.fault.abort.httpStatus: HTTP status 700 is not in range 200-599`]],
    [
      'an unknown gRPC status',
      { fault: { abort: { grpcStatus: 'NOPE' } } },
      [`error ${P}.fault.abort.grpcStatus: gRPC status "NOPE" is not supported. See https://github.com/grpc/grpc/blob/master/doc/statuscodes.md for a list of supported codes, for example 'NOT_FOUND'`],
    ],
    ['an http2Error abort', { fault: { abort: { http2Error: 'x' } } }, [`error ${P}.fault.abort.http2Error: HTTP/2 abort fault injection not supported yet`]],
    ['a percentage over 100', { fault: { delay: { fixedDelay: '1s', percentage: { value: 101 } } } }, [`error ${P}.fault.delay.percentage.value: percentage 101 is neither 0.0, nor in range [0.0001, 100.0]`]],
    ['a delay under 1 ms', { fault: { delay: { fixedDelay: '100us' } } }, [`error ${P}.fault.delay.fixedDelay: duration must be greater than 1ms`]],
    ['an unknown CORS method', { corsPolicy: { allowMethods: ['FETCH'] } }, [`error ${P}.corsPolicy.allowMethods[0]: "FETCH" is not a supported HTTP method`]],
    ['a bad CORS header name', { corsPolicy: { allowHeaders: ['x a'] } }, [`error ${P}.corsPolicy.allowHeaders[0]: header name x a is not a valid header name`]],
    ['a maxAge below seconds', { corsPolicy: { maxAge: '1500ms' } }, [`error ${P}.corsPolicy.maxAge: max_age duration is accurate only to seconds precision`]],
    ['an empty origin', { corsPolicy: { allowOrigins: [{ exact: '' }] } }, [`error ${P}.corsPolicy.allowOrigins[0]: '' is not a valid match type for CORS allow origins`]],
  ];
  for (const [name, fields, want] of refused) it(`refuses ${name}`, () => assert.deepEqual(issues(fields), want));
});

describe('EndpointSlice (kube-apiserver’s discovery validation)', () => {
  const issues = (fields: Record<string, unknown>) =>
    validateResource({ apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: 's', namespace: 'ns' }, addressType: 'IPv4', endpoints: [], ...fields }).issues.map(
      (i) => `${i.severity} ${formatPath(i.path)}: ${i.message}`,
    );

  it('accepts endpoints of each address type with conditions, references and ports', () => {
    const endpoints = (addresses: string[]) => [{ addresses, conditions: { ready: false, serving: true, terminating: false }, hostname: 'a', nodeName: 'n1', zone: 'z', targetRef: { kind: 'Pod', name: 'p', namespace: 'ns', uid: 'u' } }];
    assert.deepEqual(issues({ endpoints: endpoints(['10.0.0.1']), ports: [{ name: '', protocol: 'TCP', port: 80 }, { name: 'dns', protocol: 'UDP', port: 53, appProtocol: 'kubernetes.io/h2c' }] }), []);
    assert.deepEqual(issues({ addressType: 'IPv6', endpoints: endpoints(['fd00::1']) }), []);
    assert.deepEqual(issues({ addressType: 'FQDN', endpoints: endpoints(['db.example.com']) }), []);
  });

  it('refuses addresses not of the slice’s type, endpoints without addresses, bad and repeated port names', () => {
    assert.deepEqual(issues({ addressType: 'IP' }), ['error addressType: expected one of IPv4, IPv6, FQDN; found "IP"']);
    assert.deepEqual(issues({ endpoints: undefined }), ['error endpoints: required']);
    assert.deepEqual(issues({ endpoints: [{ addresses: ['fd00::1', '10.0.0.300'] }] }), [
      'error endpoints[0].addresses[0]: Invalid value: "fd00::1": must be a valid IPv4 address',
      'error endpoints[0].addresses[1]: Invalid value: "10.0.0.300": must be a valid IPv4 address',
    ]);
    assert.deepEqual(issues({ addressType: 'IPv6', endpoints: [{ addresses: ['10.0.0.1'] }] }), ['error endpoints[0].addresses[0]: Invalid value: "10.0.0.1": must be a valid IPv6 address']);
    assert.deepEqual(issues({ endpoints: [{ addresses: [] }] }), ['error endpoints[0].addresses: must contain at least 1 address']);
    assert.deepEqual(issues({ ports: [{ name: 'http', port: 80 }, { name: 'http', port: 81 }, { name: 'Web', port: 70000 }] }), [
      'error ports[2].name: Invalid value: "Web": ' + RFC1123_LABEL_RULE,
      'error ports[2].port: must be a port number 1-65535, found number 70000',
      'error ports[1].name: Duplicate value: "http"',
    ]);
  });
});

describe('ServiceEntry and WorkloadEntry (istiod’s ValidateServiceEntry and ValidateWorkloadEntry)', () => {
  const issues = (kind: 'ServiceEntry' | 'WorkloadEntry', spec: Record<string, unknown>) =>
    validateResource({ apiVersion: 'networking.istio.io/v1', kind, metadata: { name: 'e', namespace: 'ns' }, spec }).issues.map(
      (i) => `${i.severity} ${formatPath(i.path)}: ${i.message}`,
    );
  const se = (spec: Record<string, unknown>) => issues('ServiceEntry', spec);

  it('accepts static, DNS and NONE entries with their endpoints, selectors and addresses', () => {
    const ports = [{ number: 80, name: 'http', protocol: 'HTTP' }, { number: 443, name: 'tls', protocol: 'TLS', targetPort: 8443 }];
    assert.deepEqual(se({ hosts: ['a.example.com'], addresses: ['240.0.0.1', '10.0.0.0/8', '2001:db8::1'], ports, resolution: 'STATIC', endpoints: [{ address: '1.2.3.4', ports: { http: 8080 }, labels: { app: 'a' }, locality: 'r/z', network: 'n1', serviceAccount: 'sa' }] }), []);
    assert.deepEqual(se({ hosts: ['*.example.com', 'b.example.com'], ports, resolution: 'DNS', endpoints: [{ address: 'backend.example.com' }] }), []);
    assert.deepEqual(se({ hosts: ['c.example.com'], ports, resolution: 'STATIC', workloadSelector: { labels: { app: 'c' } } }), []);
    assert.deepEqual(se({ hosts: ['d.example.com'], ports, subjectAltNames: ['spiffe://x/ns/y/sa/z'], location: 'MESH_INTERNAL', exportTo: ['.'] }), []);
    assert.deepEqual(issues('WorkloadEntry', { address: 'vm.example.com', ports: { http: 8080 }, labels: { app: 'vm' }, weight: 3 }), []);
  });

  it('refuses what istiod’s webhook refuses, with its messages', () => {
    assert.deepEqual(se({ hosts: [] }), ['error spec.hosts: service entry must have at least one host']);
    assert.deepEqual(se({ hosts: ['*', 'bad_host.com', 'x.123'] }), [
      'error spec.hosts[0]: invalid host *',
      'error spec.hosts[1]: domain name "bad_host.com" invalid (label "bad_host" invalid)',
      'error spec.hosts[2]: domain name "123" invalid (top level domain "123" cannot be all-numeric)',
    ]);
    assert.deepEqual(se({ hosts: ['a.com'], addresses: ['10.0.0.300', '10.0.0.0/40'], resolution: 'DNS' }), [
      'error spec.addresses[0]: 10.0.0.300 is not a valid IP',
      'error spec.addresses[1]: 10.0.0.0/40 is not a valid CIDR block',
      'error spec.addresses: CIDR addresses are allowed only for NONE/STATIC resolution types',
    ]);
    assert.deepEqual(se({ hosts: ['a.com'], ports: [{ number: 80, name: 'http' }, { number: 80, name: 'http', protocol: 'QUIC' }, { number: 70000, name: 'Web', targetPort: 0 }] }), [
      'error spec.ports[1].name: service entry port name "http" already defined',
      'error spec.ports[1].number: service entry port 80 already defined',
      'error spec.ports[1].protocol: unsupported protocol: QUIC',
      'error spec.ports[2].name: invalid port name: Web',
      'error spec.ports[2].number: port number 70000 must be in the range 1..65535',
    ]);
    assert.deepEqual(se({ hosts: ['a.com'], endpoints: [{ address: '1.1.1.1' }] }), ['error spec.endpoints: no endpoints should be provided for resolution type none']);
    assert.deepEqual(se({ hosts: ['a.com'], resolution: 'STATIC', ports: [{ number: 80, name: 'http' }], endpoints: [{ address: 'db.example.com', ports: { grpc: 9090 } }], workloadSelector: { labels: { app: 'a' } } }), [
      'error spec.workloadSelector: only one of WorkloadSelector or Endpoints is allowed in Service Entry',
      'error spec.endpoints[0].address: endpoint address "db.example.com" is not a valid IP address',
      'error spec.endpoints[0].ports.grpc: endpoint port 9090 is not defined by the service entry',
    ]);
    assert.deepEqual(se({ hosts: ['a.com'], resolution: 'DNS_ROUND_ROBIN', endpoints: [{ address: 'x.com' }, { address: 'bad_name' }] }), [
      'error spec.endpoints: there must only be 0 or 1 endpoint for resolution mode DNS_ROUND_ROBIN',
      'error spec.endpoints[1].address: endpoint address "bad_name" is not a valid FQDN or an IP address',
    ]);
    assert.deepEqual(se({ hosts: ['a.com'], resolution: 'DYNAMIC_DNS' }), ['error spec.hosts[0]: host must be wildcarded for resolution mode DYNAMIC_DNS']);
    assert.deepEqual(issues('WorkloadEntry', {}), ['error spec.address: address is required']);
    assert.deepEqual(issues('WorkloadEntry', { address: 'bad_name', ports: { Web: 0 } }), [
      'error spec.address: endpoint address "bad_name" is not a valid FQDN or an IP address',
      'error spec.ports.Web: invalid port name: Web',
      'error spec.ports.Web: port number 0 must be in the range 1..65535',
    ]);
  });
});
