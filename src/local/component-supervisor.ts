// The component supervisor: runs the programs the cluster itself is made of (components.ts: the node agents, the
// control plane, the ztunnels), keeps them running, checks their health, replaces them on `ambit rollout restart`,
// and publishes them as Kubernetes shows them (Nodes, and istio-system's pods and DaemonSet; component-objects.ts).
import { fileURLToPath } from 'node:url';
import { ROOT_NAMESPACE } from '../api/types.js';
import type { ResourceStore } from '../apiserver/store.js';
import type { CniAgent } from '../cni/agent.js';
import { call } from '../common/rpc.js';
import { kubeTime } from '../common/time.js';
import { COMPONENT_ANNOTATION, componentObjects, nodeObject, type ComponentPlacement } from './component-objects.js';
import type { ComponentContext, ComponentSpec, HealthCheck } from './components.js';
import { DEFAULT_GRACE_SECONDS } from './kubelet/kubelet.js';
import { CLUSTER_DNS_IP, FABRIC_GATEWAY_IP, type StateLayout } from './layout.js';
import type { Ledger } from './ledger.js';
import type { ProbeResult } from './node-agent.js';
import { agentProbe, type NodeRuntime } from './nodes.js';
import { previousLogPath, SupervisedProcess, type ProcessState } from './process.js';
import { podPath } from './sandbox.js';
import { CommandError, inNetns, run } from './sys.js';

const ADMIN_GET_SCRIPT = fileURLToPath(new URL('./admin-get.js', import.meta.url));
const HEALTH_INTERVAL_MS = 2000;
/** How long a rolling restart waits for the new process to take over before it gives up (the old one stays). */
const ROLLOUT_READY_TIMEOUT_MS = 60_000;

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

export interface ComponentSupervisorOptions {
  cluster: string;
  stateDir: string;
  layout: StateLayout;
  ledger: Ledger;
  fabricNetns: string;
  nodes: readonly NodeRuntime[];
  store: ResourceStore;
  cni: CniAgent;
  basePath?: string;
  log: (line: string) => void;
  /** A node agent became healthy again after it was not (it restarted, and lost what it was told). */
  onNodeAgentRecovered: () => void;
  /** The components' objects were (re)published (the ztunnel pods' tokens follow them). */
  onPublished?: () => void;
}

