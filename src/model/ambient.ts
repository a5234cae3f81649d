// The ambient index: istiod's translation of the config store into what the proxies receive — Address and
// Authorization resources for ztunnels, waypoint resources for waypoints — plus the status istiod writes: the
// ZtunnelAccepted/WaypointAccepted conditions of AuthorizationPolicies, the status of waypoint Gateways and their
// GatewayClass, the WaypointBound condition of Services and the parents' status of HTTPRoutes and GRPCRoutes attached
// to Services (whose routes waypoints receive with the Service, after those of the VirtualServices naming it). It is incremental: each store change marks only the
// objects it can affect (via the store's label/selector indexes and the waypoint indexes below), recomputes those, and
// emits only resources whose translation actually changed.
import type { AuthorizationPolicy, Condition, PolicyTargetReference, Deployment, DestinationRule, EndpointSlice, Gateway, Kind, Namespace, Node, PeerAuthentication, Pod, RequestAuthentication, Resource, Service as KubeService, ServiceEntry, VirtualService, WorkloadEntry } from '../api/types.js';
import { DEFAULT_CLUSTER_ID, DEFAULT_TRUST_DOMAIN, ROOT_NAMESPACE, resourceKey } from '../api/types.js';
import type { Address, Authorization, PortList, Service, WaypointResource, WaypointRoute, WaypointTcpRoute, Workload } from '../xds/types.js';
import { TYPE_ADDRESS, TYPE_AUTHORIZATION, TYPE_WAYPOINT, waypointResourceName } from '../xds/types.js';
import type { ConfigStore, Labels, StoreChange } from './store.js';
import { selectorMatches } from './store.js';
import { addListener, addTo, deepEqual, deleteFrom } from './collections.js';
import { bytesToIp, ipToBytes } from '../common/ip.js';
import { convertAuthorizationPolicy } from './authorization.js';
import type { ConvertedPolicy } from './authorization.js';
import { convertPeerAuthentication, convertedPeerAuthenticationName, oldest, peerAuthenticationPolicyKeys, staticStrictPolicy, STATIC_STRICT_POLICY_NAME } from './peerauth.js';
import { buildService, serviceHostname, serviceKeyOf, workloadPortList } from './services.js';
import type { MeshOptions } from './services.js';
import { compareStrings, orderServiceRoutes, parentRefString, routesForWaypoint, serviceRoutes, translateGRPCRoute, translateHTTPRoute, type GatewayRoute, type RouteContext, type RouteParentStatus, type ServiceRoutes } from './routes.js';
import { hostMatches, serviceKeyOfHost, translateVirtualService, virtualServiceRoutes, virtualServiceContext, virtualServiceTcpRoutes, type TranslatedVirtualService, type VirtualServiceContext } from './virtualservices.js';
import { destinationRulesFor, translateDestination } from './destinationrules.js';
import { endpointSliceWorkloads, sliceServiceName, slicePodRefs } from './endpointslices.js';
import { kubeServiceWorkloadEntryPortList, serviceEntryPodPortList, serviceEntryServices, serviceEntryWorkloadEntryPortList, serviceEntryWorkloads, workloadEntryLabels, workloadEntryWorkload } from './serviceentries.js';
import { buildWorkload, nodeLocality, podSource, replicaNames, replicaSource } from './workloads.js';
import type { WorkloadSource } from './workloads.js';
import {
  GATEWAY_NAME_LABEL,
  WAYPOINT_ACCEPTED,
  WAYPOINT_BOUND,
  WAYPOINT_CLASS,
  WAYPOINT_MISSING,
  isCoreService,
  isGatewayTarget,
  isServiceEntryTarget,
  isWaypointGateway,
  policyTargetKeys,
  resolveBinding,
  targetRefsOf,
  toWaypointPolicy,
  toWaypointRequestAuthentication,
  toWaypointTrafficType,
  waypointAcceptedCondition,
  waypointAddress,
  waypointBoundCondition,
  waypointEntryService,
  waypointMissingCondition,
  waypointGatewayClass,
  waypointGatewayStatus,
  waypointOf,
  waypointService,
  weightedWaypoints,
  resolveServiceBinding,
  type Binding,
  type GatewayStatus,
  type TargetBinding,
  type WaypointGateway,
} from './waypoints.js';

export type { MeshOptions } from './services.js';

/** The waypoints that serve a bound Service: its primary and its canary, if any. */
function owningWaypoints(b: Binding | undefined): string[] {
  if (b?.waypoint === undefined) return [];
  return b.canary ? [b.waypoint.key, b.canary.waypoint.key] : [b.waypoint.key];
}

type XdsResource = Address | Authorization | WaypointResource;
/** The kinds whose targetRefs bind them to waypoints. */
type TargetingPolicy = AuthorizationPolicy | RequestAuthentication;

/** One batch of xDS changes for one type: resources whose translation changed, and names that disappeared. */
export interface AmbientChange {
  typeUrl: typeof TYPE_ADDRESS | typeof TYPE_AUTHORIZATION | typeof TYPE_WAYPOINT;
  upserted: Map<string, XdsResource>;
  removed: string[];
}

export type AmbientListener = (change: AmbientChange) => void;

/** The status the control plane writes on one object. */
export interface ObjectStatus {
  kind: Kind;
  namespace: string;
  name: string;
  /** Empty when the object has no condition of ours (any more), or was deleted; routes carry theirs per parent. */
  conditions: Condition[];
  /** HTTPRoutes and GRPCRoutes: our entries of `status.parents` (absent when none, any more). */
  parents?: RouteParentStatus[];
  /** Gateways: where the waypoint is reachable and how each listener fared. */
  addresses?: GatewayStatus['addresses'];
  listeners?: GatewayStatus['listeners'];
  /**
   * Set for objects whose status belongs to someone else (a Service's belongs to the cluster): only these condition
   * types are ours to write; everything else is left as it is.
   */
  ownedConditions?: string[];
}

export type StatusListener = (changed: ObjectStatus[]) => void;

const ZTUNNEL_ACCEPTED = 'ZtunnelAccepted';
/** Condition types this index writes per kind, in the order istiod lists them. */
const CONDITION_ORDER: Partial<Record<Kind, string[]>> = {
  AuthorizationPolicy: [ZTUNNEL_ACCEPTED, WAYPOINT_ACCEPTED],
  RequestAuthentication: [WAYPOINT_ACCEPTED],
  Gateway: ['Accepted', 'Programmed', 'ResolvedRefs'],
  GatewayClass: ['Accepted'],
  Service: [WAYPOINT_BOUND],
  ServiceEntry: [WAYPOINT_BOUND, WAYPOINT_MISSING],
};

/** Objects to recompute for one store change, by store key. */
interface Dirty {
  pods: Set<string>;
  deployments: Set<string>;
  services: Set<string>;
  endpointSlices: Set<string>;
  serviceEntries: Set<string>;
  /** Hostnames whose owner (a Kubernetes Service or the oldest ServiceEntry, per namespace) must be decided again. */
  hostnames: Set<string>;
  /** ServiceEntry store keys whose endpoint workloads must be rebuilt. */
  serviceEntryWorkloads: Set<string>;
  workloadEntries: Set<string>;
  policies: Set<string>;
  peerAuthentications: Set<string>;
  everyWorkload: boolean;
  everyPeerAuthentication: boolean;
  staticStrict: boolean;
  /** Waypoint keys (`namespace/name`) whose Gateway, Service or pods changed. */
  gateways: Set<string>;
  /** Waypoint keys whose xDS configuration must be rebuilt. */
  waypointConfigs: Set<string>;
  /** AuthorizationPolicy store keys whose WaypointAccepted condition must be recomputed. */
  policyBindings: Set<string>;
  gatewayClass: boolean;
  /** HTTPRoute and GRPCRoute store keys to translate again. */
  routes: Set<string>;
  /** VirtualService store keys to translate again. */
  virtualServices: Set<string>;
}

/** Per batch: the value each touched xDS resource had before it, to emit only real differences. */
interface Touched {
  addresses: Map<string, Address | undefined>;
  authorizations: Map<string, Authorization | undefined>;
  waypoint: Map<string, WaypointResource | undefined>;
  statuses: Set<string>;
}

/** A route parent's status without its conditions, which are kept (and time-stamped) as condition slots. */
interface RouteParentSlots {
  parentRef: RouteParentStatus['parentRef'];
  controllerName: string;
  /** The condition slots, in the order the conditions are listed. */
  slots: string[];
}

function nsOf(r: { metadata: { namespace?: string } }): string {
  return r.metadata.namespace ?? '';
}

function nonEmpty(l: Labels | undefined): l is Labels {
  if (l === undefined) return false;
  for (const _ in l) return true;
  return false;
}

