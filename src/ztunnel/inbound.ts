// Inbound HBONE (15008 in the pod netns): mTLS terminated with the pod's own certificate, then per CONNECT stream
// ztunnel's checks in its order (Inbound::build_inbound_request): the HBONE address must be this pod, no recursive
// ports, L4 authorization with the verified client identity, then the upstream connect to the application (from the
// client's own IP where the kernel allows it). Only after all of that does the client get its 200.
import type * as net from 'node:net';
import { HboneServer, type HboneDecision, type HboneRequest, type HboneStreamStats } from '../hbone/server.js';
import { formatAuthority } from '../hbone/headers.js';
import type { WorkloadCertificate } from '../identity/workload-cert.js';
import type { ConnectionInfo, ConnectionTracker, ResponseFlag } from '../telemetry/connection.js';
import { DENIED_PREFIX, evaluate, logDecision, type RbacConnection } from './rbac.js';
import { normalizeIp } from '../common/ip.js';
import { http2Tuning, inboundService, keepalive, localWorkloadError, type PodScope } from './pod-scope.js';
import { baggageSource, responseBaggageHeaders } from './baggage.js';
import { RECURSIVE_CALL, RECURSIVE_PORTS, connectInPod, errorText, peerWorkload, serviceRef, trackerObserver } from './upstream.js';

interface StreamRecord {
  tracker: ConnectionTracker;
  flag: ResponseFlag;
  /** Set when we closed the connection ourselves (policy change, pod removal): the access log's error. */
  closedBecause?: string;
  unregister?: () => void;
}

/** `x-forwarded-network`: the client's network, on a request relayed through a network gateway (ztunnel ≥ 1.30). */
function forwardedNetwork(req: HboneRequest): string | undefined {
  const v = req.headers['x-forwarded-network'];
  return typeof v === 'string' ? v : undefined;
}

export class InboundProxy {
  private readonly server: HboneServer;
  private readonly records = new WeakMap<HboneRequest, StreamRecord>();
  /** The pod's current certificate; replaced on rotation so new handshakes present the new one. */
  private current?: WorkloadCertificate;
  private readonly unsubscribe: () => void;

  constructor(private readonly scope: PodScope) {
    this.unsubscribe = scope.secrets.onRotate((cert) => {
      if (cert.identity === scope.identity) this.current = cert;
    });
    this.server = new HboneServer({
      certificateFor: () => (this.current && !this.current.isExpired() ? this.current : this.fetchCertificate()),
      onConnect: (req) => this.onConnect(req),
      onStreamClose: (stats) => this.onStreamClose(stats),
      onConnectionError: ({ peer, local, error, phase }) => {
        const srcAddr = formatAuthority(normalizeIp(peer.address) ?? peer.address, peer.port);
        const dstAddr = formatAuthority(normalizeIp(local.address) ?? local.address, local.port);
        const flag: ResponseFlag = phase === 'identity' ? 'IDENTITY_ERROR' : phase === 'http2' ? 'H2_HANDSHAKE_FAILURE' : 'TLS_FAILURE';
        scope.telemetry.failed({ direction: 'inbound', srcAddr, dstAddr }, { message: error.message, flag });
      },
      tuning: http2Tuning(scope.config),
      keepalive: keepalive(scope.config),
      idleTimeoutMs: scope.config.hboneIdleTimeoutMs,
      limiter: scope.hboneLimiter,
    });
  }

  private async fetchCertificate(): Promise<WorkloadCertificate> {
    this.current = await this.scope.certificate();
    return this.current;
  }

  /** Serves a connection accepted on the pod's 15008 listener. */
  handle(socket: net.Socket): void {
    this.server.handleConnection(socket);
  }

