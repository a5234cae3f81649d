// The ambient view rendered the way ztunnel's `/config_dump` shows it (src/xds/configdump.ts), plus the policy status
// conditions Ambit writes; and one waypoint's view: the ambit.waypoint resources it would receive, plus the status
// of the Services, routes and policies involved.
import type { AuthorizationPolicy, Condition, Namespace, ParentReference, Service, ServiceEntry, VirtualService } from '../api/types.js';
import { dumpAuthorization, dumpService, dumpWorkload } from '../xds/configdump.js';
import type { Workload, WaypointDestination, WaypointPolicy, WaypointRequestAuthentication, WaypointResource, WaypointSelf, WaypointService } from '../xds/types.js';
import { TYPE_WAYPOINT, waypointCollection } from '../xds/types.js';
import type { AmbientIndex } from './ambient.js';
import { meshParentKey, type RouteParentStatus } from './routes.js';
import { serviceHostname } from './services.js';
import type { ConfigStore } from './store.js';
import { appliesTo, translateVirtualService, virtualServiceContext } from './virtualservices.js';
import { WAYPOINT_CLASS, isCoreService, isGatewayTarget, isServiceEntryTarget, isWaypointGateway, resolveServiceBinding, targetRefsOf } from './waypoints.js';

export interface ConfigDump {
  workloads: Record<string, unknown>[];
  services: Record<string, unknown>[];
  policies: Record<string, unknown>[];
  /** Status conditions Ambit writes on AuthorizationPolicies (`kubectl get ap -o yaml` shows them under status). */
  policyStatus: { namespace: string; name: string; conditions: Condition[] }[];
}

const byKey =
  <T>(key: (t: T) => string) =>
  (a: T, b: T): number => {
    const ka = key(a);
    const kb = key(b);
    return ka < kb ? -1 : ka > kb ? 1 : 0;
  };

export function renderConfigDump(index: AmbientIndex): ConfigDump {
  const workloads = index.allWorkloads().sort(byKey((w) => `${w.namespace}/${w.name}`));
  const endpointsByService = new Map<string, Workload[]>();
  for (const w of workloads) {
    for (const key of Object.keys(w.services)) {
      let list = endpointsByService.get(key);
      if (list === undefined) endpointsByService.set(key, (list = []));
      list.push(w);
    }
  }
  return {
    workloads: workloads.map(dumpWorkload),
    services: index
      .allServices()
      .sort(byKey((s) => `${s.namespace}/${s.hostname}`))
      .map((s) => dumpService(s, endpointsByService.get(`${s.namespace}/${s.hostname}`) ?? [])),
    policies: index
      .allAuthorizations()
      .sort(byKey((a) => `${a.namespace}/${a.name}`))
      .map(dumpAuthorization),
    policyStatus: index
      .statuses()
      .filter((s) => s.kind === 'AuthorizationPolicy')
      .map((s) => ({ namespace: s.namespace, name: s.name, conditions: s.conditions })),
  };
}

// ---- `ambit config waypoint` ----------------------------------------------------------------------------------------

/** What one waypoint would receive (its TYPE_WAYPOINT resources), plus the status of the objects involved. */
export interface WaypointConfigDump {
  /** `waypoint`: the waypoint itself (`<ns>/<gateway>/waypoint`). */
  waypoint: WaypointSelf;
  /** `service`: each bound Service with its ports, policies and routes in evaluation order, by resource name. */
  services: WaypointService[];
  /** `policy`: each AuthorizationPolicy as sent, by resource name. */
  policies: WaypointPolicy[];
  /**
   * `destination`: the DestinationRule of each Service the waypoint sends to, per port and subset, by resource name;
   * absent when none applies.
   */
  destinations?: WaypointDestination[];
  /** `authn`: each RequestAuthentication with targetRefs that applies, by resource name; absent when none. */
  requestAuthentications?: WaypointRequestAuthentication[];
  /** The `istio.io/WaypointBound` condition of every Service naming this waypoint (bound or not). */
  serviceStatus: { namespace: string; name: string; conditions: Condition[] }[];
  /**
   * Ambit's `status.parents` entries of the HTTPRoutes and GRPCRoutes whose parent is one of those Services, or a
   * ServiceEntry naming this waypoint.
   */
  routeStatus: { kind: string; namespace: string; name: string; parents: RouteParentStatus[] }[];
  /** The AuthorizationPolicies sent, or with a targetRef naming this waypoint, its class or one of those Services. */
  policyStatus: { namespace: string; name: string; conditions: Condition[] }[];
  /**
   * VirtualServices that apply to a bound Service but are not programmed, and why (Istio gives a VirtualService no
   * status to say it); absent when there are none.
   */
  unprogrammedVirtualServices?: { namespace: string; name: string; unsupported: string[] }[];
}

/** `namespace/name` of every Gateway of class istio-waypoint in the store, sorted. */
export function waypointKeys(store: ConfigStore): string[] {
  return store
    .list('Gateway')
    .filter(isWaypointGateway)
    .map((g) => `${g.metadata.namespace ?? ''}/${g.metadata.name}`)
    .sort();
}

