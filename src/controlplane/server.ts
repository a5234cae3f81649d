// The control plane process's network face: one TLS gRPC port (istiod's 15012) carrying both Delta ADS and the
// certificate service, with a serving certificate issued by the mesh CA itself so clients need only the mesh root;
// and a plain-HTTP debug port on localhost (istiod's 15014) with /ready, /debug/status, /debug/syncz and /metrics.
import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import type { ObjectStatus } from '../model/ambient.js';
import type { NodeAuthenticator } from './auth.js';
import { CertificateService, type IdentityPlacement, type MeshCa } from './ca.js';
import { scopedLogger, type Logger } from './log.js';
import { ControlPlaneMetrics } from './metrics.js';
import { XdsServer, type XdsAuthorizer, type XdsConnectionInfo, type XdsType } from './xds.js';
import { AMBIT_VERSION } from '../common/version.js';

export const DEFAULT_XDS_LISTEN = '127.0.0.1:15012';
export const DEFAULT_DEBUG_LISTEN = '127.0.0.1:15014';
/** Names istiod's serving certificate carries, plus loopback so local clients can verify it by address. */
export const SERVING_DNS_NAMES = ['istiod.istio-system.svc', 'localhost'];
export const SERVING_IPS = ['127.0.0.1'];
const SERVING_CERT_TTL_SECONDS = 365 * 24 * 3600;

export interface StatusSource {
  /** The status the control plane writes on objects (policies, waypoint Gateways, Services). */
  statuses(): ObjectStatus[];
}

export interface ControlPlaneServerOptions {
  ca: MeshCa;
  authenticator: NodeAuthenticator;
  authorize?: XdsAuthorizer;
  xdsTypes: XdsType[];
  placement: IdentityPlacement;
  status?: StatusSource;
  /** `host:port` for gRPC; port 0 picks a free port. */
  listen?: string;
  /** `host:port` for the debug HTTP server. */
  debugListen?: string;
  /** Lifetime of a workload certificate whose request names none (istiod's DEFAULT_WORKLOAD_CERT_TTL, 24h). */
  defaultWorkloadCertTtlSeconds?: number;
  /** Longest lifetime a request may ask for; longer is refused (istiod's MAX_WORKLOAD_CERT_TTL, 90 days). */
  maxWorkloadCertTtlSeconds?: number;
  log?: Logger;
}

/** Splits `host:port`, `[v6]:port` or `:port` (host defaults to loopback); names the flag value when invalid. */
export function parseListen(value: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(value);
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port >= 0 && port <= 65535)) throw new Error(`invalid listen address "${value}": expected host:port, e.g. 127.0.0.1:15012`);
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port };
}

const isLoopback = (addr: string | undefined) => addr !== undefined && (addr === '::1' || /^(::ffff:)?127\./.test(addr));

/** The control plane as istioctl proxy-status names it (istiod's pod name and version). */
export const CONTROL_PLANE_ID = 'controlplane';

/** istiod's debugSyncStatus: a NACK wins, then nothing sent, then whether the last response was ACKed. */
function syncStatus(w: XdsConnectionInfo['watched'][number]): 'ERROR' | 'NOT_SENT' | 'SYNCED' | 'STALE' {
  if (w.lastError) return 'ERROR';
  if (!w.nonceSent) return 'NOT_SENT';
  return w.nonceAcked === w.nonceSent ? 'SYNCED' : 'STALE';
}

/**
 * istiod's `/debug/syncz` in JSON: per connected proxy an envoy ClientConfig (node id and the metadata istioctl
 * reads; per subscribed type its status, last send time and last NACK), plus which control plane answered.
 */
export function syncz(connections: XdsConnectionInfo[]): object {
  return {
    controlPlane: { identifier: { Component: 'istiod', ID: CONTROL_PLANE_ID, info: { version: AMBIT_VERSION } } },
    resources: connections
      .filter((c) => c.proxyId)
      .map((c) => ({
        node: {
          id: c.proxyId,
          metadata: { CLUSTER_ID: c.metadata.CLUSTER_ID ?? '', NAMESPACE: c.metadata.NAMESPACE ?? '', ISTIO_VERSION: c.metadata.ISTIO_VERSION ?? '' },
        },
        genericXdsConfigs: [...c.watched]
          .sort((a, b) => (a.typeUrl < b.typeUrl ? -1 : a.typeUrl > b.typeUrl ? 1 : 0))
          .map((w) => ({
            typeUrl: w.typeUrl,
            configStatus: syncStatus(w),
            ...(w.lastSendTime ? { lastUpdated: w.lastSendTime.toISOString() } : {}),
            ...(w.lastError ? { errorState: { lastUpdateAttempt: w.lastSendTime?.toISOString(), details: w.lastError } } : {}),
          })),
      })),
  };
}

