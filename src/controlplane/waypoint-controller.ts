// istiod's gateway deployment controller for waypoints: for every Gateway of class istio-waypoint it creates and
// keeps a ServiceAccount, Deployment and Service named after the Gateway (manifests/charts/istio-control/
// istio-discovery/files/waypoint.yaml), owned by the Gateway so the cluster deletes them with it. It also creates the
// built-in GatewayClass istio-waypoint. It writes through the cluster's API (a ClusterWriter) and reads what exists
// from the same store the model is fed from, so a user's edit of a managed object is put back on the next change.
import type { Deployment, Gateway, Resource, Service, ServiceAccount, ServicePort } from '../api/types.js';
import { resourceKey } from '../api/types.js';
import type { ConfigStore } from '../model/store.js';
import {
  GATEWAY_CLASS_LABEL,
  GATEWAY_NAME_LABEL,
  MANAGED_LABEL,
  MANAGED_MESH_VALUE,
  WAYPOINT_CLASS,
  isWaypointGateway,
  waypointGatewayClass,
  waypointNames,
} from '../model/waypoints.js';
import { ISTIO_TOKEN } from './auth.js';
import type { Logger } from './log.js';

/** Where the controller writes: the cluster's API (the local cluster's supervisor, later Kubernetes). */
export interface ClusterWriter {
  apply(objects: Resource[]): Promise<{ object: string; error?: string }[]>;
  /** `reason: 'NotFound'` when the object was already gone. */
  delete(refs: { kind: string; metadata: { name: string; namespace?: string } }[]): Promise<{ object: string; error?: string; reason?: string }[]>;
}

export interface WaypointControllerOptions {
  store: ConfigStore;
  writer: ClusterWriter;
  log: Logger;
  /** `host:port` of the control plane (xDS and CA) as the waypoint pods reach it. */
  controlPlaneAddress: string;
  trustDomain: string;
  clusterId: string;
}

const STATUS_PORT = 15021;
const METRICS_PORT = 15020;
const RETRY_MS = 2000;

