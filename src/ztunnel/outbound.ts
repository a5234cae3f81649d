// Outbound (15001 in the pod netns): every TCP connection the application opens arrives here through the capture
// rules. The original destination decides the route, as in ztunnel's OutboundConnection::build_request:
//   Service VIP with a waypoint → CONNECT to a waypoint pod's 15008 with the original VIP:port as :authority;
//   Service VIP → one healthy endpoint (service port mapped to its target port); pod IP → that workload, through its
//   waypoint when it has one (workload traffic); captured (HBONE) workload → CONNECT over the pod's HBONE pool to
//   podIP:15008; other workloads → plain TCP; unknown address → plain TCP passthrough to the original destination.
// A Service endpoint with a hostname and no IP (a ServiceEntry with resolution DNS) is resolved when picked (ztunnel's
// on-demand DNS); only that step is asynchronous, so every other connection is routed without waiting.
// All upstream sockets are created inside the pod's netns with ztunnel's mark, so capture does not loop them back.
import type * as net from 'node:net';
import type { Duplex } from 'node:stream';
import { bytesToIp } from '../common/ip.js';
import { formatAuthority } from '../hbone/headers.js';
import { workloadBaggage } from './baggage.js';
import { identityOf } from '../xds/address-state.js';
import type { GatewayAddress, Service, Workload } from '../xds/types.js';
import type { ConnectionInfo, ConnectionTracker, ResponseFlag } from '../telemetry/connection.js';
import { loadBalance, sampleWeightedWaypoint } from './load-balance.js';
import { DnsLookupError, pickResolvedAddress, type ResolvedAddresses } from './on-demand-dns.js';
import { hboneFailureFlag, localWorkloadError, type PodScope } from './pod-scope.js';
import { RECURSIVE_CALL, RECURSIVE_PORTS, connectInPod, errorText, peerWorkload, relay, serveRedirected, type RedirectedEndpoints, serviceRef, trackerObserver, workloadIp } from './upstream.js';

/** Where a connection goes, with every address known. */
type Destination =
  /** `ip` is the pod dialed on 15008; `target` the HBONE :authority (the pod's own port, or the original VIP:port for a waypoint). */
  | { kind: 'hbone'; workload: Workload; ip: string; target: { address: string; port: number }; expected: string[]; service?: Service }
  | { kind: 'tcp'; workload?: Workload; ip: string; port: number; service?: Service }
  | { kind: 'error'; message: string; flag: ResponseFlag };

type Route =
  | Destination
  /** An endpoint known by `workload.hostname` only: its address is looked up before the connection can go on. */
  | { kind: 'resolve'; workload: Workload; port: number; service: Service };

/** For an address as normalizeIp writes it (an IPv4-mapped address is IPv4). */
function isIpv6(ip: string): boolean {
  return ip.includes(':');
}

function isLoopbackOrUnspecified(ip: string): boolean {
  return ip.startsWith('127.') || ip === '::1' || ip === '0.0.0.0' || ip === '::';
}

export class OutboundProxy {
  constructor(private readonly scope: PodScope) {}

  /** Serves one accepted connection; never throws (every failure is logged and closes the connection). */
  handle(client: net.Socket): void {
    serveRedirected(this.scope, client, 'outbound', 'outbound', (c, ends) => this.serve(c, ends));
  }

  private async serve(client: net.Socket, ends: RedirectedEndpoints): Promise<void> {
    const { telemetry } = this.scope;
    const { srcIp, srcAddr, dstIp, dstPort, dstAddr } = ends;
    const fail = (message: string, flag: ResponseFlag = '-') => {
      telemetry.failed({ direction: 'outbound', srcAddr, dstAddr }, { message, flag });
      client.resetAndDestroy();
    };
    if (isLoopbackOrUnspecified(dstIp) || (dstIp === srcIp && RECURSIVE_PORTS.has(dstPort))) return fail(RECURSIVE_CALL);

    const local = await this.scope.localWorkload();
    if (!local) return fail(localWorkloadError(this.scope.pod));
    if (client.destroyed) return;

    const picked = this.route(dstIp, dstPort, local);
    const route = picked.kind === 'resolve' ? await this.resolveEndpoint(picked, local, dstIp) : picked;
    if (route.kind === 'error') return fail(route.message, route.flag);
    if (route.kind === 'hbone') return this.viaHbone(client, local, srcIp, srcAddr, dstAddr, route);
    return this.viaTcp(client, local, srcAddr, dstAddr, route);
  }

