// The local cluster: nodes and pods as network namespaces, containers as supervised processes, Services as
// nftables load balancing plus DNS. It keeps the cluster's view in a ResourceStore (what the control plane
// consumes) and reconciles the running state towards it after every change.
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setImmediate } from 'node:timers/promises';
import { isDeepStrictEqual } from 'node:util';
import {
  DEFAULT_TRUST_DOMAIN,
  ROOT_NAMESPACE,
  displayName,
  isNamespaced,
  resourceKey,
  type Container,
  type Deployment,
  type Kind,
  type Pod,
  type PodSpec,
  type Probe,
  type Resource,
  type Service,
} from '../api/types.js';
import { installCapture, removeCapture } from '../cni/capture.js';
import { KUBERNETES_TOKEN_ISSUER } from '../controlplane/auth.js';
import { MeshCa } from '../controlplane/ca.js';
import { podWantsCapture, serviceAccountOf } from '../model/workloads.js';
import { formatPath, validateResource } from '../api/validation.js';
import { COMPONENTS, type ComponentContext, type ComponentSpec, type HealthCheck } from './components.js';
import { resolvConf, serviceFqdn, type DnsRecords } from './dns.js';
import { collectGarbage } from './garbage-collector.js';
import { AddressPool, AddressPoolExhausted } from './ipam.js';
import { InvalidObjectError } from '../api/errors.js';
import type { ApiServer } from '../apiserver/server.js';
import { startKubeApi } from './kube-api.js';
import { COMPONENT_ANNOTATION, componentObjects, isComponentObject, nodeObject, type ComponentPlacement } from './component-objects.js';
import { type ResourceType, findModelType, modelType, parseApiVersion, qualifiedKindName, qualifiedResource, typeOf } from '../api/kinds.js';
import {
  CLUSTER_DNS_IP,
  FABRIC_GATEWAY_IP,
  POD_ADDRESSES_PER_NODE,
  SERVICE_CIDR,
  StateLayout,
  nodeIP,
  nodeName,
  podCIDR,
  podGatewayIP,
} from './layout.js';
import { killProcessesInNetns, Ledger } from './ledger.js';
import { applyServiceRules, createFabric, createNode, createPodNetwork, removePodNetwork, type ServiceRule } from './network.js';
import { previousLogPath, SupervisedProcess, type ProcessState } from './process.js';
import { call } from '../common/rpc.js';
import {
  ContainerConfigError,
  POD_ROOT_CERT_DIR,
  containerSecurity,
  idMaps,
  podPath,
  sandboxArgv,
  type ContainerSandbox,
  type PodSandbox,
  type SandboxMount,
} from './sandbox.js';
import { inNetns, removeNetns, run, CommandError } from './sys.js';
import type { ProbeRequest, ProbeResult } from './node-agent.js';
import { ResourceStore, isModelObject, type ChangeListener, type KubeObject } from '../apiserver/store.js';
import {
  DEFAULT_TOKEN_EXPIRATION_SECONDS,
  MAX_TOKEN_EXPIRATION_SECONDS,
  MIN_TOKEN_EXPIRATION_SECONDS,
  ProjectedTokenWriter,
  ServiceAccountIssuer,
  type ProjectedToken,
} from './tokens.js';
import { ZdsServer } from './zds.js';
import { kubeTime } from '../common/time.js';

const ADMIN_GET_SCRIPT = fileURLToPath(new URL('./admin-get.js', import.meta.url));

export interface ClusterOptions {
  name: string;
  stateDir: string;
  nodes: number;
  components?: ComponentSpec[];
  /** PATH the pods' PATH is built from (the supervisor's own by default). */
  basePath?: string;
  log?: (line: string) => void;
}

export interface NodeInfo {
  name: string;
  index: number;
  ip: string;
  podCIDR: string;
  netnsPath: string;
  agentSocket: string;
  createdAt: string;
}

interface NodeRuntime extends NodeInfo {
  pool: AddressPool;
}

interface ContainerRuntime {
  spec: Container;
  /** The container's mounts, user and capabilities, or why the kubelet cannot start it. */
  sandbox: ContainerSandbox | ContainerConfigError;
  process: SupervisedProcess;
  probeReady: boolean;
  probeSuccesses: number;
  probeFailures: number;
  probeMessage?: string;
  probeTimer?: NodeJS.Timeout;
  probing: boolean;
}

interface PodRuntime {
  key: string;
  uid: string;
  namespace: string;
  name: string;
  node: NodeRuntime;
  ip: string;
  sandbox: PodSandbox;
  dir: string;
  containers: ContainerRuntime[];
  env: Map<string, Record<string, string>>;
  phase: 'Starting' | 'Started' | 'Failed' | 'Terminating';
  /** Capture rules are installed and the node's ztunnel has acknowledged the pod. */
  captured: boolean;
  /** Writes and refreshes the pod's projected service account tokens, when its volumes ask for any. */
  tokens?: ProjectedTokenWriter;
  startError?: string;
  startedAt: string;
}

export interface ComponentStatus {
  name: string;
  node?: string;
  state: ProcessState;
  restarts: number;
  pid?: number;
  healthy: boolean;
  healthMessage?: string;
  logPath: string;
}

interface ComponentRuntime {
  spec: ComponentSpec;
  ctx: ComponentContext;
  node?: NodeRuntime;
  process: SupervisedProcess;
  healthy: boolean;
  healthMessage?: string;
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
const DEFAULT_GRACE_SECONDS = 30;
const HEALTH_INTERVAL_MS = 2000;
/** How long a pod whose sandbox failed to build waits before the next attempt. */
const POD_RETRY_MS = 5000;
/** How long a rolling restart waits for the new process to take over before it gives up (the old one stays). */
const ROLLOUT_READY_TIMEOUT_MS = 60_000;
/** How long a pod that could not be (un)captured live waits before the next attempt. */
const CAPTURE_RETRY_MS = 2000;
/**
 * Pods created (or started) before the reconciler yields to the event loop: a scale-up by hundreds of replicas must
 * not keep the supervisor from answering its socket, health checks and watchers meanwhile.
 */
const POD_BATCH = 16;

/** Which user and group ids containers may run as: any as real root, only root in a rootless cluster. */
const ID_MAPS = idMaps();

/** Kinds applied first within one batch, so objects can refer to what the same batch creates. */
const APPLY_ORDER: Kind[] = ['Namespace', 'ServiceAccount', 'Service'];

export class LocalCluster {
  readonly store = new ResourceStore();
  readonly layout: StateLayout;
  readonly ledger: Ledger;
  readonly nodes: NodeRuntime[] = [];
  readonly fabricNetns: string;
  private readonly pods = new Map<string, PodRuntime>();
  private readonly components: ComponentRuntime[] = [];
  private readonly servicePool = new AddressPool(SERVICE_CIDR, [CLUSTER_DNS_IP, '10.96.0.1']);
  private reconciling: Promise<void> | undefined;
  private dirty = false;
  private syncTimer: NodeJS.Timeout | undefined;
  private syncing: Promise<void> = Promise.resolve();
  private healthTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly log: (line: string) => void;
  /** The CNI agent's ZDS server of each node, by node name. */
  private readonly zds = new Map<string, ZdsServer>();
  private captureTimer: NodeJS.Timeout | undefined;
  private capturing: Promise<void> = Promise.resolve();
  private tokenIssuer: ServiceAccountIssuer | undefined;
  private kubeApi: ApiServer | undefined;
  /** The uids of the istio-system pods standing for components (see publishComponentObjects). */
  private readonly componentPodUids = new Set<string>();

  constructor(readonly options: ClusterOptions) {
    this.layout = new StateLayout(options.stateDir);
    this.ledger = new Ledger(this.layout.ledger);
    this.fabricNetns = this.layout.fabricNetns;
    this.log = options.log ?? ((line) => process.stdout.write(`${new Date().toISOString()} ${line}\n`));
    this.store.onChange((e) => {
      if (e.resource.kind === 'Pod' || e.resource.kind === 'Service') this.scheduleSync();
      // (Un)labelling a namespace or pod captures or releases running pods, without restarting them.
      if (e.resource.kind === 'Pod' || e.resource.kind === 'Namespace') this.scheduleCaptureSync(0);
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
    for (const spec of this.options.components ?? COMPONENTS) this.startComponent(spec);
    // Only the node agents gate the start: ztunnels need the control plane, which needs its first sync of the API.
    // `waitReady` (ambit up) covers the rest.
    await this.waitComponentsHealthy(30_000, (c) => c.spec === this.nodeAgentSpec);
    this.healthTimer = setInterval(() => void this.checkComponents(), HEALTH_INTERVAL_MS);
    for (const ns of BUILTIN_NAMESPACES) {
      this.store.put(this.admit({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } }), true);
      this.store.put({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'default', namespace: ns } });
    }
    this.publishComponentObjects();
    this.log(`cluster ${this.options.name} is up`);
  }

