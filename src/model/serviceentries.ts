// ServiceEntries and WorkloadEntries → ztunnel Services and Workloads, as istiod's ambient index builds them
// (pilot/pkg/serviceregistry/ambient/services.go constructServiceEntries, workloads.go serviceEntryWorkloadBuilder,
// workloadEntryWorkloadBuilder and constructServicesFromWorkloadEntry; pilot/pkg/networking/serviceentry
// ip_autoallocation.go). Pure functions; the AmbientIndex decides which entry owns a hostname and keeps them incremental.
import type { Container, Service as KubeService, ServiceEntry, WorkloadEntry, WorkloadEntrySpec } from '../api/types.js';
import type { NetworkAddress, Port, PortList, Service, Workload } from '../xds/types.js';
import { parseCidr } from '../common/ip.js';
import { distributionLoadBalancing, parseProtocol, toAppProtocol, type MeshOptions } from './services.js';
import { fnv1a32 } from './workloads.js';

/** The label with which a ServiceEntry opts out of IP auto-allocation (`"false"`, any case). */
export const ENABLE_AUTOALLOCATE_LABEL = 'networking.istio.io/enable-autoallocate-ip';

export function serviceEntryUid(clusterId: string, se: ServiceEntry, address: string): string {
  return `${clusterId}/networking.istio.io/ServiceEntry/${se.metadata.namespace ?? ''}/${se.metadata.name}/${address}`;
}

export function workloadEntryUid(clusterId: string, we: WorkloadEntry): string {
  return `${clusterId}/networking.istio.io/WorkloadEntry/${we.metadata.namespace ?? ''}/${we.metadata.name}`;
}

/** istiod's ShouldV2AutoAllocateIP: not NONE, no explicit addresses, not opted out by label. */
function autoAllocates(se: ServiceEntry): boolean {
  if ((se.spec.resolution ?? 'NONE') === 'NONE') return false;
  if (se.metadata.labels?.[ENABLE_AUTOALLOCATE_LABEL]?.toLowerCase() === 'false') return false;
  return (se.spec.addresses ?? []).length === 0;
}

/**
 * The addresses auto-allocated to one host. istiod's allocation controller writes them to `status.addresses` from
 * 240.240.0.0/16 and 2001:2::/48 in the order it sees entries, which no pure function reproduces: those written in
 * the status are used as istiod uses them; without them the address pair comes from an FNV-1a hash of
 * `namespace/host`, as istiod's former (v1) allocation did, so the same manifest always gets the same VIPs.
 */
function allocatedAddresses(se: ServiceEntry, host: string): NetworkAddress[] {
  const fromStatus = (se.status?.addresses ?? []).filter((a) => a.host === host).map((a) => parseCidr(a.value));
  if ((se.status?.addresses ?? []).length > 0) {
    return fromStatus.filter((a) => a !== undefined && a.length === a.address.length * 8).map((a) => ({ network: '', address: a!.address }));
  }
  const h = fnv1a32(`${se.metadata.namespace ?? ''}/${host}`) & 0xffff;
  const [x, y] = [h >> 8, h & 0xff];
  const v6 = new Uint8Array(16);
  v6.set([0x20, 0x01, 0x00, 0x02]);
  v6.set([0xf0, 0xf0, 0x00, x, 0x00, y], 10);
  return [
    { network: '', address: Uint8Array.of(240, 240, x, y) },
    { network: '', address: v6 },
  ];
}

/**
 * One Service per host (istiod's constructServiceEntries), without waypoint and canonical flag, which depend on
 * other objects. An address that does not parse drops the whole entry, as in istiod.
 */
