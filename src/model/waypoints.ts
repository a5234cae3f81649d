// Waypoints as istiod sees them: which Gateways are waypoints and when one is usable, which Services and workloads
// use which waypoint (`istio.io/use-waypoint`), the Gateway status istiod writes, and the waypoint's own L7 view of
// an AuthorizationPolicy with targetRefs. Sources: istio/istio pilot/pkg/serviceregistry/ambient/{waypoints.go,
// status.go,policies.go}, pilot/pkg/config/kube/gateway/conversion.go (reportGatewayStatus) and
// gatewaycommon/{conversion.go,gatewayclass.go}. Pure functions; the AmbientIndex keeps them incremental.
import type { AuthorizationPolicy, Condition, Gateway, Namespace, PolicyTargetReference, RequestAuthentication, Service as KubeService, ServiceEntry } from '../api/types.js';
import { parseDuration, parseGoBool } from '../common/settings.js';
import type { GatewayAddress, WeightedWaypoint, WaypointPolicy, WaypointRequestAuthentication, WaypointRoute, WaypointService, WaypointTcpRoute, WaypointTrafficType } from '../xds/types.js';
import { parseProtocol, portProtocol } from './services.js';
import type { Labels } from './store.js';
import { selectorMatches } from './store.js';

export const WAYPOINT_CLASS = 'istio-waypoint';
export const MESH_CONTROLLER = 'istio.io/mesh-controller';
export const MANAGED_LABEL = 'gateway.istio.io/managed';
export const MANAGED_MESH_VALUE = 'istio.io-mesh-controller';
export const GATEWAY_NAME_LABEL = 'gateway.networking.k8s.io/gateway-name';
export const GATEWAY_CLASS_LABEL = 'gateway.networking.k8s.io/gateway-class-name';
export const USE_WAYPOINT_LABEL = 'istio.io/use-waypoint';
export const USE_WAYPOINT_NAMESPACE_LABEL = 'istio.io/use-waypoint-namespace';
export const WAYPOINT_FOR_LABEL = 'istio.io/waypoint-for';
export const USE_WAYPOINT_CANARY_LABEL = 'istio.io/use-waypoint-canary';
export const USE_WAYPOINT_CANARY_NAMESPACE_LABEL = 'istio.io/use-waypoint-canary-namespace';
export const USE_WAYPOINT_CANARY_WEIGHT_ANNOTATION = 'istio.io/use-waypoint-canary-weight';
export const INGRESS_USE_WAYPOINT_LABEL = 'istio.io/ingress-use-waypoint';
export const NAME_OVERRIDE_ANNOTATION = 'gateway.istio.io/name-override';
export const SERVICE_ACCOUNT_ANNOTATION = 'gateway.istio.io/service-account';
export const HBONE_PORT = 15008;
/** Service condition istiod writes on objects that use (or fail to use) a waypoint. */
export const WAYPOINT_BOUND = 'istio.io/WaypointBound';
/** ServiceEntry condition istiod writes when an entry that only works through a waypoint has none. */
export const WAYPOINT_MISSING = 'istio.io/WaypointMissing';
/** AuthorizationPolicy condition for policies with targetRefs. */
export const WAYPOINT_ACCEPTED = 'WaypointAccepted';

/** `service`, `workload`, `all` or `none`; any other value is kept as written and binds nothing, as in istiod. */
export type TrafficType = string;

/** A Gateway of class istio-waypoint, as far as the model knows it. */
export interface WaypointGateway {
  namespace: string;
  name: string;
  /** `namespace/name`. */
  key: string;
  /** The Deployment, Service and ServiceAccount istiod creates (`gateway.istio.io/name-override`, `…/service-account`). */
  deploymentName: string;
  serviceAccount: string;
  /** `<service>.<namespace>.svc.<domain>`: the address Services and workloads using it are given. */
  hostname: string;
  trafficType: TrafficType;
  /** The HBONE listener's allowedRoutes.namespaces (Same unless set). */
  allowedFrom: 'All' | 'Same' | 'Selector';
  allowedSelector?: Labels;
  /**
   * Usable by Services and workloads: istiod's "status.addresses is set", which happens once the Service exists and a
   * pod is ready and is never undone. A waypoint whose pods all fail stays bound, so traffic to its Services fails
   * closed rather than bypassing its policies.
   */
  ready: boolean;
  /** Ready pods right now (the Programmed condition). */
  instances: number;
  /** The Service's cluster IPs, once it exists. */
  vips: string[];
}

