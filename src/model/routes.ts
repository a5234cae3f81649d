// HTTPRoutes and GRPCRoutes attached to Services and ServiceEntries (Gateway API GAMMA) as istiod translates them for
// waypoints, and the route status istiod writes. Sources: istio/istio pilot/pkg/config/kube/gateway/conversion.go (convertHTTPRoute,
// convertGRPCRoute, buildHTTPDestination, buildGRPCDestination, buildDestination, createURIMatch, createGRPCURIMatch,
// createHeadersFilter, referenceAllowed, sortHTTPRoutes, parentRefString), route_collections.go (one route per match,
// mesh parents, a ServiceEntry parent's hosts, mergeHTTPRoutes), controller.go (HTTP and gRPC routes merged per host) and conditions.go
// (createRouteStatus); pilot/pkg/networking/core/route/route.go (TranslateRouteMatch: what Envoy gets).
// Pure functions; the AmbientIndex keeps them incremental.
import type { BackendRef, Condition, GRPCRoute, HTTPRoute, HTTPRouteRule, Namespace, ParentReference, Service as KubeService, ServiceEntry } from '../api/types.js';
import { RE2JS } from 're2js';
import { parseDuration } from '../common/settings.js';
import type { WaypointHeaderModifier, WaypointPathModifier, WaypointRedirect, WaypointRetry, WaypointRoute, WaypointRouteBackend, WaypointRouteMatch, WaypointValueMatch } from '../xds/types.js';
import { serviceHostname } from './services.js';
import { USE_WAYPOINT_LABEL } from './waypoints.js';

/** The controller name istiod reports route parents under (features.ManagedGatewayController). */
export const GATEWAY_CONTROLLER = 'istio.io/gateway-controller';
const GATEWAY_GROUP = 'gateway.networking.k8s.io';

/** One entry of `status.parents` of a route. Conditions carry no lastTransitionTime: the index stamps it. */
export interface RouteParentStatus {
  parentRef: ParentReference;
  controllerName: string;
  conditions: Condition[];
}

/** What the translation reads besides the route itself. */
export interface RouteContext {
  domainSuffix: string;
  service(namespace: string, name: string): KubeService | undefined;
  /** The ServiceEntry a parentRef names. */
  serviceEntry(namespace: string, name: string): ServiceEntry | undefined;
  namespace(name: string): Namespace | undefined;
}

/** The route kinds whose Service and ServiceEntry parents Ambit programs into waypoints. */
export type GatewayRoute = HTTPRoute | GRPCRoute;
type GRPCRouteRule = NonNullable<GRPCRoute['spec']['rules']>[number];
type RouteRule = HTTPRouteRule | GRPCRouteRule;

/**
 * What istiod sorts a route by (sortHTTPRoutes) that the wire form does not keep: the type of its URI match
 * (getURIRank: EXACT 3, PREFIX 2, REGEX 1; NO_URI, NO_MATCH) and its length as istiod wrote it (getURILength). Envoy
 * matches every path both for a match without a URI and for a rule without matches, and the waypoint is sent that
 * (PREFIX "/"); istiod sorts them after every URI match.
 */
export interface RoutePrecedence {
  uriRank: number;
  uriLength: number;
}
/** A match without a URI: a GRPCRoute match without `method`, or a rule without matches given a parent's port. */
const NO_URI = -1;
/** A rule without matches: istiod sorts it after everything, unless a parent port gave it a (URI-less) match. */
const NO_MATCH = -2;
const URI_RANK = { EXACT: 3, PREFIX: 2, REGEX: 1 } as const;

/** One HTTPRoute or GRPCRoute, translated. */
export interface TranslatedRoute {
  /** Our entries of `status.parents`: one per Service or ServiceEntry parent, in istiod's order. Empty: no status of ours. */
  parents: RouteParentStatus[];
  /**
   * Store key of each parent that takes the route (`Service/<ns>/<name>`, `ServiceEntry/<ns>/<name>`: then every host
   * the entry owns) → its routes (with the parentRef's port).
   */
  services: Map<string, WaypointRoute[]>;
  /** Store key of each parent → the precedence of each of its routes, in the order of `services`. */
  precedence: Map<string, RoutePrecedence[]>;
  /** Store keys of the Services, ServiceEntries and Namespaces the translation read: a change of one may change it. */
  dependencies: string[];
}

/** A problem istiod reports in a condition (its ConfigError / ParentError). */
interface RouteProblem {
  reason: string;
  message: string;
}

/** One route of a rule match, with what istiod orders it by. */
interface RankedRoute {
  route: WaypointRoute;
  precedence: RoutePrecedence;
}

