// The CNI agent: istio-cni's node agent for ambient pods. A pod enters the mesh by getting the in-pod capture rules
// (capture.ts) and being handed to its node's ztunnel over ZDS (zds.ts); it leaves in the opposite order, ztunnel
// first, so no captured packet finds its proxy gone. The agent keeps which pods it holds; what runs and what should be
// captured comes from its host, because reading that is the host's business: the local cluster answers from its
// store, a DaemonSet on Kubernetes would answer from informers. The host hears back through `onCaptureChanged` (Istio
// writes the pod's `ambient.istio.io/redirection` annotation there).
import { existsSync } from 'node:fs';
import { installCapture, removeCapture } from './capture.js';
import { ZdsServer } from './zds.js';

/** A pod as the agent needs it: who it is for ztunnel, where it runs, and its network namespace. */
export interface CniPod {
  uid: string;
  namespace: string;
  name: string;
  node: string;
  serviceAccount: string;
  netnsPath: string;
}

export interface CniAgentOptions {
  log: (line: string) => void;
  /** The pods running now on the agent's nodes, each with whether Istio's selection wants it captured. */
  runningPods: () => { pod: CniPod; wantsCapture: boolean }[];
  onCaptureChanged?: (pod: CniPod, captured: boolean) => void;
}

/** How long a pod that could not be (un)captured live waits before the next attempt. */
const CAPTURE_RETRY_MS = 2000;

export class CniAgent {
  private readonly zds = new Map<string, ZdsServer>();
  /** The pods whose rules are installed and whose ztunnel acknowledged them, by uid. */
  private readonly captured = new Map<string, CniPod>();
  private timer: NodeJS.Timeout | undefined;
  private syncing: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(private readonly options: CniAgentOptions) {}

  /** Opens a node's ZDS socket, where that node's ztunnel connects. */
  async addNode(node: string, socketPath: string): Promise<void> {
    const server = new ZdsServer(socketPath, node, this.options.log);
    await server.start();
    this.zds.set(node, server);
  }

  /** A node's ZDS server: a ztunnel rollout watches it for the new process's snapshot. */
  zdsServer(node: string): ZdsServer {
    const server = this.zds.get(node);
    if (!server) throw new Error(`the CNI agent has no node "${node}"`);
    return server;
  }

  isCaptured(uid: string): boolean {
    return this.captured.has(uid);
  }

  /**
   * Istio's CNI plugin at sandbox creation: rules in, then ztunnel must take the pod (waiting up to `connectWaitMs`
   * for it to connect), else the rules come off again and this throws, so the app never runs with its traffic sent to
   * a proxy that is not there.
   */
  async capture(pod: CniPod, connectWaitMs?: number): Promise<void> {
    await installCapture(pod.netnsPath);
    try {
      await this.zdsServer(pod.node).add(
        { uid: pod.uid, workloadInfo: { name: pod.name, namespace: pod.namespace, serviceAccount: pod.serviceAccount }, netns: pod.netnsPath },
        connectWaitMs,
      );
    } catch (err) {
      await removeCapture(pod.netnsPath).catch(() => undefined);
      throw err;
    }
    this.captured.set(pod.uid, pod);
    this.options.onCaptureChanged?.(pod, true);
    this.options.log(`pod ${pod.namespace}/${pod.name}: captured, handed to ztunnel on ${pod.node}`);
  }

  /** The pod leaves the mesh while it runs: ztunnel lets go of it first, then the rules go. */
  async release(pod: CniPod): Promise<void> {
    await this.zdsServer(pod.node).del(pod.uid);
    this.captured.delete(pod.uid);
    this.options.onCaptureChanged?.(pod, false);
    if (existsSync(pod.netnsPath)) await removeCapture(pod.netnsPath);
    this.options.log(`pod ${pod.namespace}/${pod.name}: released from capture`);
  }

  /** The pod's sandbox is torn down (its containers have stopped): ztunnel forgets it; the rules go with its namespace. */
  async podRemoved(pod: CniPod): Promise<void> {
    const zds = this.zds.get(pod.node);
    if (this.captured.delete(pod.uid) || zds?.has(pod.uid)) await zds?.del(pod.uid);
  }

  /** Brings every running pod's capture in line with its labels soon; (un)labelling never restarts a pod. */
  scheduleSync(delayMs = 0): void {
    if (this.timer || this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.syncing = this.syncing.then(() => this.sync());
    }, delayMs);
  }

  /** Resolves when the syncs asked for so far are done. */
  async settled(): Promise<void> {
    while (this.timer) await new Promise((r) => setTimeout(r, 5));
    await this.syncing;
  }

  private async sync(): Promise<void> {
    let failed = false;
    await Promise.all(
      this.options.runningPods().map(async ({ pod, wantsCapture }) => {
        if (wantsCapture === this.captured.has(pod.uid)) return;
        try {
          // Live changes do not wait for a missing ztunnel: the retry (and its snapshot on reconnect) covers it.
          if (wantsCapture) await this.capture(pod, 0);
          else await this.release(pod);
        } catch (err) {
          failed = true;
          this.options.log(`pod ${pod.namespace}/${pod.name}: ${wantsCapture ? 'capture' : 'release'} failed, will retry: ${(err as Error).message}`);
          return;
        }
        // Removed while it was being captured: podRemoved may have run before the add landed.
        if (wantsCapture && !this.options.runningPods().some((p) => p.pod.uid === pod.uid)) await this.podRemoved(pod).catch(() => undefined);
      }),
    );
    if (failed) this.scheduleSync(CAPTURE_RETRY_MS);
  }

  /** Stops syncing and closes the ZDS sockets; captured pods keep their rules until their namespaces go. */
  async close(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.syncing;
    for (const zds of this.zds.values()) zds.close();
  }
}
