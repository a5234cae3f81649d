// The cluster's own parts as the Kubernetes objects an Istio user looks for: a Node per node, and in istio-system the
// control plane pod (`app=istiod`) and one ztunnel pod per node (`app=ztunnel`) owned by the DaemonSet `ztunnel`,
// each running as its service account (`istiod`, `ztunnel`), as Istio's charts create them. The processes behind them
// are the supervisor's components; these objects mirror their state (ready when the component's health check passes)
// so `kubectl get pods -n istio-system -l app=ztunnel`, `kubectl logs` and `kubectl exec` work as the guides write
// them. The kubelet part of the cluster never starts them: they carry the component annotation.
import { createHash } from 'node:crypto';
import { arch, release } from 'node:os';
import { ROOT_NAMESPACE } from '../api/types.js';
import type { KubeObject } from '../apiserver/store.js';
import { SERVED_KUBERNETES_VERSION } from '../apiserver/server.js';
import { AMBIT_VERSION } from '../common/version.js';
import { kubeTime } from '../common/time.js';

/** On a pod that stands for a supervised component: the component's name. */
export const COMPONENT_ANNOTATION = 'ambit.dev/component';

export interface ComponentPlacement {
  component: string;
  /** Per-node components: the node; the control plane: undefined. */
  node?: string;
  /** The address the process listens on (its node's, or the fabric's for the control plane). */
  ip: string;
  healthy: boolean;
  restarts: number;
  startedAt?: string;
}

export interface NodeFacts {
  name: string;
  ip: string;
  podCIDR: string;
  createdAt: string;
  ready: boolean;
}

/** Istio's chart names: the ztunnel container is `istio-proxy`, istiod's is `discovery`. */
const CONTAINERS: Record<string, { pod: string; container: string; labels: Record<string, string> }> = {
  ztunnel: { pod: 'ztunnel', container: 'istio-proxy', labels: { app: 'ztunnel', 'app.kubernetes.io/name': 'ztunnel', 'sidecar.istio.io/inject': 'false' } },
  controlplane: { pod: 'istiod', container: 'discovery', labels: { app: 'istiod', istio: 'pilot', 'app.kubernetes.io/name': 'istiod', 'sidecar.istio.io/inject': 'false' } },
};

/** Whether an object stands for one of the cluster's components (the mesh model leaves them out). */
export function isComponentObject(o: { metadata?: { annotations?: Record<string, string> } }): boolean {
  return o.metadata?.annotations?.[COMPONENT_ANNOTATION] !== undefined;
}

/** A stable five-character suffix, as a controller's random one but the same for the same placement. */
function suffix(seed: string): string {
  const alphabet = 'bcdfghjklmnpqrstvwxz2456789';
  return [...createHash('sha256').update(seed).digest().subarray(0, 5)].map((b) => alphabet[b % alphabet.length]).join('');
}

export function nodeObject(n: NodeFacts): KubeObject {
  const ready = { type: 'Ready', status: n.ready ? 'True' : 'False', reason: n.ready ? 'KubeletReady' : 'KubeletNotReady', message: n.ready ? 'kubelet is posting ready status' : 'the node agent is not healthy' };
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: n.name, labels: { 'kubernetes.io/hostname': n.name, 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': goArch() } },
    spec: { podCIDR: n.podCIDR, podCIDRs: [n.podCIDR] },
    status: {
      addresses: [
        { type: 'InternalIP', address: n.ip },
        { type: 'Hostname', address: n.name },
      ],
      conditions: [ready],
      nodeInfo: {
        kubeletVersion: SERVED_KUBERNETES_VERSION.gitVersion,
        kubeProxyVersion: SERVED_KUBERNETES_VERSION.gitVersion,
        osImage: 'Ambit local cluster',
        kernelVersion: release(),
        containerRuntimeVersion: `ambit://${AMBIT_VERSION}`,
        operatingSystem: 'linux',
        architecture: goArch(),
      },
    },
  };
}