/** The rules of one route, converted once for every parent. */
interface ConvertedRules {
  routes: RankedRoute[];
  /** ResolvedRefs False: the last unresolved backendRef, or the error that stopped the conversion. */
  refProblem?: RouteProblem;
  /** Accepted False: fields Ambit does not implement (the route is then not programmed at all). */
  unsupported?: RouteProblem;
}

/** Thrown inside the conversion for errors after which istiod programs none of the route (hard ConfigErrors). */
class RouteConversionError extends Error {
  constructor(readonly problem: RouteProblem) {
    super(problem.message);
  }
}

interface HeaderFilter {
  set?: { name: string; value: string }[];
  add?: { name: string; value: string }[];
  remove?: string[];
}

/** Gateway API's HTTPPathModifier. */
interface PathModifier {
  type: 'ReplaceFullPath' | 'ReplacePrefixMatch';
  replaceFullPath?: string;
  replacePrefixMatch?: string;
}

interface RouteFilter {
  type: string;
  requestHeaderModifier?: HeaderFilter;
  responseHeaderModifier?: HeaderFilter;
  requestRedirect?: { scheme?: string; hostname?: string; path?: PathModifier; port?: number; statusCode?: number };
  urlRewrite?: { hostname?: string; path?: PathModifier };
  requestMirror?: { backendRef: BackendRef; percent?: number; fraction?: { numerator: number; denominator?: number } };
  cors?: { allowOrigins?: string[]; allowCredentials?: boolean; allowMethods?: string[]; allowHeaders?: string[]; exposeHeaders?: string[]; maxAge?: number };
}

interface ValueMatch {
  type?: 'Exact' | 'RegularExpression';
  name: string;
  value: string;
}

interface HTTPRouteMatch {
  path?: { type?: 'Exact' | 'PathPrefix' | 'RegularExpression'; value?: string };
  headers?: ValueMatch[];
  queryParams?: ValueMatch[];
  method?: string;
}

interface GRPCRouteMatch {
  /** The schema requires `service`, `method` or both. */
  method?: { type?: 'Exact' | 'RegularExpression'; service?: string; method?: string };
  headers?: ValueMatch[];
}

/** A converted match: what the waypoint matches, and what istiod orders the route by. */
interface ConvertedMatch {
  match: WaypointRouteMatch;
  precedence: RoutePrecedence;
}

/** A URI match as istiod writes it into the VirtualService (before Envoy's translation). */
interface IstioURIMatch {
  type: 'PREFIX' | 'EXACT' | 'REGEX';
  value: string;
}

/** istiod's parentRefString: how parents are told apart and ordered in the status. */
export function parentRefString(ref: ParentReference, routeNamespace: string): string {
  return `${ref.group ?? GATEWAY_GROUP}/${ref.kind ?? 'Gateway'}/${ref.name}/${ref.sectionName ?? ''}/${ref.port ?? 0}.${ref.namespace ?? routeNamespace}`;
}

/** A parentRef naming a core Service. The group defaults to Gateway API's, so it must be given as "". */
export function isServiceParent(ref: ParentReference): boolean {
  return ref.group === '' && ref.kind === 'Service';
}

/** A parentRef naming an Istio ServiceEntry (group `networking.istio.io`, which must be given). */
export function isServiceEntryParent(ref: ParentReference): boolean {
  return ref.group === 'networking.istio.io' && ref.kind === 'ServiceEntry';
}

/** Store key of the Service or ServiceEntry a mesh parentRef names; undefined: a parent of another kind. */
export function meshParentKey(ref: ParentReference, routeNamespace: string): string | undefined {
  const ns = ref.namespace ?? routeNamespace;
  if (isServiceParent(ref)) return `Service/${ns}/${ref.name}`;
  if (isServiceEntryParent(ref)) return `ServiceEntry/${ns}/${ref.name}`;
  return undefined;
}

/**
 * The Service and ServiceEntry parents of a route, each once, in the order istiod appends new status entries
 * (parentRefString descending). Parents of other kinds belong to other controllers here: no status, no routes.
 */
function serviceParents(route: GatewayRoute): ParentReference[] {
  const ns = route.metadata.namespace ?? '';
  const byString = new Map<string, ParentReference>();
  for (const ref of route.spec.parentRefs ?? []) {
    const key = parentRefString(ref, ns);
    if (meshParentKey(ref, ns) !== undefined && !byString.has(key)) byString.set(key, ref);
  }
  return [...byString.keys()].sort((a, b) => (a < b ? 1 : a > b ? -1 : 0)).map((k) => byString.get(k)!);
}

/** istiod's waypointConfigured: `istio.io/use-waypoint` set to anything but `none`. */
function namesWaypoint(labels: Record<string, string> | undefined): boolean {
  const value = labels?.[USE_WAYPOINT_LABEL];
  return value !== undefined && value !== '' && value.toLowerCase() !== 'none';
}

