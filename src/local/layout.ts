// Names, addresses and file locations of one local cluster. Everything a cluster creates is derived from its name
// and its state directory, so two clusters never collide and `ambit down` can find every piece after a crash.
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

export const DEFAULT_CLUSTER = 'ambit';
export const DEFAULT_NODES = 2;
export const MAX_NODES = 50;

// Addresses follow kind's defaults so Kubernetes users recognise them. They exist only inside the cluster's own
// network namespaces, so two clusters can use the same ranges without seeing each other.
export const FABRIC_CIDR = '172.18.0.0/24';
/** The fabric bridge's own address: where cluster-wide components (the control plane) listen. */
export const FABRIC_GATEWAY_IP = '172.18.0.1';
export const SERVICE_CIDR = '10.96.0.0/16';
/** The cluster DNS address written into every pod's resolv.conf (kube-dns's address in kind). */
export const CLUSTER_DNS_IP = '10.96.0.10';
export const CLUSTER_DOMAIN = 'cluster.local';

export function nodeName(index: number): string {
  return `node-${index}`;
}
export function nodeIP(index: number): string {
  return `172.18.0.${index + 1}`;
}
/** Pods one node can hold: its /24 pod CIDR without the network, broadcast and gateway addresses. */
export const POD_ADDRESSES_PER_NODE = 253;
export function podCIDR(index: number): string {
  return `10.244.${index}.0/24`;
}
/** The node-side address of every pod veth: the pods' default gateway. */
export function podGatewayIP(index: number): string {
  return `10.244.${index}.1`;
}

const CLUSTER_NAME = /^[a-z0-9]([a-z0-9-]{0,18}[a-z0-9])?$/;

export function validateClusterName(name: string): string {
  if (!CLUSTER_NAME.test(name)) {
    throw new Error(
      `invalid cluster name "${name}": use 1-20 lowercase letters, digits or '-', starting and ending with a letter or digit`,
    );
  }
  return name;
}

/**
 * The state directory of a cluster: `$AMBIT_STATE_DIR/<cluster>` when AMBIT_STATE_DIR is set, else
 * `$XDG_STATE_HOME/ambit/<cluster>`, else `~/.local/state/ambit/<cluster>`.
 */
export function stateDirFor(cluster: string, env: NodeJS.ProcessEnv = process.env): string {
  validateClusterName(cluster);
  const base = env.AMBIT_STATE_DIR
    ? resolve(env.AMBIT_STATE_DIR)
    : join(env.XDG_STATE_HOME ? resolve(env.XDG_STATE_HOME) : join(homedir(), '.local', 'state'), 'ambit');
  return join(base, cluster);
}

// sun_path holds 108 bytes including the terminating NUL.
const MAX_SOCKET_PATH = 107;

/** Files inside a cluster's state directory. */
export class StateLayout {
  constructor(readonly dir: string) {}
  get socket(): string {
    return join(this.dir, 'supervisor.sock');
  }
  /** The cluster's own kubeconfig (context `ambit-<cluster>`, admin client certificate), written by the supervisor. */
  get kubeconfig(): string {
    return join(this.dir, 'kubeconfig');
  }
  /** The control plane's kubeconfig: the API inside the fabric namespace, with istiod's client certificate. */
  get controlPlaneKubeconfig(): string {
    return join(this.controlPlaneDir, 'kubeconfig');
  }
  get supervisorLog(): string {
    return join(this.dir, 'supervisor.log');
  }
  get ledger(): string {
    return join(this.dir, 'ledger.jsonl');
  }
  get netnsDir(): string {
    return join(this.dir, 'netns');
  }
  netns(name: string): string {
    return join(this.netnsDir, name);
  }
  /** The fabric namespace: the bridge between the nodes, where cluster-wide components (the control plane) run. */
  get fabricNetns(): string {
    return this.netns('fabric');
  }
  nodeDir(node: string): string {
    return join(this.dir, 'nodes', node);
  }
  agentSocket(node: string): string {
    return join(this.nodeDir(node), 'agent.sock');
  }
  /** Where the node's ztunnel connects for ZDS (the CNI agent's socket). */
  zdsSocket(node: string): string {
    return join(this.nodeDir(node), 'zds.sock');
  }
  /** The node's ztunnel's service account token (its istio-token), what it shows the control plane (mode 0600). */
  ztunnelToken(node: string): string {
    return join(this.nodeDir(node), 'istio-token');
  }
  /** The control plane's --state-dir: its CA. */
  get controlPlaneDir(): string {
    return join(this.dir, 'controlplane');
  }
  /** The mesh root the control plane's CA keeps in its state dir (MeshCa's layout), handed to ztunnels. */
  get rootCert(): string {
    return join(this.controlPlaneDir, 'ca', 'root-cert.pem');
  }
  /**
   * The cluster's service account token issuer: the API server's signing key (mode 0600), and its public JWKS, what a
   * control plane without a Kubernetes API verifies tokens with (`--service-account-jwks`).
   */
  get serviceAccountKey(): string {
    return join(this.dir, 'apiserver', 'sa-signer.key');
  }
  get serviceAccountJwks(): string {
    return join(this.dir, 'apiserver', 'sa-signer.jwks.json');
  }
  podDir(namespace: string, pod: string): string {
    return join(this.dir, 'pods', `${namespace}_${pod}`);
  }
  /** `ambit dashboard prometheus --start`: its configuration, data, log and UI socket. */
  get prometheusDir(): string {
    return join(this.dir, 'prometheus');
  }
  componentLog(component: string, node?: string): string {
    return join(this.dir, 'components', node ? `${component}_${node}.log` : `${component}.log`);
  }

  /** Unix socket paths are limited to 107 bytes; say which path is too long rather than failing in bind(). */
  checkSocketPaths(): void {
    for (const p of [this.socket, this.agentSocket(nodeName(MAX_NODES)), this.zdsSocket(nodeName(MAX_NODES))]) {
      if (Buffer.byteLength(p) > MAX_SOCKET_PATH) {
        throw new Error(
          `state directory ${this.dir} is too deep: the Unix socket path ${p} is longer than ${MAX_SOCKET_PATH} bytes; ` +
            'set AMBIT_STATE_DIR to a shorter directory',
        );
      }
    }
  }
}
