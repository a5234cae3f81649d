// DestinationRules at waypoints as istiod renders them (pilot/pkg/model/push_context.go destinationRule and
// setDestinationRules, destination_rule.go mergeDestinationRule, networking/util GetPortLevelTrafficPolicy and
// MergeSubsetTrafficPolicy, core/cluster_traffic_policy.go and cluster_waypoint.go): which rules apply to a Service for
// a waypoint's namespace, how rules for one host merge, how port-level and subset policies replace the rule's, what each
// setting becomes and what Ambit does not apply; then the same through the ambient index.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { DestinationRule } from '../../src/api/types.js';
import { destinationRulesFor, translateDestination, type DestinationContext } from '../../src/model/destinationrules.js';
import { TYPE_WAYPOINT, type WaypointCluster, type WaypointResource } from '../../src/xds/types.js';
import { parseYaml, WAYPOINT_MESH, waypointIndex } from './helpers.js';

const OPTS = { domainSuffix: 'cluster.local', rootNamespace: 'istio-system' };
const REVIEWS = 'reviews.shop.svc.cluster.local';

interface RuleOptions {
  exportTo?: string[];
  created?: string;
  workloadSelector?: boolean;
  trafficPolicy?: Record<string, unknown>;
  subsets?: { name: string; labels?: Record<string, string>; trafficPolicy?: Record<string, unknown> }[];
}

/** A DestinationRule `<ns>/<name>` for `host`, created at the start of 2026 unless told. */
function dr(id: string, host: string, o: RuleOptions = {}): DestinationRule {
  const [namespace, name] = id.split('/') as [string, string];
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'DestinationRule',
    metadata: { name, namespace, creationTimestamp: o.created ?? '2026-01-01T00:00:00Z' },
    spec: {
      host,
      ...(o.exportTo ? { exportTo: o.exportTo } : {}),
      ...(o.workloadSelector ? { workloadSelector: { matchLabels: { app: 'client' } } } : {}),
      ...(o.trafficPolicy ? { trafficPolicy: o.trafficPolicy } : {}),
      ...(o.subsets ? { subsets: o.subsets } : {}),
    },
  };
}

const ids = (rules: DestinationRule[]) => rules.map((r) => `${r.metadata.namespace}/${r.metadata.name}`);

/** The rules that apply to reviews.shop for a waypoint in `proxyNs`, by id. */
const lookup = (rules: DestinationRule[], proxyNs = 'mesh', hostname = REVIEWS, serviceNs = 'shop') => ids(destinationRulesFor(rules, hostname, serviceNs, proxyNs, OPTS));

describe('DestinationRule lookup (PushContext.destinationRule)', () => {
  const cases: { name: string; rules: DestinationRule[]; proxyNs?: string; want: string[] }[] = [
    { name: 'none', rules: [], want: [] },
    { name: 'the waypoint’s namespace first', rules: [dr('shop/svc', 'reviews'), dr('istio-system/root', REVIEWS), dr('mesh/own', REVIEWS)], want: ['mesh/own'] },
    { name: 'then the Service’s namespace', rules: [dr('shop/svc', 'reviews'), dr('istio-system/root', REVIEWS)], want: ['shop/svc'] },
    { name: 'then the root namespace', rules: [dr('istio-system/root', REVIEWS), dr('elsewhere/x', REVIEWS)], want: ['istio-system/root'] },
    { name: 'a namespace that is none of the three is never searched', rules: [dr('elsewhere/x', REVIEWS, { exportTo: ['*'] })], want: [] },
    { name: 'a short host is resolved in the rule’s namespace', rules: [dr('mesh/short', 'reviews'), dr('shop/svc', 'reviews')], want: ['shop/svc'] },
    { name: 'a rule with a workloadSelector is for sidecars only', rules: [dr('mesh/sel', REVIEWS, { workloadSelector: true }), dr('shop/svc', 'reviews')], want: ['shop/svc'] },
    { name: 'the waypoint’s own namespace: exportTo `.` counts', rules: [dr('mesh/own', REVIEWS, { exportTo: ['.'] }), dr('shop/svc', 'reviews')], want: ['mesh/own'] },
    { name: 'the waypoint’s own namespace by name counts', rules: [dr('mesh/own', REVIEWS, { exportTo: ['mesh'] }), dr('shop/svc', 'reviews')], want: ['mesh/own'] },
    { name: 'a rule of the waypoint’s namespace exported only elsewhere is not for it', rules: [dr('mesh/own', REVIEWS, { exportTo: ['other'] }), dr('shop/svc', 'reviews')], want: ['shop/svc'] },
    { name: 'the Service’s namespace: exportTo `.` keeps it there', rules: [dr('shop/svc', 'reviews', { exportTo: ['.'] }), dr('istio-system/root', REVIEWS)], want: ['istio-system/root'] },
    { name: 'the Service’s namespace: exported to the waypoint’s namespace', rules: [dr('shop/svc', 'reviews', { exportTo: ['mesh'] }), dr('istio-system/root', REVIEWS)], want: ['shop/svc'] },
    { name: 'the Service’s namespace: exported to all', rules: [dr('shop/svc', 'reviews', { exportTo: ['*'] }), dr('istio-system/root', REVIEWS)], want: ['shop/svc'] },
    { name: 'the root namespace: exportTo `.` keeps it there', rules: [dr('istio-system/root', REVIEWS, { exportTo: ['.'] })], want: [] },
    { name: 'an exact host beats a wildcard, whatever their age', rules: [dr('shop/wild', '*.shop.svc.cluster.local', { created: '2025-01-01T00:00:00Z' }), dr('shop/exact', 'reviews')], want: ['shop/exact'] },
    { name: 'a longer wildcard beats a shorter one', rules: [dr('shop/all', '*'), dr('shop/local', '*.cluster.local'), dr('shop/ns', '*.shop.svc.cluster.local')], want: ['shop/ns'] },
    { name: 'a wildcard for other hosts does not match', rules: [dr('shop/other', '*.other.svc.cluster.local'), dr('istio-system/all', '*')], want: ['istio-system/all'] },
    {
      name: 'the most specific host decides even when it is not exported to the waypoint (no falling back to a wildcard there)',
      rules: [dr('shop/exact', 'reviews', { exportTo: ['other'] }), dr('shop/wild', '*.shop.svc.cluster.local'), dr('istio-system/root', REVIEWS)],
      want: ['istio-system/root'],
    },
    {
      name: 'a rule kept to the Service’s namespace is not in its exported rules: a wildcard there applies',
      rules: [dr('shop/exact', 'reviews', { exportTo: ['.'] }), dr('shop/wild', '*.shop.svc.cluster.local')],
      want: ['shop/wild'],
    },
    { name: 'a waypoint in the Service’s namespace sees its rules kept there', proxyNs: 'shop', rules: [dr('shop/svc', 'reviews', { exportTo: ['.'] }), dr('istio-system/root', REVIEWS)], want: ['shop/svc'] },
    {
      name: 'a waypoint in the root namespace: its `.` rules first, then the Service’s namespace before the root’s exported rules',
      proxyNs: 'istio-system',
      rules: [dr('istio-system/kept', REVIEWS, { exportTo: ['.'] }), dr('shop/svc', 'reviews')],
      want: ['istio-system/kept'],
    },
    { name: 'a waypoint in the root namespace: exported root rules come after the Service’s', proxyNs: 'istio-system', rules: [dr('istio-system/global', REVIEWS), dr('shop/svc', 'reviews')], want: ['shop/svc'] },
    { name: 'a waypoint in the root namespace: exported root rules', proxyNs: 'istio-system', rules: [dr('istio-system/global', REVIEWS)], want: ['istio-system/global'] },
  ];
  for (const c of cases) {
    it(c.name, () => assert.deepEqual(lookup(c.rules, c.proxyNs), c.want));
  }
});

