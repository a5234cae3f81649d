// What every room reads of a Pod object the same way: readiness, kubectl's STATUS word, the reasons a pod is stuck,
// and which container a request means.
import type { Pod } from '../api/types.js';

export function isPodReady(pod: Pod | undefined): boolean {
  return pod?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

/** kubectl's STATUS column: a container's waiting/terminated reason wins over the phase. */
export function podStatusText(pod: Pod): string {
  const statuses = (pod.status?.containerStatuses ?? []) as { state?: { waiting?: { reason?: string }; terminated?: { reason?: string } } }[];
  for (const s of statuses) if (s.state?.waiting?.reason && s.state.waiting.reason !== 'ContainerCreating') return s.state.waiting.reason;
  for (const s of statuses) if (s.state?.terminated?.reason && pod.status?.phase !== 'Running') return s.state.terminated.reason;
  if (pod.status?.phase === 'Pending' && statuses.length === 0 && pod.spec.nodeName) return 'ContainerCreating';
  return pod.status?.phase ?? 'Pending';
}

/** Why a pod is not ready, as ` (message; message)`, or empty. */
export function podProblem(pod: Pod): string {
  const msgs: string[] = [];
  if (typeof pod.status?.message === 'string') msgs.push(pod.status.message);
  for (const c of (pod.status?.conditions ?? []) as { type: string; status: string; message?: string }[]) {
    if (c.type === 'PodScheduled' && c.status === 'False' && c.message) msgs.push(c.message);
  }
  for (const s of (pod.status?.containerStatuses ?? []) as { probeMessage?: string; state?: { waiting?: { message?: string } } }[]) {
    if (s.probeMessage) msgs.push(s.probeMessage);
    if (s.state?.waiting?.message) msgs.push(s.state.waiting.message);
  }
  return msgs.length ? ` (${msgs.join('; ')})` : '';
}

/** The container a request names, or the pod's only one; the kubelet's errors otherwise. */
export function chooseContainer(containers: string[], pod: string, container: string | undefined): string {
  if (container === undefined) {
    if (containers.length > 1) throw new Error(`a container name must be specified for pod ${pod}, choose one of: [${containers.join(' ')}]`);
    if (containers[0] === undefined) throw new Error(`pod ${pod} has no containers`);
    return containers[0];
  }
  if (!containers.includes(container)) throw new Error(`container ${container} is not valid for pod ${pod}`);
  return container;
}
