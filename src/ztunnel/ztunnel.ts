// One ztunnel process (per node): wires the xDS client (mesh state), the SecretManager (pod certificates), the ZDS
// client (which pods to serve) and one PodProxy per captured pod, plus the admin/metrics/readiness servers.
//
// Failure model, as ztunnel's: a pod whose proxy cannot start is reported to the CNI agent in the ZDS ack and the
// rest carry on; a control plane outage leaves the last configuration and the current certificates serving; readiness
// means "xDS synced once, connected to the CNI agent, snapshot applied" and does not drop while the control plane is
// away.
import { readFileSync } from 'node:fs';
import { HboneConnectionLimiter } from '../hbone/limits.js';
import { ZtunnelTelemetry } from '../telemetry/connection.js';
import { startAdmin, type AdminServer, type Readiness } from '../telemetry/admin.js';
import { SecretManager } from '../xds/ca-client.js';
import type { ZtunnelConfig } from './config.js';
import type { LogSink, ZtunnelLogger } from './log.js';
import { native } from '../inpod/native.js';
import { PodProxy } from './pod-proxy.js';
import { ProxyState } from './state.js';
import { XdsClient, proxyNodeId } from '../xds/client.js';
import { XdsMetrics } from '../xds/metrics.js';
import { registerProcessMetrics } from '../telemetry/process-metrics.js';
import { DnsMetrics, OnDemandDnsMetrics, WorkloadManagerMetrics } from './metrics.js';
import { ZdsClient, type ZdsPod } from './zds.js';
import { AMBIT_VERSION } from '../common/version.js';

export interface ZtunnelOptions {
  config: ZtunnelConfig;
  sink: LogSink;
  /** `/quitquitquit` was answered: the process should shut down. */
  onQuit?: () => void;
}

interface PodEntry {
  pod: ZdsPod;
  identity: string;
  /** Settles when the proxy is up (or failed to start). */
  starting: Promise<PodProxy>;
  proxy?: PodProxy;
}

export class Ztunnel {
  readonly state: ProxyState;
  readonly secrets: SecretManager;
  readonly xds: XdsClient;
  readonly zds: ZdsClient;
  readonly telemetry: ZtunnelTelemetry;
  /** Registered only with the DNS proxy on, as ztunnel registers its DNS series. */
  private readonly dnsMetrics: DnsMetrics | undefined;
  private readonly onDemandDnsMetrics: OnDemandDnsMetrics;
  private readonly workloadManager: WorkloadManagerMetrics;
  private admin: AdminServer | undefined;
  private readonly pods = new Map<string, PodEntry>();
  private readonly log: ZtunnelLogger;
  /** One set of inbound HBONE connection counts for all the node's pods: a peer flooding several pods counts once. */
  private readonly hboneLimiter: HboneConnectionLimiter;
  private closing: Promise<void> | undefined;