export class AmbientIndex {
  readonly options: MeshOptions;
  private readonly workloads = new Map<string, Workload>(); // uid → workload
  private readonly podUids = new Map<string, string>(); // Pod store key → uid
  private readonly replicaUids = new Map<string, string[]>(); // Deployment store key → replica uids
  private readonly sliceUids = new Map<string, string[]>(); // EndpointSlice store key → uids of its non-pod endpoints
  /** Service store key → store keys of the EndpointSlices labelled with its name. */
  private readonly slicesByService = new Map<string, Set<string>>();
  /** `namespace/name` a Pod endpoint's targetRef names → store keys of the EndpointSlices (of Services) listing it. */
  private readonly slicesByPod = new Map<string, Set<string>>();
  private readonly services = new Map<string, Service>(); // ns/hostname → service
  /** ServiceEntry store key → its Services (one per host), whether or not they own their hostname. */
  private readonly entryServices = new Map<string, Service[]>();
  /** ServiceEntry store key → those of its Services that own their `namespace/hostname` and are sent. */
  private readonly entryWinners = new Map<string, Service[]>();
  /** Hostname → store keys of the ServiceEntries listing it. */
  private readonly entriesByHostname = new Map<string, Set<string>>();
  private readonly entryWorkloadUids = new Map<string, string[]>(); // ServiceEntry store key → its endpoints' uids
  private readonly workloadEntryUids = new Map<string, string>(); // WorkloadEntry store key → uid
  private readonly serviceKeys = new Map<string, string>(); // Service store key → ns/hostname
  private readonly authorizations = new Map<string, Authorization>(); // ns/name → authorization
  private readonly converted = new Map<string, ConvertedPolicy>(); // AuthorizationPolicy store key → conversion
  /** Store key → the status we write on that object: condition type (or `listener/<name>/<type>`) → condition. */
  private readonly conditions = new Map<string, Map<string, Condition>>();
  /** Gateway store key → addresses and listener statuses (conditions live in `conditions`). */
  private readonly gatewayStatuses = new Map<string, Pick<ObjectStatus, 'addresses' | 'listeners'>>();
  private readonly waypoints = new Map<string, WaypointGateway>(); // `ns/name` → Gateway of class istio-waypoint
  /**
   * Waypoint key → store keys of the objects that name it (bound or not): Services, ServiceEntries, Pods, Deployments
   * and WorkloadEntries; `<key>#canary` names it as a canary, `<ServiceEntry key>#endpoints` by an endpoint's labels.
   */
  private readonly waypointUsers = new Map<string, Set<string>>();
  private readonly usesWaypoint = new Map<string, string>(); // such a user key → the waypoint key it names
  private readonly serviceBindings = new Map<string, Binding>(); // Service or ServiceEntry store key → its binding
  /** Waypoint key → store keys of the Services and ServiceEntries it serves (as their primary or canary waypoint). */
  private readonly boundServices = new Map<string, Set<string>>();
  /**
   * Store key of a Service, ServiceEntry, Gateway or GatewayClass → store keys of the targetRefs policies (enforced by
   * waypoints) naming it, so a change of that object reaches only those policies.
   */
  private readonly policiesByTarget = new Map<string, Set<string>>();
  /** targetRefs AuthorizationPolicy store key → the keys it is filed under in `policiesByTarget`. */
  private readonly policyTargets = new Map<string, string[]>();
  /** Waypoint key → its xDS resources by name. */
  private readonly waypointConfigs = new Map<string, Map<string, WaypointResource>>();
  /**
   * Store key of a Service, ServiceEntry or Namespace → store keys of the routes (HTTPRoute, GRPCRoute) whose
   * translation read it.
   */
  private readonly routesByDependency = new Map<string, Set<string>>();
  /** Route store key → the keys it is filed under in `routesByDependency`. */
  private readonly routeDependencies = new Map<string, string[]>();
  /** Service or ServiceEntry store key → route store key → the routes that route gives it. */
  private readonly serviceRoutes = new Map<string, Map<string, ServiceRoutes>>();
  /** Route store key → the Service and ServiceEntry store keys it gives routes to. */
  private readonly routeServices = new Map<string, string[]>();
  /** VirtualService store key → its translation. */
  private readonly virtualServices = new Map<string, TranslatedVirtualService>();
  /** A FQDN in VirtualService `hosts` → store keys of the VirtualServices naming it. */
  private readonly virtualServicesByHost = new Map<string, Set<string>>();
  /** Store keys of the VirtualServices with a wildcard host, checked against every Service. */
  private readonly wildcardVirtualServices = new Set<string>();
  /**
   * Namespace → keys of the waypoints with a DestinationRule subset of a Service or ServiceEntry there (its pods,
   * WorkloadEntries and EndpointSlices change the subset's endpoints).
   */
  private readonly subsetUsers = new Map<string, Set<string>>();
  /**
   * Service store key, or `Host/<ns>/<hostname>` for a ServiceEntry host → keys of the waypoints that send to it (its
   * Destination depends on its existence, owner and ports), and the reverse.
   */
  private readonly destinationUsers = new Map<string, Set<string>>();
  private readonly destinationsOfWaypoint = new Map<string, Set<string>>();
  /** Store key of a destination Service → store keys of the VirtualServices whose translation read it. */
  private readonly virtualServicesByDependency = new Map<string, Set<string>>();
  /** Route store key → its status parents (conditions live in `conditions`, slot `parent/<ref>/<type>`). */
  private readonly routeParents = new Map<string, RouteParentSlots[]>();
  private readonly routeContext: RouteContext & VirtualServiceContext;
  private readonly peerAuthNames = new Map<string, string>(); // PeerAuthentication store key → converted ns/name
  private readonly byIp = new Map<string, Set<string>>(); // IP text → uids
  private readonly byNode = new Map<string, Set<string>>(); // node → uids
  // Store keys of Namespace objects, built once per namespace: a reused string keeps its hash, a fresh
  // concatenation per workload would be rehashed on every lookup.
  private readonly namespaceKeys = new Map<string, string>();
  private readonly listeners: AmbientListener[] = [];
  private readonly statusListeners: StatusListener[] = [];
  private readonly unsubscribe: () => void;

  /**
   * @param clock when a condition's status changes (its `lastTransitionTime`); fixed in tests and goldens.
   */
  constructor(
    readonly store: ConfigStore,
    options: Partial<MeshOptions> = {},
    private readonly clock: () => Date = () => new Date(),
  ) {
    this.options = {
      clusterId: options.clusterId ?? DEFAULT_CLUSTER_ID,
      rootNamespace: options.rootNamespace ?? ROOT_NAMESPACE,
      trustDomain: options.trustDomain ?? DEFAULT_TRUST_DOMAIN,
      // The Kubernetes cluster domain; it happens to equal the default trust domain.
      domainSuffix: options.domainSuffix ?? 'cluster.local',
    };
    this.routeContext = {
      ...virtualServiceContext((k) => this.store.get(k), this.options.domainSuffix),
      serviceEntry: (ns, name) => this.store.get(`ServiceEntry/${ns}/${name}`) as ServiceEntry | undefined,
      namespace: (name) => this.namespace(name),
    };
    const existing = [...store.keys()];
    this.process({ added: existing, updated: [], removed: [], previous: new Map() });
    this.unsubscribe = store.subscribe((c) => this.process(c));
  }

  /** Stops following the store. */
  close(): void {
    this.unsubscribe();
  }

  /** Listeners run synchronously after each store change; the returned function unsubscribes. */
  onChange(listener: AmbientListener): () => void {
    return addListener(this.listeners, listener);
  }

  onStatusChange(listener: StatusListener): () => void {
    return addListener(this.statusListeners, listener);
  }

  /** Every current resource of a type, keyed by its xDS resource name. */
  snapshot(typeUrl: string): Map<string, XdsResource> {
    const out = new Map<string, XdsResource>();
    if (typeUrl === TYPE_ADDRESS) {
      for (const [uid, workload] of this.workloads) out.set(uid, { workload });
      for (const [key, service] of this.services) out.set(key, { service });
    } else if (typeUrl === TYPE_AUTHORIZATION) {
      for (const [key, a] of this.authorizations) out.set(key, a);
    } else if (typeUrl === TYPE_WAYPOINT) {
      for (const resources of this.waypointConfigs.values()) for (const [name, r] of resources) out.set(name, r);
    }
    return out;
  }

  allWorkloads(): Workload[] {
    return [...this.workloads.values()];
  }

  allServices(): Service[] {
    return [...this.services.values()];
  }

  allAuthorizations(): Authorization[] {
    return [...this.authorizations.values()];
  }

  getWorkload(uid: string): Workload | undefined {
    return this.workloads.get(uid);
  }

  /** The status of every object we write one on, sorted by store key (kind, namespace, name). */
  statuses(): ObjectStatus[] {
    const out: ObjectStatus[] = [];
    for (const key of [...this.conditions.keys()].sort()) out.push(this.statusOf(key));
    return out;
  }

  /** The waypoint Gateway `namespace/name` (of class istio-waypoint), ready or not. */
  waypoint(key: string): WaypointGateway | undefined {
    return this.waypoints.get(key);
  }

  /** True when the pod exists with this uid (a service account token bound to it is still valid). */
  hasPod(namespace: string, name: string, uid: string): boolean {
    return this.store.get(`Pod/${namespace}/${name}`)?.metadata.uid === uid;
  }

  /** SPIFFE identities of the workloads scheduled on a node: what that node's ztunnel may request certificates for. */
  identitiesOnNode(node: string): Set<string> {
    const out = new Set<string>();
    for (const uid of this.byNode.get(node) ?? []) {
      const w = this.workloads.get(uid)!;
      out.add(`spiffe://${w.trustDomain || this.options.trustDomain}/ns/${w.namespace}/sa/${w.serviceAccount}`);
    }
    return out;
  }

  /** The workload owning an IP; a captured (HBONE) workload wins when several share it, as in ztunnel. */
  workloadByIp(ip: string): Workload | undefined {
    const bytes = ipToBytes(ip);
    if (bytes === undefined) return undefined;
    let found: Workload | undefined;
    for (const uid of this.byIp.get(bytesToIp(bytes)) ?? []) {
      const w = this.workloads.get(uid)!;
      if (found === undefined || (w.tunnelProtocol === 'HBONE' && found.tunnelProtocol !== 'HBONE')) found = w;
    }
    return found;
  }

  // ---- change processing ----------------------------------------------------------------------------------------

  private process(change: StoreChange): void {
    const dirty: Dirty = {
      pods: new Set(),
      deployments: new Set(),
      services: new Set(),
      endpointSlices: new Set(),
      serviceEntries: new Set(),
      hostnames: new Set(),
      serviceEntryWorkloads: new Set(),
      workloadEntries: new Set(),
      policies: new Set(),
      peerAuthentications: new Set(),
      everyWorkload: false,
      everyPeerAuthentication: false,
      staticStrict: false,
      gateways: new Set(),
      waypointConfigs: new Set(),
      policyBindings: new Set(),
      gatewayClass: false,
      routes: new Set(),
      virtualServices: new Set(),
    };
    for (const keys of [change.added, change.updated, change.removed]) {
      for (const key of keys) this.markDirty(key, change.previous.get(key), this.store.get(key), dirty);
    }
    const touched: Touched = { addresses: new Map(), authorizations: new Map(), waypoint: new Map(), statuses: new Set() };
    if (dirty.gatewayClass) {
      for (const g of this.store.list('Gateway')) dirty.gateways.add(`${nsOf(g)}/${g.metadata.name}`);
      this.recomputeGatewayClass(touched);
    }
    // Waypoints first: whether one is usable decides the bindings of the Services and workloads naming it.
    for (const key of dirty.gateways) this.recomputeWaypoint(key, dirty, touched);
    // Then policies: workloads list the policies that are bound.
    for (const key of dirty.policies) this.recomputePolicy(key, touched);
    if (dirty.staticStrict) this.recomputeStaticStrict(touched);
    // The dirty set also holds deleted keys, which "every current one" would miss.
    if (dirty.everyPeerAuthentication) for (const pa of this.store.list('PeerAuthentication')) dirty.peerAuthentications.add(resourceKey(pa));
    for (const key of dirty.peerAuthentications) this.recomputePeerAuthentication(key, touched);
    for (const key of dirty.services) this.recomputeService(key, dirty, touched);
    for (const key of dirty.serviceEntries) this.recomputeServiceEntry(key, dirty, touched);
    // After both: who owns each hostname (a Kubernetes Service, else the oldest ServiceEntry).
    for (const hostname of dirty.hostnames) this.resolveHostname(hostname, dirty, touched);
    // After the Services: a slice's workloads exist only while its Service does.
    for (const key of dirty.endpointSlices) this.recomputeEndpointSlice(key, touched);
    if (dirty.everyWorkload) {
      for (const p of this.store.list('Pod')) dirty.pods.add(resourceKey(p));
      for (const d of this.store.list('Deployment')) dirty.deployments.add(resourceKey(d));
    }
    for (const key of dirty.pods) this.recomputePod(key, touched);
    for (const key of dirty.deployments) this.recomputeDeployment(key, touched);
    for (const key of dirty.serviceEntryWorkloads) this.recomputeServiceEntryWorkloads(key, touched);
    for (const key of dirty.workloadEntries) this.recomputeWorkloadEntry(key, touched);
    // After the Services and ServiceEntries: a route's programming reaches the waypoint each parent is bound to now.
    for (const key of dirty.routes) this.recomputeRoute(key, dirty, touched);
    for (const key of dirty.virtualServices) this.recomputeVirtualService(key, dirty);
    for (const key of dirty.waypointConfigs) this.recomputeWaypointConfig(key, touched);
    for (const key of dirty.policyBindings) this.recomputePolicyBinding(key, touched);
    this.emit(touched);
  }

