// The local cluster of the L7 benchmark and what runs in it. One ambient namespace `bench` on a 3-node cluster:
//   client           pod on node-1 that runs nothing itself: the load generator is started in its network namespace
//   server           pod on node-2: ambit-echo (HTTP on 8080, access log off), the one backend of all three paths
//   server-direct    Service → server (not bound to a waypoint)
//   server-waypoint  Service → server, labelled istio.io/use-waypoint=waypoint
//   server-routes    the same, with ROUTE_COUNT HTTPRoutes attached: requests match only the last one in the table
//   waypoint         Gateway of class istio-waypoint, made by `ambit waypoint apply`; the control plane deploys its
//                    pod on the emptiest node, node-3
//   nginx            pod on the waypoint's node (nginx reverse proxy to server-direct), Service nginx → it
// The cluster is started and the waypoint applied through the real `ambit` CLI, as a user would.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Condition } from '../../src/api/types.js';
import { BenchCluster, type PodInfo } from '../l4/cluster.js';
import { runCommand } from '../l4/load.js';
import { pidsInNetns } from '../l4/proc.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

export const NAMESPACE = 'bench';
export const NODES = 3;
export const APP_PORT = 8080;
export const SERVICES = { direct: 'server-direct', waypoint: 'server-waypoint', routes: 'server-routes', nginx: 'nginx' } as const;
/** HTTPRoutes on server-routes: what a mesh with many routes on one Service makes the waypoint match per request. */
export const ROUTE_COUNT = 100;
/** The header the one matching route sets, so the echoed request shows the route table was in force. */
export const ROUTE_MARK = 'x-bench-route';
export const WAYPOINT = 'waypoint';
/** nginx sends this as the Host header (the upstream block's name), so the echoed request shows nginx was in the path. */
export const NGINX_UPSTREAM = 'bench_via_nginx';
export const NGINX = '/usr/sbin/nginx';
const GATEWAY_NAME_LABEL = 'gateway.networking.k8s.io/gateway-name';
const WAYPOINT_BOUND = 'istio.io/WaypointBound';

export function benchManifest(): string {
  const service = (name: string, app: string, labels = ''): string => `---
apiVersion: v1
kind: Service
metadata: {name: ${name}, namespace: ${NAMESPACE}${labels}}
spec:
  selector: {app: ${app}}
  ports: [{name: http, port: 80, targetPort: ${APP_PORT}}]
`;
  return `apiVersion: v1
kind: Namespace
metadata: {name: ${NAMESPACE}, labels: {istio.io/dataplane-mode: ambient}}
---
apiVersion: v1
kind: Pod
metadata: {name: server, namespace: ${NAMESPACE}, labels: {app: bench-server}}
spec:
  nodeName: node-2
  containers:
    - name: echo
      image: ambit:dev
      command: [ambit-echo, --no-access-log, --http-port, "${APP_PORT}"]
      ports: [{name: http, containerPort: ${APP_PORT}}]
      readinessProbe: {tcpSocket: {port: ${APP_PORT}}, periodSeconds: 1}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: ${NAMESPACE}, labels: {app: bench-client}}
spec:
  nodeName: node-1
  containers:
    - {name: idle, image: ambit:dev, command: [sleep, infinity]}
${service(SERVICES.direct, 'bench-server')}${service(SERVICES.waypoint, 'bench-server', `, labels: {istio.io/use-waypoint: ${WAYPOINT}}`)}${service(
    SERVICES.routes,
    'bench-server',
    `, labels: {istio.io/use-waypoint: ${WAYPOINT}}`,
  )}`;
}

/**
 * ROUTE_COUNT HTTPRoutes on server-routes. ROUTE_COUNT − 1 of them match a path prefix and a header the benchmark's
 * requests never have (each ordered before the catch-all: longer prefixes first); the last, `/`, matches and marks the
 * request. So every request is matched against the whole table: the worst case for the waypoint's route selection.
 */
export function routeTableManifest(): string {
  const route = (i: number, match: string, filters = '') => `---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: bench-${i}, namespace: ${NAMESPACE}}
spec:
  parentRefs: [{group: "", kind: Service, name: ${SERVICES.routes}, port: 80}]
  rules:
  - matches: [${match}]${filters}
    backendRefs: [{name: ${SERVICES.routes}, port: 80}]
`;
  const misses = Array.from({ length: ROUTE_COUNT - 1 }, (_, i) => route(i, `{path: {type: PathPrefix, value: /api/v${i}}, headers: [{name: x-tenant, value: t${i}}]}`));
  const hit = route(ROUTE_COUNT - 1, '{path: {type: PathPrefix, value: /}}', `
    filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: ${ROUTE_MARK}, value: matched}]}}]`);
  return [...misses, hit].join('');
}

