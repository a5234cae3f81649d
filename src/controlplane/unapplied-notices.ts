// VirtualServices and DestinationRules have no status in Istio, so what Ambit's waypoint does not implement yet would
// go unnoticed: a VirtualService using it (uriRegexRewrite, delegate…) is left out whole, a DestinationRule's unsupported fields
// (locality load balancing, credentialName…) are ignored while the rest applies. The control plane says so in its log,
// once per version of the object, with the reasons (for VirtualServices the ones `ambit config waypoint` shows), and
// again when the object no longer has any.
import type { DestinationRule, VirtualService } from '../api/types.js';
import { unappliedDestinationRuleFields } from '../model/destinationrules.js';
import type { ConfigStore } from '../model/store.js';
import { translateVirtualService, virtualServiceContext } from '../model/virtualservices.js';
import type { Logger } from './log.js';

/** Logs each VirtualService not applied and each DestinationRule partly ignored at waypoints, and when that ends; returns the unsubscribe. */
export function noticeUnappliedConfig(store: ConfigStore, domainSuffix: string, log: Logger): () => void {
  const said = new Map<string, string>();
  const ctx = virtualServiceContext((k) => store.get(k), domainSuffix);
  const check = (key: string): void => {
    const kind = key.slice(0, key.indexOf('/'));
    if (kind !== 'VirtualService' && kind !== 'DestinationRule') return;
    const r = store.get(key) as VirtualService | DestinationRule | undefined;
    if (r === undefined) {
      said.delete(key);
      return;
    }
    // The reasons of a DestinationRule do not depend on Services; a VirtualService's do (a port it must name).
    const why = (r.kind === 'VirtualService' ? translateVirtualService(r, ctx).unsupported : unappliedDestinationRuleFields(r)).join('; ');
    if ((said.get(key) ?? '') === why) return;
    const name = `${r.metadata.namespace}/${r.metadata.name}`;
    if (r.kind === 'VirtualService') {
      if (why) log.warn(`VirtualService ${name} is not applied at waypoints: ${why}`);
      else log.info(`VirtualService ${name} is applied at waypoints again`);
    } else if (why) log.warn(`DestinationRule ${name}: ${why} (ignored at waypoints)`);
    else log.info(`DestinationRule ${name} no longer has fields waypoints ignore`);
    if (why) said.set(key, why);
    else said.delete(key);
  };
  for (const key of store.keys()) check(key);
  return store.subscribe((c) => {
    for (const key of [...c.added, ...c.updated, ...c.removed]) check(key);
  });
}
