// Server-side printing: what kube-apiserver answers when a client asks for
// `application/json;as=Table;v=v1;g=meta.k8s.io` (kubectl get does, and prints the server's columns as they come).
// Built-in kinds use kube-apiserver's printers (k8s.io/kubernetes/pkg/printers/internalversion): their columns, cell
// types and `<none>`/`<unknown>` placeholders, because kubectl shows these cells verbatim and users compare them with
// a real cluster. Custom resources use their CRD's additionalPrinterColumns as apiextensions-apiserver does, and a
// kind without a printer gets the generic Name / Created At table.
//
// Like kube-apiserver, every printer emits its wide (priority 1) cells too; kubectl drops them without `-o wide`.
// Fields the API server defaults on write (a Service's type, a port's protocol, a Deployment's replicas, a Secret's
// type) are read with their defaults, so an object stored without them prints as it would from a real cluster.
import type { PrinterColumn, ResourceType } from '../api/kinds.js';
import { age, humanDuration } from '../common/duration.js';
import { kubeTime } from '../common/time.js';

export type IncludeObject = 'None' | 'Metadata' | 'Object';
export type Cell = string | number | boolean | null;

/** meta.k8s.io/v1 TableColumnDefinition; every field is always present on the wire. */
export interface TableColumnDefinition {
  name: string;
  /** An OpenAPI type: string, integer, number, boolean, date. */
  type: string;
  /** `name` marks the column kubectl prefixes with `kind/` (get all) and hides with `-o name`. */
  format: string;
  description: string;
  /** 0: always shown; 1: only with `-o wide`. */
  priority: number;
}

/** Set on rows of finished pods, as kube-apiserver's pod printer does. */
export interface TableRowCondition {
  type: 'Completed';
  status: 'True';
  reason: string;
  message: string;
}

export interface TableRow {
  cells: Cell[];
  conditions?: TableRowCondition[];
  /** The object as `includeObject` asks: PartialObjectMetadata (the default), the whole object, or null. */
  object: object | null;
}

export interface Table {
  kind: 'Table';
  apiVersion: 'meta.k8s.io/v1';
  metadata: { resourceVersion?: string; continue?: string };
  /** null in watch events after the first, as kube-apiserver sends the headers once per watch. */
  columnDefinitions: TableColumnDefinition[] | null;
  rows: TableRow[];
}

export interface TableOptions {
  includeObject: IncludeObject;
  /** The time ages are computed at (ms since the epoch); default: now. */
  now?: number;
  /** The list's resourceVersion (a single object's for a get). */
  resourceVersion?: string;
  continue?: string;
}

/** A list or get response as a Table: one row per object, in the given order. */
export function toTable(type: ResourceType, objects: readonly object[], opts: TableOptions): Table {
  return buildTable(type, objects, opts, true);
}

/**
 * A watch event's object as a one-row Table. kube-apiserver includes the column definitions in the first event of a
 * watch only (later ones carry `columnDefinitions: null`); the table's resourceVersion is the object's.
 */
export function toEventTable(type: ResourceType, object: object, opts: { includeObject: IncludeObject; now?: number; first: boolean }): Table {
  return buildTable(type, [object], { ...opts, resourceVersion: (object as Printable).metadata?.resourceVersion }, opts.first);
}

function buildTable(type: ResourceType, objects: readonly object[], opts: TableOptions, headers: boolean): Table {
  const printer = printerFor(type);
  const now = opts.now ?? Date.now();
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: { ...(opts.resourceVersion ? { resourceVersion: opts.resourceVersion } : {}), ...(opts.continue ? { continue: opts.continue } : {}) },
    columnDefinitions: headers ? printer.columns.map((c) => ({ ...c })) : null,
    rows: objects.map((o) => {
      const obj = o as Printable;
      const conditions = printer.conditions?.(obj);
      return { cells: printer.cells(obj, now), ...(conditions ? { conditions } : {}), object: rowObject(obj, opts.includeObject) };
    }),
  };
}

function rowObject(o: Printable, include: IncludeObject): object | null {
  switch (include) {
    case 'None':
      return null;
    case 'Object':
      return o;
    case 'Metadata':
      return { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: o.metadata ?? {} };
  }
}

// ---- printers ---------------------------------------------------------------------------------------------------------

interface Printer {
  columns: readonly TableColumnDefinition[];
  cells(o: Printable, now: number): Cell[];
  conditions?(o: Printable): TableRowCondition[] | undefined;
}

