// The local cluster: nodes and pods as network namespaces, containers as supervised processes, Services as
// nftables load balancing plus DNS. This file wires the rooms together, each doing one job of a Kubernetes cluster:
// the store and the Kubernetes API (../apiserver, kube-api.ts), admission (admission.ts), the Deployment controller
// and garbage collector (controllers/), the scheduler (scheduler.ts), the kubelet (kubelet/), kube-proxy and DNS
// (services.ts), the CNI agent (../cni) and the component supervisor (component-supervisor.ts). After every change
// the reconciler brings the running state towards the store.
import { mkdirSync } from 'node:fs';
import {
  DEFAULT_TRUST_DOMAIN,
  IMMORTAL_NAMESPACES,
  IMMORTAL_NAMESPACE_REASON,
  ROOT_NAMESPACE,
  displayName,
  resourceKey,
  type Kind,
  type Resource,
} from '../api/types.js';
import { findModelType, modelType, parseApiVersion, qualifiedKindName, qualifiedResource, typeOf, type ResourceType } from '../api/kinds.js';
import type { ApiServer } from '../apiserver/server.js';
import { ResourceStore, isModelObject, type ChangeListener, type KubeObject } from '../apiserver/store.js';
import { CniAgent } from '../cni/agent.js';
import { kubeTime } from '../common/time.js';
import { KUBERNETES_TOKEN_ISSUER } from '../controlplane/auth.js';
import { MeshCa } from '../controlplane/ca.js';
import { podWantsCapture } from '../model/workloads.js';
import { Admission } from './admission.js';
import { ComponentSupervisor, type ComponentStatus } from './component-supervisor.js';
import { isComponentObject } from './component-objects.js';
import { ZtunnelTokens } from './component-tokens.js';
import { COMPONENTS, type ComponentSpec } from './components.js';
import { DeploymentController } from './controllers/deployment.js';
import { collectGarbage } from './controllers/garbage-collector.js';
import { EventRecorder } from './events.js';
import { AddressPool } from './ipam.js';
import { Kubelet, type PodAccess } from './kubelet/kubelet.js';
import { startKubeApi } from './kube-api.js';
import { StateLayout, nodeIP, nodeName, podCIDR, podGatewayIP } from './layout.js';
import { Ledger } from './ledger.js';
import { createFabric, createNode } from './network.js';
import type { NodeInfo, NodeRuntime } from './nodes.js';
import { isPodReady, podProblem, podStatusText } from './pods.js';
import type { ContainerSandbox, PodSandbox } from './sandbox.js';
import { ServiceProxy } from './services.js';
import { removeNetns } from './sys.js';
import { ServiceAccountIssuer } from './tokens.js';

export type { ComponentStatus } from './component-supervisor.js';
export type { NodeInfo } from './nodes.js';

export interface ClusterOptions {
  name: string;
  stateDir: string;
  nodes: number;
  components?: ComponentSpec[];
  /** PATH the pods' PATH is built from (the supervisor's own by default). */
  basePath?: string;
  log?: (line: string) => void;
}

export interface ApplyResult {
  object: string;
  /** kubectl-style line: `deployment.apps/web created`. */
  message?: string;
  error?: string;
  /** Kubernetes' Status reason of the error (`NotFound`), for callers that treat some errors as success. */
  reason?: string;
}

const REDIRECTION_ANNOTATION = 'ambient.istio.io/redirection';

/** Namespaces every cluster has: `default` as in Kubernetes, and the mesh's root namespace as after an install. */
const BUILTIN_NAMESPACES = ['default', ROOT_NAMESPACE];

/** Kinds applied first within one batch, so objects can refer to what the same batch creates. */
const APPLY_ORDER: Kind[] = ['Namespace', 'ServiceAccount', 'Service'];