export function translateHTTPRoute(route: HTTPRoute, ctx: RouteContext): TranslatedRoute {
  return translateRoute(route, ctx);
}

export function translateGRPCRoute(route: GRPCRoute, ctx: RouteContext): TranslatedRoute {
  return translateRoute(route, ctx);
}

/** Both kinds share istiod's parent handling and status (computeRoute); only their rules convert differently. */
function translateRoute(route: GatewayRoute, ctx: RouteContext): TranslatedRoute {
  const routeNs = route.metadata.namespace ?? '';
  const parents = serviceParents(route);
  const out: TranslatedRoute = { parents: [], services: new Map(), precedence: new Map(), dependencies: [] };
  if (parents.length === 0) return out;
  const rules = convertRules(route, ctx);
  const deps = new Set<string>(backendDependencies(route));
  for (const ref of parents) {
    const ns = ref.namespace ?? routeNs;
    const key = meshParentKey(ref, routeNs)!;
    deps.add(key);
    deps.add(`Namespace//${ns}`);
    const parent = isServiceParent(ref) ? parentResult(ref, ctx.service(ns, ref.name), ctx.namespace(ns)) : entryParentResult(ref, ctx.serviceEntry(ns, ref.name), ctx.namespace(ns));
    out.parents.push(routeParentStatus(ref, route.metadata.generation, parent, rules));
    if (parent.port === undefined || rules.unsupported !== undefined || rules.routes.length === 0) continue;
    const routes = rules.routes.map((r) => ({ ...r.route, port: parent.port! }));
    out.services.set(key, [...(out.services.get(key) ?? []), ...routes]);
    out.precedence.set(key, [...(out.precedence.get(key) ?? []), ...rules.routes.map((r) => r.precedence)]);
  }
  out.dependencies = [...deps].sort();
  return out;
}

interface ParentResult {
  /** Accepted False (istiod's ParentError); undefined: the parent takes the route. */
  denied?: RouteProblem;
  /** The Service (or ServiceEntry) port the route is restricted to (0: all); undefined when denied. */
  port?: number;
  /** The ResolvedWaypoints message. */
  waypoints: string;
}

/** istiod's referenceAllowed for a Service parent, plus the port a `sectionName` names (GAMMA: a port name). */
function parentResult(ref: ParentReference, svc: KubeService | undefined, ns: Namespace | undefined): ParentResult {
  if (svc === undefined) {
    return { denied: { reason: 'NoMatchingParent', message: `parent service: ${JSON.stringify(ref.name)} not found` }, waypoints: 'parent not found' };
  }
  return portResult(ref, waypointsMessage(svc.metadata.labels, ns), (svc.spec.ports ?? []).map((p) => ({ name: p.name, port: p.port })));
}

/**
 * istiod's referenceAllowed for a ServiceEntry parent: as for a Service, with the entry's texts. `port` and
 * `sectionName` apply as for a Service (istiod checks neither against the entry's ports; Ambit reads a `sectionName`
 * as the name of one of them, as it does for a Service).
 */
function entryParentResult(ref: ParentReference, se: ServiceEntry | undefined, ns: Namespace | undefined): ParentResult {
  if (se === undefined) {
    return { denied: { reason: 'NoMatchingParent', message: `parent service entry: ${JSON.stringify(ref.name)} not found` }, waypoints: 'parent not found' };
  }
  return portResult(ref, waypointsMessage(se.metadata.labels, ns), (se.spec.ports ?? []).map((p) => ({ name: p.name, port: p.number })));
}

/** The ResolvedWaypoints message: the parent or its namespace must name a waypoint. */
function waypointsMessage(labels: Record<string, string> | undefined, ns: Namespace | undefined): string {
  // A namespace the store does not have counts as labelled, as in istiod.
  return namesWaypoint(labels) || ns === undefined || namesWaypoint(ns.metadata.labels)
    ? 'All waypoints resolved'
    : 'istio.io/use-waypoint label missing from parent and parent namespace; in ambient mode, route will not be respected';
}

/** The port a parentRef restricts the route to: `port` as given, else the port `sectionName` names, else all (0). */
function portResult(ref: ParentReference, waypoints: string, ports: { name?: string; port: number }[]): ParentResult {
  if (ref.port !== undefined || ref.sectionName === undefined) return { port: ref.port ?? 0, waypoints };
  const named = ports.find((p) => p.name === ref.sectionName);
  if (named === undefined) return { denied: { reason: 'NoMatchingParent', message: `sectionName ${JSON.stringify(ref.sectionName)} not found` }, waypoints };
  return { port: named.port, waypoints };
}

