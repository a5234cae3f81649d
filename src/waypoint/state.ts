// What a waypoint knows: the mesh's workloads and services (src/xds/address-state.ts: endpoints, peers' metadata) and
// its own configuration from the control plane (ambit.waypoint.Resource): itself, the Services bound to it with their
// ports' protocols, and the authorization policies that apply. Policies are compiled once per configuration change
// and per kind of traffic (HTTP or TCP), never per request; a policy that applies but never arrived (the xDS client
// drops a resource it cannot decode, the server one it cannot encode) denies the traffic it would apply to. When the
// control plane is away everything here keeps serving as last received.
import { AddressState, validateAddress } from '../xds/address-state.js';
import type { XdsSubscription } from '../xds/client.js';
import type { Logger } from '../telemetry/log.js';
import type { Service, WaypointCluster, WaypointDestination, WaypointJwtRule, WaypointRequestAuthentication, WaypointHeaderModifier, WaypointPathModifier, WaypointPolicy, WaypointResource, WaypointRoute, WaypointRouteBackend, WaypointSelf, WaypointService, WaypointTcpRoute, WaypointValueMatch, Workload } from '../xds/types.js';
import { TYPE_ADDRESS, TYPE_WAYPOINT, waypointCollection } from '../xds/types.js';
import { compilePolicies, denyAllPolicies, type CompiledPolicies, type TrafficKind } from './authz/rbac.js';
import { JwksCache, type JwksSource } from './http/jwks.js';
import { JwtAuthenticator } from './http/jwt.js';
import { RouteTable } from './http/router.js';

/** One set of applying policies, compiled for each traffic kind on first use. */
type CompiledByKind = { [K in TrafficKind]?: CompiledPolicies };

/** The Services and policies the waypoint serves, as the last configuration says. */
export class WaypointState extends AddressState {
  private self: WaypointSelf | undefined;
  /** `namespace/hostname` → bound Service. */
  private readonly bound = new Map<string, WaypointService>();
  /** `namespace/name` → policy. */
  private readonly policies = new Map<string, WaypointPolicy>();
  /** `namespace/name` → RequestAuthentication. */
  private readonly requestAuthentications = new Map<string, WaypointRequestAuthentication>();
  /** JWT authenticators per bound Service (and for the waypoint alone), dropped on every configuration change. */
  private authenticatorsByService = new WeakMap<WaypointService, JwtAuthenticator>();
  private waypointAuthenticator: JwtAuthenticator | undefined;
  /** `namespace/hostname` → the DestinationRule of a Service the waypoint sends to. */
  private readonly destinations = new Map<string, WaypointDestination>();
  /** Resource name → what it held, so a removal by name knows what to drop. */
  private readonly names = new Map<string, { service?: string; policy?: string; destination?: string; authn?: string; waypoint?: true }>();
  // Compiled policies, dropped on every configuration change (a policy, a Service's list or the waypoint's own list
  // may have changed). Requests find them through objects they already hold, so a lookup builds no key.
  /** For bound Services with policies of their own, by Service object (a Service changed is a new object). */
  private compiledByService = new WeakMap<WaypointService, CompiledByKind>();
  /** Route tables of bound Services, built on first use (a changed Service is a new object). */
  private readonly routeTables = new WeakMap<WaypointService, RouteTable>();
  /** For traffic only the waypoint's own policies apply to: workload-addressed, or to a Service without its own. */
  private compiledWaypointOnly: CompiledByKind = {};
  /** Missing policy ids already warned about; an id leaves when its policy arrives, so losing it again warns again. */
  private readonly warnedMissingPolicies = new Set<string>();
  /** The missing waypoint resource was warned about; reset when it arrives. */
  private warnedMissingSelf = false;

  constructor(
    log: Logger | undefined,
    readonly namespace: string,
    readonly gatewayName: string,
    /** Where JWT rules get their keys; the waypoint gives it a fetcher through the mesh. */
    readonly jwks: JwksSource = new JwksCache(() => Promise.reject(new Error('no JWKS fetcher')), log),
  ) {
    super(log, [TYPE_ADDRESS, TYPE_WAYPOINT]);
  }

