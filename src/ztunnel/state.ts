// What a ztunnel knows about the mesh: workloads, services and authorization policies as received over xDS, indexed
// for the lookups the data path makes per connection (by IP, by VIP, by hostname, endpoints of a service, policies of
// a workload). Policies are compiled once, on arrival. The xDS client applies each response as one batch; listeners
// hear about a batch once, after all of it is applied, so they never observe half an update.
import type { Address, Authorization, Service, Workload } from '../model/xds-types.js';
import { TYPE_ADDRESS, TYPE_AUTHORIZATION } from '../model/xds-types.js';
import { bytesToIp, ipToBytes } from '../model/authorization.js';
import { dumpAuthorization, dumpService, dumpWorkload } from '../model/configdump.js';
import { compilePolicy, type CompiledPolicy } from './rbac.js';
import type { ZtunnelLogger } from './log.js';

/** ztunnel's defaults for fields istiod may leave empty (src/state/workload.rs). */
export const DEFAULT_TRUST_DOMAIN = 'cluster.local';
export const DEFAULT_SERVICE_ACCOUNT = 'default';

/** A healthy endpoint of a service and the port to reach it on for a given service port. */
export interface Endpoint {
  workload: Workload;
  /** The endpoint's port for `servicePort`, or undefined when the service has no such port. */
  targetPort(servicePort: number): number | undefined;
}

export interface StateChange {
  /** xDS resource names applied in this batch. */
  addresses: string[];
  policies: string[];
}

/** `10.0.0.1`, also from `::ffff:10.0.0.1` (dual-stack sockets) and any IPv6 spelling; undefined if not an IP. */
export function normalizeIp(ip: string): string | undefined {
  const v4mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  const bytes = ipToBytes(v4mapped ? v4mapped[1]! : ip);
  return bytes ? bytesToIp(bytes) : undefined;
}

function serviceKey(s: Pick<Service, 'namespace' | 'hostname'>): string {
  return `${s.namespace}/${s.hostname}`;
}

/** Key under which global (root-namespace) policies are kept, as in ztunnel's policy store. */
const GLOBAL = '';

export class ProxyState {
  private readonly workloads = new Map<string, Workload>();
  /** ip → uids: several workloads may share an IP (host network); a captured one wins a lookup. */
  private readonly workloadsByIp = new Map<string, Set<string>>();
  private readonly workloadsByName = new Map<string, string>();
  /** The resource name each address arrived under, so a removal by name finds what to unindex. */
  private readonly addressNames = new Map<string, { workload?: string; service?: string }>();
  private readonly services = new Map<string, Service>();
  private readonly servicesByVip = new Map<string, string>();
  private readonly servicesByHostname = new Map<string, Set<string>>();
  /** service key → uids of workloads that list the service. */
  private readonly endpoints = new Map<string, Set<string>>();
  private readonly policies = new Map<string, { raw: Authorization; compiled: CompiledPolicy }>();
  /** namespace (GLOBAL for global scope) → keys of selector-less policies. */
  private readonly policiesByNamespace = new Map<string, Set<string>>();
  private readonly warnedUnknown = new Set<string>();
  private readonly changeListeners = new Set<(c: StateChange) => void>();
  private readonly policyListeners = new Set<() => void>();
  private readonly syncedTypes = new Set<string>();
  private syncWaiters: (() => void)[] = [];

  constructor(private readonly log?: ZtunnelLogger) {}

  // ---- lookups ----------------------------------------------------------------------------------------------------

  workloadByUid(uid: string): Workload | undefined {
    return this.workloads.get(uid);
  }

  workloadByIp(ip: string): Workload | undefined {
    const key = normalizeIp(ip);
    const uids = key === undefined ? undefined : this.workloadsByIp.get(key);
    if (!uids) return undefined;
    let found: Workload | undefined;
    for (const uid of uids) {
      const w = this.workloads.get(uid)!;
      if (w.tunnelProtocol === 'HBONE') return w;
      found ??= w;
    }
    return found;
  }