function routeParentStatus(ref: ParentReference, generation: number | undefined, parent: ParentResult, rules: ConvertedRules): RouteParentStatus {
  const cond = (type: string, status: boolean, reason: string, message: string): Condition => {
    const c: Condition = { type, status: status ? 'True' : 'False', reason, message };
    if (generation !== undefined) c.observedGeneration = generation;
    return c;
  };
  const notAccepted = parent.denied ?? rules.unsupported;
  return {
    parentRef: ref,
    controllerName: GATEWAY_CONTROLLER,
    conditions: [
      notAccepted ? cond('Accepted', false, notAccepted.reason, notAccepted.message) : cond('Accepted', true, 'Accepted', 'Route was valid'),
      rules.refProblem
        ? cond('ResolvedRefs', false, rules.refProblem.reason, rules.refProblem.message)
        : cond('ResolvedRefs', true, 'ResolvedRefs', 'All references resolved'),
      // istiod reports a missing waypoint in the message only: the status stays True.
      cond('ResolvedWaypoints', true, 'ResolvedWaypoints', parent.waypoints),
    ],
  };
}

function backendDependencies(route: GatewayRoute): string[] {
  const ns = route.metadata.namespace ?? '';
  const out: string[] = [];
  for (const rule of rulesOf(route)) {
    for (const b of rule.backendRefs ?? []) if (isServiceBackend(b)) out.push(`Service/${b.namespace ?? ns}/${b.name}`);
  }
  return out;
}

function rulesOf(route: GatewayRoute): readonly RouteRule[] {
  return route.spec.rules ?? [];
}

function isServiceBackend(b: BackendRef): boolean {
  return (b.group ?? '') === '' && (b.kind ?? 'Service') === 'Service';
}

// ---- rules -----------------------------------------------------------------------------------------------------------

/**
 * Every rule × match as one route (istiod splits rules so each route has one match). An error istiod treats as
 * fatal leaves no routes; an unresolved backend is kept, marked invalid, and reported.
 */
function convertRules(route: GatewayRoute, ctx: RouteContext): ConvertedRules {
  const out: ConvertedRules = { routes: [] };
  const unsupported = unsupportedFields(route);
  if (unsupported.length > 0) out.unsupported = { reason: 'UnsupportedValue', message: unsupported.join('; ') };
  try {
    rulesOf(route).forEach((rule, i) => {
      const converted = convertRule(route, rule, i, ctx);
      if (converted.refProblem) out.refProblem = converted.refProblem;
      out.routes.push(...converted.routes);
    });
  } catch (err) {
    if (!(err instanceof RouteConversionError)) throw err;
    out.routes = [];
    if (err.problem.reason === 'UnsupportedValue') out.unsupported ??= err.problem;
    else out.refProblem = err.problem;
  }
  return out;
}

/** Fields Ambit does not implement yet, each named once: the route is not programmed rather than half-applied. */
function unsupportedFields(route: GatewayRoute): string[] {
  const out = new Set<string>();
  for (const rule of rulesOf(route)) {
    for (const b of rule.backendRefs ?? []) {
      for (const f of (b.filters ?? []) as unknown as RouteFilter[]) {
        if (f.type === 'ResponseHeaderModifier') out.add('Ambit does not implement the ResponseHeaderModifier filter on a backendRef yet');
      }
    }
  }
  return [...out];
}

/**
 * istiod's convertHTTPRoute or convertGRPCRoute for one rule. A GRPCRoute rule has header filters only (no redirect,
 * rewrite, timeouts or retry), matches on the gRPC method and headers, and otherwise converts alike.
 */
