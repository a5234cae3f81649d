// Kubernetes Service → istio.workload.Service, as istiod builds it (pilot/pkg/serviceregistry/ambient/services.go
// constructService) minus waypoints, plus the per-workload port mapping of a selected pod (workloads.go
// constructServices).
import type { Container, Service as KubeService, ServicePort } from '../api/types.js';
import type { AppProtocol, Port, PortList, Service, WaypointProtocol } from '../xds/types.js';
import { ipToBytes } from '../common/ip.js';

export interface MeshOptions {
  clusterId: string;
  rootNamespace: string;
  trustDomain: string;
  domainSuffix: string;
}

export function serviceHostname(name: string, namespace: string, domainSuffix: string): string {
  return `${name}.${namespace}.svc.${domainSuffix}`;
}

/** The xDS resource name of a Service: `namespace/hostname`. */
export function serviceKeyOf(s: KubeService, domainSuffix: string): string {
  const ns = s.metadata.namespace ?? '';
  return `${ns}/${serviceHostname(s.metadata.name, ns, domainSuffix)}`;
}

// Ports that are TCP without needing protocol sniffing (istio pkg/config/kube ConvertProtocol wellKnownPorts).
const WELL_KNOWN_TCP_PORTS = new Set([25, 53, 3306, 27017]);
const PROTOCOL_NAMES: Record<string, WaypointProtocol> = {
  http: 'HTTP',
  http2: 'HTTP2',
  grpc: 'GRPC',
  https: 'HTTPS',
  tcp: 'TCP',
  tls: 'TLS',
  mongo: 'MONGO',
  redis: 'REDIS',
  mysql: 'MYSQL',
  udp: 'UDP',
};

/** An Istio protocol name (protocol.Parse, any case): a ServiceEntry port's `protocol`. */
export function parseProtocol(name: string | undefined): WaypointProtocol {
  const lower = (name ?? '').toLowerCase();
  if (lower === 'grpc-web') return 'GRPC_WEB';
  return PROTOCOL_NAMES[lower] ?? 'UNSPECIFIED';
}

/**
 * Istio's protocol of a Service port (pkg/config/kube ConvertProtocol): UDP is UDP; else `appProtocol` when set (with
 * Kubernetes' `kubernetes.io/h2c|ws|wss`), otherwise the port name, read up to its first `-` (`grpc-web` whole);
 * unknown names are sniffed (UNSPECIFIED) except on well-known TCP ports.
 */
export function portProtocol(p: Pick<ServicePort, 'name' | 'port' | 'protocol' | 'appProtocol'>): WaypointProtocol {
  if (p.protocol === 'UDP') return 'UDP';
  let name = p.name ?? '';
  if (p.appProtocol !== undefined) {
    name = p.appProtocol;
    if (name === 'kubernetes.io/h2c') return 'HTTP2';
    if (name === 'kubernetes.io/ws') return 'HTTP';
    if (name === 'kubernetes.io/wss') return 'HTTPS';
  }
  if (name.slice(0, 8).toLowerCase() === 'grpc-web') return 'GRPC_WEB';
  const dash = name.indexOf('-');
  const byName = PROTOCOL_NAMES[(dash >= 0 ? name.slice(0, dash) : name).toLowerCase()];
  if (byName) return byName;
  return WELL_KNOWN_TCP_PORTS.has(p.port) ? 'TCP' : 'UNSPECIFIED';
}

/** The protocol ztunnel is told (istiod's toAppProtocolFromProtocol). */
function appProtocolOf(p: ServicePort): AppProtocol {
  return toAppProtocol(portProtocol(p));
}

export function toAppProtocol(protocol: WaypointProtocol): AppProtocol {
  switch (protocol) {
    case 'HTTP':
      return 'HTTP11';
    case 'HTTP2':
      return 'HTTP2';
    case 'GRPC':
      return 'GRPC';
    case 'TLS':
    case 'HTTPS':
      return 'TLS';
    case 'TCP':
      return 'TCP';
    default:
      return 'UNKNOWN';
  }
}

/** Numeric target port of a Service port: unset defaults to the port (API server defaulting); named → 0. */
function numericTargetPort(p: ServicePort): number {
  if (p.targetPort === undefined || p.targetPort === '') return p.port;
  if (typeof p.targetPort === 'number') return p.targetPort;
  return /^[0-9]+$/.test(p.targetPort) ? Number(p.targetPort) : 0;
}

function namedTargetPort(p: ServicePort): string | undefined {
  return typeof p.targetPort === 'string' && !/^[0-9]+$/.test(p.targetPort) && p.targetPort !== '' ? p.targetPort : undefined;
}

function vipsOf(s: KubeService): string[] {
  const ips = s.spec.clusterIPs && s.spec.clusterIPs.length > 0 ? s.spec.clusterIPs : [s.spec.clusterIP ?? ''];
  return ips.filter((ip) => ip !== '' && ip !== 'None');
}

