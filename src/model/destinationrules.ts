// DestinationRules (networking.istio.io) as istiod renders them into a waypoint's clusters. Sources: istio/istio
// pilot/pkg/model/push_context.go (destinationRule: the proxy's namespace, then the Service's, then the root
// namespace, each by the most specific host; exportTo), pilot/pkg/model/destination_rule.go (mergeDestinationRule:
// rules for one host in one namespace merged, the oldest first), pilot/pkg/networking/core/cluster_traffic_policy.go
// and cluster_waypoint.go (MergeTrafficPolicy, applyLoadBalancer, applyConnectionPool, applyOutlierDetection,
// applyUpstreamTLSSettings; ISTIO_MUTUAL is ignored at waypoints). DestinationRules have no status: what a waypoint
// does not apply is listed in `unsupported` and ignored, as istiod ignores what a proxy cannot use. Pure functions.
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

/** Envoy's outlier detection defaults for what a DestinationRule leaves unset. */
const OUTLIER_DEFAULTS = { consecutiveErrors: 5, intervalMs: 10_000, baseEjectionTimeMs: 30_000, maxEjectionPercent: 10 };

/** What a DestinationRule translation reads besides the rules. */
export interface DestinationContext {
  domainSuffix: string;
  rootNamespace: string;
  /** Workload uids of the Service's endpoints whose labels contain `labels`. */
  subsetWorkloads(labels: Record<string, string>): string[];
}

/** The DestinationRules that apply to `hostname` for a proxy in `proxyNamespace` (istiod's lookup), oldest first. */
export function destinationRulesFor(rules: Iterable<DestinationRule>, hostname: string, serviceNamespace: string, proxyNamespace: string, ctx: { domainSuffix: string; rootNamespace: string }): DestinationRule[] {
  const byNamespace = new Map<string, DestinationRule[]>();
  for (const dr of rules) {
    // A rule with a workloadSelector applies to the sidecars it selects, never to a waypoint.
    if (dr.spec.workloadSelector !== undefined) continue;
    const ns = dr.metadata.namespace ?? '';
    let list = byNamespace.get(ns);
    if (list === undefined) byNamespace.set(ns, (list = []));
    list.push(dr);
  }
  const exportedTo = (dr: DestinationRule, client: string) => {
    const to = dr.spec.exportTo;
    if (to === undefined || to.length === 0) return true;
    return to.includes('*') || to.includes(client) || (to.includes('.') && (dr.metadata.namespace ?? '') === client);
  };
  const mostSpecific = (list: DestinationRule[] | undefined, visible: (dr: DestinationRule) => boolean): DestinationRule[] => {
    let best: string | undefined;
    let found: DestinationRule[] = [];
    for (const dr of list ?? []) {
      if (!visible(dr)) continue;
      const host = resolveHost(dr.spec.host, dr.metadata.namespace ?? '', ctx.domainSuffix);
      if (!hostMatches(host, hostname)) continue;
      // An exact host beats any wildcard; a longer wildcard beats a shorter one.
      if (best === undefined || specificity(host) > specificity(best)) {
        best = host;
        found = [dr];
      } else if (host === best) found.push(dr);
    }
    return found.sort(byAge);
  };
  let found: DestinationRule[];
  if (proxyNamespace !== ctx.rootNamespace) {
    // Any rule in the proxy's own namespace is meant for it, whatever its exportTo says.
    found = mostSpecific(byNamespace.get(proxyNamespace), () => true);
  } else {
    found = mostSpecific(byNamespace.get(proxyNamespace), (dr) => (dr.spec.exportTo ?? []).includes('.'));
  }
  if (found.length === 0) found = mostSpecific(byNamespace.get(serviceNamespace), (dr) => exportedTo(dr, proxyNamespace));
  if (found.length === 0) found = mostSpecific(byNamespace.get(ctx.rootNamespace), (dr) => exportedTo(dr, proxyNamespace));
  return found;
}

function specificity(host: string): number {
  return host === '*' ? 0 : host.startsWith('*.') ? host.length : Number.MAX_SAFE_INTEGER;
}

function byAge(a: DestinationRule, b: DestinationRule): number {
  const t = (dr: DestinationRule) => {
    const v = Date.parse(dr.metadata.creationTimestamp ?? '');
    return Number.isNaN(v) ? -Infinity : v;
  };
  return t(a) - t(b) || compareStrings(a.metadata.name, b.metadata.name);
}

/** One DestinationRule translated for one Service, and what of it a waypoint does not apply. */
export interface TranslatedDestination {
  destination: WaypointDestination;
  unsupported: string[];
}