  /** Marks what `key` (whose old and new versions are given) can affect. */
  private markDirty(key: string, old: Resource | undefined, cur: Resource | undefined, d: Dirty): void {
    const r = (cur ?? old)!;
    const ns = nsOf(r);
    const versions = old === undefined ? [cur!] : cur === undefined ? [old] : [old, cur];
    switch (r.kind) {
      case 'Pod':
        d.pods.add(key);
        for (const w of this.subsetUsers.get(ns) ?? []) d.waypointConfigs.add(w);
        for (const v of versions) {
          // Replica counts of the Deployments owning the pod.
          for (const dep of this.store.selecting('Deployment', ns, v.metadata.labels)) d.deployments.add(resourceKey(dep));
          // A waypoint's own pod: its readiness makes the waypoint usable.
          const gateway = v.metadata.labels?.[GATEWAY_NAME_LABEL];
          if (gateway !== undefined) d.gateways.add(`${ns}/${gateway}`);
        }
        break;
      case 'Deployment':
        d.deployments.add(key);
        for (const w of this.subsetUsers.get(ns) ?? []) d.waypointConfigs.add(w);
        for (const v of versions) {
          const sel = (v as Deployment).spec.selector?.matchLabels;
          if (!nonEmpty(sel)) continue;
          // Other Deployments competing for the pods it selects (replica counts); pods name their workloads themselves.
          for (const pod of this.store.matching('Pod', ns, sel)) {
            for (const dep of this.store.selecting('Deployment', ns, pod.metadata.labels)) d.deployments.add(resourceKey(dep));
          }
        }
        break;
      case 'Service':
        d.services.add(key);
        for (const w of this.destinationUsers.get(key) ?? []) d.waypointConfigs.add(w);
        for (const v of versions) {
          this.markSelected(ns, (v as KubeService).spec.selector, d);
          const gateway = v.metadata.labels?.[GATEWAY_NAME_LABEL];
          if (gateway !== undefined) d.gateways.add(`${ns}/${gateway}`);
        }
        // Its EndpointSlices' workloads, and the pods they list, carry its ports.
        for (const slice of this.slicesByService.get(key) ?? []) this.markEndpointSlice(slice, this.store.get(slice) as EndpointSlice, d);
        // Policies targeting the Service report whether it is bound.
        this.markPolicyBindings(key, d);
        this.markRoutes(key, d);
        // VirtualServices routing to it (its ports pick a destination's port); those naming it are re-read with it.
        for (const vs of this.virtualServicesByDependency.get(key) ?? []) d.virtualServices.add(vs);
        break;
      case 'ServiceEntry':
        d.serviceEntries.add(key);
        d.serviceEntryWorkloads.add(key);
        // The pods and WorkloadEntries it selects carry its Services.
        for (const v of versions) this.markSelected(ns, (v as ServiceEntry).spec.workloadSelector?.labels, d);
        // Policies targeting it report whether it is bound (waypoints sending to its hosts follow the hosts).
        this.markPolicyBindings(key, d);
        // Routes whose parent it is: its existence, labels and ports are in their status and programming.
        this.markRoutes(key, d);
        break;
      case 'WorkloadEntry':
        d.workloadEntries.add(key);
        // Its labels may put it in a ServiceEntry's subset.
        for (const w of this.subsetUsers.get(ns) ?? []) d.waypointConfigs.add(w);
        break;
      case 'EndpointSlice':
        this.indexEndpointSlice(key, old as EndpointSlice | undefined, cur as EndpointSlice | undefined);
        for (const v of versions) this.markEndpointSlice(key, v as EndpointSlice, d);
        // Subsets of a Service without a selector pick among the pods its slices name.
        for (const w of this.subsetUsers.get(ns) ?? []) d.waypointConfigs.add(w);
        break;
      case 'Namespace':
        // Routes whose parent Services are in it: the namespace's use-waypoint label is in their status.
        this.markRoutes(key, d);
        // Capture labels and traffic-distribution annotations apply to everything in the namespace.
        for (const p of this.store.list('Pod', r.metadata.name)) d.pods.add(resourceKey(p));
        for (const dep of this.store.list('Deployment', r.metadata.name)) d.deployments.add(resourceKey(dep));
        for (const s of this.store.list('Service', r.metadata.name)) d.services.add(resourceKey(s));
        for (const se of this.store.list('ServiceEntry', r.metadata.name)) {
          d.serviceEntries.add(resourceKey(se));
          d.serviceEntryWorkloads.add(resourceKey(se));
        }
        for (const we of this.store.list('WorkloadEntry', r.metadata.name)) d.workloadEntries.add(resourceKey(we));
        break;
      case 'Node':
        // Its topology labels are the locality of the pods scheduled on it. Nodes change rarely, so walking the pods
        // beats keeping an index by node name.
        for (const p of this.store.list('Pod')) if (p.spec?.nodeName === r.metadata.name) d.pods.add(resourceKey(p));
        break;
      case 'AuthorizationPolicy':
        d.policies.add(key);
        d.policyBindings.add(key);
        // Only selector policies are listed on workloads; a root-namespace selector reaches every namespace.
        for (const v of versions) {
          const ap = v as AuthorizationPolicy;
          this.markSelected(ns === this.options.rootNamespace ? undefined : ns, ap.spec.selector?.matchLabels, d);
          this.markTargets(ap, d);
        }
        break;
      case 'Gateway':
        d.gateways.add(`${ns}/${r.metadata.name}`);
        break;
      case 'HTTPRoute':
      case 'GRPCRoute':
        d.routes.add(key);
        break;
      case 'VirtualService':
        d.virtualServices.add(key);
        // VirtualServices delegating to it.
        for (const vs of this.virtualServicesByDependency.get(key) ?? []) d.virtualServices.add(vs);
        break;
      case 'RequestAuthentication':
        // Filed under what it targets (for the waypoints it reaches and its WaypointAccepted condition).
        this.indexPolicyTargets(key, cur as RequestAuthentication | undefined);
        d.policyBindings.add(key);
        for (const v of versions) this.markTargets(v as RequestAuthentication, d);
        break;
      case 'DestinationRule':
        // Which rule applies depends on the waypoint's namespace too; rules change rarely.
        for (const w of this.waypoints.keys()) d.waypointConfigs.add(w);
        break;
      case 'GatewayClass':
        if (r.metadata.name === WAYPOINT_CLASS) d.gatewayClass = true;
        // Policies targeting a GatewayClass report whether it exists and is the mesh controller's.
        this.markPolicyBindings(key, d);
        break;
      case 'PeerAuthentication':
        d.staticStrict = true;
        d.peerAuthentications.add(key);
        for (const v of versions) {
          const sel = (v as PeerAuthentication).spec.selector?.matchLabels;
          if (nonEmpty(sel)) {
            // Root-namespace selector policies are ignored.
            if (ns !== this.options.rootNamespace) this.markSelected(ns, sel, d);
          } else if (ns === this.options.rootNamespace) {
            // Mesh-wide default: every workload and every converted port-level policy may change.
            d.everyWorkload = true;
            d.everyPeerAuthentication = true;
            this.markEntryWorkloads(undefined, d);
          } else {
            for (const p of this.store.list('Pod', ns)) d.pods.add(resourceKey(p));
            for (const dep of this.store.list('Deployment', ns)) d.deployments.add(resourceKey(dep));
            this.markEntryWorkloads(ns, d);
            for (const pa of this.store.list('PeerAuthentication', ns)) d.peerAuthentications.add(resourceKey(pa));
          }
        }
        break;
      default:
        // Other kinds (waypoint/L7 configuration) do not reach ztunnel.
        break;
    }
  }

  /** Marks the waypoint configurations a targetRefs policy reaches: its Gateways, its Services' waypoints, or all. */
  private markTargets(p: TargetingPolicy, d: Dirty): void {
    const ns = nsOf(p);
    for (const t of targetRefsOf(p)) {
      if (isGatewayTarget(t, 'Gateway')) d.waypointConfigs.add(`${ns}/${t.name}`);
      else if (isGatewayTarget(t, 'GatewayClass')) for (const key of this.waypoints.keys()) d.waypointConfigs.add(key);
      else if (isCoreService(t)) this.markServiceWaypoint(`Service/${ns}/${t.name}`, d);
      else if (isServiceEntryTarget(t)) this.markServiceWaypoint(`ServiceEntry/${ns}/${t.name}`, d);
    }
  }

  /** Marks a slice (one version of it) for its own workloads and the pods it lists, which carry its Service. */
  private markEndpointSlice(key: string, es: EndpointSlice, d: Dirty): void {
    d.endpointSlices.add(key);
    for (const { ref } of slicePodRefs(es)) d.pods.add(`Pod/${ref}`);
  }

  /** Files a slice under its Service and the pods it lists, in place of its previous version. */
  private indexEndpointSlice(key: string, old: EndpointSlice | undefined, cur: EndpointSlice | undefined): void {
    for (const [es, op] of [[old, deleteFrom], [cur, addTo]] as const) {
      if (es === undefined) continue;
      const service = sliceServiceName(es);
      if (service !== undefined) op(this.slicesByService, `Service/${nsOf(es)}/${service}`, key);
      for (const { ref } of slicePodRefs(es)) op(this.slicesByPod, ref, key);
    }
  }

  /** Marks the routes whose translation read one object (a Service, ServiceEntry or Namespace, by store key). */
  private markRoutes(key: string, d: Dirty): void {
    for (const route of this.routesByDependency.get(key) ?? []) d.routes.add(route);
  }

  /** Marks the targetRefs policies naming one object (its store key) for their WaypointAccepted condition. */
  private markPolicyBindings(targetKey: string, d: Dirty): void {
    for (const p of this.policiesByTarget.get(targetKey) ?? []) d.policyBindings.add(p);
  }

  /** Files a targetRefs policy (undefined: deleted) under the objects it names. */
  private indexPolicyTargets(key: string, p: TargetingPolicy | undefined): void {
    const prev = this.policyTargets.get(key) ?? [];
    const next = p === undefined ? [] : policyTargetKeys(p);
    for (const target of prev) if (!next.includes(target)) deleteFrom(this.policiesByTarget, target, key);
    for (const target of next) addTo(this.policiesByTarget, target, key);
    if (next.length > 0) this.policyTargets.set(key, next);
    else this.policyTargets.delete(key);
  }

  /** Marks pods and Deployment replicas matching a non-empty selector (namespace undefined = all namespaces). */
  private markSelected(namespace: string | undefined, selector: Labels | undefined, d: Dirty): void {
    if (!nonEmpty(selector)) return;
    for (const p of this.store.matching('Pod', namespace, selector)) d.pods.add(resourceKey(p));
    for (const dep of this.store.matching('Deployment', namespace, selector)) d.deployments.add(resourceKey(dep));
    for (const we of this.store.matching('WorkloadEntry', namespace, selector)) d.workloadEntries.add(resourceKey(we));
    // A ServiceEntry's endpoints carry its labels; entries are few, so they are walked rather than indexed.
    for (const se of this.store.list('ServiceEntry', namespace)) if (selectorMatches(selector, se.metadata.labels)) d.serviceEntryWorkloads.add(resourceKey(se));
  }

