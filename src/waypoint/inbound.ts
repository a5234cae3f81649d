// The waypoint's front door: HBONE on 15008, mTLS with the waypoint's own identity. Each CONNECT names the original
// destination (`:authority`): a VIP:port of a Service bound to this waypoint, or the IP:port of a workload that uses
// it. What is not ours is refused before the 200 (Envoy closes a connection no filter chain matches). The port's
// protocol decides the path: HTTP ports (and sniffed ports whose first bytes are HTTP) go to the HTTP proxy, the
// rest to the TCP proxy.
import type * as net from 'node:net';
import type { Duplex } from 'node:stream';
import { normalizeIp } from '../common/ip.js';
import { formatAuthority } from '../hbone/headers.js';
import { HboneConnectionLimiter, type HboneServerLimits } from '../hbone/limits.js';
import { HboneServer, type HboneDecision, type HboneRequest } from '../hbone/server.js';
import type { WorkloadCertificate } from '../identity/workload-cert.js';
import type { Logger } from '../telemetry/log.js';
import type { Service, WaypointProtocol, WaypointServicePort, Workload } from '../xds/types.js';
import type { StreamContext } from './http/proxy.js';
import { HttpProxy } from './http/proxy.js';
import type { WaypointState } from './state.js';
import { TcpProxy } from './tcp.js';
import type { DestinationServiceLabels, PeerLabels, WaypointTelemetry } from './telemetry.js';
import type { Upstreams } from './upstream.js';

export interface WaypointInboundOptions {
  state: WaypointState;
  upstreams: Upstreams;
  telemetry: WaypointTelemetry;
  log: Logger;
  certificate(): Promise<WorkloadCertificate>;
  /** HBONE_IDLE_TIMEOUT, HBONE_MAX_CONNECTIONS, HBONE_MAX_CONNECTIONS_PER_PEER. */
  limits: HboneServerLimits;
}

/** Ports whose traffic is plain TCP to the waypoint (no HTTP processing), as Istio's protocols say. */
const TCP_PROTOCOLS = new Set<WaypointProtocol>(['TCP', 'TLS', 'HTTPS', 'MONGO', 'REDIS', 'MYSQL']);
const HTTP_PROTOCOLS = new Set<WaypointProtocol>(['HTTP', 'HTTP2', 'GRPC', 'GRPC_WEB']);
/** How many bytes sniffing waits for at most: enough for an HTTP/1 method and a space, or the HTTP/2 preface. */
const SNIFF_BYTES = 24;
const HTTP1_REQUEST_START = /^[A-Z]{3,10} [^ \r\n]/;

const UNKNOWN_PEER: PeerLabels = {
  workload: 'unknown',
  namespace: 'unknown',
  principal: 'unknown',
  app: 'unknown',
  version: 'unknown',
  canonicalService: 'unknown',
  canonicalRevision: 'unknown',
  cluster: 'unknown',
};
/** The destination Service of workload-addressed traffic: none, so the metrics fall back to the endpoint's. */
const NO_SERVICE: DestinationServiceLabels = { service: '', name: '', namespace: '' };
/** How many clients without a known workload keep their labels before that cache starts over. */
const MAX_UNKNOWN_PEERS = 4096;

export class WaypointInbound {
  readonly server: HboneServer;
  private readonly http: HttpProxy;
  private readonly tcp: TcpProxy;
  // Label objects are reused because telemetry finds a request's series by their identity; a new object per CONNECT
  // would cost every connection a lookup by value.
  /** Per workload object (a changed workload is a new object). */
  private readonly labels = new WeakMap<Workload, PeerLabels>();
  /** Per Service object (a changed Service is a new object). */
  private readonly serviceLabels = new WeakMap<Service, DestinationServiceLabels>();
  /**
   * Clients the waypoint knows no workload for, by SPIFFE identity. Bounded because any identity the mesh CA signs can
   * connect; starting over only costs each of them one lookup by value again.
   */
  private readonly unknownPeerLabels = new Map<string, PeerLabels>();

  constructor(private readonly opts: WaypointInboundOptions) {
    const peerLabels = (w: Workload | undefined) => this.peerLabels(w);
    const serviceLabels = (s: Service) => this.destinationServiceLabels(s);
    this.http = new HttpProxy({ ...opts, peerLabels, serviceLabels });
    this.tcp = new TcpProxy({ ...opts, peerLabels, serviceLabels });
    this.server = new HboneServer({
      certificateFor: () => opts.certificate(),
      onConnect: (req) => this.onConnect(req),
      onConnectionError: ({ peer, error }) => opts.log.warn(`connection from ${formatAuthority(normalizeIp(peer.address) ?? peer.address, peer.port)} failed: ${error.message}`),
      idleTimeoutMs: opts.limits.idleTimeoutMs,
      limiter: new HboneConnectionLimiter(opts.limits, (message) => opts.log.warn(message)),
    });
  }

  listen(port: number): Promise<net.AddressInfo> {
    return this.server.listen(port);
  }

  private peerLabels(w: Workload | undefined): PeerLabels {
    if (w === undefined) return UNKNOWN_PEER;
    let l = this.labels.get(w);
    if (l === undefined) {
      l = {
        workload: w.workloadName || w.name,
        namespace: w.namespace,
        principal: this.opts.state.identityOf(w),
        app: w.canonicalName || 'unknown',
        version: w.canonicalRevision || 'unknown',
        canonicalService: w.canonicalName || 'unknown',
        canonicalRevision: w.canonicalRevision || 'latest',
        cluster: w.clusterId || 'unknown',
      };
      this.labels.set(w, l);
    }
    return l;
  }