/**
 * The resources the control plane serves the waypoint `key` (`namespace/name`) in its collection
 * (waypointCollection), as the index computes them; undefined when there is no such waypoint.
 */
export function renderWaypointConfig(index: AmbientIndex, key: string): WaypointConfigDump | undefined {
  const [namespace, name] = key.split('/') as [string, string];
  const prefix = waypointCollection(namespace, name).slice(0, -1);
  const mine = [...index.snapshot(TYPE_WAYPOINT)]
    .filter(([n]) => n.startsWith(prefix))
    .sort(byKey(([n]) => n))
    .map(([, r]) => r as WaypointResource);
  const self = mine.find((r) => r.waypoint)?.waypoint;
  if (self === undefined) return undefined;
  const services = mine.flatMap((r) => (r.service ? [r.service] : []));
  const policies = mine.flatMap((r) => (r.policy ? [r.policy] : []));
  const destinations = mine.flatMap((r) => (r.destination ? [r.destination] : []));
  const authns = mine.flatMap((r) => (r.requestAuthentication ? [r.requestAuthentication] : []));

  const store = index.store;
  // Services naming this waypoint: the bound ones, and those that cannot bind (their condition says why). A
  // ServiceEntry's hosts are sent named after the entry: they are among the entries below.
  const suffix = index.options.domainSuffix;
  const involvedServices = new Set(services.filter((s) => s.hostname === serviceHostname(s.name, s.namespace, suffix)).map((s) => `${s.namespace}/${s.name}`));
  // As primary or as canary.
  const names = (o: Service | ServiceEntry): boolean => {
    const ns = o.metadata.namespace ?? '';
    const b = resolveServiceBinding(o.metadata, ns, store.get(`Namespace//${ns}`) as Namespace | undefined, (k) => index.waypoint(k));
    return b.referenced === key || b.canaryReferenced === key;
  };
  for (const s of store.list('Service')) if (names(s)) involvedServices.add(`${s.metadata.namespace ?? ''}/${s.metadata.name}`);
  const involvedEntries = new Set<string>();
  for (const se of store.list('ServiceEntry')) if (names(se)) involvedEntries.add(`${se.metadata.namespace ?? ''}/${se.metadata.name}`);
  // A route parent (Service or ServiceEntry) that names this waypoint.
  const involvedParent = (ref: ParentReference, routeNs: string): boolean => {
    const key = meshParentKey(ref, routeNs);
    if (key === undefined) return false;
    const [kind, ...rest] = key.split('/');
    return (kind === 'Service' ? involvedServices : involvedEntries).has(rest.join('/'));
  };
  const sent = new Set(policies.map((p) => `${p.namespace}/${p.name}`));
  const root = index.options.rootNamespace;
  const involvedPolicy = (p: AuthorizationPolicy): boolean => {
    const ns = p.metadata.namespace ?? '';
    if (sent.has(`${ns}/${p.metadata.name}`)) return true;
    return targetRefsOf(p).some(
      (t) =>
        (isGatewayTarget(t, 'Gateway') && ns === namespace && t.name === name) ||
        (isGatewayTarget(t, 'GatewayClass') && ns === root && t.name === WAYPOINT_CLASS) ||
        (isCoreService(t) && involvedServices.has(`${ns}/${t.name}`)) ||
        (isServiceEntryTarget(t) && involvedEntries.has(`${ns}/${t.name}`)),
    );
  };

  const out: WaypointConfigDump = { waypoint: self, services, policies, ...(destinations.length > 0 ? { destinations } : {}), ...(authns.length > 0 ? { requestAuthentications: authns } : {}), serviceStatus: [], routeStatus: [], policyStatus: [] };
  for (const s of index.statuses()) {
    const object = store.get(`${s.kind}/${s.namespace}/${s.name}`);
    if (object === undefined) continue;
    if (s.kind === 'Service' && involvedServices.has(`${s.namespace}/${s.name}`) && s.conditions.length > 0) {
      out.serviceStatus.push({ namespace: s.namespace, name: s.name, conditions: s.conditions });
    } else if ((s.kind === 'HTTPRoute' || s.kind === 'GRPCRoute') && s.parents !== undefined) {
      const parents = s.parents.filter((p) => involvedParent(p.parentRef, s.namespace));
      if (parents.length > 0) out.routeStatus.push({ kind: s.kind, namespace: s.namespace, name: s.name, parents });
    } else if (s.kind === 'AuthorizationPolicy' && involvedPolicy(object as AuthorizationPolicy)) {
      out.policyStatus.push({ namespace: s.namespace, name: s.name, conditions: s.conditions });
    }
  }
  const ctx = virtualServiceContext((k) => store.get(k), index.options.domainSuffix);
  const unprogrammed = store
    .list('VirtualService')
    .map((v) => translateVirtualService(v as VirtualService, ctx))
    .filter((t) => t.unsupported.length > 0 && services.some((svc) => appliesTo(t, svc.hostname, svc.namespace, namespace)))
    .map((t) => ({ namespace: t.namespace, name: t.name, unsupported: t.unsupported }));
  if (unprogrammed.length > 0) out.unprogrammedVirtualServices = unprogrammed;
  return out;
}
