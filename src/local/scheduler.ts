// The scheduler: which node a new pod runs on. A pod naming its node gets that one; others spread as
// kube-scheduler's default spreading does for replicas, to the node with the fewest pods of the same Deployment, then
// the fewest pods overall, then the first.
import type { Pod } from '../api/types.js';
import { ownerDeployment } from './controllers/deployment.js';
import type { NodeRuntime } from './nodes.js';

/** A pod already placed: its node, namespace and owning Deployment. */
export interface PlacedPod {
  node: NodeRuntime;
  namespace: string;
  owner: string | undefined;
}

export function pickNode(pod: Pod, nodes: readonly NodeRuntime[], placed: readonly PlacedPod[]): NodeRuntime | undefined {
  if (pod.spec.nodeName) return nodes.find((n) => n.name === pod.spec.nodeName);
  const owner = ownerDeployment(pod);
  const count = (n: NodeRuntime, sameOwner: boolean) =>
    placed.filter((p) => p.node === n && (!sameOwner || (owner !== undefined && p.namespace === pod.metadata.namespace && p.owner === owner))).length;
  return [...nodes].sort((a, b) => count(a, true) - count(b, true) || count(a, false) - count(b, false) || a.index - b.index)[0];
}
