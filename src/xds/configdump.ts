// xDS resources rendered the way ztunnel's `/config_dump` shows them: ztunnel's internal serde JSON (camelCase,
// `network/IP` strings, externally tagged string matches, default values omitted) rather than protobuf JSON.
// Workloads carry their `services` port map like ztunnel's local config file (LocalWorkload), so a dump's
// workloads/services/policies can also be read back as a ztunnel LOCAL_XDS configuration. Shared by the offline
// view (`ambit config ztunnel`) and the proxies' admin endpoints.
import { bytesToIp } from '../common/ip.js';
import { capacityOf, type Authorization, type CidrAddress, type GatewayAddress, type Match, type NetworkAddress, type Port, type Service, type StringMatch, type Workload } from './types.js';

const SCOPES: Record<Authorization['scope'], string> = { GLOBAL: 'Global', NAMESPACE: 'Namespace', WORKLOAD_SELECTOR: 'WorkloadSelector' };
const ACTIONS: Record<Authorization['action'], string> = { ALLOW: 'Allow', DENY: 'Deny' };
const LB_SCOPES: Record<string, string> = {
  REGION: 'Region',
  ZONE: 'Zone',
  SUBZONE: 'Subzone',
  NODE: 'Node',
  CLUSTER: 'Cluster',
  NETWORK: 'Network',
};
const LB_MODES: Record<string, string> = { UNSPECIFIED_MODE: 'Standard', STRICT: 'Strict', FAILOVER: 'Failover', PASSTHROUGH: 'Passthrough' };
const IP_FAMILIES: Record<string, string | undefined> = { AUTOMATIC: undefined, IPV4_ONLY: 'IPv4', IPV6_ONLY: 'IPv6', DUAL: 'Dual' };

function networkAddress(a: NetworkAddress): string {
  return `${a.network}/${bytesToIp(a.address)}`;
}

function gatewayAddress(g: GatewayAddress): Record<string, unknown> {
  // Both forms are strings in ztunnel's dump: `network/IP`, or `namespace/hostname` (NamespacedHostname's Display).
  const destination = g.hostname ? `${g.hostname.namespace}/${g.hostname.hostname}` : networkAddress(g.address!);
  return { destination, hboneMtlsPort: g.hboneMtlsPort };
}

/** `{"80": 8080}`: ztunnel keeps ports as a service-port → target-port map. */
function portMap(ports: Port[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const p of ports) out[String(p.servicePort)] = p.targetPort;
  return out;
}

export function dumpWorkload(w: Workload): Record<string, unknown> {
  // Field order and defaults follow ztunnel's `state::workload::Workload` serialization.
  const out: Record<string, unknown> = { workloadIps: w.addresses.map(bytesToIp) };
  if (w.waypoint) out.waypoint = gatewayAddress(w.waypoint);
  if (w.networkGateway) out.networkGateway = gatewayAddress(w.networkGateway);
  out.protocol = w.tunnelProtocol === 'HBONE' ? 'HBONE' : 'TCP';
  out.networkMode = w.networkMode === 'HOST_NETWORK' ? 'HostNetwork' : 'Standard';
  if (w.uid) out.uid = w.uid;
  out.name = w.name;
  out.namespace = w.namespace;
  // ztunnel fills these defaults when it receives empty strings.
  out.trustDomain = w.trustDomain || 'cluster.local';
  out.serviceAccount = w.serviceAccount || 'default';
  if (w.network) out.network = w.network;
  if (w.workloadName) out.workloadName = w.workloadName;
  out.workloadType = w.workloadType.toLowerCase();
  if (w.canonicalName) out.canonicalName = w.canonicalName;
  if (w.canonicalRevision) out.canonicalRevision = w.canonicalRevision;
  if (w.hostname) out.hostname = w.hostname;
  if (w.node) out.node = w.node;
  if (w.nativeTunnel) out.nativeTunnel = true;
  if (w.applicationTunnel) {
    out.applicationTunnel = { protocol: w.applicationTunnel.protocol, port: w.applicationTunnel.port || null };
  }
  if (w.authorizationPolicies.length > 0) out.authorizationPolicies = [...w.authorizationPolicies];
  out.status = w.status === 'HEALTHY' ? 'Healthy' : 'Unhealthy';
  out.clusterId = w.clusterId || 'Kubernetes';
  if (w.locality && (w.locality.region || w.locality.zone || w.locality.subzone)) out.locality = { ...w.locality };
  out.capacity = capacityOf(w);
  const services: Record<string, Record<string, number>> = {};
  for (const key of Object.keys(w.services).sort()) services[key] = portMap(w.services[key]!.ports);
  if (Object.keys(services).length > 0) out.services = services;
  return out;
}