export function serviceEntryServices(se: ServiceEntry, nsAnnotations: Record<string, string> | undefined): Service[] {
  const explicit: NetworkAddress[] = [];
  for (const a of se.spec.addresses ?? []) {
    const parsed = parseCidr(a);
    if (parsed === undefined) return [];
    const full = parsed.length === parsed.address.length * 8;
    explicit.push(full ? { network: '', address: parsed.address } : { network: '', address: parsed.address, length: parsed.length });
  }
  const resolution = se.spec.resolution ?? 'NONE';
  const ports: Port[] = (se.spec.ports ?? []).map((p) => ({
    servicePort: p.number,
    targetPort: p.targetPort || p.number,
    appProtocol: toAppProtocol(parseProtocol(p.protocol)),
  }));
  // NONE passes traffic through to the address called; the health policy only keeps the configuration readable.
  const loadBalancing: Service['loadBalancing'] =
    resolution === 'NONE' ? { routingPreference: [], mode: 'PASSTHROUGH', healthPolicy: 'ALLOW_ALL' } : distributionLoadBalancing(undefined, se.metadata.annotations, nsAnnotations);
  const auto = autoAllocates(se);
  return se.spec.hosts.map((host) => {
    let addresses = explicit;
    // Wildcard hosts get no address unless resolved dynamically.
    if (addresses.length === 0 && auto && (!host.startsWith('*') || resolution === 'DYNAMIC_DNS')) addresses = allocatedAddresses(se, host);
    const svc: Service = {
      name: se.metadata.name,
      namespace: se.metadata.namespace ?? '',
      hostname: host,
      addresses: addresses.map((a) => ({ ...a })),
      ports: ports.map((p) => ({ ...p })),
      subjectAltNames: [...(se.spec.subjectAltNames ?? [])],
    };
    if (loadBalancing) svc.loadBalancing = { ...loadBalancing, routingPreference: [...loadBalancing.routingPreference] };
    return svc;
  });
}

/** Which ports of a ServiceEntry an endpoint uses: its `ports[name]`, else the entry's target port. */
function endpointPortList(se: ServiceEntry, ep: WorkloadEntrySpec): PortList {
  return {
    ports: (se.spec.ports ?? []).map((p) => ({ servicePort: p.number, targetPort: ep.ports?.[p.name] ?? (p.targetPort || p.number) })),
  };
}

/** A ServiceEntry's ports on a pod it selects: a container port named like the entry's port, else its target port. */
export function serviceEntryPodPortList(se: ServiceEntry, containers: Container[] | undefined): PortList {
  const byName = (name: string) => {
    for (const c of containers ?? []) for (const p of c.ports ?? []) if (p.name === name && (p.protocol ?? 'TCP') === 'TCP') return p.containerPort;
    return undefined;
  };
  return { ports: (se.spec.ports ?? []).map((p) => ({ servicePort: p.number, targetPort: (p.name ? byName(p.name) : undefined) ?? (p.targetPort || p.number) })) };
}

/** A ServiceEntry's ports on a WorkloadEntry it selects (constructServicesFromWorkloadEntry). */
export function serviceEntryWorkloadEntryPortList(se: ServiceEntry, we: WorkloadEntry): PortList {
  return endpointPortList(se, we.spec);
}

/**
 * A Kubernetes Service's ports on a WorkloadEntry it selects: a named target port must be among the entry's ports
 * (else that port is left out); otherwise the entry's port of the Service port's name, else the target port.
 */
export function kubeServiceWorkloadEntryPortList(svc: KubeService, we: WorkloadEntry): PortList {
  const ports: Port[] = [];
  for (const p of svc.spec.ports ?? []) {
    const target = p.targetPort;
    if (typeof target === 'string' && target !== '' && !/^[0-9]+$/.test(target)) {
      const named = we.spec.ports?.[target];
      if (named !== undefined) ports.push({ servicePort: p.port, targetPort: named });
      continue;
    }
    const numeric = target === undefined || target === '' ? p.port : Number(target);
    ports.push({ servicePort: p.port, targetPort: (p.name ? we.spec.ports?.[p.name] : undefined) ?? numeric });
  }
  return { ports };
}

/** The WorkloadEntry's labels as istiod reads them: the object's, with the spec's on top (ConvertClientWorkloadEntry). */
export function workloadEntryLabels(we: WorkloadEntry): Record<string, string> {
  return { ...we.metadata.labels, ...we.spec.labels };
}

function locality(value: string | undefined): Workload['locality'] {
  const [region = '', zone = '', subzone = ''] = (value ?? '').split('/');
  return region === '' && zone === '' && subzone === '' ? undefined : { region, zone, subzone };
}

/** What istiod's setTunnelProtocol reads from an entry's labels and annotations. */
function tunnel(labels: Record<string, string> | undefined, annotations: Record<string, string> | undefined): Pick<Workload, 'tunnelProtocol' | 'nativeTunnel'> {
  if (labels?.['networking.istio.io/tunnel'] === 'http') return { tunnelProtocol: 'HBONE', nativeTunnel: true };
  if (annotations?.['ambient.istio.io/redirection'] === 'enabled') return { tunnelProtocol: 'HBONE' };
  return { tunnelProtocol: 'NONE' };
}