/** Why an object is not bound to the waypoint it names (istiod's StatusMessage). */
export interface BindingError {
  reason: string;
  message: string;
}

export interface Binding {
  /** `namespace/name` of the waypoint the object (or its namespace) names, bound or not. */
  referenced?: string;
  waypoint?: WaypointGateway;
  error?: BindingError;
  /** A Service's or ServiceEntry's canary waypoint, usable: it takes `weight` % of new connections. */
  canary?: { waypoint: WaypointGateway; weight: number };
  /** `namespace/name` of the canary waypoint named, usable or not. */
  canaryReferenced?: string;
  /** Why the canary named is not used (the primary still is). */
  canaryError?: BindingError;
  /** `istio.io/ingress-use-waypoint` of the object, else of its namespace: set at all, and true. */
  ingress?: { present: boolean; use: boolean };
}

export function isWaypointGateway(g: Gateway): boolean {
  return g.spec.gatewayClassName === WAYPOINT_CLASS;
}

/** Pods and Services that are a waypoint's own instances never use a waypoint. */
export function isWaypointInstance(labels: Labels | undefined): boolean {
  return labels?.[MANAGED_LABEL] === MANAGED_MESH_VALUE;
}

/** istiod's names: the Deployment/Service `gateway.istio.io/name-override`, the ServiceAccount `…/service-account`, else the Gateway's. */
export function waypointNames(g: Gateway): { deploymentName: string; serviceAccount: string } {
  const a = g.metadata.annotations ?? {};
  return { deploymentName: a[NAME_OVERRIDE_ANNOTATION] || g.metadata.name, serviceAccount: a[SERVICE_ACCOUNT_ANNOTATION] || g.metadata.name };
}

/** `istio.io/waypoint-for` of the Gateway, else of its GatewayClass, else `service`. */
export function waypointTrafficType(g: Gateway, classLabels: Labels | undefined): TrafficType {
  return g.metadata.labels?.[WAYPOINT_FOR_LABEL] ?? classLabels?.[WAYPOINT_FOR_LABEL] ?? 'service';
}

/**
 * The waypoint a Gateway stands for, with its readiness judged from its Service, its ready pod count and whether it
 * has been reported ready before (the addresses already in its status).
 */
export function waypointOf(g: Gateway, svc: KubeService | undefined, readyPods: number, classLabels: Labels | undefined, domainSuffix: string): WaypointGateway {
  const reported = (g.status?.addresses?.length ?? 0) > 0;
  const ns = g.metadata.namespace ?? '';
  const names = waypointNames(g);
  const hbone = g.spec.listeners.find((l) => l.protocol === 'HBONE' && l.port === HBONE_PORT);
  const from = hbone?.allowedRoutes?.namespaces?.from ?? 'Same';
  const vips = svc ? (svc.spec.clusterIPs?.length ? svc.spec.clusterIPs : [svc.spec.clusterIP ?? '']).filter((ip) => ip && ip !== 'None') : [];
  const w: WaypointGateway = {
    namespace: ns,
    name: g.metadata.name,
    key: `${ns}/${g.metadata.name}`,
    deploymentName: names.deploymentName,
    serviceAccount: names.serviceAccount,
    hostname: `${names.deploymentName}.${ns}.svc.${domainSuffix}`,
    trafficType: waypointTrafficType(g, classLabels),
    allowedFrom: from,
    ready: svc !== undefined && vips.length > 0 && (readyPods > 0 || reported),
    instances: readyPods,
    vips,
  };
  // A Selector without a selector admits no namespace (istiod: an empty selector there matches nothing).
  const selector = hbone?.allowedRoutes?.namespaces?.selector?.matchLabels;
  if (from === 'Selector' && selector !== undefined) w.allowedSelector = selector;
  return w;
}

/** The address ztunnel sends traffic for a bound Service or workload to (hostname form, as istiod prefers). */
export function waypointAddress(w: WaypointGateway): GatewayAddress {
  return { hostname: { namespace: w.namespace, hostname: w.hostname }, hboneMtlsPort: HBONE_PORT };
}