  /** A client without a known workload: only its verified identity is known. */
  private unknownPeer(principal: string): PeerLabels {
    if (principal === '') return UNKNOWN_PEER;
    let l = this.unknownPeerLabels.get(principal);
    if (l === undefined) {
      if (this.unknownPeerLabels.size >= MAX_UNKNOWN_PEERS) this.unknownPeerLabels.clear();
      this.unknownPeerLabels.set(principal, (l = { ...UNKNOWN_PEER, principal }));
    }
    return l;
  }

  private destinationServiceLabels(service: Service): DestinationServiceLabels {
    let l = this.serviceLabels.get(service);
    if (l === undefined) {
      l = { service: service.hostname, name: service.name, namespace: service.namespace };
      this.serviceLabels.set(service, l);
    }
    return l;
  }

  private onConnect(req: HboneRequest): HboneDecision {
    const { state, log } = this.opts;
    const targetIp = normalizeIp(req.target.host);
    const refuse = (why: string): HboneDecision => {
      log.debug(`refusing CONNECT ${req.authority} from ${req.srcIdentity}: ${why}`);
      return { status: 503, error: why };
    };
    if (targetIp === undefined) return refuse(`${req.authority} is not an ip:port destination`);
    const peerIp = normalizeIp(req.peer.address) ?? req.peer.address;
    const sourceWorkload = state.workloadByIp(peerIp);
    // The workload at the peer's address is the client only if the certificate says so (its labels carry its identity).
    const sourceLabels = sourceWorkload === undefined ? undefined : this.peerLabels(sourceWorkload);
    const ctx: StreamContext = {
      peerIp,
      peerAddress: formatAuthority(peerIp, req.peer.port),
      localAddress: formatAuthority(normalizeIp(req.local.address) ?? req.local.address, req.local.port),
      sourcePrincipal: req.srcIdentity.replace(/^spiffe:\/\//, ''),
      targetIp,
      targetPort: req.target.port,
      source: sourceLabels !== undefined && sourceLabels.principal === req.srcIdentity ? sourceLabels : this.unknownPeer(req.srcIdentity),
      destinationService: NO_SERVICE,
      cluster: 'encap',
    };
    let protocol: WaypointProtocol = 'UNSPECIFIED';
    const service = state.serviceByVip(targetIp);
    if (service) {
      const bound = state.boundService(service);
      if (!bound) return refuse(`service ${service.namespace}/${service.hostname} is not bound to this waypoint`);
      const port: WaypointServicePort | undefined = bound.ports.find((p) => p.port === req.target.port);
      if (!port) return refuse(`service ${service.hostname} has no port ${req.target.port}`);
      protocol = port.protocol;
      Object.assign(ctx, { service, bound, port });
      ctx.destinationService = this.destinationServiceLabels(service);
      ctx.cluster = `inbound-vip|${port.port}|${HTTP_PROTOCOLS.has(protocol) ? 'http' : 'tcp'}|${service.hostname}`;
    } else {
      const workload = state.workloadByIp(targetIp);
      if (!workload || !state.servesWorkload(workload)) return refuse(`${targetIp} is not a service or workload that uses this waypoint`);
      ctx.workload = workload;
    }
    if (protocol === 'UDP') return refuse(`port ${req.target.port} is UDP`);
    return { status: 200, accept: (stream) => this.dispatch(stream, ctx, protocol) };
  }

  private dispatch(stream: Duplex, ctx: StreamContext, protocol: WaypointProtocol): void {
    if (HTTP_PROTOCOLS.has(protocol)) return this.http.serve(stream, ctx);
    if (TCP_PROTOCOLS.has(protocol)) return this.tcp.serve(stream, ctx);
    // Unknown protocol: as Envoy's HTTP inspector, look at the first bytes.
    this.sniff(stream, (head) => {
      const text = head.toString('latin1', 0, Math.min(head.length, SNIFF_BYTES));
      const http = text.startsWith('PRI * HTTP/2.0') || 'PRI * HTTP/2.0'.startsWith(text) || HTTP1_REQUEST_START.test(text);
      if (http) this.http.serve(stream, { ...ctx, cluster: ctx.cluster.replace('|tcp|', '|http|') });
      else this.tcp.serve(stream, ctx);
    });
  }

  /** Waits for the first bytes (or the end of the stream), puts them back, and lets `decide` route the stream. */
  private sniff(stream: Duplex, decide: (head: Buffer) => void): void {
    let head = Buffer.alloc(0);
    const onReadable = () => {
      for (let chunk = stream.read() as Buffer | null; chunk !== null; chunk = stream.read() as Buffer | null) head = Buffer.concat([head, chunk]);
      const text = head.toString('latin1', 0, Math.min(head.length, SNIFF_BYTES));
      const undecided = head.length < SNIFF_BYTES && !/[ \r\n]/.test(text) && /^[A-Z]*$/.test(text);
      if (undecided && !stream.readableEnded) return;
      stream.off('readable', onReadable);
      stream.off('end', onReadable);
      if (head.length) stream.unshift(head);
      decide(head);
    };
    stream.on('readable', onReadable);
    stream.on('end', onReadable);
  }

  /** Tells clients to go elsewhere (GOAWAY, `connection: close`) while still accepting; see Waypoint.close. */
  drain(): void {
    this.server.drain();
    this.http.drain();
  }

  async close(graceMs: number): Promise<void> {
    await this.server.close(graceMs);
    await this.http.close();
  }
}