  workloadByName(namespace: string, name: string): Workload | undefined {
    const uid = this.workloadsByName.get(`${namespace}/${name}`);
    return uid === undefined ? undefined : this.workloads.get(uid);
  }

  serviceByVip(ip: string): Service | undefined {
    const key = normalizeIp(ip);
    const name = key === undefined ? undefined : this.servicesByVip.get(key);
    return name === undefined ? undefined : this.services.get(name);
  }

  /** The service with this hostname; when several namespaces define it, the one in `preferNamespace` wins. */
  serviceByHostname(hostname: string, preferNamespace?: string): Service | undefined {
    const keys = this.servicesByHostname.get(hostname);
    if (!keys) return undefined;
    let first: Service | undefined;
    for (const k of keys) {
      const s = this.services.get(k)!;
      if (s.namespace === preferNamespace) return s;
      first ??= s;
    }
    return first;
  }

  servicesInNamespace(namespace: string): Service[] {
    return [...this.services.values()].filter((s) => s.namespace === namespace);
  }

  allServices(): Service[] {
    return [...this.services.values()];
  }

  allWorkloads(): Workload[] {
    return [...this.workloads.values()];
  }

  /** Endpoints a connection to `service` may go to: healthy ones, or all with health policy ALLOW_ALL. */
  endpointsOf(service: Service): Endpoint[] {
    const key = serviceKey(service);
    const uids = this.endpoints.get(key);
    if (!uids) return [];
    const allowAll = service.loadBalancing?.healthPolicy === 'ALLOW_ALL';
    const out: Endpoint[] = [];
    for (const uid of uids) {
      const w = this.workloads.get(uid)!;
      if (w.status === 'UNHEALTHY' && !allowAll) continue;
      const own = w.services?.[key]?.ports ?? [];
      out.push({
        workload: w,
        targetPort: (servicePort) => {
          // The workload's own port list resolves named target ports; the service's list is the fallback.
          const p = own.find((x) => x.servicePort === servicePort) ?? service.ports.find((x) => x.servicePort === servicePort);
          if (!p) return undefined;
          return p.targetPort || servicePort;
        },
      });
    }
    return out;
  }

  /** The workload's SPIFFE identity, with ztunnel's defaults for an empty trust domain or service account. */
  identityOf(w: Pick<Workload, 'trustDomain' | 'namespace' | 'serviceAccount'>): string {
    return `spiffe://${w.trustDomain || DEFAULT_TRUST_DOMAIN}/ns/${w.namespace}/sa/${w.serviceAccount || DEFAULT_SERVICE_ACCOUNT}`;
  }

  /**
   * Policies that apply to connections to `w`, in ztunnel's assert_rbac order: the namespace's selector-less
   * policies, then global ones, then those the workload lists (selector policies). Keys that name no known policy
   * are skipped with ztunnel's warning (once per key until the policy set changes).
   */
  policiesFor(w: Pick<Workload, 'namespace' | 'authorizationPolicies'>): CompiledPolicy[] {
    const out: CompiledPolicy[] = [];
    for (const ns of [w.namespace, GLOBAL]) {
      for (const key of this.policiesByNamespace.get(ns) ?? []) out.push(this.policies.get(key)!.compiled);
    }
    for (const key of w.authorizationPolicies ?? []) {
      const p = this.policies.get(key);
      if (p) out.push(p.compiled);
      else if (!this.warnedUnknown.has(key)) {
        this.warnedUnknown.add(key);
        this.log?.warn(`skipping unknown policy ${key}`);
      }
    }
    return out;
  }

  policy(key: string): Authorization | undefined {
    return this.policies.get(key)?.raw;
  }

  // ---- notifications ----------------------------------------------------------------------------------------------

