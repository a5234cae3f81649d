// VirtualServices have no status of their own in Istio, so a VirtualService that uses what Ambit's waypoint does not
// implement yet (subsets, fault, CORS…) would be left out without a word. The control plane says so in its log, once
// per version of the object, with the reasons `ambit config waypoint` shows.
import type { Service as KubeService, VirtualService } from '../api/types.js';
import type { ConfigStore } from '../model/store.js';
import { translateVirtualService } from '../model/virtualservices.js';
import type { Logger } from './log.js';

/** Logs each VirtualService that is not applied at waypoints, and when it is again; returns the unsubscribe. */
export function noticeUnappliedVirtualServices(store: ConfigStore, domainSuffix: string, log: Logger): () => void {
  const said = new Map<string, string>();
  const ctx = { domainSuffix, service: (ns: string, name: string) => store.get(`Service/${ns}/${name}`) as KubeService | undefined };
  const check = (key: string): void => {
    const vs = store.get(key) as VirtualService | undefined;
    if (vs === undefined) {
      said.delete(key);
      return;
    }
    const { unsupported } = translateVirtualService(vs, ctx);
    const why = unsupported.join('; ');
    if ((said.get(key) ?? '') === why) return;
    const name = `${vs.metadata.namespace}/${vs.metadata.name}`;
    if (why) log.warn(`VirtualService ${name} is not applied at waypoints: ${why}`);
    else log.info(`VirtualService ${name} is applied at waypoints again`);
    if (why) said.set(key, why);
    else said.delete(key);
  };
  for (const key of store.keys()) if (key.startsWith('VirtualService/')) check(key);
  return store.subscribe((c) => {
    for (const key of [...c.added, ...c.updated, ...c.removed]) if (key.startsWith('VirtualService/')) check(key);
  });
}