/** `istio.io/use-waypoint` (+ `-namespace`) of one object: a waypoint key, an explicit opt-out, or nothing. */
export function useWaypointOf(labels: Labels | undefined, defaultNamespace: string): { key: string } | 'none' | undefined {
  const name = labels?.[USE_WAYPOINT_LABEL];
  if (name === undefined) return undefined;
  // Istio reserves "none": a waypoint with that name can never be used.
  if (name === 'none') return 'none';
  return { key: `${labels?.[USE_WAYPOINT_NAMESPACE_LABEL] ?? defaultNamespace}/${name}` };
}

function allowsFrom(w: WaypointGateway, namespace: string, nsLabels: Labels | undefined): boolean {
  if (w.allowedFrom === 'All') return true;
  if (w.allowedFrom === 'Selector') return w.allowedSelector !== undefined && selectorMatches(w.allowedSelector, nsLabels ?? {});
  return w.namespace === namespace;
}

/**
 * istiod's fetchWaypointForService / fetchWaypointForWorkload: the object's own label beats its namespace's, `none`
 * opts out, the waypoint must be ready, allow attachment from the object's namespace and carry the traffic type.
 * A workload that only inherits a service-only waypoint from its namespace is silently unbound.
 */
export function resolveBinding(
  target: 'service' | 'workload',
  objectLabels: Labels | undefined,
  namespace: string,
  ns: Namespace | undefined,
  lookup: (key: string) => WaypointGateway | undefined,
): Binding {
  if (isWaypointInstance(objectLabels)) return {};
  const own = useWaypointOf(objectLabels, namespace);
  if (own === 'none') return {};
  const fromNamespace = own === undefined;
  const ref = own ?? useWaypointOf(ns?.metadata.labels, namespace);
  if (ref === undefined || ref === 'none') return {};
  const w = lookup(ref.key);
  if (w === undefined || !w.ready) {
    return { referenced: ref.key, error: { reason: 'WaypointIsNotReady', message: `waypoint "${ref.key}" is not ready` } };
  }
  if (!allowsFrom(w, namespace, ns?.metadata.labels)) {
    return {
      referenced: ref.key,
      error: { reason: 'AttachmentDenied', message: `we are not permitted to attach to waypoint "${ref.key}" (missing allowedRoutes?)` },
    };
  }
  if (w.trafficType !== target && w.trafficType !== 'all') {
    if (target === 'workload' && fromNamespace) return { referenced: ref.key };
    return {
      referenced: ref.key,
      error: { reason: 'UnsupportedTrafficType', message: `attempting to bind to traffic type "${target}" which the waypoint "${ref.key}" does not support` },
    };
  }
  return { referenced: ref.key, waypoint: w };
}

/**
 * istiod's binding of a Service or ServiceEntry (fetchWaypointForService, buildWeightedWaypoints,
 * ingressUseWaypointFromLabels): the primary waypoint as resolveBinding finds it; then, once that is bound, a canary
 * named by `istio.io/use-waypoint-canary` (+ `-namespace`) with `istio.io/use-waypoint-canary-weight` (an integer
 * 0–100, default 0), read from the object or, when the object names no waypoint itself, from its namespace. A canary
 * that is the primary, has a bad weight, or could not be a primary itself is not used and says why.
 */