export class LocalCluster {
  readonly store = new ResourceStore();
  readonly layout: StateLayout;
  readonly ledger: Ledger;
  readonly nodes: NodeRuntime[] = [];
  readonly fabricNetns: string;
  private readonly log: (line: string) => void;
  private readonly admission: Admission;
  private readonly events: EventRecorder;
  private readonly deployments: DeploymentController;
  private readonly cni: CniAgent;
  private readonly kubelet: Kubelet;
  private readonly services: ServiceProxy;
  private readonly components: ComponentSupervisor;
  private reconciling: Promise<void> | undefined;
  private dirty = false;
  private deploymentCheck: NodeJS.Timeout | undefined;
  private stopped = false;
  private tokenIssuer: ServiceAccountIssuer | undefined;
  /** Each node's ztunnel pod's istio-token (component-tokens.ts). */
  private ztunnelTokens: ZtunnelTokens | undefined;
  private kubeApi: ApiServer | undefined;

  constructor(readonly options: ClusterOptions) {
    this.layout = new StateLayout(options.stateDir);
    this.ledger = new Ledger(this.layout.ledger);
    this.fabricNetns = this.layout.fabricNetns;
    const log = (this.log = options.log ?? ((line) => process.stdout.write(`${new Date().toISOString()} ${line}\n`)));
    const { store, layout, ledger, nodes } = this;
    this.admission = new Admission(store, nodes);
    this.events = new EventRecorder(store);
    this.deployments = new DeploymentController(store, this.events, () => this.stopped);
    this.cni = new CniAgent({
      log,
      runningPods: () => this.kubelet.started().map((rt) => ({ pod: this.kubelet.cniPod(rt), wantsCapture: this.wantsCapture(rt) })),
      onCaptureChanged: (pod, captured) => this.markRedirection(pod, captured),
    });
    this.kubelet = new Kubelet({
      store,
      layout,
      ledger,
      nodes,
      cni: this.cni,
      events: this.events,
      wantsCapture: (pod) => this.wantsCapture(pod),
      tokenIssuer: () => this.tokenIssuer,
      ...(options.basePath !== undefined ? { basePath: options.basePath } : {}),
      log,
      requestSync: () => void this.reconcile(),
      onPodStatus: () => this.scheduleDeploymentCheck(),
    });
    this.services = new ServiceProxy(store, nodes, log);
    this.components = new ComponentSupervisor({
      cluster: options.name,
      stateDir: options.stateDir,
      layout,
      ledger,
      fabricNetns: this.fabricNetns,
      nodes,
      store,
      cni: this.cni,
      ...(options.basePath !== undefined ? { basePath: options.basePath } : {}),
      log,
      onNodeAgentRecovered: () => this.services.resendDns(),
      onPublished: () => this.ztunnelTokens?.sync(),
    });
    store.onChange((e) => {
      if (e.resource.kind === 'Pod' || e.resource.kind === 'Service') this.services.scheduleSync();
      // (Un)labelling a namespace or pod captures or releases running pods, without restarting them.
      if (e.resource.kind === 'Pod' || e.resource.kind === 'Namespace') this.cni.scheduleSync();
    });
  }

  /** Subscribes to every change of the cluster's view (see ResourceStore.onChange). */
  onChange(listener: ChangeListener): () => void {
    return this.store.onChange(listener);
  }

  // ---- start / stop ------------------------------------------------------------------------------------------------