/** The service accounts, the DaemonSet ztunnel and the pods of every component placement. */
export function componentObjects(placements: ComponentPlacement[], nodes: number, daemonSetUid: string | undefined): KubeObject[] {
  const ztunnels = placements.filter((p) => p.component === 'ztunnel');
  const ready = ztunnels.filter((p) => p.healthy).length;
  const daemonSet: KubeObject = {
    apiVersion: 'apps/v1',
    kind: 'DaemonSet',
    metadata: { name: 'ztunnel', namespace: ROOT_NAMESPACE, labels: { app: 'ztunnel' }, annotations: { [COMPONENT_ANNOTATION]: 'ztunnel' } },
    spec: {
      selector: { matchLabels: { app: 'ztunnel' } },
      template: { metadata: { labels: CONTAINERS.ztunnel!.labels }, spec: { hostNetwork: true, serviceAccountName: 'ztunnel', containers: [{ name: 'istio-proxy', image: `ambit/ztunnel:${AMBIT_VERSION}` }] } },
    },
    status: { currentNumberScheduled: ztunnels.length, desiredNumberScheduled: nodes, numberMisscheduled: 0, numberReady: ready, updatedNumberScheduled: ztunnels.length, numberAvailable: ready, observedGeneration: 1 },
  };
  // A component's service account is what its pod's tokens name: ztunnel's is the control plane's trusted node account.
  const serviceAccounts = [...new Set(placements.map((p) => p.component))].flatMap((component) => {
    const names = CONTAINERS[component];
    if (!names) return [];
    const metadata = { name: names.pod, namespace: ROOT_NAMESPACE, labels: { app: names.pod }, annotations: { [COMPONENT_ANNOTATION]: component } };
    return [{ apiVersion: 'v1', kind: 'ServiceAccount', metadata } satisfies KubeObject];
  });
  const out: KubeObject[] = [...serviceAccounts, daemonSet];
  for (const p of placements) {
    const names = CONTAINERS[p.component];
    if (!names) continue;
    const startedAt = p.startedAt ?? kubeTime();
    const cond = (type: string) => ({ type, status: p.healthy ? 'True' : 'False', lastTransitionTime: startedAt });
    out.push({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: `${names.pod}-${suffix(`${p.component}/${p.node ?? ''}`)}`,
        namespace: ROOT_NAMESPACE,
        labels: names.labels,
        annotations: { [COMPONENT_ANNOTATION]: p.component },
        ...(p.component === 'ztunnel' && daemonSetUid
          ? { ownerReferences: [{ apiVersion: 'apps/v1', kind: 'DaemonSet', name: 'ztunnel', uid: daemonSetUid, controller: true }] }
          : {}),
      },
      spec: {
        nodeName: p.node ?? 'node-1',
        hostNetwork: true,
        serviceAccountName: names.pod,
        containers: [{ name: names.container, image: `ambit/${names.pod}:${AMBIT_VERSION}` }],
      },
      status: {
        phase: 'Running',
        hostIP: p.ip,
        hostIPs: [{ ip: p.ip }],
        podIP: p.ip,
        podIPs: [{ ip: p.ip }],
        startTime: startedAt,
        conditions: [{ type: 'PodScheduled', status: 'True', lastTransitionTime: startedAt }, { type: 'Initialized', status: 'True', lastTransitionTime: startedAt }, cond('ContainersReady'), cond('Ready')],
        containerStatuses: [
          {
            name: names.container,
            image: `ambit/${names.pod}:${AMBIT_VERSION}`,
            ready: p.healthy,
            started: true,
            restartCount: p.restarts,
            state: { running: { startedAt } },
          },
        ],
      },
    });
  }
  return out;
}

/** Go's GOARCH spelling, as kubelet labels nodes. */
function goArch(): string {
  const a = arch();
  return a === 'x64' ? 'amd64' : a;
}