/** A VIP with a prefix length shorter than its family's: an address range (ztunnel's `cidr_vips`). */
export function isCidrVip(a: NetworkAddress): boolean {
  return a.length !== undefined && a.length !== null && a.length !== a.address.length * 8;
}

export function dumpService(s: Service, endpoints: Workload[]): Record<string, unknown> {
  // Field order and defaults follow ztunnel's `state::service::Service` serialization.
  const out: Record<string, unknown> = {
    name: s.name,
    namespace: s.namespace,
    hostname: s.hostname,
    vips: s.addresses.filter((a) => !isCidrVip(a)).map(networkAddress),
  };
  const cidrs = s.addresses.filter(isCidrVip);
  if (cidrs.length > 0) out.cidrVips = cidrs.map((a) => `${networkAddress(a)}/${a.length}`);
  out.ports = portMap(s.ports);
  const allowAll = s.loadBalancing?.healthPolicy === 'ALLOW_ALL';
  const eps: Record<string, unknown> = {};
  const key = `${s.namespace}/${s.hostname}`;
  for (const w of [...endpoints].sort((a, b) => (a.uid < b.uid ? -1 : a.uid > b.uid ? 1 : 0))) {
    // ztunnel only keeps endpoints it may route to.
    if (w.status !== 'HEALTHY' && !allowAll) continue;
    eps[w.uid] = { workloadUid: w.uid, port: portMap(w.services[key]?.ports ?? []), status: w.status === 'HEALTHY' ? 'Healthy' : 'Unhealthy' };
  }
  out.endpoints = eps;
  out.subjectAltNames = [...s.subjectAltNames];
  if (s.waypoint) out.waypoint = gatewayAddress(s.waypoint);
  if (s.weightedWaypoints?.length) out.weightedWaypoints = s.weightedWaypoints.map((w) => ({ destination: gatewayAddress(w.destination), weight: w.weight ?? 0 }));
  if (s.loadBalancing) {
    out.loadBalancer = {
      routingPreferences: s.loadBalancing.routingPreference.map((r) => LB_SCOPES[r] ?? r),
      mode: LB_MODES[s.loadBalancing.mode] ?? s.loadBalancing.mode,
      healthPolicy: s.loadBalancing.healthPolicy === 'ALLOW_ALL' ? 'AllowAll' : 'OnlyHealthy',
    };
  }
  const family = s.ipFamilies ? IP_FAMILIES[s.ipFamilies] : undefined;
  if (family) out.ipFamilies = family;
  out.canonical = s.canonical ?? false;
  return out;
}

function stringMatch(m: StringMatch): Record<string, unknown> {
  if (m.exact !== undefined) return { Exact: m.exact };
  if (m.prefix !== undefined) return { Prefix: m.prefix };
  if (m.suffix !== undefined) return { Suffix: m.suffix };
  // serde renders the unit-like tuple variant `Presence()` as an empty array.
  return { Presence: [] };
}

function cidr(c: CidrAddress): string {
  return `${bytesToIp(c.address)}/${c.length}`;
}

function dumpMatch(m: Match): Record<string, unknown> {
  // ztunnel's RbacMatch field order; empty lists are omitted.
  const out: Record<string, unknown> = {};
  const put = (k: string, v: unknown[]) => {
    if (v.length > 0) out[k] = v;
  };
  put('namespaces', m.namespaces.map(stringMatch));
  put('notNamespaces', m.notNamespaces.map(stringMatch));
  put('serviceAccounts', m.serviceAccounts.map((s) => ({ namespace: s.namespace, serviceAccount: s.serviceAccount })));
  put('notServiceAccounts', m.notServiceAccounts.map((s) => ({ namespace: s.namespace, serviceAccount: s.serviceAccount })));
  put('principals', m.principals.map(stringMatch));
  put('notPrincipals', m.notPrincipals.map(stringMatch));
  put('sourceIps', m.sourceIps.map(cidr));
  put('notSourceIps', m.notSourceIps.map(cidr));
  put('destinationIps', m.destinationIps.map(cidr));
  put('notDestinationIps', m.notDestinationIps.map(cidr));
  put('destinationPorts', [...m.destinationPorts]);
  put('notDestinationPorts', [...m.notDestinationPorts]);
  return out;
}

export function dumpAuthorization(a: Authorization): Record<string, unknown> {
  return {
    name: a.name,
    namespace: a.namespace,
    scope: SCOPES[a.scope],
    action: ACTIONS[a.action],
    rules: a.rules.map((r) => r.clauses.map((c) => c.matches.map(dumpMatch))),
    dryRun: a.dryRun,
  };
}
