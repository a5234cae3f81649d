// The kubelet of every node: runs the pods the cluster's store holds. For each pod it takes an address from its
// node's range, builds the pod's network namespace and sandbox (the CNI agent captures it first when Istio's
// selection says so, failing the sandbox as Istio's CNI plugin does when ztunnel cannot take it), writes its
// projected tokens, starts its containers as supervised processes, runs their readiness probes and reports all of it
// in the pod's status. Stopping is the reverse, the pod's leftover processes killed with it.
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { setImmediate } from 'node:timers/promises';
import { resourceKey, type Container, type Pod, type Probe } from '../../api/types.js';
import type { ResourceStore } from '../../apiserver/store.js';
import type { CniAgent, CniPod } from '../../cni/agent.js';
import { serviceAccountOf } from '../../model/workloads.js';
import { ownerDeployment, POD_BATCH } from '../controllers/deployment.js';
import { podObject, type EventRecorder, type EventType } from '../events.js';
import { AddressPoolExhausted } from '../ipam.js';
import type { StateLayout } from '../layout.js';
import { killProcessesInNetns, type Ledger } from '../ledger.js';
import { createPodNetwork, removePodNetwork } from '../network.js';
import type { ProbeResult } from '../node-agent.js';
import { agentProbe, type NodeRuntime } from '../nodes.js';
import { chooseContainer, isPodReady } from '../pods.js';
import { previousLogPath, SupervisedProcess } from '../process.js';
import { ContainerConfigError, sandboxArgv, type ContainerSandbox, type PodSandbox } from '../sandbox.js';
import { pickNode } from '../scheduler.js';
import { removeNetns, run, CommandError } from '../sys.js';
import { ProjectedTokenWriter, type ServiceAccountIssuer } from '../tokens.js';
import { containerEnv, containerSandbox, makeSandboxDir, projectedTokens } from './containers.js';

export const DEFAULT_GRACE_SECONDS = 30;
const SCHEDULER = { component: 'default-scheduler' };
/** How long a pod whose sandbox failed to build waits before the next attempt. */
const POD_RETRY_MS = 5000;

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

export interface PodRuntime {
  key: string;
  uid: string;
  namespace: string;
  name: string;
  node: NodeRuntime;
  ip: string;
  serviceAccount: string;
  sandbox: PodSandbox;
  dir: string;
  containers: ContainerRuntime[];
  env: Map<string, Record<string, string>>;
  phase: 'Starting' | 'Started' | 'Failed' | 'Terminating';
  /** Writes and refreshes the pod's projected service account tokens, when its volumes ask for any. */
  tokens?: ProjectedTokenWriter;
  startError?: string;
  startedAt: string;
}

/** What `kubectl logs` and `exec` reach in a pod: see LocalCluster.podAccess. */
export interface PodAccess {
  containers: string[];
  log(container: string): { path: string; previousPath: string; ended: Promise<void> };
  command(container: string, command: string[]): { argv: string[]; env: Record<string, string>; cwd: string };
}

export interface KubeletOptions {
  store: ResourceStore;
  layout: StateLayout;
  ledger: Ledger;
  nodes: readonly NodeRuntime[];
  cni: CniAgent;
  events: EventRecorder;
  /** Istio's selection: whether a pod should be in the mesh (asked when its sandbox is built). */
  wantsCapture: (pod: { namespace: string; name: string; uid: string }) => boolean;
  /** The cluster's service account token issuer, once it exists. */
  tokenIssuer: () => ServiceAccountIssuer | undefined;
  /** PATH the pods' PATH is built from (the supervisor's own by default). */
  basePath?: string;
  log: (line: string) => void;
  /** Asks for another pass of the cluster's reconciler: a pod that could not start is retried on one. */
  requestSync: () => void;
  /** A pod's status changed. */
  onPodStatus: () => void;
}

