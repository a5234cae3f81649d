// VirtualServices (networking.istio.io) as istiod applies them at waypoints. Sources: istio/istio
// pilot/pkg/networking/core/listener_waypoint.go (getVirtualServiceForWaypoint, waypointInboundRoute,
// getWaypointDestinationCluster), route/route.go (TranslateRoute, TranslateRouteMatch, TranslateHeadersOperations,
// applyHTTPRouteDestination, ApplyRedirect, ApplyDirectResponse, MirrorPercent, IsCatchAllRoute), route/retry/retry.go
// (ConvertPolicy, parseRetryOn) and pilot/pkg/model (ResolveShortnameToFQDN, sortConfigByCreationTime).
// A VirtualService has no status in Istio: what Ambit cannot apply faithfully is listed in `unsupported`, and such a
// VirtualService is not programmed at all rather than half-applied (a left-out route would send its requests to the
// next route that matches, silently). Pure functions; the AmbientIndex keeps them incremental.
import { STATUS_CODES } from 'node:http';
import type { Service as KubeService, VirtualService } from '../api/types.js';
import { GRPC_STATUS_CODES } from '../common/grpc-status.js';
import { parseDuration } from '../common/settings.js';
import type { WaypointHeaderModifier, WaypointRetry, WaypointRoute, WaypointRouteBackend, WaypointRouteMatch, WaypointTcpRoute, WaypointValueMatch } from '../xds/types.js';
import { compareStrings, defaultRouteRetry, invalidExpression } from './routes.js';

/** What the translation reads besides the VirtualService. */
export interface VirtualServiceContext {
  domainSuffix: string;
  service(namespace: string, name: string): KubeService | undefined;
  /** The VirtualService a `delegate` names; absent: delegates cannot be resolved (and are reported). */
  virtualService?(namespace: string, name: string): VirtualService | undefined;
}

/** The context of VirtualServices read from a store by key (`Service/<ns>/<name>`, `VirtualService/<ns>/<name>`). */
export function virtualServiceContext(get: (key: string) => unknown, domainSuffix: string): VirtualServiceContext {
  return {
    domainSuffix,
    service: (ns, name) => get(`Service/${ns}/${name}`) as KubeService | undefined,
    virtualService: (ns, name) => get(`VirtualService/${ns}/${name}`) as VirtualService | undefined,
  };
}

/** One VirtualService, translated once for every Service it names. */
export interface TranslatedVirtualService {
  namespace: string;
  name: string;
  creationTimestamp?: string;
  /** `hosts`, short names resolved in the VirtualService's namespace: FQDNs, or wildcards (`*`, `*.<suffix>`). */
  hosts: string[];
  /** In evaluation order, catch-all cut-off applied; empty when anything is unsupported. */
  routes: WaypointRoute[];
  /** The `tls` rules, then the `tcp` rules, for the ports of the Services it names (virtualServiceTcpRoutes). */
  l4: L4Rule[];
  /** Fields Ambit does not apply yet, each named once; any: the VirtualService is not programmed. */
  unsupported: string[];
  /** Store keys of the destination Services the translation read. */
  dependencies: string[];
}

/** One `tls` or `tcp` rule: what it matches and where connections go (a backend port 0: the connection's port). */
export interface L4Rule {
  kind: 'tls' | 'tcp';
  rule: number;
  /** Absent: every connection. A match a waypoint can never satisfy (source labels or namespace) is left out. */
  matches?: { port: number; sniHost?: string }[];
  backends: WaypointRouteBackend[];
}

interface L4Match {
  port?: number;
  sniHosts?: string[];
  sourceLabels?: Record<string, string>;
  sourceNamespace?: string;
  gateways?: string[];
}

interface StringMatch {
  exact?: string;
  prefix?: string;
  regex?: string;
}

interface HeaderOperations {
  set?: Record<string, string>;
  add?: Record<string, string>;
  remove?: string[];
}

interface Headers {
  request?: HeaderOperations;
  response?: HeaderOperations;
}

interface Destination {
  host: string;
  subset?: string;
  port?: { number?: number };
}

interface MatchRequest {
  name?: string;
  uri?: StringMatch;
  method?: StringMatch;
  authority?: StringMatch;
  scheme?: StringMatch;
  headers?: Record<string, StringMatch>;
  withoutHeaders?: Record<string, StringMatch>;
  queryParams?: Record<string, StringMatch>;
  port?: number;
  sourceLabels?: Record<string, string>;
  sourceNamespace?: string;
  gateways?: string[];
  ignoreUriCase?: boolean;
}

