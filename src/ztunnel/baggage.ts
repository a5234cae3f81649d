// Workload metadata in the HBONE `baggage` header, as ztunnel's src/baggage.rs writes and reads it. The client sends
// its own workload's on CONNECT; the server answers 200 with the destination's (ENABLE_RESPONSE_BAGGAGE), and reads
// the request's to label a source it cannot find by IP (a peer behind a gateway, or one xDS has not sent yet).
import { buildBaggage } from '../hbone/headers.js';
import type { PeerWorkload } from '../telemetry/connection.js';
import type { Workload } from '../xds/types.js';

// Per workload object: xDS replaces the object when the workload changes, so an entry never goes stale.
const baggageCache = new WeakMap<Workload, string>();

/** `k8s.deployment.name` etc.: the workload-name key ztunnel derives from the workload type. */
export function workloadBaggage(w: Workload): string {
  let baggage = baggageCache.get(w);
  if (baggage === undefined) {
    baggage = buildBaggage([
      ['k8s.cluster.name', w.clusterId],
      ['k8s.namespace.name', w.namespace],
      [`k8s.${w.workloadType.toLowerCase()}.name`, w.workloadName],
      ['service.name', w.canonicalName],
      ['service.version', w.canonicalRevision],
      ['cloud.region', w.locality?.region],
      ['cloud.availability_zone', w.locality?.zone],
    ]);
    baggageCache.set(w, baggage);
  }
  return baggage;
}

const responseHeadersCache = new WeakMap<Workload, { baggage: string }>();

/** The HBONE 200's extra headers for a destination workload (ENABLE_RESPONSE_BAGGAGE), built once per workload. */
export function responseBaggageHeaders(w: Workload): { baggage: string } {
  let h = responseHeadersCache.get(w);
  if (!h) responseHeadersCache.set(w, (h = { baggage: workloadBaggage(w) }));
  return h;
}

/** The workload-name keys ztunnel reads; other workload types' keys are ignored, as there. */
const WORKLOAD_NAME_KEYS = ['k8s.deployment.name', 'k8s.cronjob.name', 'k8s.pod.name', 'k8s.job.name'];

/**
 * ztunnel's `DerivedWorkload`: a source described only by its baggage. Its labels follow ztunnel's
 * `with_derived_source` (source_app is the workload name there, not the canonical service). Undefined when the
 * baggage says nothing ztunnel reads.
 */
export function baggageSource(baggage: ReadonlyMap<string, string>): PeerWorkload | undefined {
  let workloadName = '';
  for (const key of WORKLOAD_NAME_KEYS) workloadName = baggage.get(key) || workloadName;
  const namespace = baggage.get('k8s.namespace.name') ?? '';
  const canonicalName = baggage.get('service.name') ?? '';
  const canonicalRevision = baggage.get('service.version') ?? '';
  const clusterId = baggage.get('k8s.cluster.name') ?? '';
  if (!workloadName && !namespace && !canonicalName && !canonicalRevision && !clusterId) return undefined;
  return { name: '', namespace, workloadName, canonicalName, canonicalRevision, app: workloadName, version: canonicalRevision, clusterId, fromBaggage: true };
}
