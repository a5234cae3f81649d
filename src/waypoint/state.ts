// What a waypoint knows: the mesh's workloads and services (src/xds/address-state.ts: endpoints, peers' metadata) and
// its own configuration from the control plane (ambit.waypoint.Resource): itself, the Services bound to it with their
// ports' protocols, and the authorization policies that apply. Policies are compiled once per configuration change
// and per kind of traffic (HTTP or TCP), never per request. When the control plane is away everything here keeps
// serving as last received.
import { AddressState, validateAddress } from '../xds/address-state.js';
import type { XdsSubscription } from '../xds/client.js';
import type { Logger } from '../telemetry/log.js';
import type { Service, WaypointPolicy, WaypointResource, WaypointSelf, WaypointService, Workload } from '../xds/types.js';
import { TYPE_ADDRESS, TYPE_WAYPOINT, waypointCollection } from '../xds/types.js';
import { compilePolicies, type CompiledPolicies, type TrafficKind } from './authz/rbac.js';

/** The Services and policies the waypoint serves, as the last configuration says. */
export class WaypointState extends AddressState {
  private self: WaypointSelf | undefined;
  /** `namespace/hostname` → bound Service. */
  private readonly bound = new Map<string, WaypointService>();
  /** `namespace/name` → policy. */
  private readonly policies = new Map<string, WaypointPolicy>();
  /** Resource name → what it held, so a removal by name knows what to drop. */
  private readonly names = new Map<string, { service?: string; policy?: string; waypoint?: true }>();
  /** Compiled policy sets by `<kind>|<policy ids>`; emptied whenever a policy or the set of applying policies changes. */
  private readonly compiled = new Map<string, CompiledPolicies>();

  constructor(
    log: Logger | undefined,
    readonly namespace: string,
    readonly gatewayName: string,
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

  /** The compiled policies for traffic to `service` (undefined: workload-addressed, only the waypoint's own apply). */
  authorization(service: WaypointService | undefined, kind: TrafficKind): CompiledPolicies {
    const own = this.self?.policies ?? [];
    const ids = service && service.policies.length > 0 ? [...own, ...service.policies] : own;
    const key = `${kind}|${ids.join(',')}`;
    let c = this.compiled.get(key);
    if (c === undefined) {
      const list: WaypointPolicy[] = [];
      for (const id of ids) {
        const p = this.policies.get(id);
        if (p) list.push(p);
      }
      const result = compilePolicies(list, kind);
      for (const p of result.problems) this.log?.warn(`policy ${p.policy} rule ${p.rule}: ${p.message}`);
      c = result.compiled;
      this.compiled.set(key, c);
    }
    return c;
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
      }
    }
    this.compiled.clear();
    this.notify({ addresses: [], policies: [...upserts.keys(), ...removals] }, true);
  }

  private removeResource(name: string): void {
    const entry = this.names.get(name);
    if (!entry) return;
    this.names.delete(name);
    if (entry.waypoint) this.self = undefined;
    if (entry.service) this.bound.delete(entry.service);
    if (entry.policy) this.policies.delete(entry.policy);
  }

  /** `/config_dump`: the addresses plus this waypoint's own configuration. */
  configDump(): Record<string, unknown> {
    const byKey = <T>(f: (t: T) => string) => (a: T, b: T) => (f(a) < f(b) ? -1 : f(a) > f(b) ? 1 : 0);
    return {
      waypoint: this.self ?? null,
      boundServices: [...this.bound.values()].sort(byKey((s) => `${s.namespace}/${s.hostname}`)),
      policies: [...this.policies.values()].sort(byKey((p) => `${p.namespace}/${p.name}`)),
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
  } else if (r.policy) {
    if (!r.policy.name || !r.policy.namespace) throw new Error(`policy ${name} has no name or namespace`);
  } else {
    throw new Error(`resource ${name} is neither a waypoint, a service nor a policy`);
  }
}

// protobufjs's object form omits default values; fill them so the rest of the waypoint can rely on the types.
function normalizeWaypointResource(r: WaypointResource): WaypointResource {
  if (r.waypoint) {
    return { waypoint: { ...r.waypoint, trustDomain: r.waypoint.trustDomain ?? '', trafficType: r.waypoint.trafficType ?? 'SERVICE', policies: r.waypoint.policies ?? [] } };
  }
  if (r.service) {
    return {
      service: {
        ...r.service,
        name: r.service.name ?? '',
        ports: (r.service.ports ?? []).map((p) => ({ port: p.port, name: p.name ?? '', protocol: p.protocol ?? 'UNSPECIFIED' })),
        policies: r.service.policies ?? [],
      },
    };
  }
  const p = r.policy!;
  return { policy: { name: p.name, namespace: p.namespace, action: p.action ?? 'ALLOW', rules: p.rules ?? [], dryRun: p.dryRun ?? false } };
}