describe('DestinationRules for one host (mergeDestinationRule)', () => {
  const older = '2025-06-01T00:00:00Z';
  it('rules with the same exportTo merge, oldest first (then by name), whatever order they come in', () => {
    const rules = [dr('shop/b', 'reviews'), dr('shop/c', 'reviews', { created: older }), dr('shop/a', 'reviews')];
    assert.deepEqual(lookup(rules), ['shop/c', 'shop/a', 'shop/b']);
  });

  it('rules with different exportTo stay apart; the waypoint uses the last (newest) one', () => {
    assert.deepEqual(lookup([dr('shop/default', 'reviews', { created: older }), dr('shop/public', 'reviews', { exportTo: ['*'] })]), ['shop/public']);
    assert.deepEqual(lookup([dr('shop/public', 'reviews', { created: older, exportTo: ['*'] }), dr('shop/default', 'reviews')]), ['shop/default']);
    // A rule exported wider than an older one joins it.
    assert.deepEqual(lookup([dr('shop/narrow', 'reviews', { created: older, exportTo: ['mesh'] }), dr('shop/wide', 'reviews', { exportTo: ['mesh', 'other'] })]), ['shop/narrow', 'shop/wide']);
  });

  const ctx: DestinationContext = { ...OPTS, subsetWorkloads: (labels) => [`uid-${Object.values(labels).join('-')}`] };
  const lb = (simple: string) => ({ loadBalancer: { simple } });

  it('the first traffic policy (oldest rule having one), the subsets of all rules with the first of a name winning', () => {
    const rules = [
      dr('shop/a', 'reviews', { created: older, subsets: [{ name: 'v1', labels: { version: 'v1' } }] }),
      dr('shop/b', 'reviews', { trafficPolicy: lb('ROUND_ROBIN'), subsets: [{ name: 'v1', labels: { version: 'other' } }, { name: 'v2', labels: { version: 'v2' } }] }),
      dr('shop/c', 'reviews', { created: '2026-02-01T00:00:00Z', trafficPolicy: lb('RANDOM'), subsets: [{ name: 'v3', labels: { version: 'v3' } }] }),
    ];
    const t = translateDestination(destinationRulesFor(rules, REVIEWS, 'shop', 'mesh', OPTS), REVIEWS, 'shop', [9080], ctx)!;
    assert.equal(t.destination.rule, 'shop/a', 'named after the oldest rule');
    assert.deepEqual(
      t.destination.clusters.map((c) => [c.subset || '-', ...c.workloads, c.loadBalancer?.simple].join(' ')),
      ['- ROUND_ROBIN', 'v1 uid-v1 ROUND_ROBIN', 'v2 uid-v2 ROUND_ROBIN', 'v3 uid-v3 ROUND_ROBIN'],
    );
    assert.deepEqual(t.unsupported, []);
  });

  it('one cluster per Service port (sorted, once) and subset; no rule: nothing', () => {
    const t = translateDestination([dr('shop/a', 'reviews', { subsets: [{ name: 'v1' }] })], REVIEWS, 'shop', [9090, 80, 9090], ctx)!;
    assert.deepEqual(t.destination.clusters, [
      { port: 80, subset: '', workloads: [] },
      { port: 80, subset: 'v1', workloads: ['uid-'] },
      { port: 9090, subset: '', workloads: [] },
      { port: 9090, subset: 'v1', workloads: ['uid-'] },
    ]);
    assert.deepEqual([t.destination.hostname, t.destination.namespace], [REVIEWS, 'shop']);
    assert.equal(translateDestination([], REVIEWS, 'shop', [80], ctx), undefined);
  });
});

// ---- policies per port and subset -------------------------------------------------------------------------------------