/**
 * nginx as Debian ships it, with a minimal configuration: one worker, access log off, an upstream of the server
 * Service's VIP with a keep-alive pool. Keep-alive is unlimited in requests on both sides (nginx would otherwise close a
 * connection after 1000 requests; the waypoint does not). Idle upstream connections are closed after 4 s, before
 * ambit-echo's 5-s keep-alive timeout (Node's default) closes them: otherwise nginx now and then reuses a connection
 * the server is closing and, as it does not retry a POST, answers 502 ("upstream prematurely closed connection").
 */
export function nginxConfig(dir: string, upstreamVip: string): string {
  return `worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log stderr warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
  upstream ${NGINX_UPSTREAM} {
    server ${upstreamVip}:80;
    keepalive 32;
    keepalive_requests 1000000;
    keepalive_timeout 4s;
  }
  server {
    listen ${APP_PORT};
    location / {
      proxy_pass http://${NGINX_UPSTREAM};
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`;
}

/**
 * nginx as a pod: the configuration travels in the environment and is written to the pod's own /tmp (a pod sees neither
 * the machine's /tmp nor a writable root, as in Kubernetes), where nginx also keeps its pid and temp files.
 */
function nginxManifest(node: string, upstreamVip: string): string {
  const start = `printf '%s' "$NGINX_CONF" > /tmp/nginx.conf && exec ${NGINX} -p /tmp/ -e stderr -c /tmp/nginx.conf`;
  return `apiVersion: v1
kind: Pod
metadata: {name: nginx, namespace: ${NAMESPACE}, labels: {app: bench-nginx}}
spec:
  nodeName: ${node}
  containers:
    - name: nginx
      image: nginx
      command: [sh, -c, ${JSON.stringify(start)}]
      env: [{name: NGINX_CONF, value: ${JSON.stringify(nginxConfig('/tmp', upstreamVip))}}]
      ports: [{name: http, containerPort: ${APP_PORT}}]
      readinessProbe: {tcpSocket: {port: ${APP_PORT}}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: ${SERVICES.nginx}, namespace: ${NAMESPACE}}
spec:
  selector: {app: bench-nginx}
  ports: [{name: http, port: 80, targetPort: ${APP_PORT}}]
`;
}

interface ListedObject {
  metadata: { name: string; labels?: Record<string, string> };
  spec?: { clusterIP?: string };
  status?: { phase?: string; conditions?: Condition[] };
}

/** BenchCluster with three nodes, the `ambit` CLI for waypoint and status commands, and the L7 set-up. */
export class L7Cluster {
  readonly cluster = new BenchCluster();

  constructor() {
    // Every `ambit` command this process runs (here and in BenchCluster) must find this cluster's state and only it.
    process.env.AMBIT_STATE_DIR = join(this.cluster.base, 'state');
    process.env.AMBIT_CLUSTER = this.cluster.name;
  }

  get name(): string {
    return this.cluster.name;
  }

  get base(): string {
    return this.cluster.base;
  }

  /** `ambit ARGS --cluster NAME`; resolves with its stdout, rejects with its exit status and output. */
  ambit(args: string[], timeoutMs = 60_000): Promise<string> {
    return runCommand(undefined, [process.execPath, CLI, ...args, '--cluster', this.cluster.name], { timeoutMs });
  }

  /** Creates the 3-node cluster, applies the client, server and Services, and waits until every pod is ready. */
  async up(timeoutSeconds: number): Promise<void> {
    await this.ambit(['up', '--nodes', String(NODES), '--timeout', String(timeoutSeconds)], (timeoutSeconds + 120) * 1000);
    await this.cluster.up(benchManifest(), timeoutSeconds);
  }