// Column descriptions are our own words: kube fills them from its API docs, and no client displays them.
const col = (name: string, type: string, description: string, priority = 0, format = ''): TableColumnDefinition => ({ name, type, format, description, priority });
const NAME = col('Name', 'string', 'The object\'s name, unique within its namespace (or the cluster).', 0, 'name');
const AGE = col('Age', 'string', 'Time since the object was created (metadata.creationTimestamp).');
const CONTAINERS = col('Containers', 'string', 'The names of the pod template\'s containers.', 1);
const IMAGES = col('Images', 'string', 'The images of the pod template\'s containers.', 1);

const printers = new Map<string, Printer>();
const register = (group: string, kind: string, printer: Printer) => printers.set(`${group}/${kind}`, printer);

/** The printer of a type: its CRD columns, a built-in printer, or the generic Name / Created At. */
function printerFor(type: ResourceType): Printer {
  if (type.printerColumns) return customPrinter(type.printerColumns);
  return printers.get(`${type.group}/${type.kind}`) ?? DEFAULT_PRINTER;
}

// ---- shapes read from objects (JSON as stored; every field may be absent) ----------------------------------------------

/** What every printer reads; the kinds' own shapes below extend it. */
interface Printable {
  metadata?: { name?: string; creationTimestamp?: string; deletionTimestamp?: string; resourceVersion?: string; labels?: Record<string, string> };
  [field: string]: unknown;
}
interface Condition {
  type: string;
  status?: string;
  reason?: string;
}
interface ContainerState {
  waiting?: { reason?: string };
  running?: object;
  terminated?: { exitCode?: number; signal?: number; reason?: string; finishedAt?: string };
}
interface ContainerStatus {
  name: string;
  ready?: boolean;
  started?: boolean;
  restartCount?: number;
  state?: ContainerState;
  lastState?: ContainerState;
}
interface ContainerSpec {
  name: string;
  image?: string;
  restartPolicy?: string;
}
interface LabelSelectorSpec {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: string; values?: string[] }[];
}
interface PodTemplate {
  spec?: { containers?: ContainerSpec[]; nodeSelector?: Record<string, string> };
}

const name = (o: Printable): string => o.metadata?.name ?? '';
const created = (o: Printable, now: number): string => age(o.metadata?.creationTimestamp, now);

// ---- pods ---------------------------------------------------------------------------------------------------------------

interface PodObject extends Printable {
  spec?: { nodeName?: string; containers?: ContainerSpec[]; initContainers?: ContainerSpec[]; readinessGates?: { conditionType: string }[] };
  status?: {
    phase?: string;
    reason?: string;
    nominatedNodeName?: string;
    podIPs?: { ip: string }[];
    conditions?: Condition[];
    initContainerStatuses?: ContainerStatus[];
    containerStatuses?: ContainerStatus[];
  };
}

/** The later of two instants (ms), either of which may be unset. */
function later(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined ? b : b === undefined ? a : Math.max(a, b);
}

function lastTermination(c: ContainerStatus): number | undefined {
  const at = c.lastState?.terminated?.finishedAt;
  const t = at ? Date.parse(at) : NaN;
  return Number.isNaN(t) ? undefined : t;
}

/** A terminated container's status word: its reason, else the signal or exit code. */
function terminatedText(t: NonNullable<ContainerState['terminated']>): string {
  return t.reason ? t.reason : t.signal ? `Signal:${t.signal}` : `ExitCode:${t.exitCode ?? 0}`;
}

/**
 * kube's printPod: READY counts sidecars (init containers with restartPolicy Always) as containers; STATUS is the
 * phase (or status.reason) overridden by the first unfinished init container, else by the containers' states scanned
 * last to first; RESTARTS counts the init containers' restarts only while the pod is still initializing.
 */