  /** Stops every pod and component and removes every namespace; the state directory stays for the caller. */
  async shutdown(): Promise<void> {
    this.stopped = true;
    clearInterval(this.healthTimer);
    clearTimeout(this.syncTimer);
    clearTimeout(this.retryTimer);
    clearTimeout(this.captureTimer);
    await this.reconciling?.catch(() => undefined);
    await this.capturing;
    await this.kubeApi?.close();
    await Promise.all([...this.pods.values()].map((p) => this.stopPod(p, 5)));
    await Promise.all(this.components.map((c) => c.process.stop(3000)));
    for (const zds of this.zds.values()) zds.close();
    for (const node of this.nodes) await removeNetns(node.netnsPath).then(() => this.ledger.netnsRemoved(node.netnsPath));
    await removeNetns(this.fabricNetns).then(() => this.ledger.netnsRemoved(this.fabricNetns));
  }

  // ---- the mesh: control plane credentials, capture, ZDS ------------------------------------------------------------

  /**
   * What the control plane and the ztunnels need before they start: one random token per node (the control plane
   * maps tokens to nodes, so a ztunnel only gets certificates for its own node's pods), the mesh root the ztunnels
   * verify the control plane and their peers with, and each node's ZDS socket.
   */
  private async prepareMesh(): Promise<void> {
    const { layout } = this;
    mkdirSync(layout.controlPlaneDir, { recursive: true, mode: 0o700 });
    const tokens: Record<string, string> = {};
    for (const node of this.nodes) {
      const token = randomBytes(32).toString('base64url');
      tokens[token] = node.name;
      writeFileSync(layout.nodeToken(node.name), token + '\n', { mode: 0o600 });
    }
    writeFileSync(layout.nodeTokens, JSON.stringify(tokens, null, 2) + '\n', { mode: 0o600 });
    this.tokenIssuer = await ServiceAccountIssuer.load(layout.serviceAccountKey, layout.serviceAccountJwks);
    // The control plane would create its root on first start too; creating it here means the ztunnels can be
    // given the file from the start. The control plane loads the same files.
    await MeshCa.load({ trustDomain: DEFAULT_TRUST_DOMAIN, stateDir: layout.controlPlaneDir });
    for (const node of this.nodes) {
      const server = new ZdsServer(layout.zdsSocket(node.name), node.name, this.log);
      await server.start();
      this.zds.set(node.name, server);
    }
  }

  /** Istio's CNI selection: the pod or its namespace labelled `istio.io/dataplane-mode=ambient`, the pod not `none`. */
  private wantsCapture(rt: PodRuntime): boolean {
    const pod = this.store.get('Pod', rt.namespace, rt.name);
    if (!pod || pod.metadata.uid !== rt.uid) return false;
    // The redirection annotation is what capturing writes, not a reason to capture.
    const { [REDIRECTION_ANNOTATION]: _written, ...annotations } = pod.metadata.annotations ?? {};
    return podWantsCapture({ ...pod, metadata: { ...pod.metadata, annotations } }, this.store.get('Namespace', undefined, rt.namespace));
  }

  /** Istio's CNI marks a pod it captured with `ambient.istio.io/redirection: enabled` (istiod reads it) and removes it on release. */
  private markRedirection(rt: PodRuntime, enabled: boolean): void {
    const pod = this.store.get('Pod', rt.namespace, rt.name);
    if (!pod || pod.metadata.uid !== rt.uid || (pod.metadata.annotations?.[REDIRECTION_ANNOTATION] === 'enabled') === enabled) return;
    const { [REDIRECTION_ANNOTATION]: _old, ...others } = pod.metadata.annotations ?? {};
    const annotations = enabled ? { ...others, [REDIRECTION_ANNOTATION]: 'enabled' } : others;
    this.store.put({ ...pod, metadata: { ...pod.metadata, annotations } }, true);
  }

  /** Installs the capture rules, then hands the pod to its node's ztunnel; rules come off again if ztunnel refuses. */
  private async capturePod(rt: PodRuntime, connectWaitMs?: number): Promise<void> {
    await installCapture(rt.sandbox.netnsPath);
    const pod = this.store.get('Pod', rt.namespace, rt.name);
    try {
      await this.zds.get(rt.node.name)!.add({
        uid: rt.uid,
        workloadInfo: { name: rt.name, namespace: rt.namespace, serviceAccount: serviceAccountOf(pod?.spec) },
        netns: rt.sandbox.netnsPath,
      }, connectWaitMs);
    } catch (err) {
      await removeCapture(rt.sandbox.netnsPath).catch(() => undefined);
      throw err;
    }
    rt.captured = true;
    this.markRedirection(rt, true);
    this.log(`pod ${rt.namespace}/${rt.name}: captured, handed to ztunnel on ${rt.node.name}`);
  }

  /** Takes the pod from ztunnel first, then removes the rules (the CNI agent's order). */
  private async releasePod(rt: PodRuntime): Promise<void> {
    await this.zds.get(rt.node.name)!.del(rt.uid);
    rt.captured = false;
    this.markRedirection(rt, false);
    if (existsSync(rt.sandbox.netnsPath)) await removeCapture(rt.sandbox.netnsPath);
    this.log(`pod ${rt.namespace}/${rt.name}: released from capture`);
  }

  private scheduleCaptureSync(delayMs: number): void {
    if (this.captureTimer || this.stopped) return;
    this.captureTimer = setTimeout(() => {
      this.captureTimer = undefined;
      this.capturing = this.capturing.then(() => this.syncCapture());
    }, delayMs);
  }

  /** Brings every running pod's capture in line with the labels; failures are retried. */
  private async syncCapture(): Promise<void> {
    let failed = false;
    await Promise.all(
      [...this.pods.values()].map(async (rt) => {
        if (rt.phase !== 'Started') return;
        const want = this.wantsCapture(rt);
        if (want === rt.captured) return;
        try {
          // Live changes do not wait for a missing ztunnel: the retry (and its snapshot on reconnect) covers it.
          if (want) await this.capturePod(rt, 0);
          else await this.releasePod(rt);
        } catch (err) {
          failed = true;
          this.log(`pod ${rt.namespace}/${rt.name}: ${want ? 'capture' : 'release'} failed, will retry: ${(err as Error).message}`);
        }
        // Deleted while it was being captured: stopPod may have run before the add landed.
        if ((rt.phase as PodRuntime['phase']) === 'Terminating' && rt.captured) await this.releasePod(rt).catch(() => undefined);
      }),
    );
    if (failed) this.scheduleCaptureSync(CAPTURE_RETRY_MS);
  }

  // ---- components --------------------------------------------------------------------------------------------------

  private componentContext(node?: NodeRuntime): ComponentContext {
    return {
      cluster: this.options.name,
      stateDir: this.options.stateDir,
      fabricIP: FABRIC_GATEWAY_IP,
      clusterDnsIP: CLUSTER_DNS_IP,
      ...(node
        ? { node: { name: node.name, index: node.index, ip: node.ip, podCIDR: node.podCIDR, netnsPath: node.netnsPath, agentSocket: node.agentSocket } }
        : {}),
    };
  }

  private get nodeAgentSpec(): ComponentSpec | undefined {
    return this.components.find((c) => c.spec.name === 'node-agent')?.spec;
  }

  private startComponent(spec: ComponentSpec): void {
    const placements: (NodeRuntime | undefined)[] = spec.scope === 'node' ? this.nodes : [undefined];
    for (const node of placements) {
      const runtime = { spec, ctx: this.componentContext(node), node, healthy: false } as ComponentRuntime;
      runtime.process = this.componentProcess(runtime);
      this.components.push(runtime);
      runtime.process.start();
    }
  }

  /** A (not yet started) process for a component's placement. */
  private componentProcess(runtime: ComponentRuntime): SupervisedProcess {
    const { spec, ctx, node } = runtime;
    const netns = node ? node.netnsPath : this.fabricNetns;
    const description = node ? `component ${spec.name} on ${node.name}` : `component ${spec.name}`;
    const env = { PATH: podPath(this.options.basePath ?? process.env.PATH), AMBIT_SUPERVISOR_SOCKET: this.layout.socket, ...(spec.env?.(ctx) ?? {}) };
    const proc: SupervisedProcess = new SupervisedProcess(
      {
        description,
        argv: ['nsenter', `--net=${netns}`, '--', ...spec.argv(ctx)],
        env,
        logPath: this.layout.componentLog(spec.name, node?.name),
        restartPolicy: 'Always',
      },
      this.ledger,
      () => {
        // A (re)started component is unhealthy until its check passes; that transition also re-sends its state.
        if (proc === runtime.process && proc.state.state === 'running') runtime.healthy = false;
      },
    );
    return proc;
  }

  /**
   * `ambit rollout restart`: replaces a component's processes one placement at a time, as `kubectl rollout restart`
   * does for a DaemonSet or Deployment. A `zds-surge` component (ztunnel) is replaced without a gap: the new process
   * starts first and the old one gets SIGTERM once the new one holds every pod of the node; others are stopped, then
   * started. Resolves with one line per replaced process.
   */
  async rolloutRestart(name: string, node?: string): Promise<string[]> {
    const matches = this.components.filter((c) => c.spec.name === name);
    if (matches.length === 0) throw new Error(`component "${name}" not found; components: ${[...new Set(this.components.map((c) => c.spec.name))].join(', ')}`);
    const targets = node === undefined ? matches : matches.filter((c) => c.node?.name === node);
    if (targets.length === 0) throw new Error(`component "${name}" does not run on node "${node}"`);
    const lines: string[] = [];
    for (const c of targets) {
      const where = c.node ? `${c.spec.name} on ${c.node.name}` : c.spec.name;
      const old = c.process;
      const oldPid = old.pid;
      await this.replaceComponent(c);
      const end = old.lastTermination;
      const exit = end ? (end.signal ? `killed by ${end.signal}` : `exit code ${end.exitCode}`) : 'not running';
      lines.push(`${where} restarted (pid ${oldPid ?? '-'} -> ${c.process.pid ?? '-'}; old process: ${exit})`);
      this.log(`rollout: ${lines[lines.length - 1]}`);
    }
    return lines;
  }