export function resolveServiceBinding(
  meta: { labels?: Labels | undefined; annotations?: Labels | undefined },
  namespace: string,
  ns: Namespace | undefined,
  lookup: (key: string) => WaypointGateway | undefined,
): Binding {
  const b = resolveBinding('service', meta.labels, namespace, ns, lookup);
  if (b.waypoint === undefined || b.error !== undefined) return b;
  const ingressValue = meta.labels?.[INGRESS_USE_WAYPOINT_LABEL] ?? ns?.metadata.labels?.[INGRESS_USE_WAYPOINT_LABEL];
  if (ingressValue !== undefined) b.ingress = { present: true, use: parseGoBool(ingressValue) === true };
  // The namespace's canary applies only to objects inheriting the namespace's primary.
  const fromNamespace = typeof useWaypointOf(meta.labels, namespace) !== 'object';
  const labels = meta.labels?.[USE_WAYPOINT_CANARY_LABEL] === undefined && fromNamespace && ns?.metadata.labels?.[USE_WAYPOINT_CANARY_LABEL] !== undefined ? ns.metadata.labels : meta.labels;
  const name = labels?.[USE_WAYPOINT_CANARY_LABEL];
  if (name === undefined || name === '' || name === 'none') return b;
  const key = `${labels?.[USE_WAYPOINT_CANARY_NAMESPACE_LABEL] ?? namespace}/${name}`;
  b.canaryReferenced = key;
  if (key === b.waypoint.key) {
    b.canaryError = { reason: 'CanarySameAsPrimary', message: `canary waypoint "${key}" must differ from the primary waypoint` };
    return b;
  }
  const rawWeight = meta.annotations?.[USE_WAYPOINT_CANARY_WEIGHT_ANNOTATION] ?? (fromNamespace ? ns?.metadata.annotations?.[USE_WAYPOINT_CANARY_WEIGHT_ANNOTATION] : undefined);
  // strconv.Atoi: optional sign, decimal digits.
  const weight = rawWeight === undefined ? 0 : /^[+-]?\d+$/.test(rawWeight) ? Number(rawWeight) : NaN;
  if (!(weight >= 0 && weight <= 100)) {
    b.canaryError = { reason: 'CanaryInvalidWeight', message: `canary waypoint "${key}" has an invalid weight; must be an integer in [0,100]` };
    return b;
  }
  const w = lookup(key);
  if (w === undefined || !w.ready) b.canaryError = { reason: 'WaypointIsNotReady', message: `waypoint "${key}" is not ready` };
  else if (!allowsFrom(w, namespace, ns?.metadata.labels)) {
    b.canaryError = { reason: 'AttachmentDenied', message: `we are not permitted to attach to waypoint "${key}" (missing allowedRoutes?)` };
  } else if (w.trafficType !== 'service' && w.trafficType !== 'all') {
    b.canaryError = { reason: 'UnsupportedTrafficType', message: `attempting to bind to traffic type "service" which the waypoint "${key}" does not support` };
  } else b.canary = { waypoint: w, weight };
  return b;
}

/** The waypoints of a bound Service and their shares of connections (istiod: the primary's is 100 − the canary's). */
export function weightedWaypoints(b: Binding): WeightedWaypoint[] | undefined {
  if (b.waypoint === undefined || b.canary === undefined) return undefined;
  return [
    { destination: waypointAddress(b.waypoint), weight: 100 - b.canary.weight },
    { destination: waypointAddress(b.canary.waypoint), weight: b.canary.weight },
  ];
}

/** The `istio.io/WaypointBound` condition of a Service (undefined: no condition, none was asked for). */
export function waypointBoundCondition(b: Binding, generation: number | undefined): Condition | undefined {
  let c: Condition | undefined;
  if (b.waypoint) {
    let message = `Successfully attached to waypoint ${b.waypoint.key}`;
    if (b.ingress?.use) message += '. Ingress traffic will traverse the waypoint';
    else if (b.ingress?.present) message += '. Ingress traffic is not using the waypoint, set the istio.io/ingress-use-waypoint label to true if desired.';
    // The primary is bound; a canary that is not used does not change that.
    if (b.canaryError) message += `. Canary waypoint not attached: ${b.canaryError.message}`;
    c = { type: WAYPOINT_BOUND, status: 'True', reason: 'WaypointAccepted', message };
  } else if (b.error) c = { type: WAYPOINT_BOUND, status: 'False', reason: b.error.reason, message: b.error.message };
  if (c && generation !== undefined) c.observedGeneration = generation;
  return c;
}

/**
 * istiod's `istio.io/WaypointMissing` on a ServiceEntry that is not bound to a waypoint but needs one: a wildcard host
 * (NoWaypointForWildcardService), or the `istio.io/connect-strategy: RACE_FIRST_TCP_CONNECT` annotation
 * (NoWaypointForRacingConnectStrategy, which wins when both apply). Undefined: no such condition.
 */