function podCells(pod: PodObject, now: number): Cell[] {
  const spec = pod.spec ?? {};
  const status = pod.status ?? {};
  const conditions = status.conditions ?? [];
  const phase = status.phase ?? '';
  let reason = status.reason || phase;
  if (conditions.some((c) => c.type === 'PodScheduled' && c.reason === 'SchedulingGated')) reason = 'SchedulingGated';

  const initContainers = spec.initContainers ?? [];
  const sidecars = new Set(initContainers.filter((c) => c.restartPolicy === 'Always').map((c) => c.name));
  const total = (spec.containers ?? []).length + sidecars.size;
  let ready = 0;
  let restarts = 0;
  let lastRestart: number | undefined;
  let sidecarRestarts = 0;
  let lastSidecarRestart: number | undefined;

  let initializing = false;
  const initStatuses = status.initContainerStatuses ?? [];
  for (const [i, c] of initStatuses.entries()) {
    restarts += c.restartCount ?? 0;
    lastRestart = later(lastRestart, lastTermination(c));
    const sidecar = sidecars.has(c.name);
    if (sidecar) {
      sidecarRestarts += c.restartCount ?? 0;
      lastSidecarRestart = later(lastSidecarRestart, lastTermination(c));
    }
    const { terminated, waiting } = c.state ?? {};
    if (terminated && (terminated.exitCode ?? 0) === 0) continue;
    if (sidecar && c.started) {
      if (c.ready) ready++;
      continue;
    }
    initializing = true;
    if (terminated) reason = `Init:${terminatedText(terminated)}`;
    else if (waiting?.reason && waiting.reason !== 'PodInitializing') reason = `Init:${waiting.reason}`;
    else reason = `Init:${i}/${initContainers.length}`;
    break;
  }

  // A pod whose Initialized condition is True (init containers restarted after it started) shows its containers.
  if (!initializing || conditions.find((c) => c.type === 'Initialized')?.status === 'True') {
    restarts = sidecarRestarts;
    lastRestart = lastSidecarRestart;
    let hasRunning = false;
    const statuses = status.containerStatuses ?? [];
    for (let i = statuses.length - 1; i >= 0; i--) {
      const c = statuses[i]!;
      restarts += c.restartCount ?? 0;
      lastRestart = later(lastRestart, lastTermination(c));
      const { waiting, terminated, running } = c.state ?? {};
      if (waiting?.reason) reason = waiting.reason;
      else if (terminated) reason = terminatedText(terminated);
      else if (c.ready && running) {
        hasRunning = true;
        ready++;
      }
    }
    // A finished container before a still-running one (a job's main container beside a sidecar) is not the pod's state.
    if (reason === 'Completed' && hasRunning) reason = conditions.some((c) => c.type === 'Ready' && c.status === 'True') ? 'Running' : 'NotReady';
  }

  if (pod.metadata?.deletionTimestamp && status.reason === 'NodeLost') reason = 'Unknown';
  else if (pod.metadata?.deletionTimestamp && phase !== 'Succeeded' && phase !== 'Failed') reason = 'Terminating';

  const restartText = restarts !== 0 && lastRestart !== undefined ? `${restarts} (${humanDuration(now - lastRestart)} ago)` : String(restarts);
  const gates = spec.readinessGates ?? [];
  const gatesTrue = gates.filter((g) => conditions.find((c) => c.type === g.conditionType)?.status === 'True').length;
  return [
    name(pod),
    `${ready}/${total}`,
    reason,
    restartText,
    created(pod, now),
    status.podIPs?.[0]?.ip || '<none>',
    spec.nodeName || '<none>',
    status.nominatedNodeName || '<none>',
    gates.length ? `${gatesTrue}/${gates.length}` : '<none>',
  ];
}

register('', 'Pod', {
  columns: [
    NAME,
    col('Ready', 'string', 'Ready containers out of all containers (sidecar init containers included).'),
    col('Status', 'string', 'A one-word summary of the pod\'s phase and its containers\' states.'),
    col('Restarts', 'string', 'Container restarts, and how long ago the last one was.'),
    AGE,
    col('IP', 'string', 'The pod\'s first IP address (status.podIPs).', 1),
    col('Node', 'string', 'The node the pod is bound to (spec.nodeName).', 1),
    col('Nominated Node', 'string', 'The node a preempting pod is expected to run on (status.nominatedNodeName).', 1),
    col('Readiness Gates', 'string', 'Readiness gates whose condition is True, out of all (spec.readinessGates).', 1),
  ],
  cells: (o, now) => podCells(o as PodObject, now),
  conditions: (o) => {
    const phase = (o as PodObject).status?.phase;
    if (phase === 'Succeeded') return [{ type: 'Completed', status: 'True', reason: 'Succeeded', message: 'The pod finished successfully.' }];
    if (phase === 'Failed') return [{ type: 'Completed', status: 'True', reason: 'Failed', message: 'The pod finished with a failure.' }];
    return undefined;
  },
});

// ---- nodes --------------------------------------------------------------------------------------------------------------

interface NodeObject extends Printable {
  spec?: { unschedulable?: boolean };
  status?: {
    conditions?: Condition[];
    addresses?: { type: string; address: string }[];
    nodeInfo?: { kubeletVersion?: string; osImage?: string; kernelVersion?: string; containerRuntimeVersion?: string };
  };
}