  private async replaceComponent(c: ComponentRuntime): Promise<void> {
    const graceMs = (c.spec.terminationGracePeriodSeconds ?? DEFAULT_GRACE_SECONDS) * 1000;
    const old = c.process;
    if (c.spec.rollout !== 'zds-surge' || !c.node) {
      await old.stop(graceMs);
      old.start();
      return;
    }
    const zds = this.zds.get(c.node.name)!;
    const seen = zds.connectionCount;
    const next = this.componentProcess(c);
    next.start();
    try {
      await zds.waitForSnapshot(seen, ROLLOUT_READY_TIMEOUT_MS);
    } catch (err) {
      await next.stop(graceMs);
      throw new Error(`rollout of ${c.spec.name} on ${c.node.name} stopped, the old process keeps serving: ${(err as Error).message} (log: ${next.spec.logPath})`);
    }
    c.process = next;
    c.healthy = false;
    await old.stop(graceMs);
  }

  private async waitComponentsHealthy(timeoutMs: number, which: (c: ComponentRuntime) => boolean): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      await this.checkComponents();
      const sick = this.components.filter((c) => which(c) && !c.healthy);
      if (sick.length === 0) return;
      if (Date.now() > deadline) {
        throw new Error(
          `components not healthy after ${timeoutMs / 1000}s: ` +
            sick.map((c) => `${c.process.spec.description} (${c.healthMessage ?? 'no answer'}; log: ${c.process.spec.logPath})`).join(', '),
        );
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  private async checkComponents(): Promise<void> {
    await Promise.all(
      this.components.map(async (c) => {
        if (c.process.state.state !== 'running') {
          c.healthy = false;
          c.healthMessage = c.process.state.state === 'waiting' ? c.process.state.message ?? c.process.state.reason : 'exited';
          return;
        }
        const check = c.spec.health?.(c.ctx);
        const result: ProbeResult = check ? await this.runHealthCheck(check, c.node ?? this.nodes[0]!) : { ok: true };
        if (result.ok && !c.healthy && c.spec === this.nodeAgentSpec && this.lastDns) {
          // A restarted node agent starts with no DNS records: push them again.
          this.lastDns = undefined;
          this.scheduleSync();
        }
        c.healthy = result.ok;
        c.healthMessage = result.message;
      }),
    );
    this.publishComponentObjects();
  }

  /** Nodes, and the istio-system pods and DaemonSet standing for the components, as they are now (see component-objects.ts). */
  private publishComponentObjects(): void {
    if (this.stopped) return;
    const agentHealthy = (node: string) => this.components.filter((c) => c.spec === this.nodeAgentSpec && c.node?.name === node).every((c) => c.healthy);
    for (const n of this.nodes) this.store.put(nodeObject({ name: n.name, ip: n.ip, podCIDR: n.podCIDR, createdAt: n.createdAt, ready: agentHealthy(n.name) }), true);
    const placements: ComponentPlacement[] = this.components
      .filter((c) => c.spec.name === 'ztunnel' || c.spec.name === 'controlplane')
      .map((c) => ({
        component: c.spec.name,
        ...(c.node ? { node: c.node.name } : {}),
        ip: c.node?.ip ?? FABRIC_GATEWAY_IP,
        healthy: c.healthy,
        restarts: c.process.restarts,
        ...(c.process.state.state === 'running' ? { startedAt: kubeTime(Date.parse(c.process.state.startedAt)) } : {}),
      }));
    if (placements.length === 0) return;
    const daemonSetUid = this.store.getObject('apps', 'DaemonSet', ROOT_NAMESPACE, 'ztunnel')?.metadata.uid;
    for (const o of componentObjects(placements, this.nodes.length, daemonSetUid)) {
      this.store.put(o, true);
      if (o.kind === 'Pod') this.componentPodUids.add(this.store.getObject('', 'Pod', o.metadata.namespace, o.metadata.name)!.metadata.uid!);
    }
    // The DaemonSet is new: its pods get their owner reference on this second pass.
    if (!daemonSetUid) this.publishComponentObjects();
  }

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
    return this.tokenIssuer.review(token, audiences, (ns, name) => this.store.get('Pod', ns, name)?.metadata.uid);
  }

  /** Where a component pod's process runs and logs (`kubectl exec`/`logs` on istio-system's pods). */
  componentPod(pod: { metadata: { annotations?: Record<string, string> }; spec?: unknown }): { netnsPath: string; logPath: string } | undefined {
    const name = pod.metadata.annotations?.[COMPONENT_ANNOTATION];
    // Only the pods the cluster published stand for a component: a user's pod with the annotation gets no way into a
    // node's namespace.
    if (!name || !this.componentPodUids.has((pod.metadata as { uid?: string }).uid ?? '')) return undefined;
    const nodeName = (pod.spec as { nodeName?: string } | undefined)?.nodeName;
    const c = this.components.find((x) => x.spec.name === name && (x.spec.scope === 'cluster' || x.node?.name === nodeName));
    if (!c) return undefined;
    return { netnsPath: c.node?.netnsPath ?? this.fabricNetns, logPath: c.process.spec.logPath };
  }

  private async runHealthCheck(check: HealthCheck, via: NodeRuntime): Promise<ProbeResult> {
    if (check.kind === 'unixHttp') {
      try {
        await call(check.socket, 'GET', check.path, undefined, { timeoutMs: 2000 });
        return { ok: true };
      } catch (err) {
        return { ok: false, message: (err as Error).message };
      }
    }
    return this.agentProbe(via, { kind: check.kind, host: check.host, port: check.port, path: 'path' in check ? check.path : undefined, timeoutMs: 2000 });
  }

  private async agentProbe(node: NodeRuntime, req: ProbeRequest): Promise<ProbeResult> {
    try {
      return await call<ProbeResult>(node.agentSocket, 'POST', '/probe', req, { timeoutMs: req.timeoutMs + 2000 });
    } catch (err) {
      return { ok: false, message: `node agent on ${node.name} did not run the probe: ${(err as Error).message}` };
    }
  }

  componentStatus(): ComponentStatus[] {
    return this.components.map((c) => ({
      name: c.spec.name,
      ...(c.node ? { node: c.node.name } : {}),
      state: c.process.state,
      restarts: c.process.restarts,
      ...(c.process.pid ? { pid: c.process.pid } : {}),
      healthy: c.healthy,
      ...(c.healthMessage ? { healthMessage: c.healthMessage } : {}),
      logPath: c.process.spec.logPath,
    }));
  }

  /** The log file of a component; `node` is needed when it runs on every node. */
  /**
   * GETs `path` from a component's loopback-only admin port inside its namespace (read-only: `ambit
   * ztunnel-config`, `proxy-status`). A per-node component answers once per node, or for the one node named.
   */
  async componentAdminGet(name: string, port: number, path: string, node?: string): Promise<{ node?: string; status: number; body: string; error?: string }[]> {
    const matches = this.components.filter((c) => c.spec.name === name && (node === undefined || c.node?.name === node));
    if (matches.length === 0) {
      if (!this.components.some((c) => c.spec.name === name)) throw new Error(`no component "${name}"; components: ${[...new Set(this.components.map((c) => c.spec.name))].join(', ')}`);
      throw new Error(`node "${node}" not found; nodes: ${this.nodes.map((n) => n.name).join(', ')}`);
    }
    return Promise.all(
      matches.map(async (c) => {
        const where = c.node ? { node: c.node.name } : {};
        try {
          const out = await run(inNetns(c.node?.netnsPath ?? this.fabricNetns, [process.execPath, ADMIN_GET_SCRIPT, String(port), path]), { timeoutMs: 15_000 });
          return { ...where, ...(JSON.parse(out) as { status: number; body: string }) };
        } catch (err) {
          return { ...where, status: 0, body: '', error: err instanceof CommandError ? err.stderr.trim() : (err as Error).message };
        }
      }),
    );
  }

  /**
   * The log files of a component: the one instance of a cluster-wide component, the one on `node`, or without a node
   * every node's instance (as `kubectl logs -l app=ztunnel` shows every ztunnel pod), each with its node.
   */
  componentLogs(name: string, node?: string): { path: string; node?: string }[] | undefined {
    const matches = this.components.filter((c) => c.spec.name === name);
    if (matches.length === 0) return undefined;
    if (matches[0]!.spec.scope === 'cluster') return [{ path: matches[0]!.process.spec.logPath }];
    const picked = node ? matches.filter((c) => c.node?.name === node) : matches;
    if (picked.length === 0) throw new Error(`node "${node}" not found; nodes: ${this.nodes.map((n) => n.name).join(', ')}`);
    return picked.map((c) => ({ path: c.process.spec.logPath, node: c.node!.name }));
  }

