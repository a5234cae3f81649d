// DestinationRules (networking.istio.io) as istiod renders them into a waypoint's clusters. Sources: istio/istio
// pilot/pkg/model/push_context.go (destinationRule and setDestinationRules: the proxy's namespace, then the Service's,
// then the root namespace, each by the most specific host; exportTo), pilot/pkg/model/destination_rule.go
// (mergeDestinationRule: rules for one host with the same exportTo merged, the oldest first), sidecar.go (the last
// rule without a workloadSelector), pilot/pkg/networking/util (GetPortLevelTrafficPolicy, MergeSubsetTrafficPolicy),
// pilot/pkg/networking/core/cluster_traffic_policy.go and cluster_waypoint.go (applyLoadBalancer,
// ApplyRingHashLoadBalancer, applyConnectionPool, applyOutlierDetection, buildWaypointTLSContext: ISTIO_MUTUAL is
// ignored at waypoints). DestinationRules have no status: what a waypoint does not apply is listed in `unsupported`
// and ignored, as istiod ignores what a proxy cannot use. Pure functions.
import type { DestinationRule } from '../api/types.js';
import { parseDuration } from '../common/settings.js';
import type { WaypointCluster, WaypointConnectionPool, WaypointDestination, WaypointLoadBalancer, WaypointOutlierDetection, WaypointUpstreamTls } from '../xds/types.js';
import { compareStrings } from './routes.js';
import { hostMatches, resolveHost } from './virtualservices.js';

interface TrafficPolicy {
  loadBalancer?: {
    simple?: string;
    consistentHash?: {
      httpHeaderName?: string;
      httpCookie?: { name?: string; path?: string; ttl?: string };
      useSourceIp?: boolean;
      httpQueryParameterName?: string;
      ringHash?: { minimumRingSize?: number };
      maglev?: { tableSize?: number };
      minimumRingSize?: number;
    };
    localityLbSetting?: unknown;
    zoneAwareLbSetting?: unknown;
    warmupDurationSecs?: unknown;
    warmup?: unknown;
  };
  connectionPool?: {
    tcp?: { maxConnections?: number; connectTimeout?: string; idleTimeout?: string; maxConnectionDuration?: string; tcpKeepalive?: unknown };
    http?: {
      http1MaxPendingRequests?: number;
      http2MaxRequests?: number;
      maxRequestsPerConnection?: number;
      maxRetries?: number;
      idleTimeout?: string;
      h2UpgradePolicy?: string;
      useClientProtocol?: boolean;
      maxConcurrentStreams?: number;
      http2KeepAlive?: unknown;
    };
  };
  outlierDetection?: {
    consecutive5xxErrors?: number;
    consecutiveErrors?: number;
    consecutiveGatewayErrors?: number;
    consecutiveLocalOriginFailures?: number;
    splitExternalLocalOriginErrors?: boolean;
    interval?: string;
    baseEjectionTime?: string;
    maxEjectionPercent?: number;
    minHealthPercent?: number;
  };
  tls?: {
    mode?: string;
    sni?: string;
    subjectAltNames?: string[];
    caCertificates?: string;
    clientCertificate?: string;
    privateKey?: string;
    credentialName?: string;
    insecureSkipVerify?: boolean;
    caCrl?: string;
  };
  portLevelSettings?: (Omit<TrafficPolicy, 'portLevelSettings'> & { port?: { number?: number } })[];
  tunnel?: unknown;
  proxyProtocol?: unknown;
  retryBudget?: unknown;
}

/** The fields of a TrafficPolicy that replace one another whole when policies merge. */
const POLICY_FIELDS = ['loadBalancer', 'connectionPool', 'outlierDetection', 'tls', 'tunnel', 'proxyProtocol', 'retryBudget'] as const;
/** The fields port-level settings have. */
const PORT_FIELDS = ['loadBalancer', 'connectionPool', 'outlierDetection', 'tls'] as const;

/** Envoy's outlier detection defaults for what a DestinationRule leaves unset. */
const OUTLIER_DEFAULTS = { consecutiveErrors: 5, intervalMs: 10_000, baseEjectionTimeMs: 30_000, maxEjectionPercent: 10 };

/** What a DestinationRule translation reads besides the rules. */
export interface DestinationContext {
  domainSuffix: string;
  rootNamespace: string;
  /** Workload uids of the Service's endpoints whose labels contain `labels`. */
  subsetWorkloads(labels: Record<string, string>): string[];
}