const NODE_ROLE_PREFIX = 'node-role.kubernetes.io/';

/** Roles from `node-role.kubernetes.io/<role>` label keys and the `kubernetes.io/role` label's value, sorted. */
function nodeRoles(labels: Record<string, string>): string {
  const roles = new Set<string>();
  for (const [k, v] of Object.entries(labels)) {
    if (k.startsWith(NODE_ROLE_PREFIX) && k.length > NODE_ROLE_PREFIX.length) roles.add(k.slice(NODE_ROLE_PREFIX.length));
    else if (k === 'kubernetes.io/role' && v) roles.add(v);
  }
  return [...roles].sort().join(',') || '<none>';
}

register('', 'Node', {
  columns: [
    NAME,
    col('Status', 'string', 'Ready, NotReady or Unknown from the Ready condition, plus SchedulingDisabled when cordoned.'),
    col('Roles', 'string', 'The node\'s roles, from its node-role.kubernetes.io/* labels.'),
    AGE,
    col('Version', 'string', 'The kubelet\'s version (status.nodeInfo.kubeletVersion).'),
    col('Internal-IP', 'string', 'The node\'s first InternalIP address.', 1),
    col('External-IP', 'string', 'The node\'s first ExternalIP address.', 1),
    col('OS-Image', 'string', 'The operating system image (status.nodeInfo.osImage).', 1),
    col('Kernel-Version', 'string', 'The kernel version (status.nodeInfo.kernelVersion).', 1),
    col('Container-Runtime', 'string', 'The container runtime and its version (status.nodeInfo.containerRuntimeVersion).', 1),
  ],
  cells: (o, now) => {
    const node = o as NodeObject;
    const status = node.status ?? {};
    const info = status.nodeInfo ?? {};
    // The last Ready condition counts, as kube indexes conditions by type.
    const readyCondition = status.conditions?.findLast((c) => c.type === 'Ready');
    const words = [readyCondition ? (readyCondition.status === 'True' ? 'Ready' : 'NotReady') : 'Unknown'];
    if (node.spec?.unschedulable) words.push('SchedulingDisabled');
    const address = (type: string) => status.addresses?.find((a) => a.type === type)?.address ?? '<none>';
    return [
      name(node),
      words.join(','),
      nodeRoles(node.metadata?.labels ?? {}),
      created(node, now),
      info.kubeletVersion ?? '',
      address('InternalIP'),
      address('ExternalIP'),
      info.osImage || '<unknown>',
      info.kernelVersion || '<unknown>',
      info.containerRuntimeVersion || '<unknown>',
    ];
  },
});

// ---- namespaces, service accounts, config maps, secrets, leases ---------------------------------------------------------

register('', 'Namespace', {
  columns: [NAME, col('Status', 'string', 'The namespace\'s phase: Active or Terminating.'), AGE],
  cells: (o, now) => [name(o), (o as { status?: { phase?: string } }).status?.phase ?? '', created(o, now)],
});

register('', 'ServiceAccount', {
  columns: [NAME, col('Secrets', 'string', 'How many secrets the service account lists.'), AGE],
  cells: (o, now) => [name(o), ((o as { secrets?: unknown[] }).secrets ?? []).length, created(o, now)],
});

register('', 'ConfigMap', {
  columns: [NAME, col('Data', 'string', 'How many keys data and binaryData hold.'), AGE],
  cells: (o, now) => {
    const cm = o as { data?: object; binaryData?: object };
    return [name(o), Object.keys(cm.data ?? {}).length + Object.keys(cm.binaryData ?? {}).length, created(o, now)];
  },
});

register('', 'Secret', {
  columns: [NAME, col('Type', 'string', 'The secret\'s type.'), col('Data', 'string', 'How many keys data holds.'), AGE],
  cells: (o, now) => {
    const secret = o as { type?: string; data?: object };
    return [name(o), secret.type || 'Opaque', Object.keys(secret.data ?? {}).length, created(o, now)];
  },
});

register('coordination.k8s.io', 'Lease', {
  columns: [NAME, col('Holder', 'string', 'The identity holding the lease (spec.holderIdentity).'), AGE],
  cells: (o, now) => [name(o), (o as { spec?: { holderIdentity?: string } }).spec?.holderIdentity ?? '', created(o, now)],
});

// ---- services -----------------------------------------------------------------------------------------------------------

