// One waypoint process (the `istio-proxy` container of a waypoint pod): the xDS client (the mesh's addresses and this
// waypoint's own configuration), the CA client (one certificate, the waypoint's identity, with its own service
// account token), the HBONE listener and the HTTP/TCP proxies behind it, telemetry, and the admin, metrics and
// readiness ports.
//
// Failure model, as Envoy under pilot-agent: ready once configuration has arrived and the certificate is in hand; a
// control plane outage leaves the last configuration and the current certificate serving; SIGTERM stops accepting and
// gives open connections the drain period before closing them.
import { readFileSync } from 'node:fs';
import { startAdmin, type AdminServer, type Readiness } from '../telemetry/admin.js';
import type { LogSink, Logger } from '../telemetry/log.js';
import { registerProcessMetrics } from '../telemetry/process-metrics.js';
import { HbonePool } from '../hbone/pool.js';
import { SecretManager } from '../xds/ca-client.js';
import { XdsClient, proxyNodeId } from '../xds/client.js';
import { waypointIdentity, type WaypointConfig } from './config.js';
import { WaypointInbound } from './inbound.js';
import { WaypointState } from './state.js';
import { WaypointTelemetry } from './telemetry.js';
import { JwksCache } from './http/jwks.js';
import { meshJwksFetch } from './jwks-fetch.js';
import { Upstreams } from './upstream.js';
import { AMBIT_VERSION } from '../common/version.js';

export interface WaypointOptions {
  config: WaypointConfig;
  sink: LogSink;
  /** `/quitquitquit` was answered: the process should shut down. */
  onQuit?: () => void;
}

export class Waypoint {
  readonly state: WaypointState;
  readonly secrets: SecretManager;
  readonly xds: XdsClient;
  readonly telemetry: WaypointTelemetry;
  readonly identity: string;
  private readonly pool: HbonePool;
  private readonly inbound: WaypointInbound;
  private admin: AdminServer | undefined;
  private readonly log: Logger;
  private closing: Promise<void> | undefined;

  private constructor(private readonly opts: WaypointOptions) {
    const { config, sink } = opts;
    this.log = sink.logger('waypoint');
    let rootPem: string;
    try {
      rootPem = readFileSync(config.rootCertFile, 'utf8');
    } catch (e) {
      throw new Error(`cannot read the mesh root certificate ${config.rootCertFile}: ${(e as Error).message}`);
    }
    this.identity = waypointIdentity(config);
    // JWKS are fetched through the waypoint's own upstreams, which exist once the state does.
    let upstreams: Upstreams | undefined;
    const jwks = new JwksCache(
      (url, timeoutMs) => meshJwksFetch(this.state, () => upstreams!)(url, timeoutMs),
      sink.logger('jwt'),
    );
    this.state = new WaypointState(sink.logger('config'), config.podNamespace, config.gatewayName, jwks);
    this.secrets = new SecretManager({
      caAddress: config.caAddress,
      serverName: config.xdsHostname,
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
      nodeId: proxyNodeId('waypoint', config.instanceIp || '0.0.0.0', config.podName, config.podNamespace, config.clusterDomain),
      metadata: {
        NAME: config.podName,
        NAMESPACE: config.podNamespace,
        NODE_NAME: config.nodeName,
        INSTANCE_IPS: config.instanceIp,
        CLUSTER_ID: config.clusterId,
        SERVICE_ACCOUNT: config.serviceAccount,
        ISTIO_VERSION: AMBIT_VERSION,
      },
      subscriptions: this.state.xdsSubscriptions(),
      onSynced: (typeUrl) => this.state.markSynced(typeUrl),
      log: sink.logger('xds'),
    });
    this.telemetry = new WaypointTelemetry({ accessLog: config.accessLog });
    // CPU, memory and descriptors under the Prometheus client names, for the waypoint dashboard (no cAdvisor here).
    registerProcessMetrics(this.telemetry.registry);
    this.pool = new HbonePool({
      maxStreamsPerConnection: config.poolMaxStreamsPerConnection,
      idleTimeoutMs: config.poolUnusedReleaseTimeoutMs,
      connectTimeoutMs: config.connectTimeoutMs,
    });
    const certificate = () => this.secrets.fetch(this.identity);
    this.inbound = new WaypointInbound({
      state: this.state,
      upstreams: (upstreams = new Upstreams({ state: this.state, pool: this.pool, certificate, connectTimeoutMs: config.connectTimeoutMs, log: sink.logger('upstream') })),
      telemetry: this.telemetry,
      log: sink.logger('proxy'),
      certificate,
      limits: { idleTimeoutMs: config.hboneIdleTimeoutMs, maxConnections: config.hboneMaxConnections, maxConnectionsPerPeer: config.hboneMaxConnectionsPerPeer },
    });
  }

  static async start(opts: WaypointOptions): Promise<Waypoint> {
    const w = new Waypoint(opts);
    const { config } = opts;
    try {
      w.admin = await startAdmin({
        title: 'waypoint',
        adminPort: config.adminPort,
        metricsPort: config.metricsPort,
        readinessPort: config.statusPort,
        configDump: () => w.configDump(),
        registry: w.telemetry.registry,
        ready: () => w.readiness(),
        logSink: opts.sink,
        log: opts.sink.logger('admin'),
        onQuit: opts.onQuit,
      });
      await w.inbound.listen(config.hbonePort);
    } catch (e) {
      await w.close();
      throw e;
    }
    w.secrets.prefetch(w.identity);
    w.xds.start();
    w.log.info(
      `waypoint ${config.podNamespace}/${config.gatewayName} started as ${w.identity}: HBONE :${config.hbonePort}, xDS ${config.xdsAddress}, ` +
        `CA ${config.caAddress}, admin 127.0.0.1:${w.admin.admin.port}, metrics :${w.admin.metrics.port}, readiness :${w.admin.readiness.port}`,
    );
    return w;
  }

  /** Envoy's readiness under pilot-agent: configuration received and a certificate to present. */
  readiness(): Readiness {
    const pending: string[] = [];
    if (!this.state.synced) pending.push('xds');
    if (!this.secrets.cached(this.identity)) pending.push('certificate');
    return { ready: pending.length === 0, pending };
  }

  configDump(): object {
    return {
      identity: this.identity,
      ...this.state.configDump(),
      certificates: this.secrets.certificates(),
      xds: { connected: this.xds.connected, ...this.xds.stats, lastNack: this.xds.lastNack },
      config: this.opts.config,
    };
  }

  /**
   * Envoy's drain, then shutdown: for the drain period the waypoint keeps accepting (ztunnels may still route here
   * until they hear the pod is gone) while telling every client to move on (GOAWAY, `connection: close`); then it
   * closes what is left and stops everything else.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.inbound.drain();
      await new Promise((resolve) => setTimeout(resolve, this.opts.config.drainDurationMs));
      await this.inbound.close(0);
      await this.pool.close(1000);
      this.xds.close();
      this.secrets.close();
      await this.admin?.close();
      this.log.info('waypoint stopped');
    })();
    return this.closing;
  }
}