/** A rule with what the lookup needs, read once. */
interface Candidate {
  dr: DestinationRule;
  namespace: string;
  host: string;
  exportTo: Set<string>;
}

/**
 * The DestinationRules that apply to `hostname` for a proxy in `proxyNamespace` (istiod's lookup), oldest first: the
 * rules istiod merged into the one rule the waypoint uses. Three places are searched, each by the most specific host
 * (an exact host, else the longest wildcard): the proxy's namespace (rules not exported away from it), then the
 * Service's namespace and last the root namespace (rules exported to the proxy's namespace). Rules for one host in one
 * place merge when their exportTo sets are equal (istiod's ENABLE_ENHANCED_DESTINATIONRULE_MERGE, on by default);
 * rules that do not merge stay separate, and the waypoint, like a proxy's SidecarScope, uses the last of them.
 */
export function destinationRulesFor(rules: Iterable<DestinationRule>, hostname: string, serviceNamespace: string, proxyNamespace: string, ctx: { domainSuffix: string; rootNamespace: string }): DestinationRule[] {
  const root = ctx.rootNamespace;
  const candidates: Candidate[] = [];
  for (const dr of rules) {
    // A rule with a workloadSelector applies to the sidecars it selects, never to a waypoint.
    if (dr.spec.workloadSelector !== undefined) continue;
    const namespace = dr.metadata.namespace ?? '';
    if (namespace !== proxyNamespace && namespace !== serviceNamespace && namespace !== root) continue;
    const host = resolveHost(dr.spec.host, namespace, ctx.domainSuffix);
    if (hostMatches(host, hostname)) candidates.push({ dr, namespace, host, exportTo: new Set(dr.spec.exportTo ?? []) });
  }
  if (candidates.length === 0) return [];
  candidates.sort((a, b) => byAge(a.dr, b.dr));
  // istiod's indexes: rules meant for proxies of their own namespace, and rules exported to other namespaces.
  const local = (c: Candidate) => c.exportTo.size === 0 || c.exportTo.has('*') || c.exportTo.has('.') || c.exportTo.has(c.namespace);
  const privateOnly = (c: Candidate) => c.exportTo.size === 1 && (c.exportTo.has('.') || c.exportTo.has(c.namespace));
  const visibleTo = (exportTo: Set<string>) => exportTo.size === 0 || exportTo.has('*') || exportTo.has(proxyNamespace);
  const search = (namespace: string, inIndex: (c: Candidate) => boolean, visible: (exportTo: Set<string>) => boolean): DestinationRule[][] => {
    const indexed = candidates.filter((c) => c.namespace === namespace && inIndex(c));
    let best: string | undefined;
    for (const c of indexed) if (best === undefined || specificity(c.host) > specificity(best)) best = c.host;
    // The most specific host decides even when none of its rules is visible: there is no falling back to a wider one.
    return consolidate(indexed.filter((c) => c.host === best))
      .filter((m) => visible(m.exportTo))
      .map((m) => m.rules);
  };
  let found: DestinationRule[][];
  if (proxyNamespace !== root) found = search(proxyNamespace, local, () => true);
  // A proxy in the root namespace first sees the root namespace's rules kept to it (exportTo `.` alone).
  else found = search(root, privateOnly, () => true);
  if (found.length === 0) found = search(serviceNamespace, (c) => !privateOnly(c), visibleTo);
  if (found.length === 0) found = search(root, (c) => !privateOnly(c), visibleTo);
  return found.at(-1) ?? [];
}

/**
 * istiod's mergeDestinationRule over rules for one host, oldest first: a rule joins each earlier merged rule whose
 * exportTo equals its own or is a non-empty subset of it, and stands alone when the last of them does not take it.
 */
function consolidate(sorted: Candidate[]): { exportTo: Set<string>; rules: DestinationRule[] }[] {
  const out: { exportTo: Set<string>; rules: DestinationRule[] }[] = [];
  for (const c of sorted) {
    let alone = true;
    for (const m of out) {
      alone = !(sameSet(c.exportTo, m.exportTo) || (m.exportTo.size > 0 && [...m.exportTo].every((e) => c.exportTo.has(e))));
      if (!alone) m.rules.push(c.dr);
    }
    if (alone) out.push({ exportTo: c.exportTo, rules: [c.dr] });
  }
  return out;
}

function sameSet(a: Set<string>, b: Set<string>): boolean {
  return a.size === b.size && [...a].every((e) => b.has(e));
}