  nodeInfo(): (NodeInfo & { pods: number })[] {
    return this.nodes.map((node) => {
      const { pool: _pool, ...info } = node;
      return { ...info, pods: [...this.pods.values()].filter((p) => p.node === node).length };
    });
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
          const stored = this.admitOther(r as KubeObject, type);
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

  /** Admission of a kind the mesh does not read: its namespace must exist; CRDs go through the Kubernetes API. */
  private admitOther(input: KubeObject, type: ResourceType): KubeObject {
    if (type.group === 'apiextensions.k8s.io') throw new Error('CustomResourceDefinitions are installed through the Kubernetes API: kubectl apply -f FILE');
    const r = structuredClone(input);
    if (!r.metadata?.name) throw new Error('metadata.name: Required value');
    if (type.namespaced) {
      r.metadata.namespace ??= 'default';
      if (!this.store.get('Namespace', undefined, r.metadata.namespace)) throw new Error(`namespaces "${r.metadata.namespace}" not found`);
    } else delete r.metadata.namespace;
    return r;
  }

  released(r: Resource): void {
    if (r.kind === 'Service' && r.spec.clusterIP && r.spec.clusterIP !== 'None') this.servicePool.release(r.spec.clusterIP);
  }

  /** Checks an object against the cluster and fills in what the cluster assigns (Service cluster IPs). */
  admit(input: Resource): Resource {
    if (!input || typeof input !== 'object' || !typeOf((input as Resource).apiVersion ?? '', (input as Resource).kind)?.model) {
      throw new Error(`the server doesn't have a resource type "${(input as { kind?: string })?.kind}"`);
    }
    const r = structuredClone(input);
    if (!r.metadata?.name) throw new Error('metadata.name: Required value');
    if (isNamespaced(r.kind)) {
      r.metadata.namespace ??= 'default';
      if (!this.store.get('Namespace', undefined, r.metadata.namespace)) throw new Error(`namespaces "${r.metadata.namespace}" not found`);
    } else delete r.metadata.namespace;
    const invalid = (field: string, message: string) => new InvalidObjectError(r.kind, r.metadata.name, [{ field, message }]);
    // What kube-apiserver validates (names, labels, annotation size, replicas): the socket accepts objects from any
    // client, not only from the CLI's loader, which checks the same.
    const errors = validateResource(input).issues.filter((i) => i.severity === 'error').map((i) => ({ field: formatPath(i.path), message: i.message }));
    if (errors.length) throw new InvalidObjectError(r.kind, r.metadata.name, errors);
    if (r.kind === 'Pod' || r.kind === 'Deployment') {
      const spec = r.kind === 'Pod' ? r.spec : r.spec?.template?.spec;
      const field = r.kind === 'Pod' ? 'spec' : 'spec.template.spec';
      if (!spec?.containers?.length) throw invalid(`${field}.containers`, 'Required value');
      spec.containers.forEach((c, i) => {
        if (!c.name) throw invalid(`${field}.containers[${i}].name`, 'Required value');
        if (!c.command?.length) {
          throw invalid(
            `${field}.containers[${i}].command`,
            'Required value: images are not pulled in the local cluster; command must name the program to run on this machine',
          );
        }
      });
      if (r.kind === 'Deployment') {
        const capacity = this.nodes.length * POD_ADDRESSES_PER_NODE;
        if ((r.spec.replicas ?? 1) > capacity) {
          throw invalid(
            'spec.replicas',
            `Invalid value: ${r.spec.replicas}: must be less than or equal to ${capacity}, the pod addresses of this cluster's ${this.nodes.length} node(s)`,
          );
        }
        const labels = r.spec.template.metadata?.labels ?? {};
        const want = r.spec.selector?.matchLabels ?? {};
        if (Object.keys(want).length === 0) throw invalid('spec.selector', 'Required value');
        if (!Object.entries(want).every(([k, v]) => labels[k] === v)) {
          throw invalid('spec.template.metadata.labels', "Invalid value: `selector` does not match template `labels`");
        }
      }
      checkVolumes(spec, field, invalid);
      if (r.kind === 'Pod' && spec.nodeName && !this.nodes.some((n) => n.name === spec.nodeName)) {
        throw invalid('spec.nodeName', `Invalid value: "${spec.nodeName}": no such node (nodes: ${this.nodes.map((n) => n.name).join(', ')})`);
      }
    }
    if (r.kind === 'Service') this.assignClusterIP(r, invalid);
    // The namespace lifecycle controller's part: a namespace is Active until it is deleted.
    if (r.kind === 'Namespace') (r as Resource & { status?: unknown }).status = { phase: 'Active' };
    return r;
  }

  private assignClusterIP(svc: Service, invalid: (field: string, message: string) => Error): void {
    const old = this.store.get('Service', svc.metadata.namespace, svc.metadata.name);
    const oldIP = old?.spec.clusterIP;
    const want = svc.spec.clusterIP;
    if (svc.spec.type && svc.spec.type !== 'ClusterIP') {
      throw invalid('spec.type', `Unsupported value: "${svc.spec.type}": supported values: "ClusterIP"`);
    }
    if (oldIP && want && want !== oldIP) throw invalid('spec.clusterIP', `Invalid value: "${want}": field is immutable`);
    if (oldIP) {
      svc.spec.clusterIP = oldIP;
    } else if (want === 'None') {
      // Headless: DNS returns the pods' addresses, no VIP.
    } else if (want) {
      if (!this.servicePool.contains(want)) {
        throw invalid('spec.clusterIP', `Invalid value: "${want}": provided IP is not in the valid range. The range of valid IPs is ${SERVICE_CIDR}`);
      }
      if (!this.servicePool.claim(want)) throw invalid('spec.clusterIP', `Invalid value: "${want}": provided IP is already allocated`);
    } else {
      svc.spec.clusterIP = this.servicePool.allocate();
    }
    svc.spec.clusterIPs = [svc.spec.clusterIP!];
    svc.spec.type = 'ClusterIP';
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
    this.garbageCollectOwned();
    for (const d of this.store.list('Deployment')) await this.reconcileDeployment(d);
    this.garbageCollectOrphans();
    // Pods standing for the cluster's components are not the kubelet's to run.
    const wanted = new Map(this.store.list('Pod').filter((p) => !isComponentObject(p)).map((p) => [resourceKey(p), p]));
    const stops: Promise<void>[] = [];
    for (const [key, rt] of this.pods) {
      const pod = wanted.get(key);
      if (!pod || pod.metadata.uid !== rt.uid) stops.push(this.stopPod(rt, pod ? 0 : undefined));
      else if (rt.phase === 'Failed' && Date.now() - Date.parse(rt.startedAt) > POD_RETRY_MS) {
        // The sandbox could not be built: tear down what exists and build it again on this pass.
        stops.push(this.stopPod(rt, 0));
      }
    }
    await Promise.all(stops);
    const starts: Promise<void>[] = [];
    for (const pod of wanted.values()) {
      if (this.pods.has(resourceKey(pod))) continue;
      // Deleted (or replaced) while an earlier batch yielded: starting it would put it back.
      if (this.store.get('Pod', pod.metadata.namespace, pod.metadata.name)?.metadata.uid !== pod.metadata.uid || this.stopped) continue;
      starts.push(this.startPod(pod));
      if (starts.length % POD_BATCH === 0) await setImmediate();
    }
    await Promise.all(starts);
    this.updateDeploymentStatus();
  }

  private async reconcileDeployment(d: Deployment): Promise<void> {
    const ns = d.metadata.namespace!;
    const hash = templateHash(d.spec.template);
    const replicas = d.spec.replicas ?? 1;
    const owned = this.store.list('Pod', ns).filter((p) => ownerDeployment(p) === d.metadata.name);
    const current = owned.filter((p) => p.metadata.labels?.['pod-template-hash'] === hash);
    const old = owned.filter((p) => p.metadata.labels?.['pod-template-hash'] !== hash);
    for (let n = current.length; n < replicas; n++) {
      this.store.put(this.podFromTemplate(d, hash), true);
      if ((n - current.length + 1) % POD_BATCH !== 0) continue;
      await setImmediate();
      // Changed or deleted meanwhile: the next pass (the change marked the reconciler dirty) works from the new spec.
      const now = this.store.get('Deployment', ns, d.metadata.name);
      if (this.stopped || now === undefined || now.metadata.uid !== d.metadata.uid || now.metadata.generation !== d.metadata.generation) return;
    }
    // Scale down newest first.
    const surplus = current.sort((a, b) => (b.metadata.creationTimestamp ?? '').localeCompare(a.metadata.creationTimestamp ?? '')).slice(0, Math.max(0, current.length - replicas));
    for (const p of surplus) this.store.remove('Pod', ns, p.metadata.name);
    // Rolling replacement (maxSurge 1, maxUnavailable 0 for one replica): old pods go once every new replica is
    // ready, so the Service never runs dry. The pods created above count, not yet ready.
    const readyNew = current.filter((p) => isPodReady(p)).length;
    if (old.length && readyNew >= replicas) for (const p of old) this.store.remove('Pod', ns, p.metadata.name);
  }

  private podFromTemplate(d: Deployment, hash: string): Pod {
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

  /**
   * Kubernetes' garbage collector (garbage-collector.ts): objects all of whose owners are gone go too — a waypoint's
   * Deployment, Service and ServiceAccount when its Gateway is deleted.
   */
  private garbageCollectOwned(): void {
    const { deleted, trimmed } = collectGarbage(this.store);
    const name = (r: Resource) => `${qualifiedKindName(modelType(r.kind))} ${r.metadata.namespace ? `${r.metadata.namespace}/` : ''}${r.metadata.name}`;
    const owners = (refs: { kind: string; name: string }[]) => refs.map((ref) => `${ref.kind} ${ref.name}`).join(', ');
    for (const r of deleted) {
      this.released(r);
      this.log(`${name(r)} deleted: its owners are gone (${owners(r.metadata.ownerReferences ?? [])})`);
    }
    for (const { resource, gone } of trimmed) this.log(`${name(resource)}: removed the references to its gone owners (${owners(gone)})`);
  }

  /** Pods of a Deployment that no longer exists go with it. */
  private garbageCollectOrphans(): void {
    for (const p of this.store.list('Pod')) {
      const owner = ownerDeployment(p);
      if (owner && !this.store.get('Deployment', p.metadata.namespace, owner)) this.store.remove('Pod', p.metadata.namespace, p.metadata.name);
    }
  }

  private updateDeploymentStatus(): void {
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

  // ---- pods --------------------------------------------------------------------------------------------------------

  private pickNode(pod: Pod): NodeRuntime | undefined {
    if (pod.spec.nodeName) return this.nodes.find((n) => n.name === pod.spec.nodeName);
    // Spread: the node with the fewest pods of the same owner, then the fewest pods overall.
    const owner = ownerDeployment(pod);
    const count = (n: NodeRuntime, sameOwner: boolean) =>
      [...this.pods.values()].filter(
        (p) => p.node === n && (!sameOwner || (owner && p.namespace === pod.metadata.namespace && ownerDeployment(this.store.get('Pod', p.namespace, p.name)) === owner)),
      ).length;
    return [...this.nodes].sort((a, b) => count(a, true) - count(b, true) || count(a, false) - count(b, false) || a.index - b.index)[0];
  }

  private async startPod(pod: Pod): Promise<void> {
    const ns = pod.metadata.namespace!;
    const key = resourceKey(pod);
    const saName = pod.spec.serviceAccountName ?? pod.spec.serviceAccount ?? 'default';
    const serviceAccount = this.store.get('ServiceAccount', ns, saName);
    if (!serviceAccount) {
      this.setPendingStatus(pod, 'FailedCreate', `error looking up service account ${ns}/${saName}: serviceaccount "${saName}" not found`);
      return;
    }
    const node = this.pickNode(pod)!;
    let ip: string;
    try {
      ip = node.pool.allocate();
    } catch (err) {
      if (!(err instanceof AddressPoolExhausted)) throw err;
      // Pods go to the node with the fewest, so when that one is full every node is (kube-scheduler's words).
      this.setPendingStatus(pod, 'Unschedulable', `0/${this.nodes.length} nodes are available: ${this.nodes.length} Too many pods.`);
      return;
    }
    const dir = this.layout.podDir(ns, pod.metadata.name);
    const sandboxDir = this.makeSandboxDir(dir, ns);
    const netnsPath = this.layout.netns(`pod_${ns}_${pod.metadata.name}`);
    const rt: PodRuntime = {
      key,
      uid: pod.metadata.uid!,
      namespace: ns,
      name: pod.metadata.name,
      node,
      ip,
      sandbox: { netnsPath, dir: sandboxDir, masked: [this.layout.dir], hostname: (pod.spec.hostname ?? pod.metadata.name).slice(0, 63) },
      dir,
      containers: [],
      env: new Map(),
      phase: 'Starting',
      captured: false,
      startedAt: new Date().toISOString(),
    };
    this.pods.set(key, rt);
    // The pod is scheduled and has its address before the network exists, as with a CNI: report that much now.
    const scheduled = { ...pod, spec: { ...pod.spec, nodeName: node.name, serviceAccountName: saName } };
    this.store.put(scheduled as Pod, true);
    this.publishPodStatus(rt);
    try {
      await createPodNetwork(netnsPath, node.netnsPath, this.ledger, node.index, ip);
    } catch (err) {
      rt.phase = 'Failed';
      rt.startError = `failed to set up the pod network: ${(err as Error).message}`;
      this.log(`pod ${ns}/${pod.metadata.name}: ${rt.startError}`);
      this.publishPodStatus(rt);
      setTimeout(() => void this.reconcile(), POD_RETRY_MS + 100);
      return;
    }
    if (rt.phase !== 'Starting') return; // Deleted while the network was being built.
    if (this.wantsCapture(rt)) {
      // Like Istio's CNI plugin, which fails sandbox creation until ztunnel has the pod: the app never runs with
      // rules that send its traffic to a proxy that is not there.
      try {
        await this.capturePod(rt);
      } catch (err) {
        rt.phase = 'Failed';
        rt.startError = `failed to add the pod to the mesh: ${(err as Error).message}`;
        this.log(`pod ${ns}/${pod.metadata.name}: ${rt.startError}`);
        this.publishPodStatus(rt);
        setTimeout(() => void this.reconcile(), POD_RETRY_MS + 100);
        return;
      }
      if (rt.phase !== 'Starting') return;
    }
    const current = this.store.get('Pod', ns, pod.metadata.name) ?? (scheduled as Pod);
    const sandboxes = new Map(pod.spec.containers.map((c) => [c.name, this.containerSandbox(rt, pod.spec, c)]));
    // As the kubelet does for projected tokens: owned by the pod's user (0600) when all its containers run as the same
    // one, else root's and readable by all (0644).
    const users = new Set([...sandboxes.values()].map((cs) => (cs instanceof ContainerConfigError ? undefined : cs.security.runAsUser)));
    const [user] = users;
    const owner = users.size === 1 && user !== undefined ? user : undefined;
    const tokens = this.projectedTokens(rt, pod.spec, owner);
    if (tokens.length && this.tokenIssuer) {
      const subject = { namespace: ns, serviceAccount: saName, serviceAccountUid: serviceAccount.metadata.uid, pod: { name: rt.name, uid: rt.uid }, node: node.name };
      rt.tokens = new ProjectedTokenWriter(this.tokenIssuer, subject, tokens, (line) => this.log(`pod ${ns}/${pod.metadata.name}: ${line}`));
      try {
        await rt.tokens.start();
      } catch (err) {
        // The container still starts; what needs the token (a waypoint) reports its absence, and the write is retried.
        this.log(`pod ${ns}/${pod.metadata.name}: cannot write its service account token: ${(err as Error).message}`);
      }
      if (rt.phase !== 'Starting') return;
    }
    for (const c of pod.spec.containers) {
      const env = this.containerEnv(current, c, ip, node);
      rt.env.set(c.name, env);
      const sandbox = sandboxes.get(c.name)!;
      const proc = new SupervisedProcess(
        {
          description: `pod ${ns}/${pod.metadata.name} container ${c.name}`,
          argv: sandbox instanceof ContainerConfigError ? [] : sandboxArgv(rt.sandbox, sandbox, [...c.command!, ...(c.args ?? [])]),
          env,
          // The sandbox enters workingDir once it is built, in the pod's view of the machine.
          cwd: '/',
          logPath: this.containerLogPath(rt, c.name),
          keepPreviousLog: true,
          restartPolicy: pod.spec.restartPolicy ?? 'Always',
        },
        this.ledger,
        () => this.onContainerState(rt, cr),
      );
      if (sandbox instanceof ContainerConfigError) {
        // Never started, as the kubelet leaves it: Waiting with the reason and the error, retried only by a new pod.
        proc.state = { state: 'waiting', reason: sandbox.reason, message: sandbox.message };
        this.log(`pod ${ns}/${pod.metadata.name}: container ${c.name}: Error: ${sandbox.message}`);
      }
      const cr: ContainerRuntime = {
        spec: c,
        sandbox,
        process: proc,
        probeReady: !c.readinessProbe,
        probeSuccesses: 0,
        probeFailures: 0,
        probing: false,
      };
      rt.containers.push(cr);
    }
    rt.phase = 'Started';
    for (const cr of rt.containers) if (!(cr.sandbox instanceof ContainerConfigError)) cr.process.start();
    this.log(`pod ${ns}/${pod.metadata.name} started on ${node.name} with IP ${ip}`);
    this.publishPodStatus(rt);
  }

  private containerLogPath(rt: PodRuntime, container: string): string {
    return `${rt.dir}/${container}.log`;
  }

  private appendPodLog(rt: PodRuntime, container: string, text: string): void {
    try {
      writeFileSync(this.containerLogPath(rt, container), text, { flag: 'a' });
    } catch {
      // Pod directory already removed.
    }
  }

  /** Where a file of a pod's volume lives on this machine, as the kubelet keeps it under the pod's directory. */
  private volumeFile(rt: PodRuntime, volume: string, path: string): string {
    return `${rt.sandbox.dir}/volumes/${volume}/${path}`;
  }

  /**
   * The pod's projected service account tokens, as the kubelet requests them: audience and expirationSeconds from the
   * source, defaulting to the API server's own audience (its issuer, as kube-apiserver's --api-audiences) and an hour.
   */
  private projectedTokens(rt: PodRuntime, spec: PodSpec, owner: number | undefined): ProjectedToken[] {
    return (spec.volumes ?? []).flatMap((v) =>
      (v.projected?.sources ?? []).flatMap(({ serviceAccountToken: t }) =>
        t
          ? [{
              file: this.volumeFile(rt, v.name, t.path),
              // An empty audience is unset, as in Kubernetes.
              request: { audiences: [t.audience || KUBERNETES_TOKEN_ISSUER], expirationSeconds: t.expirationSeconds ?? DEFAULT_TOKEN_EXPIRATION_SECONDS },
              ...(owner !== undefined ? { owner } : {}),
            }]
          : [],
      ),
    );
  }

  /**
   * The pod's sandbox directory (what its containers see of the machine beyond the host's files): its resolv.conf, a
   * /tmp shared by its containers, its volumes and the mesh root certificate, as Istio's istio-ca-root-cert ConfigMap
   * gives it to every namespace.
   */
  private makeSandboxDir(podDir: string, namespace: string): string {
    const dir = `${podDir}/sandbox`;
    mkdirSync(`${dir}/tmp`, { recursive: true });
    chmodSync(`${dir}/tmp`, 0o1777);
    mkdirSync(`${dir}/run`, { recursive: true });
    mkdirSync(`${dir}/volumes`, { recursive: true });
    writeFileSync(`${dir}/resolv.conf`, resolvConf(namespace, CLUSTER_DNS_IP));
    mkdirSync(`${dir}/istio-ca-root-cert`, { recursive: true });
    if (existsSync(this.layout.rootCert)) copyFileSync(this.layout.rootCert, `${dir}/istio-ca-root-cert/root-cert.pem`);
    return dir;
  }

  /**
   * A container's mounts (its projected token and emptyDir volumes, and the mesh root certificate unless it mounts
   * something there itself), user and capabilities; or the error the kubelet would report instead of starting it.
   */
  private containerSandbox(rt: PodRuntime, spec: PodSpec, c: Container): ContainerSandbox | ContainerConfigError {
    const mounts: SandboxMount[] = [];
    for (const m of c.volumeMounts ?? []) {
      const volume = spec.volumes?.find((v) => v.name === m.name);
      if (!volume) return new ContainerConfigError(`cannot find volume "${m.name}" to mount into container "${c.name}"`);
      if (!volume.projected && !volume.emptyDir) {
        this.appendPodLog(rt, c.name, `ambit: volume ${m.name} is not mounted: the local cluster mounts projected service account tokens and emptyDir volumes only\n`);
        continue;
      }
      const target = posix.normalize(m.mountPath);
      if (!/^\/(tmp|run|var\/run)(\/|$)/.test(target) && !existsSync(target)) {
        return new ContainerConfigError(
          `mountPath ${target} of volume "${m.name}" does not exist on this machine: the local cluster mounts volumes on existing directories, or anywhere under /tmp, /run and /var/run`,
        );
      }
      const source = `volumes/${m.name}`;
      mkdirSync(`${rt.sandbox.dir}/${source}`, { recursive: true });
      // Kubernetes' modes: emptyDir is world-writable; a projected volume's directory is readable, its files are not.
      chmodSync(`${rt.sandbox.dir}/${source}`, volume.emptyDir ? 0o777 : 0o755);
      // Projected volumes are read-only in Kubernetes whatever the mount says.
      mounts.push({ source, target, readOnly: Boolean(volume.projected) || (m.readOnly ?? false) });
    }
    if (!mounts.some((m) => m.target === POD_ROOT_CERT_DIR)) mounts.push({ source: 'istio-ca-root-cert', target: POD_ROOT_CERT_DIR, readOnly: true });
    try {
      const security = containerSecurity({ name: rt.name, namespace: rt.namespace, uid: rt.uid }, spec, c, ID_MAPS);
      return { mounts, security, ...(c.workingDir ? { workingDir: c.workingDir } : {}) };
    } catch (err) {
      if (err instanceof ContainerConfigError) return err;
      throw err;
    }
  }

  private containerEnv(pod: Pod, c: Container, ip: string, node: NodeRuntime): Record<string, string> {
    const env: Record<string, string> = {
      PATH: podPath(this.options.basePath ?? process.env.PATH),
      HOSTNAME: pod.spec.hostname ?? pod.metadata.name,
      HOME: '/root',
    };
    const fields: Record<string, string | undefined> = {
      'metadata.name': pod.metadata.name,
      'metadata.namespace': pod.metadata.namespace,
      'metadata.uid': pod.metadata.uid,
      'status.podIP': ip,
      'status.hostIP': node.ip,
      'spec.nodeName': node.name,
      'spec.serviceAccountName': pod.spec.serviceAccountName ?? 'default',
    };
    for (const e of c.env ?? []) {
      if (e.value !== undefined) env[e.name] = expandRefs(e.value, env);
      else if (e.valueFrom?.fieldRef) {
        const path = e.valueFrom.fieldRef.fieldPath;
        const label = /^metadata\.labels\['(.+)'\]$/.exec(path);
        const value = label ? pod.metadata.labels?.[label[1]!] : fields[path];
        if (value !== undefined) env[e.name] = value;
        else this.log(`pod ${pod.metadata.namespace}/${pod.metadata.name}: env ${e.name}: unsupported fieldRef ${path}`);
      } else env[e.name] = '';
    }
    return env;
  }

  private onContainerState(rt: PodRuntime, cr: ContainerRuntime): void {
    const s = cr.process.state;
    if (s.state === 'running') {
      // A (re)started container is not ready until its probe says so.
      cr.probeReady = !cr.spec.readinessProbe;
      cr.probeSuccesses = 0;
      cr.probeFailures = 0;
      if (cr.spec.readinessProbe) this.scheduleProbe(rt, cr, (cr.spec.readinessProbe.initialDelaySeconds ?? 0) * 1000);
    } else {
      clearTimeout(cr.probeTimer);
      cr.probeReady = false;
    }
    this.publishPodStatus(rt);
  }

  private scheduleProbe(rt: PodRuntime, cr: ContainerRuntime, delayMs: number): void {
    clearTimeout(cr.probeTimer);
    cr.probeTimer = setTimeout(() => void this.runProbe(rt, cr), delayMs);
  }

  private async runProbe(rt: PodRuntime, cr: ContainerRuntime): Promise<void> {
    const probe = cr.spec.readinessProbe!;
    if (cr.process.state.state !== 'running' || rt.phase !== 'Started' || cr.probing) return;
    cr.probing = true;
    let result: ProbeResult;
    try {
      result = await this.probeOnce(rt, cr, probe);
    } finally {
      cr.probing = false;
    }
    if (cr.process.state.state !== 'running' || rt.phase !== 'Started') return;
    if (result.ok) {
      cr.probeFailures = 0;
      cr.probeSuccesses++;
      if (cr.probeSuccesses >= (probe.successThreshold ?? 1)) cr.probeReady = true;
      cr.probeMessage = undefined;
    } else {
      cr.probeSuccesses = 0;
      cr.probeFailures++;
      // Never ready yet: stay not ready; ready: only after failureThreshold failures in a row.
      if (cr.probeFailures >= (probe.failureThreshold ?? 3)) cr.probeReady = false;
      cr.probeMessage = `Readiness probe failed: ${result.message ?? ''}`.trim();
    }
    this.publishPodStatus(rt);
    this.scheduleProbe(rt, cr, (probe.periodSeconds ?? 10) * 1000);
  }

  private async probeOnce(rt: PodRuntime, cr: ContainerRuntime, probe: Probe): Promise<ProbeResult> {
    const c = cr.spec;
    const timeoutMs = (probe.timeoutSeconds ?? 1) * 1000;
    const port = (p: number | string): number | undefined => (typeof p === 'number' ? p : (c.ports ?? []).find((cp) => cp.name === p)?.containerPort ?? (/^\d+$/.test(p) ? Number(p) : undefined));
    if (probe.exec) {
      try {
        // A probe of a running container: its sandbox was valid when it started.
        await run(sandboxArgv(rt.sandbox, cr.sandbox as ContainerSandbox, probe.exec.command), { timeoutMs, env: rt.env.get(c.name), cwd: '/' });
        return { ok: true };
      } catch (err) {
        return { ok: false, message: err instanceof CommandError ? `command ${JSON.stringify(probe.exec.command.join(' '))} exited with ${err.code}: ${err.stderr.trim()}` : (err as Error).message };
      }
    }
    const target = probe.httpGet ?? probe.tcpSocket;
    if (!target) return { ok: false, message: 'probe has no httpGet, tcpSocket or exec handler' };
    const p = port(target.port);
    if (p === undefined) return { ok: false, message: `port "${target.port}" is not a named port of container ${c.name}` };
    if (probe.httpGet) {
      return this.agentProbe(rt.node, { kind: 'httpGet', host: rt.ip, port: p, path: probe.httpGet.path ?? '/', headers: probe.httpGet.httpHeaders, timeoutMs });
    }
    return this.agentProbe(rt.node, { kind: 'tcpSocket', host: rt.ip, port: p, timeoutMs });
  }

  private setPendingStatus(pod: Pod, reason: string, message: string): void {
    const status = { phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'False', reason, message }] };
    this.store.setStatus('Pod', pod.metadata.namespace, pod.metadata.name, status);
    // Retry later: the missing piece may be applied in the meantime (a later apply also triggers a pass).
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => void this.reconcile(), 5000);
  }