function convertRule(route: GatewayRoute, rule: RouteRule, index: number, ctx: RouteContext): { routes: RankedRoute[]; refProblem?: RouteProblem } {
  const ns = route.metadata.namespace ?? '';
  const http = route.kind === 'HTTPRoute';
  const base: WaypointRoute = {
    route: `${ns}/${route.metadata.name}`,
    rule: index,
    // Envoy's route name as istiod sets it (the access log shows it).
    name: rule.name ?? `${ns}.${route.metadata.name}.${index}`,
    port: 0,
    backends: [],
    directStatus: 0,
  };
  let refProblem: RouteProblem | undefined;
  for (const f of (rule.filters ?? []) as unknown as RouteFilter[]) {
    if (f.type === 'RequestHeaderModifier') {
      if (f.requestHeaderModifier) base.requestHeaders = headerModifier(f.requestHeaderModifier);
    } else if (f.type === 'ResponseHeaderModifier') {
      if (f.responseHeaderModifier) base.responseHeaders = headerModifier(f.responseHeaderModifier);
    } else if (http && f.type === 'RequestRedirect') {
      if (f.requestRedirect) base.redirect = redirect(f.requestRedirect);
    } else if (http && f.type === 'URLRewrite') {
      const r = f.urlRewrite;
      if (r && (r.hostname || r.path)) base.rewrite = { hostname: r.hostname ?? '', ...(r.path ? { path: pathModifier(r.path) } : {}) };
    } else if (http && f.type === 'CORS') {
      if (f.cors) base.cors = corsFilter(f.cors);
    } else if (f.type === 'RequestMirror') {
      if (!f.requestMirror) continue;
      const m = mirror(f.requestMirror, ns, ctx, !http);
      if (m.problem) refProblem = m.problem;
      else (base.mirrors ??= []).push(m.mirror!);
    } else {
      // A type the route's kind does not define, and ExtensionRef: istiod rejects them.
      throw new RouteConversionError({ reason: 'InvalidFilter', message: `unsupported filter type ${JSON.stringify(f.type)}` });
    }
  }
  // Routes without a retry stanza get istiod's default policy (route.go: 2 retries on connect-failure,
  // refused-stream, unavailable, cancelled; no status codes), gRPC included.
  if (http) retryAndTimeouts(rule as HTTPRouteRule, base);
  base.retry ??= defaultRouteRetry();
  const refs = rule.backendRefs ?? [];
  // Gateway API: no backend with a weight above 0 means every request gets a 500, unless the rule redirects (the
  // waypoint answers a redirect itself; its backends are still resolved and reported, as istiod does).
  if (base.redirect === undefined && refs.reduce((sum, b) => sum + (b.weight ?? 1), 0) === 0) base.directStatus = 500;
  else {
    for (const ref of refs) {
      if ((ref.weight ?? 1) === 0) continue;
      const resolved = resolveBackend(ref, ns, ctx);
      if (resolved.problem) refProblem = resolved.problem;
      base.backends.push(resolved.backend);
    }
  }
  const matches = rule.matches ?? [];
  const ranked =
    matches.length === 0
      ? [{ route: { ...base, match: wireMatch(undefined, [], [], '') }, precedence: { uriRank: NO_MATCH, uriLength: 0 } }]
      : matches.map((m) => {
          const converted = http ? convertHTTPMatch(m as HTTPRouteMatch) : convertGRPCMatch(m as GRPCRouteMatch);
          return { route: { ...base, match: converted.match }, precedence: converted.precedence };
        });
  for (const r of ranked) checkExpressions(r.route.match);
  return refProblem ? { routes: ranked, refProblem } : { routes: ranked };
}

/** istiod's default retry policy for routes (ConvertPolicy of the mesh default). */
export function defaultRouteRetry(): WaypointRetry {
  return { attempts: 2, codes: [], backoffMs: 0, perTryTimeoutMs: 0 };
}

/**
 * Envoy compiles route expressions with RE2 and refuses the configuration when one does not compile; Ambit refuses the
 * route instead (Accepted False, UnsupportedValue), so no waypoint receives it.
 */
function checkExpressions(match: WaypointRouteMatch | undefined): void {
  const invalid = invalidExpression(match);
  if (invalid !== undefined) throw new RouteConversionError({ reason: 'UnsupportedValue', message: invalid });
}

/** Why the first regular expression of a match RE2 cannot compile is invalid; undefined: all compile. */
export function invalidExpression(match: WaypointRouteMatch | undefined): string | undefined {
  const expressions = [
    ...(match?.path?.type === 'REGEX' ? [match.path.value] : []),
    ...(match?.headers ?? []).filter((h) => h.regex).map((h) => h.value),
    ...(match?.queryParams ?? []).filter((q) => q.regex).map((q) => q.value),
  ];
  for (const e of expressions) {
    try {
      RE2JS.compile(e);
    } catch (err) {
      return `invalid RE2 regular expression ${JSON.stringify(e)}: ${(err as Error).message}`;
    }
  }
  return undefined;
}

/**
 * istiod's createMirrorFilter: the mirror's backend resolved like a backendRef (its problems reported; for a GRPCRoute,
 * fatal), 100 % unless `percent` or `fraction` says less.
 */
function mirror(f: NonNullable<RouteFilter['requestMirror']>, ns: string, ctx: RouteContext, fatal: boolean): { mirror?: NonNullable<WaypointRoute['mirrors']>[number]; problem?: RouteProblem } {
  let resolved;
  try {
    resolved = resolveBackend({ ...f.backendRef, weight: 1 }, ns, ctx);
  } catch (err) {
    if (fatal || !(err instanceof RouteConversionError)) throw err;
    return { problem: err.problem };
  }
  if (resolved.problem) {
    if (fatal) throw new RouteConversionError(resolved.problem);
    return { problem: resolved.problem };
  }
  const percent = f.fraction ? (100 * f.fraction.numerator) / (f.fraction.denominator ?? 100) : (f.percent ?? 100);
  return { mirror: { backend: resolved.backend, percent } };
}

