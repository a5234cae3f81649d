// `ambit proxy-status`'s table from the control plane's /debug/syncz, in the columns and cell formats of istioctl
// proxy-status (istioctl/pkg/writer/pilot/status.go): by default one row per proxy with the types it subscribed to;
// with verbosity 1 a column per xDS type (Envoy's core types and every type seen) with its sync status and age.
import { XDS_SHORT_NAMES } from '../controlplane/xds.js';
import { age } from '../common/duration.js';
import { table } from '../local/format.js';

export interface SyncConfig {
  typeUrl: string;
  configStatus: string;
  lastUpdated?: string;
  errorState?: { details: string };
}
export interface SyncClient {
  node: { id: string; metadata: { CLUSTER_ID?: string; NAMESPACE?: string; ISTIO_VERSION?: string } };
  genericXdsConfigs: SyncConfig[];
}
export interface Syncz {
  controlPlane: { identifier: { ID: string; info: { version: string } } };
  resources: SyncClient[];
}

const ENVOY = 'type.googleapis.com/envoy.config';
/** Envoy's core types in istioctl's column order (CDS, LDS, EDS, RDS), then ECDS for the verbose table. */
const CORE_TYPES = [`${ENVOY}.cluster.v3.Cluster`, `${ENVOY}.listener.v3.Listener`, `${ENVOY}.endpoint.v3.ClusterLoadAssignment`, `${ENVOY}.route.v3.RouteConfiguration`];
const KNOWN_TYPES = [...CORE_TYPES, `${ENVOY}.core.v3.TypedExtensionConfig`];
const SHORT: Record<string, string> = {
  ...XDS_SHORT_NAMES,
  [KNOWN_TYPES[0]!]: 'CDS',
  [KNOWN_TYPES[1]!]: 'LDS',
  [KNOWN_TYPES[2]!]: 'EDS',
  [KNOWN_TYPES[3]!]: 'RDS',
  [KNOWN_TYPES[4]!]: 'ECDS',
};
/** istiod's GetShortType: the type URL itself when it has no short name. */
const shortType = (t: string) => SHORT[t] ?? t;
const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** istioctl's formatStatus: `NOT SENT`, or the status with the age of the last send. */
function formatStatus(c: SyncConfig, now: number): string {
  if (c.configStatus === 'UNKNOWN') return 'IGNORED';
  if (c.configStatus === 'NOT_SENT') return 'NOT SENT';
  return c.lastUpdated ? `${c.configStatus} (${age(c.lastUpdated, now)})` : c.configStatus;
}

export function proxyStatusTable(s: Syncz, verbosity = 0, now = Date.now()): string {
  const clients = [...s.resources].sort((a, b) => cmp(a.node.id, b.node.id));
  const seen = new Set(clients.flatMap((c) => c.genericXdsConfigs.map((x) => x.typeUrl)));
  const cp = s.controlPlane.identifier;
  const status = (c: SyncClient) => new Map(c.genericXdsConfigs.map((x) => [x.typeUrl, formatStatus(x, now)]));
  if (verbosity > 0) {
    const types = [...new Set([...seen, ...KNOWN_TYPES])].sort(cmp);
    const rows = clients.map((c) => {
      const st = status(c);
      return [c.node.id, c.node.metadata.CLUSTER_ID ?? '', ...types.map((t) => st.get(t) ?? 'IGNORED'), cp.ID, c.node.metadata.ISTIO_VERSION ?? ''];
    });
    return table(['NAME', 'CLUSTER', ...types.map(shortType), 'ISTIOD', 'VERSION'], rows, { padding: 5, trimEnd: false });
  }
  const types = [...CORE_TYPES.filter((t) => seen.has(t)), ...[...seen].filter((t) => !CORE_TYPES.includes(t)).sort(cmp)];
  const rows = clients.map((c) => {
    const st = status(c);
    const subscribed = types.filter((t) => st.has(t) && st.get(t) !== 'IGNORED').map(shortType);
    const cell = subscribed.length > 0 ? `${subscribed.length} (${subscribed.join(',')})` : '0';
    return [c.node.id, c.node.metadata.CLUSTER_ID ?? '', cp.ID, c.node.metadata.ISTIO_VERSION ?? '', cell];
  });
  return table(['NAME', 'CLUSTER', 'ISTIOD', 'VERSION', 'SUBSCRIBED TYPES'], rows, { padding: 5, trimEnd: false });
}