  private publishPodStatus(rt: PodRuntime): void {
    const pod = this.store.get('Pod', rt.namespace, rt.name);
    if (!pod || pod.metadata.uid !== rt.uid || rt.phase === 'Terminating') return;
    const containerStatuses = rt.containers.map((cr) => {
      const s = cr.process.state;
      const state =
        s.state === 'running'
          ? { running: { startedAt: s.startedAt } }
          : s.state === 'waiting'
            ? { waiting: { reason: s.reason, ...(s.message ? { message: s.message } : {}) } }
            : { terminated: { exitCode: s.exitCode, reason: s.reason, finishedAt: s.finishedAt, ...(s.signal ? { signal: s.signal } : {}) } };
      const last = cr.process.lastTermination;
      return {
        name: cr.spec.name,
        image: cr.spec.image ?? '',
        ready: s.state === 'running' && cr.probeReady,
        started: s.state === 'running',
        restartCount: cr.process.restarts,
        state,
        ...(last && s.state !== 'terminated' ? { lastState: { terminated: { exitCode: last.exitCode, reason: last.reason, finishedAt: last.finishedAt } } } : {}),
        ...(cr.probeMessage ? { probeMessage: cr.probeMessage } : {}),
      };
    });
    const started = rt.phase === 'Started';
    const terminated = started && rt.containers.every((cr) => cr.process.state.state === 'terminated');
    const phase = rt.phase === 'Failed' ? 'Pending' : !started ? 'Pending' : terminated ? (rt.containers.every((cr) => (cr.process.state as { exitCode?: number }).exitCode === 0) ? 'Succeeded' : 'Failed') : 'Running';
    const containersReady = started && containerStatuses.every((c) => c.ready);
    const cond = (type: string, ok: boolean, reason?: string, message?: string) => ({ type, status: ok ? 'True' : 'False', ...(reason ? { reason } : {}), ...(message ? { message } : {}) });
    const notReady = containerStatuses.filter((c) => !c.ready).map((c) => c.name);
    const notReadyMsg = notReady.length ? `containers with unready status: [${notReady.join(' ')}]` : undefined;
    const status = {
      phase,
      hostIP: rt.node.ip,
      hostIPs: [{ ip: rt.node.ip }],
      podIP: rt.ip,
      podIPs: [{ ip: rt.ip }],
      startTime: rt.startedAt,
      conditions: [
        cond('PodScheduled', true),
        cond('Initialized', true),
        cond('ContainersReady', containersReady, containersReady ? undefined : 'ContainersNotReady', containersReady ? undefined : notReadyMsg),
        cond('Ready', containersReady, containersReady ? undefined : 'ContainersNotReady', containersReady ? undefined : notReadyMsg),
      ],
      containerStatuses,
      ...(rt.startError ? { message: rt.startError, reason: 'FailedCreatePodSandBox' } : {}),
      // Ambit extension (not in Kubernetes): the pod's network namespace, for node components that need to enter
      // it (ztunnel's in-pod mode gets this as an fd from the CNI agent).
      netnsPath: rt.sandbox.netnsPath,
    };
    this.store.setStatus('Pod', rt.namespace, rt.name, status);
    this.scheduleDeploymentCheck();
  }

