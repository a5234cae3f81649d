// What the control plane takes from a cluster's objects and what it gives back, whichever way it reaches the cluster
// (the local cluster's watch feed, or the Kubernetes API through informers): the store gets objects without the
// server's bookkeeping and without the status the control plane itself writes, and an object's status is rendered
// from the ambient index's conditions the same way for both.
import type { Kind, Resource } from '../api/types.js';
import type { ObjectStatus } from '../model/ambient.js';

/** Kinds whose status is input to the mesh (pod IPs and readiness); any other object's status is our own output. */
export const STATUS_IS_INPUT: ReadonlySet<Kind> = new Set<Kind>(['Pod', 'Service', 'Deployment']);

/**
 * What the store gets: no server bookkeeping that changes without a real change (resourceVersion, and managedFields,
 * whose timestamps move on every write, our own status writes included), no status we write ourselves.
 */
export function forStore(r: Resource): Resource {
  const { resourceVersion: _rv, managedFields: _mf, ...metadata } = r.metadata as Resource['metadata'] & { managedFields?: unknown };
  const out = { ...r, metadata } as Resource & { status?: { conditions?: unknown; addresses?: unknown } };
  if (r.kind === 'Gateway') {
    // A waypoint once reported with addresses stays usable (istiod reads its own status.addresses back).
    const addresses = out.status?.addresses;
    if (Array.isArray(addresses) && addresses.length > 0) out.status = { addresses };
    else delete out.status;
  } else if (!STATUS_IS_INPUT.has(r.kind)) delete out.status;
  else if (out.status?.conditions !== undefined && r.kind === 'Service') {
    // A Service's conditions are the WaypointBound condition we write: reading it back would be a loop.
    const { conditions: _c, ...rest } = out.status;
    out.status = rest;
  }
  return out;
}

/**
 * The whole status of an object whose status is ours (not for objects with `ownedConditions`): a route's is its
 * parents' (Gateway API RouteStatus has no conditions of its own); a Gateway's has its addresses and listeners.
 */
export function ownStatus(s: ObjectStatus): Record<string, unknown> {
  if (s.parents) return { parents: s.parents };
  const status: Record<string, unknown> = {};
  if (s.addresses) status.addresses = s.addresses;
  status.conditions = s.conditions;
  if (s.listeners) status.listeners = s.listeners;
  return status;
}
