// What a ztunnel knows about the mesh: the workloads and services every proxy keeps (src/xds/address-state.ts) plus
// ztunnel's authorization policies, compiled once on arrival and indexed for the per-connection lookup of the policies
// that apply to a workload.
import { AddressState, validateAddress, type StateChange } from '../xds/address-state.js';
import type { XdsSubscription } from '../xds/client.js';
import { dumpAuthorization } from '../xds/configdump.js';
import type { Authorization, Workload } from '../xds/types.js';
import { TYPE_ADDRESS, TYPE_AUTHORIZATION } from '../xds/types.js';
import { compilePolicy, type CompiledPolicy } from './rbac.js';
import type { ZtunnelLogger } from './log.js';

export { DEFAULT_SERVICE_ACCOUNT, DEFAULT_TRUST_DOMAIN, type Endpoint, type StateChange } from '../xds/address-state.js';

/** Key under which global (root-namespace) policies are kept, as in ztunnel's policy store. */
const GLOBAL = '';

export class ProxyState extends AddressState {
  private readonly policies = new Map<string, { raw: Authorization; compiled: CompiledPolicy }>();
  /** namespace (GLOBAL for global scope) → keys of selector-less policies. */
  private readonly policiesByNamespace = new Map<string, Set<string>>();
  private readonly warnedUnknown = new Set<string>();
  private readonly policyListeners = new Set<() => void>();

  constructor(log?: ZtunnelLogger) {
    super(log, [TYPE_ADDRESS, TYPE_AUTHORIZATION]);
  }

  /** What ztunnel subscribes to: every Address and every Authorization (wildcard), applied to this state. */
  xdsSubscriptions(): XdsSubscription[] {
    return [
      { typeUrl: TYPE_ADDRESS, shortName: 'Address', names: ['*'], validate: validateAddress, apply: (u, r) => this.applyAddresses(u, r) },
      {
        typeUrl: TYPE_AUTHORIZATION,
        shortName: 'Authorization',
        names: ['*'],
        validate: (name: string, p: Authorization) => {
          if (!p.name) throw new Error(`authorization ${name} has no name`);
        },
        apply: (u, r) => this.applyAuthorizations(u, r),
      },
    ];
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

  /** Called after a batch that changed policies (or workloads' policy lists): open connections must be re-checked. */
  onPolicyChange(cb: () => void): () => void {
    this.policyListeners.add(cb);
    return () => this.policyListeners.delete(cb);
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

  protected override notify(change: StateChange, policies: boolean): void {
    super.notify(change, policies);
    if (!policies) return;
    for (const cb of [...this.policyListeners]) {
      try {
        cb();
      } catch (e) {
        this.log?.error(`policy change listener failed: ${(e as Error).stack ?? e}`);
      }
    }
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
    return {
      ...this.addressDump(),
      policies: [...this.policies.values()]
        .map((p) => p.raw)
        .sort((a, b) => {
          const ka = `${a.namespace}/${a.name}`;
          const kb = `${b.namespace}/${b.name}`;
          return ka < kb ? -1 : ka > kb ? 1 : 0;
        })
        .map(dumpAuthorization),
    };
  }
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