  /** Marks every entry-made workload of a namespace (all namespaces when undefined): namespace-wide policies changed. */
  private markEntryWorkloads(namespace: string | undefined, d: Dirty): void {
    for (const se of this.store.list('ServiceEntry', namespace)) d.serviceEntryWorkloads.add(resourceKey(se));
    for (const we of this.store.list('WorkloadEntry', namespace)) d.workloadEntries.add(resourceKey(we));
  }

  private recomputePolicy(key: string, t: Touched): void {
    const ap = this.store.get(key) as (Resource & { kind: 'AuthorizationPolicy' }) | undefined;
    const [, ns, name] = key.split('/') as [string, string, string];
    const resourceName = `${ns}/${name}`;
    this.indexPolicyTargets(key, ap);
    if (ap === undefined) {
      this.converted.delete(key);
      this.setAuthorization(resourceName, undefined, t);
      this.setCondition(key, ZTUNNEL_ACCEPTED, undefined, t);
      return;
    }
    const conv = convertAuthorizationPolicy(this.options.rootNamespace, ap);
    this.converted.set(key, conv);
    this.setAuthorization(resourceName, conv.authorization, t);
    let condition: Condition | undefined;
    if (conv.authorization !== undefined || conv.status !== undefined) {
      condition = {
        type: ZTUNNEL_ACCEPTED,
        status: conv.authorization !== undefined ? 'True' : 'False',
        reason: conv.status?.reason ?? 'Accepted',
        message: conv.status?.message ?? 'attached to ztunnel',
      };
      if (ap.metadata.generation !== undefined) condition.observedGeneration = ap.metadata.generation;
    }
    this.setCondition(key, ZTUNNEL_ACCEPTED, condition, t);
  }

  private recomputeStaticStrict(t: Touched): void {
    const root = this.options.rootNamespace;
    const present = this.store.countOf('PeerAuthentication') > 0;
    this.setAuthorization(`${root}/${STATIC_STRICT_POLICY_NAME}`, present ? staticStrictPolicy(root) : undefined, t);
  }

  private recomputePeerAuthentication(key: string, t: Touched): void {
    const pa = this.store.get(key) as PeerAuthentication | undefined;
    const previousName = this.peerAuthNames.get(key);
    let next: Authorization | undefined;
    if (pa !== undefined) {
      const root = this.options.rootNamespace;
      const namespaceLevel = (ns: string) => this.store.list('PeerAuthentication', ns).filter((p) => p.spec.selector === undefined);
      next = convertPeerAuthentication(root, pa, oldest(namespaceLevel(nsOf(pa))), oldest(namespaceLevel(root)));
    }
    const [, ns, name] = key.split('/') as [string, string, string];
    const resourceName = `${ns}/${convertedPeerAuthenticationName(name)}`;
    if (previousName !== undefined && previousName !== resourceName) this.setAuthorization(previousName, undefined, t);
    this.setAuthorization(resourceName, next, t);
    if (next) this.peerAuthNames.set(key, resourceName);
    else this.peerAuthNames.delete(key);
  }

  private recomputeService(key: string, d: Dirty, t: Touched): void {
    const s = this.store.get(key) as KubeService | undefined;
    const previousKey = this.serviceKeys.get(key);
    let next: Service | undefined;
    let nextKey: string | undefined;
    const binding: Binding = s === undefined ? {} : this.serviceBindingFor(s.metadata, nsOf(s));
    if (s !== undefined) {
      const ns = this.namespace(nsOf(s));
      next = buildService(s, this.options, ns?.metadata.annotations);
      if (next && binding.waypoint) next.waypoint = waypointAddress(binding.waypoint);
      const weighted = weightedWaypoints(binding);
      if (next && weighted) next.weightedWaypoints = weighted;
      nextKey = serviceKeyOf(s, this.options.domainSuffix);
    }
    this.setServiceBinding(key, s === undefined ? undefined : binding, d);
    this.setCondition(key, WAYPOINT_BOUND, s === undefined ? undefined : waypointBoundCondition(binding, s.metadata.generation), t);
    if (previousKey !== undefined && previousKey !== nextKey) this.setService(previousKey, undefined, t);
    // ServiceEntries naming its hostname yield to it, or take the hostname back.
    for (const k of [previousKey, nextKey]) if (k !== undefined) d.hostnames.add(k.slice(k.indexOf('/') + 1));
    if (nextKey !== undefined && next !== undefined) {
      this.setService(nextKey, next, t);
      this.serviceKeys.set(key, nextKey);
    } else {
      if (nextKey !== undefined) this.setService(nextKey, undefined, t);
      this.serviceKeys.delete(key);
    }
  }

  /**
   * Keeps the binding indexes of one Service or ServiceEntry (its primary waypoint and any canary both serve it); a
   * change re-sends the waypoint configs and policy statuses it touches.
   */
  private setServiceBinding(key: string, b: Binding | undefined, d: Dirty): void {
    const prev = this.serviceBindings.get(key);
    this.noteWaypointUser(key, b?.referenced);
    this.noteWaypointUser(`${key}#canary`, b?.canaryReferenced);
    const prevOwners = owningWaypoints(prev);
    const nextOwners = owningWaypoints(b);
    for (const w of prevOwners) {
      if (nextOwners.includes(w)) continue;
      deleteFrom(this.boundServices, w, key);
      d.waypointConfigs.add(w);
    }
    for (const w of nextOwners) addTo(this.boundServices, w, key);
    if (prev?.waypoint?.key !== b?.waypoint?.key) this.markPolicyBindings(key, d);
    // The bound Service's ports may have changed even when the waypoints did not.
    for (const w of nextOwners) d.waypointConfigs.add(w);
    if (b === undefined) this.serviceBindings.delete(key);
    else this.serviceBindings.set(key, b);
  }

  private namespace(name: string): Namespace | undefined {
    let key = this.namespaceKeys.get(name);
    if (key === undefined) this.namespaceKeys.set(name, (key = `Namespace//${name}`));
    return this.store.get(key) as Namespace | undefined;
  }

  /** The Deployment that owns a pod: the first (by name) whose selector matches its labels. */
  private ownerOf(pod: Pod): Deployment | undefined {
    let owner: Deployment | undefined;
    for (const d of this.store.selecting('Deployment', nsOf(pod), pod.metadata.labels)) {
      if (owner === undefined || d.metadata.name < owner.metadata.name) owner = d;
    }
    return owner;
  }

  private recomputePod(key: string, t: Touched): void {
    const pod = this.store.get(key) as Pod | undefined;
    const previousUid = this.podUids.get(key);
    let next: Workload | undefined;
    let referenced: string | undefined;
    if (pod !== undefined) {
      const src = podSource(pod);
      if (src !== undefined) ({ workload: next, referenced } = this.buildWorkload(src, pod));
    }
    this.noteWaypointUser(key, referenced);
    if (previousUid !== undefined && previousUid !== next?.uid) this.setWorkload(previousUid, undefined, t);
    if (next !== undefined) {
      this.setWorkload(next.uid, next, t);
      this.podUids.set(key, next.uid);
    } else {
      this.podUids.delete(key);
    }
  }

  /** The workloads of a slice's endpoints that are not pods. */
  private recomputeEndpointSlice(key: string, t: Touched): void {
    const es = this.store.get(key) as EndpointSlice | undefined;
    const previous = this.sliceUids.get(key) ?? [];
    let next: Workload[] = [];
    const serviceName = es === undefined ? undefined : sliceServiceName(es);
    if (serviceName !== undefined) {
      const serviceKey = `Service/${nsOf(es!)}/${serviceName}`;
      // Only a Service ztunnel is told about (not an ExternalName one) gives its slices' endpoints.
      if (this.serviceKeys.has(serviceKey)) next = endpointSliceWorkloads(es!, this.store.get(serviceKey) as KubeService, this.options);
    }
    const nextUids = new Set(next.map((w) => w.uid));
    for (const uid of previous) if (!nextUids.has(uid)) this.setWorkload(uid, undefined, t);
    for (const w of next) this.setWorkload(w.uid, w, t);
    if (next.length > 0) this.sliceUids.set(key, [...nextUids]);
    else this.sliceUids.delete(key);
  }

  /**
   * Adds the Services whose EndpointSlices list the pod by reference (its namespace, name and uid) and that do not
   * select it already: how a Service without a selector reaches its pods (istiod's matchingServicesWithoutSelectors).
   * A slice endpoint with the pod's IP but no reference to it is a workload of its own, never merged with the pod.
   */
  private addSliceServices(pod: Pod, services: Record<string, PortList>): void {
    const ref = `${nsOf(pod)}/${pod.metadata.name}`;
    const uid = pod.metadata.uid ?? '';
    for (const sliceKey of [...(this.slicesByPod.get(ref) ?? [])].sort()) {
      const es = this.store.get(sliceKey) as EndpointSlice;
      // Filed under the pod's name, so it is a slice of a Service; the reference must be to this pod (its uid).
      if (!slicePodRefs(es).some((r) => r.ref === ref && r.uid === uid)) continue;
      const serviceStoreKey = `Service/${nsOf(es)}/${sliceServiceName(es)!}`;
      const key = this.serviceKeys.get(serviceStoreKey);
      if (key === undefined || key in services) continue;
      services[key] = workloadPortList(this.store.get(serviceStoreKey) as KubeService, pod.spec?.containers);
    }
  }

  /** Replicas without a Pod: `spec.replicas` (default 1) minus the live Pods this Deployment owns. */
  private recomputeDeployment(key: string, t: Touched): void {
    const d = this.store.get(key) as Deployment | undefined;
    const previous = this.replicaUids.get(key) ?? [];
    const next: Workload[] = [];
    if (d !== undefined) {
      const sel = d.spec.selector?.matchLabels;
      let owned = 0;
      if (nonEmpty(sel)) {
        for (const pod of this.store.matching('Pod', nsOf(d), sel)) {
          const phase = pod.status?.phase;
          if (phase !== 'Succeeded' && phase !== 'Failed' && this.ownerOf(pod) === d) owned++;
        }
      }
      const count = Math.max(0, (d.spec.replicas ?? 1) - owned);
      let referenced: string | undefined;
      for (const name of replicaNames(d, count)) {
        const built = this.buildWorkload(replicaSource(d, name));
        next.push(built.workload);
        referenced = built.referenced;
      }
      this.noteWaypointUser(key, referenced);
    } else {
      this.noteWaypointUser(key, undefined);
    }
    const nextUids = new Set(next.map((w) => w.uid));
    for (const uid of previous) if (!nextUids.has(uid)) this.setWorkload(uid, undefined, t);
    for (const w of next) this.setWorkload(w.uid, w, t);
    if (next.length > 0) this.replicaUids.set(key, [...nextUids]);
    else this.replicaUids.delete(key);
  }