  async start(): Promise<void> {
    mkdirSync(this.layout.netnsDir, { recursive: true });
    this.log(`creating cluster ${this.options.name} with ${this.options.nodes} node(s) in ${this.options.stateDir}`);
    await createFabric(this.fabricNetns, this.ledger, this.options.nodes);
    for (let i = 1; i <= this.options.nodes; i++) {
      const node: NodeRuntime = {
        name: nodeName(i),
        index: i,
        ip: nodeIP(i),
        podCIDR: podCIDR(i),
        netnsPath: this.layout.netns(nodeName(i)),
        agentSocket: this.layout.agentSocket(nodeName(i)),
        createdAt: new Date().toISOString(),
        pool: new AddressPool(podCIDR(i), [podGatewayIP(i)]),
      };
      mkdirSync(this.layout.nodeDir(node.name), { recursive: true });
      await createNode(node.netnsPath, this.fabricNetns, this.ledger, i, this.options.nodes);
      this.nodes.push(node);
    }
    await this.prepareMesh();
    // The Kubernetes API comes before the components: the control plane reads the cluster through it.
    this.kubeApi = (
      await startKubeApi({
        cluster: this,
        clusterName: this.options.name,
        kubeconfigPath: this.layout.kubeconfig,
        controlPlaneKubeconfigPath: this.layout.controlPlaneKubeconfig,
        log: this.log,
      })
    ).server;
    await this.components.start(this.options.components ?? COMPONENTS);
    for (const ns of BUILTIN_NAMESPACES) {
      this.store.put(this.admit({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } }), true);
      this.store.put({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'default', namespace: ns } });
    }
    this.components.publishObjects();
    this.log(`cluster ${this.options.name} is up`);
  }

  /** Stops every pod and component and removes every namespace; the state directory stays for the caller. */
  async shutdown(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.deploymentCheck);
    this.events.close();
    this.components.stopChecks();
    this.services.close();
    await this.reconciling?.catch(() => undefined);
    await this.cni.settled();
    await this.kubeApi?.close();
    this.ztunnelTokens?.stop();
    await this.kubelet.shutdown(5);
    await this.components.shutdown();
    await this.cni.close();
    for (const node of this.nodes) await removeNetns(node.netnsPath).then(() => this.ledger.netnsRemoved(node.netnsPath));
    await removeNetns(this.fabricNetns).then(() => this.ledger.netnsRemoved(this.fabricNetns));
  }

  // ---- the mesh: control plane credentials, capture ------------------------------------------------------------------

  /**
   * What the control plane and the ztunnels need before they start: the service account token issuer (a ztunnel
   * shows its pod's token, and the control plane gives it certificates only for the pods of that pod's node), the mesh
   * root the ztunnels verify the control plane and their peers with, and each node's ZDS socket.
   */
  private async prepareMesh(): Promise<void> {
    const { layout } = this;
    mkdirSync(layout.controlPlaneDir, { recursive: true, mode: 0o700 });
    this.tokenIssuer = await ServiceAccountIssuer.load(layout.serviceAccountKey, layout.serviceAccountJwks);
    this.ztunnelTokens = new ZtunnelTokens({ issuer: this.tokenIssuer, store: this.store, layout, published: this.components.componentPodUids, log: this.log });
    // The control plane would create its root on first start too; creating it here means the ztunnels can be
    // given the file from the start. The control plane loads the same files.
    await MeshCa.load({ trustDomain: DEFAULT_TRUST_DOMAIN, stateDir: layout.controlPlaneDir });
    for (const node of this.nodes) await this.cni.addNode(node.name, layout.zdsSocket(node.name));
  }

  /** Istio's CNI selection: the pod or its namespace labelled `istio.io/dataplane-mode=ambient`, the pod not `none`. */
  private wantsCapture(p: { namespace: string; name: string; uid: string }): boolean {
    const pod = this.store.get('Pod', p.namespace, p.name);
    if (!pod || pod.metadata.uid !== p.uid) return false;
    // The redirection annotation is what capturing writes, not a reason to capture.
    const { [REDIRECTION_ANNOTATION]: _written, ...annotations } = pod.metadata.annotations ?? {};
    return podWantsCapture({ ...pod, metadata: { ...pod.metadata, annotations } }, this.store.get('Namespace', undefined, p.namespace));
  }

  /** Istio's CNI marks a pod it captured with `ambient.istio.io/redirection: enabled` (istiod reads it) and removes it on release. */
  private markRedirection(p: { namespace: string; name: string; uid: string }, enabled: boolean): void {
    const pod = this.store.get('Pod', p.namespace, p.name);
    if (!pod || pod.metadata.uid !== p.uid || (pod.metadata.annotations?.[REDIRECTION_ANNOTATION] === 'enabled') === enabled) return;
    const { [REDIRECTION_ANNOTATION]: _old, ...others } = pod.metadata.annotations ?? {};
    const annotations = enabled ? { ...others, [REDIRECTION_ANNOTATION]: 'enabled' } : others;
    this.store.put({ ...pod, metadata: { ...pod.metadata, annotations } }, true);
  }

  // ---- components --------------------------------------------------------------------------------------------------

  /** `ambit rollout restart` (see ComponentSupervisor.rolloutRestart). */
  rolloutRestart(name: string, node?: string): Promise<string[]> {
    return this.components.rolloutRestart(name, node);
  }

  componentStatus(): ComponentStatus[] {
    return this.components.status();
  }

  /** GET from a component's loopback-only admin port (see ComponentSupervisor.adminGet). */
  componentAdminGet(name: string, port: number, path: string, node?: string): Promise<{ node?: string; status: number; body: string; error?: string }[]> {
    return this.components.adminGet(name, port, path, node);
  }

  /** The log files of a component (see ComponentSupervisor.logs). */
  componentLogs(name: string, node?: string): { path: string; node?: string }[] | undefined {
    return this.components.logs(name, node);
  }

  nodeInfo(): (NodeInfo & { pods: number })[] {
    return this.nodes.map((node) => {
      const { pool: _pool, ...info } = node;
      return { ...info, pods: this.kubelet.podsOn(node) };
    });
  }

  // ---- service account tokens --------------------------------------------------------------------------------------

  /** TokenRequest (`kubectl create token`): a token of the cluster's issuer for a service account, bound to a pod when given. */
  async requestToken(
    serviceAccount: { metadata: { name: string; namespace?: string; uid?: string } },
    spec: { audiences: string[]; expirationSeconds: number },
    pod: { metadata: { name: string; uid?: string }; spec?: unknown } | undefined,
  ): Promise<{ token: string; expirationTimestamp: string }> {
    if (!this.tokenIssuer) throw new Error('the cluster has not made its token issuer yet');
    const now = Date.now();
    const nodeName = (pod?.spec as { nodeName?: string } | undefined)?.nodeName;
    const token = await this.tokenIssuer.token(
      {
        namespace: serviceAccount.metadata.namespace!,
        serviceAccount: serviceAccount.metadata.name,
        ...(serviceAccount.metadata.uid ? { serviceAccountUid: serviceAccount.metadata.uid } : {}),
        ...(pod ? { pod: { name: pod.metadata.name, uid: pod.metadata.uid! } } : {}),
        ...(nodeName ? { node: nodeName } : {}),
      },
      { audiences: spec.audiences.length ? spec.audiences : [KUBERNETES_TOKEN_ISSUER], expirationSeconds: spec.expirationSeconds },
      now,
    );
    return { token, expirationTimestamp: kubeTime(now + spec.expirationSeconds * 1000) };
  }

  /** TokenReview of a service account token this cluster issued (see ServiceAccountIssuer.review). */
  async reviewToken(token: string, audiences: string[]): Promise<Record<string, unknown>> {
    if (!this.tokenIssuer) return { authenticated: false, error: 'the cluster has not made its token issuer yet' };
    return this.tokenIssuer.review(token, audiences, (kind, ns, name) => this.store.get(kind, ns, name)?.metadata.uid);
  }

  // ---- apply / delete ----------------------------------------------------------------------------------------------

  /** Stores objects (in dependency order) and reconciles; one bad object never stops the others. */
  async apply(resources: (Resource | KubeObject)[]): Promise<ApplyResult[]> {
    const order = (r: Resource | KubeObject) => {
      const i = APPLY_ORDER.indexOf(r.kind as Kind);
      return i < 0 ? APPLY_ORDER.length : i;
    };
    const sorted = resources.map((r, i) => ({ r, i })).sort((a, b) => order(a.r) - order(b.r) || a.i - b.i);
    const results: { i: number; result: ApplyResult }[] = [];
    for (const { r, i } of sorted) {
      const name = objectLabel(r);
      try {
        const type = typeOf(r.apiVersion ?? '', r.kind);
        if (type && !type.model) {
          // A kind the mesh does not read (ConfigMap, Secret, Istio's Gateway…): stored as the API stores it.
          const stored = this.admission.admitOther(r as KubeObject, type);
          results.push({ i, result: { object: name, message: `${qualifiedKindName(type)}/${stored.metadata.name} ${this.store.put(stored)}` } });
          continue;
        }
        const prepared = this.admit(r as Resource);
        const outcome = this.store.put(prepared, prepared.kind === 'Namespace');
        if (prepared.kind === 'Namespace' && outcome === 'created') {
          this.store.put({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'default', namespace: prepared.metadata.name } });
        }
        results.push({ i, result: { object: name, message: `${qualifiedKindName(modelType(prepared.kind))}/${prepared.metadata.name} ${outcome}` } });
      } catch (err) {
        results.push({ i, result: { object: name, error: (err as Error).message } });
      }
    }
    await this.reconcile();
    return results.sort((a, b) => a.i - b.i).map((r) => r.result);
  }

  /** Deletes objects (cascading like Kubernetes: a Namespace takes its objects, a Deployment its pods). */
  async delete(refs: { apiVersion?: string; kind: string; metadata: { name: string; namespace?: string } }[]): Promise<ApplyResult[]> {
    const results: { i: number; result: ApplyResult }[] = [];
    // Namespaces last: deleting one takes its objects with it, which would turn the later entries into NotFound.
    const sorted = refs.map((ref, i) => ({ ref, i })).sort((a, b) => Number(a.ref.kind === 'Namespace') - Number(b.ref.kind === 'Namespace') || a.i - b.i);
    for (const { ref, i } of sorted) {
      const push = (result: ApplyResult) => results.push({ i, result });
      const info = ref.apiVersion ? typeOf(ref.apiVersion, ref.kind) : findModelType(ref.kind);
      const name = objectLabel(ref);
      if (!info) {
        push({ object: name, error: `the server doesn't have a resource type "${ref.kind}"` });
        continue;
      }
      if (info.group === '' && info.kind === 'Namespace' && IMMORTAL_NAMESPACES.includes(ref.metadata.name)) {
        push({ object: name, error: `Error from server (Forbidden): ${qualifiedResource(info)} "${ref.metadata.name}" is forbidden: ${IMMORTAL_NAMESPACE_REASON}`, reason: 'Forbidden' });
        continue;
      }
      const namespace = info.namespaced ? (ref.metadata.namespace ?? 'default') : undefined;
      const removed = this.store.removeObject(info.group, info.kind, namespace, ref.metadata.name) as unknown as Resource | undefined;
      if (!removed) {
        push({ object: name, error: `Error from server (NotFound): ${qualifiedResource(info)} "${ref.metadata.name}" not found`, reason: 'NotFound' });
        continue;
      }
      this.released(removed);
      if (info.group === '' && removed.kind === 'Namespace') {
        for (const o of this.store.objectsIn(removed.metadata.name)) {
          const gone = this.store.removeObject(parseApiVersion(o.apiVersion).group, o.kind, o.metadata.namespace, o.metadata.name);
          if (gone && isModelObject(gone)) this.released(gone as unknown as Resource);
        }
      }
      push({ object: name, message: `${qualifiedKindName(info)} "${ref.metadata.name}" deleted` });
    }
    await this.reconcile();
    return results.sort((a, b) => a.i - b.i).map((r) => r.result);
  }

  /** What a deleted object held goes back (a Service's cluster IP). */
  released(r: Resource): void {
    this.admission.released(r);
  }

  /** Admission of a kind the mesh does not read (see Admission.admitOther). */
  admitOther(input: KubeObject, type: ResourceType): KubeObject {
    return this.admission.admitOther(input, type);
  }

  /** Checks an object against the cluster and fills in what the cluster assigns (see Admission.admit). */
  admit(input: Resource): Resource {
    return this.admission.admit(input);
  }

  // ---- reconcile ---------------------------------------------------------------------------------------------------

  /** Runs reconcile passes until nothing changed since the last one started; concurrent callers share passes. */
  reconcile(): Promise<void> {
    this.dirty = true;
    if (!this.reconciling) {
      this.reconciling = (async () => {
        try {
          while (this.dirty && !this.stopped) {
            this.dirty = false;
            try {
              await this.reconcileOnce();
            } catch (err) {
              this.log(`reconcile failed: ${(err as Error).stack ?? err}`);
            }
          }
        } finally {
          this.reconciling = undefined;
        }
      })();
    }
    return this.reconciling;
  }

  private async reconcileOnce(): Promise<void> {
    this.garbageCollect();
    await this.deployments.reconcile();
    // Pods standing for the cluster's components are not the kubelet's to run.
    await this.kubelet.sync(new Map(this.store.list('Pod').filter((p) => !isComponentObject(p)).map((p) => [resourceKey(p), p])));
    this.deployments.updateStatus();
  }

  /**
   * Kubernetes' garbage collector (controllers/garbage-collector.ts): objects all of whose owners are gone go too — a
   * waypoint's Deployment, Service and ServiceAccount when its Gateway is deleted.
   */
  private garbageCollect(): void {
    const { deleted, trimmed } = collectGarbage(this.store);
    const name = (r: Resource) => `${qualifiedKindName(modelType(r.kind))} ${r.metadata.namespace ? `${r.metadata.namespace}/` : ''}${r.metadata.name}`;
    const owners = (refs: { kind: string; name: string }[]) => refs.map((ref) => `${ref.kind} ${ref.name}`).join(', ');
    for (const r of deleted) {
      this.released(r);
      this.log(`${name(r)} deleted: its owners are gone (${owners(r.metadata.ownerReferences ?? [])})`);
    }
    for (const { resource, gone } of trimmed) this.log(`${name(resource)}: removed the references to its gone owners (${owners(gone)})`);
  }

  /** A pod becoming ready may let a rollout remove old pods; batch those checks. */
  private scheduleDeploymentCheck(): void {
    if (this.deploymentCheck || this.stopped) return;
    this.deploymentCheck = setTimeout(() => {
      this.deploymentCheck = undefined;
      void this.reconcile();
    }, 50);
  }

  // ---- pods --------------------------------------------------------------------------------------------------------

  /**
   * What `kubectl logs` and `kubectl exec` reach in a pod of the API: its containers, each container's logs (the
   * current instance's, the one before, and when the current one ends), and the argv that runs a command in it: the
   * container's sandbox, or for istio-system's component pods the component's network namespace. Errors are the
   * kubelet's texts.
   */
  podAccess(namespace: string, name: string): PodAccess {
    const pod = this.store.get('Pod', namespace, name);
    if (!pod) throw new Error(`pods "${name}" not found`);
    const component = this.components.componentPod(pod);
    if (!component) return this.kubelet.podAccess(pod);
    const access = this.components.componentPodAccess(component);
    return { containers: pod.spec.containers.map((c) => c.name), log: () => access.log(), command: (_container, command) => access.command(command) };
  }

  /** The log file of a pod's container (see Kubelet.podLog). */
  podLog(namespace: string, name: string, container?: string, previous = false): { pod: string; container: string; path: string } {
    return this.kubelet.podLog(namespace, name, container, previous);
  }

  /** Where `ambit exec` runs a command for a pod (or a ready pod of a Deployment). */
  execTarget(
    namespace: string,
    name: string,
    container?: string,
  ): { pod: string; container: string; sandbox: PodSandbox; containerSandbox: ContainerSandbox; env: Record<string, string>; cwd: string } {
    return this.kubelet.execTarget(namespace, name, container);
  }

  // ---- waiting -----------------------------------------------------------------------------------------------------

  /** Resolves when every change made so far is reconciled, captured and programmed into the nodes. */
  async settled(): Promise<void> {
    await this.reconciling;
    await this.cni.settled();
    await this.services.settled();
  }

  /** What keeps the cluster from being ready: empty when every pod is ready (or completed) and rollouts are done. */
  notReady(): string[] {
    const out = this.deployments.notReady();
    for (const p of this.store.list('Pod')) {
      if (isPodReady(p) || p.status?.phase === 'Succeeded' || isComponentObject(p)) continue;
      out.push(`pod ${p.metadata.namespace}/${p.metadata.name}: ${podStatusText(p)}${podProblem(p)}`);
    }
    out.push(...this.components.notReady());
    return out;
  }

  async waitReady(timeoutMs: number): Promise<string[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      await this.settled();
      const pending = this.notReady();
      if (pending.length === 0 || Date.now() >= deadline) return pending;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

function objectLabel(r: { kind?: string; metadata?: { name?: string; namespace?: string } }): string {
  return displayName({ kind: r?.kind ?? '<no kind>', metadata: r?.metadata });
}