function canonical(labels: Record<string, string> | undefined, workloadName: string): Pick<Workload, 'canonicalName' | 'canonicalRevision'> {
  const first = (keys: string[]) => keys.map((k) => labels?.[k]).find((v) => v !== undefined);
  return {
    canonicalName: first(['service.istio.io/canonical-name', 'app.kubernetes.io/name', 'app']) ?? workloadName,
    canonicalRevision: first(['service.istio.io/canonical-revision', 'app.kubernetes.io/version', 'version']) ?? 'latest',
  };
}

/**
 * The parts of a workload an entry (or a ServiceEntry endpoint) gives itself: address or hostname, network, locality,
 * and its `weight` as capacity (when above 0).
 */
function entryWorkload(
  uid: string,
  name: string,
  namespace: string,
  spec: WorkloadEntrySpec,
  labels: Record<string, string> | undefined,
  annotations: Record<string, string> | undefined,
  opts: MeshOptions,
  workloadName = name,
): Workload {
  const address = spec.address ?? '';
  const ip = parseCidr(address);
  const w: Workload = {
    uid,
    name,
    namespace,
    addresses: ip !== undefined && !address.includes('/') ? [ip.address] : [],
    network: spec.network ?? '',
    ...tunnel(labels, annotations),
    trustDomain: opts.trustDomain,
    serviceAccount: spec.serviceAccount ?? '',
    node: '',
    ...canonical(labels, workloadName),
    // istiod impersonates a pod.
    workloadType: 'POD',
    workloadName,
    services: {},
    authorizationPolicies: [],
    // istiod has no health for entries.
    status: 'HEALTHY',
    clusterId: opts.clusterId,
  };
  if (w.addresses.length === 0) w.hostname = address;
  if ((spec.weight ?? 0) > 0) w.capacity = { value: spec.weight! };
  const l = locality(spec.locality);
  if (l) w.locality = l;
  return w;
}

/**
 * The workloads of a ServiceEntry's inline endpoints, each listing `services` (the entry's Services that won their
 * hostname, by `namespace/hostname`). A DNS entry without endpoints or selector has one implicit endpoint per host,
 * addressed by that hostname and carrying only its own Service. Policies and waypoint are the caller's.
 */
export function serviceEntryWorkloads(se: ServiceEntry, services: Service[], opts: MeshOptions): { workload: Workload; labels: Record<string, string> | undefined }[] {
  if (services.length === 0) return [];
  const ns = se.metadata.namespace ?? '';
  const resolution = se.spec.resolution ?? 'NONE';
  const implicit = (se.spec.endpoints ?? []).length === 0 && (resolution === 'DNS' || resolution === 'DYNAMIC_DNS' || resolution === 'DNS_ROUND_ROBIN') && se.spec.workloadSelector === undefined;
  const endpoints: { spec: WorkloadEntrySpec; services: Service[] }[] = implicit
    ? services.map((s) => ({ spec: { address: s.hostname }, services: [s] }))
    : (se.spec.endpoints ?? []).map((spec) => ({ spec, services }));
  return endpoints.map(({ spec, services: own }) => {
    const w = entryWorkload(serviceEntryUid(opts.clusterId, se, spec.address ?? ''), se.metadata.name, ns, spec, se.metadata.labels, se.metadata.annotations, opts);
    const ports = endpointPortList(se, spec);
    for (const s of own) w.services[`${s.namespace}/${s.hostname}`] = { ports: ports.ports.map((p) => ({ ...p })) };
    // An explicit endpoint binds to a waypoint by its own labels; an implicit one has none.
    return { workload: w, labels: implicit ? undefined : spec.labels };
  });
}

/** A WorkloadEntry's workload, without services, policies and waypoint (the caller's). */
export function workloadEntryWorkload(we: WorkloadEntry, opts: MeshOptions): Workload {
  const labels = workloadEntryLabels(we);
  return entryWorkload(
    workloadEntryUid(opts.clusterId, we),
    we.metadata.name,
    we.metadata.namespace ?? '',
    we.spec,
    labels,
    we.metadata.annotations,
    opts,
    workloadEntryWorkloadName(we.metadata.name, we.metadata.annotations, labels),
  );
}

/**
 * istiod's WorkloadNameFromWorkloadEntry: the auto-registration group that created the entry, else the
 * `service.istio.io/workload-name` label, else the entry's name.
 */
function workloadEntryWorkloadName(name: string, annotations: Record<string, string> | undefined, labels: Record<string, string>): string {
  return annotations?.['istio.io/autoRegistrationGroup'] ?? labels['service.istio.io/workload-name'] ?? name;
}
