// The waypoint's route table for one Service: the HTTPRoute matches the control plane sends, in evaluation order,
// compiled once per configuration (regular expressions built, prefixes split) so that choosing a route per request
// allocates nothing unless a route matches on query parameters. Envoy's semantics: path matches see the path without
// its query string; a path prefix matches whole segments (`/api` matches `/api` and `/api/x`, not `/apix`), a string
// prefix (a VirtualService's) any path starting with it; regular
// expressions are RE2 (as Envoy's: linear time, so a pattern cannot stall the waypoint whatever a client sends) and
// must match the whole value; header names are lower-case and a missing header never matches; query parameters are
// compared as sent, not decoded.
import { RE2JS } from 're2js';
import type { WaypointHeaderModifier, WaypointPathMatchType, WaypointPathModifier, WaypointRoute, WaypointRouteBackend, WaypointValueMatch } from '../../xds/types.js';

/** What a route matches on: the request's method, path (with its query string) and headers. */
export interface RoutableRequest {
  readonly method: string;
  readonly path: string;
  readonly authority: string;
  header(name: string): string | undefined;
}

interface CompiledValueMatch {
  name: string;
  test: (value: string) => boolean;
  /** withoutHeaders: the match holds when the value is absent or fails the test. */
  invert: boolean;
}

/** A header matcher's value: the pseudo-headers Envoy's matchers see, else the request header. */
function headerValue(req: RoutableRequest, name: string): string | undefined {
  // The waypoint's inner requests are plaintext HTTP.
  return name === ':authority' ? req.authority : name === ':scheme' ? 'http' : req.header(name);
}

/** One route, ready to match. */
export class CompiledRoute {
  private readonly pathTest: ((path: string) => boolean) | undefined;
  private readonly headers: CompiledValueMatch[];
  private readonly queryParams: CompiledValueMatch[];
  private readonly method: string;
  private readonly totalWeight: number;
  private readonly corsOrigins: CompiledValueMatch[];

  constructor(readonly route: WaypointRoute) {
    const m = route.match;
    this.pathTest = m?.path ? pathTest(m.path.type, m.path.value, m.path.ignoreCase === true) : undefined;
    this.headers = (m?.headers ?? []).map(valueTest);
    this.queryParams = (m?.queryParams ?? []).map(valueTest);
    this.method = m?.method ?? '';
    this.totalWeight = route.backends.reduce((sum, b) => sum + b.weight, 0);
    this.corsOrigins = (route.cors?.allowOrigins ?? []).map(valueTest);
  }

  /** Whether the route's CORS policy allows an origin (a policy allowing `*` allows every one, as Envoy's does). */
  originAllowed(origin: string): boolean {
    return this.corsOrigins.some((o) => o.test('*') || o.test(origin));
  }

  /** `query`: the request's parameters, parsed by the caller at most once per request. */
  matches(port: number, req: RoutableRequest, query: () => Map<string, string>): boolean {
    if (this.route.port !== 0 && this.route.port !== port) return false;
    if (this.method !== '' && req.method !== this.method) return false;
    if (this.pathTest !== undefined && !this.pathTest(pathOnly(req.path))) return false;
    for (const h of this.headers) {
      const v = headerValue(req, h.name);
      if ((v !== undefined && h.test(v)) === h.invert) return false;
    }
    if (this.queryParams.length > 0) {
      const params = query();
      for (const q of this.queryParams) {
        const v = params.get(q.name);
        if ((v !== undefined && q.test(v)) === q.invert) return false;
      }
    }
    return true;
  }

  /** A backend by weight; undefined when the rule has none (its `directStatus` answers instead). */
  pickBackend(random = Math.random): WaypointRouteBackend | undefined {
    return pickByWeight(this.route.backends, this.totalWeight, random);
  }
}

/** A backend by weight (Envoy's weighted clusters); `total`: the sum of their weights. */
export function pickByWeight<T extends { weight: number }>(backends: readonly T[], total: number, random = Math.random): T | undefined {
  if (backends.length <= 1) return backends[0];
  let n = random() * total;
  for (const b of backends) {
    n -= b.weight;
    if (n < 0) return b;
  }
  return backends[backends.length - 1];
}

/** The routes of one Service in evaluation order; the first that matches wins. */
export class RouteTable {
  private readonly routes: CompiledRoute[];
  /** Ports some route applies to; 0 when a route applies to every port. */
  private readonly ports: Set<number>;

  constructor(routes: readonly WaypointRoute[]) {
    this.routes = routes.map((r) => new CompiledRoute(r));
    this.ports = new Set(routes.map((r) => r.port));
  }

