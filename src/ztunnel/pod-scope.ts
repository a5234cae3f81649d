// What every in-pod listener of one captured pod shares: the pod's netns, its identity and certificate, the HBONE
// pool its outbound connections use, and the connection manager its inbound connections register with.
import { HboneConnectTimeoutError, HboneDialError, HboneStatusError } from '../hbone/client.js';
import { HboneIdentityError } from '../hbone/tls.js';
import type { HboneConnectionLimiter } from '../hbone/limits.js';
import type { HbonePool } from '../hbone/pool.js';
import type { Http2Tuning, KeepaliveOptions } from '../hbone/session.js';
import { HBONE_TUNING } from '../hbone/session.js';
import type { WorkloadCertificate } from '../identity/workload-cert.js';
import type { PodNetns } from '../inpod/netns.js';
import type { Service, Workload } from '../xds/types.js';
import type { ConnectionTelemetry, ResponseFlag } from '../telemetry/connection.js';
import type { DnsMetrics, OnDemandDnsMetrics } from './metrics.js';
import type { OnDemandResolver } from './on-demand-dns.js';
import type { SecretManager } from '../xds/ca-client.js';
import type { ZtunnelConfig } from './config.js';
import type { ConnectionManager } from './connection-manager.js';
import type { ZtunnelLogger } from './log.js';
import type { ProxyState } from './state.js';

/** A captured pod as ZDS announces it. */
export interface PodInfo {
  uid: string;
  name: string;
  namespace: string;
  serviceAccount: string;
  /** `/run/netns/<name>`: Ambit passes the netns by path, not by fd (see docs/ztunnel.md). */
  netnsPath: string;
}

export interface PodProxyContext {
  pod: PodInfo;
  state: ProxyState;
  secrets: SecretManager;
  config: ZtunnelConfig;
  telemetry: ConnectionTelemetry;
  /** The node's istio_dns_* series, shared by the pods' DNS proxies. */
  dnsMetrics?: DnsMetrics;
  /** The node's istio_on_demand_dns_total, shared by the pods' outbound listeners. */
  onDemandDnsMetrics: OnDemandDnsMetrics;
  /** Inbound HBONE connection caps, shared by every pod of the node. */
  hboneLimiter: HboneConnectionLimiter;
  log: ZtunnelLogger;
}

export interface PodScope extends PodProxyContext {
  netns: PodNetns;
  /** This pod's SPIFFE identity; its certificate is served inbound and presented outbound. */
  identity: string;
  pool: HbonePool;
  /** Resolves the hostname of an endpoint that has no IP, from this pod's netns. */
  resolver: OnDemandResolver;
  connections: ConnectionManager;
  /** The pod's own workload from xDS, waiting up to `config.localWorkloadWaitMs` for it to arrive. */
  localWorkload(): Promise<Workload | undefined>;
  certificate(): Promise<WorkloadCertificate>;
  /** Sockets the listeners own, destroyed when the pod goes away. */
  track(socket: { destroy(): void; once(event: 'close', cb: () => void): unknown }): void;
}

/** ztunnel's local-workload error text. */
export function localWorkloadError(pod: PodInfo): string {
  return `failed to fetch information about local workload: ${pod.namespace}/${pod.name}`;
}

export function http2Tuning(c: ZtunnelConfig): Http2Tuning {
  return {
    streamWindowSize: c.http2StreamWindowSize,
    connectionWindowSize: c.http2ConnectionWindowSize,
    maxFrameSize: c.http2FrameSize,
    maxSessionMemoryMb: HBONE_TUNING.maxSessionMemoryMb,
  };
}

export function keepalive(c: ZtunnelConfig): KeepaliveOptions {
  return { intervalMs: c.http2KeepaliveIntervalMs, timeoutMs: c.http2KeepaliveTimeoutMs };
}

/**
 * The destination service of an inbound connection, for telemetry: the `forwarded` header's `host=` when the
 * workload really backs that service, else the first of its services with `port` as a target port.
 */
export function inboundService(state: ProxyState, local: Workload, port: number, forwardedHost?: string): Service | undefined {
  if (forwardedHost) {
    const s = state.serviceByHostname(forwardedHost, local.namespace);
    if (s && local.services[`${s.namespace}/${s.hostname}`]) return s;
  }
  for (const [key, list] of Object.entries(local.services)) {
    if (!list.ports.some((p) => (p.targetPort || p.servicePort) === port)) continue;
    const slash = key.indexOf('/');
    const s = state.serviceByHostname(key.slice(slash + 1), key.slice(0, slash));
    if (s) return s;
  }
  return undefined;
}

/** The response flag ztunnel reports for an HBONE dial or CONNECT failure. */
export function hboneFailureFlag(e: Error): ResponseFlag {
  if (e instanceof HboneIdentityError) return 'IDENTITY_ERROR';
  if (e instanceof HboneConnectTimeoutError) return 'NETWORK_POLICY';
  if (e instanceof HboneDialError && e.phase === 'tls') return 'TLS_FAILURE';
  if (e instanceof HboneDialError && e.phase === 'http2') return 'H2_HANDSHAKE_FAILURE';
  if (e instanceof HboneStatusError && e.status === 401) return 'DENY';
  return 'CONNECT';
}