interface HTTPRoute {
  name?: string;
  match?: MatchRequest[];
  route?: { destination: Destination; weight?: number; headers?: Headers }[];
  redirect?: { uri?: string; authority?: string; port?: number; derivePort?: string; scheme?: string; redirectCode?: number };
  directResponse?: { status: number; body?: { string?: string; bytes?: string } };
  delegate?: unknown;
  rewrite?: { uri?: string; authority?: string; uriRegexRewrite?: unknown };
  timeout?: string;
  retries?: { attempts?: number; perTryTimeout?: string; retryOn?: string; backoff?: string; retryRemoteLocalities?: boolean };
  fault?: {
    delay?: { fixedDelay?: string; exponentialDelay?: string; percentage?: { value?: number }; percent?: number };
    abort?: { httpStatus?: number; grpcStatus?: string; http2Error?: string; percentage?: { value?: number } };
  };
  corsPolicy?: {
    allowOrigins?: StringMatch[];
    allowOrigin?: string[];
    allowMethods?: string[];
    allowHeaders?: string[];
    exposeHeaders?: string[];
    maxAge?: string;
    allowCredentials?: boolean;
    unmatchedPreflights?: string;
  };
  mirror?: Destination;
  mirrorPercentage?: { value?: number };
  mirrorPercent?: number;
  mirrors?: { destination?: Destination; percentage?: { value?: number } }[];
  headers?: Headers;
}

/** istiod's ResolveShortnameToFQDN: a name without a dot is a Service of the VirtualService's namespace. */
export function resolveHost(host: string, namespace: string, domainSuffix: string): string {
  return host === '*' || host.includes('.') ? host : `${host}.${namespace}.svc.${domainSuffix}`;
}

/** istio's host.Name.Matches for a concrete hostname: equal, or under a wildcard. */
export function hostMatches(pattern: string, hostname: string): boolean {
  return pattern === hostname || pattern === '*' || (pattern.startsWith('*.') && hostname.endsWith(pattern.slice(1)));
}

/** The Service store key of a mesh hostname (`<name>.<namespace>.svc.<suffix>`); undefined for any other host. */
export function serviceKeyOfHost(hostname: string, domainSuffix: string): string | undefined {
  const suffix = `.svc.${domainSuffix}`;
  if (!hostname.endsWith(suffix)) return undefined;
  const parts = hostname.slice(0, -suffix.length).split('.');
  return parts.length === 2 && parts[0] !== '' && parts[1] !== '' ? `Service/${parts[1]}/${parts[0]}` : undefined;
}

export function translateVirtualService(vs: VirtualService, ctx: VirtualServiceContext): TranslatedVirtualService {
  const ns = vs.metadata.namespace ?? '';
  // What cannot be applied, collected while the VirtualService converts.
  const problems = new Set<string>();
  const deps = new Set<string>();
  const routes = convertHTTPRoutes(vs, withDelegates(vs, ctx, problems, deps), ctx, problems, deps);
  const l4 = [...convertL4Rules('tls', vs, ctx, problems, deps), ...convertL4Rules('tcp', vs, ctx, problems, deps)];
  const out: TranslatedVirtualService = {
    namespace: ns,
    name: vs.metadata.name,
    hosts: (vs.spec.hosts ?? []).map((h) => resolveHost(h, ns, ctx.domainSuffix)),
    routes: problems.size > 0 ? [] : routes,
    l4: problems.size > 0 ? [] : l4,
    unsupported: [...problems],
    dependencies: [...deps].sort(),
  };
  if (vs.metadata.creationTimestamp !== undefined) out.creationTimestamp = vs.metadata.creationTimestamp;
  return out;
}

/**
 * The VirtualService routes a waypoint applies to a Service: those of VirtualServices in the Service's namespace or
 * the waypoint's naming the Service, oldest first, then by name and namespace (istiod's order), concatenated.
 */
export function virtualServiceRoutes(candidates: Iterable<TranslatedVirtualService>, hostname: string, serviceNamespace: string, waypointNamespace: string): WaypointRoute[] {
  return applying(candidates, hostname, serviceNamespace, waypointNamespace).flatMap((v) => v.routes);
}

/** The applying VirtualServices, oldest first, then by name and namespace. */
function applying(candidates: Iterable<TranslatedVirtualService>, hostname: string, serviceNamespace: string, waypointNamespace: string): TranslatedVirtualService[] {
  const created = (v: TranslatedVirtualService) => {
    const t = Date.parse(v.creationTimestamp ?? '');
    return Number.isNaN(t) ? -Infinity : t;
  };
  return [...candidates]
    .filter((v) => appliesTo(v, hostname, serviceNamespace, waypointNamespace))
    .sort((a, b) => created(a) - created(b) || compareStrings(a.name, b.name) || compareStrings(a.namespace, b.namespace));
}

/**
 * istiod's getWaypointTCPRoutes for each Service port: the first applying VirtualService with a `tls` rule for the
 * port (no match, or a match whose only SNI host is the Service), else the first with a `tcp` rule for it.
 */
