// The waypoint's TCP path: a CONNECT stream to a TCP port (or one whose first bytes are not HTTP) is authorized with
// the network RBAC filter's semantics (HTTP-only rule parts are generation errors: dropped from ALLOW, ignored in
// DENY), then relayed to one endpoint, with Istio's TCP metrics moving as bytes flow.
import type { Duplex } from 'node:stream';
import { copyBidirectional } from '../hbone/copy.js';
import type { Logger } from '../telemetry/log.js';
import type { Service, Workload } from '../xds/types.js';
import { authorize } from './authz/rbac.js';
import type { StreamContext } from './http/proxy.js';
import { pickByWeight } from './http/router.js';
import type { WaypointState } from './state.js';
import type { DestinationServiceLabels, PeerLabels, WaypointTelemetry } from './telemetry.js';
import type { UpstreamTarget, Upstreams } from './upstream.js';

export interface TcpProxyOptions {
  state: WaypointState;
  upstreams: Upstreams;
  telemetry: WaypointTelemetry;
  log: Logger;
  peerLabels(w: Workload | undefined): PeerLabels;
  serviceLabels(s: Service): DestinationServiceLabels;
}

export class TcpProxy {
  constructor(private readonly opts: TcpProxyOptions) {}

  /** Relays one CONNECT stream's bytes; never throws (a failure resets the stream). */
  serve(stream: Duplex, ctx: StreamContext): void {
    void this.relay(stream, ctx).catch((e) => {
      this.opts.log.error(`tcp connection to ${ctx.targetIp}:${ctx.targetPort} failed unexpectedly: ${(e as Error).stack ?? e}`);
      stream.destroy();
    });
  }

  private async relay(stream: Duplex, ctx: StreamContext): Promise<void> {
    const { state, upstreams, telemetry, log } = this.opts;
    stream.on('error', () => {});
    const decision = authorize(state.authorization(ctx.bound, 'tcp'), {
      sourceIp: ctx.peerIp,
      remoteIp: ctx.peerIp,
      sourcePrincipal: ctx.sourcePrincipal,
      destinationIp: ctx.targetIp,
      destinationPort: ctx.targetPort,
    });
    if (!decision.allowed) {
      log.info(`enforced denied, matched policy ${decision.matchedPolicy}`, { dst: `${ctx.targetIp}:${ctx.targetPort}`, principal: ctx.sourcePrincipal });
      stream.destroy();
      return;
    }
    let service = ctx.service;
    let destinationService = ctx.destinationService;
    let target: UpstreamTarget | undefined;
    if (ctx.workload) target = upstreams.workload(ctx.workload, ctx.targetPort);
    else {
      // A VirtualService tls/tcp route for the port sends the connection to one of its destinations, by weight.
      const route = ctx.bound === undefined ? undefined : state.tcpRoute(ctx.bound, ctx.targetPort);
      const backend = route === undefined ? undefined : pickByWeight(route.backends, route.backends.reduce((sum, b) => sum + b.weight, 0));
      let port = ctx.targetPort;
      if (backend !== undefined) {
        service = state.serviceByKey(`${backend.namespace}/${backend.hostname}`);
        if (service !== undefined) destinationService = this.opts.serviceLabels(service);
        port = backend.port;
      }
      target = service === undefined ? undefined : upstreams.cluster(service, port, backend?.subset)?.pick(undefined, undefined);
    }
    const tracker = telemetry.openTcp({
      source: ctx.source,
      destination: this.opts.peerLabels(target?.workload),
      destinationService,
      connectionSecurityPolicy: 'mutual_tls',
    });
    if (target === undefined) {
      tracker.close(['UH']);
      stream.destroy();
      return;
    }
    const cluster = target.cluster;
    // The DestinationRule's max_connections: Envoy's TCP proxy refuses a connection over it (UO).
    if (cluster?.tcpOverflows()) {
      tracker.close(['UO']);
      stream.destroy();
      return;
    }
    cluster?.requestStarted();
    target.active++;
    try {
      let upstream: Duplex;
      try {
        upstream = await upstreams.connect(target);
      } catch (e) {
        log.debug(`tcp upstream ${target.address} failed: ${(e as Error).message}`);
        cluster?.outcome(target, 0);
        tracker.close(['UF']);
        stream.destroy();
        return;
      }
      // A connection made counts as a success for outlier detection, as Envoy's local-origin events do.
      cluster?.outcome(target, 200);
      if (stream.destroyed) {
        upstream.destroy();
        tracker.close(['DC']);
        return;
      }
      const r = await copyBidirectional(stream, upstream, { aToB: (n) => tracker.received(n), bToA: (n) => tracker.sent(n) });
      tracker.close(r.error ? ['UR'] : []);
    } finally {
      target.active--;
      cluster?.requestEnded();
    }
  }
}