const CTX: DestinationContext = { ...OPTS, subsetWorkloads: () => [] };

function rule(spec: string): DestinationRule {
  return parseYaml(`apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: reviews, namespace: shop}\nspec:\n  host: reviews\n${spec}`)[0] as DestinationRule;
}

/** The clusters of one rule for a Service with `ports`, in short form: `<port>/<subset> <fields>`. */
function clusters(spec: string, ports = [80, 8080]): string[] {
  const brief = (c: WaypointCluster) => {
    const parts = [];
    if (c.loadBalancer) parts.push(`lb=${c.loadBalancer.simple}`);
    if (c.connectionPool) parts.push(`pool=${c.connectionPool.maxConnections}`);
    if (c.outlierDetection) parts.push(`outlier=${c.outlierDetection.consecutiveErrors}`);
    if (c.tls) parts.push(`tls=${c.tls.mode}`);
    return `${c.port}/${c.subset || '-'}${parts.length ? ` ${parts.join(' ')}` : ''}`;
  };
  return translateDestination([rule(spec)], REVIEWS, 'shop', ports, CTX)!.destination.clusters.map(brief);
}

describe('port-level settings and subset policies (GetPortLevelTrafficPolicy, MergeSubsetTrafficPolicy)', () => {
  const TOP = `  trafficPolicy:
    connectionPool: {tcp: {maxConnections: 1}}
    outlierDetection: {consecutive5xxErrors: 7}
    portLevelSettings:
    - port: {number: 8080}
      loadBalancer: {simple: ROUND_ROBIN}
`;
  const cases: { name: string; spec: string; want: string[] }[] = [
    { name: 'port-level settings replace the whole policy for their port (what they leave out is the default)', spec: TOP, want: ['80/- pool=1 outlier=7', '8080/- lb=ROUND_ROBIN'] },
    {
      name: 'a subset without a policy has the rule’s, per port',
      spec: `${TOP}  subsets: [{name: v1}]\n`,
      want: ['80/- pool=1 outlier=7', '80/v1 pool=1 outlier=7', '8080/- lb=ROUND_ROBIN', '8080/v1 lb=ROUND_ROBIN'],
    },
    {
      name: 'a subset’s policy replaces the fields it sets, over the rule’s policy for the port',
      spec: `${TOP}  subsets:\n  - name: v1\n    trafficPolicy:\n      loadBalancer: {simple: RANDOM}\n      connectionPool: {tcp: {maxConnections: 2}}\n`,
      want: ['80/- pool=1 outlier=7', '80/v1 lb=RANDOM pool=2 outlier=7', '8080/- lb=ROUND_ROBIN', '8080/v1 lb=RANDOM pool=2'],
    },
    {
      name: 'a subset’s settings for a port replace all four fields for that port, set or not; its top-level fields then do not count there',
      spec: `${TOP}  subsets:\n  - name: v1\n    trafficPolicy:\n      connectionPool: {tcp: {maxConnections: 3}}\n      portLevelSettings:\n      - port: {number: 80}\n        tls: {mode: SIMPLE}\n`,
      want: ['80/- pool=1 outlier=7', '80/v1 tls=SIMPLE', '8080/- lb=ROUND_ROBIN', '8080/v1 lb=ROUND_ROBIN pool=3'],
    },
    {
      name: 'a rule without a top-level policy: the subset’s, per port',
      spec: `  subsets:\n  - name: v1\n    trafficPolicy:\n      tls: {mode: SIMPLE}\n      portLevelSettings: [{port: {number: 8080}, outlierDetection: {}}]\n`,
      want: ['80/-', '80/v1 tls=SIMPLE', '8080/-', '8080/v1 outlier=5'],
    },
    {
      name: 'port-level settings for a port the Service does not have change nothing',
      spec: `  trafficPolicy:\n    loadBalancer: {simple: RANDOM}\n    portLevelSettings: [{port: {number: 9999}, tls: {mode: SIMPLE}}]\n`,
      want: ['80/- lb=RANDOM', '8080/- lb=RANDOM'],
    },
  ];
  for (const c of cases) it(c.name, () => assert.deepEqual(clusters(c.spec), c.want));

  it('tunnel, proxyProtocol and retryBudget are not port-level: settings for a port drop them', () => {
    const spec = `  trafficPolicy:\n    proxyProtocol: {version: V1}\n    portLevelSettings: [{port: {number: 8080}, loadBalancer: {simple: RANDOM}}]\n`;
    assert.deepEqual(translateDestination([rule(spec)], REVIEWS, 'shop', [8080], CTX)!.unsupported, []);
    assert.deepEqual(translateDestination([rule(spec)], REVIEWS, 'shop', [80], CTX)!.unsupported, ['trafficPolicy.proxyProtocol is not supported yet']);
  });
});

// ---- what each setting becomes -----------------------------------------------------------------------------------------

/** The Service cluster (port 80) of a rule whose trafficPolicy is `policy` (flow YAML). */
function translated(policy: string) {
  const t = translateDestination([rule(`  trafficPolicy: ${policy}\n`)], REVIEWS, 'shop', [80], CTX)!;
  return { cluster: t.destination.clusters[0]!, unsupported: t.unsupported };
}

const POOL_DEFAULTS = { maxConnections: 0, connectTimeoutMs: 0, maxPendingRequests: 0, maxRequests: 0, maxRequestsPerConnection: 0, maxRetries: 0, idleTimeoutMs: 0, h2Upgrade: false, useClientProtocol: false };
const OUTLIER_DEFAULTS = { consecutiveErrors: 5, consecutiveGatewayErrors: 0, intervalMs: 10_000, baseEjectionTimeMs: 30_000, maxEjectionPercent: 10, minHealthPercent: 0 };