  private deploymentCheck: NodeJS.Timeout | undefined;
  /** A pod becoming ready may let a rollout remove old pods; batch those checks. */
  private scheduleDeploymentCheck(): void {
    if (this.deploymentCheck || this.stopped) return;
    this.deploymentCheck = setTimeout(() => {
      this.deploymentCheck = undefined;
      void this.reconcile();
    }, 50);
  }

  private async stopPod(rt: PodRuntime, graceSeconds?: number): Promise<void> {
    if (rt.phase === 'Terminating') return;
    rt.phase = 'Terminating';
    rt.tokens?.stop();
    const spec = this.store.get('Pod', rt.namespace, rt.name)?.spec;
    const grace = graceSeconds ?? (typeof spec?.terminationGracePeriodSeconds === 'number' ? spec.terminationGracePeriodSeconds : DEFAULT_GRACE_SECONDS);
    for (const cr of rt.containers) clearTimeout(cr.probeTimer);
    await Promise.all(rt.containers.map((cr) => cr.process.stop(grace * 1000)));
    // What the containers leave in the sandbox (exec sessions, daemons) dies with the pod, as in Kubernetes.
    const stuck = await killProcessesInNetns(rt.sandbox.netnsPath);
    if (stuck.length) this.log(`pod ${rt.namespace}/${rt.name}: processes ${stuck.join(', ')} did not exit`);
    // ZDS del after the pod is gone, then the rules go with the namespace.
    if (rt.captured || this.zds.get(rt.node.name)?.has(rt.uid)) await this.zds.get(rt.node.name)!.del(rt.uid);
    rt.captured = false;
    try {
      await removePodNetwork(rt.node.netnsPath, rt.ip);
      if (existsSync(rt.sandbox.netnsPath)) {
        await removeNetns(rt.sandbox.netnsPath);
        this.ledger.netnsRemoved(rt.sandbox.netnsPath);
      }
    } catch (err) {
      this.log(`pod ${rt.namespace}/${rt.name}: removing its network failed: ${(err as Error).message}`);
    }
    rmSync(rt.sandbox.netnsPath, { force: true });
    rt.node.pool.release(rt.ip);
    if (this.pods.get(rt.key) === rt) this.pods.delete(rt.key);
    if (!this.store.get('Pod', rt.namespace, rt.name)) rmSync(rt.dir, { recursive: true, force: true });
    this.log(`pod ${rt.namespace}/${rt.name} stopped`);
  }