interface ServiceObject extends Printable {
  spec?: {
    type?: string;
    clusterIP?: string;
    clusterIPs?: string[];
    externalIPs?: string[];
    externalName?: string;
    ports?: { port: number; nodePort?: number; protocol?: string }[];
    selector?: Record<string, string>;
  };
  status?: { loadBalancer?: { ingress?: { ip?: string; hostname?: string }[] } };
}

/** EXTERNAL-IP: the external IPs, or for a LoadBalancer its ingress addresses (sorted) first; `<pending>` before any. */
function serviceExternalIP(svc: ServiceObject): string {
  const spec = svc.spec ?? {};
  const external = spec.externalIPs ?? [];
  switch (spec.type ?? 'ClusterIP') {
    case 'ClusterIP':
    case 'NodePort':
      return external.length ? external.join(',') : '<none>';
    case 'LoadBalancer': {
      const ingress = [...new Set((svc.status?.loadBalancer?.ingress ?? []).map((i) => i.ip || i.hostname || '').filter(Boolean))].sort();
      if (external.length) return [...ingress, ...external].join(',');
      return ingress.length ? ingress.join(',') : '<pending>';
    }
    case 'ExternalName':
      return spec.externalName ?? '';
    default:
      return '<unknown>';
  }
}

register('', 'Service', {
  columns: [
    NAME,
    col('Type', 'string', 'How the service is exposed: ClusterIP, NodePort, LoadBalancer or ExternalName.'),
    col('Cluster-IP', 'string', 'The service\'s first cluster IP.'),
    col('External-IP', 'string', 'External IPs and load balancer ingress addresses.'),
    col('Port(s)', 'string', 'The service\'s ports as port[:nodePort]/protocol.'),
    AGE,
    col('Selector', 'string', 'The labels of the pods the service sends to.', 1),
  ],
  cells: (o, now) => {
    const svc = o as ServiceObject;
    const spec = svc.spec ?? {};
    const ports = (spec.ports ?? []).map((p) => `${p.port}${p.nodePort ? `:${p.nodePort}` : ''}/${p.protocol ?? 'TCP'}`).join(',');
    return [
      name(svc),
      spec.type ?? 'ClusterIP',
      spec.clusterIPs?.[0] || spec.clusterIP || '<none>',
      serviceExternalIP(svc),
      ports || '<none>',
      created(svc, now),
      formatLabels(spec.selector),
    ];
  },
});

// ---- workloads ----------------------------------------------------------------------------------------------------------

/** `k1=v1,k2=v2` sorted by key; `<none>` for no labels. */
function formatLabels(labels: Record<string, string> | undefined): string {
  const keys = Object.keys(labels ?? {}).sort();
  return keys.length ? keys.map((k) => `${k}=${labels![k]}`).join(',') : '<none>';
}

/**
 * A metav1.LabelSelector in the label-selector syntax (`app=web,tier in (a,b),!canary`), requirements sorted by key;
 * undefined when it is invalid (an operator that is not one of the four, In/NotIn without values, Exists with some).
 */
function selectorText(selector: LabelSelectorSpec | undefined): string | undefined {
  const requirements: [string, string][] = Object.entries(selector?.matchLabels ?? {}).map(([k, v]) => [k, `${k}=${v}`]);
  for (const e of selector?.matchExpressions ?? []) {
    const values = [...new Set(e.values ?? [])].sort();
    const setOperator = e.operator === 'In' || e.operator === 'NotIn';
    if (setOperator !== values.length > 0) return undefined;
    switch (e.operator) {
      case 'In':
        requirements.push([e.key, `${e.key} in (${values.join(',')})`]);
        break;
      case 'NotIn':
        requirements.push([e.key, `${e.key} notin (${values.join(',')})`]);
        break;
      case 'Exists':
        requirements.push([e.key, e.key]);
        break;
      case 'DoesNotExist':
        requirements.push([e.key, `!${e.key}`]);
        break;
      default:
        return undefined;
    }
  }
  return requirements
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([, text]) => text)
    .join(',');
}

/** The wide SELECTOR of daemon sets (metav1.FormatLabelSelector): `<none>` when empty, `<error>` when invalid. */
function formatLabelSelector(selector: LabelSelectorSpec | undefined): string {
  const text = selectorText(selector);
  return text === undefined ? '<error>' : text || '<none>';
}

/** The wide CONTAINERS and IMAGES cells: the template's containers joined by commas. */
function containerCells(template: PodTemplate | undefined): [string, string] {
  const containers = template?.spec?.containers ?? [];
  return [containers.map((c) => c.name).join(','), containers.map((c) => c.image ?? '').join(',')];
}