/** istiod's createRedirectFilter: 302 unless told; no port keeps the request's, or the new scheme's default. */
function redirect(f: NonNullable<RouteFilter['requestRedirect']>): WaypointRedirect {
  return {
    scheme: f.scheme ?? '',
    hostname: f.hostname ?? '',
    port: f.port ?? 0,
    ...(f.path ? { path: pathModifier(f.path) } : {}),
    statusCode: f.statusCode ?? 302,
  };
}

function pathModifier(m: PathModifier): WaypointPathModifier {
  return m.type === 'ReplacePrefixMatch' ? { type: 'REPLACE_PREFIX_MATCH', value: m.replacePrefixMatch ?? '' } : { type: 'REPLACE_FULL_PATH', value: m.replaceFullPath ?? '' };
}

/**
 * istiod's conversion of `retry` and `timeouts`: retries on connect-failure, refused-stream, unavailable, cancelled and
 * the listed codes, 2 attempts unless told; `timeouts.request` is the route timeout; `backendRequest` is the per-try
 * timeout with a retry stanza, else the route timeout. A zero duration sets nothing.
 */
function retryAndTimeouts(rule: HTTPRouteRule, out: WaypointRoute): void {
  const ms = (d: string | undefined) => (d === undefined ? 0 : parseDuration(d, 'duration'));
  if (rule.retry) {
    const attempts = rule.retry.attempts ?? 2;
    out.retry = { attempts, codes: attempts === 0 ? [] : [...(rule.retry.codes ?? [])], backoffMs: ms(rule.retry.backoff), perTryTimeoutMs: 0 };
  }
  const request = ms(rule.timeouts?.request);
  if (request) out.timeoutMs = request;
  const backendRequest = ms(rule.timeouts?.backendRequest);
  if (backendRequest) {
    if (out.retry) out.retry.perTryTimeoutMs = backendRequest;
    else out.timeoutMs = backendRequest;
  }
}

/** istiod's createHeadersFilter: names lower-cased, the first of equal names wins, values must be valid. */
function headerModifier(filter: HeaderFilter): WaypointHeaderModifier {
  for (const h of [...(filter.set ?? []), ...(filter.add ?? [])]) {
    if (!isValidHeaderValue(h.value)) {
      throw new RouteConversionError({ reason: 'InvalidFilter', message: `header ${JSON.stringify(h.name)} value contains invalid characters` });
    }
  }
  const unique = (list: { name: string; value: string }[] | undefined) => {
    const byName = new Map<string, string>();
    for (const h of list ?? []) if (!byName.has(h.name.toLowerCase())) byName.set(h.name.toLowerCase(), h.value);
    return [...byName].map(([name, value]) => ({ name, value }));
  };
  return { set: unique(filter.set), add: unique(filter.add), remove: (filter.remove ?? []).map((n) => n.toLowerCase()) };
}

/** Tab and visible characters (istiod's isValidHeaderValue, byte by byte). */
function isValidHeaderValue(value: string): boolean {
  for (const byte of Buffer.from(value, 'utf8')) if (byte !== 0x09 && (byte < 0x20 || byte === 0x7f)) return false;
  return true;
}

/**
 * istiod's createCorsFilter: `*` any well-formed origin, a trailing `*` a prefix, other wildcards an anchored RE2
 * expression, the rest exact; unmatched preflights are answered by the waypoint (IGNORE).
 */
function corsFilter(c: NonNullable<RouteFilter['cors']>): NonNullable<WaypointRoute['cors']> {
  const origins: WaypointValueMatch[] = [];
  for (const o of c.allowOrigins ?? []) {
    if (o === '') continue;
    if (o === '*') origins.push({ name: '', value: '^[a-zA-Z][a-zA-Z0-9+.-]*://[^/\\s?#]+$', regex: true });
    else if (!o.includes('*')) origins.push({ name: '', value: o, regex: false });
    else if (o.indexOf('*') === o.length - 1) origins.push({ name: '', value: o.slice(0, -1), regex: false, prefix: true });
    else origins.push({ name: '', value: `^${o.replace(/[.*+?^${}()|[\]\\]/g, (ch) => (ch === '*' ? '.*' : `\\${ch}`))}$`, regex: true });
  }
  return {
    allowOrigins: origins,
    allowMethods: (c.allowMethods ?? []).join(','),
    allowHeaders: (c.allowHeaders ?? []).join(','),
    exposeHeaders: (c.exposeHeaders ?? []).join(','),
    maxAge: c.maxAge !== undefined && c.maxAge > 0 ? String(c.maxAge) : '',
    allowCredentials: c.allowCredentials === true,
    forwardUnmatchedPreflights: false,
  };
}