type TrafficDistribution = 'zone' | 'node' | undefined;

function trafficDistribution(fromSpec: string | undefined, annotations: Record<string, string> | undefined, nsAnnotations: Record<string, string> | undefined): TrafficDistribution {
  const classify = (v: string | undefined): TrafficDistribution => {
    if (v === 'PreferClose' || v === 'PreferSameZone') return 'zone';
    if (v === 'PreferSameNode') return 'node';
    return undefined;
  };
  // The Service field wins, then the object's annotation, then the namespace annotation.
  const annotation = 'networking.istio.io/traffic-distribution';
  return classify(fromSpec) ?? classify(annotations?.[annotation]) ?? classify(nsAnnotations?.[annotation]);
}

/** The load balancing a traffic distribution asks for (istiod's preferSameZone/NodeLoadBalancer), if any. */
export function distributionLoadBalancing(
  fromSpec: string | undefined,
  annotations: Record<string, string> | undefined,
  nsAnnotations: Record<string, string> | undefined,
): Service['loadBalancing'] {
  const td = trafficDistribution(fromSpec, annotations, nsAnnotations);
  if (td === 'zone') return { routingPreference: ['NETWORK', 'REGION', 'ZONE'], mode: 'FAILOVER' };
  if (td === 'node') return { routingPreference: ['NETWORK', 'REGION', 'ZONE', 'SUBZONE', 'NODE'], mode: 'FAILOVER' };
  return undefined;
}

/** The Service as ztunnel receives it; undefined for ExternalName services (ambient leaves those to DNS). */
export function buildService(s: KubeService, opts: MeshOptions, nsAnnotations: Record<string, string> | undefined): Service | undefined {
  if (s.spec.type === 'ExternalName') return undefined;
  const ns = s.metadata.namespace ?? '';
  const addresses = [];
  for (const vip of vipsOf(s)) {
    const address = ipToBytes(vip);
    // istiod refuses the whole Service when a VIP does not parse.
    if (address === undefined) return undefined;
    addresses.push({ network: '', address });
  }
  const ports: Port[] = (s.spec.ports ?? []).map((p) => ({
    servicePort: p.port,
    targetPort: numericTargetPort(p),
    appProtocol: appProtocolOf(p),
  }));

  let loadBalancing: Service['loadBalancing'];
  if (s.spec.internalTrafficPolicy === 'Local') {
    loadBalancing = { routingPreference: ['NODE'], mode: 'STRICT' };
  } else {
    loadBalancing = distributionLoadBalancing(s.spec.trafficDistribution as string | undefined, s.metadata.annotations, nsAnnotations);
  }
  if (s.spec.publishNotReadyAddresses === true) {
    loadBalancing = { ...(loadBalancing ?? { routingPreference: [], mode: 'UNSPECIFIED_MODE' }), healthPolicy: 'ALLOW_ALL' };
  }

  const families = (s.spec.ipFamilies as string[] | undefined) ?? [];
  const ipFamilies: Service['ipFamilies'] =
    families.length === 2 ? 'DUAL' : families.length === 1 ? (families[0] === 'IPv4' ? 'IPV4_ONLY' : 'IPV6_ONLY') : 'AUTOMATIC';

  const svc: Service = {
    name: s.metadata.name,
    namespace: ns,
    hostname: serviceHostname(s.metadata.name, ns, opts.domainSuffix),
    addresses,
    ports,
    // istiod sends no SANs for Kubernetes Services (only ServiceEntry.subjectAltNames are passed through).
    subjectAltNames: [],
    ipFamilies,
    // A Kubernetes Service is always canonical for its hostname.
    canonical: true,
  };
  if (loadBalancing) svc.loadBalancing = loadBalancing;
  return svc;
}

/** A container port by name; Kubernetes only resolves named target ports against TCP container ports. */
function findContainerPort(containers: Container[] | undefined, name: string): number | undefined {
  for (const c of containers ?? []) {
    for (const p of c.ports ?? []) {
      if (p.name === name && (p.protocol ?? 'TCP') === 'TCP') return p.containerPort;
    }
  }
  return undefined;
}

/**
 * The port mapping a workload lists for a Service that selects it. Named target ports resolve against the pod's
 * container ports; a name the pod does not have drops that port for this workload.
 */
export function workloadPortList(s: KubeService, containers: Container[] | undefined): PortList {
  const ports: Port[] = [];
  for (const p of s.spec.ports ?? []) {
    const named = namedTargetPort(p);
    if (named !== undefined) {
      const resolved = findContainerPort(containers, named);
      if (resolved === undefined) continue;
      ports.push({ servicePort: p.port, targetPort: resolved });
    } else {
      ports.push({ servicePort: p.port, targetPort: numericTargetPort(p) });
    }
  }
  return { ports };
}
