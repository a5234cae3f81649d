// EndpointSlices → workloads, as istiod's ambient index reads them (pilot/pkg/serviceregistry/ambient/workloads.go,
// endpointSlicesBuilder and matchingServicesWithoutSelectors). Only slices of a Service (label
// `kubernetes.io/service-name`) count. An endpoint naming a Pod adds that Service to the pod's own workload (the
// pod knows much more than the slice); any other endpoint becomes a workload of its own, with nothing but its
// addresses and the Service's ports.
import type { EndpointSlice, Service as KubeService } from '../api/types.js';
import type { Port, PortList, Workload } from '../xds/types.js';
import { ipToBytes } from '../common/ip.js';
import { serviceHostname, type MeshOptions } from './services.js';

/** The label naming the Service a slice belongs to (discovery.LabelServiceName). */
export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

/** The Service name of a slice istiod reads: one of a Service, whose addresses are IPs (FQDN slices are ignored). */
export function sliceServiceName(es: EndpointSlice): string | undefined {
  if (es.addressType === 'FQDN') return undefined;
  return es.metadata.labels?.[SERVICE_NAME_LABEL];
}

/** The pods (`namespace/name`, with the uid the reference carries) a slice of a Service names. */
export function slicePodRefs(es: EndpointSlice): { ref: string; uid: string }[] {
  if (sliceServiceName(es) === undefined) return [];
  const out: { ref: string; uid: string }[] = [];
  for (const ep of es.endpoints ?? []) {
    const t = ep.targetRef;
    if (t?.kind === 'Pod') out.push({ ref: `${t.namespace ?? ''}/${t.name ?? ''}`, uid: t.uid ?? '' });
  }
  return out;
}

export function endpointSliceUid(clusterId: string, es: EndpointSlice, address: string): string {
  return `${clusterId}/discovery.k8s.io/EndpointSlice/${es.metadata.namespace ?? ''}/${es.metadata.name}/${address}`;
}

/**
 * The slice's ports as the Service's: a slice port carries the Service port's name and the endpoints' (target) port.
 * kube-apiserver defaults an absent name to "" and protocol to TCP; only TCP ports with a port number are kept.
 */
function slicePortList(es: EndpointSlice, svc: KubeService): PortList {
  const ports: Port[] = [];
  for (const p of es.ports ?? []) {
    if (p.port === undefined || (p.protocol ?? 'TCP') !== 'TCP') continue;
    const name = p.name ?? '';
    const servicePort = (svc.spec.ports ?? []).find((sp) => (sp.name ?? '') === name);
    if (servicePort !== undefined) ports.push({ servicePort: servicePort.port, targetPort: p.port });
  }
  return { ports };
}

/**
 * The workloads of the endpoints of a slice of `svc` (a Service ztunnel is told about) that are not pods. An
 * endpoint's first address names it; an endpoint with an address that does not
 * parse gives none. These are opaque: no identity, no policies, no waypoint, and HOST_NETWORK since their addresses
 * may be shared with other workloads.
 */
export function endpointSliceWorkloads(es: EndpointSlice, svc: KubeService, opts: MeshOptions): Workload[] {
  const ns = es.metadata.namespace ?? '';
  const serviceKey = `${ns}/${serviceHostname(svc.metadata.name, ns, opts.domainSuffix)}`;
  const ports = slicePortList(es, svc);
  const seen = new Set<string>();
  const out: Workload[] = [];
  for (const ep of es.endpoints ?? []) {
    // The normal case: Kubernetes lists a Service's pods; the pod's own workload carries the Service.
    if (ep.targetRef?.kind === 'Pod') continue;
    const first = ep.addresses[0];
    if (first === undefined || seen.has(first)) continue;
    seen.add(first);
    const addresses = ep.addresses.map(ipToBytes);
    if (addresses.some((a) => a === undefined)) continue;
    out.push({
      uid: endpointSliceUid(opts.clusterId, es, first),
      name: es.metadata.name,
      namespace: ns,
      addresses: addresses as Uint8Array[],
      network: '',
      tunnelProtocol: 'NONE',
      trustDomain: opts.trustDomain,
      serviceAccount: '',
      node: '',
      canonicalName: '',
      canonicalRevision: '',
      workloadType: 'DEPLOYMENT',
      workloadName: '',
      services: { [serviceKey]: { ports: ports.ports.map((p) => ({ ...p })) } },
      authorizationPolicies: [],
      status: ep.conditions?.ready === false ? 'UNHEALTHY' : 'HEALTHY',
      clusterId: opts.clusterId,
      networkMode: 'HOST_NETWORK',
    });
  }
  return out;
}
