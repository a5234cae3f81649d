// The ambient index: istiod's translation of the config store into what ztunnels receive (Address and Authorization
// resources) plus the ZtunnelAccepted status of every AuthorizationPolicy. It is incremental: each store change
// marks only the objects it can affect (via the store's label/selector indexes), recomputes those, and emits only
// resources whose translation actually changed.
import type { Condition, Deployment, Namespace, PeerAuthentication, Pod, Resource, Service as KubeService } from '../api/types.js';
import { DEFAULT_CLUSTER_ID, DEFAULT_TRUST_DOMAIN, ROOT_NAMESPACE, resourceKey } from '../api/types.js';
import type { Address, Authorization, PortList, Service, Workload } from '../xds/types.js';
import { TYPE_ADDRESS, TYPE_AUTHORIZATION } from '../xds/types.js';
import type { ConfigStore, Labels, StoreChange } from './store.js';
import { selectorMatches } from './store.js';
import { addListener, addTo, deepEqual, deleteFrom } from './collections.js';
import { bytesToIp, ipToBytes } from '../common/ip.js';
import { convertAuthorizationPolicy } from './authorization.js';
import type { ConvertedPolicy } from './authorization.js';
import { convertPeerAuthentication, convertedPeerAuthenticationName, oldest, peerAuthenticationPolicyKeys, staticStrictPolicy, STATIC_STRICT_POLICY_NAME } from './peerauth.js';
import { buildService, serviceKeyOf, workloadPortList } from './services.js';
import type { MeshOptions } from './services.js';
import { buildWorkload, podSource, replicaNames, replicaSource } from './workloads.js';
import type { WorkloadSource } from './workloads.js';

export type { MeshOptions } from './services.js';

/** One batch of xDS changes for one type: resources whose translation changed, and names that disappeared. */
export interface AmbientChange {
  typeUrl: typeof TYPE_ADDRESS | typeof TYPE_AUTHORIZATION;
  upserted: Map<string, Address | Authorization>;
  removed: string[];
}

export type AmbientListener = (change: AmbientChange) => void;

/** Status conditions Ambit writes on one object (today: ZtunnelAccepted on AuthorizationPolicies). */
export interface PolicyStatus {
  kind: 'AuthorizationPolicy';
  namespace: string;
  name: string;
  /** Empty when the policy has no ztunnel condition (targetRefs) or was deleted. */
  conditions: Condition[];
}

export type StatusListener = (changed: PolicyStatus[]) => void;

const ZTUNNEL_ACCEPTED = 'ZtunnelAccepted';

/** Objects to recompute for one store change, by store key. */
interface Dirty {
  pods: Set<string>;
  deployments: Set<string>;
  services: Set<string>;
  policies: Set<string>;
  peerAuthentications: Set<string>;
  everyWorkload: boolean;
  everyPeerAuthentication: boolean;
  staticStrict: boolean;
}