describe('translation (applyLoadBalancer, applyConnectionPool, applyOutlierDetection, upstream TLS)', () => {
  const loadBalancers: [string, unknown][] = [
    ['{simple: LEAST_CONN}', { simple: 'LEAST_REQUEST' }],
    ['{simple: LEAST_REQUEST}', { simple: 'LEAST_REQUEST' }],
    ['{simple: UNSPECIFIED}', { simple: 'LEAST_REQUEST' }],
    ['{simple: ROUND_ROBIN}', { simple: 'ROUND_ROBIN' }],
    ['{simple: RANDOM}', { simple: 'RANDOM' }],
    ['{consistentHash: {httpHeaderName: X-User}}', { simple: 'LEAST_REQUEST', consistentHash: { maglev: false, tableSize: 1024, httpHeaderName: 'x-user' } }],
    ['{consistentHash: {httpCookie: {name: session, path: /, ttl: 1h}}}', { simple: 'LEAST_REQUEST', consistentHash: { maglev: false, tableSize: 1024, httpCookie: { name: 'session', path: '/', ttlMs: 3_600_000 } } }],
    ['{consistentHash: {httpCookie: {name: session}}}', { simple: 'LEAST_REQUEST', consistentHash: { maglev: false, tableSize: 1024, httpCookie: { name: 'session', path: '', ttlMs: 0 } } }],
    ['{consistentHash: {useSourceIp: true, ringHash: {minimumRingSize: 2048}}}', { simple: 'LEAST_REQUEST', consistentHash: { maglev: false, tableSize: 2048, useSourceIp: true } }],
    ['{consistentHash: {httpQueryParameterName: user, ringHash: {}}}', { simple: 'LEAST_REQUEST', consistentHash: { maglev: false, tableSize: 1024, httpQueryParameterName: 'user' } }],
    ['{consistentHash: {useSourceIp: true, minimumRingSize: 4096}}', { simple: 'LEAST_REQUEST', consistentHash: { maglev: false, tableSize: 4096, useSourceIp: true } }],
    ['{consistentHash: {useSourceIp: true, maglev: {}}}', { simple: 'LEAST_REQUEST', consistentHash: { maglev: true, tableSize: 65537, useSourceIp: true } }],
    ['{consistentHash: {useSourceIp: true, maglev: {tableSize: 1021}}}', { simple: 'LEAST_REQUEST', consistentHash: { maglev: true, tableSize: 1021, useSourceIp: true } }],
    ['{consistentHash: {useSourceIp: true, ringHash: {minimumRingSize: 0}}}', { simple: 'LEAST_REQUEST', consistentHash: { maglev: false, tableSize: 1024, useSourceIp: true } }],
  ];
  for (const [lb, want] of loadBalancers) {
    it(`loadBalancer ${lb}`, () => {
      const t = translated(`{loadBalancer: ${lb}}`);
      assert.deepEqual([t.cluster.loadBalancer, t.unsupported], [want, []]);
    });
  }

  const pools: [string, Partial<typeof POOL_DEFAULTS>][] = [
    ['{tcp: {maxConnections: 10}}', { maxConnections: 10 }],
    ['{tcp: {connectTimeout: 250ms, idleTimeout: 30s}, http: {maxRetries: 1}}', { connectTimeoutMs: 250, idleTimeoutMs: 30_000, maxRetries: 1 }],
    ['{tcp: {idleTimeout: 30s}, http: {idleTimeout: 1m30s}}', { idleTimeoutMs: 90_000 }],
    ['{http: {http1MaxPendingRequests: 1, http2MaxRequests: 2, maxRequestsPerConnection: 3}}', { maxPendingRequests: 1, maxRequests: 2, maxRequestsPerConnection: 3 }],
    ['{http: {h2UpgradePolicy: UPGRADE}}', { h2Upgrade: true }],
    ['{http: {h2UpgradePolicy: DO_NOT_UPGRADE}}', {}],
    ['{http: {useClientProtocol: true}}', { useClientProtocol: true }],
    ['{http: {h2UpgradePolicy: UPGRADE, useClientProtocol: true}}', { useClientProtocol: true }],
    ['{tcp: {connectTimeout: 1500us}}', { connectTimeoutMs: 2 }],
    ['{http: {maxConcurrentStreams: 0}}', {}],
  ];
  for (const [pool, want] of pools) {
    it(`connectionPool ${pool}`, () => {
      const t = translated(`{connectionPool: ${pool}}`);
      assert.deepEqual([t.cluster.connectionPool, t.unsupported], [{ ...POOL_DEFAULTS, ...want }, []]);
    });
  }

  const outliers: [string, Partial<typeof OUTLIER_DEFAULTS>][] = [
    ['{}', {}],
    ['{consecutive5xxErrors: 0}', { consecutiveErrors: 0 }],
    ['{consecutive5xxErrors: 3, consecutiveGatewayErrors: 2}', { consecutiveErrors: 3, consecutiveGatewayErrors: 2 }],
    ['{consecutiveErrors: 3}', {}],
    ['{interval: 1m, baseEjectionTime: 2m, maxEjectionPercent: 50, minHealthPercent: 30}', { intervalMs: 60_000, baseEjectionTimeMs: 120_000, maxEjectionPercent: 50, minHealthPercent: 30 }],
    ['{maxEjectionPercent: 0}', {}],
    ['{maxEjectionPercent: 100}', { maxEjectionPercent: 100 }],
    ['{consecutiveLocalOriginFailures: 2}', {}],
  ];
  for (const [od, want] of outliers) {
    it(`outlierDetection ${od}`, () => {
      const t = translated(`{outlierDetection: ${od}}`);
      assert.deepEqual([t.cluster.outlierDetection, t.unsupported], [{ ...OUTLIER_DEFAULTS, ...want }, []]);
    });
  }

  it('tls: SIMPLE and MUTUAL are originated; DISABLE and ISTIO_MUTUAL (HBONE is mTLS already) add nothing', () => {
    const simple = translated('{tls: {mode: SIMPLE, sni: reviews.example, subjectAltNames: [spiffe://x], caCertificates: /etc/ca.pem}}');
    assert.deepEqual([simple.cluster.tls, simple.unsupported], [
      { mode: 'SIMPLE', sni: 'reviews.example', subjectAltNames: ['spiffe://x'], insecureSkipVerify: false, caCertificates: '/etc/ca.pem', clientCertificate: '', privateKey: '' },
      [],
    ]);
    const mutual = translated('{tls: {mode: MUTUAL, clientCertificate: /c.pem, privateKey: /k.pem, insecureSkipVerify: true}}');
    assert.deepEqual([mutual.cluster.tls, mutual.unsupported], [
      { mode: 'MUTUAL', sni: '', subjectAltNames: [], insecureSkipVerify: true, caCertificates: '', clientCertificate: '/c.pem', privateKey: '/k.pem' },
      [],
    ]);
    for (const mode of ['DISABLE', 'ISTIO_MUTUAL']) {
      const t = translated(`{tls: {mode: ${mode}}}`);
      assert.deepEqual([t.cluster, t.unsupported], [{ port: 80, subset: '', workloads: [] }, []], mode);
    }
  });
});