  private route(ip: string, port: number, local: Workload): Route {
    const { state } = this.scope;
    const service = state.serviceByVip(ip, local.namespace);
    if (service) {
      if (service.waypoint) return this.toWaypoint(sampleWeightedWaypoint(service) ?? service.waypoint, ip, port, local, service);
      // ztunnel's UpstreamDestination::OriginalDestination: no endpoint is chosen, the connection goes where it was
      // dialed, as plain TCP (a ServiceEntry with resolution NONE).
      if (service.loadBalancing?.mode === 'PASSTHROUGH') return { kind: 'tcp', ip, port };
      const candidates: { workload: Workload; port: number }[] = [];
      for (const ep of state.endpointsOf(service)) {
        const target = ep.targetPort(port);
        if (target !== undefined) candidates.push({ workload: ep.workload, port: target });
      }
      const pick = loadBalance(local, service.loadBalancing, candidates);
      if (pick === undefined) return { kind: 'error', message: `no healthy upstream: ${formatAuthority(ip, port)}`, flag: '-' };
      const epIp = workloadIp(pick.workload, isIpv6(ip));
      if (epIp === undefined) return { kind: 'resolve', workload: pick.workload, port: pick.port, service };
      return this.toWorkload(pick.workload, epIp, pick.port, service);
    }
    const workload = state.workloadByIp(ip);
    if (workload) {
      // Workload-addressed traffic goes through the workload's waypoint, unless it is that waypoint's own.
      if (workload.waypoint && !this.fromWaypoint(workload.waypoint)) return this.toWaypoint(workload.waypoint, ip, port, local);
      return this.toWorkload(workload, ip, port);
    }
    return { kind: 'tcp', ip, port };
  }

  /** A waypoint pod (ztunnel's fetch_waypoint): HBONE to its 15008, the original destination as :authority. */
  private toWaypoint(gw: GatewayAddress, ip: string, port: number, local: Workload, service?: Service): Destination {
    const pick = this.waypointEndpoint(gw, local);
    const name = gw.hostname?.hostname ?? (gw.address ? bytesToIp(gw.address.address) : '');
    if (!pick) return { kind: 'error', message: `unknown waypoint: waypoint ${name} not found`, flag: '-' };
    const expected = [identityOf(pick.workload), ...(pick.service?.subjectAltNames ?? [])];
    return { kind: 'hbone', workload: pick.workload, ip: pick.ip, target: { address: ip, port }, expected, ...(service ? { service } : {}) };
  }

  /**
   * One ready pod of the waypoint a GatewayAddress names (its Service's endpoints, chosen by the Service's load
   * balancer: a waypoint's Service prefers close endpoints; or the workload at that IP).
   */
  private waypointEndpoint(gw: GatewayAddress, local: Workload): { workload: Workload; ip: string; service?: Service } | undefined {
    const { state } = this.scope;
    if (gw.address) {
      const w = state.workloadByIp(bytesToIp(gw.address.address));
      const ip = w && workloadIp(w);
      return w && ip ? { workload: w, ip } : undefined;
    }
    const svc = gw.hostname && state.serviceByKey(`${gw.hostname.namespace}/${gw.hostname.hostname}`);
    if (!svc) return undefined;
    const candidates: { workload: Workload; ip: string }[] = [];
    for (const ep of state.endpointsOf(svc)) {
      const epIp = workloadIp(ep.workload);
      if (epIp !== undefined) candidates.push({ workload: ep.workload, ip: epIp });
    }
    const pick = loadBalance(local, svc.loadBalancing, candidates);
    return pick && { ...pick, service: svc };
  }

  /** ztunnel's check_from_waypoint: this pod is one of the waypoint's own workloads (same identity and IP). */
  private fromWaypoint(gw: GatewayAddress): boolean {
    const { state } = this.scope;
    const svc = gw.hostname && state.serviceByKey(`${gw.hostname.namespace}/${gw.hostname.hostname}`);
    if (!svc) return false;
    return state.endpointsOf(svc).some((ep) => identityOf(ep.workload) === this.scope.identity && ep.workload.name === this.scope.pod.name && ep.workload.namespace === this.scope.pod.namespace);
  }

  /**
   * ztunnel's resolve_workload_address: the endpoint's hostname looked up through the cluster resolver, one address
   * of the dialed address's family preferred. Counted in istio_on_demand_dns_total whatever the outcome.
   */
  private async resolveEndpoint(route: Extract<Route, { kind: 'resolve' }>, local: Workload, dstIp: string): Promise<Destination> {
    const { workload } = route;
    const hostname = workload.hostname!;
    this.scope.onDemandDnsMetrics.series(local, hostname).inc();
    let resolved: ResolvedAddresses;
    try {
      resolved = await this.scope.resolver.resolve(hostname);
    } catch (e) {
      if (!(e instanceof DnsLookupError)) throw e;
      this.scope.log.warn('dns lookup failed', { hostname, error: e.message });
      return { kind: 'error', message: `no ip addresses were resolved for workload: ${workload.uid}`, flag: '-' };
    }
    const ip = pickResolvedAddress(resolved, isIpv6(dstIp));
    // hickory reports valid answers without records as an error (NoRecordsFound), so ztunnel's other text, "ip addresses
    // were resolved … but valid dns response had no A/AAAA records", never shows; neither does it here.
    if (ip === undefined) {
      this.scope.log.warn('dns lookup failed', { hostname, error: 'no A or AAAA records' });
      return { kind: 'error', message: `no ip addresses were resolved for workload: ${workload.uid}`, flag: '-' };
    }
    return this.toWorkload(workload, ip, route.port, route.service);
  }

