// HTTPRoutes attached to Services (Gateway API GAMMA) as istiod translates them for waypoints, and the route status
// istiod writes. Sources: istio/istio pilot/pkg/config/kube/gateway/conversion.go (convertHTTPRoute,
// buildHTTPDestination, buildDestination, createURIMatch, createHeadersFilter, referenceAllowed, sortHTTPRoutes,
// parentRefString), route_collections.go (one route per match, mesh parents) and conditions.go (createRouteStatus).
// Pure functions; the AmbientIndex keeps them incremental.
import type { BackendRef, Condition, HTTPRoute, HTTPRouteRule, Namespace, ParentReference, Service as KubeService } from '../api/types.js';
import { parseDuration } from '../common/settings.js';
import type { WaypointHeaderModifier, WaypointPathModifier, WaypointRedirect, WaypointRoute, WaypointRouteBackend, WaypointRouteMatch, WaypointValueMatch } from '../xds/types.js';
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
  namespace(name: string): Namespace | undefined;
}

/** One HTTPRoute, translated. */
export interface TranslatedRoute {
  /** Our entries of `status.parents`: one per Service parent, in istiod's order. Empty: no status of ours. */
  parents: RouteParentStatus[];
  /** Store key of each parent Service that takes the route → its routes (with the parentRef's port). */
  services: Map<string, WaypointRoute[]>;
  /** Store keys of the Services and Namespaces the translation read: a change of one of them may change it. */
  dependencies: string[];
}

/** A problem istiod reports in a condition (its ConfigError / ParentError). */
interface RouteProblem {
  reason: string;
  message: string;
}

/** The rules of one route, converted once for every parent. */
interface ConvertedRules {
  routes: WaypointRoute[];
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

/** Filter types Gateway API defines that Ambit does not implement yet (istiod does); ExtensionRef istiod rejects. */
const UNIMPLEMENTED_FILTERS = new Set(['RequestMirror', 'CORS']);

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
}

interface ValueMatch {
  type?: 'Exact' | 'RegularExpression';
  name: string;
  value: string;
}

interface RouteMatch {
  path?: { type?: 'Exact' | 'PathPrefix' | 'RegularExpression'; value?: string };
  headers?: ValueMatch[];
  queryParams?: ValueMatch[];
  method?: string;
}

/** istiod's parentRefString: how parents are told apart and ordered in the status. */
export function parentRefString(ref: ParentReference, routeNamespace: string): string {
  return `${ref.group ?? GATEWAY_GROUP}/${ref.kind ?? 'Gateway'}/${ref.name}/${ref.sectionName ?? ''}/${ref.port ?? 0}.${ref.namespace ?? routeNamespace}`;
}

/** A parentRef naming a core Service. The group defaults to Gateway API's, so it must be given as "". */
export function isServiceParent(ref: ParentReference): boolean {
  return ref.group === '' && ref.kind === 'Service';
}

/**
 * The Service parents of a route, each once, in the order istiod appends new status entries (parentRefString
 * descending). Parents of other kinds belong to other controllers here: no status, no routes.
 */
function serviceParents(route: HTTPRoute): ParentReference[] {
  const ns = route.metadata.namespace ?? '';
  const byString = new Map<string, ParentReference>();
  for (const ref of route.spec.parentRefs ?? []) {
    const key = parentRefString(ref, ns);
    if (isServiceParent(ref) && !byString.has(key)) byString.set(key, ref);
  }
  return [...byString.keys()].sort((a, b) => (a < b ? 1 : a > b ? -1 : 0)).map((k) => byString.get(k)!);
}

/** istiod's waypointConfigured: `istio.io/use-waypoint` set to anything but `none`. */
function namesWaypoint(labels: Record<string, string> | undefined): boolean {
  const value = labels?.[USE_WAYPOINT_LABEL];
  return value !== undefined && value !== '' && value.toLowerCase() !== 'none';
}

export function translateHTTPRoute(route: HTTPRoute, ctx: RouteContext): TranslatedRoute {
  const routeNs = route.metadata.namespace ?? '';
  const parents = serviceParents(route);
  const out: TranslatedRoute = { parents: [], services: new Map(), dependencies: [] };
  if (parents.length === 0) return out;
  const rules = convertRules(route, ctx);
  const deps = new Set<string>(backendDependencies(route));
  for (const ref of parents) {
    const ns = ref.namespace ?? routeNs;
    deps.add(`Service/${ns}/${ref.name}`);
    deps.add(`Namespace//${ns}`);
    const svc = ctx.service(ns, ref.name);
    const parent = parentResult(ref, svc, ctx.namespace(ns));
    out.parents.push(routeParentStatus(ref, route.metadata.generation, parent, rules));
    if (parent.port === undefined || rules.unsupported !== undefined || rules.routes.length === 0) continue;
    const key = `Service/${ns}/${ref.name}`;
    const routes = rules.routes.map((r) => ({ ...r, port: parent.port! }));
    out.services.set(key, [...(out.services.get(key) ?? []), ...routes]);
  }
  out.dependencies = [...deps].sort();
  return out;
}