describe('what a waypoint does not apply (unsupported, ignored)', () => {
  const cases: [string, string[]][] = [
    ['{loadBalancer: {simple: PASSTHROUGH}}', ['loadBalancer.simple PASSTHROUGH is not supported at waypoints']],
    ['{loadBalancer: {localityLbSetting: {failover: [{from: a, to: b}]}}, outlierDetection: {}}', ['loadBalancer.localityLbSetting is not supported yet']],
    ['{loadBalancer: {localityLbSetting: {enabled: false}}}', []],
    ['{loadBalancer: {warmupDurationSecs: 10s}}', ['loadBalancer.warmup is not supported yet']],
    ['{loadBalancer: {warmup: {duration: 10s}}}', ['loadBalancer.warmup is not supported yet']],
    ['{loadBalancer: {consistentHash: {ringHash: {minimumRingSize: 1024}}}}', ['loadBalancer.consistentHash needs one of httpHeaderName, httpCookie, useSourceIp or httpQueryParameterName']],
    ['{connectionPool: {tcp: {maxConnectionDuration: 1h, tcpKeepalive: {time: 10s}}}}', ['connectionPool.tcp.maxConnectionDuration is not supported yet', 'connectionPool.tcp.tcpKeepalive is not supported yet']],
    ['{connectionPool: {http: {maxConcurrentStreams: 10}}}', ['connectionPool.http.maxConcurrentStreams is not supported yet']],
    ['{outlierDetection: {splitExternalLocalOriginErrors: true, consecutiveLocalOriginFailures: 2}}', ['outlierDetection.splitExternalLocalOriginErrors is not supported yet']],
    ['{tls: {mode: SIMPLE, credentialName: reviews-ca}}', ['tls.credentialName is not supported yet (use caCertificates, clientCertificate and privateKey files)']],
    ['{tls: {mode: SIMPLE, caCertificates: /ca.pem, caCrl: /crl.pem}}', ['tls.caCrl is not supported yet']],
    ['{tls: {mode: ISTIO_MUTUAL, credentialName: ignored-anyway}}', []],
    ['{tunnel: {targetHost: example.com, targetPort: 443}}', ['trafficPolicy.tunnel is not applied at waypoints']],
    ['{proxyProtocol: {version: V2}, retryBudget: {percent: {value: 10}}}', ['trafficPolicy.proxyProtocol is not supported yet', 'trafficPolicy.retryBudget is not supported yet']],
  ];
  for (const [policy, want] of cases) it(policy, () => assert.deepEqual(translated(policy).unsupported, want));

  it('the rest of a rule still applies; each reason is named once, from the rule’s, its ports’ and its subsets’ policies', () => {
    const t = translateDestination(
      [rule(`  trafficPolicy:\n    loadBalancer: {simple: PASSTHROUGH}\n    portLevelSettings: [{port: {number: 8080}, tls: {mode: SIMPLE, caCrl: /crl.pem}}]\n  subsets:\n  - {name: v1, trafficPolicy: {loadBalancer: {simple: PASSTHROUGH}, outlierDetection: {}}}\n`)],
      REVIEWS,
      'shop',
      [80, 8080],
      CTX,
    )!;
    assert.deepEqual(t.unsupported, ['loadBalancer.simple PASSTHROUGH is not supported at waypoints', 'tls.caCrl is not supported yet']);
    assert.deepEqual(t.destination.clusters.find((c) => c.port === 80 && c.subset === 'v1')?.outlierDetection, OUTLIER_DEFAULTS);
  });
});

// ---- through the ambient index ---------------------------------------------------------------------------------------