  private async onConnect(req: HboneRequest): Promise<HboneDecision> {
    const { state, telemetry, config } = this.scope;
    const peerIp = normalizeIp(req.peer.address) ?? req.peer.address;
    const localIp = normalizeIp(req.local.address) ?? req.local.address;
    const info: ConnectionInfo = {
      direction: 'inbound',
      srcAddr: formatAuthority(peerIp, req.peer.port),
      dstAddr: formatAuthority(localIp, req.local.port),
      hboneAddr: req.authority,
      srcIdentity: req.srcIdentity,
      dstIdentity: req.dstIdentity,
      mtls: true,
    };
    // A request that crossed a network gateway (`x-forwarded-network` naming another network) comes from an address
    // of another network, which says nothing here: as ztunnel, only its baggage describes the source.
    const clientNetwork = forwardedNetwork(req);
    const viaGateway = clientNetwork !== undefined && clientNetwork.toLowerCase() !== config.network.toLowerCase();
    const src = viaGateway ? undefined : state.workloadByIp(peerIp);
    if (src) info.srcWorkload = peerWorkload(src, req.srcIdentity);
    // ztunnel reads the request's baggage only with ENABLE_RESPONSE_BAGGAGE; an unknown source is then labelled by it.
    else if (config.enableResponseBaggage) info.srcWorkload = baggageSource(req.baggage);
    const local = await this.scope.localWorkload();
    if (local) {
      info.dstWorkload = peerWorkload(local, state.identityOf(local));
      const svc = inboundService(state, local, req.target.port, req.forwarded?.host);
      if (svc) info.dstService = serviceRef(svc);
    }
    const record: StreamRecord = { tracker: telemetry.open(info), flag: '-' };
    this.records.set(req, record);
    const reject = (status: 400 | 401 | 503, error: string, flag: ResponseFlag = '-'): HboneDecision => {
      record.flag = flag;
      return { status, error };
    };

    // The target: `ip:port` must be this pod; `hostname:port` names one of its services.
    let port = req.target.port;
    const targetIp = normalizeIp(req.target.host);
    if (targetIp !== undefined) {
      if (targetIp !== localIp) return reject(400, `ip mismatch: ${localIp} != ${targetIp}`);
    }
    if (!local) return reject(503, localWorkloadError(this.scope.pod));
    if (targetIp === undefined) {
      const svc = state.serviceByHostname(req.target.host, local.namespace);
      const mapped = svc && state.endpointsOf(svc).find((e) => e.workload.uid === local.uid)?.targetPort(port);
      if (mapped === undefined) return reject(503, `requested service ${req.authority} found, but cannot resolve port`);
      port = mapped;
    }
    if (RECURSIVE_PORTS.has(port)) return reject(503, RECURSIVE_CALL);

    const rbac: RbacConnection = { srcIp: peerIp, dstIp: localIp, dstPort: port, srcIdentity: req.srcIdentity };
    const decision = evaluate(state.policiesFor(local), rbac);
    logDecision(this.scope.log, decision, config.authzPolicyInfoLogging, info.srcAddr, info.dstAddr);
    if (!decision.allowed) return reject(401, DENIED_PREFIX + decision.reason, 'DENY');

    let upstream: net.Socket;
    try {
      upstream = await connectInPod(this.scope.netns, localIp, port, {
        mark: config.packetMark,
        sourceIp: peerIp,
        timeoutMs: config.connectTimeoutMs,
      });
    } catch (e) {
      return reject(503, `connection failed: ${errorText(e)}`, 'CONNECT');
    }
    // A policy that arrived while we were connecting has not seen this connection yet: check once more.
    const again = evaluate(state.policiesFor(local), rbac);
    if (!again.allowed) {
      upstream.destroy();
      return reject(401, DENIED_PREFIX + again.reason, 'DENY');
    }
    record.unregister = this.scope.connections.register({
      rbac,
      close: (reason) => {
        record.closedBecause = reason;
        record.flag = 'DENY';
        // Resetting the application leg makes the copy abort the HBONE stream with RST_STREAM as well.
        if (!upstream.connecting) upstream.resetAndDestroy();
        else upstream.destroy();
      },
    });
    // Bytes are counted as they flow (ztunnel's counters move while a connection is open), not when it closes.
    return {
      status: 200,
      upstream,
      observer: trackerObserver(record.tracker),
      responseHeaders: config.enableResponseBaggage ? responseBaggageHeaders(local) : undefined,
    };
  }

  private onStreamClose(stats: HboneStreamStats): void {
    const record = stats.request ? this.records.get(stats.request) : undefined;
    if (!record) {
      // Rejected before it could be parsed (bad method or authority), or the hook itself failed.
      const srcAddr = formatAuthority(normalizeIp(stats.peer.address) ?? stats.peer.address, stats.peer.port);
      const dstAddr = formatAuthority(normalizeIp(stats.local.address) ?? stats.local.address, stats.local.port);
      this.scope.telemetry.failed({ direction: 'inbound', srcAddr, dstAddr }, { message: stats.error ?? `http status: ${stats.status}`, flag: '-' });
      return;
    }
    record.unregister?.();
    const error = record.closedBecause ?? stats.error;
    record.tracker.close(error === undefined ? undefined : { message: error, flag: record.flag });
  }

  /** Stops the listener's sessions: GOAWAY, then a hard close after `graceMs`. */
  async close(graceMs: number): Promise<void> {
    this.unsubscribe();
    await this.server.close(graceMs);
  }
}