function specificity(host: string): number {
  return host === '*' ? 0 : host.startsWith('*.') ? host.length : Number.MAX_SAFE_INTEGER;
}

/** istiod's sortConfigByCreationTime: oldest first, then by name and namespace. */
function byAge(a: DestinationRule, b: DestinationRule): number {
  const t = (dr: DestinationRule) => {
    const v = Date.parse(dr.metadata.creationTimestamp ?? '');
    return Number.isNaN(v) ? -Infinity : v;
  };
  return t(a) - t(b) || compareStrings(a.metadata.name, b.metadata.name) || compareStrings(a.metadata.namespace ?? '', b.metadata.namespace ?? '');
}

/** One DestinationRule translated for one Service, and what of it a waypoint does not apply. */
export interface TranslatedDestination {
  destination: WaypointDestination;
  unsupported: string[];
}

/**
 * istiod's mergeDestinationRule then cluster building over the rules destinationRulesFor returns: the oldest rule's
 * traffic policy (a later rule's only when it has none), subsets of all rules (the first of a name wins), one cluster
 * per Service port and subset.
 */
export function translateDestination(rules: DestinationRule[], hostname: string, namespace: string, servicePorts: number[], ctx: DestinationContext): TranslatedDestination | undefined {
  const first = rules[0];
  if (first === undefined) return undefined;
  const problems = new Set<string>();
  let top: TrafficPolicy | undefined;
  const subsets: { name: string; labels: Record<string, string>; trafficPolicy?: TrafficPolicy }[] = [];
  for (const dr of rules) {
    top ??= dr.spec.trafficPolicy as TrafficPolicy | undefined;
    for (const s of dr.spec.subsets ?? []) {
      if (!subsets.some((x) => x.name === s.name)) subsets.push({ name: s.name, labels: s.labels ?? {}, ...(s.trafficPolicy ? { trafficPolicy: s.trafficPolicy as TrafficPolicy } : {}) });
    }
  }
  const workloads = subsets.map((s) => ctx.subsetWorkloads(s.labels));
  const clusters: WaypointCluster[] = [];
  for (const port of [...new Set(servicePorts)].sort((a, b) => a - b)) {
    clusters.push(cluster(port, '', [], forPort(top, port).policy, problems));
    subsets.forEach((s, i) => clusters.push(cluster(port, s.name, workloads[i]!, subsetPolicy(top, s.trafficPolicy, port), problems)));
  }
  return {
    destination: { hostname, namespace, rule: `${first.metadata.namespace ?? ''}/${first.metadata.name}`, clusters },
    unsupported: [...problems],
  };
}

/**
 * istiod's GetPortLevelTrafficPolicy: the settings for `port` replace the whole policy (what they leave out takes the
 * default, and tunnel, proxyProtocol and retryBudget are dropped); without any, the policy as it is.
 */
function forPort(policy: TrafficPolicy | undefined, port: number): { policy: TrafficPolicy | undefined; portLevel: boolean } {
  const p = policy?.portLevelSettings?.find((s) => s.port?.number === port);
  if (p === undefined) return { policy, portLevel: false };
  const out: TrafficPolicy = {};
  for (const f of PORT_FIELDS) if (p[f] !== undefined) (out as Record<string, unknown>)[f] = p[f];
  return { policy: out, portLevel: true };
}

/**
 * istiod's MergeSubsetTrafficPolicy: the rule's policy for the port, then each field the subset's policy for the port
 * sets replaces the rule's; when the subset has settings for the port, all of loadBalancer, connectionPool,
 * outlierDetection and tls come from them, set or not.
 */
function subsetPolicy(top: TrafficPolicy | undefined, subset: TrafficPolicy | undefined, port: number): TrafficPolicy | undefined {
  const original = forPort(top, port).policy;
  if (subset === undefined) return original;
  const { policy: override, portLevel } = forPort(subset, port);
  if (original === undefined) return override;
  const out: Record<string, unknown> = {};
  for (const f of POLICY_FIELDS) if (original[f] !== undefined) out[f] = original[f];
  for (const f of POLICY_FIELDS) {
    const replaces = override?.[f] !== undefined || (portLevel && (PORT_FIELDS as readonly string[]).includes(f));
    if (!replaces) continue;
    if (override?.[f] === undefined) delete out[f];
    else out[f] = override[f];
  }
  return out as TrafficPolicy;
}

