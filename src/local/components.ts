// Supervised components: programs the cluster itself runs (not user pods), each with a name for `ambit logs` and
// `ambit status`. A component runs once per cluster (in the fabric namespace, reachable from every node and pod at
// FABRIC_GATEWAY_IP) or once per node (in the node's namespace, like a DaemonSet with hostNetwork). The node agent
// is the first one; the control plane (cluster scope) and ztunnel (node scope) make the cluster a mesh.
import { fileURLToPath } from 'node:url';
import { StateLayout } from './layout.js';

export interface ComponentContext {
  cluster: string;
  stateDir: string;
  fabricIP: string;
  clusterDnsIP: string;
  /** Set for per-node components. */
  node?: { name: string; index: number; ip: string; podCIDR: string; netnsPath: string; agentSocket: string };
}

/** How the supervisor checks a component's health; run from inside the component's node (or node-1). */
export type HealthCheck =
  | { kind: 'unixHttp'; socket: string; path: string }
  | { kind: 'httpGet'; host: string; port: number; path: string }
  | { kind: 'tcpSocket'; host: string; port: number };

export interface ComponentSpec {
  name: string;
  scope: 'cluster' | 'node';
  argv(ctx: ComponentContext): string[];
  env?(ctx: ComponentContext): Record<string, string>;
  health?(ctx: ComponentContext): HealthCheck;
  /** Time between SIGTERM and SIGKILL when the process is replaced (the pod's terminationGracePeriodSeconds). */
  terminationGracePeriodSeconds?: number;
  /**
   * How a rolling restart replaces the process. `zds-surge`: as the ztunnel DaemonSet's maxSurge update, the new
   * process starts beside the old one and the old one gets SIGTERM only once the new one has taken the node's pods
   * from the ZDS server (SO_REUSEPORT lets both listen in every pod meanwhile). Unset: stop, then start.
   */
  rollout?: 'zds-surge';
}

const NODE_AGENT_SCRIPT = fileURLToPath(new URL('./node-agent.js', import.meta.url));
const CLI = fileURLToPath(new URL('../cli/main.js', import.meta.url));
/** istiod's gRPC port (xDS and CA), on the fabric address. */
export const CONTROL_PLANE_PORT = 15012;
/** ztunnel's readiness port (`/healthz/ready`). */
export const ZTUNNEL_READINESS_PORT = 15021;
/**
 * Istio's chart gives ztunnel 30 s; a local cluster is interactive, so 10 s. ztunnel reads the same value from
 * TERMINATION_GRACE_PERIOD_SECONDS and drains for 1 s less, so it closes what is left before the SIGKILL.
 */
export const ZTUNNEL_TERMINATION_GRACE_SECONDS = 10;

export const nodeAgent: ComponentSpec = {
  name: 'node-agent',
  scope: 'node',
  argv: (ctx) => [process.execPath, NODE_AGENT_SCRIPT, '--socket', ctx.node!.agentSocket, '--dns-ip', ctx.clusterDnsIP],
  health: (ctx) => ({ kind: 'unixHttp', socket: ctx.node!.agentSocket, path: '/healthz' }),
};

/**
 * istiod's role, reading the cluster through its Kubernetes API (in the fabric namespace, with istiod's client
 * certificate), which also reviews the service account tokens the proxies authenticate with. Its debug port stays on
 * the fabric namespace's loopback (admin endpoints are local only), so health is checked on the gRPC port, which
 * opens only after the first sync.
 */
export const controlPlane: ComponentSpec = {
  name: 'controlplane',
  scope: 'cluster',
  argv: (ctx) => {
    const layout = new StateLayout(ctx.stateDir);
    return [
      process.execPath, CLI, 'controlplane',
      '--kubeconfig', layout.controlPlaneKubeconfig,
      '--listen', `${ctx.fabricIP}:${CONTROL_PLANE_PORT}`,
      '--state-dir', layout.controlPlaneDir,
    ];
  },
  health: (ctx) => ({ kind: 'tcpSocket', host: ctx.fabricIP, port: CONTROL_PLANE_PORT }),
};

/** One ztunnel per node, in the node's namespace; it enters captured pods' namespaces handed over by ZDS. */
export const ztunnel: ComponentSpec = {
  name: 'ztunnel',
  scope: 'node',
  argv: (ctx) => {
    const layout = new StateLayout(ctx.stateDir);
    const node = ctx.node!.name;
    const controlPlane = `${ctx.fabricIP}:${CONTROL_PLANE_PORT}`;
    return [
      process.execPath, CLI, 'ztunnel',
      '--node', node,
      '--xds-address', controlPlane,
      '--ca-address', controlPlane,
      '--root-cert', layout.rootCert,
      '--token-file', layout.ztunnelToken(node),
      '--zds-socket', layout.zdsSocket(node),
      '--instance-ip', ctx.node!.ip,
    ];
  },
  env: () => ({ TERMINATION_GRACE_PERIOD_SECONDS: String(ZTUNNEL_TERMINATION_GRACE_SECONDS) }),
  health: () => ({ kind: 'httpGet', host: '127.0.0.1', port: ZTUNNEL_READINESS_PORT, path: '/healthz/ready' }),
  terminationGracePeriodSeconds: ZTUNNEL_TERMINATION_GRACE_SECONDS,
  rollout: 'zds-surge',
};

/**
 * Every component a cluster runs, in start order. The node agent must stay first: the others' health checks and
 * the pods' DNS go through it.
 */
export const COMPONENTS: ComponentSpec[] = [nodeAgent, controlPlane, ztunnel];