/** istiod's buildDestination for a mesh route (ReferenceGrants are not required there) plus the backend's filters. */
function resolveBackend(ref: BackendRef, routeNs: string, ctx: RouteContext): { backend: WaypointRouteBackend; problem?: RouteProblem } {
  const ns = ref.namespace ?? routeNs;
  const backend: WaypointRouteBackend = { hostname: '', namespace: ns, port: ref.port ?? 0, weight: ref.weight ?? 1, invalid: true };
  if (!isServiceBackend(ref)) {
    return { backend, problem: { reason: 'InvalidKind', message: `referencing unsupported backendRef: group ${JSON.stringify(ref.group ?? '')} kind ${JSON.stringify(ref.kind ?? '')}` } };
  }
  if (ref.name.includes('.')) {
    throw new RouteConversionError({ reason: 'InvalidDestination', message: 'service name invalid; the name of the Service must be used, not the hostname.' });
  }
  if (ref.port === undefined) throw new RouteConversionError({ reason: 'InvalidDestination', message: 'port is required in backendRef' });
  backend.hostname = serviceHostname(ref.name, ns, ctx.domainSuffix);
  for (const f of (ref.filters ?? []) as unknown as RouteFilter[]) {
    if (f.type === 'RequestHeaderModifier') {
      if (f.requestHeaderModifier) backend.requestHeaders = headerModifier(f.requestHeaderModifier);
    } else if (f.type !== 'ResponseHeaderModifier') throw new RouteConversionError({ reason: 'InvalidFilter', message: `unsupported filter type ${JSON.stringify(f.type)}` });
  }
  if (ctx.service(ns, ref.name) === undefined) return { backend, problem: { reason: 'BackendNotFound', message: `backend(${backend.hostname}) not found` } };
  backend.invalid = false;
  return { backend };
}

/** istiod's createURIMatch, createHeadersMatch, createQueryParamsMatch and createMethodMatch. */
function convertHTTPMatch(m: HTTPRouteMatch): ConvertedMatch {
  // A match without a path matches every path (the CRD's default).
  const type = m.path?.type ?? 'PathPrefix';
  let value = m.path?.value ?? '/';
  // "When specified, a trailing `/` is ignored."
  if (type === 'PathPrefix' && value !== '/' && value.endsWith('/')) value = value.slice(0, -1);
  const uri: IstioURIMatch = { type: type === 'PathPrefix' ? 'PREFIX' : type === 'Exact' ? 'EXACT' : 'REGEX', value };
  return rankedMatch(uri, valueMatches(m.headers, true), valueMatches(m.queryParams, false), m.method ?? '');
}

/** istiod's createGRPCURIMatch and createGRPCHeadersMatch: no query or method match (gRPC's POST is not matched). */
function convertGRPCMatch(m: GRPCRouteMatch): ConvertedMatch {
  return rankedMatch(m.method === undefined ? undefined : grpcURIMatch(m.method), valueMatches(m.headers, true), [], '');
}

/**
 * A gRPC request's path is `/<service>/<method>`; istiod matches it with a prefix (service only, Exact), a regular
 * expression (method only, or RegularExpression) or the exact path (both, Exact). Values go in as written.
 */
function grpcURIMatch(m: NonNullable<GRPCRouteMatch['method']>): IstioURIMatch {
  if (m.service === undefined) return { type: 'REGEX', value: `/[^/]+/${m.method!}` };
  const regex = m.type === 'RegularExpression';
  if (m.method === undefined) return regex ? { type: 'REGEX', value: `/${m.service}/.+` } : { type: 'PREFIX', value: `/${m.service}/` };
  return { type: regex ? 'REGEX' : 'EXACT', value: `/${m.service}/${m.method}` };
}

/**
 * The match the waypoint gets, as istiod's TranslateRouteMatch gives it to Envoy (no URI: every path; a prefix of a
 * gateway-semantics route loses its trailing `/`: our PREFIX is segment-aware, Envoy's path_separated_prefix), and
 * the precedence istiod sorted it by, which reads the URI before that translation.
 */
function rankedMatch(uri: IstioURIMatch | undefined, headers: WaypointValueMatch[], queryParams: WaypointValueMatch[], method: string): ConvertedMatch {
  return {
    match: wireMatch(uri, headers, queryParams, method),
    precedence: uri === undefined ? { uriRank: NO_URI, uriLength: 0 } : { uriRank: URI_RANK[uri.type], uriLength: Buffer.byteLength(uri.value) },
  };
}

