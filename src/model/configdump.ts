// The ambient view rendered the way ztunnel's `/config_dump` shows it (src/xds/configdump.ts), plus the policy status
// conditions Ambit writes.
import type { Condition } from '../api/types.js';
import { dumpAuthorization, dumpService, dumpWorkload } from '../xds/configdump.js';
import type { Workload } from '../xds/types.js';
import type { AmbientIndex } from './ambient.js';

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