/** The objects one waypoint Gateway should have, as istiod's template renders them. */
export function waypointObjects(g: Gateway, opts: Pick<WaypointControllerOptions, 'controlPlaneAddress' | 'trustDomain' | 'clusterId'>): [ServiceAccount, Deployment, Service] {
  const ns = g.metadata.namespace ?? 'default';
  const { deploymentName, serviceAccount } = waypointNames(g);
  const owner = [{ apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway', name: g.metadata.name, uid: g.metadata.uid ?? '' }];
  const base = { [GATEWAY_NAME_LABEL]: g.metadata.name, [GATEWAY_CLASS_LABEL]: WAYPOINT_CLASS };
  const managed = { ...base, [MANAGED_LABEL]: MANAGED_MESH_VALUE };
  const rev = g.metadata.labels?.['istio.io/rev'] ?? 'default';
  const field = (fieldPath: string) => ({ valueFrom: { fieldRef: { fieldPath } } });
  return [
    {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      // istiod labels everything it applies as managed, the ServiceAccount included.
      metadata: { name: serviceAccount, namespace: ns, labels: managed, ownerReferences: owner },
    },
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: deploymentName, namespace: ns, labels: managed, ownerReferences: owner },
      spec: {
        selector: { matchLabels: { [GATEWAY_NAME_LABEL]: g.metadata.name } },
        template: {
          metadata: {
            annotations: {
              'istio.io/rev': rev,
              'prometheus.io/path': '/stats/prometheus',
              'prometheus.io/port': String(METRICS_PORT),
              'prometheus.io/scrape': 'true',
            },
            labels: {
              'sidecar.istio.io/inject': 'false',
              'istio.io/dataplane-mode': 'none',
              'service.istio.io/canonical-name': deploymentName,
              'service.istio.io/canonical-revision': 'latest',
              ...managed,
            },
          },
          spec: {
            serviceAccountName: serviceAccount,
            containers: [
              {
                name: 'istio-proxy',
                // Images are not pulled in the local cluster: the container is this package's own CLI, started with
                // the arguments Istio gives its proxy image (`proxy waypoint`).
                command: ['ambit'],
                args: ['proxy', 'waypoint'],
                ports: [
                  { containerPort: METRICS_PORT, name: 'metrics', protocol: 'TCP' },
                  { containerPort: STATUS_PORT, name: 'status-port', protocol: 'TCP' },
                ],
                env: [
                  { name: 'POD_NAME', ...field('metadata.name') },
                  { name: 'POD_NAMESPACE', ...field('metadata.namespace') },
                  { name: 'INSTANCE_IP', ...field('status.podIP') },
                  { name: 'SERVICE_ACCOUNT', ...field('spec.serviceAccountName') },
                  { name: 'NODE_NAME', ...field('spec.nodeName') },
                  { name: 'GATEWAY_NAME', ...field(`metadata.labels['${GATEWAY_NAME_LABEL}']`) },
                  { name: 'XDS_ADDRESS', value: opts.controlPlaneAddress },
                  { name: 'CA_ADDRESS', value: opts.controlPlaneAddress },
                  { name: 'TRUST_DOMAIN', value: opts.trustDomain },
                  { name: 'ISTIO_META_CLUSTER_ID', value: opts.clusterId },
                ],
                // Istio probes every 15 s after a 1 s startup probe; the local cluster has no startup probes, so the
                // readiness probe runs often enough to make a new waypoint usable within seconds.
                readinessProbe: { httpGet: { path: '/healthz/ready', port: STATUS_PORT }, periodSeconds: 2, timeoutSeconds: 1, failureThreshold: 4 },
                // Of Istio's volumes only the token is rendered: the local cluster mounts the mesh root certificate
                // where Istio's istio-ca-root-cert volume puts it, and the others (sockets, Envoy's files, pod info)
                // Ambit's proxy does not use.
                volumeMounts: [{ name: ISTIO_TOKEN.volume, mountPath: ISTIO_TOKEN.mountPath }],
              },
            ],
            volumes: [
              {
                name: ISTIO_TOKEN.volume,
                projected: {
                  sources: [{ serviceAccountToken: { audience: ISTIO_TOKEN.audience, expirationSeconds: ISTIO_TOKEN.expirationSeconds, path: ISTIO_TOKEN.path } }],
                },
              },
            ],
          },
        },
      },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: {
        name: deploymentName,
        namespace: ns,
        labels: managed,
        annotations: { 'networking.istio.io/traffic-distribution': 'PreferClose' },
        ownerReferences: owner,
      },
      spec: {
        type: 'ClusterIP',
        selector: { [GATEWAY_NAME_LABEL]: g.metadata.name },
        ports: servicePorts(g),
      },
    },
  ];
}

/**
 * istiod's extractServicePorts: `status-port` 15021, then one port per listener port (a second listener on the same
 * port adds nothing), named after the listener with `.` made `-` and cut to 63 characters, made unique with
 * `-<port>` when two names collide, appProtocol the listener's protocol in lower case.
 */
function servicePorts(g: Gateway): ServicePort[] {
  const ports: ServicePort[] = [{ name: 'status-port', port: STATUS_PORT, protocol: 'TCP', appProtocol: 'tcp' }];
  const used = new Set(['status-port']);
  const seen = new Set<number>();
  g.spec.listeners.forEach((l, i) => {
    if (seen.has(l.port)) return;
    seen.add(l.port);
    let name = l.name.replaceAll('.', '-').slice(0, 63) || `${l.protocol.toLowerCase()}-${i}`;
    for (let suffix = `-${l.port}`; used.has(name); suffix += 'x') name = name.slice(0, 63 - suffix.length) + suffix;
    used.add(name);
    ports.push({ name, port: l.port, protocol: 'TCP', appProtocol: l.protocol.toLowerCase() });
  });
  return ports;
}

/** True when every field `want` sets has that value in `have` (what the cluster added, like a cluster IP, is fine). */
export function covers(have: unknown, want: unknown): boolean {
  if (want === null || typeof want !== 'object') return have === want;
  if (Array.isArray(want)) {
    return Array.isArray(have) && have.length === want.length && want.every((w, i) => covers(have[i], w));
  }
  if (have === null || typeof have !== 'object' || Array.isArray(have)) return false;
  const h = have as Record<string, unknown>;
  for (const [k, v] of Object.entries(want as Record<string, unknown>)) if (v !== undefined && !covers(h[k], v)) return false;
  return true;
}

function ownerGateway(r: Resource): string | undefined {
  const ref = r.metadata.ownerReferences?.find((o) => o.kind === 'Gateway' && o.apiVersion.startsWith('gateway.networking.k8s.io/'));
  return ref ? `${r.metadata.namespace ?? ''}/${ref.name}` : undefined;
}