interface ParentResult {
  /** Accepted False (istiod's ParentError); undefined: the parent takes the route. */
  denied?: RouteProblem;
  /** The Service port the route is restricted to (0: all); undefined when denied. */
  port?: number;
  /** The ResolvedWaypoints message. */
  waypoints: string;
}

/** istiod's referenceAllowed for a Service parent, plus the port a `sectionName` names (GAMMA: a port name). */
function parentResult(ref: ParentReference, svc: KubeService | undefined, ns: Namespace | undefined): ParentResult {
  if (svc === undefined) {
    return { denied: { reason: 'NoMatchingParent', message: `parent service: ${JSON.stringify(ref.name)} not found` }, waypoints: 'parent not found' };
  }
  // A namespace the store does not have counts as labelled, as in istiod.
  const waypoints =
    namesWaypoint(svc.metadata.labels) || ns === undefined || namesWaypoint(ns.metadata.labels)
      ? 'All waypoints resolved'
      : 'istio.io/use-waypoint label missing from parent and parent namespace; in ambient mode, route will not be respected';
  if (ref.port !== undefined || ref.sectionName === undefined) return { port: ref.port ?? 0, waypoints };
  const named = (svc.spec.ports ?? []).find((p) => p.name === ref.sectionName);
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

function backendDependencies(route: HTTPRoute): string[] {
  const ns = route.metadata.namespace ?? '';
  const out: string[] = [];
  for (const rule of route.spec.rules ?? []) {
    for (const b of rule.backendRefs ?? []) if (isServiceBackend(b)) out.push(`Service/${b.namespace ?? ns}/${b.name}`);
  }
  return out;
}

function isServiceBackend(b: BackendRef): boolean {
  return (b.group ?? '') === '' && (b.kind ?? 'Service') === 'Service';
}

// ---- rules -----------------------------------------------------------------------------------------------------------

/**
 * Every rule × match as one route (istiod splits rules so each route has one match). An error istiod treats as
 * fatal leaves no routes; an unresolved backend is kept, marked invalid, and reported.
 */
function convertRules(route: HTTPRoute, ctx: RouteContext): ConvertedRules {
  const out: ConvertedRules = { routes: [] };
  const unsupported = unsupportedFields(route);
  if (unsupported.length > 0) out.unsupported = { reason: 'UnsupportedValue', message: unsupported.join('; ') };
  try {
    (route.spec.rules ?? []).forEach((rule, i) => {
      const converted = convertRule(route, rule, i, ctx);
      if (converted.refProblem) out.refProblem = converted.refProblem;
      out.routes.push(...converted.routes);
    });
  } catch (err) {
    if (!(err instanceof RouteConversionError)) throw err;
    out.routes = [];
    out.refProblem = err.problem;
  }
  return out;
}

/** Fields Ambit does not implement yet, each named once: the route is not programmed rather than half-applied. */
function unsupportedFields(route: HTTPRoute): string[] {
  const out = new Set<string>();
  for (const rule of route.spec.rules ?? []) {
    for (const f of (rule.filters ?? []) as unknown as RouteFilter[]) {
      if (UNIMPLEMENTED_FILTERS.has(f.type)) out.add(`Ambit does not implement the ${f.type} filter yet`);
    }
    for (const b of rule.backendRefs ?? []) {
      for (const f of (b.filters ?? []) as unknown as RouteFilter[]) {
        if (f.type === 'ResponseHeaderModifier') out.add('Ambit does not implement the ResponseHeaderModifier filter on a backendRef yet');
      }
    }
  }
  return [...out];
}

function convertRule(route: HTTPRoute, rule: HTTPRouteRule, index: number, ctx: RouteContext): { routes: WaypointRoute[]; refProblem?: RouteProblem } {
  const ns = route.metadata.namespace ?? '';
  const base: WaypointRoute = {
    route: `${ns}/${route.metadata.name}`,
    rule: index,
    // Envoy's route name as istiod sets it (the access log shows it).
    name: rule.name ?? `${ns}.${route.metadata.name}.${index}`,
    port: 0,
    backends: [],
    directStatus: 0,
  };
  for (const f of (rule.filters ?? []) as unknown as RouteFilter[]) {
    if (f.type === 'RequestHeaderModifier') {
      if (f.requestHeaderModifier) base.requestHeaders = headerModifier(f.requestHeaderModifier);
    } else if (f.type === 'ResponseHeaderModifier') {
      if (f.responseHeaderModifier) base.responseHeaders = headerModifier(f.responseHeaderModifier);
    } else if (f.type === 'RequestRedirect') {
      if (f.requestRedirect) base.redirect = redirect(f.requestRedirect);
    } else if (f.type === 'URLRewrite') {
      const r = f.urlRewrite;
      if (r && (r.hostname || r.path)) base.rewrite = { hostname: r.hostname ?? '', ...(r.path ? { path: pathModifier(r.path) } : {}) };
    } else if (!UNIMPLEMENTED_FILTERS.has(f.type)) throw new RouteConversionError({ reason: 'InvalidFilter', message: `unsupported filter type ${JSON.stringify(f.type)}` });
  }
  retryAndTimeouts(rule, base);
  let refProblem: RouteProblem | undefined;
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
  // Without matches a rule matches everything; a match without a path matches every path (the CRD's defaults).
  const matches = ((rule.matches ?? []) as RouteMatch[]).length > 0 ? (rule.matches as RouteMatch[]) : [{}];
  const routes = matches.map((m) => ({ ...base, match: convertMatch(m) }));
  return refProblem ? { routes, refProblem } : { routes };
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
function convertMatch(m: RouteMatch): WaypointRouteMatch {
  const type = m.path?.type ?? 'PathPrefix';
  let value = m.path?.value ?? '/';
  // "When specified, a trailing `/` is ignored."
  if (type === 'PathPrefix' && value !== '/' && value.endsWith('/')) value = value.slice(0, -1);
  return {
    path: { type: type === 'PathPrefix' ? 'PREFIX' : type === 'Exact' ? 'EXACT' : 'REGEX', value },
    headers: valueMatches(m.headers, true),
    queryParams: valueMatches(m.queryParams, false),
    method: m.method ?? '',
  };
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

/** The routes one HTTPRoute gives one Service, with what orders HTTPRoutes among themselves. */
export interface ServiceRoutes {
  creationTimestamp?: string;
  namespace: string;
  name: string;
  routes: WaypointRoute[];
}

const PATH_RANK = { EXACT: 3, PREFIX: 2, REGEX: 1 } as const;

/**
 * All routes of one Service in evaluation order: HTTPRoutes oldest first (then by namespace and name, istiod's
 * sortRoutesByCreationTime), each in rule and match order, then stably sorted by Gateway API precedence
 * (sortHTTPRoutes): Exact before PathPrefix before RegularExpression, longer paths first, a method match first, more
 * header matches first, more query parameter matches first.
 */
export function orderServiceRoutes(contributions: ServiceRoutes[]): WaypointRoute[] {
  const created = (c: ServiceRoutes) => {
    const t = Date.parse(c.creationTimestamp ?? '');
    // Go's zero time (no timestamp) sorts before every real one.
    return Number.isNaN(t) ? -Infinity : t;
  };
  const routes = [...contributions]
    .sort((a, b) => created(a) - created(b) || compareStrings(a.namespace, b.namespace) || compareStrings(a.name, b.name))
    .flatMap((c) => c.routes);
  return routes.sort((a, b) => {
    const m1 = a.match!;
    const m2 = b.match!;
    return (
      PATH_RANK[m2.path!.type] - PATH_RANK[m1.path!.type] ||
      Buffer.byteLength(m2.path!.value) - Buffer.byteLength(m1.path!.value) ||
      Number(m2.method !== '') - Number(m1.method !== '') ||
      m2.headers.length - m1.headers.length ||
      m2.queryParams.length - m1.queryParams.length
    );
  });
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The routes a waypoint applies to a Service: those of HTTPRoutes in the Service's namespace or the waypoint's
 * (istiod's getVirtualServiceForWaypoint; a consumer route from elsewhere is for sidecar clients only).
 */
export function routesForWaypoint(routes: WaypointRoute[], serviceNamespace: string, waypointNamespace: string): WaypointRoute[] {
  return routes.filter((r) => {
    const ns = r.route.slice(0, r.route.indexOf('/'));
    return ns === serviceNamespace || ns === waypointNamespace;
  });
}