  private constructor(private readonly opts: ZtunnelOptions) {
    const { config, sink } = opts;
    this.log = sink.logger('ztunnel');
    let rootPem: string;
    try {
      rootPem = readFileSync(config.rootCertFile, 'utf8');
    } catch (e) {
      throw new Error(`cannot read the mesh root certificate --root-cert ${config.rootCertFile}: ${(e as Error).message}`);
    }
    this.state = new ProxyState(sink.logger('state'));
    this.telemetry = new ZtunnelTelemetry({ log: sink });
    const { registry } = this.telemetry;
    registerProcessMetrics(registry);
    this.dnsMetrics = config.dnsCapture ? new DnsMetrics(registry) : undefined;
    this.onDemandDnsMetrics = new OnDemandDnsMetrics(registry);
    this.workloadManager = new WorkloadManagerMetrics(registry, () => {
      let active = 0;
      for (const e of this.pods.values()) if (e.proxy) active++;
      return { active, pending: this.pods.size - active };
    });
    const inboundLog = sink.logger('inbound');
    this.hboneLimiter = new HboneConnectionLimiter(
      { maxConnections: config.hboneMaxConnections, maxConnectionsPerPeer: config.hboneMaxConnectionsPerPeer },
      (message) => inboundLog.warn(message),
    );
    this.secrets = new SecretManager({
      caAddress: config.caAddress,
      serverName: config.caHostname,
      rootPem,
      tokenFile: config.tokenFile,
      ttlSeconds: config.secretTtlSeconds,
      log: sink.logger('cert'),
    });
    this.xds = new XdsClient({
      address: config.xdsAddress,
      serverName: config.xdsHostname,
      rootPem,
      tokenFile: config.tokenFile,
      nodeId: proxyNodeId('ztunnel', config.instanceIp, config.podName, config.podNamespace, config.clusterDomain),
      metadata: {
        NODE_NAME: config.nodeName,
        NAME: config.podName,
        NAMESPACE: config.podNamespace,
        INSTANCE_IPS: config.instanceIp,
        CLUSTER_ID: config.clusterId,
        ISTIO_VERSION: AMBIT_VERSION,
      },
      subscriptions: this.state.xdsSubscriptions(),
      onSynced: (typeUrl) => this.state.markSynced(typeUrl),
      log: sink.logger('xds'),
      metrics: new XdsMetrics(registry),
    });
    this.zds = new ZdsClient({
      path: config.zdsSocket,
      log: sink.logger('inpod'),
      handler: {
        add: (pod) => this.addPod(pod),
        del: (uid) => this.removePod(uid),
        snapshotSent: (keep) => this.reconcile(keep),
      },
    });
  }

  /** Starts everything; resolves once the admin ports listen (readiness follows as xDS and ZDS come up). */
  static async start(opts: ZtunnelOptions): Promise<Ztunnel> {
    const z = new Ztunnel(opts);
    const { config } = opts;
    try {
      z.admin = await startAdmin({
        title: 'ztunnel',
        adminPort: config.adminPort,
        metricsPort: config.metricsPort,
        readinessPort: config.readinessPort,
        configDump: () => z.configDump(),
        registry: z.telemetry.registry,
        ready: () => z.readiness(),
        logSink: opts.sink,
        log: opts.sink.logger('admin'),
        onQuit: opts.onQuit,
        // SO_REUSEPORT, as on the pod listeners: during a rolling restart both processes run in the node's netns.
        bindListener: (host, port) => native().listenTcp(-1, host, port, { reuseport: true, reuseaddr: true }),
      });
    } catch (e) {
      z.secrets.close();
      z.xds.close();
      throw e;
    }
    z.xds.start();
    // As ztunnel, the CNI connection (and with it every pod's listeners) waits for the first xDS sync: a replacement
    // ztunnel takes pods over only once it can route their traffic.
    void z.state.whenSynced().then(() => {
      if (!z.closing) z.zds.start();
    });
    z.log.info(
      `ztunnel for node ${config.nodeName} started: xDS ${config.xdsAddress}, CA ${config.caAddress}, CNI agent ${config.zdsSocket}, ` +
        `admin 127.0.0.1:${z.admin.admin.port}, metrics :${z.admin.metrics.port}, readiness :${z.admin.readiness.port}`,
    );
    return z;
  }

  /** ztunnel's readiness tasks: the state manager (first xDS sync) and the CNI connection (snapshot applied). */
  readiness(): Readiness {
    const pending: string[] = [];
    if (!this.state.synced) pending.push('state manager');
    if (!this.zds.connected || !this.zds.snapshotApplied) pending.push('cni connection');
    return { ready: pending.length === 0, pending };
  }