const hostPort = (host: string, port: number) => (host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`);

export class ControlPlaneServer {
  readonly metrics = new ControlPlaneMetrics();
  readonly xds: XdsServer;
  private readonly grpcServer = new grpc.Server();
  private readonly http: HttpServer;
  private readonly log: Logger;
  port = 0;
  debugPort = 0;

  private constructor(private readonly opts: ControlPlaneServerOptions) {
    this.log = opts.log ?? scopedLogger('controlplane');
    this.xds = new XdsServer({ authenticator: opts.authenticator, authorize: opts.authorize, types: opts.xdsTypes, metrics: this.metrics, log: opts.log });
    this.xds.addTo(this.grpcServer);
    new CertificateService({
      ca: opts.ca,
      authenticator: opts.authenticator,
      placement: opts.placement,
      defaultTtlSeconds: opts.defaultWorkloadCertTtlSeconds,
      maxTtlSeconds: opts.maxWorkloadCertTtlSeconds,
      metrics: this.metrics,
      log: opts.log,
    }).addTo(this.grpcServer);
    this.http = createServer((req, res) => void this.serveDebug(req, res));
  }

  static async start(opts: ControlPlaneServerOptions): Promise<ControlPlaneServer> {
    const s = new ControlPlaneServer(opts);
    try {
      await s.listen();
    } catch (e) {
      await s.close();
      throw e;
    }
    return s;
  }

  /** The mesh root every client must trust to talk to this server. */
  get rootPem(): string {
    return this.opts.ca.rootPem;
  }

  private async listen(): Promise<void> {
    const grpcAddr = parseListen(this.opts.listen ?? DEFAULT_XDS_LISTEN);
    const debugAddr = parseListen(this.opts.debugListen ?? DEFAULT_DEBUG_LISTEN);
    const serving = await this.opts.ca.issueServing(SERVING_DNS_NAMES, SERVING_IPS, SERVING_CERT_TTL_SECONDS);
    const creds = grpc.ServerCredentials.createSsl(
      null,
      [{ private_key: Buffer.from(serving.keyPem), cert_chain: Buffer.from(serving.chainPem) }],
      false,
    );
    this.port = await new Promise<number>((resolve, reject) =>
      this.grpcServer.bindAsync(hostPort(grpcAddr.host, grpcAddr.port), creds, (err, port) =>
        err ? reject(new Error(`cannot listen for xDS/CA on ${hostPort(grpcAddr.host, grpcAddr.port)}: ${err.message}`)) : resolve(port),
      ),
    );
    await new Promise<void>((resolve, reject) => {
      this.http.once('error', (e) => reject(new Error(`cannot listen for debug HTTP on ${hostPort(debugAddr.host, debugAddr.port)}: ${e.message}`)));
      this.http.listen(debugAddr.port, debugAddr.host, () => resolve());
    });
    this.debugPort = (this.http.address() as AddressInfo).port;
    this.log.info(`serving xDS and CA (TLS) on ${hostPort(grpcAddr.host, this.port)}, debug HTTP on ${hostPort(debugAddr.host, this.debugPort)}`);
  }

  private async serveDebug(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    try {
      if (path === '/ready') {
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ready\n');
      } else if (path === '/metrics') {
        const body = await this.metrics.registry.metrics();
        res.writeHead(200, { 'content-type': this.metrics.registry.contentType }).end(body);
      } else if (path === '/debug/syncz') {
        // Which proxy holds what: loopback callers only, whatever address the debug port listens on (istiod asks
        // for a token from off-cluster callers; Ambit's debug port has no authentication to ask with).
        if (!isLoopback(req.socket.remoteAddress)) {
          res.writeHead(403, { 'content-type': 'text/plain' }).end('/debug/syncz is served to loopback callers only\n');
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(syncz(this.xds.connectionInfo()), null, 2) + '\n');
      } else if (path === '/debug/status') {
        const body = {
          statuses: this.opts.status?.statuses() ?? [],
          xds: {
            resources: Object.fromEntries(this.opts.xdsTypes.map((t) => [t.typeUrl, this.xds.resourceCount(t.typeUrl)])),
            connections: this.xds.connectionInfo(),
          },
        };
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body, null, 2) + '\n');
      } else {
        res.writeHead(404, { 'content-type': 'text/plain' }).end(`no such endpoint ${path}; try /ready, /debug/status, /debug/syncz, /metrics\n`);
      }
    } catch (e) {
      this.log.error(`debug endpoint ${path} failed: ${(e as Error).message}`);
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(`${(e as Error).message}\n`);
    }
  }

  async close(): Promise<void> {
    this.xds.close();
    await new Promise<void>((resolve) => {
      // Streams were ended by xds.close(); give unary CA calls a moment, then cut whatever is left.
      const timer = setTimeout(() => this.grpcServer.forceShutdown(), 2000);
      this.grpcServer.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    if (this.http.listening) await new Promise<void>((resolve) => this.http.close(() => resolve()));
    this.http.closeAllConnections();
  }
}