  private toWorkload(workload: Workload, ip: string, port: number, service?: Service): Destination {
    switch (workload.tunnelProtocol) {
      case 'HBONE': {
        const expected = [this.scope.state.identityOf(workload), ...(service?.subjectAltNames ?? [])];
        return { kind: 'hbone', workload, ip, target: { address: ip, port }, expected, ...(service ? { service } : {}) };
      }
      case 'NONE':
        return { kind: 'tcp', workload, ip, port, ...(service ? { service } : {}) };
      default:
        return { kind: 'error', message: `unsupported tunnel protocol: ${workload.tunnelProtocol}`, flag: '-' };
    }
  }

  private async viaHbone(
    client: net.Socket,
    local: Workload,
    srcIp: string,
    srcAddr: string,
    originalDstAddr: string,
    route: Extract<Destination, { kind: 'hbone' }>,
  ): Promise<void> {
    const { state, telemetry, config } = this.scope;
    const dstIdentity = state.identityOf(route.workload);
    const info: ConnectionInfo = {
      direction: 'outbound',
      srcAddr,
      dstAddr: formatAuthority(route.ip, config.inboundPort),
      hboneAddr: formatAuthority(route.target.address, route.target.port),
      originalDstAddr,
      srcWorkload: peerWorkload(local, this.scope.identity),
      dstWorkload: peerWorkload(route.workload, dstIdentity),
      srcIdentity: this.scope.identity,
      dstIdentity,
      mtls: true,
    };
    if (route.service) info.dstService = serviceRef(route.service);
    const tracker = telemetry.open(info);
    let stream;
    try {
      const certificate = await this.scope.certificate();
      stream = await this.scope.pool.connect({
        destination: { address: route.ip, port: config.inboundPort },
        certificate,
        expectedIdentities: route.expected,
        target: route.target,
        forwardedFor: { address: srcIp, port: client.remotePort ?? 0 },
        ...(route.service ? { forwardedHost: route.service.hostname } : {}),
        baggage: workloadBaggage(local),
      });
    } catch (e) {
      const err = e as Error;
      tracker.close({ message: err.message, flag: hboneFailureFlag(err) });
      client.resetAndDestroy();
      return;
    }
    await this.pump(client, stream, tracker);
  }

  private async viaTcp(client: net.Socket, local: Workload, srcAddr: string, originalDstAddr: string, route: Extract<Destination, { kind: 'tcp' }>): Promise<void> {
    const info: ConnectionInfo = {
      direction: 'outbound',
      srcAddr,
      dstAddr: formatAuthority(route.ip, route.port),
      originalDstAddr,
      srcWorkload: peerWorkload(local, this.scope.identity),
      mtls: false,
    };
    if (route.workload) info.dstWorkload = peerWorkload(route.workload, this.scope.state.identityOf(route.workload));
    if (route.service) info.dstService = serviceRef(route.service);
    const tracker = this.scope.telemetry.open(info);
    let upstream: net.Socket;
    try {
      // No source spoofing outbound: the connection leaves from the pod's own address, as the app's would.
      upstream = await connectInPod(this.scope.netns, route.ip, route.port, {
        mark: this.scope.config.packetMark,
        timeoutMs: this.scope.config.connectTimeoutMs,
      });
    } catch (e) {
      tracker.close({ message: `connection failed: ${errorText(e)}`, flag: 'CONNECT' });
      client.resetAndDestroy();
      return;
    }
    await this.pump(client, upstream, tracker);
  }

  private async pump(client: net.Socket, upstream: Duplex, tracker: ConnectionTracker): Promise<void> {
    if (client.destroyed) {
      // The application gave up while we were dialing.
      upstream.destroy();
      tracker.close({ message: 'connection closed by the client before the upstream was ready', flag: '-' });
      return;
    }
    // Bytes are counted as they flow (ztunnel's counters move while a connection is open), not when it closes.
    const r = await relay(client, upstream, trackerObserver(tracker));
    tracker.close(r.error ? { message: r.error.message, flag: '-' } : undefined);
  }
}
