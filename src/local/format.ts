// kubectl-style tables for `ambit get`, `ambit up` and `ambit status`.
import type { AuthorizationPolicy, Condition, Deployment, DestinationRule, Gateway, GatewayClass, Namespace, PeerAuthentication, Pod, Resource, Service, ServiceEntry, VirtualService, WorkloadEntry } from '../api/types.js';
import { podStatusText } from './pods.js';
import { modelType, qualifiedKindName } from '../api/kinds.js';
import type { SupervisorStatus } from './supervisor.js';
import { age } from '../common/duration.js';

export interface TableLayout {
  /** Spaces after the widest cell of a column: kubectl's tabwriter pads with 3, istioctl's waypoint tables with 5. */
  padding?: number;
  /** Drop the spaces an empty last cell leaves (kubectl-like tables); istioctl's goldens keep them. */
  trimEnd?: boolean;
}

/** Left-aligned columns separated by three spaces, like kubectl; `layout` gives other tabwriter settings. */
export function table(header: string[], rows: string[][], layout: TableLayout = {}): string {
  const { padding = 3, trimEnd = true } = layout;
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => {
    const text = cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]! + padding))).join('');
    return trimEnd ? text.trimEnd() : text;
  };
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}

export interface TableOptions {
  wide: boolean;
  /** Prefix a NAMESPACE column (all namespaces). */
  allNamespaces: boolean;
  /** Prefix names with `kind/` (as `get all` does). */
  qualified: boolean;
}

type Columns = { header: string[]; wide: string[]; row(r: Resource): string[]; wideRow(r: Resource): string[] };

function containerCounts(p: Pod): { ready: number; total: number; restarts: number } {
  const statuses = (p.status?.containerStatuses ?? []) as { ready?: boolean; restartCount?: number }[];
  return {
    ready: statuses.filter((s) => s.ready).length,
    total: p.spec.containers.length,
    restarts: statuses.reduce((n, s) => n + (s.restartCount ?? 0), 0),
  };
}

/**
 * The status of a condition, as a CRD's `.status.conditions[?(@.type=="X")].status` printer column shows it: an empty
 * cell when the condition is missing.
 */
function conditionStatus(conditions: Condition[] | undefined, type: string): string {
  return conditions?.find((c) => c.type === type)?.status ?? '';
}