export function virtualServiceTcpRoutes(candidates: Iterable<TranslatedVirtualService>, hostname: string, serviceNamespace: string, waypointNamespace: string, ports: number[]): WaypointTcpRoute[] {
  const vss = applying(candidates, hostname, serviceNamespace, waypointNamespace).filter((v) => v.l4.length > 0);
  if (vss.length === 0) return [];
  const out: WaypointTcpRoute[] = [];
  for (const port of ports) {
    const found = findL4('tls', vss, hostname, port) ?? findL4('tcp', vss, hostname, port);
    if (found === undefined) continue;
    const [v, r] = found;
    out.push({ route: `${v.namespace}/${v.name}`, rule: r.rule, port, backends: r.backends.map((b) => (b.port === 0 ? { ...b, port } : b)) });
  }
  return out;
}

function findL4(kind: L4Rule['kind'], vss: TranslatedVirtualService[], hostname: string, port: number): [TranslatedVirtualService, L4Rule] | undefined {
  for (const v of vss) {
    for (const r of v.l4) {
      if (r.kind !== kind) continue;
      if (r.matches === undefined || r.matches.some((m) => (m.port === 0 || m.port === port) && (kind === 'tcp' || m.sniHost === hostname))) return [v, r];
    }
  }
  return undefined;
}

/** The `tls` or `tcp` rules: matches a waypoint can satisfy, weighted destinations (weight 0 left out when several). */
function convertL4Rules(kind: L4Rule['kind'], vs: VirtualService, ctx: VirtualServiceContext, problems: Set<string>, deps: Set<string>): L4Rule[] {
  const ns = vs.metadata.namespace ?? '';
  const rules = (vs.spec[kind] ?? []) as { match?: L4Match[]; route?: { destination: Destination; weight?: number }[] }[];
  return rules.map((rule, index) => {
    const out: L4Rule = { kind, rule: index, backends: [] };
    if (rule.match !== undefined && rule.match.length > 0) {
      out.matches = [];
      for (const m of rule.match) {
        // No source labels or namespace reach a waypoint's matching (istio/istio#51565); only mesh gateways.
        if (m.sourceLabels !== undefined && Object.keys(m.sourceLabels).length > 0) continue;
        if (m.sourceNamespace) continue;
        if (m.gateways !== undefined && m.gateways.length > 0 && !m.gateways.includes('mesh')) continue;
        // Waypoints take a tls match only with exactly one SNI host, compared with the Service's hostname.
        if (kind === 'tls' && m.sniHosts?.length !== 1) continue;
        out.matches.push({ port: m.port ?? 0, ...(kind === 'tls' ? { sniHost: resolveHost(m.sniHosts![0]!, ns, ctx.domainSuffix) } : {}) });
      }
    }
    const list = rule.route ?? [];
    for (const dst of list) {
      if (list.length > 1 && !dst.weight) continue;
      out.backends.push(l4Backend(dst.destination, list.length > 1 ? dst.weight! : 1, ns, ctx, deps));
    }
    if (out.backends.length === 0) problems.add(`${kind}[${index}] has no destination with a weight above 0`);
    return out;
  });
}

/** A `tls`/`tcp` destination: port 0 keeps the connection's port. */
function l4Backend(dst: Destination, weight: number, ns: string, ctx: VirtualServiceContext, deps: Set<string>): WaypointRouteBackend {
  const hostname = resolveHost(dst.host, ns, ctx.domainSuffix);
  const key = serviceKeyOfHost(hostname, ctx.domainSuffix);
  if (key !== undefined) deps.add(key);
  const [, svcNs, name] = key?.split('/') ?? [];
  // istiod's getWaypointDestinationCluster: the destination's port, else the Service's only one, else the connection's.
  const ports = svcNs === undefined ? [] : (ctx.service(svcNs, name!)?.spec.ports ?? []);
  const port = dst.port?.number ?? (ports.length === 1 ? ports[0]!.port : 0);
  return { hostname, namespace: svcNs ?? ns, port, weight, invalid: false, ...(dst.subset ? { subset: dst.subset } : {}) };
}

/** Whether a waypoint applies a VirtualService to a Service: one of its hosts names it, and it is in the Service's namespace or the waypoint's. */
export function appliesTo(v: TranslatedVirtualService, hostname: string, serviceNamespace: string, waypointNamespace: string): boolean {
  return (v.namespace === serviceNamespace || v.namespace === waypointNamespace) && v.hosts.some((h) => hostMatches(h, hostname));
}

/**
 * istiod's delegate merge (virtualservice_controller.go, MergeHTTPRoutes): a route with `delegate` is replaced by the
 * delegate VirtualService's http routes, each merged with it — its matches intersected with the root's (a delegate
 * route whose matches conflict with every root match is dropped), the root's name, rewrite, timeout, retries, fault,
 * mirrors, CORS and headers inherited where the delegate route has none. A delegate that does not exist, or is not
 * exported to the root's namespace, leaves the route out. Destinations of a delegate resolve in its own namespace.
 */