/**
 * istiod's mergeDestinationRule then cluster building: the oldest rule's traffic policy (a later rule's only when it
 * has none), subsets of all rules (the first of a name wins), one cluster per Service port and subset.
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
  const clusters: WaypointCluster[] = [];
  for (const port of [...servicePorts].sort((a, b) => a - b)) {
    const base = mergePolicy(undefined, top, port);
    clusters.push(cluster(port, '', [], base, problems));
    for (const s of subsets) clusters.push(cluster(port, s.name, ctx.subsetWorkloads(s.labels), mergePolicy(base, s.trafficPolicy, port), problems));
  }
  return {
    destination: { hostname, namespace, rule: `${first.metadata.namespace ?? ''}/${first.metadata.name}`, clusters },
    unsupported: [...problems],
  };
}

/** istiod's MergeTrafficPolicy: the override's fields, then its settings for `port`, each replacing the whole field. */
function mergePolicy(base: TrafficPolicy | undefined, override: TrafficPolicy | undefined, port: number): TrafficPolicy | undefined {
  if (override === undefined) return base;
  const out: TrafficPolicy = {};
  for (const f of POLICY_FIELDS) {
    const v = override[f] ?? base?.[f];
    if (v !== undefined) (out as Record<string, unknown>)[f] = v;
  }
  const forPort = override.portLevelSettings?.find((p) => p.port?.number === port);
  if (forPort !== undefined) for (const f of POLICY_FIELDS) if (forPort[f] !== undefined) (out as Record<string, unknown>)[f] = forPort[f];
  return out;
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

function ms(d: string | undefined, name: string): number {
  return d === undefined ? 0 : Math.round(parseDuration(d, name));
}

/** istiod's applyLoadBalancer: LEAST_REQUEST unless told; LEAST_CONN is its old name. */
function loadBalancer(lb: TrafficPolicy['loadBalancer'], problems: Set<string>): WaypointLoadBalancer | undefined {
  if (lb === undefined) return undefined;
  if (lb.localityLbSetting !== undefined) problems.add('loadBalancer.localityLbSetting is not supported yet');
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
      // Istio's default ring: 1024 entries at least; maglev's table: 65537.
      tableSize: maglev ? (ch.maglev?.tableSize ?? 65537) : (ch.ringHash?.minimumRingSize ?? ch.minimumRingSize ?? 1024),
    };
    if (ch.httpHeaderName) hash.httpHeaderName = ch.httpHeaderName.toLowerCase();
    else if (ch.httpCookie?.name) hash.httpCookie = { name: ch.httpCookie.name, path: ch.httpCookie.path ?? '', ttlMs: ms(ch.httpCookie.ttl, 'httpCookie.ttl') };
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

/** istiod's applyConnectionPool; 0 leaves Istio's default (no limit). */
function connectionPool(cp: TrafficPolicy['connectionPool'], problems: Set<string>): WaypointConnectionPool | undefined {
  if (cp === undefined) return undefined;
  const tcp = cp.tcp ?? {};
  const http = cp.http ?? {};
  if (tcp.maxConnectionDuration !== undefined) problems.add('connectionPool.tcp.maxConnectionDuration is not supported yet');
  if (tcp.tcpKeepalive !== undefined) problems.add('connectionPool.tcp.tcpKeepalive is not supported yet');
  if (http.maxConcurrentStreams !== undefined) problems.add('connectionPool.http.maxConcurrentStreams is not supported yet');
  return {
    maxConnections: tcp.maxConnections ?? 0,
    connectTimeoutMs: ms(tcp.connectTimeout, 'connectTimeout'),
    maxPendingRequests: http.http1MaxPendingRequests ?? 0,
    maxRequests: http.http2MaxRequests ?? 0,
    maxRequestsPerConnection: http.maxRequestsPerConnection ?? 0,
    maxRetries: http.maxRetries ?? 0,
    // The HTTP idle timeout, else the TCP one.
    idleTimeoutMs: ms(http.idleTimeout ?? tcp.idleTimeout, 'idleTimeout'),
    h2Upgrade: http.h2UpgradePolicy === 'UPGRADE',
    useClientProtocol: http.useClientProtocol === true,
  };
}

/** istiod's applyOutlierDetection over Envoy's defaults; consecutive 5xx 0 turns that detection off. */
function outlierDetection(od: TrafficPolicy['outlierDetection'], problems: Set<string>): WaypointOutlierDetection | undefined {
  if (od === undefined) return undefined;
  if (od.splitExternalLocalOriginErrors || od.consecutiveLocalOriginFailures !== undefined) problems.add('outlierDetection.splitExternalLocalOriginErrors is not supported yet');
  return {
    consecutiveErrors: od.consecutive5xxErrors ?? (od.consecutiveErrors && od.consecutiveErrors > 0 ? od.consecutiveErrors : OUTLIER_DEFAULTS.consecutiveErrors),
    consecutiveGatewayErrors: od.consecutiveGatewayErrors ?? 0,
    intervalMs: ms(od.interval, 'outlierDetection.interval') || OUTLIER_DEFAULTS.intervalMs,
    baseEjectionTimeMs: ms(od.baseEjectionTime, 'outlierDetection.baseEjectionTime') || OUTLIER_DEFAULTS.baseEjectionTimeMs,
    maxEjectionPercent: od.maxEjectionPercent ?? OUTLIER_DEFAULTS.maxEjectionPercent,
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