  /** Where `ambit exec` runs a command for a pod (or a ready pod of a Deployment). */
  execTarget(
    namespace: string,
    name: string,
    container?: string,
  ): { pod: string; container: string; sandbox: PodSandbox; containerSandbox: ContainerSandbox; env: Record<string, string>; cwd: string } {
    const rt = this.resolvePod(namespace, name);
    if (rt.phase !== 'Started') throw new Error(`pod ${namespace}/${rt.name} is not running (${rt.startError ?? 'still starting'})`);
    const cr = container ? rt.containers.find((c) => c.spec.name === container) : rt.containers[0];
    if (!cr) throw new Error(`container ${container} is not valid for pod ${rt.name}`);
    if (cr.sandbox instanceof ContainerConfigError) throw new Error(`container ${cr.spec.name} of pod ${namespace}/${rt.name} is not running: ${cr.sandbox.message}`);
    return {
      pod: `${namespace}/${rt.name}`,
      container: cr.spec.name,
      sandbox: rt.sandbox,
      containerSandbox: cr.sandbox,
      env: rt.env.get(cr.spec.name)!,
      cwd: '/',
    };
  }

  /**
   * What `kubectl logs` and `kubectl exec` reach in a pod of the API: its containers, each container's logs (the
   * current instance's, the one before, and when the current one ends), and the argv that runs a command in it: the
   * container's sandbox, or for istio-system's component pods the component's network namespace. Errors are the
   * kubelet's texts.
   */
  podAccess(namespace: string, name: string): {
    containers: string[];
    log(container: string): { path: string; previousPath: string; ended: Promise<void> };
    command(container: string, command: string[]): { argv: string[]; env: Record<string, string>; cwd: string };
  } {
    const pod = this.store.get('Pod', namespace, name);
    if (!pod) throw new Error(`pods "${name}" not found`);
    const component = this.componentPod(pod);
    if (component) {
      const containers = pod.spec.containers.map((c) => c.name);
      return {
        containers,
        // A component's runs share one log, and it runs until the cluster stops.
        log: () => ({ path: component.logPath, previousPath: previousLogPath(component.logPath), ended: new Promise<void>(() => undefined) }),
        command: (_container, command) => ({ argv: ['nsenter', `--net=${component.netnsPath}`, '--', ...command], env: { PATH: podPath(this.options.basePath ?? process.env.PATH) }, cwd: '/' }),
      };
    }
    const rt = this.pods.get(resourceKey(pod));
    if (!rt || rt.uid !== pod.metadata.uid) throw new Error(`container "${pod.spec.containers[0]?.name}" in pod "${name}" is waiting to start: ContainerCreating`);
    const runtime = (container: string) => {
      const cr = rt.containers.find((c) => c.spec.name === container);
      if (!cr) throw new Error(`container ${container} is not valid for pod ${name}`);
      return cr;
    };
    return {
      containers: rt.containers.map((c) => c.spec.name),
      log: (container) => {
        const cr = runtime(container);
        const path = this.containerLogPath(rt, container);
        return { path, previousPath: previousLogPath(path), ended: cr.process.whenExited() };
      },
      command: (container, command) => {
        const target = this.execTarget(namespace, name, container);
        return { argv: sandboxArgv(target.sandbox, target.containerSandbox, command), env: target.env, cwd: target.cwd };
      },
    };
  }