function withDelegates(vs: VirtualService, ctx: VirtualServiceContext, problems: Set<string>, deps: Set<string>): HTTPRoute[] {
  const rootNs = vs.metadata.namespace ?? '';
  const out: HTTPRoute[] = [];
  for (const rule of (vs.spec.http ?? []) as HTTPRoute[]) {
    const ref = rule.delegate as { name?: string; namespace?: string } | undefined;
    if (ref === undefined) {
      out.push(rule);
      continue;
    }
    const ns = ref.namespace || rootNs;
    deps.add(`VirtualService/${ns}/${ref.name ?? ''}`);
    if (ctx.virtualService === undefined) {
      problems.add('http.delegate cannot be resolved here');
      continue;
    }
    const delegate = ctx.virtualService(ns, ref.name ?? '');
    // Only a VirtualService without hosts is a delegate.
    if (delegate === undefined || (delegate.spec.hosts?.length ?? 0) > 0) continue;
    const exportTo = delegate.spec.exportTo ?? [];
    if (exportTo.length > 0 && !exportTo.includes('*') && !exportTo.includes(rootNs) && !(exportTo.includes('.') && ns === rootNs)) continue;
    for (const sub of (delegate.spec.http ?? []) as HTTPRoute[]) {
      if (sub.delegate !== undefined) {
        problems.add('a delegate VirtualService cannot delegate again');
        continue;
      }
      const merged = mergeDelegateRoute(rule, resolvedIn(sub, ns, ctx.domainSuffix));
      if (merged !== undefined) out.push(merged);
    }
  }
  return out;
}

/** A delegate's route with its destination and mirror hosts resolved in the delegate's namespace. */
function resolvedIn(r: HTTPRoute, ns: string, domainSuffix: string): HTTPRoute {
  const host = <T extends { host: string }>(d: T): T => ({ ...d, host: resolveHost(d.host, ns, domainSuffix) });
  return {
    ...r,
    ...(r.route ? { route: r.route.map((d) => ({ ...d, destination: host(d.destination) })) } : {}),
    ...(r.mirror ? { mirror: host(r.mirror) } : {}),
    ...(r.mirrors ? { mirrors: r.mirrors.map((m) => (m.destination ? { ...m, destination: host(m.destination) } : m)) } : {}),
  };
}

/** istiod's mergeHTTPRoute; undefined when the delegate route's matches conflict with the root's. */
function mergeDelegateRoute(root: HTTPRoute, delegate: HTTPRoute): HTTPRoute | undefined {
  const match = mergeMatches(root.match ?? [], delegate.match ?? []);
  if (match === undefined) return undefined;
  const out: HTTPRoute = { ...delegate, ...(match.length > 0 ? { match } : {}) };
  if (root.name) out.name = delegate.name ? `${root.name}-${delegate.name}` : root.name;
  for (const f of ['rewrite', 'directResponse', 'timeout', 'retries', 'fault', 'mirror', 'mirrorPercent', 'mirrorPercentage', 'corsPolicy', 'mirrors', 'headers'] as const) {
    if (out[f] === undefined && root[f] !== undefined) (out as Record<string, unknown>)[f] = root[f];
  }
  return out;
}

/** istiod's mergeHTTPMatchRequests: every delegate match merged with each root match it does not conflict with. */
function mergeMatches(root: MatchRequest[], delegate: MatchRequest[]): MatchRequest[] | undefined {
  if (root.length === 0) return delegate;
  if (delegate.length === 0) return root;
  const out: MatchRequest[] = [];
  for (const sub of delegate) {
    let found = false;
    for (const r of root) {
      if (matchConflict(r, sub)) continue;
      out.push(mergeMatch(r, sub));
      found = true;
    }
    if (!found) return undefined;
  }
  return out.length > 0 ? out : undefined;
}

function mergeMatch(root: MatchRequest, sub: MatchRequest): MatchRequest {
  const out: MatchRequest = { ...sub };
  if (root.name) out.name = sub.name ? `${root.name}-${sub.name}` : root.name;
  for (const f of ['uri', 'scheme', 'method', 'authority'] as const) if (out[f] === undefined && root[f] !== undefined) out[f] = root[f];
  for (const f of ['headers', 'withoutHeaders', 'queryParams', 'sourceLabels'] as const) {
    if (root[f] !== undefined || sub[f] !== undefined) out[f] = { ...root[f], ...sub[f] } as never;
  }
  if (!out.port && root.port) out.port = root.port;
  if (!out.sourceNamespace && root.sourceNamespace) out.sourceNamespace = root.sourceNamespace;
  if (!out.gateways?.length && root.gateways) out.gateways = root.gateways;
  return out;
}