export class WaypointController {
  private readonly unsubscribe: () => void;
  private readonly warned = new Set<string>();
  private running: Promise<void> | undefined;
  private again = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly opts: WaypointControllerOptions) {
    this.unsubscribe = opts.store.subscribe((change) => {
      const touches = (key: string) => {
        const r = opts.store.get(key) ?? change.previous.get(key);
        return r !== undefined && (r.kind === 'Gateway' || r.kind === 'GatewayClass' || r.metadata.labels?.[GATEWAY_NAME_LABEL] !== undefined);
      };
      if ([...change.added, ...change.updated, ...change.removed].some(touches)) this.schedule();
    });
  }

  /** Brings the cluster in line once now (the store holds a first snapshot by then). */
  start(): void {
    this.schedule();
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.unsubscribe();
  }

  private schedule(): void {
    if (this.closed) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = (async () => {
      let failed = false;
      do {
        this.again = false;
        try {
          failed = !(await this.reconcile());
        } catch (e) {
          this.opts.log.error(`waypoint controller: ${(e as Error).stack ?? e}`);
          failed = true;
        }
      } while (this.again && !this.closed);
      this.running = undefined;
      if (failed && !this.closed) {
        clearTimeout(this.retryTimer);
        this.retryTimer = setTimeout(() => this.schedule(), RETRY_MS);
      }
    })();
  }

  private warnOnce(key: string, message: string): void {
    if (this.warned.has(key)) return;
    this.warned.add(key);
    this.opts.log.warn(message);
  }

  /** One pass; false when a write failed (it is retried). */
  private async reconcile(): Promise<boolean> {
    const { store } = this.opts;
    const apply: Resource[] = [];
    const cls = waypointGatewayClass();
    const wantClass: Resource = { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'GatewayClass', metadata: { name: WAYPOINT_CLASS }, spec: cls.spec };
    if (!covers(store.get(resourceKey(wantClass)), wantClass)) apply.push(wantClass);

    const waypoints = new Set<string>();
    for (const g of store.list('Gateway')) {
      if (!isWaypointGateway(g) || !g.metadata.uid) continue;
      waypoints.add(`${g.metadata.namespace}/${g.metadata.name}`);
      for (const want of waypointObjects(g, this.opts)) {
        const have = store.get(resourceKey(want));
        if (covers(have, want)) continue;
        // An object of that name we did not create is left alone (istiod's canManage): taking it over could break
        // whatever it belongs to.
        if (have !== undefined && have.metadata.labels?.[MANAGED_LABEL] === undefined) {
          this.warnOnce(resourceKey(want), `waypoint controller: ${want.kind} ${want.metadata.namespace}/${want.metadata.name} exists and is not managed by the mesh controller; leaving it alone`);
          continue;
        }
        apply.push(want);
      }
    }
    // Managed objects whose Gateway is gone or no longer a waypoint: the cluster deletes the former with their owner,
    // the latter are ours to remove.
    const remove: Resource[] = [];
    for (const kind of ['Deployment', 'Service', 'ServiceAccount'] as const) {
      for (const r of store.list(kind)) {
        const owner = ownerGateway(r);
        if (owner === undefined || r.metadata.labels?.[GATEWAY_CLASS_LABEL] !== WAYPOINT_CLASS) continue;
        if (!waypoints.has(owner) && store.get(`Gateway/${owner}`) !== undefined) remove.push(r);
      }
    }
    let ok = true;
    if (apply.length) {
      for (const r of await this.opts.writer.apply(apply)) {
        if (r.error) {
          ok = false;
          this.opts.log.warn(`waypoint controller: cannot apply ${r.object}: ${r.error}`);
        }
      }
      this.opts.log.info(`waypoint controller: applied ${apply.map((r) => `${r.kind} ${r.metadata.namespace ? `${r.metadata.namespace}/` : ''}${r.metadata.name}`).join(', ')}`);
    }
    if (remove.length) {
      for (const r of await this.opts.writer.delete(remove)) {
        if (r.error && r.reason !== 'NotFound') {
          ok = false;
          this.opts.log.warn(`waypoint controller: cannot delete ${r.object}: ${r.error}`);
        }
      }
    }
    return ok;
  }
}