  /** Called after every applied batch; returns the function that unregisters it. */
  onChange(cb: (c: StateChange) => void): () => void {
    this.changeListeners.add(cb);
    return () => this.changeListeners.delete(cb);
  }

  /** Called after a batch that changed policies (or workloads' policy lists): open connections must be re-checked. */
  onPolicyChange(cb: () => void): () => void {
    this.policyListeners.add(cb);
    return () => this.policyListeners.delete(cb);
  }

  /** Resolves when the workload appears (by namespace/name), or with undefined after `timeoutMs`. */
  waitForWorkload(namespace: string, name: string, timeoutMs: number): Promise<Workload | undefined> {
    const now = this.workloadByName(namespace, name);
    if (now || timeoutMs <= 0) return Promise.resolve(now);
    return new Promise((resolve) => {
      const done = (w: Workload | undefined) => {
        clearTimeout(timer);
        off();
        resolve(w);
      };
      const timer = setTimeout(() => done(undefined), timeoutMs);
      const off = this.onChange(() => {
        const w = this.workloadByName(namespace, name);
        if (w) done(w);
      });
    });
  }

  // ---- sync ---------------------------------------------------------------------------------------------------------

  /** The xDS client marks each type once its first response has been applied. */
  markSynced(typeUrl: string): void {
    this.syncedTypes.add(typeUrl);
    if (this.synced) for (const w of this.syncWaiters.splice(0)) w();
  }

  /** True once both Address and Authorization have been received at least once. */
  get synced(): boolean {
    return this.syncedTypes.has(TYPE_ADDRESS) && this.syncedTypes.has(TYPE_AUTHORIZATION);
  }

