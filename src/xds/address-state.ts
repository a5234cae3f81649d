// What a proxy knows about the mesh's workloads and services (istio.workload.Address) as received over xDS, indexed
// for the lookups the data path makes per connection: by IP, by VIP, by hostname, endpoints of a service. ztunnel
// extends it with its authorization policies; the waypoint uses it for endpoints and peer metadata. The xDS client
// applies each response as one batch; listeners hear about a batch once, after all of it is applied, so they never
// observe half an update.
import { bytesToIp, cidrContains, ipToBytes, normalizeIp } from '../common/ip.js';
import type { Logger } from '../telemetry/log.js';
import { dumpService, dumpWorkload, isCidrVip } from './configdump.js';
import type { Address, Service, Workload } from './types.js';
import { TYPE_ADDRESS } from './types.js';

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

export function serviceKey(s: Pick<Service, 'namespace' | 'hostname'>): string {
  return `${s.namespace}/${s.hostname}`;
}

/** The SPIFFE identity of a workload, with ztunnel's defaults for an empty trust domain or service account. */
export function identityOf(w: Pick<Workload, 'trustDomain' | 'namespace' | 'serviceAccount'>): string {
  return `spiffe://${w.trustDomain || DEFAULT_TRUST_DOMAIN}/ns/${w.namespace}/sa/${w.serviceAccount || DEFAULT_SERVICE_ACCOUNT}`;
}

/** Checks what the data path relies on; protobuf decoding alone accepts e.g. a 5-byte address. */
export function validateAddress(name: string, a: Address): void {
  if (a.workload) {
    if (!a.workload.uid) throw new Error(`workload ${name} has no uid`);
    for (const ip of a.workload.addresses ?? []) {
      if (ip.length !== 4 && ip.length !== 16) throw new Error(`workload ${name}: invalid IP address of ${ip.length} bytes`);
    }
  } else if (a.service) {
    if (!a.service.hostname) throw new Error(`service ${name} has no hostname`);
    for (const va of a.service.addresses ?? []) {
      const len = va.address?.length ?? 0;
      if (len !== 4 && len !== 16) throw new Error(`service ${name}: invalid VIP of ${len} bytes`);
    }
  } else {
    throw new Error(`address ${name} is neither a workload nor a service`);
  }
}

export class AddressState {
  private readonly workloads = new Map<string, Workload>();
  /** ip → uids: several workloads may share an IP (host network); a captured one wins a lookup. */
  private readonly workloadsByIp = new Map<string, Set<string>>();
  private readonly workloadsByName = new Map<string, string>();
  /** The resource name each address arrived under, so a removal by name finds what to unindex. */
  private readonly addressNames = new Map<string, { workload?: string; service?: string }>();
  private readonly services = new Map<string, Service>();
  /** VIP → keys of the services that have it (ServiceEntries in several namespaces may share one), in arrival order. */
  private readonly servicesByVip = new Map<string, string[]>();
  /** Services whose VIP is a CIDR (a ServiceEntry's address range): matched when no exact VIP is, longest prefix first. */
  private readonly servicesByCidr: { net: Uint8Array; length: number; key: string }[] = [];
  private readonly servicesByHostname = new Map<string, Set<string>>();
  /** service key → uids of workloads that list the service. */
  private readonly endpoints = new Map<string, Set<string>>();
  private readonly changeListeners = new Set<(c: StateChange) => void>();
  private readonly syncedTypes = new Set<string>();
  private syncWaiters: (() => void)[] = [];

  /** @param requiredTypes the xDS types whose first response makes the state `synced`. */
  constructor(
    protected readonly log: Logger | undefined,
    private readonly requiredTypes: readonly string[] = [TYPE_ADDRESS],
  ) {}

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

  /**
   * ztunnel's get_best_by_vip: among the services with this VIP, the best for a client in `clientNamespace` (see
   * bestMatch); without an exact VIP, the CIDR VIP that contains the address, ranked by (in the client's namespace,
   * longest prefix, canonical).
   */
  serviceByVip(ip: string, clientNamespace?: string): Service | undefined {
    const key = normalizeIp(ip);
    if (key === undefined) return undefined;
    const keys = this.servicesByVip.get(key);
    if (keys !== undefined) return this.bestMatch(keys, clientNamespace);
    return this.servicesByCidr.length > 0 ? this.serviceByCidr(key, clientNamespace) : undefined;
  }