function wireMatch(uri: IstioURIMatch | undefined, headers: WaypointValueMatch[], queryParams: WaypointValueMatch[], method: string): WaypointRouteMatch {
  const path = uri === undefined ? { type: 'PREFIX' as const, value: '/' } : { type: uri.type, value: uri.type === 'PREFIX' && uri.value !== '/' ? uri.value.replace(/\/$/, '') : uri.value };
  return { path, headers, queryParams, method };
}

/** One match per name (istiod keeps them in a map: the last wins), sorted by name. */
function valueMatches(list: ValueMatch[] | undefined, lowerCaseNames: boolean): WaypointValueMatch[] {
  const byName = new Map<string, WaypointValueMatch>();
  for (const v of list ?? []) {
    const name = lowerCaseNames ? v.name.toLowerCase() : v.name;
    byName.set(name, { name, value: v.value, regex: v.type === 'RegularExpression' });
  }
  return [...byName.keys()].sort().map((k) => byName.get(k)!);
}

// ---- order ------------------------------------------------------------------------------------------------------------

/** The routes one HTTPRoute or GRPCRoute gives one Service, with what orders them. */
export interface ServiceRoutes {
  kind: GatewayRoute['kind'];
  creationTimestamp?: string;
  namespace: string;
  name: string;
  routes: WaypointRoute[];
  /** Of each route, in order. */
  precedence: RoutePrecedence[];
}

/** What a translated route gives one parent Service (by store key) to be ordered with the Service's other routes. */
export function serviceRoutes(route: GatewayRoute, translated: TranslatedRoute, serviceKey: string): ServiceRoutes | undefined {
  const routes = translated.services.get(serviceKey);
  if (routes === undefined) return undefined;
  const out: ServiceRoutes = { kind: route.kind, namespace: route.metadata.namespace ?? '', name: route.metadata.name, routes, precedence: translated.precedence.get(serviceKey)! };
  if (route.metadata.creationTimestamp !== undefined) out.creationTimestamp = route.metadata.creationTimestamp;
  return out;
}

/**
 * All routes of one Service in evaluation order. istiod merges the HTTPRoutes and GRPCRoutes of a host into one
 * VirtualService (controller.go, mergeHTTPRoutes): routes oldest first, then by namespace and name
 * (sortRoutesByCreationTime), each in rule and match order, then stably sorted by Gateway API precedence (sortHTTPRoutes):
 * Exact before PathPrefix before RegularExpression before no path match, longer paths first, a method match first,
 * more header matches first, more query parameter matches first; a rule without matches last.
 */
export function orderServiceRoutes(contributions: ServiceRoutes[]): WaypointRoute[] {
  const created = (c: ServiceRoutes) => {
    const t = Date.parse(c.creationTimestamp ?? '');
    // Go's zero time (no timestamp) sorts before every real one.
    return Number.isNaN(t) ? -Infinity : t;
  };
  const ranked = [...contributions]
    .sort((a, b) => created(a) - created(b) || compareStrings(a.namespace, b.namespace) || compareStrings(a.name, b.name) || kindOrder(a) - kindOrder(b))
    .flatMap((c) => c.routes.map((route, i) => ({ route, precedence: c.precedence[i]! })));
  // istiod's augmentPortMatch gives a rule without matches a match on the parent's port alone: no URI.
  const uriRank = (r: RankedRoute) => (r.precedence.uriRank === NO_MATCH && r.route.port !== 0 ? NO_URI : r.precedence.uriRank);
  ranked.sort((a, b) => {
    const m1 = a.route.match!;
    const m2 = b.route.match!;
    return (
      uriRank(b) - uriRank(a) ||
      b.precedence.uriLength - a.precedence.uriLength ||
      Number(m2.method !== '') - Number(m1.method !== '') ||
      m2.headers.length - m1.headers.length ||
      m2.queryParams.length - m1.queryParams.length
    );
  });
  return ranked.map((r) => r.route);
}

/**
 * An HTTPRoute before a GRPCRoute of the same age, namespace and name. istiod names their VirtualServices alike and
 * its joined collection keeps the first, the HTTPRoute's (krt's join); Ambit keeps both.
 */
function kindOrder(c: ServiceRoutes): number {
  return c.kind === 'HTTPRoute' ? 0 : 1;
}

export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The routes a waypoint applies to a Service: those of routes in the Service's namespace or the waypoint's
 * (istiod's getVirtualServiceForWaypoint; a consumer route from elsewhere is for sidecar clients only).
 */
export function routesForWaypoint(routes: WaypointRoute[], serviceNamespace: string, waypointNamespace: string): WaypointRoute[] {
  return routes.filter((r) => {
    const ns = r.route.slice(0, r.route.indexOf('/'));
    return ns === serviceNamespace || ns === waypointNamespace;
  });
}