interface DeploymentObject extends Printable {
  spec?: { replicas?: number; selector?: LabelSelectorSpec; template?: PodTemplate };
  status?: { readyReplicas?: number; updatedReplicas?: number; availableReplicas?: number };
}

register('apps', 'Deployment', {
  columns: [
    NAME,
    col('Ready', 'string', 'Ready pods out of the desired replicas.'),
    col('Up-to-date', 'string', 'Pods running the current template.'),
    col('Available', 'string', 'Pods available to serve (ready for at least minReadySeconds).'),
    AGE,
    CONTAINERS,
    IMAGES,
    col('Selector', 'string', 'The label selector of the deployment\'s pods.', 1),
  ],
  cells: (o, now) => {
    const d = o as DeploymentObject;
    const status = d.status ?? {};
    return [
      name(d),
      `${status.readyReplicas ?? 0}/${d.spec?.replicas ?? 1}`,
      status.updatedReplicas ?? 0,
      status.availableReplicas ?? 0,
      created(d, now),
      ...containerCells(d.spec?.template),
      // The deployment printer shows an empty selector as nothing, unlike the daemon set's <none>.
      selectorText(d.spec?.selector) ?? '<invalid>',
    ];
  },
});

interface DaemonSetObject extends Printable {
  spec?: { selector?: LabelSelectorSpec; template?: PodTemplate };
  status?: { desiredNumberScheduled?: number; currentNumberScheduled?: number; numberReady?: number; updatedNumberScheduled?: number; numberAvailable?: number };
}

register('apps', 'DaemonSet', {
  columns: [
    NAME,
    col('Desired', 'integer', 'Nodes that should run the daemon pod.'),
    col('Current', 'integer', 'Nodes running at least one daemon pod.'),
    col('Ready', 'integer', 'Nodes whose daemon pod is ready.'),
    col('Up-to-date', 'integer', 'Nodes running the current template.'),
    col('Available', 'integer', 'Nodes whose daemon pod is available.'),
    col('Node Selector', 'string', 'The template\'s node selector.'),
    AGE,
    CONTAINERS,
    IMAGES,
    col('Selector', 'string', 'The label selector of the daemon set\'s pods.', 1),
  ],
  cells: (o, now) => {
    const ds = o as DaemonSetObject;
    const status = ds.status ?? {};
    return [
      name(ds),
      status.desiredNumberScheduled ?? 0,
      status.currentNumberScheduled ?? 0,
      status.numberReady ?? 0,
      status.updatedNumberScheduled ?? 0,
      status.numberAvailable ?? 0,
      formatLabels(ds.spec?.template?.spec?.nodeSelector),
      created(ds, now),
      ...containerCells(ds.spec?.template),
      formatLabelSelector(ds.spec?.selector),
    ];
  },
});

// ---- endpoint slices ----------------------------------------------------------------------------------------------------

/** At most three items, then ` + N more...`; `<unset>` for none. */
function listWithMore(items: string[]): string {
  const shown = items.slice(0, 3).join(',');
  if (items.length > 3) return `${shown} + ${items.length - 3} more...`;
  return shown || '<unset>';
}

register('discovery.k8s.io', 'EndpointSlice', {
  columns: [
    NAME,
    col('AddressType', 'string', 'The kind of address the endpoints carry: IPv4, IPv6 or FQDN.'),
    col('Ports', 'string', 'The slice\'s port numbers (a name when the port is unset, * for all ports).'),
    col('Endpoints', 'string', 'The endpoints\' addresses.'),
    AGE,
  ],
  cells: (o, now) => {
    const slice = o as { addressType?: string; ports?: { port?: number; name?: string }[]; endpoints?: { addresses?: string[] }[] };
    const ports = (slice.ports ?? []).map((p) => (p.port != null ? String(p.port) : (p.name ?? '*')));
    const addresses = (slice.endpoints ?? []).flatMap((e) => e.addresses ?? []);
    return [name(o), slice.addressType ?? '', listWithMore(ports), listWithMore(addresses), created(o, now)];
  },
});

// ---- events -------------------------------------------------------------------------------------------------------------

interface EventObject extends Printable {
  involvedObject?: { kind?: string; name?: string; fieldPath?: string };
  reason?: string;
  message?: string;
  type?: string;
  source?: { component?: string; host?: string };
  reportingComponent?: string;
  reportingInstance?: string;
  firstTimestamp?: string;
  lastTimestamp?: string;
  eventTime?: string;
  count?: number;
  series?: { count?: number; lastObservedTime?: string };
}