export function waypointMissingCondition(se: ServiceEntry, b: Binding): Condition | undefined {
  if (b.waypoint !== undefined) return undefined;
  let c: Condition | undefined;
  if ((se.spec.hosts ?? []).some((h) => h.startsWith('*'))) {
    c = { type: WAYPOINT_MISSING, status: 'True', reason: 'NoWaypointForWildcardService', message: 'ServiceEntry will not apply until it is bound to a valid waypoint.' };
  }
  if (se.metadata.annotations?.['istio.io/connect-strategy']?.toUpperCase() === 'RACE_FIRST_TCP_CONNECT') {
    c = {
      type: WAYPOINT_MISSING,
      status: 'True',
      reason: 'NoWaypointForRacingConnectStrategy',
      message: 'ServiceEntry has a non-default connect strategy but no waypoint bound. A waypoint is required for connect strategies to take effect for ambient clients.',
    };
  }
  if (c && se.metadata.generation !== undefined) c.observedGeneration = se.metadata.generation;
  return c;
}

// ---- Gateway status ------------------------------------------------------------------------------------------------

export interface ListenerStatus {
  name: string;
  attachedRoutes: number;
  conditions: Condition[];
  supportedKinds: { group: string; kind: string }[];
}

export interface GatewayStatus {
  addresses?: { type: 'IPAddress' | 'Hostname'; value: string }[];
  conditions: Condition[];
  listeners: ListenerStatus[];
}

const NO_ERRORS = 'No errors found';

function humanJoin(items: string[]): string {
  if (items.length <= 1) return items.join('');
  if (items.length === 2) return `${items[0]} and ${items[1]}`;
  return `${items.slice(0, -1).join(', ')}, and ${items[items.length - 1]}`;
}

/**
 * What istiod writes on a waypoint Gateway (reportGatewayStatus): Accepted, Programmed with the Service it is
 * assigned to once a pod is ready, ResolvedRefs; per listener Accepted (UnsupportedProtocol unless 15008/HBONE, the
 * listener is kept anyway), Conflicted, Programmed, ResolvedRefs; addresses (cluster IP and hostname) once ready.
 * Conditions carry no lastTransitionTime: the caller stamps it when a status changes.
 */
export function waypointGatewayStatus(g: Gateway, w: WaypointGateway): GatewayStatus {
  const gen = g.metadata.generation;
  const cond = (type: string, status: boolean, reason: string, message: string): Condition => {
    const c: Condition = { type, status: status ? 'True' : 'False', reason, message };
    if (gen !== undefined) c.observedGeneration = gen;
    return c;
  };
  const ports = [...new Set(g.spec.listeners.map((l) => l.port))].sort((a, b) => a - b);
  let programmed: Condition;
  if (w.vips.length === 0) {
    programmed = cond('Programmed', false, 'AddressNotUsable', `Failed to assign to any requested addresses: hostname "${w.hostname}" not found`);
  } else if (w.instances === 0) {
    programmed = cond('Programmed', false, 'AddressNotAssigned', `Failed to assign to any requested addresses: no instances found for hostname "${w.hostname}"`);
  } else {
    programmed = cond('Programmed', true, 'Programmed', `Resource programmed, assigned to service(s) ${humanJoin(ports.map((p) => `${w.hostname}:${p}`))}`);
  }
  const status: GatewayStatus = {
    conditions: [cond('Accepted', true, 'Accepted', 'Resource accepted'), programmed, cond('ResolvedRefs', true, 'ResolvedRefs', 'All references resolved')],
    listeners: g.spec.listeners.map((l) => {
      const valid = l.port === HBONE_PORT && l.protocol === 'HBONE';
      return {
        name: l.name,
        attachedRoutes: 0,
        conditions: [
          valid
            ? cond('Accepted', true, 'Accepted', NO_ERRORS)
            : cond('Accepted', false, 'UnsupportedProtocol', 'Expected a single listener on port 15008 with protocol "HBONE"'),
          cond('Conflicted', false, 'NoConflicts', NO_ERRORS),
          cond('Programmed', true, 'Programmed', NO_ERRORS),
          cond('ResolvedRefs', true, 'ResolvedRefs', NO_ERRORS),
        ],
        // An HBONE listener takes no routes; any other is reported with what an HTTP listener would take.
        supportedKinds: valid
          ? []
          : [
              { group: 'gateway.networking.k8s.io', kind: 'HTTPRoute' },
              { group: 'gateway.networking.k8s.io', kind: 'GRPCRoute' },
            ],
      };
    }),
  };
  // Not reported until ready, as istiod does; a waypoint's class reports both the IP and the hostname.
  if (w.ready) status.addresses = [...w.vips.map((value) => ({ type: 'IPAddress' as const, value })), { type: 'Hostname', value: w.hostname }];
  return status;
}

