// Inbound plaintext (15006 in the pod netns): TCP that reached the pod without HBONE (from an un-captured client,
// or a captured one that does not know us). Authorization runs with no identity, so STRICT PeerAuthentication (sent
// by the control plane as a DENY with `notPrincipals: [presence]`) refuses it. There is no HTTP layer to carry an
// error: a denied connection is simply closed.
import type * as net from 'node:net';
import type { ConnectionInfo, ResponseFlag } from '../telemetry/connection.js';
import { DENIED_PREFIX, evaluate, logDecision, type RbacConnection } from './rbac.js';
import { inboundService, localWorkloadError, type PodScope } from './pod-scope.js';
import { RECURSIVE_CALL, RECURSIVE_PORTS, connectInPod, errorText, peerWorkload, relay, serveRedirected, type RedirectedEndpoints, serviceRef, trackerObserver } from './upstream.js';

export class InboundPlaintextProxy {
  constructor(private readonly scope: PodScope) {}

  handle(client: net.Socket): void {
    serveRedirected(this.scope, client, 'inbound', 'inbound plaintext', (c, ends) => this.serve(c, ends));
  }

  private async serve(client: net.Socket, ends: RedirectedEndpoints): Promise<void> {
    const { state, telemetry, config, log } = this.scope;
    const { srcIp, srcAddr, dstIp, dstAddr } = ends;
    const port = ends.dstPort;
    const local = await this.scope.localWorkload();
    if (!local) {
      telemetry.failed({ direction: 'inbound', srcAddr, dstAddr }, { message: localWorkloadError(this.scope.pod), flag: '-' });
      client.destroy();
      return;
    }
    const info: ConnectionInfo = { direction: 'inbound', srcAddr, dstAddr, dstWorkload: peerWorkload(local, state.identityOf(local)), mtls: false };
    const src = state.workloadByIp(srcIp);
    if (src) info.srcWorkload = peerWorkload(src);
    const svc = inboundService(state, local, port);
    if (svc) info.dstService = serviceRef(svc);
    const tracker = telemetry.open(info);
    const refuse = (message: string, flag: ResponseFlag) => {
      tracker.close({ message, flag });
      client.destroy();
    };
    if (RECURSIVE_PORTS.has(port)) return refuse(RECURSIVE_CALL, '-');

    const rbac: RbacConnection = { srcIp, dstIp, dstPort: port };
    const decision = evaluate(state.policiesFor(local), rbac);
    logDecision(log, decision, config.authzPolicyInfoLogging, srcAddr, dstAddr);
    if (!decision.allowed) {
      log.info(`${DENIED_PREFIX}${decision.reason}`, { 'src.addr': srcAddr, 'dst.addr': dstAddr });
      return refuse(DENIED_PREFIX + decision.reason, 'DENY');
    }

    let upstream: net.Socket;
    try {
      upstream = await connectInPod(this.scope.netns, dstIp, port, {
        mark: config.packetMark,
        sourceIp: srcIp,
        timeoutMs: config.connectTimeoutMs,
      });
    } catch (e) {
      return refuse(`connection failed: ${errorText(e)}`, 'CONNECT');
    }
    if (client.destroyed) {
      upstream.destroy();
      tracker.close({ message: 'connection closed by the client before the upstream was ready', flag: '-' });
      return;
    }
    let closedBecause: string | undefined;
    const unregister = this.scope.connections.register({
      rbac,
      close: (reason) => {
        closedBecause = reason;
        upstream.resetAndDestroy();
      },
    });
    // A policy that arrived while we were connecting has not seen this connection yet.
    if (!evaluate(state.policiesFor(local), rbac).allowed) this.scope.connections.reevaluate();
    const r = await relay(client, upstream, trackerObserver(tracker));
    unregister();
    if (closedBecause !== undefined) tracker.close({ message: closedBecause, flag: 'DENY' });
    else tracker.close(r.error ? { message: r.error.message, flag: '-' } : undefined);
  }
}