function cluster(port: number, subset: string, workloads: string[], policy: TrafficPolicy | undefined, problems: Set<string>): WaypointCluster {
  const out: WaypointCluster = { port, subset, workloads };
  if (policy === undefined) return out;
  const lb = loadBalancer(policy.loadBalancer, problems);
  if (lb) out.loadBalancer = lb;
  const pool = connectionPool(policy.connectionPool, problems);
  if (pool) out.connectionPool = pool;
  const outlier = outlierDetection(policy.outlierDetection, problems);
  if (outlier) out.outlierDetection = outlier;
  const tls = upstreamTls(policy.tls, problems);
  if (tls) out.tls = tls;
  if (policy.tunnel !== undefined) problems.add('trafficPolicy.tunnel is not applied at waypoints');
  if (policy.proxyProtocol !== undefined) problems.add('trafficPolicy.proxyProtocol is not supported yet');
  if (policy.retryBudget !== undefined) problems.add('trafficPolicy.retryBudget is not supported yet');
  return out;
}

/** A protobuf Duration (validated when the rule was applied) in whole milliseconds; unset: 0. */
function ms(d: string | undefined): number {
  return d === undefined ? 0 : Math.round(parseDuration(d, 'duration'));
}

/** istiod's applyLoadBalancer: LEAST_REQUEST unless told (LEAST_CONN is its old name); ApplyRingHashLoadBalancer. */
function loadBalancer(lb: TrafficPolicy['loadBalancer'], problems: Set<string>): WaypointLoadBalancer | undefined {
  if (lb === undefined) return undefined;
  // `enabled: false` turns locality load balancing off, which is what the waypoint does anyway.
  if (lb.localityLbSetting !== undefined && (lb.localityLbSetting as { enabled?: boolean }).enabled !== false) problems.add('loadBalancer.localityLbSetting is not supported yet');
  if (lb.zoneAwareLbSetting !== undefined) problems.add('loadBalancer.zoneAwareLbSetting is not supported yet');
  if (lb.warmup !== undefined || lb.warmupDurationSecs !== undefined) problems.add('loadBalancer.warmup is not supported yet');
  // PASSTHROUGH sends to the original destination, which for a Service's VIP is no endpoint at all.
  if (lb.simple === 'PASSTHROUGH') problems.add('loadBalancer.simple PASSTHROUGH is not supported at waypoints');
  const simple = lb.simple === 'ROUND_ROBIN' || lb.simple === 'RANDOM' ? lb.simple : 'LEAST_REQUEST';
  const out: WaypointLoadBalancer = { simple };
  const ch = lb.consistentHash;
  if (ch !== undefined) {
    const maglev = ch.maglev !== undefined;
    const hash: NonNullable<WaypointLoadBalancer['consistentHash']> = {
      maglev,
      // 0 or unset: Envoy's defaults, a ring of at least 1024 entries, a maglev table of 65537; the deprecated
      // top-level minimumRingSize counts only without ringHash.
      tableSize: maglev ? ch.maglev?.tableSize || 65537 : (ch.ringHash !== undefined ? ch.ringHash.minimumRingSize : ch.minimumRingSize) || 1024,
    };
    if (ch.httpHeaderName) hash.httpHeaderName = ch.httpHeaderName.toLowerCase();
    else if (ch.httpCookie?.name) hash.httpCookie = { name: ch.httpCookie.name, path: ch.httpCookie.path ?? '', ttlMs: ms(ch.httpCookie.ttl) };
    else if (ch.useSourceIp) hash.useSourceIp = true;
    else if (ch.httpQueryParameterName) hash.httpQueryParameterName = ch.httpQueryParameterName;
    else {
      problems.add('loadBalancer.consistentHash needs one of httpHeaderName, httpCookie, useSourceIp or httpQueryParameterName');
      return out;
    }
    out.consistentHash = hash;
  }
  return out;
}