/** The built-in GatewayClass istiod creates for waypoints, and the status it writes on it. */
export function waypointGatewayClass(): { spec: { controllerName: string; description: string }; condition: Condition } {
  return {
    spec: { controllerName: MESH_CONTROLLER, description: 'The default Istio waypoint GatewayClass' },
    condition: { type: 'Accepted', status: 'True', reason: 'Accepted', message: 'Handled by Istio controller' },
  };
}

// ---- AuthorizationPolicy with targetRefs -----------------------------------------------------------------------------

export function targetRefsOf(p: { spec: { targetRef?: PolicyTargetReference; targetRefs?: PolicyTargetReference[] } }): PolicyTargetReference[] {
  if (p.spec.targetRefs?.length) return p.spec.targetRefs;
  return p.spec.targetRef ? [p.spec.targetRef] : [];
}

/**
 * The store keys of the objects a targetRefs policy names (`Service/ns/name`, `Gateway/ns/name`,
 * `GatewayClass//name`): what its WaypointAccepted condition and the waypoint resources listing it depend on. Targets
 * of other kinds depend on nothing and are left out. A target's `namespace` (validation admits only "") is honoured
 * by the status and ignored by the waypoint configuration, so a Service or Gateway is listed under both.
 */
export function policyTargetKeys(p: AuthorizationPolicy | RequestAuthentication): string[] {
  const ns = p.metadata.namespace ?? '';
  const out = new Set<string>();
  for (const t of targetRefsOf(p)) {
    if (isGatewayTarget(t, 'GatewayClass')) {
      out.add(`GatewayClass//${t.name}`);
      continue;
    }
    const kind = isCoreService(t) ? 'Service' : isServiceEntryTarget(t) ? 'ServiceEntry' : isGatewayTarget(t, 'Gateway') ? 'Gateway' : undefined;
    if (kind === undefined) continue;
    out.add(`${kind}/${t.namespace || ns}/${t.name}`);
    out.add(`${kind}/${ns}/${t.name}`);
  }
  return [...out];
}

/** `""` and `core` are the same group (istiod compares canonical groups). */
export function isCoreService(t: PolicyTargetReference): boolean {
  return t.kind === 'Service' && ((t.group ?? '') === '' || t.group === 'core');
}

/** A ServiceEntry target (waypoints only, like a Service: the policy applies on the waypoint the entry is bound to). */
export function isServiceEntryTarget(t: PolicyTargetReference): boolean {
  return t.kind === 'ServiceEntry' && t.group === 'networking.istio.io';
}

export function isGatewayTarget(t: PolicyTargetReference, kind: 'Gateway' | 'GatewayClass'): boolean {
  return t.kind === kind && t.group === 'gateway.networking.k8s.io';
}

/** A RequestAuthentication as the waypoint enforces it (istiod's jwt_authn provider per rule). */
export function toWaypointRequestAuthentication(ra: RequestAuthentication): WaypointRequestAuthentication {
  return {
    name: ra.metadata.name,
    namespace: ra.metadata.namespace ?? '',
    rules: (ra.spec.jwtRules ?? []).map((r) => ({
      issuer: r.issuer ?? '',
      audiences: r.audiences ?? [],
      jwksUri: r.jwksUri ?? '',
      jwks: r.jwks ?? '',
      fromHeaders: (r.fromHeaders ?? []).map((h) => ({ name: h.name, prefix: h.prefix ?? '' })),
      fromParams: r.fromParams ?? [],
      fromCookies: r.fromCookies ?? [],
      outputPayloadToHeader: r.outputPayloadToHeader ?? '',
      forwardOriginalToken: r.forwardOriginalToken ?? false,
      outputClaimToHeaders: r.outputClaimToHeaders ?? [],
      timeoutMs: r.timeout === undefined ? 0 : Math.round(parseDuration(r.timeout, 'timeout')),
      spaceDelimitedClaims: r.spaceDelimitedClaims ?? [],
    })),
  };
}