/** istiod's hasConflict: the delegate match must narrow the root match. */
function matchConflict(root: MatchRequest, leaf: MatchRequest): boolean {
  for (const f of ['uri', 'scheme', 'method', 'authority'] as const) if (stringMatchConflict(root[f], leaf[f])) return true;
  for (const f of ['headers', 'withoutHeaders', 'queryParams'] as const) {
    for (const [k, v] of Object.entries(leaf[f] ?? {})) if (stringMatchConflict(root[f]?.[k], v)) return true;
  }
  if ((root.ignoreUriCase ?? false) !== (leaf.ignoreUriCase ?? false)) return true;
  if (root.port && leaf.port && root.port !== leaf.port) return true;
  if (root.sourceNamespace && leaf.sourceNamespace !== root.sourceNamespace) return true;
  for (const [k, v] of Object.entries(leaf.sourceLabels ?? {})) if (root.sourceLabels?.[k] !== undefined && root.sourceLabels[k] !== v) return true;
  if (root.gateways?.length && leaf.gateways?.length && !leaf.gateways.every((g) => root.gateways!.includes(g))) return true;
  return false;
}

/** istiod's stringMatchConflict: a leaf match must lie within the root's (exact within prefix, prefix within prefix). */
function stringMatchConflict(root: StringMatch | undefined, leaf: StringMatch | undefined): boolean {
  if (root === undefined || leaf === undefined) return false;
  if (root.regex && (leaf.regex || leaf.prefix || leaf.exact)) return true;
  if (leaf.regex && (root.regex || root.prefix || root.exact)) return true;
  if (root.exact) return !!leaf.prefix || leaf.exact !== root.exact;
  if (root.prefix) {
    if (leaf.prefix) return !leaf.prefix.startsWith(root.prefix);
    if (leaf.exact) return !leaf.exact.startsWith(root.prefix);
  }
  return true;
}

/** istiod's waypointInboundRoute: every http route × match, matches with source labels dropped, to a catch-all. */
function convertHTTPRoutes(vs: VirtualService, http: HTTPRoute[], ctx: VirtualServiceContext, problems: Set<string>, deps: Set<string>): WaypointRoute[] {
  const out: WaypointRoute[] = [];
  for (const [index, rule] of http.entries()) {
    const base = convertAction(vs, rule, index, ctx, problems, deps);
    if (rule.match === undefined || rule.match.length === 0) {
      out.push({ ...base, match: convertMatch({}, problems) });
      break;
    }
    let catchAll = false;
    for (const m of rule.match) {
      // Source labels are not supported in ambient (istio/istio#51565); a match for gateways only is not the mesh's.
      if (m.sourceLabels !== undefined && Object.keys(m.sourceLabels).length > 0) continue;
      if (m.gateways !== undefined && m.gateways.length > 0 && !m.gateways.includes('mesh')) continue;
      const route: WaypointRoute = { ...base, port: m.port ?? 0, match: convertMatch(m, problems), ...(m.name ? { name: `${base.name}.${m.name}` } : {}) };
      out.push(route);
      // Later routes can never match the ports this one catches all requests of.
      if (route.port === 0 && isCatchAll(route.match!)) {
        catchAll = true;
        break;
      }
    }
    if (catchAll) break;
  }
  return out;
}

/** istiod's IsCatchAllRoute: every path, nothing else matched (a method match is a header match in Envoy). */
function isCatchAll(m: WaypointRouteMatch): boolean {
  const everyPath = (m.path?.type === 'STRING_PREFIX' && m.path.value === '/') || (m.path?.type === 'REGEX' && m.path.value === '.*');
  return everyPath && m.headers.length === 0 && m.queryParams.length === 0 && m.method === '';
}

/** istiod's TranslateRouteMatch. No URI: Envoy's prefix `/`. */
function convertMatch(m: MatchRequest, problems: Set<string>): WaypointRouteMatch {
  if (m.sourceNamespace !== undefined) problems.add('match.sourceNamespace is not supported yet');
  const uri = m.uri;
  const path: NonNullable<WaypointRouteMatch['path']> =
    uri?.exact !== undefined
      ? { type: 'EXACT' as const, value: uri.exact }
      : uri?.regex !== undefined
        ? { type: 'REGEX' as const, value: uri.regex }
        : { type: 'STRING_PREFIX' as const, value: uri?.prefix ?? '/' };
  if (m.ignoreUriCase) path.ignoreCase = true;
  let method = '';
  if (m.method !== undefined) {
    if (m.method.prefix !== undefined || (m.method.regex !== undefined && m.method.regex !== '*')) problems.add('match.method supports exact only');
    else method = m.method.exact ?? '';
  }
  // Envoy's header matchers: the authority and scheme are the `:authority` and `:scheme` pseudo-headers; withoutHeaders
  // are inverted ones.
  const headers = [
    ...valueMatches(m.authority ? { ':authority': m.authority } : undefined, true),
    ...valueMatches(m.scheme ? { ':scheme': m.scheme } : undefined, true),
    ...valueMatches(m.headers, true),
    ...valueMatches(m.withoutHeaders, true).map((h) => ({ ...h, invert: true })),
  ];
  for (const h of headers) if (h.name.startsWith('@request.auth.claims')) problems.add('match.headers on JWT claims are not supported yet');
  const match: WaypointRouteMatch = { path, headers, queryParams: valueMatches(m.queryParams, false), method };
  const invalid = invalidExpression(match);
  if (invalid !== undefined) problems.add(invalid);
  return match;
}