export class Kubelet {
  private readonly pods = new Map<string, PodRuntime>();
  private retryTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly options: KubeletOptions) {}

  /** An event of the kubelet on the pod's node about the pod or one of its containers. */
  private event(rt: PodRuntime, type: EventType, reason: string, message: string, container?: string): void {
    this.options.events.record({ component: 'kubelet', host: rt.node.name }, podObject(rt, container), type, reason, message);
  }

  /** The pods whose containers run now. */
  started(): PodRuntime[] {
    return [...this.pods.values()].filter((rt) => rt.phase === 'Started');
  }

  podsOn(node: NodeRuntime): number {
    let n = 0;
    for (const rt of this.pods.values()) if (rt.node === node) n++;
    return n;
  }

  cniPod(rt: PodRuntime): CniPod {
    return { uid: rt.uid, namespace: rt.namespace, name: rt.name, node: rt.node.name, serviceAccount: rt.serviceAccount, netnsPath: rt.sandbox.netnsPath };
  }

  /**
   * One sync of the pods that should run (`wanted`, by key) with those that do: pods deleted or replaced stop, pods
   * whose sandbox failed are rebuilt after a while, new pods start in batches (yielding to the event loop between).
   */
  async sync(wanted: Map<string, Pod>): Promise<void> {
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
      if (this.options.store.get('Pod', pod.metadata.namespace, pod.metadata.name)?.metadata.uid !== pod.metadata.uid || this.stopped) continue;
      starts.push(this.startPod(pod));
      if (starts.length % POD_BATCH === 0) await setImmediate();
    }
    await Promise.all(starts);
  }

  /** Stops every pod (with `graceSeconds`) and starts no more. */
  async shutdown(graceSeconds: number): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    await Promise.all([...this.pods.values()].map((p) => this.stopPod(p, graceSeconds)));
  }

  private async startPod(pod: Pod): Promise<void> {
    const { store, log } = this.options;
    const ns = pod.metadata.namespace!;
    const key = resourceKey(pod);
    const saName = pod.spec.serviceAccountName ?? pod.spec.serviceAccount ?? 'default';
    const serviceAccount = store.get('ServiceAccount', ns, saName);
    if (!serviceAccount) {
      this.setPendingStatus(pod, 'FailedCreate', `error looking up service account ${ns}/${saName}: serviceaccount "${saName}" not found`);
      return;
    }
    const { nodes } = this.options;
    const placed = [...this.pods.values()].map((p) => ({ node: p.node, namespace: p.namespace, owner: ownerDeployment(store.get('Pod', p.namespace, p.name)) }));
    const node = pickNode(pod, nodes, placed)!;
    let ip: string;
    try {
      ip = node.pool.allocate();
    } catch (err) {
      if (!(err instanceof AddressPoolExhausted)) throw err;
      // Pods go to the node with the fewest, so when that one is full every node is (kube-scheduler's words).
      const message = `0/${nodes.length} nodes are available: ${nodes.length} Too many pods.`;
      this.options.events.record(SCHEDULER, podObject({ namespace: ns, name: pod.metadata.name, uid: pod.metadata.uid! }), 'Warning', 'FailedScheduling', message);
      this.setPendingStatus(pod, 'Unschedulable', message);
      return;
    }
    this.options.events.record(SCHEDULER, podObject({ namespace: ns, name: pod.metadata.name, uid: pod.metadata.uid! }), 'Normal', 'Scheduled', `Successfully assigned ${ns}/${pod.metadata.name} to ${node.name}`);
    const { layout } = this.options;
    const dir = layout.podDir(ns, pod.metadata.name);
    const sandboxDir = makeSandboxDir(dir, ns, layout.rootCert);
    const netnsPath = layout.netns(`pod_${ns}_${pod.metadata.name}`);
    const rt: PodRuntime = {
      key,
      uid: pod.metadata.uid!,
      namespace: ns,
      name: pod.metadata.name,
      node,
      ip,
      serviceAccount: serviceAccountOf(pod.spec),
      sandbox: { netnsPath, dir: sandboxDir, masked: [layout.dir], hostname: (pod.spec.hostname ?? pod.metadata.name).slice(0, 63) },
      dir,
      containers: [],
      env: new Map(),
      phase: 'Starting',
      startedAt: new Date().toISOString(),
    };
    this.pods.set(key, rt);
    // The pod is scheduled and has its address before the network exists, as with a CNI: report that much now.
    const scheduled = { ...pod, spec: { ...pod.spec, nodeName: node.name, serviceAccountName: saName } };
    store.put(scheduled as Pod, true);
    this.publishPodStatus(rt);
    const fail = (error: string) => {
      rt.phase = 'Failed';
      rt.startError = error;
      log(`pod ${ns}/${pod.metadata.name}: ${rt.startError}`);
      this.event(rt, 'Warning', 'FailedCreatePodSandBox', `Failed to create pod sandbox: ${error}`);
      this.publishPodStatus(rt);
      setTimeout(() => this.options.requestSync(), POD_RETRY_MS + 100);
    };
    try {
      await createPodNetwork(netnsPath, node.netnsPath, this.options.ledger, node.index, ip);
    } catch (err) {
      fail(`failed to set up the pod network: ${(err as Error).message}`);
      return;
    }
    if (rt.phase !== 'Starting') return; // Deleted while the network was being built.
    if (this.options.wantsCapture(rt)) {
      // Like Istio's CNI plugin, which fails sandbox creation until ztunnel has the pod: the app never runs with
      // rules that send its traffic to a proxy that is not there.
      try {
        await this.options.cni.capture(this.cniPod(rt));
      } catch (err) {
        fail(`failed to add the pod to the mesh: ${(err as Error).message}`);
        return;
      }
      if (rt.phase !== 'Starting') return;
    }
    const current = store.get('Pod', ns, pod.metadata.name) ?? (scheduled as Pod);
    const sandboxes = new Map(pod.spec.containers.map((c) => [c.name, containerSandbox(rt, pod.spec, c, (line) => this.appendPodLog(rt, c.name, line))]));
    // As the kubelet does for projected tokens: owned by the pod's user (0600) when all its containers run as the same
    // one, else root's and readable by all (0644).
    const users = new Set([...sandboxes.values()].map((cs) => (cs instanceof ContainerConfigError ? undefined : cs.security.runAsUser)));
    const [user] = users;
    const owner = users.size === 1 && user !== undefined ? user : undefined;
    const tokens = projectedTokens(rt, pod.spec, owner);
    const issuer = this.options.tokenIssuer();
    if (tokens.length && issuer) {
      const subject = { namespace: ns, serviceAccount: saName, serviceAccountUid: serviceAccount.metadata.uid, pod: { name: rt.name, uid: rt.uid }, node: node.name };
      rt.tokens = new ProjectedTokenWriter(issuer, subject, tokens, (line) => log(`pod ${ns}/${pod.metadata.name}: ${line}`));
      try {
        await rt.tokens.start();
      } catch (err) {
        // The container still starts; what needs the token (a waypoint) reports its absence, and the write is retried.
        log(`pod ${ns}/${pod.metadata.name}: cannot write its service account token: ${(err as Error).message}`);
      }
      if (rt.phase !== 'Starting') return;
    }
    for (const c of pod.spec.containers) {
      const env = containerEnv(current, c, ip, node, this.options.basePath, log);
      rt.env.set(c.name, env);
      const sandbox = sandboxes.get(c.name)!;
      const proc = new SupervisedProcess(
        {
          description: `pod ${ns}/${pod.metadata.name} container ${c.name}`,
          argv: sandbox instanceof ContainerConfigError ? [] : sandboxArgv(rt.sandbox, sandbox, [...c.command!, ...(c.args ?? [])]),
          env,
          // The sandbox enters workingDir once it is built, in the pod's view of the machine.
          cwd: '/',
          logPath: containerLogPath(rt, c.name),
          keepPreviousLog: true,
          restartPolicy: pod.spec.restartPolicy ?? 'Always',
        },
        this.options.ledger,
        () => this.onContainerState(rt, cr),
      );
      if (sandbox instanceof ContainerConfigError) {
        // Never started, as the kubelet leaves it: Waiting with the reason and the error, retried only by a new pod.
        proc.state = { state: 'waiting', reason: sandbox.reason, message: sandbox.message };
        log(`pod ${ns}/${pod.metadata.name}: container ${c.name}: Error: ${sandbox.message}`);
        this.event(rt, 'Warning', 'Failed', `Error: ${sandbox.message}`, c.name);
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
    log(`pod ${ns}/${pod.metadata.name} started on ${node.name} with IP ${ip}`);
    this.publishPodStatus(rt);
  }

  private appendPodLog(rt: PodRuntime, container: string, text: string): void {
    try {
      writeFileSync(containerLogPath(rt, container), text, { flag: 'a' });
    } catch {
      // Pod directory already removed.
    }
  }

  private onContainerState(rt: PodRuntime, cr: ContainerRuntime): void {
    const s = cr.process.state;
    if (s.state === 'running') {
      this.event(rt, 'Normal', 'Created', `Created container: ${cr.spec.name}`, cr.spec.name);
      this.event(rt, 'Normal', 'Started', `Started container ${cr.spec.name}`, cr.spec.name);
      // A (re)started container is not ready until its probe says so.
      cr.probeReady = !cr.spec.readinessProbe;
      cr.probeSuccesses = 0;
      cr.probeFailures = 0;
      if (cr.spec.readinessProbe) this.scheduleProbe(rt, cr, (cr.spec.readinessProbe.initialDelaySeconds ?? 0) * 1000);
    } else {
      if (s.state === 'waiting' && s.reason === 'CrashLoopBackOff') {
        this.event(rt, 'Warning', 'BackOff', `Back-off restarting failed container ${cr.spec.name} in pod ${rt.name}_${rt.namespace}(${rt.uid})`, cr.spec.name);
      }
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
      result = await probeOnce(rt, cr, probe);
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
      this.event(rt, 'Warning', 'Unhealthy', cr.probeMessage, cr.spec.name);
    }
    this.publishPodStatus(rt);
    this.scheduleProbe(rt, cr, (probe.periodSeconds ?? 10) * 1000);
  }

  private setPendingStatus(pod: Pod, reason: string, message: string): void {
    const status = { phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'False', reason, message }] };
    this.options.store.setStatus('Pod', pod.metadata.namespace, pod.metadata.name, status);
    // Retry later: the missing piece may be applied in the meantime (a later apply also triggers a pass).
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.options.requestSync(), 5000);
  }

  private publishPodStatus(rt: PodRuntime): void {
    const pod = this.options.store.get('Pod', rt.namespace, rt.name);
    if (!pod || pod.metadata.uid !== rt.uid || rt.phase === 'Terminating') return;
    this.options.store.setStatus('Pod', rt.namespace, rt.name, podStatus(rt));
    this.options.onPodStatus();
  }

  private async stopPod(rt: PodRuntime, graceSeconds?: number): Promise<void> {
    if (rt.phase === 'Terminating') return;
    rt.phase = 'Terminating';
    rt.tokens?.stop();
    const spec = this.options.store.get('Pod', rt.namespace, rt.name)?.spec;
    const grace = graceSeconds ?? (typeof spec?.terminationGracePeriodSeconds === 'number' ? spec.terminationGracePeriodSeconds : DEFAULT_GRACE_SECONDS);
    for (const cr of rt.containers) {
      clearTimeout(cr.probeTimer);
      if (cr.process.state.state === 'running') this.event(rt, 'Normal', 'Killing', `Stopping container ${cr.spec.name}`, cr.spec.name);
    }
    await Promise.all(rt.containers.map((cr) => cr.process.stop(grace * 1000)));
    // What the containers leave in the sandbox (exec sessions, daemons) dies with the pod, as in Kubernetes.
    const stuck = await killProcessesInNetns(rt.sandbox.netnsPath);
    if (stuck.length) this.options.log(`pod ${rt.namespace}/${rt.name}: processes ${stuck.join(', ')} did not exit`);
    // ZDS del after the pod is gone, then the rules go with the namespace.
    await this.options.cni.podRemoved(this.cniPod(rt));
    try {
      await removePodNetwork(rt.node.netnsPath, rt.ip);
      if (existsSync(rt.sandbox.netnsPath)) {
        await removeNetns(rt.sandbox.netnsPath);
        this.options.ledger.netnsRemoved(rt.sandbox.netnsPath);
      }
    } catch (err) {
      this.options.log(`pod ${rt.namespace}/${rt.name}: removing its network failed: ${(err as Error).message}`);
    }
    rmSync(rt.sandbox.netnsPath, { force: true });
    rt.node.pool.release(rt.ip);
    if (this.pods.get(rt.key) === rt) this.pods.delete(rt.key);
    if (!this.options.store.get('Pod', rt.namespace, rt.name)) rmSync(rt.dir, { recursive: true, force: true });
    this.options.log(`pod ${rt.namespace}/${rt.name} stopped`);
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

  /** A running pod's containers, their logs and how to run a command in one (`kubectl logs`/`exec`). */
  podAccess(pod: Pod): PodAccess {
    const { name, namespace } = pod.metadata;
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
        const path = containerLogPath(rt, container);
        return { path, previousPath: previousLogPath(path), ended: cr.process.whenExited() };
      },
      command: (container, command) => {
        const target = this.execTarget(namespace!, name, container);
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
    const path = containerLogPath(rt, c);
    if (!previous) return { pod: `${namespace}/${rt.name}`, container: c, path };
    if (!existsSync(previousLogPath(path))) throw new Error(`previous terminated container "${c}" in pod "${rt.name}" not found`);
    return { pod: `${namespace}/${rt.name}`, container: c, path: previousLogPath(path) };
  }

  private resolvePod(namespace: string, name: string): PodRuntime {
    const { store } = this.options;
    const direct = this.pods.get(resourceKey({ kind: 'Pod', metadata: { name, namespace } }));
    if (direct) return direct;
    if (store.get('Deployment', namespace, name)) {
      const candidates = [...this.pods.values()].filter((p) => p.namespace === namespace && ownerDeployment(store.get('Pod', namespace, p.name)) === name && p.phase === 'Started');
      const ready = candidates.filter((p) => isPodReady(store.get('Pod', namespace, p.name)));
      const pick = ready[0] ?? candidates[0];
      if (!pick) throw new Error(`deployment ${namespace}/${name} has no running pod`);
      return pick;
    }
    if (store.get('Pod', namespace, name)) throw new Error(`pod ${namespace}/${name} has not started yet`);
    throw new Error(`pods "${name}" not found in namespace "${namespace}" (and no deployment of that name)`);
  }
}

function containerLogPath(rt: PodRuntime, container: string): string {
  return `${rt.dir}/${container}.log`;
}

async function probeOnce(rt: PodRuntime, cr: ContainerRuntime, probe: Probe): Promise<ProbeResult> {
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
    return agentProbe(rt.node, { kind: 'httpGet', host: rt.ip, port: p, path: probe.httpGet.path ?? '/', headers: probe.httpGet.httpHeaders, timeoutMs });
  }
  return agentProbe(rt.node, { kind: 'tcpSocket', host: rt.ip, port: p, timeoutMs });
}

/** The pod's status as the kubelet reports it: phase, addresses, conditions and each container's state. */
function podStatus(rt: PodRuntime): Record<string, unknown> {
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
  return {
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
}