  private serviceByCidr(ip: string, clientNamespace: string | undefined): Service | undefined {
    const bytes = ipToBytes(ip);
    if (!bytes) return undefined;
    // Ranked as (in the client's namespace, prefix length, canonical), compared in that order; the first of equals wins.
    let best: Service | undefined;
    let bestRank = -1;
    for (const c of this.servicesByCidr) {
      if (!cidrContains(c.net, c.length, bytes)) continue;
      const service = this.services.get(c.key)!;
      const rank = (service.namespace === clientNamespace ? 512 : 0) + c.length * 2 + (service.canonical ? 1 : 0);
      if (rank > bestRank) {
        best = service;
        bestRank = rank;
      }
    }
    return best;
  }

  /** ztunnel's get_best_by_host: the service with this hostname that is best for a client in `clientNamespace`. */
  serviceByHostname(hostname: string, clientNamespace?: string): Service | undefined {
    const keys = this.servicesByHostname.get(hostname);
    return keys === undefined ? undefined : this.bestMatch(keys, clientNamespace);
  }

  /** ztunnel's ServiceMatch::find_best_match: one in the client's namespace, else a canonical one, else the first. */
  private bestMatch(keys: Iterable<string>, clientNamespace: string | undefined): Service | undefined {
    let canonical: Service | undefined;
    let first: Service | undefined;
    for (const k of keys) {
      const s = this.services.get(k)!;
      if (s.namespace === clientNamespace) return s;
      if (s.canonical) canonical = s;
      first ??= s;
    }
    return canonical ?? first;
  }

  /** The service `namespace/hostname`. */
  serviceByKey(key: string): Service | undefined {
    return this.services.get(key);
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
    return identityOf(w);
  }

  // ---- notifications ----------------------------------------------------------------------------------------------

  /** Called after every applied batch; returns the function that unregisters it. */
  onChange(cb: (c: StateChange) => void): () => void {
    this.changeListeners.add(cb);
    return () => this.changeListeners.delete(cb);
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

  /** True once every required type has been received at least once. */
  get synced(): boolean {
    return this.requiredTypes.every((t) => this.syncedTypes.has(t));
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

  /**
   * Tells the listeners about an applied batch. `policies`: the batch changed which policies apply to some workload
   * (subclasses that hold policies re-check open connections).
   */
  protected notify(change: StateChange, _policies: boolean): void {
    for (const cb of [...this.changeListeners]) {
      try {
        cb(change);
      } catch (e) {
        this.log?.error(`state change listener failed: ${(e as Error).stack ?? e}`);
      }
    }
  }

  private insertWorkload(name: string, w: Workload): void {
    this.workloads.set(w.uid, w);
    this.addressNames.set(name, { workload: w.uid });
    this.workloadsByName.set(`${w.namespace}/${w.name}`, w.uid);
    // As ztunnel's WorkloadStore: a host-network workload shares its node's address, so that address does not name it.
    for (const a of w.networkMode === 'HOST_NETWORK' ? [] : w.addresses) {
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
    for (const a of s.addresses) {
      if (isCidrVip(a)) this.servicesByCidr.push({ net: a.address, length: a.length!, key });
      else {
        const ip = bytesToIp(a.address);
        const keys = this.servicesByVip.get(ip);
        if (keys === undefined) this.servicesByVip.set(ip, [key]);
        else if (!keys.includes(key)) keys.push(key);
      }
    }
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
      for (const a of w.networkMode === 'HOST_NETWORK' ? [] : w.addresses) {
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
      const keys = this.servicesByVip.get(ip);
      const at = keys?.indexOf(key) ?? -1;
      if (at >= 0) keys!.splice(at, 1);
      if (keys?.length === 0) this.servicesByVip.delete(ip);
    }
    for (let i = this.servicesByCidr.length - 1; i >= 0; i--) if (this.servicesByCidr[i]!.key === key) this.servicesByCidr.splice(i, 1);
    const set = this.servicesByHostname.get(s.hostname);
    set?.delete(key);
    if (set?.size === 0) this.servicesByHostname.delete(s.hostname);
    return false;
  }

  // ---- debugging ----------------------------------------------------------------------------------------------------

  /** workloads/services in ztunnel's /config_dump shape. */
  addressDump(): { workloads: Record<string, unknown>[]; services: Record<string, unknown>[] } {
    const byKey = <T>(f: (t: T) => string) => (a: T, b: T) => (f(a) < f(b) ? -1 : f(a) > f(b) ? 1 : 0);
    return {
      workloads: this.allWorkloads()
        .sort(byKey((w) => `${w.namespace}/${w.name}`))
        .map(dumpWorkload),
      services: this.allServices()
        .sort(byKey(serviceKey))
        .map((s) => dumpService(s, [...(this.endpoints.get(serviceKey(s)) ?? [])].map((u) => this.workloads.get(u)!))),
    };
  }
}

// protobufjs's object form omits default values (TO_OBJECT defaults: false); fill them so the rest of the proxy can
// rely on the types in types.ts.
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