register('', 'Event', {
  // The event printer leads with LAST SEEN and keeps its name for -o wide, last.
  columns: [
    col('Last Seen', 'string', 'Time since the event last occurred.'),
    col('Type', 'string', 'Normal or Warning.'),
    col('Reason', 'string', 'Why the event happened, in one word.'),
    col('Object', 'string', 'The object the event is about, as kind/name.'),
    col('Subobject', 'string', 'The part of the object the event is about (involvedObject.fieldPath).', 1),
    col('Source', 'string', 'The component (and host) that reported the event.', 1),
    col('Message', 'string', 'What happened.'),
    col('First Seen', 'string', 'Time since the event first occurred.', 1),
    col('Count', 'string', 'How many times the event occurred.', 1),
    { ...NAME, priority: 1 },
  ],
  cells: (o, now) => {
    const e = o as EventObject;
    // Events written through events.k8s.io carry eventTime and series instead of the timestamps and count.
    const first = age(e.firstTimestamp || e.eventTime, now);
    const last = e.series ? age(e.series.lastObservedTime, now) : e.lastTimestamp ? age(e.lastTimestamp, now) : first;
    const count = e.series ? (e.series.count ?? 0) : e.count || 1;
    const involved = e.involvedObject ?? {};
    const kind = (involved.kind ?? '').toLowerCase();
    const component = e.source?.component || e.reportingComponent || '';
    const instance = e.source?.host || e.reportingInstance || '';
    return [
      last,
      e.type ?? '',
      e.reason ?? '',
      involved.name ? `${kind}/${involved.name}` : kind,
      involved.fieldPath ?? '',
      instance ? `${component}, ${instance}` : component,
      (e.message ?? '').trim(),
      first,
      count,
      name(e),
    ];
  },
});

// ---- the generic table: kinds without a printer (CustomResourceDefinitions among them) -------------------------------

/** Go's time.Time.UTC().Format(time.RFC3339): whole seconds; the zero time for an object without a timestamp. */
function rfc3339(timestamp: string | undefined): string {
  const t = timestamp ? Date.parse(timestamp) : NaN;
  return Number.isNaN(t) ? '0001-01-01T00:00:00Z' : kubeTime(t);
}

const DEFAULT_PRINTER: Printer = {
  columns: [NAME, col('Created At', 'date', 'When the object was created (metadata.creationTimestamp).')],
  cells: (o) => [name(o), rfc3339(o.metadata?.creationTimestamp)],
};

// ---- custom resources: the CRD's additionalPrinterColumns ---------------------------------------------------------------

const customPrinters = new WeakMap<readonly PrinterColumn[], Printer>();

function customPrinter(columns: readonly PrinterColumn[]): Printer {
  let printer = customPrinters.get(columns);
  if (printer) return printer;
  const paths = columns.map((c) => compileJsonPath(c.jsonPath));
  printer = {
    columns: [NAME, ...columns.map((c) => col(c.name, c.type, c.description ?? `The value at ${c.jsonPath}.`, c.priority ?? 0))],
    cells: (o, now) => [
      name(o),
      ...columns.map((c, i) => {
        const path = paths[i];
        // Only the first value a path yields is shown; nothing (or an unsupported path) is an empty (null) cell.
        const values = path ? evaluateJsonPath(path, o) : [];
        return values.length ? customCell(c.type, values[0], now) : null;
      }),
    ],
  };
  customPrinters.set(columns, printer);
  return printer;
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/** A value as apiextensions-apiserver renders it for the column's type; a value of another type is an empty cell. */
function customCell(type: PrinterColumn['type'], value: unknown, now: number): Cell {
  switch (type) {
    case 'string':
      // A string column prints anything, as kube's JSONPath printer does: lists and maps as compact JSON, and an
      // explicit null as Go's text/template shows a missing value.
      if (value === null) return '<no value>';
      return typeof value === 'string' ? value : typeof value === 'object' ? goJson(value) : String(value);
    case 'integer':
      return typeof value === 'number' ? Math.trunc(value) : null;
    case 'number':
      return typeof value === 'number' ? value : null;
    case 'boolean':
      return typeof value === 'boolean' ? value : null;
    case 'date':
      if (typeof value !== 'string') return null;
      if (value === '' || value === 'null') return '<unknown>';
      return RFC3339.test(value) ? age(value, now) : '<invalid>';
  }
}

/** Go's json.Marshal: object keys sorted, and <, >, & and the line separators escaped. */
function goJson(value: unknown): string {
  const sortKeys = (v: unknown): unknown =>
    Array.isArray(v) ? v.map(sortKeys) : v && typeof v === 'object' ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys((v as Record<string, unknown>)[k])])) : v;
  return JSON.stringify(sortKeys(value)).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

