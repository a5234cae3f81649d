// The cluster's nodes: what every room knows of one (its name, address, pod range and namespace, the socket of its
// node agent) and the one way the others ask a node's agent to probe an address from inside that node.
import { call } from '../common/rpc.js';
import type { AddressPool } from './ipam.js';
import type { ProbeRequest, ProbeResult } from './node-agent.js';

export interface NodeInfo {
  name: string;
  index: number;
  ip: string;
  podCIDR: string;
  netnsPath: string;
  agentSocket: string;
  createdAt: string;
}

export interface NodeRuntime extends NodeInfo {
  /** The node's pod addresses (host-local IPAM, as a CNI's). */
  pool: AddressPool;
}

/** A probe run by the node's agent in the node's namespace; an agent that cannot be asked is a failed probe. */
export async function agentProbe(node: NodeRuntime, req: ProbeRequest): Promise<ProbeResult> {
  try {
    return await call<ProbeResult>(node.agentSocket, 'POST', '/probe', req, { timeoutMs: req.timeoutMs + 2000 });
  } catch (err) {
    return { ok: false, message: `node agent on ${node.name} did not run the probe: ${(err as Error).message}` };
  }
}