  xdsSubscriptions(): XdsSubscription[] {
    return [
      { typeUrl: TYPE_ADDRESS, shortName: 'Address', names: ['*'], validate: validateAddress, apply: (u, r) => this.applyAddresses(u, r) },
      {
        typeUrl: TYPE_WAYPOINT,
        shortName: 'Waypoint',
        names: [waypointCollection(this.namespace, this.gatewayName)],
        validate: validateWaypointResource,
        apply: (u, r) => this.applyWaypoint(u, r),
      },
    ];
  }

  /** This waypoint as the control plane describes it; undefined until the first configuration arrived. */
  get waypoint(): WaypointSelf | undefined {
    return this.self;
  }

  /** The bound Service a VIP belongs to, with its waypoint configuration; undefined when not bound to us. */
  boundService(service: Service): WaypointService | undefined {
    return this.bound.get(`${service.namespace}/${service.hostname}`);
  }

  /** True when workload-addressed traffic to `w` belongs to this waypoint (its `waypoint` names our Service). */
  servesWorkload(w: Workload): boolean {
    const self = this.self;
    if (!self || (self.trafficType !== 'WORKLOAD' && self.trafficType !== 'ALL')) return false;
    return w.waypoint?.hostname?.namespace === self.namespace && w.waypoint.hostname.hostname === self.hostname;
  }

  /**
   * The cluster of a Service port (and subset): its DestinationRule's policy; `{}` for the Service's own cluster
   * when no rule applies (Istio's defaults); undefined for a subset no rule defines (Envoy has no such cluster).
   */
  cluster(service: Pick<Service, 'namespace' | 'hostname'>, port: number, subset: string): WaypointCluster | undefined {
    const d = this.destinations.get(`${service.namespace}/${service.hostname}`);
    const found = d?.clusters.find((c) => c.port === port && c.subset === subset);
    if (found !== undefined) return found;
    return subset === '' ? { port, subset: '', workloads: [] } : undefined;
  }

  /** The VirtualService tls/tcp route of a bound Service's port, if one applies. */
  tcpRoute(service: WaypointService, port: number): WaypointTcpRoute | undefined {
    return service.tcpRoutes?.find((r) => r.port === port);
  }

  /**
   * The JWT rules for traffic to `service` (undefined: workload-addressed): the waypoint's own RequestAuthentications
   * and the Service's, compiled once per configuration. A RequestAuthentication named but not received is left out
   * (its tokens then verify nowhere, so policies requiring them deny) and warned about.
   */
  authenticator(service: WaypointService | undefined): JwtAuthenticator {
    if (service !== undefined && service.requestAuthentications?.length) {
      let a = this.authenticatorsByService.get(service);
      if (a === undefined) this.authenticatorsByService.set(service, (a = this.compileAuthn([...(this.self?.requestAuthentications ?? []), ...service.requestAuthentications])));
      return a;
    }
    return (this.waypointAuthenticator ??= this.compileAuthn(this.self?.requestAuthentications ?? []));
  }

  private compileAuthn(ids: readonly string[]): JwtAuthenticator {
    const rules: WaypointJwtRule[] = [];
    for (const id of ids) {
      const ra = this.requestAuthentications.get(id);
      if (ra === undefined) {
        if (!this.warnedMissingPolicies.has(id)) {
          this.warnedMissingPolicies.add(id);
          this.log?.warn(`request authentication ${id} applies but is missing; its tokens are not accepted until it arrives`);
        }
        continue;
      }
      rules.push(...ra.rules);
    }
    // istiod orders the providers by issuer; the first that verifies decides.
    rules.sort((a, b) => (a.issuer < b.issuer ? -1 : a.issuer > b.issuer ? 1 : 0));
    return new JwtAuthenticator(rules, this.jwks);
  }

  /** The HTTPRoutes of a bound Service, compiled. */
  routeTable(service: WaypointService): RouteTable {
    let t = this.routeTables.get(service);
    if (t === undefined) this.routeTables.set(service, (t = new RouteTable(service.routes)));
    return t;
  }

