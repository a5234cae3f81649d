// `ambit ztunnel-config`'s views of ztunnel `/config_dump`s, in the columns, sort orders and cell formats of
// istioctl's ztunnel writer (istioctl/pkg/writer/ztunnel/configdump/*.go), so its output reads as `istioctl
// ztunnel-config` does against Istio's ztunnel. Pure functions over parsed dumps: the command fetches, these print.
import { table } from '../local/format.js';

// The fields the views read; a dump carries more (and each view's -o json prints it all).
interface GatewayAddress {
  /** ztunnel writes `namespace/hostname` or `network/ip`; Ambit's dump also writes the hostname as an object. */
  destination: string | { namespace: string; hostname: string };
}
export interface DumpWorkload {
  uid: string;
  workloadIps: string[];
  waypoint?: GatewayAddress;
  protocol: string;
  name: string;
  namespace: string;
  node?: string;
  hostname?: string;
  status: string;
  [field: string]: unknown;
}
export interface DumpService {
  name: string;
  namespace: string;
  hostname: string;
  vips: string[];
  waypoint?: GatewayAddress;
  endpoints: Record<string, { workloadUid: string }>;
  [field: string]: unknown;
}
export interface DumpPolicy {
  name: string;
  namespace: string;
  scope: string;
  action: string;
  [field: string]: unknown;
}
export interface DumpCert {
  pem?: string;
  serialNumber?: string;
  validFrom?: string;
  expirationTime?: string;
}
export interface DumpCertificate {
  identity: string;
  state: string;
  certChain: DumpCert[];
  rootCerts?: DumpCert[];
  [field: string]: unknown;
}
export interface DumpConnection {
  src: string;
  originalDst: string | null;
  actualDst: string;
  protocol: string;
}
export interface DumpWorkloadState {
  state?: string;
  connections?: { inbound: DumpConnection[]; outbound: DumpConnection[] };
  info: { name: string; namespace: string; serviceAccount?: string; trustDomain?: string };
  [field: string]: unknown;
}
export interface ZtunnelDump {
  workloads: DumpWorkload[];
  services: DumpService[];
  policies: DumpPolicy[];
  certificates: DumpCertificate[];
  workloadState: Record<string, DumpWorkloadState>;
  [field: string]: unknown;
}

export const ZTUNNEL_CONFIG_KINDS = ['workload', 'service', 'policy', 'certificate', 'connections', 'all'] as const;
export type ZtunnelConfigKind = (typeof ZTUNNEL_CONFIG_KINDS)[number];

/** istioctl's aliases (`ztunnel-config w|s|svc|p|pol|cert|certs|cons`). */
export const ZTUNNEL_CONFIG_ALIASES: Record<Exclude<ZtunnelConfigKind, 'all'>, string[]> = {
  workload: ['w', 'workloads'],
  service: ['s', 'svc', 'services'],
  policy: ['p', 'pol', 'policies'],
  certificate: ['cert', 'certs', 'certificates'],
  connections: ['cons'],
};

const listOrMap = <T>(v: unknown): T[] => (Array.isArray(v) ? (v as T[]) : v && typeof v === 'object' ? (Object.values(v) as T[]) : []);

/** Reads a `/config_dump` body; like istioctl it accepts each section as a list or a map. */
export function parseDump(text: string): ZtunnelDump {
  const raw = JSON.parse(text) as Record<string, unknown>;
  return {
    ...raw,
    workloads: listOrMap(raw.workloads),
    services: listOrMap(raw.services),
    policies: listOrMap(raw.policies),
    certificates: listOrMap(raw.certificates),
    workloadState: (raw.workloadState ?? {}) as Record<string, DumpWorkloadState>,
  };
}

/**
 * Several ztunnels' dumps as one. Every ztunnel receives the same workloads, services and policies (kept once, by
 * uid, namespace/hostname, namespace/name); certificates and workload states are each node's own and are all kept.
 */