  /**
   * The route for a request: the first that matches; `'none'` when routes apply to this port but none matches (Envoy
   * answers 404 NR); undefined when no route applies to the port (the Service's own default route).
   */
  select(port: number, req: RoutableRequest): CompiledRoute | 'none' | undefined {
    if (this.routes.length === 0 || !(this.ports.has(0) || this.ports.has(port))) return undefined;
    let params: Map<string, string> | undefined;
    const query = () => (params ??= queryParams(req.path));
    for (const r of this.routes) if (r.matches(port, req, query)) return r;
    return 'none';
  }
}

/** Applies a header filter to outgoing headers (an object keyed by lower-case name), in Envoy's order: remove, set, add. */
export function modifyHeaders(headers: Record<string, string | string[] | number | undefined>, m: WaypointHeaderModifier | undefined): void {
  if (m === undefined) return;
  for (const name of m.remove) delete headers[name];
  for (const h of m.set) headers[h.name] = h.value;
  for (const h of m.add) {
    const prev = headers[h.name];
    if (prev === undefined) headers[h.name] = h.value;
    else if (Array.isArray(prev)) headers[h.name] = [...prev, h.value];
    else headers[h.name] = [String(prev), h.value];
  }
}

/**
 * Gateway API's path modifier: the full path replaced, or the route's prefix match (whole segments) replaced by the
 * value, without doubling or losing the `/` between them; or Envoy's prefix_rewrite (VirtualService): the matched
 * string prefix, or the whole path when the route matched otherwise, replaced literally. The query string stays.
 */
export function rewritePath(path: string, m: WaypointPathModifier, match: { type: string; value: string } | undefined): string {
  const q = path.indexOf('?');
  const query = q < 0 ? '' : path.slice(q);
  const bare = q < 0 ? path : path.slice(0, q);
  if (m.type === 'REPLACE_FULL_PATH') return m.value + query;
  if (m.type === 'PREFIX_REWRITE') return m.value + bare.slice(match?.type === 'STRING_PREFIX' ? match.value.length : bare.length) + query;
  const prefix = match?.type === 'PREFIX' ? match.value.replace(/\/$/, '') : '';
  const rest = bare.slice(prefix.length);
  // istiod sends the replacement without its trailing `/` (`/` itself: remove the prefix).
  const base = m.value.replace(/\/$/, '');
  const out = rest === '' ? base || '/' : base + (rest.startsWith('/') ? rest : `/${rest}`);
  return (out === '' ? '/' : out) + query;
}

function pathOnly(path: string): string {
  const q = path.indexOf('?');
  return q < 0 ? path : path.slice(0, q);
}

/** A request's query parameters as sent (Envoy's route matcher does not decode them); the first of a name counts. */
export function queryParams(path: string): Map<string, string> {
  const out = new Map<string, string>();
  const q = path.indexOf('?');
  if (q < 0) return out;
  for (const pair of path.slice(q + 1).split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const name = eq < 0 ? pair : pair.slice(0, eq);
    if (!out.has(name)) out.set(name, eq < 0 ? '' : pair.slice(eq + 1));
  }
  return out;
}

/** An RE2 expression matched against a whole value. */
function fullMatch(pattern: string): (value: string) => boolean {
  let re: RE2JS;
  try {
    re = RE2JS.compile(pattern);
  } catch {
    // The control plane refuses expressions RE2 cannot compile; one that still arrives matches nothing.
    return () => false;
  }
  return (value) => re.matches(value);
}

function pathTest(type: WaypointPathMatchType, value: string, ignoreCase: boolean): (path: string) => boolean {
  if (ignoreCase) {
    if (type === 'REGEX') return fullMatch(`(?i)${value}`);
    const lower = value.toLowerCase();
    const test = pathTest(type, lower, false);
    return (path) => test(path.toLowerCase());
  }
  switch (type) {
    case 'EXACT':
      return (path) => path === value;
    case 'STRING_PREFIX':
      return (path) => path.startsWith(value);
    case 'REGEX':
      return fullMatch(value);
    case 'PREFIX': {
      // Segment-aware (Envoy's path_separated_prefix); the control plane sends the prefix without a trailing `/`.
      const prefix = value.endsWith('/') ? value.slice(0, -1) : value;
      if (prefix === '') return () => true;
      return (path) => path.startsWith(prefix) && (path.length === prefix.length || path.charCodeAt(prefix.length) === 0x2f);
    }
  }
}

function valueTest(m: WaypointValueMatch): CompiledValueMatch {
  const test = m.regex ? fullMatch(m.value) : m.prefix ? (v: string) => v.startsWith(m.value) : (v: string) => v === m.value;
  return { name: m.name, test, invert: m.invert === true };
}