// ---- the JSONPath subset CRD printer columns use ------------------------------------------------------------------------

type PathStep =
  | { kind: 'field'; name: string }
  | { kind: 'index'; index: number }
  | { kind: 'all' }
  /** `[?(@.a.b == "x")]`; without `op`, elements where the path exists. */
  | { kind: 'filter'; path: string[]; op?: '==' | '!='; value?: string | number | boolean };

/**
 * Compiles `.a.b`, `.a[*].b`, `.a[0]`, `.a['k.with.dots']` and `.a[?(@.type=="X")].b` (an optional `{…}` or `$`
 * around it); undefined for anything else.
 */
function compileJsonPath(text: string): PathStep[] | undefined {
  let p = text.trim();
  if (p.startsWith('{') && p.endsWith('}')) p = p.slice(1, -1).trim();
  if (p.startsWith('$')) p = p.slice(1);
  const steps: PathStep[] = [];
  let i = 0;
  while (i < p.length) {
    if (p[i] === '.') {
      const m = /^[^.[\]]+/.exec(p.slice(i + 1));
      if (!m) return undefined;
      steps.push({ kind: 'field', name: m[0] });
      i += 1 + m[0].length;
    } else if (p[i] === '[') {
      const end = closingBracket(p, i);
      if (end < 0) return undefined;
      const step = bracketStep(p.slice(i + 1, end).trim());
      if (!step) return undefined;
      steps.push(step);
      i = end + 1;
    } else {
      return undefined;
    }
  }
  return steps;
}

/** The index of the `]` closing the `[` at `open`, skipping quoted strings. */
function closingBracket(p: string, open: number): number {
  let quote = '';
  for (let i = open + 1; i < p.length; i++) {
    const ch = p[i]!;
    if (quote) {
      if (ch === quote) quote = '';
    } else if (ch === '"' || ch === "'") {
      quote = ch;
    } else if (ch === ']') {
      return i;
    }
  }
  return -1;
}

const QUOTED = /^(?:"([^"]*)"|'([^']*)')$/;

function bracketStep(body: string): PathStep | undefined {
  if (body === '*') return { kind: 'all' };
  if (/^-?\d+$/.test(body)) return { kind: 'index', index: Number(body) };
  const quoted = QUOTED.exec(body);
  if (quoted) return { kind: 'field', name: quoted[1] ?? quoted[2]! };
  const filter = /^\?\(\s*@((?:\.[^.\s=!)]+)+)\s*(?:(==|!=)\s*(.+?))?\s*\)$/.exec(body);
  if (!filter) return undefined;
  const path = filter[1]!.slice(1).split('.');
  if (!filter[2]) return { kind: 'filter', path };
  const literal = filter[3]!;
  const q = QUOTED.exec(literal);
  const value = q ? (q[1] ?? q[2]!) : literal === 'true' ? true : literal === 'false' ? false : Number(literal);
  if (typeof value === 'number' && Number.isNaN(value)) return undefined;
  return { kind: 'filter', path, op: filter[2] as '==' | '!=', value };
}

function child(v: unknown, key: string): unknown {
  return v && typeof v === 'object' && !Array.isArray(v) && Object.hasOwn(v, key) ? (v as Record<string, unknown>)[key] : undefined;
}

/** Every value the path yields, in document order; missing keys and out-of-range indexes yield nothing. */
function evaluateJsonPath(steps: PathStep[], root: unknown): unknown[] {
  let current: unknown[] = [root];
  for (const step of steps) {
    const next: unknown[] = [];
    for (const v of current) {
      switch (step.kind) {
        case 'field': {
          const c = child(v, step.name);
          if (c !== undefined) next.push(c);
          break;
        }
        case 'index':
          if (Array.isArray(v)) {
            const i = step.index < 0 ? v.length + step.index : step.index;
            if (i >= 0 && i < v.length) next.push(v[i]);
          }
          break;
        case 'all':
          if (Array.isArray(v)) next.push(...v);
          else if (v && typeof v === 'object') next.push(...Object.values(v));
          break;
        case 'filter':
          if (Array.isArray(v)) {
            for (const element of v) {
              const found = step.path.reduce<unknown>((x, key) => child(x, key), element);
              if (found === undefined) continue;
              if (step.op === undefined || (step.op === '==') === (found === step.value)) next.push(element);
            }
          }
          break;
      }
    }
    current = next;
  }
  return current;
}