export function mergeDumps(dumps: ZtunnelDump[]): ZtunnelDump {
  if (dumps.length === 1) return dumps[0]!;
  const byKey = <T>(items: T[], key: (t: T) => string) => [...new Map(items.map((i) => [key(i), i])).values()];
  return {
    workloads: byKey(dumps.flatMap((d) => d.workloads), (w) => w.uid),
    services: byKey(dumps.flatMap((d) => d.services), (s) => `${s.namespace}/${s.hostname}`),
    policies: byKey(dumps.flatMap((d) => d.policies), (p) => `${p.namespace}/${p.name}`),
    certificates: dumps.flatMap((d) => d.certificates),
    workloadState: Object.assign({}, ...dumps.map((d) => d.workloadState)) as Record<string, DumpWorkloadState>,
  };
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
const byNamespaceName = (a: { namespace: string; name: string }, b: { namespace: string; name: string }) => cmp(a.namespace, b.namespace) || cmp(a.name, b.name);

/** istioctl's tabwriter(0, 8, 1, ' ', 0): one space after the widest cell; the last column is not padded. */
const istioctlTable = (header: string[], rows: string[][], padding = 1) => table(header, rows, { padding, trimEnd: false });

function destinationOf(g: GatewayAddress): string {
  return typeof g.destination === 'string' ? g.destination : `${g.destination.namespace}/${g.destination.hostname}`;
}

/** The waypoint's Service name, `None` without one, `NA` when no Service matches (istioctl's waypointName). */
function waypointName(g: GatewayAddress | undefined, services: DumpService[]): string {
  if (!g) return 'None';
  const dest = destinationOf(g);
  for (const s of services) {
    if (`${s.namespace}/${s.hostname}` === dest || s.vips.includes(dest)) return s.name;
  }
  return 'NA';
}

export interface WorkloadFilter {
  namespace?: string;
  node?: string;
  address?: string;
}

const same = (a: string | undefined, b: string) => (a ?? '').toLowerCase() === b.toLowerCase();

export function filterWorkloads(d: ZtunnelDump, f: WorkloadFilter): DumpWorkload[] {
  return d.workloads.filter(
    (w) =>
      (!f.namespace || same(w.namespace, f.namespace)) &&
      (!f.node || same(w.node, f.node)) &&
      (!f.address || w.workloadIps.some((ip) => same(ip, f.address!))),
  );
}

export function workloadSummary(d: ZtunnelDump, f: WorkloadFilter = {}): string {
  const rows = filterWorkloads(d, f)
    .sort((a, b) => cmp(`${a.namespace}.${a.name}`, `${b.namespace}.${b.name}`) || cmp(a.node ?? '', b.node ?? ''))
    .map((w) => [w.namespace, w.name, w.workloadIps.join(',') || (w.hostname ?? ''), w.node ?? '', waypointName(w.waypoint, d.services), w.protocol]);
  return istioctlTable(['NAMESPACE', 'POD NAME', 'ADDRESS', 'NODE', 'WAYPOINT', 'PROTOCOL'], rows);
}

export function filterServices(d: ZtunnelDump, namespace?: string): DumpService[] {
  return d.services
    .filter((s) => !namespace || same(s.namespace, namespace))
    .sort((a, b) => byNamespaceName(a, b) || cmp(a.hostname, b.hostname));
}

export function serviceSummary(d: ZtunnelDump, namespace?: string): string {
  const healthy = new Set(d.workloads.filter((w) => w.status === 'Healthy').map((w) => w.uid));
  const rows = filterServices(d, namespace).map((s) => {
    const eps = Object.values(s.endpoints ?? {});
    const up = eps.filter((e) => healthy.has(e.workloadUid)).length;
    const ips = s.vips.map((v) => v.slice(v.indexOf('/') + 1));
    return [s.namespace, s.name, ips.join(','), waypointName(s.waypoint, d.services), `${up}/${eps.length}`];
  });
  return istioctlTable(['NAMESPACE', 'SERVICE NAME', 'SERVICE VIP', 'WAYPOINT', 'ENDPOINTS'], rows);
}

export function filterPolicies(d: ZtunnelDump, namespace?: string): DumpPolicy[] {
  return d.policies.filter((p) => !namespace || same(p.namespace, namespace)).sort(byNamespaceName);
}

export function policySummary(d: ZtunnelDump, namespace?: string): string {
  const rows = filterPolicies(d, namespace).map((p) => [p.namespace, p.name, p.action, p.scope]);
  return istioctlTable(['NAMESPACE', 'POLICY NAME', 'ACTION', 'SCOPE'], rows);
}

/** istioctl's certNotExpired: both times present, parseable, and now strictly between them. */
function certValid(c: DumpCert, now: number): boolean {
  if (!c.expirationTime && !c.validFrom) return false;
  const from = Date.parse(c.validFrom ?? '');
  const to = Date.parse(c.expirationTime ?? '');
  return !Number.isNaN(from) && !Number.isNaN(to) && now > from && now < to;
}

/** The decimal serial number in lowercase hex (Go's `%x` of a big.Int); `0` when absent, as Go prints a nil one. */
function serialHex(serial: string | undefined): string {
  return /^\d+$/.test(serial ?? '') ? BigInt(serial!).toString(16) : '0';
}

const orNA = (v: string | undefined) => v || 'NA';

export function certificateSummary(d: ZtunnelDump, now = Date.now()): string {
  const rows: string[][] = [];
  for (const secret of d.certificates) {
    const state = secret.state.includes('Unavailable') ? 'Unavailable' : secret.state;
    if (secret.certChain.length === 0) {
      rows.push([secret.identity, 'NA', state, 'false', 'NA', 'NA', 'NA']);
      continue;
    }
    const roots = secret.rootCerts ?? [];
    // Older ztunnels put the root at the end of certChain instead of in rootCerts.
    const legacy = roots.length === 0;
    const row = (c: DumpCert, type: string) => [secret.identity, type, state, String(certValid(c, now)), serialHex(c.serialNumber), orNA(c.expirationTime), orNA(c.validFrom)];
    secret.certChain.forEach((c, i) => rows.push(row(c, i === 0 ? 'Leaf' : i === secret.certChain.length - 1 && legacy ? 'Root' : 'Intermediate')));
    for (const c of roots) rows.push(row(c, 'Root'));
  }
  // istioctl's secret table pads with 5 spaces.
  return istioctlTable(['CERTIFICATE NAME', 'TYPE', 'STATUS', 'VALID CERT', 'SERIAL NUMBER', 'NOT AFTER', 'NOT BEFORE'], rows, 5);
}

export interface ConnectionsFilter {
  namespace?: string;
  direction?: 'inbound' | 'outbound';
  /** Show addresses instead of service and workload names. */
  raw?: boolean;
}

export function filterWorkloadStates(d: ZtunnelDump, f: ConnectionsFilter): DumpWorkloadState[] {
  return Object.values(d.workloadState)
    .filter((s) => !f.namespace || s.info.namespace === f.namespace)
    .sort((a, b) => byNamespaceName(a.info, b.info));
}

/** `ip:port` → `name:port` for the first address of a service (its hostname) or a workload (`name.namespace`). */
function addressNamer(d: ZtunnelDump, raw: boolean): (addr: string) => string {
  if (raw) return (addr) => addr;
  const names = new Map<string, string>();
  for (const s of d.services) {
    const first = s.vips[0];
    names.set(first ? first.slice(first.indexOf('/') + 1) : 'None', s.hostname);
  }
  for (const w of d.workloads) names.set(w.workloadIps[0] || 'None', `${w.name}.${w.namespace}`);
  return (addr) => {
    const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(addr);
    const name = m ? names.get(m[1] ?? m[2]!) : undefined;
    if (name === undefined) return addr;
    return name.includes(':') ? `[${name}]:${m![3]}` : `${name}:${m![3]}`;
  };
}

export function connectionsSummary(d: ZtunnelDump, f: ConnectionsFilter = {}): string {
  const name = addressNamer(d, f.raw ?? false);
  const rows: string[][] = [];
  for (const s of filterWorkloadStates(d, f)) {
    const who = `${s.info.name}.${s.info.namespace}`;
    if (f.direction !== 'outbound') {
      for (const c of s.connections?.inbound ?? []) rows.push([who, 'Inbound', name(c.actualDst), name(c.src), c.originalDst ?? '', c.protocol]);
    }
    if (f.direction !== 'inbound') {
      for (const c of s.connections?.outbound ?? []) rows.push([who, 'Outbound', name(c.src), name(c.actualDst), c.originalDst === null ? '' : name(c.originalDst), c.protocol]);
    }
  }
  return istioctlTable(['WORKLOAD', 'DIRECTION', 'LOCAL', 'REMOTE', 'REMOTE TARGET', 'PROTOCOL'], rows);
}

/** `ztunnel-config all`: every table, each after a blank line, optionally under istioctl's `------ X ------` heading. */
export function fullSummary(d: ZtunnelDump, withHeaders = false, now = Date.now()): string {
  const parts: [string, string][] = [
    ['WORKLOAD INFO', workloadSummary(d)],
    ['SERVICE INFO', serviceSummary(d)],
    ['POLICY INFO', policySummary(d)],
    ['SECRET INFO', certificateSummary(d, now)],
    ['CONNECTIONS INFO', connectionsSummary(d)],
  ];
  return parts.map(([title, body]) => `\n${withHeaders ? `------ ${title} ------\n\n` : ''}${body}`).join('');
}