  whenSynced(): Promise<void> {
    return this.synced ? Promise.resolve() : new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  // ---- updates (from the xDS client) ------------------------------------------------------------------------------

  /** Applies one batch of Address upserts/removals (by xDS resource name). */
  applyAddresses(upserts: Map<string, Address>, removals: string[]): void {
    let policyListsChanged = false;
    for (const name of removals) policyListsChanged = this.removeAddress(name) || policyListsChanged;
    for (const [name, address] of upserts) {
      const before = this.addressNames.get(name)?.workload;
      const oldPolicies = before ? this.workloads.get(before)?.authorizationPolicies ?? [] : [];
      this.removeAddress(name);
      if (address.workload) {
        const w = normalizeWorkload(address.workload);
        this.insertWorkload(name, w);
        if (oldPolicies.join(',') !== w.authorizationPolicies.join(',')) policyListsChanged = true;
      } else if (address.service) {
        this.insertService(name, normalizeService(address.service));
      }
    }
    this.notify({ addresses: [...upserts.keys(), ...removals], policies: [] }, policyListsChanged);
  }

  /** Applies one batch of Authorization upserts/removals. */
  applyAuthorizations(upserts: Map<string, Authorization>, removals: string[]): void {
    for (const key of removals) this.removePolicy(key);
    for (const [key, raw] of upserts) {
      this.removePolicy(key);
      const a = normalizeAuthorization(raw);
      this.policies.set(key, { raw: a, compiled: compilePolicy(a) });
      if (a.scope !== 'WORKLOAD_SELECTOR') {
        const ns = a.scope === 'GLOBAL' ? GLOBAL : a.namespace;
        let set = this.policiesByNamespace.get(ns);
        if (!set) this.policiesByNamespace.set(ns, (set = new Set()));
        set.add(key);
      }
    }
    this.warnedUnknown.clear();
    const changed = [...upserts.keys(), ...removals];
    this.notify({ addresses: [], policies: changed }, changed.length > 0);
  }

  private notify(change: StateChange, policies: boolean): void {
    for (const cb of [...this.changeListeners]) {
      try {
        cb(change);
      } catch (e) {
        this.log?.error(`state change listener failed: ${(e as Error).stack ?? e}`);
      }
    }
    if (!policies) return;
    for (const cb of [...this.policyListeners]) {
      try {
        cb();
      } catch (e) {
        this.log?.error(`policy change listener failed: ${(e as Error).stack ?? e}`);
      }
    }
  }

  private insertWorkload(name: string, w: Workload): void {
    this.workloads.set(w.uid, w);
    this.addressNames.set(name, { workload: w.uid });
    this.workloadsByName.set(`${w.namespace}/${w.name}`, w.uid);
    for (const a of w.addresses) {
      const ip = bytesToIp(a);
      let set = this.workloadsByIp.get(ip);
      if (!set) this.workloadsByIp.set(ip, (set = new Set()));
      set.add(w.uid);
    }
    for (const key of Object.keys(w.services)) {
      let set = this.endpoints.get(key);
      if (!set) this.endpoints.set(key, (set = new Set()));
      set.add(w.uid);
    }
  }

  private insertService(name: string, s: Service): void {
    const key = serviceKey(s);
    this.services.set(key, s);
    this.addressNames.set(name, { service: key });
    for (const a of s.addresses) this.servicesByVip.set(bytesToIp(a.address), key);
    let set = this.servicesByHostname.get(s.hostname);
    if (!set) this.servicesByHostname.set(s.hostname, (set = new Set()));
    set.add(key);
  }

  /** Returns true when a workload (which may carry policy references) was removed. */
  private removeAddress(name: string): boolean {
    const entry = this.addressNames.get(name);
    if (!entry) return false;
    this.addressNames.delete(name);
    if (entry.workload !== undefined) {
      const w = this.workloads.get(entry.workload);
      if (!w) return false;
      this.workloads.delete(w.uid);
      const byName = `${w.namespace}/${w.name}`;
      if (this.workloadsByName.get(byName) === w.uid) this.workloadsByName.delete(byName);
      for (const a of w.addresses) {
        const ip = bytesToIp(a);
        const set = this.workloadsByIp.get(ip);
        set?.delete(w.uid);
        if (set?.size === 0) this.workloadsByIp.delete(ip);
      }
      for (const key of Object.keys(w.services)) {
        const set = this.endpoints.get(key);
        set?.delete(w.uid);
        if (set?.size === 0) this.endpoints.delete(key);
      }
      return true;
    }
    const s = entry.service === undefined ? undefined : this.services.get(entry.service);
    if (!s) return false;
    const key = serviceKey(s);
    this.services.delete(key);
    for (const a of s.addresses) {
      const ip = bytesToIp(a.address);
      if (this.servicesByVip.get(ip) === key) this.servicesByVip.delete(ip);
    }
    const set = this.servicesByHostname.get(s.hostname);
    set?.delete(key);
    if (set?.size === 0) this.servicesByHostname.delete(s.hostname);
    return false;
  }

  private removePolicy(key: string): void {
    const p = this.policies.get(key);
    if (!p) return;
    this.policies.delete(key);
    for (const [ns, set] of this.policiesByNamespace) {
      set.delete(key);
      if (set.size === 0) this.policiesByNamespace.delete(ns);
    }
  }

  // ---- debugging ----------------------------------------------------------------------------------------------------

  /** workloads/services/policies in ztunnel's /config_dump shape. */
  configDump(): { workloads: Record<string, unknown>[]; services: Record<string, unknown>[]; policies: Record<string, unknown>[] } {
    const byKey = <T>(f: (t: T) => string) => (a: T, b: T) => (f(a) < f(b) ? -1 : f(a) > f(b) ? 1 : 0);
    return {
      workloads: this.allWorkloads()
        .sort(byKey((w) => `${w.namespace}/${w.name}`))
        .map(dumpWorkload),
      services: this.allServices()
        .sort(byKey(serviceKey))
        .map((s) => dumpService(s, [...(this.endpoints.get(serviceKey(s)) ?? [])].map((u) => this.workloads.get(u)!))),
      policies: [...this.policies.values()]
        .map((p) => p.raw)
        .sort(byKey((a) => `${a.namespace}/${a.name}`))
        .map(dumpAuthorization),
    };
  }
}

// protobufjs's object form omits default values (TO_OBJECT defaults: false); fill them so the rest of ztunnel can
// rely on the types in xds-types.ts.
function normalizeWorkload(w: Partial<Workload>): Workload {
  return {
    ...w,
    uid: w.uid ?? '',
    name: w.name ?? '',
    namespace: w.namespace ?? '',
    addresses: (w.addresses ?? []).map((a) => Uint8Array.from(a)),
    network: w.network ?? '',
    tunnelProtocol: w.tunnelProtocol ?? 'NONE',
    trustDomain: w.trustDomain ?? '',
    serviceAccount: w.serviceAccount ?? '',
    node: w.node ?? '',
    canonicalName: w.canonicalName ?? '',
    canonicalRevision: w.canonicalRevision ?? '',
    workloadType: w.workloadType ?? 'DEPLOYMENT',
    workloadName: w.workloadName ?? '',
    services: Object.fromEntries(
      Object.entries(w.services ?? {}).map(([k, v]) => [k, { ports: (v?.ports ?? []).map((p) => ({ ...p, servicePort: p.servicePort ?? 0, targetPort: p.targetPort ?? 0 })) }]),
    ),
    authorizationPolicies: w.authorizationPolicies ?? [],
    status: w.status ?? 'HEALTHY',
    clusterId: w.clusterId ?? '',
  };
}

function normalizeService(s: Partial<Service>): Service {
  return {
    ...s,
    name: s.name ?? '',
    namespace: s.namespace ?? '',
    hostname: s.hostname ?? '',
    addresses: (s.addresses ?? []).map((a) => ({ ...a, network: a.network ?? '', address: Uint8Array.from(a.address ?? []) })),
    ports: (s.ports ?? []).map((p) => ({ ...p, servicePort: p.servicePort ?? 0, targetPort: p.targetPort ?? 0 })),
    subjectAltNames: s.subjectAltNames ?? [],
  };
}

function normalizeAuthorization(a: Partial<Authorization>): Authorization {
  const list = <T>(v: T[] | undefined) => v ?? [];
  return {
    name: a.name ?? '',
    namespace: a.namespace ?? '',
    scope: a.scope ?? 'GLOBAL',
    action: a.action ?? 'ALLOW',
    dryRun: a.dryRun ?? false,
    rules: list(a.rules).map((r) => ({
      clauses: list(r.clauses).map((c) => ({
        matches: list(c.matches).map((m) => ({
          namespaces: list(m.namespaces),
          notNamespaces: list(m.notNamespaces),
          principals: list(m.principals),
          notPrincipals: list(m.notPrincipals),
          sourceIps: list(m.sourceIps).map((x) => ({ address: Uint8Array.from(x.address ?? []), length: x.length ?? 0 })),
          notSourceIps: list(m.notSourceIps).map((x) => ({ address: Uint8Array.from(x.address ?? []), length: x.length ?? 0 })),
          destinationIps: list(m.destinationIps).map((x) => ({ address: Uint8Array.from(x.address ?? []), length: x.length ?? 0 })),
          notDestinationIps: list(m.notDestinationIps).map((x) => ({ address: Uint8Array.from(x.address ?? []), length: x.length ?? 0 })),
          destinationPorts: list(m.destinationPorts),
          notDestinationPorts: list(m.notDestinationPorts),
          serviceAccounts: list(m.serviceAccounts).map((x) => ({ namespace: x.namespace ?? '', serviceAccount: x.serviceAccount ?? '' })),
          notServiceAccounts: list(m.notServiceAccounts).map((x) => ({ namespace: x.namespace ?? '', serviceAccount: x.serviceAccount ?? '' })),
        })),
      })),
    })),
  };
}