  /** The workload, and the waypoint it (or its namespace) names. */
  private buildWorkload(src: WorkloadSource, pod?: Pod): { workload: Workload; referenced?: string } {
    const ns = src.namespace;
    const services: Record<string, PortList> = {};
    const selecting = this.store.selecting('Service', ns, src.labels).filter((s) => s.spec.type !== 'ExternalName');
    selecting.sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0));
    for (const s of selecting) services[serviceKeyOf(s, this.options.domainSuffix)] = workloadPortList(s, src.spec?.containers);
    if (pod !== undefined) this.addSliceServices(pod, services);
    // ServiceEntries selecting it (istiod's EnableServiceEntrySelectPods, on by default).
    this.addSelectingEntryServices(ns, src.labels, services, (se) => serviceEntryPodPortList(se, src.spec?.containers));
    const policyKeys = this.workloadPolicies(ns, src.labels);

    const workload = buildWorkload(
      src,
      {
        namespace: this.namespace(ns),
        services,
        authorizationPolicies: policyKeys,
        locality: src.spec?.nodeName ? nodeLocality(this.store.get(`Node//${src.spec.nodeName}`) as Node | undefined) : undefined,
      },
      this.options,
    );
    const binding = this.bindingFor('workload', src.labels, ns);
    if (binding.waypoint) workload.waypoint = waypointAddress(binding.waypoint);
    return binding.referenced === undefined ? { workload } : { workload, referenced: binding.referenced };
  }

  /** Selector AuthorizationPolicies (sent to ztunnel) and PeerAuthentications of a workload: its namespace's and the root's. */
  private workloadPolicies(ns: string, labels: Labels): string[] {
    const root = this.options.rootNamespace;
    const policies = this.store.selecting('AuthorizationPolicy', ns, labels);
    if (ns !== root) policies.push(...this.store.selecting('AuthorizationPolicy', root, labels));
    const policyKeys = policies
      .filter((p) => this.converted.get(resourceKey(p))?.authorization !== undefined)
      .map((p) => `${nsOf(p)}/${p.metadata.name}`)
      .sort();
    const applicable: PeerAuthentication[] = [];
    if (ns !== root) for (const pa of this.store.list('PeerAuthentication', root)) if (pa.spec.selector === undefined) applicable.push(pa);
    for (const pa of this.store.list('PeerAuthentication', ns)) {
      const sel = pa.spec.selector;
      if (sel === undefined || selectorMatches(sel.matchLabels ?? {}, labels)) applicable.push(pa);
    }
    policyKeys.push(...peerAuthenticationPolicyKeys(root, applicable));
    return policyKeys;
  }

  /** Adds the Services (that own their hostname) of the ServiceEntries in `ns` whose workloadSelector matches `labels`. */
  private addSelectingEntryServices(ns: string, labels: Labels, services: Record<string, PortList>, ports: (se: ServiceEntry) => PortList): void {
    const entries = this.store.selecting('ServiceEntry', ns, labels).sort((a, b) => compareStrings(a.metadata.name, b.metadata.name));
    for (const se of entries) {
      for (const s of this.entryWinners.get(resourceKey(se)) ?? []) {
        const key = `${s.namespace}/${s.hostname}`;
        if (!(key in services)) services[key] = ports(se);
      }
    }
  }

  // ---- ServiceEntries and WorkloadEntries ----------------------------------------------------------------------------

  /** A ServiceEntry's Services (before hostname ownership), its waypoint binding and WaypointBound condition. */
  private recomputeServiceEntry(key: string, d: Dirty, t: Touched): void {
    const se = this.store.get(key) as ServiceEntry | undefined;
    const previous = this.entryServices.get(key) ?? [];
    let next: Service[] = [];
    let binding: Binding = {};
    if (se !== undefined) {
      binding = this.serviceBindingFor(se.metadata, nsOf(se));
      next = serviceEntryServices(se, this.namespace(nsOf(se))?.metadata.annotations);
      const weighted = weightedWaypoints(binding);
      for (const s of next) {
        if (binding.waypoint) s.waypoint = waypointAddress(binding.waypoint);
        if (weighted) s.weightedWaypoints = weighted.map((w) => ({ ...w }));
      }
    }
    this.setServiceBinding(key, se === undefined ? undefined : binding, d);
    this.setCondition(key, WAYPOINT_BOUND, se === undefined ? undefined : waypointBoundCondition(binding, se.metadata.generation), t);
    this.setCondition(key, WAYPOINT_MISSING, se === undefined ? undefined : waypointMissingCondition(se, binding), t);
    for (const s of previous) {
      deleteFrom(this.entriesByHostname, s.hostname, key);
      d.hostnames.add(s.hostname);
    }
    for (const s of next) {
      addTo(this.entriesByHostname, s.hostname, key);
      d.hostnames.add(s.hostname);
    }
    if (next.length > 0) this.entryServices.set(key, next);
    else this.entryServices.delete(key);
  }

  /**
   * Decides, per namespace, which ServiceEntry's Service is sent for a hostname (istiod's selectWorkloadServices): a
   * Kubernetes Service with that hostname wins in its namespace, else the oldest entry (then by name). One of the
   * winners is canonical: the Kubernetes Service if there is one, else the oldest entry.
   */
  private resolveHostname(hostname: string, d: Dirty, t: Touched): void {
    const kubeKey = serviceKeyOfHost(hostname, this.options.domainSuffix);
    const kubeServiceKey = kubeKey === undefined ? undefined : this.serviceKeys.get(kubeKey);
    const age = (key: string) => (this.store.get(key)?.metadata.creationTimestamp ?? '') + '\0' + key;
    const entries = [...(this.entriesByHostname.get(hostname) ?? [])].sort((a, b) => compareStrings(age(a), age(b)));
    const winners = new Map<string, string>(); // namespace → ServiceEntry store key
    for (const key of entries) {
      const ns = key.split('/')[1]!;
      if (!winners.has(ns) && kubeServiceKey !== `${ns}/${hostname}`) winners.set(ns, key);
    }
    const canonicalEntry = kubeServiceKey === undefined ? entries.find((k) => winners.get(k.split('/')[1]!) === k) : undefined;
    for (const key of entries) {
      const ns = key.split('/')[1]!;
      const svcKey = `${ns}/${hostname}`;
      const owned = this.entryWinners.get(key) ?? [];
      const others = owned.filter((s) => s.hostname !== hostname);
      let mine: Service | undefined;
      if (winners.get(ns) === key) {
        mine = { ...this.entryServices.get(key)!.find((s) => s.hostname === hostname)! };
        if (key === canonicalEntry) mine.canonical = true;
        this.setService(svcKey, mine, t);
      }
      const nextOwned = mine === undefined ? others : [...others, mine].sort((a, b) => compareStrings(a.hostname, b.hostname));
      if (deepEqual(owned, nextOwned)) continue;
      if (nextOwned.length > 0) this.entryWinners.set(key, nextOwned);
      else this.entryWinners.delete(key);
      // Its endpoints and the workloads it selects list the Services it owns; its waypoint serves those.
      d.serviceEntryWorkloads.add(key);
      this.markServiceWaypoint(key, d);
      const se = this.store.get(key) as ServiceEntry | undefined;
      if (se !== undefined) this.markSelected(ns, se.spec.workloadSelector?.labels, d);
    }
    // Entries that owned the hostname and no longer list it (changed or deleted).
    const namespaces = new Set(entries.map((k) => k.split('/')[1]!));
    for (const [key, owned] of [...this.entryWinners]) {
      if (entries.includes(key)) continue;
      const kept = owned.filter((s) => s.hostname !== hostname);
      if (kept.length === owned.length) continue;
      namespaces.add(key.split('/')[1]!);
      if (kept.length > 0) this.entryWinners.set(key, kept);
      else this.entryWinners.delete(key);
      d.serviceEntryWorkloads.add(key);
      this.markServiceWaypoint(key, d);
    }
    // Waypoints sending to the hostname read its owner's ports and subsets.
    for (const ns of namespaces) for (const w of this.destinationUsers.get(`Host/${ns}/${hostname}`) ?? []) d.waypointConfigs.add(w);
    // Namespaces where no entry (and no Kubernetes Service) has the hostname any more.
    for (const ns of namespaces) {
      if (!winners.has(ns) && kubeServiceKey !== `${ns}/${hostname}`) this.setService(`${ns}/${hostname}`, undefined, t);
    }
  }

  /** The workloads of a ServiceEntry's endpoints (inline or implicit), for the Services it owns. */
  private recomputeServiceEntryWorkloads(key: string, t: Touched): void {
    const se = this.store.get(key) as ServiceEntry | undefined;
    const previous = this.entryWorkloadUids.get(key) ?? [];
    const next: Workload[] = [];
    if (se !== undefined) {
      const ns = nsOf(se);
      const policies = this.workloadPolicies(ns, se.metadata.labels ?? {});
      let referenced: string | undefined;
      for (const { workload, labels } of serviceEntryWorkloads(se, this.entryWinners.get(key) ?? [], this.options)) {
        workload.authorizationPolicies = [...policies];
        if (labels !== undefined) {
          const binding = this.bindingFor('workload', labels, ns);
          if (binding.waypoint) workload.waypoint = waypointAddress(binding.waypoint);
          referenced ??= binding.referenced;
        }
        next.push(workload);
      }
      // The entry's own binding is noted by recomputeServiceEntry; its endpoints' are filed under the workloads key.
      this.noteWaypointUser(`ServiceEntry/${ns}/${se.metadata.name}#endpoints`, referenced);
    }
    const nextUids = new Set(next.map((w) => w.uid));
    for (const uid of previous) if (!nextUids.has(uid)) this.setWorkload(uid, undefined, t);
    for (const w of next) this.setWorkload(w.uid, w, t);
    if (next.length > 0) this.entryWorkloadUids.set(key, [...nextUids]);
    else this.entryWorkloadUids.delete(key);
  }

  /** A WorkloadEntry's workload: the Kubernetes Services and ServiceEntries selecting it, its policies and waypoint. */
  private recomputeWorkloadEntry(key: string, t: Touched): void {
    const we = this.store.get(key) as WorkloadEntry | undefined;
    const previous = this.workloadEntryUids.get(key);
    let next: Workload | undefined;
    let referenced: string | undefined;
    if (we !== undefined) {
      const ns = nsOf(we);
      const labels = workloadEntryLabels(we);
      next = workloadEntryWorkload(we, this.options);
      // Kubernetes Services select WorkloadEntries too (istiod's EnableK8SServiceSelectWorkloadEntries, on by default).
      const selecting = this.store.selecting('Service', ns, labels).filter((s) => this.serviceKeys.has(resourceKey(s)));
      selecting.sort((a, b) => compareStrings(a.metadata.name, b.metadata.name));
      for (const s of selecting) next.services[this.serviceKeys.get(resourceKey(s))!] = kubeServiceWorkloadEntryPortList(s, we);
      this.addSelectingEntryServices(ns, labels, next.services, (se) => serviceEntryWorkloadEntryPortList(se, we));
      next.authorizationPolicies = this.workloadPolicies(ns, labels);
      const binding = this.bindingFor('workload', labels, ns);
      if (binding.waypoint) next.waypoint = waypointAddress(binding.waypoint);
      referenced = binding.referenced;
    }
    this.noteWaypointUser(key, referenced);
    if (previous !== undefined && previous !== next?.uid) this.setWorkload(previous, undefined, t);
    if (next !== undefined) {
      this.setWorkload(next.uid, next, t);
      this.workloadEntryUids.set(key, next.uid);
    } else this.workloadEntryUids.delete(key);
  }

  // ---- waypoints ------------------------------------------------------------------------------------------------

  /** Re-reads one waypoint (Gateway, Service, ready pods); when its usability changes, what names it is recomputed. */
  private recomputeWaypoint(key: string, d: Dirty, t: Touched): void {
    const [ns, name] = key.split('/') as [string, string];
    const storeKey = `Gateway/${ns}/${name}`;
    const g = this.store.get(storeKey) as Gateway | undefined;
    const prev = this.waypoints.get(key);
    let next: WaypointGateway | undefined;
    if (g !== undefined && isWaypointGateway(g)) {
      const probe = waypointOf(g, undefined, 0, undefined, this.options.domainSuffix);
      const svc = this.store.get(`Service/${ns}/${probe.deploymentName}`) as KubeService | undefined;
      let ready = 0;
      for (const p of this.store.matching('Pod', ns, { [GATEWAY_NAME_LABEL]: name })) {
        if (p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')) ready++;
      }
      const cls = this.store.get(`GatewayClass//${WAYPOINT_CLASS}`);
      next = waypointOf(g, svc, ready, cls?.metadata.labels, this.options.domainSuffix);
    }
    if (next) this.waypoints.set(key, next);
    else this.waypoints.delete(key);
    this.setGatewayStatus(storeKey, g !== undefined && next !== undefined ? waypointGatewayStatus(g, next) : undefined, t);
    d.waypointConfigs.add(key);
    if (deepEqual(prev, next)) return;
    for (const user of this.waypointUsers.get(key) ?? []) {
      const kind = user.slice(0, user.indexOf('/'));
      // `#canary`: the object names this waypoint as its canary.
      if (kind === 'Service') d.services.add(user.replace(/#canary$/, ''));
      else if (kind === 'ServiceEntry') {
        // The entry itself, or (`#endpoints`) its endpoints binding by their own labels: both are rebuilt.
        const entry = user.replace(/#(endpoints|canary)$/, '');
        d.serviceEntries.add(entry);
        d.serviceEntryWorkloads.add(entry);
      } else if (kind === 'WorkloadEntry') d.workloadEntries.add(user);
      else if (kind === 'Pod') d.pods.add(user);
      else d.deployments.add(user);
    }
    // Gateway targets resolve against the waypoints that exist.
    this.markPolicyBindings(`Gateway/${key}`, d);
  }

  private setGatewayStatus(storeKey: string, status: GatewayStatus | undefined, t: Touched): void {
    const prev = this.gatewayStatuses.get(storeKey);
    const slots = this.conditions.get(storeKey);
    // Listener condition slots that no longer exist go first, so a renamed listener leaves nothing behind.
    const keep = new Set<string>();
    for (const l of status?.listeners ?? []) for (const c of l.conditions) keep.add(`listener/${l.name}/${c.type}`);
    for (const slot of [...(slots?.keys() ?? [])]) if (slot.startsWith('listener/') && !keep.has(slot)) this.setCondition(storeKey, slot, undefined, t);
    for (const type of CONDITION_ORDER.Gateway!) this.setCondition(storeKey, type, status?.conditions.find((c) => c.type === type), t);
    for (const l of status?.listeners ?? []) for (const c of l.conditions) this.setCondition(storeKey, `listener/${l.name}/${c.type}`, { ...c }, t);
    const extra = status ? { ...(status.addresses ? { addresses: status.addresses } : {}), listeners: status.listeners } : undefined;
    if (deepEqual(prev, extra)) return;
    t.statuses.add(storeKey);
    if (extra) this.gatewayStatuses.set(storeKey, extra);
    else this.gatewayStatuses.delete(storeKey);
  }

  /** The built-in GatewayClass is istiod's to report on once it exists in the cluster. */
  private recomputeGatewayClass(t: Touched): void {
    const key = `GatewayClass//${WAYPOINT_CLASS}`;
    const cls = this.store.get(key);
    const cond = cls ? { ...waypointGatewayClass().condition } : undefined;
    if (cond && cls?.metadata.generation !== undefined) cond.observedGeneration = cls.metadata.generation;
    this.setCondition(key, 'Accepted', cond, t);
  }

  /** Records which waypoint an object names, so a change of that waypoint reaches it. */
  private noteWaypointUser(storeKey: string, referenced: string | undefined): void {
    const prev = this.usesWaypoint.get(storeKey);
    if (prev === referenced) return;
    if (prev !== undefined) deleteFrom(this.waypointUsers, prev, storeKey);
    if (referenced === undefined) this.usesWaypoint.delete(storeKey);
    else {
      this.usesWaypoint.set(storeKey, referenced);
      addTo(this.waypointUsers, referenced, storeKey);
    }
  }

  private serviceBindingFor(meta: { labels?: Record<string, string> | undefined; annotations?: Record<string, string> | undefined }, namespace: string): Binding {
    return resolveServiceBinding(meta, namespace, this.namespace(namespace), (k) => this.waypoints.get(k));
  }

  private bindingFor(target: 'service' | 'workload', labels: Record<string, string> | undefined, namespace: string): Binding {
    return resolveBinding(target, labels, namespace, this.namespace(namespace), (k) => this.waypoints.get(k));
  }

  /** Rebuilds one waypoint's resources: itself, the Services bound to it, and every policy either names. */
  private recomputeWaypointConfig(key: string, t: Touched): void {
    const w = this.waypoints.get(key);
    const prev = this.waypointConfigs.get(key) ?? new Map<string, WaypointResource>();
    const next = new Map<string, WaypointResource>();
    if (w !== undefined) {
      const policies = new Map<string, AuthorizationPolicy>();
      const policyNames = (list: AuthorizationPolicy[]) =>
        list
          .filter((p) => toWaypointPolicy(p) !== undefined)
          .map((p) => {
            const id = `${nsOf(p)}/${p.metadata.name}`;
            policies.set(id, p);
            return id;
          })
          .sort();
      const own = this.targetingPolicies(
        [`Gateway/${w.namespace}/${w.name}`, `GatewayClass//${WAYPOINT_CLASS}`],
        (t2, p) =>
          (isGatewayTarget(t2, 'Gateway') && nsOf(p) === w.namespace && t2.name === w.name) ||
          (isGatewayTarget(t2, 'GatewayClass') && nsOf(p) === this.options.rootNamespace && t2.name === WAYPOINT_CLASS),
      );
      // RequestAuthentications with targetRefs: this Gateway, the class from the root namespace, or a bound Service
      // (selector ones aim at workloads: ambient waypoints ignore them, as Istio's do).
      const authns = new Map<string, RequestAuthentication>();
      const authnNames = (targetKeys: string[], matches: (t: ReturnType<typeof targetRefsOf>[number], ra: RequestAuthentication) => boolean) => {
        const out: string[] = [];
        for (const ra of this.targetingPolicies<RequestAuthentication>(targetKeys, matches, 'RequestAuthentication')) {
          const id = `${nsOf(ra)}/${ra.metadata.name}`;
          authns.set(id, ra);
          out.push(id);
        }
        return out.sort();
      };
      const ownAuthns = authnNames(
        [`Gateway/${w.namespace}/${w.name}`, `GatewayClass//${WAYPOINT_CLASS}`],
        (t2, ra) =>
          (isGatewayTarget(t2, 'Gateway') && nsOf(ra) === w.namespace && t2.name === w.name) ||
          (isGatewayTarget(t2, 'GatewayClass') && nsOf(ra) === this.options.rootNamespace && t2.name === WAYPOINT_CLASS),
      );
      const self: WaypointResource = {
        waypoint: {
          name: w.name,
          namespace: w.namespace,
          hostname: w.hostname,
          trustDomain: this.options.trustDomain,
          trafficType: toWaypointTrafficType(w.trafficType),
          policies: policyNames(own),
          ...(ownAuthns.length > 0 ? { requestAuthentications: ownAuthns } : {}),
        },
      };
      next.set(waypointResourceName(w.namespace, w.name, self), self);
      for (const svcKey of this.boundServices.get(key) ?? []) {
        const obj = this.store.get(svcKey) as KubeService | ServiceEntry | undefined;
        if (obj === undefined) continue;
        const ns = nsOf(obj);
        const targets = <P extends TargetingPolicy>(t2: PolicyTargetReference, p: P) =>
          (obj.kind === 'Service' ? isCoreService(t2) : isServiceEntryTarget(t2)) && nsOf(p) === ns && t2.name === obj.metadata.name;
        const policies = policyNames(this.targetingPolicies([svcKey], targets));
        const svcAuthns = authnNames([svcKey], targets);
        // A ServiceEntry stands for one Service per host it owns (hosts a Kubernetes Service or an older entry owns are not its).
        const hosts =
          obj.kind === 'Service'
            ? [{ hostname: serviceHostname(obj.metadata.name, ns, this.options.domainSuffix), ports: (obj.spec.ports ?? []).map((p) => p.port) }]
            : (this.entryWinners.get(svcKey) ?? []).map((s) => ({ hostname: s.hostname, ports: (obj.spec.ports ?? []).map((p) => p.number) }));
        for (const { hostname, ports } of hosts) {
          // VirtualService routes first: istiod's order between them and HTTPRoutes is undefined (docs/traffic-management.md).
          const routes = [...this.virtualServiceRoutesOf(hostname, ns, w.namespace), ...routesForWaypoint(this.routesOf(svcKey), ns, w.namespace)];
          const tcpRoutes = this.virtualServiceTcpRoutesOf(hostname, ns, w.namespace, ports);
          const service =
            obj.kind === 'Service' ? waypointService(obj, hostname, policies, routes, tcpRoutes) : waypointEntryService(obj, hostname, policies, routes, tcpRoutes);
          if (svcAuthns.length > 0) service.requestAuthentications = svcAuthns;
          const r: WaypointResource = { service };
          next.set(waypointResourceName(w.namespace, w.name, r), r);
        }
      }
      // By name: the order must not depend on the order the policies arrived in.
      for (const id of [...policies.keys()].sort()) {
        const r: WaypointResource = { policy: toWaypointPolicy(policies.get(id)!)! };
        next.set(waypointResourceName(w.namespace, w.name, r), r);
      }
      for (const id of [...authns.keys()].sort()) {
        const r: WaypointResource = { requestAuthentication: toWaypointRequestAuthentication(authns.get(id)!) };
        next.set(waypointResourceName(w.namespace, w.name, r), r);
      }
    }
    // Also without a waypoint: its indexes are cleared.
    this.addDestinations(key, key.split('/')[0]!, next);
    for (const [name, r] of prev) if (!deepEqual(r, next.get(name)) && !t.waypoint.has(name)) t.waypoint.set(name, r);
    for (const name of next.keys()) if (!prev.has(name) && !t.waypoint.has(name)) t.waypoint.set(name, undefined);
    if (next.size > 0) this.waypointConfigs.set(key, next);
    else this.waypointConfigs.delete(key);
  }

  /**
   * The Destinations of a waypoint's configuration: the DestinationRule of each Service it sends to (bound Services,
   * route backends and mirrors), by the waypoint's namespace as istiod looks rules up for a proxy.
   */
  private addDestinations(waypointKey: string, waypointNamespace: string, resources: Map<string, WaypointResource>): void {
    for (const users of this.subsetUsers.values()) users.delete(waypointKey);
    for (const svcKey of this.destinationsOfWaypoint.get(waypointKey) ?? []) deleteFrom(this.destinationUsers, svcKey, waypointKey);
    this.destinationsOfWaypoint.delete(waypointKey);
    const rules = this.store.list('DestinationRule') as DestinationRule[];
    if (rules.length === 0) return;
    const hosts = new Map<string, string>(); // hostname → store key of the Service or ServiceEntry owning it
    const note = (hostname: string, namespace: string) => {
      const kube = serviceKeyOfHost(hostname, this.options.domainSuffix);
      // Another host is a ServiceEntry's, which may come, go or change hands later: the waypoint depends on the host.
      const dependency = kube ?? `Host/${namespace}/${hostname}`;
      addTo(this.destinationUsers, dependency, waypointKey);
      addTo(this.destinationsOfWaypoint, waypointKey, dependency);
      const key = kube ?? this.entryOwning(hostname, namespace);
      if (key !== undefined) hosts.set(hostname, key);
    };
    for (const r of resources.values()) {
      if (r.service === undefined) continue;
      note(r.service.hostname, r.service.namespace);
      for (const route of r.service.routes) {
        for (const b of route.backends) if (!b.invalid) note(b.hostname, b.namespace);
        for (const m of route.mirrors ?? []) note(m.backend.hostname, m.backend.namespace);
      }
      for (const route of r.service.tcpRoutes ?? []) for (const b of route.backends) note(b.hostname, b.namespace);
    }
    const [gatewayNs, gatewayName] = waypointKey.split('/') as [string, string];
    for (const [hostname, svcKey] of [...hosts].sort(([a], [b]) => compareStrings(a, b))) {
      const svc = this.store.get(svcKey) as KubeService | ServiceEntry | undefined;
      if (svc === undefined) continue;
      const ns = nsOf(svc);
      const applying = destinationRulesFor(rules, hostname, ns, waypointNamespace, this.options);
      if (applying.length === 0) continue;
      const translated = translateDestination(
        applying,
        hostname,
        ns,
        svc.kind === 'Service' ? (svc.spec.ports ?? []).map((p) => p.port) : (svc.spec.ports ?? []).map((p) => p.number),
        { ...this.options, subsetWorkloads: (labels) => this.subsetWorkloads(svcKey, svc, hostname, labels) },
      );
      if (translated === undefined) continue;
      if (translated.destination.clusters.some((c) => c.subset !== '')) addTo(this.subsetUsers, ns, waypointKey);
      const r: WaypointResource = { destination: translated.destination };
      resources.set(waypointResourceName(gatewayNs, gatewayName, r), r);
    }
  }

  /**
   * The endpoints of a Service or ServiceEntry whose labels carry a subset's (istiod's subset selection; no labels:
   * every endpoint): the pods a Service selects, or, without a selector, the pods its EndpointSlices name (their other
   * endpoints have no labels); an entry's inline endpoints of this host (by their labels); and the pods and
   * WorkloadEntries a selector or workloadSelector picks. Sorted uids.
   */
  private subsetWorkloads(svcKey: string, svc: KubeService | ServiceEntry, hostname: string, labels: Labels): string[] {
    const ns = nsOf(svc);
    const uids = new Set<string>();
    const add = (uid: string | undefined) => uid !== undefined && uids.add(uid);
    const selected = (selector: Labels) => {
      // A subset whose labels contradict the selector has none.
      for (const k in labels) if (k in selector && selector[k] !== labels[k]) return;
      const wanted = { ...labels, ...selector };
      for (const pod of this.store.matching('Pod', ns, wanted)) add(this.podUids.get(resourceKey(pod)));
      for (const dep of this.store.matching('Deployment', ns, wanted)) for (const uid of this.replicaUids.get(resourceKey(dep)) ?? []) add(uid);
      for (const we of this.store.matching('WorkloadEntry', ns, wanted)) add(this.workloadEntryUids.get(resourceKey(we)));
    };
    if (svc.kind === 'Service') {
      const selector = svc.spec.selector;
      if (nonEmpty(selector)) selected(selector);
      else {
        for (const slice of this.slicesByService.get(svcKey) ?? []) {
          const es = this.store.get(slice) as EndpointSlice | undefined;
          for (const { ref, uid } of es ? slicePodRefs(es) : []) {
            // As for the slice's Service on the pod: the reference must be to this pod (its uid).
            const pod = this.store.get(`Pod/${ref}`) as Pod | undefined;
            if (pod && (pod.metadata.uid ?? '') === uid && selectorMatches(labels, pod.metadata.labels)) add(this.podUids.get(`Pod/${ref}`));
          }
          if (!nonEmpty(labels)) for (const uid of this.sliceUids.get(slice) ?? []) add(uid);
        }
      }
    } else {
      const key = `${ns}/${hostname}`;
      for (const { workload, labels: own } of serviceEntryWorkloads(svc, this.entryWinners.get(svcKey) ?? [], this.options)) {
        if (key in workload.services && selectorMatches(labels, own ?? {})) add(workload.uid);
      }
      const selector = svc.spec.workloadSelector?.labels;
      if (nonEmpty(selector)) selected(selector);
    }
    return [...uids].sort();
  }

  /** The ServiceEntry whose Service for `hostname` is sent in `namespace` (store key), if one owns it there. */
  private entryOwning(hostname: string, namespace: string): string | undefined {
    for (const key of this.entriesByHostname.get(hostname) ?? []) {
      if (key.split('/')[1] === namespace && this.entryWinners.get(key)?.some((s) => s.hostname === hostname)) return key;
    }
    return undefined;
  }

  /** TargetRefs policies of a kind filed under any of `targetKeys` (store keys) with a target `matches` accepts, each once. */
  private targetingPolicies<P extends TargetingPolicy = AuthorizationPolicy>(
    targetKeys: string[],
    matches: (target: ReturnType<typeof targetRefsOf>[number], p: P) => boolean,
    kind: P['kind'] = 'AuthorizationPolicy',
  ): P[] {
    const out: P[] = [];
    const seen = new Set<string>();
    for (const targetKey of targetKeys) {
      for (const key of this.policiesByTarget.get(targetKey) ?? []) {
        if (seen.has(key) || !key.startsWith(`${kind}/`)) continue;
        seen.add(key);
        const p = this.store.get(key) as P | undefined;
        if (p && targetRefsOf(p).some((t) => matches(t, p))) out.push(p);
      }
    }
    return out;
  }

  private waypointResource(name: string): WaypointResource | undefined {
    const slash = name.indexOf('/', name.indexOf('/') + 1);
    return this.waypointConfigs.get(name.slice(0, slash))?.get(name);
  }

  /** The WaypointAccepted condition of a targetRefs policy: is each target bound to a waypoint? */
  private recomputePolicyBinding(key: string, t: Touched): void {
    const p = this.store.get(key) as TargetingPolicy | undefined;
    const targets = p ? targetRefsOf(p) : [];
    if (p === undefined || targets.length === 0) {
      this.setCondition(key, WAYPOINT_ACCEPTED, undefined, t);
      return;
    }
    const root = this.options.rootNamespace;
    const bindings: TargetBinding[] = targets.map((target) => {
      const ns = target.namespace || nsOf(p);
      const ref = `${ns}/${target.name}`;
      const ancestor = `${target.kind}.${target.group || 'core'}:${ref}`;
      const result = (bound: boolean, reason: string, message: string): TargetBinding => ({ ancestor, bound, reason, message });
      if (isGatewayTarget(target, 'GatewayClass')) {
        if (ns !== root) return result(false, 'Invalid', `${p.kind} must be in the root namespace \`${root}\` when referencing a GatewayClass`);
        const cls = this.store.get(`GatewayClass//${target.name}`) as Extract<Resource, { kind: 'GatewayClass' }> | undefined;
        if (!cls) return result(false, 'TargetNotFound', 'not bound');
        if (cls.spec.controllerName !== waypointGatewayClass().spec.controllerName) {
          return result(false, 'Invalid', `GatewayClass must use controller name \`${waypointGatewayClass().spec.controllerName}\` for waypoints`);
        }
        return result(true, 'Accepted', `bound to ${target.name}`);
      }
      if (isGatewayTarget(target, 'Gateway')) {
        const w = this.waypoints.get(ref);
        return w?.ready ? result(true, 'Accepted', `bound to ${ref}`) : result(false, 'TargetNotFound', 'not bound');
      }
      const kind = isCoreService(target) ? 'Service' : isServiceEntryTarget(target) ? 'ServiceEntry' : undefined;
      if (kind !== undefined) {
        if (!this.store.get(`${kind}/${ns}/${target.name}`)) return result(false, 'TargetNotFound', `${kind} ${ref} was not found`);
        const w = this.serviceBindings.get(`${kind}/${ns}/${target.name}`)?.waypoint;
        return w ? result(true, 'Accepted', `bound to ${w.key}`) : result(false, 'AncestorNotBound', `${kind} ${ref} is not bound to a waypoint`);
      }
      return result(false, 'unknown', 'not bound');
    });
    this.setCondition(key, WAYPOINT_ACCEPTED, waypointAcceptedCondition(p, bindings), t);
  }

  // ---- HTTPRoutes and GRPCRoutes ---------------------------------------------------------------------------------

  /** Translates one route again: its routes per parent Service or ServiceEntry (re-sent to their waypoints) and its status. */
  private recomputeRoute(key: string, d: Dirty, t: Touched): void {
    const route = this.store.get(key) as GatewayRoute | undefined;
    const translated =
      route === undefined ? undefined : route.kind === 'HTTPRoute' ? translateHTTPRoute(route, this.routeContext) : translateGRPCRoute(route, this.routeContext);
    this.indexRouteDependencies(key, translated?.dependencies ?? []);
    const next = translated?.services ?? new Map<string, WaypointRoute[]>();
    for (const svcKey of this.routeServices.get(key) ?? []) {
      if (next.has(svcKey)) continue;
      const byRoute = this.serviceRoutes.get(svcKey);
      byRoute?.delete(key);
      if (byRoute?.size === 0) this.serviceRoutes.delete(svcKey);
      this.markServiceWaypoint(svcKey, d);
    }
    for (const svcKey of next.keys()) {
      const contribution = serviceRoutes(route!, translated!, svcKey)!;
      let byRoute = this.serviceRoutes.get(svcKey);
      if (deepEqual(byRoute?.get(key), contribution)) continue;
      if (byRoute === undefined) this.serviceRoutes.set(svcKey, (byRoute = new Map()));
      byRoute.set(key, contribution);
      this.markServiceWaypoint(svcKey, d);
    }
    if (next.size > 0) this.routeServices.set(key, [...next.keys()]);
    else this.routeServices.delete(key);
    this.setRouteStatus(key, translated?.parents ?? [], t);
  }

  /** Files a route under the Services, ServiceEntries and Namespaces its translation read. */
  private indexRouteDependencies(key: string, next: string[]): void {
    const prev = this.routeDependencies.get(key) ?? [];
    for (const dep of prev) if (!next.includes(dep)) deleteFrom(this.routesByDependency, dep, key);
    for (const dep of next) addTo(this.routesByDependency, dep, key);
    if (next.length > 0) this.routeDependencies.set(key, next);
    else this.routeDependencies.delete(key);
  }

  /** The waypoints a Service is bound to (its primary and canary) must re-send it (its routes changed). */
  private markServiceWaypoint(svcKey: string, d: Dirty): void {
    for (const w of owningWaypoints(this.serviceBindings.get(svcKey))) d.waypointConfigs.add(w);
  }

  /** Every route of the HTTPRoutes and GRPCRoutes attached to a Service (store key), in evaluation order. */
  private routesOf(svcKey: string): WaypointRoute[] {
    const byRoute = this.serviceRoutes.get(svcKey);
    return byRoute === undefined ? [] : orderServiceRoutes([...byRoute.values()]);
  }

  // ---- VirtualServices ---------------------------------------------------------------------------------------------

  /** Translates one VirtualService again; the waypoints of the Services its hosts named before or name now re-send them. */
  private recomputeVirtualService(key: string, d: Dirty): void {
    const vs = this.store.get(key) as VirtualService | undefined;
    const prev = this.virtualServices.get(key);
    const next = vs === undefined ? undefined : translateVirtualService(vs, this.routeContext);
    if (deepEqual(prev, next)) return;
    if (prev !== undefined) this.indexVirtualService(key, prev, false);
    if (next === undefined) this.virtualServices.delete(key);
    else {
      this.virtualServices.set(key, next);
      this.indexVirtualService(key, next, true);
    }
    for (const host of new Set([...(prev?.hosts ?? []), ...(next?.hosts ?? [])])) this.markHostWaypoints(host, d);
  }

  /** Files (or unfiles) a VirtualService under its hosts and destination Services. */
  private indexVirtualService(key: string, v: TranslatedVirtualService, file: boolean): void {
    const op = file ? addTo : deleteFrom;
    for (const host of v.hosts) {
      if (!host.startsWith('*')) op(this.virtualServicesByHost, host, key);
      else if (file) this.wildcardVirtualServices.add(key);
      else this.wildcardVirtualServices.delete(key);
    }
    for (const dep of v.dependencies) op(this.virtualServicesByDependency, dep, key);
  }

  /** Marks the waypoints of the Services a VirtualService host names. */
  private markHostWaypoints(host: string, d: Dirty): void {
    if (!host.startsWith('*')) {
      const svcKey = serviceKeyOfHost(host, this.options.domainSuffix);
      if (svcKey !== undefined) this.markServiceWaypoint(svcKey, d);
      for (const entry of this.entriesByHostname.get(host) ?? []) this.markServiceWaypoint(entry, d);
      return;
    }
    for (const svcKey of this.serviceBindings.keys()) {
      const [kind, ns, name] = svcKey.split('/');
      const hostnames = kind === 'ServiceEntry' ? (this.entryWinners.get(svcKey) ?? []).map((s) => s.hostname) : [serviceHostname(name!, ns!, this.options.domainSuffix)];
      if (hostnames.some((h) => hostMatches(host, h))) this.markServiceWaypoint(svcKey, d);
    }
  }

  /** The VirtualService routes a waypoint applies to a Service (by hostname), in evaluation order. */
  private virtualServiceRoutesOf(hostname: string, serviceNamespace: string, waypointNamespace: string): WaypointRoute[] {
    const keys = [...(this.virtualServicesByHost.get(hostname) ?? []), ...this.wildcardVirtualServices];
    if (keys.length === 0) return [];
    return virtualServiceRoutes(new Set(keys.map((k) => this.virtualServices.get(k)!)), hostname, serviceNamespace, waypointNamespace);
  }

  private virtualServiceTcpRoutesOf(hostname: string, serviceNamespace: string, waypointNamespace: string, ports: number[]): WaypointTcpRoute[] {
    const keys = [...(this.virtualServicesByHost.get(hostname) ?? []), ...this.wildcardVirtualServices];
    if (keys.length === 0) return [];
    return virtualServiceTcpRoutes(new Set(keys.map((k) => this.virtualServices.get(k)!)), hostname, serviceNamespace, waypointNamespace, ports);
  }

  private setRouteStatus(storeKey: string, parents: RouteParentStatus[], t: Touched): void {
    const prev = this.routeParents.get(storeKey);
    const next: RouteParentSlots[] = parents.map((p) => {
      const ref = parentRefString(p.parentRef, storeKey.split('/')[1]!);
      return { parentRef: p.parentRef, controllerName: p.controllerName, slots: p.conditions.map((c) => `parent/${ref}/${c.type}`) };
    });
    // Slots of parents (or conditions) that are gone go first, so a removed parentRef leaves nothing behind.
    const keep = new Set(next.flatMap((p) => p.slots));
    for (const slot of [...(this.conditions.get(storeKey)?.keys() ?? [])]) if (!keep.has(slot)) this.setCondition(storeKey, slot, undefined, t);
    parents.forEach((p, i) => p.conditions.forEach((c, j) => this.setCondition(storeKey, next[i]!.slots[j]!, { ...c }, t)));
    if (deepEqual(prev, next.length > 0 ? next : undefined)) return;
    t.statuses.add(storeKey);
    if (next.length > 0) this.routeParents.set(storeKey, next);
    else this.routeParents.delete(storeKey);
  }

  // ---- state updates --------------------------------------------------------------------------------------------

  private touchAddress(key: string, t: Touched): void {
    if (t.addresses.has(key)) return;
    const w = this.workloads.get(key);
    const s = this.services.get(key);
    t.addresses.set(key, w ? { workload: w } : s ? { service: s } : undefined);
  }

  private setWorkload(uid: string, w: Workload | undefined, t: Touched): void {
    const prev = this.workloads.get(uid);
    if (prev === undefined && w === undefined) return;
    if (prev !== undefined && w !== undefined && deepEqual(prev, w)) return;
    this.touchAddress(uid, t);
    if (prev !== undefined) this.unindexWorkload(prev);
    if (w === undefined) {
      this.workloads.delete(uid);
      return;
    }
    this.workloads.set(uid, w);
    for (const a of w.addresses) addTo(this.byIp, bytesToIp(a), uid);
    if (w.node) addTo(this.byNode, w.node, uid);
  }

  private unindexWorkload(w: Workload): void {
    for (const a of w.addresses) deleteFrom(this.byIp, bytesToIp(a), w.uid);
    if (w.node) deleteFrom(this.byNode, w.node, w.uid);
  }

  private setService(key: string, s: Service | undefined, t: Touched): void {
    const prev = this.services.get(key);
    if (prev === undefined && s === undefined) return;
    if (prev !== undefined && s !== undefined && deepEqual(prev, s)) return;
    this.touchAddress(key, t);
    if (s === undefined) this.services.delete(key);
    else this.services.set(key, s);
  }

  private setAuthorization(key: string, a: Authorization | undefined, t: Touched): void {
    const prev = this.authorizations.get(key);
    if (prev === undefined && a === undefined) return;
    if (prev !== undefined && a !== undefined && deepEqual(prev, a)) return;
    if (!t.authorizations.has(key)) t.authorizations.set(key, prev);
    if (a === undefined) this.authorizations.delete(key);
    else this.authorizations.set(key, a);
  }

  /** Sets (or, with undefined, clears) one condition of an object's status; `slot` is its type or a listener's. */
  private setCondition(key: string, slot: string, c: Condition | undefined, t: Touched): void {
    let conditions = this.conditions.get(key);
    const prev = conditions?.get(slot);
    if (c !== undefined) {
      // As in Kubernetes, lastTransitionTime moves only when the status does: a new reason or message alone keeps it.
      c.lastTransitionTime =
        prev?.lastTransitionTime !== undefined && prev.status === c.status
          ? prev.lastTransitionTime
          : `${this.clock().toISOString().slice(0, 19)}Z`;
    }
    if (deepEqual(prev, c)) return;
    t.statuses.add(key);
    if (c === undefined) {
      conditions?.delete(slot);
      if (conditions?.size === 0) this.conditions.delete(key);
      return;
    }
    if (conditions === undefined) this.conditions.set(key, (conditions = new Map()));
    conditions.set(slot, c);
  }

  private statusOf(storeKey: string): ObjectStatus {
    const [kind, namespace, name] = storeKey.split('/') as [Kind, string, string];
    const slots = this.conditions.get(storeKey);
    const out: ObjectStatus = { kind, namespace, name, conditions: [] };
    for (const type of CONDITION_ORDER[kind] ?? []) {
      const c = slots?.get(type);
      if (c) out.conditions.push(c);
    }
    // A Service's status is the cluster's, a ServiceEntry's shared with istiod's address allocation.
    if (kind === 'Service') out.ownedConditions = [WAYPOINT_BOUND];
    if (kind === 'ServiceEntry') out.ownedConditions = [WAYPOINT_BOUND, WAYPOINT_MISSING];
    const parents = this.routeParents.get(storeKey);
    if (parents && slots) {
      out.parents = parents.map((p) => ({ parentRef: p.parentRef, controllerName: p.controllerName, conditions: p.slots.map((slot) => slots.get(slot)!) }));
    }
    const gw = this.gatewayStatuses.get(storeKey);
    if (gw && slots) {
      if (gw.addresses) out.addresses = gw.addresses;
      out.listeners = (gw.listeners ?? []).map((l) => ({
        ...l,
        conditions: l.conditions.map((c) => slots.get(`listener/${l.name}/${c.type}`) ?? c),
      }));
    }
    return out;
  }

  private emit(t: Touched): void {
    const addresses: AmbientChange = { typeUrl: TYPE_ADDRESS, upserted: new Map(), removed: [] };
    for (const [key, before] of t.addresses) {
      const w = this.workloads.get(key);
      const s = this.services.get(key);
      const after: Address | undefined = w ? { workload: w } : s ? { service: s } : undefined;
      if (deepEqual(before, after)) continue;
      if (after === undefined) addresses.removed.push(key);
      else addresses.upserted.set(key, after);
    }
    const authorizations: AmbientChange = { typeUrl: TYPE_AUTHORIZATION, upserted: new Map(), removed: [] };
    for (const [key, before] of t.authorizations) {
      const after = this.authorizations.get(key);
      if (deepEqual(before, after)) continue;
      if (after === undefined) authorizations.removed.push(key);
      else authorizations.upserted.set(key, after);
    }
    const waypoint: AmbientChange = { typeUrl: TYPE_WAYPOINT, upserted: new Map(), removed: [] };
    for (const [name, before] of t.waypoint) {
      const after = this.waypointResource(name);
      if (deepEqual(before, after)) continue;
      if (after === undefined) waypoint.removed.push(name);
      else waypoint.upserted.set(name, after);
    }
    // Authorizations first: a workload must never reference a policy its ztunnel has not received yet.
    for (const change of [authorizations, addresses, waypoint]) {
      if (change.upserted.size + change.removed.length === 0) continue;
      for (const l of [...this.listeners]) l(change);
    }
    if (t.statuses.size > 0) {
      const changed = [...t.statuses].sort().map((k) => this.statusOf(k));
      for (const l of [...this.statusListeners]) l(changed);
    }
  }
}