/** Envoy's header and query parameter matchers, sorted by name; no value (or regex `*`): present, a "" prefix. */
function valueMatches(map: Record<string, StringMatch> | undefined, lowerCaseNames: boolean): WaypointValueMatch[] {
  return Object.entries(map ?? {})
    .map(([n, s]) => {
      const name = lowerCaseNames ? n.toLowerCase() : n;
      if (s.exact !== undefined) return { name, value: s.exact, regex: false };
      if (s.regex !== undefined && s.regex !== '*') return { name, value: s.regex, regex: true };
      return { name, value: s.prefix ?? '', regex: false, prefix: true };
    })
    .sort((a, b) => compareStrings(a.name, b.name));
}

/** What every match of one http route shares: its action, headers, timeout, retries and mirrors. */
function convertAction(vs: VirtualService, rule: HTTPRoute, index: number, ctx: VirtualServiceContext, problems: Set<string>, deps: Set<string>): WaypointRoute {
  const ns = vs.metadata.namespace ?? '';
  const out: WaypointRoute = {
    route: `${ns}/${vs.metadata.name}`,
    rule: index,
    name: rule.name ?? `${ns}.${vs.metadata.name}.${index}`,
    port: 0,
    backends: [],
    directStatus: 0,
  };
  const ops = headerOperations(rule.headers);
  if (ops.request) out.requestHeaders = ops.request;
  if (ops.response) out.responseHeaders = ops.response;
  // Envoy's fault and CORS filters run before the router, whatever the route's action.
  const fault = faultOf(rule.fault, problems);
  if (fault) out.fault = fault;
  if (rule.corsPolicy) out.cors = corsOf(rule.corsPolicy);
  if (rule.redirect) {
    out.redirect = redirect(rule.redirect, problems);
    return out;
  }
  if (rule.directResponse) {
    out.directStatus = rule.directResponse.status;
    if (rule.directResponse.body?.bytes !== undefined) problems.add('directResponse.body.bytes is not supported yet');
    if (rule.directResponse.body?.string) out.directBody = rule.directResponse.body.string;
    return out;
  }
  let authority = ops.authority;
  if (rule.rewrite) {
    if (rule.rewrite.uriRegexRewrite !== undefined) problems.add('rewrite.uriRegexRewrite is not supported yet');
    if (rule.rewrite.authority) authority = rule.rewrite.authority;
    if (rule.rewrite.uri) out.rewrite = { hostname: '', path: { type: 'PREFIX_REWRITE', value: rule.rewrite.uri } };
  }
  const destinationAuthority = destinations(rule, ns, ctx, problems, deps, out);
  // A destination's authority applies only when the route sets none (processDestination).
  authority ||= destinationAuthority;
  if (authority) out.rewrite = { ...out.rewrite, hostname: authority };
  if (rule.timeout !== undefined) {
    const ms = parseDuration(rule.timeout, 'timeout');
    if (ms) out.timeoutMs = ms;
  }
  out.retry = retry(rule.retries, problems);
  const mirrors = mirrorsOf(rule, ns, ctx, problems, deps);
  if (mirrors.length > 0) out.mirrors = mirrors;
  return out;
}

/**
 * istiod's applyHTTPRouteDestination: one destination takes every request; several split by weight (0: left out).
 * Returns the authority a single destination's headers set.
 */
function destinations(rule: HTTPRoute, ns: string, ctx: VirtualServiceContext, problems: Set<string>, deps: Set<string>, out: WaypointRoute): string {
  const list = rule.route ?? [];
  if (list.length === 1) {
    const dst = list[0]!;
    out.backends.push(backend(dst.destination, 1, ns, ctx, problems, deps));
    // Envoy gets a single destination's header operations after the route's: a later `set` of a name wins.
    const ops = headerOperations(dst.headers);
    if (ops.request) out.requestHeaders = mergeModifiers(out.requestHeaders, ops.request);
    if (ops.response) out.responseHeaders = mergeModifiers(out.responseHeaders, ops.response);
    return ops.authority;
  }
  for (const dst of list) {
    if (!dst.weight) continue;
    const b = backend(dst.destination, dst.weight, ns, ctx, problems, deps);
    const ops = headerOperations(dst.headers);
    // The wire form has per-backend request headers only.
    if (ops.response || ops.authority) problems.add('response headers and the authority of one of several destinations are not supported yet');
    if (ops.request) b.requestHeaders = ops.request;
    out.backends.push(b);
  }
  if (out.backends.length === 0) problems.add('no destination has a weight above 0');
  return '';
}