/** What the waypoint enforces for a policy; undefined for CUSTOM (never sent: Ambit has no ext_authz). */
export function toWaypointPolicy(p: AuthorizationPolicy): WaypointPolicy | undefined {
  const action = p.spec.action ?? 'ALLOW';
  if (action === 'CUSTOM') return undefined;
  const dryRun = p.metadata.annotations?.['istio.io/dry-run'];
  return {
    name: p.metadata.name,
    namespace: p.metadata.namespace ?? '',
    action,
    rules: p.spec.rules ?? [],
    dryRun: dryRun !== undefined && ['1', 't', 'T', 'TRUE', 'true', 'True'].includes(dryRun),
  };
}

export interface TargetBinding {
  /** `Kind.group:namespace/name` (group `core` for ""), as istiod names the ancestor. */
  ancestor: string;
  bound: boolean;
  reason: string;
  message: string;
}

/**
 * istiod's WaypointPolicyStatusCollection folded into one WaypointAccepted condition (flattenConditions): a single
 * target reports its own reason and message; several report Accepted, PartiallyInvalid or Invalid with the list of
 * targets that did not bind. CUSTOM policies are reported as not enforced (Ambit has no ext_authz provider).
 */
export function waypointAcceptedCondition(p: AuthorizationPolicy | RequestAuthentication, targets: TargetBinding[]): Condition {
  const gen = p.metadata.generation;
  const c = (status: boolean, reason: string, message: string): Condition => {
    const out: Condition = { type: WAYPOINT_ACCEPTED, status: status ? 'True' : 'False', reason, message };
    if (gen !== undefined) out.observedGeneration = gen;
    return out;
  };
  if (p.kind === 'AuthorizationPolicy' && (p.spec.action ?? 'ALLOW') === 'CUSTOM') {
    return c(false, 'UnsupportedValue', 'waypoint does not support the CUSTOM action: no extension provider (ext_authz) is available, so the policy is not enforced');
  }
  if (targets.length === 1) return c(targets[0]!.bound, targets[0]!.reason, targets[0]!.message);
  const unbound = targets.filter((t) => !t.bound).map((t) => t.ancestor);
  const any = targets.some((t) => t.bound);
  const reason = any ? (unbound.length ? 'PartiallyInvalid' : 'Accepted') : 'Invalid';
  return c(any, reason, unbound.length ? `Invalid targetRefs: ${unbound.join(', ')}` : '');
}

export function waypointService(s: KubeService, hostname: string, policies: string[], routes: WaypointRoute[], tcpRoutes: WaypointTcpRoute[] = []): WaypointService {
  return {
    name: s.metadata.name,
    namespace: s.metadata.namespace ?? '',
    hostname,
    ports: (s.spec.ports ?? []).map((p) => ({ port: p.port, name: p.name ?? '', protocol: portProtocol(p) })),
    policies,
    routes,
    ...(tcpRoutes.length > 0 ? { tcpRoutes } : {}),
  };
}

/**
 * The waypoint's view of one host of a ServiceEntry bound to it: named after the entry, with the entry's ports and
 * their declared protocols (istiod's convertPort), like the Service istiod derives for that host.
 */
export function waypointEntryService(se: ServiceEntry, hostname: string, policies: string[], routes: WaypointRoute[], tcpRoutes: WaypointTcpRoute[] = []): WaypointService {
  return {
    name: se.metadata.name,
    namespace: se.metadata.namespace ?? '',
    hostname,
    ports: (se.spec.ports ?? []).map((p) => ({ port: p.number, name: p.name ?? '', protocol: parseProtocol(p.protocol) })),
    policies,
    routes,
    ...(tcpRoutes.length > 0 ? { tcpRoutes } : {}),
  };
}

/** The traffic type a waypoint is told; a value istiod does not know takes nothing, like `none`. */
export function toWaypointTrafficType(t: TrafficType): WaypointTrafficType {
  return t === 'service' ? 'SERVICE' : t === 'workload' ? 'WORKLOAD' : t === 'all' ? 'ALL' : 'NONE';
}