  /** `ambit waypoint apply --wait`, then until server-waypoint reports WaypointBound=True. Returns the waypoint pod. */
  async applyWaypoint(timeoutSeconds: number): Promise<PodInfo> {
    await this.ambit(['waypoint', 'apply', '-n', NAMESPACE, '--name', WAYPOINT, '--wait', '--waypoint-timeout', `${timeoutSeconds}s`], (timeoutSeconds + 30) * 1000);
    const deadline = Date.now() + timeoutSeconds * 1000;
    for (;;) {
      const [svc] = await this.list('services', SERVICES.waypoint);
      const bound = svc?.status?.conditions?.find((c) => c.type === WAYPOINT_BOUND);
      if (bound?.status === 'True') break;
      if (Date.now() > deadline) throw new Error(`Service ${NAMESPACE}/${SERVICES.waypoint} is not bound to the waypoint: ${bound ? bound.message : 'no WaypointBound condition'}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    const pods = (await this.list('pods', undefined, `${GATEWAY_NAME_LABEL}=${WAYPOINT}`)).filter((p) => p.status?.phase === 'Running');
    if (pods.length !== 1) throw new Error(`want one running waypoint pod, found ${pods.map((p) => p.metadata.name).join(', ') || 'none'}`);
    return this.cluster.pod(NAMESPACE, pods[0]!.metadata.name);
  }

  /** Writes nginx's configuration into the bench dir and starts its pod and Service on `node`. */
  /** Applies the route table on server-routes (routeTableManifest). */
  async applyRouteTable(timeoutSeconds: number): Promise<void> {
    await this.cluster.up(routeTableManifest(), timeoutSeconds);
  }

  async startNginx(node: string, upstreamVip: string, timeoutSeconds: number): Promise<PodInfo> {
    await this.cluster.up(nginxManifest(node, upstreamVip), timeoutSeconds);
    return this.cluster.pod(NAMESPACE, 'nginx');
  }

  async serviceVip(name: string): Promise<string> {
    const [svc] = await this.list('services', name);
    const ip = svc?.spec?.clusterIP;
    if (!ip) throw new Error(`Service ${NAMESPACE}/${name} has no cluster IP`);
    return ip;
  }

  /** The last lines of a pod's log (for reporting what a proxy said when requests failed). */
  logs(pod: string, lines: number): Promise<string> {
    return this.ambit(['logs', `${NAMESPACE}/${pod}`, '--tail', String(lines)]).catch((err: Error) => `(no logs: ${err.message})`);
  }

  pod(name: string): Promise<PodInfo> {
    return this.cluster.pod(NAMESPACE, name);
  }

  status(): ReturnType<BenchCluster['status']> {
    return this.cluster.status();
  }

  nodeNetns(node: string): Promise<string> {
    return this.cluster.nodeNetns(node);
  }

  destroy(): Promise<string[]> {
    return this.cluster.destroy();
  }

  private async list(what: 'pods' | 'services', name?: string, selector?: string): Promise<ListedObject[]> {
    const out = await this.ambit(['get', what, ...(name ? [name] : []), '-n', NAMESPACE, ...(selector ? ['-l', selector] : []), '-o', 'json']);
    const parsed = JSON.parse(out) as ListedObject | { items: ListedObject[] };
    return 'items' in parsed ? parsed.items : [parsed];
  }
}

/** The programs of a pod sandbox that carry the container's command line without being it (src/local/sandbox.ts). */
const SANDBOX_WRAPPERS = new Set(['nsenter', 'unshare', 'sh', 'setpriv']);

/** The waypoint's `ambit proxy waypoint` process in its pod (the container's own process, not its sandbox's wrappers). */
export function waypointPid(pod: PodInfo): number {
  const pids = pidsInNetns(pod.netnsPath).filter((pid) => {
    const argv = cmdline(pid);
    const i = argv.indexOf('proxy');
    return i >= 0 && argv[i + 1] === 'waypoint' && !SANDBOX_WRAPPERS.has(comm(pid));
  });
  if (pids.length !== 1) throw new Error(`want one waypoint process in pod ${pod.namespace}/${pod.name}, found ${pids.length}`);
  return pids[0]!;
}

/** nginx's master and worker processes in its pod, master first. */
export function nginxPids(pod: PodInfo): { master: number; workers: number[] } {
  const pids = pidsInNetns(pod.netnsPath).filter((pid) => comm(pid) === 'nginx');
  const master = pids.find((pid) => cmdline(pid).join(' ').startsWith('nginx: master'));
  const workers = pids.filter((pid) => pid !== master);
  if (master === undefined || workers.length === 0) throw new Error(`nginx in pod ${pod.namespace}/${pod.name} has no master or no worker (pids ${pids.join(', ')})`);
  return { master, workers };
}

function cmdline(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } catch {
    return [];
  }
}

function comm(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

/** Whether Debian's nginx is installed where the benchmark runs it from. */
export function hasNginx(): boolean {
  return existsSync(NGINX);
}