/** istiod's applyConnectionPool and applyH2Upgrade; 0 leaves Istio's default (no limit). */
function connectionPool(cp: TrafficPolicy['connectionPool'], problems: Set<string>): WaypointConnectionPool | undefined {
  if (cp === undefined) return undefined;
  const tcp = cp.tcp ?? {};
  const http = cp.http ?? {};
  if (tcp.maxConnectionDuration !== undefined) problems.add('connectionPool.tcp.maxConnectionDuration is not supported yet');
  if (tcp.tcpKeepalive !== undefined) problems.add('connectionPool.tcp.tcpKeepalive is not supported yet');
  if (http.maxConcurrentStreams) problems.add('connectionPool.http.maxConcurrentStreams is not supported yet');
  if (http.http2KeepAlive !== undefined) problems.add('connectionPool.http.http2KeepAlive is not supported yet');
  const useClientProtocol = http.useClientProtocol === true;
  return {
    maxConnections: tcp.maxConnections ?? 0,
    connectTimeoutMs: ms(tcp.connectTimeout),
    maxPendingRequests: http.http1MaxPendingRequests ?? 0,
    maxRequests: http.http2MaxRequests ?? 0,
    maxRequestsPerConnection: http.maxRequestsPerConnection ?? 0,
    maxRetries: http.maxRetries ?? 0,
    // The HTTP idle timeout, else the TCP one.
    idleTimeoutMs: ms(http.idleTimeout ?? tcp.idleTimeout),
    // useClientProtocol wins over an upgrade.
    h2Upgrade: http.h2UpgradePolicy === 'UPGRADE' && !useClientProtocol,
    useClientProtocol,
  };
}

/**
 * istiod's applyOutlierDetection over Envoy's defaults: consecutive 5xx 0 turns that detection off, a
 * maxEjectionPercent of 0 is unset (10 %); the deprecated consecutiveErrors is not read.
 */
function outlierDetection(od: TrafficPolicy['outlierDetection'], problems: Set<string>): WaypointOutlierDetection | undefined {
  if (od === undefined) return undefined;
  // Without the split, istiod ignores consecutiveLocalOriginFailures too.
  if (od.splitExternalLocalOriginErrors) problems.add('outlierDetection.splitExternalLocalOriginErrors is not supported yet');
  return {
    consecutiveErrors: od.consecutive5xxErrors ?? OUTLIER_DEFAULTS.consecutiveErrors,
    consecutiveGatewayErrors: od.consecutiveGatewayErrors ?? 0,
    intervalMs: ms(od.interval) || OUTLIER_DEFAULTS.intervalMs,
    baseEjectionTimeMs: ms(od.baseEjectionTime) || OUTLIER_DEFAULTS.baseEjectionTimeMs,
    maxEjectionPercent: od.maxEjectionPercent || OUTLIER_DEFAULTS.maxEjectionPercent,
    minHealthPercent: od.minHealthPercent ?? 0,
  };
}

/** SIMPLE and MUTUAL originate TLS inside the tunnel; DISABLE and ISTIO_MUTUAL (HBONE is mTLS already) do nothing. */
function upstreamTls(tls: TrafficPolicy['tls'], problems: Set<string>): WaypointUpstreamTls | undefined {
  if (tls === undefined || (tls.mode !== 'SIMPLE' && tls.mode !== 'MUTUAL')) return undefined;
  if (tls.credentialName) problems.add('tls.credentialName is not supported yet (use caCertificates, clientCertificate and privateKey files)');
  if (tls.caCrl) problems.add('tls.caCrl is not supported yet');
  if (tls.mode === 'MUTUAL' && !tls.credentialName && (!tls.clientCertificate || !tls.privateKey)) problems.add('tls mode MUTUAL needs clientCertificate and privateKey');
  return {
    mode: tls.mode,
    sni: tls.sni ?? '',
    subjectAltNames: tls.subjectAltNames ?? [],
    insecureSkipVerify: tls.insecureSkipVerify === true,
    caCertificates: tls.caCertificates ?? '',
    clientCertificate: tls.clientCertificate ?? '',
    privateKey: tls.privateKey ?? '',
  };
}

/**
 * What of one DestinationRule no waypoint applies, whichever Service it meets: its policies translated for every port
 * its port-level settings name and for any other port (the reasons depend on nothing else). A rule with a
 * workloadSelector never reaches a waypoint: nothing.
 */
export function unappliedDestinationRuleFields(dr: DestinationRule): string[] {
  if (dr.spec.workloadSelector !== undefined) return [];
  // 0 stands for every port without settings of its own (a Service port is 1-65535).
  const ports = new Set([0]);
  const policies = [dr.spec.trafficPolicy, ...(dr.spec.subsets ?? []).map((s) => s.trafficPolicy)] as (TrafficPolicy | undefined)[];
  for (const p of policies) for (const s of p?.portLevelSettings ?? []) if (typeof s.port?.number === 'number') ports.add(s.port.number);
  const ctx: DestinationContext = { domainSuffix: '', rootNamespace: '', subsetWorkloads: () => [] };
  return translateDestination([dr], dr.spec.host, dr.metadata.namespace ?? '', [...ports], ctx)!.unsupported;
}
