// The Deployment controller (kube-controller-manager's, with the ReplicaSet folded in): each Deployment gets its
// replicas as Pods named and owned as Kubernetes names and owns them (Deployment → ReplicaSet → Pod, the chain
// Istio derives workload names from), scales down newest first, replaces pods of an old template once the new ones
// are ready, and reports replicas in its status. Pods whose Deployment is gone go too.
import { createHash, randomBytes } from 'node:crypto';
import { setImmediate } from 'node:timers/promises';
import type { Deployment, Pod } from '../../api/types.js';
import type { ResourceStore } from '../../apiserver/store.js';
import type { EventRecorder } from '../events.js';
import { isPodReady } from '../pods.js';

/**
 * Pods created before the controller yields to the event loop: a scale-up by hundreds of replicas must not keep the
 * supervisor from answering its socket, health checks and watchers meanwhile.
 */
export const POD_BATCH = 16;

export class DeploymentController {
  constructor(
    private readonly store: ResourceStore,
    private readonly events: EventRecorder,
    private readonly stopped: () => boolean,
  ) {}

  /** Kubernetes' ScalingReplicaSet event on the Deployment (the cluster keeps no ReplicaSet objects, but names them). */
  private scaled(d: Deployment, hash: string, from: number, to: number): void {
    const involved = { apiVersion: 'apps/v1', kind: 'Deployment', namespace: d.metadata.namespace!, name: d.metadata.name, ...(d.metadata.uid ? { uid: d.metadata.uid } : {}) };
    const message = `Scaled ${to > from ? 'up' : 'down'} replica set ${d.metadata.name}-${hash} from ${from} to ${to}`;
    this.events.record({ component: 'deployment-controller' }, involved, 'Normal', 'ScalingReplicaSet', message);
  }

  /** One pass over every Deployment: orphaned pods go, then each Deployment's pods are brought to its spec. */
  async reconcile(): Promise<void> {
    for (const d of this.store.list('Deployment')) await this.reconcileDeployment(d);
    for (const p of this.store.list('Pod')) {
      const owner = ownerDeployment(p);
      if (owner && !this.store.get('Deployment', p.metadata.namespace, owner)) this.store.remove('Pod', p.metadata.namespace, p.metadata.name);
    }
  }

  private async reconcileDeployment(d: Deployment): Promise<void> {
    const ns = d.metadata.namespace!;
    const hash = templateHash(d.spec.template);
    const replicas = d.spec.replicas ?? 1;
    const owned = this.store.list('Pod', ns).filter((p) => ownerDeployment(p) === d.metadata.name);
    const current = owned.filter((p) => p.metadata.labels?.['pod-template-hash'] === hash);
    const old = owned.filter((p) => p.metadata.labels?.['pod-template-hash'] !== hash);
    if (current.length < replicas) this.scaled(d, hash, current.length, replicas);
    for (let n = current.length; n < replicas; n++) {
      this.store.put(podFromTemplate(d, hash), true);
      if ((n - current.length + 1) % POD_BATCH !== 0) continue;
      await setImmediate();
      // Changed or deleted meanwhile: the next pass (the change marked the reconciler dirty) works from the new spec.
      const now = this.store.get('Deployment', ns, d.metadata.name);
      if (this.stopped() || now === undefined || now.metadata.uid !== d.metadata.uid || now.metadata.generation !== d.metadata.generation) return;
    }
    // Scale down newest first.
    const surplus = current.sort((a, b) => (b.metadata.creationTimestamp ?? '').localeCompare(a.metadata.creationTimestamp ?? '')).slice(0, Math.max(0, current.length - replicas));
    if (surplus.length) this.scaled(d, hash, current.length, replicas);
    for (const p of surplus) this.store.remove('Pod', ns, p.metadata.name);
    // Rolling replacement (maxSurge 1, maxUnavailable 0 for one replica): old pods go once every new replica is
    // ready, so the Service never runs dry. The pods created above count, not yet ready.
    const readyNew = current.filter((p) => isPodReady(p)).length;
    if (old.length && readyNew >= replicas) {
      const byHash = new Map<string, number>();
      for (const p of old) {
        const oldHash = p.metadata.labels?.['pod-template-hash'] ?? '';
        byHash.set(oldHash, (byHash.get(oldHash) ?? 0) + 1);
      }
      for (const [oldHash, count] of byHash) this.scaled(d, oldHash, count, 0);
      for (const p of old) this.store.remove('Pod', ns, p.metadata.name);
    }
  }