  /** The compiled policies for traffic to `service` (undefined: workload-addressed, only the waypoint's own apply). */
  authorization(service: WaypointService | undefined, kind: TrafficKind): CompiledPolicies {
    let byKind: CompiledByKind;
    if (service === undefined || service.policies.length === 0) {
      byKind = this.compiledWaypointOnly;
    } else {
      let forService = this.compiledByService.get(service);
      if (forService === undefined) this.compiledByService.set(service, (forService = {}));
      byKind = forService;
    }
    return (byKind[kind] ??= this.compile(service?.policies ?? [], kind));
  }

  /** The waypoint's own policies plus `servicePolicies`, compiled; all traffic denied when one has not arrived. */
  private compile(servicePolicies: readonly string[], kind: TrafficKind): CompiledPolicies {
    const self = this.self;
    let complete = self !== undefined;
    if (self === undefined && !this.warnedMissingSelf) {
      this.warnedMissingSelf = true;
      this.log?.warn(`the waypoint resource of ${this.namespace}/${this.gatewayName} is missing; denying all traffic until it arrives`);
    }
    const list: WaypointPolicy[] = [];
    for (const id of [...(self?.policies ?? []), ...servicePolicies]) {
      const p = this.policies.get(id);
      if (p !== undefined) {
        list.push(p);
        continue;
      }
      complete = false;
      if (!this.warnedMissingPolicies.has(id)) {
        this.warnedMissingPolicies.add(id);
        this.log?.warn(`authorization policy ${id} applies but is missing; denying the traffic it applies to until it arrives`);
      }
    }
    if (!complete) return denyAllPolicies(kind);
    const result = compilePolicies(list, kind);
    for (const p of result.problems) this.log?.warn(`policy ${p.policy} rule ${p.rule}: ${p.message}`);
    return result.compiled;
  }

  /** Applies one batch of waypoint resources (by xDS resource name). */
  applyWaypoint(upserts: Map<string, WaypointResource>, removals: string[]): void {
    for (const name of removals) this.removeResource(name);
    for (const [name, raw] of upserts) {
      this.removeResource(name);
      const r = normalizeWaypointResource(raw);
      if (r.waypoint) {
        this.self = r.waypoint;
        this.names.set(name, { waypoint: true });
      } else if (r.service) {
        const key = `${r.service.namespace}/${r.service.hostname}`;
        this.bound.set(key, r.service);
        this.names.set(name, { service: key });
      } else if (r.policy) {
        const key = `${r.policy.namespace}/${r.policy.name}`;
        this.policies.set(key, r.policy);
        this.names.set(name, { policy: key });
      } else if (r.destination) {
        const key = `${r.destination.namespace}/${r.destination.hostname}`;
        this.destinations.set(key, r.destination);
        this.names.set(name, { destination: key });
      } else if (r.requestAuthentication) {
        const key = `${r.requestAuthentication.namespace}/${r.requestAuthentication.name}`;
        this.requestAuthentications.set(key, r.requestAuthentication);
        this.names.set(name, { authn: key });
      }
    }
    this.compiledByService = new WeakMap();
    this.compiledWaypointOnly = {};
    this.authenticatorsByService = new WeakMap();
    this.waypointAuthenticator = undefined;
    if (this.self !== undefined) this.warnedMissingSelf = false;
    for (const id of this.warnedMissingPolicies) if (this.policies.has(id) || this.requestAuthentications.has(id)) this.warnedMissingPolicies.delete(id);
    this.notify({ addresses: [], policies: [...upserts.keys(), ...removals] }, true);
  }

  private removeResource(name: string): void {
    const entry = this.names.get(name);
    if (!entry) return;
    this.names.delete(name);
    if (entry.waypoint) this.self = undefined;
    if (entry.service) this.bound.delete(entry.service);
    if (entry.policy) this.policies.delete(entry.policy);
    if (entry.destination) this.destinations.delete(entry.destination);
    if (entry.authn) this.requestAuthentications.delete(entry.authn);
  }