export class ComponentSupervisor {
  private readonly components: ComponentRuntime[] = [];
  /** The uids of the istio-system pods standing for components (see publishObjects). */
  readonly componentPodUids = new Set<string>();
  private healthTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly options: ComponentSupervisorOptions) {}

  /**
   * Starts every component, waits until the node agents are healthy and keeps checking all of them. Only the node
   * agents gate the start: ztunnels need the control plane, which needs its first sync of the API; `waitReady`
   * (ambit up) covers the rest.
   */
  async start(specs: readonly ComponentSpec[]): Promise<void> {
    for (const spec of specs) this.startComponent(spec);
    await this.waitHealthy(30_000, (c) => c.spec.name === 'node-agent');
    this.healthTimer = setInterval(() => void this.check(), HEALTH_INTERVAL_MS);
  }

  /** No more health checks or published objects: the cluster is going down. */
  stopChecks(): void {
    this.stopped = true;
    clearInterval(this.healthTimer);
  }

  async shutdown(): Promise<void> {
    this.stopChecks();
    await Promise.all(this.components.map((c) => c.process.stop(3000)));
  }

  private context(node?: NodeRuntime): ComponentContext {
    return {
      cluster: this.options.cluster,
      stateDir: this.options.stateDir,
      fabricIP: FABRIC_GATEWAY_IP,
      clusterDnsIP: CLUSTER_DNS_IP,
      ...(node
        ? { node: { name: node.name, index: node.index, ip: node.ip, podCIDR: node.podCIDR, netnsPath: node.netnsPath, agentSocket: node.agentSocket } }
        : {}),
    };
  }

  private startComponent(spec: ComponentSpec): void {
    const placements: (NodeRuntime | undefined)[] = spec.scope === 'node' ? [...this.options.nodes] : [undefined];
    for (const node of placements) {
      const runtime = { spec, ctx: this.context(node), node, healthy: false } as ComponentRuntime;
      runtime.process = this.componentProcess(runtime);
      this.components.push(runtime);
      runtime.process.start();
    }
  }

  /** A (not yet started) process for a component's placement. */
  private componentProcess(runtime: ComponentRuntime): SupervisedProcess {
    const { spec, ctx, node } = runtime;
    const { layout } = this.options;
    const netns = node ? node.netnsPath : this.options.fabricNetns;
    const description = node ? `component ${spec.name} on ${node.name}` : `component ${spec.name}`;
    const env = { PATH: podPath(this.options.basePath ?? process.env.PATH), AMBIT_SUPERVISOR_SOCKET: layout.socket, ...(spec.env?.(ctx) ?? {}) };
    const proc: SupervisedProcess = new SupervisedProcess(
      {
        description,
        argv: ['nsenter', `--net=${netns}`, '--', ...spec.argv(ctx)],
        env,
        logPath: layout.componentLog(spec.name, node?.name),
        restartPolicy: 'Always',
      },
      this.options.ledger,
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
    if (matches.length === 0) throw new Error(`component "${name}" not found; components: ${this.names().join(', ')}`);
    const targets = node === undefined ? matches : matches.filter((c) => c.node?.name === node);
    if (targets.length === 0) throw new Error(`component "${name}" does not run on node "${node}"`);
    const lines: string[] = [];
    for (const c of targets) {
      const where = c.node ? `${c.spec.name} on ${c.node.name}` : c.spec.name;
      const old = c.process;
      const oldPid = old.pid;
      await this.replace(c);
      const end = old.lastTermination;
      const exit = end ? (end.signal ? `killed by ${end.signal}` : `exit code ${end.exitCode}`) : 'not running';
      lines.push(`${where} restarted (pid ${oldPid ?? '-'} -> ${c.process.pid ?? '-'}; old process: ${exit})`);
      this.options.log(`rollout: ${lines[lines.length - 1]}`);
    }
    return lines;
  }

  private names(): string[] {
    return [...new Set(this.components.map((c) => c.spec.name))];
  }

  private async replace(c: ComponentRuntime): Promise<void> {
    const graceMs = (c.spec.terminationGracePeriodSeconds ?? DEFAULT_GRACE_SECONDS) * 1000;
    const old = c.process;
    if (c.spec.rollout !== 'zds-surge' || !c.node) {
      await old.stop(graceMs);
      old.start();
      return;
    }
    const zds = this.options.cni.zdsServer(c.node.name);
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

  private async waitHealthy(timeoutMs: number, which: (c: ComponentRuntime) => boolean): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      await this.check();
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

  private async check(): Promise<void> {
    await Promise.all(
      this.components.map(async (c) => {
        if (c.process.state.state !== 'running') {
          c.healthy = false;
          c.healthMessage = c.process.state.state === 'waiting' ? c.process.state.message ?? c.process.state.reason : 'exited';
          return;
        }
        const check = c.spec.health?.(c.ctx);
        const result: ProbeResult = check ? await this.runHealthCheck(check, c.node ?? this.options.nodes[0]!) : { ok: true };
        if (result.ok && !c.healthy && c.spec.name === 'node-agent') this.options.onNodeAgentRecovered();
        c.healthy = result.ok;
        c.healthMessage = result.message;
      }),
    );
    this.publishObjects();
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
    return agentProbe(via, { kind: check.kind, host: check.host, port: check.port, path: 'path' in check ? check.path : undefined, timeoutMs: 2000 });
  }

  /**
   * Nodes, and the istio-system service accounts, pods and DaemonSet standing for the components, as they are now (see
   * component-objects.ts).
   */
  publishObjects(): void {
    if (this.stopped) return;
    const { store, nodes } = this.options;
    const agentHealthy = (node: string) => this.components.filter((c) => c.spec.name === 'node-agent' && c.node?.name === node).every((c) => c.healthy);
    for (const n of nodes) store.put(nodeObject({ name: n.name, ip: n.ip, podCIDR: n.podCIDR, createdAt: n.createdAt, ready: agentHealthy(n.name) }), true);
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
    const daemonSetUid = store.getObject('apps', 'DaemonSet', ROOT_NAMESPACE, 'ztunnel')?.metadata.uid;
    for (const o of componentObjects(placements, nodes.length, daemonSetUid)) {
      store.put(o, true);
      if (o.kind === 'Pod') this.componentPodUids.add(store.getObject('', 'Pod', o.metadata.namespace, o.metadata.name)!.metadata.uid!);
    }
    this.options.onPublished?.();
    // The DaemonSet is new: its pods get their owner reference on this second pass.
    if (!daemonSetUid) this.publishObjects();
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
    return { netnsPath: c.node?.netnsPath ?? this.options.fabricNetns, logPath: c.process.spec.logPath };
  }

  /** A component pod's log and how to run a command in its network namespace (`kubectl logs`/`exec`). */
  componentPodAccess(component: { netnsPath: string; logPath: string }): {
    log(): { path: string; previousPath: string; ended: Promise<void> };
    command(command: string[]): { argv: string[]; env: Record<string, string>; cwd: string };
  } {
    return {
      // A component's runs share one log, and it runs until the cluster stops.
      log: () => ({ path: component.logPath, previousPath: previousLogPath(component.logPath), ended: new Promise<void>(() => undefined) }),
      command: (command) => ({ argv: ['nsenter', `--net=${component.netnsPath}`, '--', ...command], env: { PATH: podPath(this.options.basePath ?? process.env.PATH) }, cwd: '/' }),
    };
  }

  status(): ComponentStatus[] {
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

  /** One line per component that is not healthy. */
  notReady(): string[] {
    return this.components.filter((c) => !c.healthy).map((c) => `${c.process.spec.description}: ${c.healthMessage ?? 'not healthy'}`);
  }

  /**
   * GETs `path` from a component's loopback-only admin port inside its namespace (read-only: `ambit
   * ztunnel-config`, `proxy-status`). A per-node component answers once per node, or for the one node named.
   */
  async adminGet(name: string, port: number, path: string, node?: string): Promise<{ node?: string; status: number; body: string; error?: string }[]> {
    const matches = this.components.filter((c) => c.spec.name === name && (node === undefined || c.node?.name === node));
    if (matches.length === 0) {
      if (!this.components.some((c) => c.spec.name === name)) throw new Error(`no component "${name}"; components: ${this.names().join(', ')}`);
      throw new Error(`node "${node}" not found; nodes: ${this.options.nodes.map((n) => n.name).join(', ')}`);
    }
    return Promise.all(
      matches.map(async (c) => {
        const where = c.node ? { node: c.node.name } : {};
        try {
          const out = await run(inNetns(c.node?.netnsPath ?? this.options.fabricNetns, [process.execPath, ADMIN_GET_SCRIPT, String(port), path]), { timeoutMs: 15_000 });
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
  logs(name: string, node?: string): { path: string; node?: string }[] | undefined {
    const matches = this.components.filter((c) => c.spec.name === name);
    if (matches.length === 0) return undefined;
    if (matches[0]!.spec.scope === 'cluster') return [{ path: matches[0]!.process.spec.logPath }];
    const picked = node ? matches.filter((c) => c.node?.name === node) : matches;
    if (picked.length === 0) throw new Error(`node "${node}" not found; nodes: ${this.options.nodes.map((n) => n.name).join(', ')}`);
    return picked.map((c) => ({ path: c.process.spec.logPath, node: c.node!.name }));
  }
}