  /** Every Deployment's replica counts, from its pods as they are now. */
  updateStatus(): void {
    for (const d of this.store.list('Deployment')) {
      const hash = templateHash(d.spec.template);
      const owned = this.store.list('Pod', d.metadata.namespace).filter((p) => ownerDeployment(p) === d.metadata.name);
      const updated = owned.filter((p) => p.metadata.labels?.['pod-template-hash'] === hash);
      const ready = owned.filter(isPodReady).length;
      this.store.setStatus('Deployment', d.metadata.namespace, d.metadata.name, {
        observedGeneration: d.metadata.generation,
        replicas: owned.length,
        updatedReplicas: updated.length,
        readyReplicas: ready,
        availableReplicas: ready,
      });
    }
  }

  /** What keeps rollouts from being done, one line per Deployment not at its spec. */
  notReady(): string[] {
    const out: string[] = [];
    for (const d of this.store.list('Deployment')) {
      const st = (d as { status?: unknown }).status as { updatedReplicas?: number; readyReplicas?: number; replicas?: number } | undefined;
      const want = d.spec.replicas ?? 1;
      if (!st || st.updatedReplicas !== want || st.replicas !== want || st.readyReplicas !== want) {
        out.push(`deployment ${d.metadata.namespace}/${d.metadata.name}: ${st?.readyReplicas ?? 0}/${want} ready`);
      }
    }
    return out;
  }
}

function podFromTemplate(d: Deployment, hash: string): Pod {
  const suffix = randomBytes(4).toString('base64url').toLowerCase().replace(/[^a-z0-9]/g, 'x').slice(0, 5);
  const tmpl = d.spec.template;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: `${d.metadata.name}-${hash}-${suffix}`,
      generateName: `${d.metadata.name}-${hash}-`,
      namespace: d.metadata.namespace,
      labels: { ...(tmpl.metadata?.labels ?? {}), 'pod-template-hash': hash },
      ...(tmpl.metadata?.annotations ? { annotations: { ...tmpl.metadata.annotations } } : {}),
      // Kubernetes' owner chain (Deployment → ReplicaSet → Pod): Istio names workloads after it.
      // Kubernetes requires the owner's uid; the cluster keeps no ReplicaSet objects, so the uid stands for the one
      // the Deployment's template would have (the same for every pod of that template).
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: `${d.metadata.name}-${hash}`, uid: replicaSetUid(d.metadata.uid ?? '', hash), controller: true }],
    } as Pod['metadata'],
    spec: structuredClone(tmpl.spec),
    status: { phase: 'Pending' },
  };
}

/** A stable UUID-shaped uid for a Deployment's ReplicaSet of a template hash. */
function replicaSetUid(deploymentUid: string, hash: string): string {
  const h = createHash('sha256').update(`${deploymentUid}/${hash}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

function templateHash(template: Deployment['spec']['template']): string {
  // Kubernetes' pod-template-hash is a short hash of the template; any stable hash serves the same purpose.
  return createHash('sha256').update(JSON.stringify(template)).digest('hex').slice(0, 10);
}

/** The Deployment owning a pod through its ReplicaSet, or undefined. */
export function ownerDeployment(pod: Pod | undefined): string | undefined {
  const refs = (pod?.metadata as { ownerReferences?: { kind: string; name: string }[] } | undefined)?.ownerReferences;
  const rs = refs?.find((r) => r.kind === 'ReplicaSet');
  const hash = pod?.metadata.labels?.['pod-template-hash'];
  return rs && hash && rs.name.endsWith(`-${hash}`) ? rs.name.slice(0, -hash.length - 1) : undefined;
}