const BASE = `
${WAYPOINT_MESH}---
apiVersion: v1
kind: Namespace
metadata: {name: backend, labels: {istio.io/dataplane-mode: ambient}}
---
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: shop, labels: {istio.io/use-waypoint: wp}}
spec: {clusterIP: 10.96.0.1, selector: {app: reviews}, ports: [{name: http, port: 9080}]}
---
apiVersion: v1
kind: Service
metadata: {name: ratings, namespace: shop}
spec: {clusterIP: 10.96.0.2, selector: {app: ratings}, ports: [{name: http, port: 9080}]}
---
apiVersion: v1
kind: Service
metadata: {name: details, namespace: backend}
spec: {clusterIP: 10.96.1.1, selector: {app: details}, ports: [{name: http, port: 9080}]}
---
apiVersion: v1
kind: Pod
metadata: {name: reviews-v1, namespace: shop, labels: {app: reviews, version: v1}}
spec: {containers: [{name: app}]}
status: {podIP: 10.1.0.1, conditions: [{type: Ready, status: "True"}]}
---
apiVersion: v1
kind: Pod
metadata: {name: reviews-v2, namespace: shop, labels: {app: reviews, version: v2}}
spec: {containers: [{name: app}]}
status: {podIP: 10.1.0.2, conditions: [{type: Ready, status: "True"}]}
---
apiVersion: v1
kind: Pod
metadata: {name: ratings-v1, namespace: shop, labels: {app: ratings, version: v1}}
spec: {containers: [{name: app}]}
status: {podIP: 10.1.0.3, conditions: [{type: Ready, status: "True"}]}
`;
const REVIEWS_DR = `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: shop}
spec:
  host: reviews
  trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}, trafficPolicy: {loadBalancer: {simple: RANDOM}}}
`;
const DEST = (host: string, ns = 'shop') => `shop/wp/destination/${ns}/${host}.${ns}.svc.cluster.local`;
const uid = (ns: string, name: string) => `Kubernetes//Pod/${ns}/${name}`;

function setup(yaml: string) {
  const t = waypointIndex(yaml);
  const destination = (name: string) => t.resource(name)?.destination;
  const subsets = (name: string) => destination(name)?.clusters.map((c) => `${c.port}/${c.subset || '-'} ${c.loadBalancer?.simple ?? ''} [${c.workloads.join(' ')}]`);
  const removed = () => t.changes.filter((c) => c.typeUrl === TYPE_WAYPOINT).flatMap((c) => c.removed).sort();
  const destinations = () => [...t.index.snapshot(TYPE_WAYPOINT).keys()].filter((k) => k.includes('/destination/')).sort();
  return { ...t, destination, subsets, removed, destinations };
}