  configDump(): object {
    const workloadState: Record<string, unknown> = {};
    for (const [uid, e] of this.pods) {
      workloadState[uid] = {
        state: e.proxy ? 'Up' : 'Pending',
        ...(e.proxy ? { connections: e.proxy.openConnections() } : {}),
        info: { name: e.pod.name, namespace: e.pod.namespace, serviceAccount: e.pod.serviceAccount },
        netns: e.pod.netnsPath,
      };
    }
    return {
      ...this.state.configDump(),
      certificates: this.secrets.certificates(),
      workloadState,
      xds: { connected: this.xds.connected, ...this.xds.stats, lastNack: this.xds.lastNack },
      config: this.opts.config,
    };
  }

  private async addPod(pod: ZdsPod): Promise<void> {
    const existing = this.pods.get(pod.uid);
    if (existing) {
      // A replay after a reconnect: the same pod in the same netns is already served.
      if (existing.pod.netnsPath === pod.netnsPath) {
        await existing.starting;
        return;
      }
      await this.removePod(pod.uid);
    }
    const identity = this.state.identityOf({ trustDomain: this.opts.config.trustDomain, namespace: pod.namespace, serviceAccount: pod.serviceAccount });
    // Ask for the certificate now so the first connection does not wait for the CA.
    this.secrets.prefetch(identity);
    const entry: PodEntry = {
      pod,
      identity,
      starting: PodProxy.start({
        pod,
        state: this.state,
        secrets: this.secrets,
        config: this.opts.config,
        telemetry: this.telemetry,
        dnsMetrics: this.dnsMetrics,
        onDemandDnsMetrics: this.onDemandDnsMetrics,
        hboneLimiter: this.hboneLimiter,
        log: this.opts.sink.logger('inpod'),
      }),
    };
    this.pods.set(pod.uid, entry);
    try {
      entry.proxy = await entry.starting;
      this.workloadManager.proxyStarted();
    } catch (e) {
      if (this.pods.get(pod.uid) === entry) this.pods.delete(pod.uid);
      this.secrets.release(identity);
      throw new Error(`failed to start the proxy for pod ${pod.namespace}/${pod.name} (${pod.netnsPath}): ${(e as Error).message}`);
    }
    this.log.info(`pod ${pod.namespace}/${pod.name} added`, { uid: pod.uid, identity });
  }

  private async removePod(uid: string): Promise<void> {
    const entry = this.pods.get(uid);
    if (!entry) return; // already gone: deleting twice is fine
    this.pods.delete(uid);
    try {
      const proxy = await entry.starting;
      await proxy.close();
      this.workloadManager.proxyStopped();
    } catch {
      // It never started; nothing to stop.
    }
    this.secrets.release(entry.identity);
    this.log.info(`pod ${entry.pod.namespace}/${entry.pod.name} removed`, { uid });
  }

  private async reconcile(keep: ReadonlySet<string>): Promise<void> {
    const stale = [...this.pods.keys()].filter((uid) => !keep.has(uid));
    await Promise.all(stale.map((uid) => this.removePod(uid)));
    if (stale.length) this.log.info(`removed ${stale.length} pod(s) the CNI agent no longer lists`);
  }

  /**
   * Shuts down as ztunnel drains on SIGTERM: stops taking pods from the CNI agent (they are not deleted: the
   * replacement ztunnel, already connected, holds them), stops accepting on every listener (pods' and admin's; with
   * SO_REUSEPORT the replacement's listeners take over), lets open connections finish for up to
   * CONNECTION_TERMINATION_DEADLINE while the pods' DNS proxies keep answering, resets what is left, then stops xDS
   * and certificates.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.zds.close();
      const adminClosed = this.admin?.close();
      const entries = [...this.pods.values()];
      this.pods.clear();
      const drains = await Promise.all(
        entries.map(async (e) => {
          try {
            return await (await e.starting).close();
          } catch {
            return { expired: false }; // never started
          }
        }),
      );
      if (drains.some((d) => d.expired)) this.log.warn('drain duration expired with pending connections, forcefully shutting down');
      this.xds.close();
      this.secrets.close();
      await adminClosed;
      this.log.info('shutdown complete');
    })();
    return this.closing;
  }
}