  /**
   * The log file of a pod's container (a Deployment name picks one of its pods, as kubectl does); with `previous`,
   * that of the instance before a restart.
   */
  podLog(namespace: string, name: string, container?: string, previous = false): { pod: string; container: string; path: string } {
    const rt = this.resolvePod(namespace, name);
    const c = chooseContainer(rt.containers.map((x) => x.spec.name), rt.name, container);
    const path = this.containerLogPath(rt, c);
    if (!previous) return { pod: `${namespace}/${rt.name}`, container: c, path };
    if (!existsSync(previousLogPath(path))) throw new Error(`previous terminated container "${c}" in pod "${rt.name}" not found`);
    return { pod: `${namespace}/${rt.name}`, container: c, path: previousLogPath(path) };
  }

  private resolvePod(namespace: string, name: string): PodRuntime {
    const direct = this.pods.get(resourceKey({ kind: 'Pod', metadata: { name, namespace } }));
    if (direct) return direct;
    if (this.store.get('Deployment', namespace, name)) {
      const candidates = [...this.pods.values()].filter((p) => p.namespace === namespace && ownerDeployment(this.store.get('Pod', namespace, p.name)) === name && p.phase === 'Started');
      const ready = candidates.filter((p) => isPodReady(this.store.get('Pod', namespace, p.name)));
      const pick = ready[0] ?? candidates[0];
      if (!pick) throw new Error(`deployment ${namespace}/${name} has no running pod`);
      return pick;
    }
    if (this.store.get('Pod', namespace, name)) throw new Error(`pod ${namespace}/${name} has not started yet`);
    throw new Error(`pods "${name}" not found in namespace "${namespace}" (and no deployment of that name)`);
  }

  // ---- services: nftables on every node and DNS ----------------------------------------------------------------------

  private scheduleSync(): void {
    if (this.syncTimer || this.stopped) return;
    this.syncTimer = setTimeout(() => {
      this.syncTimer = undefined;
      this.syncing = this.syncing.then(() => this.syncServices()).catch((err) => this.log(`service sync failed: ${(err as Error).message}`));
    }, 10);
  }

  /** Resolves when every change made so far is programmed into the nodes. */
  async settled(): Promise<void> {
    await this.reconciling;
    while (this.syncTimer || this.captureTimer) await new Promise((r) => setTimeout(r, 5));
    await this.syncing;
    await this.capturing;
  }

  private lastRules: ServiceRule[] | undefined;
  private lastDns: DnsRecords | undefined;

  private async syncServices(): Promise<void> {
    const rules: ServiceRule[] = [];
    const dns: DnsRecords = {};
    for (const svc of this.store.list('Service')) {
      const ns = svc.metadata.namespace!;
      const pods = svc.spec.selector && Object.keys(svc.spec.selector).length
        ? this.store.list('Pod', ns).filter((p) => p.status?.podIP && Object.entries(svc.spec.selector!).every(([k, v]) => p.metadata.labels?.[k] === v))
        : [];
      const ready = pods.filter(isPodReady);
      const headless = svc.spec.clusterIP === 'None';
      dns[serviceFqdn(svc.metadata.name, ns)] = headless ? ready.map((p) => p.status!.podIP!) : [svc.spec.clusterIP!];
      if (headless) continue;
      for (const port of svc.spec.ports ?? []) {
        const endpoints: ServiceRule['endpoints'] = [];
        for (const p of ready) {
          const target = resolveTargetPort(p, port.targetPort ?? port.port);
          if (target !== undefined) endpoints.push({ ip: p.status!.podIP!, port: target });
        }
        rules.push({ vip: svc.spec.clusterIP!, port: port.port, protocol: (port.protocol ?? 'TCP').toLowerCase() as ServiceRule['protocol'], endpoints });
      }
    }
    if (!isDeepStrictEqual(rules, this.lastRules)) {
      await Promise.all(this.nodes.map((n) => applyServiceRules(n.netnsPath, rules)));
      this.lastRules = rules;
    }
    if (!isDeepStrictEqual(dns, this.lastDns)) {
      await Promise.all(this.nodes.map((n) => call(n.agentSocket, 'PUT', '/dns', { records: dns })));
      this.lastDns = dns;
    }
  }

  // ---- waiting -----------------------------------------------------------------------------------------------------

  /** What keeps the cluster from being ready: empty when every pod is ready (or completed) and rollouts are done. */
  notReady(): string[] {
    const out: string[] = [];
    for (const d of this.store.list('Deployment')) {
      const st = (d as { status?: unknown }).status as { updatedReplicas?: number; readyReplicas?: number; replicas?: number } | undefined;
      const want = d.spec.replicas ?? 1;
      if (!st || st.updatedReplicas !== want || st.replicas !== want || st.readyReplicas !== want) {
        out.push(`deployment ${d.metadata.namespace}/${d.metadata.name}: ${st?.readyReplicas ?? 0}/${want} ready`);
      }
    }
    for (const p of this.store.list('Pod')) {
      if (isPodReady(p) || p.status?.phase === 'Succeeded' || isComponentObject(p)) continue;
      out.push(`pod ${p.metadata.namespace}/${p.metadata.name}: ${podStatusText(p)}${podProblem(p)}`);
    }
    for (const c of this.components) if (!c.healthy) out.push(`${c.process.spec.description}: ${c.healthMessage ?? 'not healthy'}`);
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

// ---- helpers ---------------------------------------------------------------------------------------------------------

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

function objectLabel(r: { kind?: string; metadata?: { name?: string; namespace?: string } }): string {
  return displayName({ kind: r?.kind ?? '<no kind>', metadata: r?.metadata });
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

function ownerDeployment(pod: Pod | undefined): string | undefined {
  const refs = (pod?.metadata as { ownerReferences?: { kind: string; name: string }[] } | undefined)?.ownerReferences;
  const rs = refs?.find((r) => r.kind === 'ReplicaSet');
  const hash = pod?.metadata.labels?.['pod-template-hash'];
  return rs && hash && rs.name.endsWith(`-${hash}`) ? rs.name.slice(0, -hash.length - 1) : undefined;
}

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

function podProblem(pod: Pod): string {
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

/** A Service port's targetPort on one pod: a number, or a container port name (pods without it are skipped). */
function resolveTargetPort(pod: Pod, target: number | string): number | undefined {
  if (typeof target === 'number') return target;
  if (/^\d+$/.test(target)) return Number(target);
  for (const c of pod.spec.containers) for (const p of c.ports ?? []) if (p.name === target) return p.containerPort;
  return undefined;
}

/**
 * What kube-apiserver checks of the volumes the local cluster acts on: a projected service account token's lifetime
 * and path (a relative path inside the volume; Kubernetes reports it on the projected volume, not on the source), and
 * that every mounted volume exists.
 */
function checkVolumes(spec: PodSpec, field: string, invalid: (field: string, message: string) => Error): void {
  (spec.volumes ?? []).forEach((v, i) => {
    (v.projected?.sources ?? []).forEach((source, j) => {
      const token = source.serviceAccountToken;
      if (!token) return;
      const projected = `${field}.volumes[${i}].projected`;
      const seconds = token.expirationSeconds ?? DEFAULT_TOKEN_EXPIRATION_SECONDS;
      const expiration = `${projected}.sources[${j}].serviceAccountToken.expirationSeconds`;
      if (seconds < MIN_TOKEN_EXPIRATION_SECONDS) throw invalid(expiration, `Invalid value: ${seconds}: may not specify a duration less than 10 minutes`);
      if (seconds > MAX_TOKEN_EXPIRATION_SECONDS) throw invalid(expiration, `Invalid value: ${seconds}: may not specify a duration larger than 2^32 seconds`);
      if (!token.path) throw invalid(`${projected}.path`, 'Required value');
      const problem = localPathProblem(token.path);
      if (problem) throw invalid(`${projected}.path`, `Invalid value: ${JSON.stringify(token.path)}: ${problem}`);
    });
  });
  const volumes = new Set((spec.volumes ?? []).map((v) => v.name));
  spec.containers.forEach((c, i) =>
    c.volumeMounts?.forEach((m, j) => {
      if (!volumes.has(m.name)) throw invalid(`${field}.containers[${i}].volumeMounts[${j}].name`, `Not found: ${JSON.stringify(m.name)}`);
    }),
  );
}

/** Kubernetes' ValidateLocalNonReservedPath: a path that stays inside its volume. */
function localPathProblem(path: string): string | undefined {
  if (posix.isAbsolute(path)) return 'must be a relative path';
  if (path.split('/').includes('..')) return "must not contain '..'";
  if (path.startsWith('..')) return "must not start with '..'";
  return undefined;
}

/** Kubernetes' `$(VAR)` expansion in env values, against the variables defined before. */
function expandRefs(value: string, env: Record<string, string>): string {
  return value.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (all, name: string) => env[name] ?? all);
}