/**
 * A destination: a Service of the mesh (short names resolved in the VirtualService's namespace) and its port — the
 * one given, else the Service's only one — and subset. A host the mesh does not know has no cluster: the waypoint
 * answers its requests with Envoy's 503 (NC), as it does for a subset no DestinationRule defines.
 */
function backend(dst: Destination, weight: number, ns: string, ctx: VirtualServiceContext, problems: Set<string>, deps: Set<string>): WaypointRouteBackend {
  const hostname = resolveHost(dst.host, ns, ctx.domainSuffix);
  const key = serviceKeyOfHost(hostname, ctx.domainSuffix);
  if (key !== undefined) deps.add(key);
  const [, svcNs, name] = key?.split('/') ?? [];
  const svc = key === undefined ? undefined : ctx.service(svcNs!, name!);
  const ports = svc?.spec.ports ?? [];
  const port = dst.port?.number ?? (ports.length === 1 ? ports[0]!.port : 0);
  // istiod would use the port the request came to; the wire form names one.
  if (port === 0) problems.add(`destination ${JSON.stringify(dst.host)} needs a port`);
  return { hostname, namespace: svcNs ?? ns, port, weight, invalid: false, ...(dst.subset ? { subset: dst.subset } : {}) };
}

/** `mirror` (with mirrorPercentage or the older mirrorPercent) and `mirrors`; 0 %: none. Unknown Services mirror nothing. */
function mirrorsOf(rule: HTTPRoute, ns: string, ctx: VirtualServiceContext, problems: Set<string>, deps: Set<string>): NonNullable<WaypointRoute['mirrors']> {
  const wanted: { destination: Destination; percent: number }[] = [];
  if (rule.mirror) wanted.push({ destination: rule.mirror, percent: rule.mirrorPercentage?.value ?? rule.mirrorPercent ?? 100 });
  for (const m of rule.mirrors ?? []) if (m.destination) wanted.push({ destination: m.destination, percent: m.percentage?.value ?? 100 });
  return wanted
    .filter((m) => m.percent > 0)
    .map((m) => ({ backend: backend(m.destination, 1, ns, ctx, problems, deps), percent: Math.min(m.percent, 100) }))
    .filter((m) => {
      const [, svcNs, name] = serviceKeyOfHost(m.backend.hostname, ctx.domainSuffix)?.split('/') ?? [];
      return name !== undefined && ctx.service(svcNs!, name) !== undefined;
    });
}

/**
 * istiod's translateFault: a delay (fixedDelay) and an abort (httpStatus or grpcStatus), each with its percentage; no
 * percentage (nor the older integer `percent`): never injected.
 */
function faultOf(f: HTTPRoute['fault'], problems: Set<string>): WaypointRoute['fault'] {
  if (f === undefined) return undefined;
  const out = { delayMs: 0, delayPercent: 0, abortStatus: 0, abortPercent: 0, abortGrpc: false, abortGrpcStatus: 0 };
  const d = f.delay;
  if (d !== undefined) {
    if (d.exponentialDelay !== undefined) problems.add('fault.delay.exponentialDelay is not supported yet');
    if (d.fixedDelay !== undefined) {
      out.delayMs = Math.round(parseDuration(d.fixedDelay, 'fault.delay.fixedDelay'));
      out.delayPercent = clampPercent(d.percentage?.value ?? d.percent ?? 0);
    }
  }
  const a = f.abort;
  if (a !== undefined) {
    out.abortPercent = clampPercent(a.percentage?.value ?? 0);
    if (a.httpStatus !== undefined) out.abortStatus = a.httpStatus;
    else if (a.grpcStatus !== undefined) {
      const code = GRPC_STATUS_CODES[a.grpcStatus];
      if (code === undefined) problems.add(`fault.abort.grpcStatus ${JSON.stringify(a.grpcStatus)} is not a gRPC status name`);
      out.abortGrpc = true;
      out.abortGrpcStatus = code ?? 0;
      // Envoy's trailers-only abort still needs an HTTP status to exist in its config; 200 is what goes out.
      out.abortStatus = 200;
    } else if (a.http2Error !== undefined) problems.add('fault.abort.http2Error is not supported yet');
  }
  return out.delayMs > 0 || out.abortStatus > 0 ? out : undefined;
}

function clampPercent(v: number): number {
  return Math.min(100, Math.max(0, v));
}