describe('DestinationRules in the ambient index', () => {
  it('a rule for a bound Service: its clusters per port and subset, the subsets’ endpoints as workload uids', () => {
    const t = setup(BASE + '---' + REVIEWS_DR);
    assert.deepEqual(t.destinations(), [DEST('reviews')]);
    const d = t.destination(DEST('reviews'))!;
    assert.deepEqual([d.hostname, d.namespace, d.rule], ['reviews.shop.svc.cluster.local', 'shop', 'shop/reviews']);
    assert.deepEqual(t.subsets(DEST('reviews')), ['9080/- ROUND_ROBIN []', `9080/v1 ROUND_ROBIN [${uid('shop', 'reviews-v1')}]`, `9080/v2 RANDOM [${uid('shop', 'reviews-v2')}]`]);
    t.index.close();
  });

  it('no rule, no destination; a Service nobody routes to gets none either', () => {
    const t = setup(BASE + '---' + REVIEWS_DR.replace('host: reviews', 'host: ratings'));
    assert.deepEqual(t.destinations(), []);
    t.index.close();
  });

  it('a VirtualService destination (with its subset) and an HTTPRoute backend get their Service’s destination', () => {
    const vs = `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: shop}
spec:
  hosts: [reviews]
  http:
  - match: [{headers: {x-ratings: {exact: "1"}}}]
    route: [{destination: {host: ratings, subset: v1}}]
  - route: [{destination: {host: reviews, subset: v2}}]
`;
    const ratingsDr = REVIEWS_DR.replace(/reviews/g, 'ratings');
    const t = setup(BASE + '---' + REVIEWS_DR + '---' + ratingsDr + '---' + vs);
    assert.deepEqual(t.destinations(), [DEST('ratings'), DEST('reviews')]);
    assert.deepEqual(t.subsets(DEST('ratings')), ['9080/- ROUND_ROBIN []', `9080/v1 ROUND_ROBIN [${uid('shop', 'ratings-v1')}]`, '9080/v2 RANDOM []']);
    const routes = (t.index.snapshot(TYPE_WAYPOINT).get('shop/wp/service/shop/reviews.shop.svc.cluster.local') as WaypointResource).service!.routes;
    assert.deepEqual(routes.map((r) => r.backends.map((b) => `${b.hostname}#${b.subset}`)), [['ratings.shop.svc.cluster.local#v1'], ['reviews.shop.svc.cluster.local#v2']]);

    const httpRoute = `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: reviews, namespace: shop}
spec:
  parentRefs: [{group: "", kind: Service, name: reviews}]
  rules: [{backendRefs: [{name: ratings, port: 9080}]}]
`;
    const h = setup(BASE + '---' + ratingsDr + '---' + httpRoute);
    assert.deepEqual(h.destinations(), [DEST('ratings')]);
    t.index.close();
    h.index.close();
  });

  it('a pod joining or leaving a subset re-sends only the destination', () => {
    const t = setup(BASE + '---' + REVIEWS_DR);
    const pod = (name: string, version: string) =>
      `apiVersion: v1\nkind: Pod\nmetadata: {name: ${name}, namespace: shop, labels: {app: reviews, version: ${version}}}\nspec: {containers: [{name: app}]}\nstatus: {podIP: 10.1.0.9, conditions: [{type: Ready, status: "True"}]}`;
    t.store.apply(parseYaml(pod('reviews-v1-b', 'v1')));
    assert.deepEqual(t.resent(), [DEST('reviews')]);
    assert.deepEqual(t.subsets(DEST('reviews'))![1], `9080/v1 ROUND_ROBIN [${uid('shop', 'reviews-v1')} ${uid('shop', 'reviews-v1-b')}]`);
    t.changes.length = 0;
    t.store.apply(parseYaml(pod('reviews-v1-b', 'v2')));
    assert.deepEqual(t.resent(), [DEST('reviews')], 'relabelled into the other subset');
    assert.deepEqual(t.subsets(DEST('reviews'))!.slice(1), [`9080/v1 ROUND_ROBIN [${uid('shop', 'reviews-v1')}]`, `9080/v2 RANDOM [${uid('shop', 'reviews-v1-b')} ${uid('shop', 'reviews-v2')}]`]);
    t.changes.length = 0;
    t.store.remove(['Pod/shop/reviews-v1-b']);
    assert.deepEqual(t.resent(), [DEST('reviews')]);
    assert.deepEqual(t.subsets(DEST('reviews'))![2], `9080/v2 RANDOM [${uid('shop', 'reviews-v2')}]`);
    t.changes.length = 0;
    t.store.apply(parseYaml(pod('unrelated', 'v1').replace('app: reviews', 'app: other')));
    assert.deepEqual(t.resent(), [], 'a pod the Service does not select');
    t.index.close();
  });

  it('Deployment replicas without pods count as subset endpoints', () => {
    const deployment = `
apiVersion: apps/v1
kind: Deployment
metadata: {name: reviews-v3, namespace: shop}
spec:
  replicas: 2
  selector: {matchLabels: {app: reviews, version: v3}}
  template: {metadata: {labels: {app: reviews, version: v3}}, spec: {containers: [{name: app}]}}
`;
    const t = setup(BASE + '---' + REVIEWS_DR.replace('- {name: v1', '- {name: v3, labels: {version: v3}}\n  - {name: v1'));
    t.store.apply(parseYaml(deployment));
    assert.deepEqual(t.resent(), [DEST('reviews')]);
    const v3 = t.destination(DEST('reviews'))!.clusters.find((c) => c.subset === 'v3')!;
    assert.equal(v3.workloads.length, 2);
    assert.ok(v3.workloads.every((w) => w.startsWith('Kubernetes//Pod/shop/reviews-v3-')), v3.workloads.join());
    t.index.close();
  });

  it('an edit re-sends the destination; deleting the rule removes it', () => {
    const t = setup(BASE + '---' + REVIEWS_DR);
    t.store.apply(parseYaml(REVIEWS_DR.replace('ROUND_ROBIN', 'LEAST_CONN')));
    assert.deepEqual(t.resent(), [DEST('reviews')]);
    assert.equal(t.destination(DEST('reviews'))!.clusters[0]!.loadBalancer?.simple, 'LEAST_REQUEST');
    t.changes.length = 0;
    t.store.remove(['DestinationRule/shop/reviews']);
    assert.deepEqual([t.resent(), t.removed(), t.destinations()], [[], [DEST('reviews')], []]);
    t.index.close();
  });

  it('a rule of another namespace applies only when exported to the waypoint’s namespace; the root namespace’s by default', () => {
    const vs = `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: shop}
spec:
  hosts: [reviews]
  http: [{route: [{destination: {host: details.backend.svc.cluster.local}}]}]
`;
    const details = (exportTo: string) => `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: details, namespace: backend}
spec:
  host: details
  exportTo: ${exportTo}
  trafficPolicy: {loadBalancer: {simple: RANDOM}}
`;
    const t = setup(BASE + '---' + vs + '---' + details('["."]'));
    assert.deepEqual(t.destinations(), []);
    t.store.apply(parseYaml(details('[shop]')));
    assert.deepEqual(t.destinations(), [DEST('details', 'backend')]);
    assert.equal(t.destination(DEST('details', 'backend'))!.rule, 'backend/details');
    t.store.apply(parseYaml(details('[other]')));
    assert.deepEqual(t.destinations(), []);
    t.store.apply(parseYaml(`apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: mesh-wide, namespace: istio-system}\nspec:\n  host: "*.svc.cluster.local"\n  trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}`));
    assert.deepEqual(t.destinations(), [DEST('details', 'backend'), DEST('reviews')]);
    assert.equal(t.destination(DEST('details', 'backend'))!.rule, 'istio-system/mesh-wide');
    t.index.close();
  });

  it('a route backend Service (not bound to the waypoint) created, changed or deleted later re-sends its destination', () => {
    const vs = `\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews, namespace: shop}\nspec:\n  hosts: [reviews]\n  http: [{route: [{destination: {host: ratings, port: {number: 9080}}}]}]`;
    const ratings = (ports: string) => `apiVersion: v1\nkind: Service\nmetadata: {name: ratings, namespace: shop}\nspec: {clusterIP: 10.96.0.2, selector: {app: ratings}, ports: ${ports}}`;
    const t = setup(BASE.replace(/---\napiVersion: v1\nkind: Service\nmetadata: {name: ratings[^]*?(?=---)/, '') + '---' + REVIEWS_DR.replace(/reviews/g, 'ratings') + '---' + vs);
    assert.deepEqual(t.destinations(), [], 'no Service yet');
    t.store.apply(parseYaml(ratings('[{name: http, port: 9080}]')));
    assert.deepEqual(t.destinations(), [DEST('ratings')], 'created');
    t.store.apply(parseYaml(ratings('[{name: http, port: 9080}, {name: admin, port: 8080}]')));
    assert.deepEqual(t.destination(DEST('ratings'))!.clusters.map((c) => c.port), [8080, 8080, 8080, 9080, 9080, 9080], 'a port added');
    t.store.remove(['Service/shop/ratings']);
    assert.deepEqual(t.destinations(), [], 'deleted');
    t.index.close();
  });

  it('a Service without a selector: subsets pick the pods its EndpointSlices name (by uid), its other endpoints only without labels', () => {
    const t = setup(
      BASE.replace('spec: {clusterIP: 10.96.0.1, selector: {app: reviews},', 'spec: {clusterIP: 10.96.0.1,').replace(/metadata: \{name: (reviews-v\d), namespace: shop,/g, 'metadata: {name: $1, namespace: shop, uid: u-$1,') +
        `---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: reviews-1, namespace: shop, labels: {kubernetes.io/service-name: reviews}}
addressType: IPv4
endpoints:
- {addresses: [10.1.0.1], targetRef: {kind: Pod, namespace: shop, name: reviews-v1, uid: u-reviews-v1}}
- {addresses: [10.1.0.2], targetRef: {kind: Pod, namespace: shop, name: reviews-v2, uid: stale}}
- {addresses: [192.168.0.9]}
ports: [{name: http, port: 9080}]
---` +
        REVIEWS_DR.replace('- {name: v2, labels: {version: v2}, trafficPolicy: {loadBalancer: {simple: RANDOM}}}', '- {name: v2, labels: {version: v2}}\n  - {name: all}'),
    );
    const opaque = 'Kubernetes/discovery.k8s.io/EndpointSlice/shop/reviews-1/192.168.0.9';
    assert.deepEqual(t.subsets(DEST('reviews')), [
      '9080/- ROUND_ROBIN []',
      `9080/v1 ROUND_ROBIN [${uid('shop', 'reviews-v1')}]`,
      // reviews-v2's reference carries another uid: not this pod.
      '9080/v2 ROUND_ROBIN []',
      `9080/all ROUND_ROBIN [${uid('shop', 'reviews-v1')} ${opaque}]`,
    ]);
    t.store.apply(parseYaml(`
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: reviews-1, namespace: shop, labels: {kubernetes.io/service-name: reviews}}
addressType: IPv4
endpoints:
- {addresses: [10.1.0.2], targetRef: {kind: Pod, namespace: shop, name: reviews-v2, uid: u-reviews-v2}}
ports: [{name: http, port: 9080}]
`));
    assert.deepEqual(t.subsets(DEST('reviews'))!.slice(1), [`9080/v1 ROUND_ROBIN []`, `9080/v2 ROUND_ROBIN [${uid('shop', 'reviews-v2')}]`, `9080/all ROUND_ROBIN [${uid('shop', 'reviews-v2')}]`], 'the slice changed');
    t.index.close();
  });

  it("a ServiceEntry host: subsets pick the entry's endpoints by their labels and the WorkloadEntries its selector picks", () => {
    const t = setup(`
${WAYPOINT_MESH}---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api, namespace: shop, labels: {istio.io/use-waypoint: wp}}
spec:
  hosts: [api.example.com]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints:
  - {address: 10.3.0.1, labels: {version: v1}}
  - {address: 10.3.0.2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: vms, namespace: shop, labels: {istio.io/use-waypoint: wp}}
spec:
  hosts: [vms.example.com]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  workloadSelector: {labels: {app: vm}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: vm-1, namespace: shop, labels: {app: vm, version: v1}}
spec: {address: 10.4.0.1}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: api, namespace: shop}
spec:
  host: api.example.com
  subsets: [{name: v1, labels: {version: v1}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: vms, namespace: shop}
spec:
  host: vms.example.com
  subsets: [{name: v1, labels: {version: v1}}]
`);
    const dest = (host: string) => `shop/wp/destination/shop/${host}`;
    assert.deepEqual(t.subsets(dest('api.example.com')), ['80/-  []', '80/v1  [Kubernetes/networking.istio.io/ServiceEntry/shop/api/10.3.0.1]']);
    assert.deepEqual(t.subsets(dest('vms.example.com')), ['80/-  []', '80/v1  [Kubernetes/networking.istio.io/WorkloadEntry/shop/vm-1]']);
    t.store.apply(parseYaml(`
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: vm-1, namespace: shop, labels: {app: vm, version: v2}}
spec: {address: 10.4.0.1}
`));
    assert.deepEqual(t.subsets(dest('vms.example.com')), ['80/-  []', '80/v1  []'], 'the WorkloadEntry left the subset');
    t.index.close();
  });

  it('a ServiceEntry host a route sends to: its rule follows the entry created, changed and deleted later', () => {
    const t = setup(
      BASE +
        `---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: shop}
spec:
  hosts: [reviews]
  http:
  - match: [{uri: {prefix: /ext}}]
    route: [{destination: {host: api.example.com, port: {number: 80}}}]
  - route: [{destination: {host: reviews}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: api, namespace: shop}
spec: {host: api.example.com, trafficPolicy: {tls: {mode: SIMPLE}}}
`,
    );
    const dest = 'shop/wp/destination/shop/api.example.com';
    assert.equal(t.destination(dest), undefined, 'no entry yet: no cluster to apply it to');
    const entry = (ports: number[]) => `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api, namespace: shop}
spec:
  hosts: [api.example.com]
  ports: [${ports.map((p) => `{number: ${p}, name: p${p}, protocol: HTTP}`).join(', ')}]
  resolution: DNS
`;
    t.store.apply(parseYaml(entry([80])));
    assert.deepEqual(t.destination(dest)?.clusters.map((c) => [c.port, c.tls?.mode]), [[80, 'SIMPLE']]);
    t.store.apply(parseYaml(entry([80, 8080])));
    assert.deepEqual(t.destination(dest)?.clusters.map((c) => c.port), [80, 8080], 'a port added');
    t.store.remove(['ServiceEntry/shop/api']);
    assert.equal(t.destination(dest), undefined, 'deleted');
    t.index.close();
  });

  it('a subset whose labels contradict the Service selector has no endpoints', () => {
    const t = setup(BASE + '---' + REVIEWS_DR.replace('{name: v1, labels: {version: v1}}', '{name: v1, labels: {app: ratings}}'));
    assert.deepEqual(t.destination(DEST('reviews'))!.clusters.find((c) => c.subset === 'v1')!.workloads, []);
    t.index.close();
  });
});