const COLUMNS: Partial<Record<Resource['kind'], Columns>> = {
  Pod: {
    header: ['READY', 'STATUS', 'RESTARTS', 'AGE'],
    wide: ['IP', 'NODE'],
    row: (r) => {
      const p = r as Pod;
      const c = containerCounts(p);
      return [`${c.ready}/${c.total}`, podStatusText(p), String(c.restarts), age(p.metadata.creationTimestamp)];
    },
    wideRow: (r) => [(r as Pod).status?.podIP ?? '<none>', (r as Pod).spec.nodeName ?? '<none>'],
  },
  Service: {
    header: ['TYPE', 'CLUSTER-IP', 'EXTERNAL-IP', 'PORT(S)', 'AGE'],
    wide: ['SELECTOR'],
    row: (r) => {
      const s = r as Service;
      const ports = (s.spec.ports ?? []).map((p) => `${p.port}/${p.protocol ?? 'TCP'}`).join(',') || '<none>';
      return [s.spec.type ?? 'ClusterIP', s.spec.clusterIP ?? '<none>', '<none>', ports, age(s.metadata.creationTimestamp)];
    },
    wideRow: (r) => [Object.entries((r as Service).spec.selector ?? {}).map(([k, v]) => `${k}=${v}`).join(',') || '<none>'],
  },
  Deployment: {
    header: ['READY', 'UP-TO-DATE', 'AVAILABLE', 'AGE'],
    wide: [],
    row: (r) => {
      const d = r as Deployment;
      const st = ((d as { status?: unknown }).status ?? {}) as { readyReplicas?: number; updatedReplicas?: number; availableReplicas?: number };
      return [`${st.readyReplicas ?? 0}/${d.spec.replicas ?? 1}`, String(st.updatedReplicas ?? 0), String(st.availableReplicas ?? 0), age(d.metadata.creationTimestamp)];
    },
    wideRow: () => [],
  },
  Namespace: {
    header: ['STATUS', 'AGE'],
    wide: ['LABELS'],
    row: (r) => ['Active', age((r as Namespace).metadata.creationTimestamp)],
    wideRow: (r) => [Object.entries(r.metadata.labels ?? {}).map(([k, v]) => `${k}=${v}`).join(',') || '<none>'],
  },
  // The Gateway API CRDs' additionalPrinterColumns. kubectl's CRD printer keeps only the first value a JSONPath yields,
  // so ADDRESS is the first of status.addresses.
  Gateway: {
    header: ['CLASS', 'ADDRESS', 'PROGRAMMED', 'AGE'],
    wide: [],
    row: (r) => {
      const g = r as Gateway;
      return [g.spec.gatewayClassName, g.status?.addresses?.[0]?.value ?? '', conditionStatus(g.status?.conditions, 'Programmed'), age(g.metadata.creationTimestamp)];
    },
    wideRow: () => [],
  },
  // Istio's CRDs' additionalPrinterColumns; kubectl prints an array value as compact JSON and a missing one empty.
  AuthorizationPolicy: {
    header: ['ACTION', 'AGE'],
    wide: [],
    row: (r) => [(r as AuthorizationPolicy).spec.action ?? '', age(r.metadata.creationTimestamp)],
    wideRow: () => [],
  },
  PeerAuthentication: {
    header: ['MODE', 'AGE'],
    wide: [],
    row: (r) => [(r as PeerAuthentication).spec.mtls?.mode ?? '', age(r.metadata.creationTimestamp)],
    wideRow: () => [],
  },
  DestinationRule: {
    header: ['HOST', 'AGE'],
    wide: [],
    row: (r) => [(r as DestinationRule).spec.host, age(r.metadata.creationTimestamp)],
    wideRow: () => [],
  },
  VirtualService: {
    header: ['GATEWAYS', 'HOSTS', 'AGE'],
    wide: [],
    row: (r) => {
      const v = r as VirtualService;
      return [v.spec.gateways ? JSON.stringify(v.spec.gateways) : '', v.spec.hosts ? JSON.stringify(v.spec.hosts) : '', age(v.metadata.creationTimestamp)];
    },
    wideRow: () => [],
  },
  ServiceEntry: {
    header: ['HOSTS', 'LOCATION', 'RESOLUTION', 'AGE'],
    wide: [],
    row: (r) => {
      const e = r as ServiceEntry;
      return [JSON.stringify(e.spec.hosts), e.spec.location ?? '', e.spec.resolution ?? '', age(e.metadata.creationTimestamp)];
    },
    wideRow: () => [],
  },
  WorkloadEntry: {
    header: ['AGE', 'ADDRESS'],
    wide: [],
    row: (r) => [age(r.metadata.creationTimestamp), (r as WorkloadEntry).spec.address ?? ''],
    wideRow: () => [],
  },
  GatewayClass: {
    header: ['CONTROLLER', 'ACCEPTED', 'AGE'],
    // DESCRIPTION has priority 1 in the CRD: only -o wide shows it.
    wide: ['DESCRIPTION'],
    row: (r) => {
      const c = r as GatewayClass;
      return [c.spec.controllerName, conditionStatus(c.status?.conditions, 'Accepted'), age(c.metadata.creationTimestamp)];
    },
    wideRow: (r) => [(r as GatewayClass).spec.description ?? ''],
  },
};

const GENERIC: Columns = { header: ['AGE'], wide: [], row: (r) => [age(r.metadata.creationTimestamp)], wideRow: () => [] };

/** One table for objects of a single kind. */
export function resourceTable(items: Resource[], opts: TableOptions): string {
  if (items.length === 0) return '';
  const cols = COLUMNS[items[0]!.kind] ?? GENERIC;
  const header = [...(opts.allNamespaces ? ['NAMESPACE'] : []), 'NAME', ...cols.header, ...(opts.wide ? cols.wide : [])];
  const rows = items.map((r) => {
    const name = opts.qualified ? `${qualifiedKindName(modelType(r.kind))}/${r.metadata.name}` : r.metadata.name;
    return [...(opts.allNamespaces ? [r.metadata.namespace ?? ''] : []), name, ...cols.row(r), ...(opts.wide ? cols.wideRow(r) : [])];
  });
  return table(header, rows);
}

export function nodesTable(status: SupervisorStatus, wide: boolean): string {
  const agentHealthy = (node: string) => status.components.filter((c) => c.node === node).every((c) => c.healthy);
  return table(
    ['NAME', 'STATUS', 'ROLES', 'AGE', 'VERSION', ...(wide ? ['INTERNAL-IP', 'POD-CIDR', 'PODS'] : [])],
    status.nodes.map((n) => [
      n.name,
      agentHealthy(n.name) ? 'Ready' : 'NotReady',
      '<none>',
      age(n.createdAt),
      'ambit-local',
      ...(wide ? [n.ip, n.podCIDR, String(n.pods)] : []),
    ]),
  );
}

export function componentsTable(status: SupervisorStatus): string {
  return table(
    ['COMPONENT', 'NODE', 'STATE', 'HEALTHY', 'RESTARTS', 'PID', 'MESSAGE'],
    status.components.map((c) => [
      c.name,
      c.node ?? '-',
      c.state.state === 'waiting' ? c.state.reason : c.state.state,
      c.healthy ? 'yes' : 'no',
      String(c.restarts),
      c.pid ? String(c.pid) : '-',
      c.healthy ? '' : c.healthMessage ?? '',
    ]),
  );
}