/** Per batch: the value each touched xDS resource had before it, to emit only real differences. */
interface Touched {
  addresses: Map<string, Address | undefined>;
  authorizations: Map<string, Authorization | undefined>;
  statuses: Set<string>;
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
  private readonly services = new Map<string, Service>(); // ns/hostname → service
  private readonly serviceKeys = new Map<string, string>(); // Service store key → ns/hostname
  private readonly authorizations = new Map<string, Authorization>(); // ns/name → authorization
  private readonly converted = new Map<string, ConvertedPolicy>(); // AuthorizationPolicy store key → conversion
  private readonly conditions = new Map<string, Condition>(); // AuthorizationPolicy store key → ZtunnelAccepted
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
  snapshot(typeUrl: string): Map<string, Address | Authorization> {
    const out = new Map<string, Address | Authorization>();
    if (typeUrl === TYPE_ADDRESS) {
      for (const [uid, workload] of this.workloads) out.set(uid, { workload });
      for (const [key, service] of this.services) out.set(key, { service });
    } else if (typeUrl === TYPE_AUTHORIZATION) {
      for (const [key, a] of this.authorizations) out.set(key, a);
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

  /** ZtunnelAccepted conditions of every AuthorizationPolicy that has one, sorted by namespace/name. */
  statuses(): PolicyStatus[] {
    const out: PolicyStatus[] = [];
    for (const key of [...this.conditions.keys()].sort()) out.push(this.statusOf(key));
    return out;
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
      policies: new Set(),
      peerAuthentications: new Set(),
      everyWorkload: false,
      everyPeerAuthentication: false,
      staticStrict: false,
    };
    for (const keys of [change.added, change.updated, change.removed]) {
      for (const key of keys) this.markDirty(key, change.previous.get(key), this.store.get(key), dirty);
    }
    const touched: Touched = { addresses: new Map(), authorizations: new Map(), statuses: new Set() };
    // Policies first: workloads list the policies that are bound.
    for (const key of dirty.policies) this.recomputePolicy(key, touched);
    if (dirty.staticStrict) this.recomputeStaticStrict(touched);
    // The dirty set also holds deleted keys, which "every current one" would miss.
    if (dirty.everyPeerAuthentication) for (const pa of this.store.list('PeerAuthentication')) dirty.peerAuthentications.add(resourceKey(pa));
    for (const key of dirty.peerAuthentications) this.recomputePeerAuthentication(key, touched);
    for (const key of dirty.services) this.recomputeService(key, touched);
    if (dirty.everyWorkload) {
      for (const p of this.store.list('Pod')) dirty.pods.add(resourceKey(p));
      for (const d of this.store.list('Deployment')) dirty.deployments.add(resourceKey(d));
    }
    for (const key of dirty.pods) this.recomputePod(key, touched);
    for (const key of dirty.deployments) this.recomputeDeployment(key, touched);
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
        // Replica counts of the Deployments owning the pod.
        for (const v of versions) for (const dep of this.store.selecting('Deployment', ns, v.metadata.labels)) d.deployments.add(resourceKey(dep));
        break;
      case 'Deployment':
        d.deployments.add(key);
        for (const v of versions) {
          const sel = (v as Deployment).spec.selector?.matchLabels;
          if (!nonEmpty(sel)) continue;
          // Pods it owns (workload name/type), and other Deployments competing for them (replica counts).
          for (const pod of this.store.matching('Pod', ns, sel)) {
            d.pods.add(resourceKey(pod));
            for (const dep of this.store.selecting('Deployment', ns, pod.metadata.labels)) d.deployments.add(resourceKey(dep));
          }
        }
        break;
      case 'Service':
        d.services.add(key);
        for (const v of versions) this.markSelected(ns, (v as KubeService).spec.selector, d);
        break;
      case 'Namespace':
        // Capture labels and traffic-distribution annotations apply to everything in the namespace.
        for (const p of this.store.list('Pod', r.metadata.name)) d.pods.add(resourceKey(p));
        for (const dep of this.store.list('Deployment', r.metadata.name)) d.deployments.add(resourceKey(dep));
        for (const s of this.store.list('Service', r.metadata.name)) d.services.add(resourceKey(s));
        break;
      case 'AuthorizationPolicy':
        d.policies.add(key);
        // Only selector policies are listed on workloads; a root-namespace selector reaches every namespace.
        for (const v of versions) {
          const sel = (v as Resource & { kind: 'AuthorizationPolicy' }).spec.selector?.matchLabels;
          this.markSelected(ns === this.options.rootNamespace ? undefined : ns, sel, d);
        }
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
          } else {
            for (const p of this.store.list('Pod', ns)) d.pods.add(resourceKey(p));
            for (const dep of this.store.list('Deployment', ns)) d.deployments.add(resourceKey(dep));
            for (const pa of this.store.list('PeerAuthentication', ns)) d.peerAuthentications.add(resourceKey(pa));
          }
        }
        break;
      default:
        // Other kinds (waypoint/L7 configuration) do not reach ztunnel.
        break;
    }
  }

  /** Marks pods and Deployment replicas matching a non-empty selector (namespace undefined = all namespaces). */
  private markSelected(namespace: string | undefined, selector: Labels | undefined, d: Dirty): void {
    if (!nonEmpty(selector)) return;
    for (const p of this.store.matching('Pod', namespace, selector)) d.pods.add(resourceKey(p));
    for (const dep of this.store.matching('Deployment', namespace, selector)) d.deployments.add(resourceKey(dep));
  }

  private recomputePolicy(key: string, t: Touched): void {
    const ap = this.store.get(key) as (Resource & { kind: 'AuthorizationPolicy' }) | undefined;
    const [, ns, name] = key.split('/') as [string, string, string];
    const resourceName = `${ns}/${name}`;
    if (ap === undefined) {
      this.converted.delete(key);
      this.setAuthorization(resourceName, undefined, t);
      this.setCondition(key, undefined, t);
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
    this.setCondition(key, condition, t);
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

  private recomputeService(key: string, t: Touched): void {
    const s = this.store.get(key) as KubeService | undefined;
    const previousKey = this.serviceKeys.get(key);
    let next: Service | undefined;
    let nextKey: string | undefined;
    if (s !== undefined) {
      const ns = this.namespace(nsOf(s));
      next = buildService(s, this.options, ns?.metadata.annotations);
      nextKey = serviceKeyOf(s, this.options.domainSuffix);
    }
    if (previousKey !== undefined && previousKey !== nextKey) this.setService(previousKey, undefined, t);
    if (nextKey !== undefined && next !== undefined) {
      this.setService(nextKey, next, t);
      this.serviceKeys.set(key, nextKey);
    } else {
      if (nextKey !== undefined) this.setService(nextKey, undefined, t);
      this.serviceKeys.delete(key);
    }
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
    if (pod !== undefined) {
      const src = podSource(pod, this.ownerOf(pod));
      if (src !== undefined) next = this.buildWorkload(src);
    }
    if (previousUid !== undefined && previousUid !== next?.uid) this.setWorkload(previousUid, undefined, t);
    if (next !== undefined) {
      this.setWorkload(next.uid, next, t);
      this.podUids.set(key, next.uid);
    } else {
      this.podUids.delete(key);
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
      for (const name of replicaNames(d, count)) next.push(this.buildWorkload(replicaSource(d, name)));
    }
    const nextUids = new Set(next.map((w) => w.uid));
    for (const uid of previous) if (!nextUids.has(uid)) this.setWorkload(uid, undefined, t);
    for (const w of next) this.setWorkload(w.uid, w, t);
    if (next.length > 0) this.replicaUids.set(key, [...nextUids]);
    else this.replicaUids.delete(key);
  }

  private buildWorkload(src: WorkloadSource): Workload {
    const ns = src.namespace;
    const root = this.options.rootNamespace;
    const services: Record<string, PortList> = {};
    const selecting = this.store.selecting('Service', ns, src.labels).filter((s) => s.spec.type !== 'ExternalName');
    selecting.sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0));
    for (const s of selecting) services[serviceKeyOf(s, this.options.domainSuffix)] = workloadPortList(s, src.spec?.containers);

    // Selector policies of the workload's namespace and of the root namespace, only those sent to ztunnel.
    const policies = this.store.selecting('AuthorizationPolicy', ns, src.labels);
    if (ns !== root) policies.push(...this.store.selecting('AuthorizationPolicy', root, src.labels));
    const policyKeys = policies
      .filter((p) => this.converted.get(resourceKey(p))?.authorization !== undefined)
      .map((p) => `${nsOf(p)}/${p.metadata.name}`)
      .sort();

    const applicable: PeerAuthentication[] = [];
    if (ns !== root) for (const pa of this.store.list('PeerAuthentication', root)) if (pa.spec.selector === undefined) applicable.push(pa);
    for (const pa of this.store.list('PeerAuthentication', ns)) {
      const sel = pa.spec.selector;
      if (sel === undefined || selectorMatches(sel.matchLabels ?? {}, src.labels)) applicable.push(pa);
    }
    policyKeys.push(...peerAuthenticationPolicyKeys(root, applicable));

    return buildWorkload(
      src,
      {
        namespace: this.namespace(ns),
        services,
        authorizationPolicies: policyKeys,
      },
      this.options,
    );
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

  private setCondition(key: string, c: Condition | undefined, t: Touched): void {
    const prev = this.conditions.get(key);
    if (c !== undefined) {
      // As in Kubernetes, lastTransitionTime moves only when the status does: a new reason or message alone keeps it.
      c.lastTransitionTime =
        prev?.lastTransitionTime !== undefined && prev.status === c.status
          ? prev.lastTransitionTime
          : `${this.clock().toISOString().slice(0, 19)}Z`;
    }
    if (deepEqual(prev, c)) return;
    t.statuses.add(key);
    if (c === undefined) this.conditions.delete(key);
    else this.conditions.set(key, c);
  }

  private statusOf(storeKey: string): PolicyStatus {
    const [, namespace, name] = storeKey.split('/') as [string, string, string];
    const c = this.conditions.get(storeKey);
    return { kind: 'AuthorizationPolicy', namespace, name, conditions: c ? [c] : [] };
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
    // Authorizations first: a workload must never reference a policy its ztunnel has not received yet.
    for (const change of [authorizations, addresses]) {
      if (change.upserted.size + change.removed.length === 0) continue;
      for (const l of [...this.listeners]) l(change);
    }
    if (t.statuses.size > 0) {
      const changed = [...t.statuses].sort().map((k) => this.statusOf(k));
      for (const l of [...this.statusListeners]) l(changed);
    }
  }
}