/** istiod's TranslateCORSPolicy: the lists joined by `,`, maxAge in seconds, unmatched preflights forwarded unless IGNORE. */
function corsOf(c: NonNullable<HTTPRoute['corsPolicy']>): NonNullable<WaypointRoute['cors']> {
  const origins = c.allowOrigins !== undefined ? valueMatches(Object.fromEntries(c.allowOrigins.map((m, i) => [String(i), m])), false) : (c.allowOrigin ?? []).map((o) => ({ name: '', value: o, regex: false }));
  return {
    allowOrigins: origins.map((o) => ({ ...o, name: '' })),
    allowMethods: (c.allowMethods ?? []).join(','),
    allowHeaders: (c.allowHeaders ?? []).join(','),
    exposeHeaders: (c.exposeHeaders ?? []).join(','),
    maxAge: c.maxAge === undefined ? '' : String(Math.floor(parseDuration(c.maxAge, 'corsPolicy.maxAge') / 1000)),
    allowCredentials: c.allowCredentials === true,
    forwardUnmatchedPreflights: c.unmatchedPreflights !== 'IGNORE',
  };
}

/** istiod's ApplyRedirect: 301 unless told; `uri` replaces the path. */
function redirect(r: NonNullable<HTTPRoute['redirect']>, problems: Set<string>): NonNullable<WaypointRoute['redirect']> {
  const statusCode = r.redirectCode || 301;
  if (![301, 302, 303, 307, 308].includes(statusCode)) problems.add(`redirect code ${statusCode} is not supported`);
  if (r.derivePort !== undefined) problems.add('redirect.derivePort is not supported yet');
  return {
    scheme: r.scheme ?? '',
    hostname: r.authority ?? '',
    port: r.port ?? 0,
    ...(r.uri ? { path: { type: 'REPLACE_FULL_PATH' as const, value: r.uri } } : {}),
    statusCode,
  };
}

/**
 * istiod's ConvertPolicy: no `retries`, the mesh default; attempts 0, none; otherwise `retryOn` split into status
 * codes and Envoy's conditions (none given: Istio's default conditions).
 */
function retry(r: HTTPRoute['retries'], problems: Set<string>): WaypointRetry {
  if (r === undefined) return defaultRouteRetry();
  const ms = (d: string | undefined) => (d === undefined ? 0 : parseDuration(d, 'duration'));
  if (!r.attempts || r.attempts <= 0) return { attempts: 0, codes: [], backoffMs: 0, perTryTimeoutMs: 0 };
  if (r.retryRemoteLocalities !== undefined) problems.add('retries.retryRemoteLocalities is not supported yet');
  const out: WaypointRetry = { attempts: r.attempts, codes: [], backoffMs: ms(r.backoff), perTryTimeoutMs: ms(r.perTryTimeout) };
  const conditions: string[] = [];
  for (const part of (r.retryOn ?? '').split(',').map((p) => p.trim())) {
    if (part === '') continue;
    const code = Number(part);
    if (/^\d+$/.test(part) && STATUS_CODES[code] !== undefined) out.codes.push(code);
    else conditions.push(part);
  }
  if (conditions.length > 0) out.conditions = conditions;
  return out;
}

/**
 * istiod's TranslateHeadersOperations: `set` overwrites, `add` appends; `:authority` or `host` in either becomes the
 * authority (set's wins) and, like other pseudo-headers, is not a header operation.
 */
function headerOperations(h: Headers | undefined): { request?: WaypointHeaderModifier; response?: WaypointHeaderModifier; authority: string } {
  const isInternal = (name: string) => name.startsWith(':') || name.toLowerCase() === 'host';
  const isAuthority = (name: string) => name.toLowerCase() === ':authority' || name.toLowerCase() === 'host';
  const authorityOf = (m: Record<string, string> | undefined) => Object.entries(m ?? {}).find(([n]) => isAuthority(n))?.[1] ?? '';
  const modifier = (ops: HeaderOperations | undefined): WaypointHeaderModifier | undefined => {
    if (ops === undefined) return undefined;
    const list = (m: Record<string, string> | undefined) =>
      Object.entries(m ?? {})
        .filter(([n]) => !isInternal(n))
        .map(([n, value]) => ({ name: n.toLowerCase(), value }))
        .sort((a, b) => compareStrings(a.name, b.name));
    const out = { set: list(ops.set), add: list(ops.add), remove: (ops.remove ?? []).filter((n) => !isInternal(n)).map((n) => n.toLowerCase()) };
    return out.set.length + out.add.length + out.remove.length > 0 ? out : undefined;
  };
  const request = modifier(h?.request);
  const response = modifier(h?.response);
  return { ...(request ? { request } : {}), ...(response ? { response } : {}), authority: authorityOf(h?.request?.set) || authorityOf(h?.request?.add) };
}

function mergeModifiers(a: WaypointHeaderModifier | undefined, b: WaypointHeaderModifier): WaypointHeaderModifier {
  return a === undefined ? b : { set: [...a.set, ...b.set], add: [...a.add, ...b.add], remove: [...a.remove, ...b.remove] };
}
