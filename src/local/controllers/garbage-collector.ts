// Kubernetes' garbage collector over the local cluster's store. A dependent (an object with metadata.ownerReferences)
// is deleted once ALL its owners are gone; an owner is gone when no object of that reference's API group (any version),
// kind, namespace, name and uid exists. A dependent that still has an owner only loses its references to the gone
// ones. A reference the cluster cannot resolve — a kind of a group it does not serve, no uid, a namespaced owner of a
// cluster-scoped object — leaves the dependent alone, as Kubernetes' collector keeps retrying such an object and never
// deletes it.
import { isNamespaced, type OwnerReference, type Resource } from '../../api/types.js';
import { findModelType, parseApiVersion } from '../../api/kinds.js';
import type { ResourceStore } from '../../apiserver/store.js';

export interface GarbageCollection {
  /** Objects deleted because every owner they name is gone. */
  deleted: Resource[];
  /** Objects that kept an owner and lost their references to the gone ones. */
  trimmed: { resource: Resource; gone: OwnerReference[] }[];
}

type OwnerState = 'present' | 'gone' | 'unresolvable';

/** The API group of an apiVersion: `apps/v1` → `apps`, `v1` → `` (the core group). */
function apiGroup(apiVersion: string): string {
  return parseApiVersion(apiVersion).group;
}

function ownerState(store: ResourceStore, dependent: Resource, ref: OwnerReference): OwnerState {
  const group = apiGroup(ref.apiVersion);
  const found = findModelType(ref.kind);
  const info = found?.group === group ? found : undefined;
  if (!info || !ref.uid) return 'unresolvable';
  const namespaced = isNamespaced(info.kind);
  if (namespaced && dependent.metadata.namespace === undefined) return 'unresolvable';
  const owner = store.get(info.kind, namespaced ? dependent.metadata.namespace : undefined, ref.name);
  return owner !== undefined && apiGroup(owner.apiVersion) === group && owner.metadata.uid === ref.uid ? 'present' : 'gone';
}

/** One collection: repeated until nothing more goes, so a chain of owners (A owns B owns C) goes at once. */
export function collectGarbage(store: ResourceStore): GarbageCollection {
  const result: GarbageCollection = { deleted: [], trimmed: [] };
  for (let changed = true; changed; ) {
    changed = false;
    for (const r of store.list()) {
      const refs = r.metadata.ownerReferences ?? [];
      const states = refs.map((ref) => ownerState(store, r, ref));
      if (states.includes('unresolvable') || !states.includes('gone')) continue;
      if (states.every((s) => s === 'gone')) {
        const removed = store.remove(r.kind, r.metadata.namespace, r.metadata.name);
        if (removed) result.deleted.push(removed);
        changed = true;
      } else {
        store.put({ ...r, metadata: { ...r.metadata, ownerReferences: refs.filter((_, i) => states[i] === 'present') } } as Resource, true);
        result.trimmed.push({ resource: r, gone: refs.filter((_, i) => states[i] === 'gone') });
      }
    }
  }
  return result;
}
