// Supervised components: programs the cluster itself runs (not user pods), each with a name for `ambit logs` and
// `ambit status`. A component runs once per cluster (in the fabric namespace, reachable from every node and pod at
// FABRIC_GATEWAY_IP) or once per node (in the node's namespace, like a DaemonSet with hostNetwork). The node agent
// is the first one; the control plane and ztunnel register here the same way.
import { fileURLToPath } from 'node:url';

export interface ComponentContext {
  cluster: string;
  stateDir: string;
  /** The supervisor's API socket: where a component watches the cluster's resources (GET /v1/watch). */
  supervisorSocket: string;
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
}

const NODE_AGENT_SCRIPT = fileURLToPath(new URL('./node-agent.js', import.meta.url));

export const nodeAgent: ComponentSpec = {
  name: 'node-agent',
  scope: 'node',
  argv: (ctx) => [process.execPath, NODE_AGENT_SCRIPT, '--socket', ctx.node!.agentSocket, '--dns-ip', ctx.clusterDnsIP],
  health: (ctx) => ({ kind: 'unixHttp', socket: ctx.node!.agentSocket, path: '/healthz' }),
};

/**
 * Every component a cluster runs, in start order. The node agent must stay first: the others' health checks and
 * the pods' DNS go through it.
 */
export const COMPONENTS: ComponentSpec[] = [nodeAgent];