  /** `/config_dump`: the addresses plus this waypoint's own configuration. */
  configDump(): Record<string, unknown> {
    const byKey = <T>(f: (t: T) => string) => (a: T, b: T) => (f(a) < f(b) ? -1 : f(a) > f(b) ? 1 : 0);
    return {
      waypoint: this.self ?? null,
      boundServices: [...this.bound.values()].sort(byKey((s) => `${s.namespace}/${s.hostname}`)),
      policies: [...this.policies.values()].sort(byKey((p) => `${p.namespace}/${p.name}`)),
      destinations: [...this.destinations.values()].sort(byKey((d) => `${d.namespace}/${d.hostname}`)),
      requestAuthentications: [...this.requestAuthentications.values()].sort(byKey((a) => `${a.namespace}/${a.name}`)),
      // Fetched JWKS and why one is failing: what `/config_dump` shows an operator when tokens are refused.
      jwks: this.jwks.status(),
      ...this.addressDump(),
    };
  }
}

/** What the data path relies on; decoding alone accepts a resource with nothing in it. */
function validateWaypointResource(name: string, r: WaypointResource): void {
  if (r.waypoint) {
    if (!r.waypoint.name || !r.waypoint.namespace || !r.waypoint.hostname) throw new Error(`waypoint ${name} has no name, namespace or hostname`);
  } else if (r.service) {
    if (!r.service.hostname || !r.service.namespace) throw new Error(`service ${name} has no hostname or namespace`);
    for (const p of r.service.ports ?? []) if (!(p.port >= 1 && p.port <= 65535)) throw new Error(`service ${name}: invalid port ${p.port}`);
    for (const route of r.service.routes ?? []) {
      const which = `service ${name}: route ${route.route ?? ''} rule ${route.rule ?? 0}`;
      const backends = route.backends ?? [];
      if (route.redirect) {
        if (![301, 302, 303, 307, 308].includes(route.redirect.statusCode ?? 302)) throw new Error(`${which}: redirect status ${route.redirect.statusCode} is not 301, 302, 303, 307 or 308`);
      } else if (backends.length === 0 && !(route.directStatus && route.directStatus >= 200 && route.directStatus <= 599)) {
        throw new Error(`${which} has neither backends nor a direct response status`);
      }
      for (const b of backends) {
        if (!b.invalid && (!b.hostname || !b.namespace || !(b.port && b.port >= 1 && b.port <= 65535))) throw new Error(`${which}: backend without a hostname, namespace or valid port`);
        if (!(b.weight && b.weight > 0)) throw new Error(`${which}: backend ${b.hostname ?? ''} has weight 0`);
      }
      const f = route.fault;
      if (f) {
        if (f.abortStatus && !f.abortGrpc && !(f.abortStatus >= 200 && f.abortStatus <= 599)) throw new Error(`${which}: fault abort status ${f.abortStatus} is not within 200–599`);
        for (const p of [f.delayPercent ?? 0, f.abortPercent ?? 0]) if (!(p >= 0 && p <= 100)) throw new Error(`${which}: fault percentage ${p} is not within 0–100`);
      }
      for (const m of route.mirrors ?? []) {
        if (!m.backend?.hostname || !m.backend.namespace || !(m.backend.port && m.backend.port >= 1 && m.backend.port <= 65535)) throw new Error(`${which}: mirror without a hostname, namespace or valid port`);
        const percent = m.percent ?? 0;
        if (!(percent >= 0 && percent <= 100)) throw new Error(`${which}: mirror percent ${percent} is not within 0–100`);
      }
    }
    for (const t of r.service.tcpRoutes ?? []) {
      const which = `service ${name}: tcp route ${t.route ?? ''} rule ${t.rule ?? 0}`;
      if (!(t.port && t.port >= 1 && t.port <= 65535)) throw new Error(`${which}: invalid port ${t.port}`);
      if (!t.backends?.length) throw new Error(`${which} has no backends`);
      for (const b of t.backends) {
        if (!b.hostname || !b.namespace || !(b.port && b.port >= 1 && b.port <= 65535)) throw new Error(`${which}: backend without a hostname, namespace or valid port`);
        if (!(b.weight && b.weight > 0)) throw new Error(`${which}: backend ${b.hostname} has weight 0`);
      }
    }
  } else if (r.policy) {
    if (!r.policy.name || !r.policy.namespace) throw new Error(`policy ${name} has no name or namespace`);
  } else if (r.destination) {
    if (!r.destination.hostname || !r.destination.namespace) throw new Error(`destination ${name} has no hostname or namespace`);
    for (const c of r.destination.clusters ?? []) {
      if (!(c.port && c.port >= 1 && c.port <= 65535)) throw new Error(`destination ${name}: cluster with invalid port ${c.port}`);
      const hash = c.loadBalancer?.consistentHash;
      if (hash && !hash.httpHeaderName && !hash.httpCookie?.name && !hash.useSourceIp && !hash.httpQueryParameterName) {
        throw new Error(`destination ${name}: port ${c.port} subset ${JSON.stringify(c.subset ?? '')}: consistent hash without a key`);
      }
      const od = c.outlierDetection;
      if (od && !((od.intervalMs ?? 0) > 0 && (od.baseEjectionTimeMs ?? 0) > 0)) throw new Error(`destination ${name}: outlier detection needs an interval and a base ejection time`);
    }
  } else if (r.requestAuthentication) {
    const ra = r.requestAuthentication;
    if (!ra.name || !ra.namespace) throw new Error(`request authentication ${name} has no name or namespace`);
    for (const [i, rule] of (ra.rules ?? []).entries()) {
      if (!rule.issuer && !rule.jwks && !rule.jwksUri) throw new Error(`request authentication ${name}: rule ${i} has no issuer, jwks or jwksUri`);
      if (rule.jwksUri && !/^https?:\/\//.test(rule.jwksUri)) throw new Error(`request authentication ${name}: rule ${i}: jwksUri ${JSON.stringify(rule.jwksUri)} is not http(s)`);
      for (const h of rule.fromHeaders ?? []) if (!h.name) throw new Error(`request authentication ${name}: rule ${i}: a fromHeaders entry without a name`);
      for (const c of rule.outputClaimToHeaders ?? []) if (!c.header || !c.claim) throw new Error(`request authentication ${name}: rule ${i}: an outputClaimToHeaders entry without a header or claim`);
    }
  } else {
    throw new Error(`resource ${name} is neither a waypoint, a service, a policy, a destination nor a request authentication`);
  }
}

// protobufjs's object form omits default values; fill them so the rest of the waypoint can rely on the types.
function normalizeWaypointResource(r: WaypointResource): WaypointResource {
  if (r.waypoint) {
    return {
      waypoint: {
        ...r.waypoint,
        trustDomain: r.waypoint.trustDomain ?? '',
        trafficType: r.waypoint.trafficType ?? 'SERVICE',
        policies: r.waypoint.policies ?? [],
        requestAuthentications: r.waypoint.requestAuthentications ?? [],
      },
    };
  }
  if (r.service) {
    return {
      service: {
        ...r.service,
        name: r.service.name ?? '',
        ports: (r.service.ports ?? []).map((p) => ({ port: p.port, name: p.name ?? '', protocol: p.protocol ?? 'UNSPECIFIED' })),
        policies: r.service.policies ?? [],
        routes: (r.service.routes ?? []).map(normalizeRoute),
        ...(r.service.tcpRoutes?.length
          ? { tcpRoutes: r.service.tcpRoutes.map((t) => ({ route: t.route ?? '', rule: t.rule ?? 0, port: t.port ?? 0, backends: (t.backends ?? []).map(normalizeBackend) })) }
          : {}),
      },
    };
  }
  if (r.destination) return { destination: normalizeDestination(r.destination) };
  if (r.requestAuthentication) {
    const ra = r.requestAuthentication;
    return {
      requestAuthentication: {
        name: ra.name,
        namespace: ra.namespace,
        rules: (ra.rules ?? []).map((x) => ({
          issuer: x.issuer ?? '',
          audiences: x.audiences ?? [],
          jwksUri: x.jwksUri ?? '',
          jwks: x.jwks ?? '',
          fromHeaders: (x.fromHeaders ?? []).map((h) => ({ name: h.name ?? '', prefix: h.prefix ?? '' })),
          fromParams: x.fromParams ?? [],
          fromCookies: x.fromCookies ?? [],
          outputPayloadToHeader: x.outputPayloadToHeader ?? '',
          forwardOriginalToken: x.forwardOriginalToken ?? false,
          outputClaimToHeaders: (x.outputClaimToHeaders ?? []).map((c) => ({ header: c.header ?? '', claim: c.claim ?? '' })),
          timeoutMs: x.timeoutMs ?? 0,
          spaceDelimitedClaims: x.spaceDelimitedClaims ?? [],
        })),
      },
    };
  }
  const p = r.policy!;
  return { policy: { name: p.name, namespace: p.namespace, action: p.action ?? 'ALLOW', rules: p.rules ?? [], dryRun: p.dryRun ?? false } };
}

function normalizeRoute(r: WaypointRoute): WaypointRoute {
  const m = r.match;
  return {
    route: r.route ?? '',
    rule: r.rule ?? 0,
    port: r.port ?? 0,
    ...(m
      ? {
          match: {
            ...(m.path ? { path: { type: m.path.type ?? 'PREFIX', value: m.path.value ?? '', ...(m.path.ignoreCase ? { ignoreCase: true } : {}) } } : {}),
            headers: (m.headers ?? []).map((h) => normalizeValueMatch(h, (h.name ?? '').toLowerCase())),
            queryParams: (m.queryParams ?? []).map((h) => normalizeValueMatch(h, h.name ?? '')),
            method: m.method ?? '',
          },
        }
      : {}),
    backends: (r.backends ?? []).map(normalizeBackend),
    directStatus: r.directStatus ?? 0,
    ...(r.directBody ? { directBody: r.directBody } : {}),
    name: r.name || `${(r.route ?? '').replace('/', '.')}.${r.rule ?? 0}`,
    ...(r.redirect
      ? {
          redirect: {
            scheme: r.redirect.scheme ?? '',
            hostname: r.redirect.hostname ?? '',
            port: r.redirect.port ?? 0,
            ...(r.redirect.path ? { path: normalizePathModifier(r.redirect.path) } : {}),
            statusCode: r.redirect.statusCode ?? 302,
          },
        }
      : {}),
    ...(r.rewrite ? { rewrite: { hostname: r.rewrite.hostname ?? '', ...(r.rewrite.path ? { path: normalizePathModifier(r.rewrite.path) } : {}) } } : {}),
    timeoutMs: r.timeoutMs ?? 0,
    ...(r.retry
      ? {
          retry: {
            attempts: r.retry.attempts ?? 0,
            codes: r.retry.codes ?? [],
            backoffMs: r.retry.backoffMs ?? 0,
            perTryTimeoutMs: r.retry.perTryTimeoutMs ?? 0,
            ...(r.retry.conditions?.length ? { conditions: r.retry.conditions } : {}),
          },
        }
      : {}),
    ...(r.mirrors?.length ? { mirrors: r.mirrors.map((m) => ({ backend: normalizeBackend(m.backend ?? ({} as WaypointRouteBackend)), percent: m.percent ?? 0 })) } : {}),
    ...(r.requestHeaders ? { requestHeaders: normalizeHeaderModifier(r.requestHeaders) } : {}),
    ...(r.responseHeaders ? { responseHeaders: normalizeHeaderModifier(r.responseHeaders) } : {}),
    ...(r.fault
      ? {
          fault: {
            delayMs: r.fault.delayMs ?? 0,
            delayPercent: r.fault.delayPercent ?? 0,
            abortStatus: r.fault.abortStatus ?? 0,
            abortPercent: r.fault.abortPercent ?? 0,
            abortGrpc: r.fault.abortGrpc ?? false,
            abortGrpcStatus: r.fault.abortGrpcStatus ?? 0,
          },
        }
      : {}),
    ...(r.cors
      ? {
          cors: {
            allowOrigins: (r.cors.allowOrigins ?? []).map((m) => normalizeValueMatch(m, '')),
            allowMethods: r.cors.allowMethods ?? '',
            allowHeaders: r.cors.allowHeaders ?? '',
            exposeHeaders: r.cors.exposeHeaders ?? '',
            maxAge: r.cors.maxAge ?? '',
            allowCredentials: r.cors.allowCredentials ?? false,
            forwardUnmatchedPreflights: r.cors.forwardUnmatchedPreflights ?? false,
          },
        }
      : {}),
  };
}

function normalizeValueMatch(m: WaypointValueMatch, name: string): WaypointValueMatch {
  return { name, value: m.value ?? '', regex: m.regex ?? false, ...(m.prefix ? { prefix: true } : {}), ...(m.invert ? { invert: true } : {}) };
}

function normalizeBackend(b: WaypointRouteBackend): WaypointRouteBackend {
  return {
    hostname: b.hostname ?? '',
    namespace: b.namespace ?? '',
    port: b.port ?? 0,
    weight: b.weight ?? 0,
    invalid: b.invalid ?? false,
    ...(b.subset ? { subset: b.subset } : {}),
    ...(b.requestHeaders ? { requestHeaders: normalizeHeaderModifier(b.requestHeaders) } : {}),
  };
}

function normalizeHeaderModifier(m: WaypointHeaderModifier): WaypointHeaderModifier {
  const header = (h: { name: string; value: string }) => ({ name: (h.name ?? '').toLowerCase(), value: h.value ?? '' });
  return { set: (m.set ?? []).map(header), add: (m.add ?? []).map(header), remove: (m.remove ?? []).map((n) => n.toLowerCase()) };
}

function normalizePathModifier(m: WaypointPathModifier): WaypointPathModifier {
  return { type: m.type ?? 'REPLACE_FULL_PATH', value: m.value ?? '' };
}

function normalizeDestination(d: WaypointDestination): WaypointDestination {
  return {
    hostname: d.hostname,
    namespace: d.namespace,
    rule: d.rule ?? '',
    clusters: (d.clusters ?? []).map((c): WaypointCluster => {
      const out: WaypointCluster = { port: c.port, subset: c.subset ?? '', workloads: c.workloads ?? [] };
      const lb = c.loadBalancer;
      if (lb) {
        out.loadBalancer = { simple: lb.simple ?? 'LEAST_REQUEST' };
        const h = lb.consistentHash;
        if (h) {
          out.loadBalancer.consistentHash = { maglev: h.maglev ?? false, tableSize: Number(h.tableSize ?? 0) || 1024 };
          if (h.httpHeaderName) out.loadBalancer.consistentHash.httpHeaderName = h.httpHeaderName.toLowerCase();
          else if (h.httpCookie?.name) out.loadBalancer.consistentHash.httpCookie = { name: h.httpCookie.name, path: h.httpCookie.path ?? '', ttlMs: h.httpCookie.ttlMs ?? 0 };
          else if (h.useSourceIp) out.loadBalancer.consistentHash.useSourceIp = true;
          else out.loadBalancer.consistentHash.httpQueryParameterName = h.httpQueryParameterName ?? '';
        }
      }
      const p = c.connectionPool;
      if (p) {
        out.connectionPool = {
          maxConnections: p.maxConnections ?? 0,
          connectTimeoutMs: p.connectTimeoutMs ?? 0,
          maxPendingRequests: p.maxPendingRequests ?? 0,
          maxRequests: p.maxRequests ?? 0,
          maxRequestsPerConnection: p.maxRequestsPerConnection ?? 0,
          maxRetries: p.maxRetries ?? 0,
          idleTimeoutMs: p.idleTimeoutMs ?? 0,
          h2Upgrade: p.h2Upgrade ?? false,
          useClientProtocol: p.useClientProtocol ?? false,
        };
      }
      const od = c.outlierDetection;
      if (od) {
        out.outlierDetection = {
          consecutiveErrors: od.consecutiveErrors ?? 0,
          consecutiveGatewayErrors: od.consecutiveGatewayErrors ?? 0,
          intervalMs: od.intervalMs,
          baseEjectionTimeMs: od.baseEjectionTimeMs,
          maxEjectionPercent: od.maxEjectionPercent ?? 0,
          minHealthPercent: od.minHealthPercent ?? 0,
        };
      }
      const t = c.tls;
      if (t) {
        out.tls = {
          mode: t.mode ?? 'SIMPLE',
          sni: t.sni ?? '',
          subjectAltNames: t.subjectAltNames ?? [],
          insecureSkipVerify: t.insecureSkipVerify ?? false,
          caCertificates: t.caCertificates ?? '',
          clientCertificate: t.clientCertificate ?? '',
          privateKey: t.privateKey ?? '',
        };
      }
      return out;
    }),
  };
}
