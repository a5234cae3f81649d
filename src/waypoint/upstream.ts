// Where the waypoint sends a request or connection: one ready endpoint of the destination Service, chosen by least
// request (Istio's default load balancer for a waypoint's inbound-vip cluster without a DestinationRule), or the
// addressed workload itself;
// reached over HBONE with the waypoint's own identity when the endpoint is in the mesh (its ztunnel then applies L4
// policy to the waypoint's identity), else over plain TCP.
import { lookup as dnsLookup } from 'node:dns/promises';
import { readFileSync } from 'node:fs';
import * as net from 'node:net';
import * as tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { bytesToIp } from '../common/ip.js';
import { HboneConnectTimeoutError } from '../hbone/client.js';
import { formatAuthority } from '../hbone/headers.js';
import type { HbonePool } from '../hbone/pool.js';
import type { WorkloadCertificate } from '../identity/workload-cert.js';
import { identityOf, serviceKey } from '../xds/address-state.js';
import type { Logger } from '../telemetry/log.js';
import type { Service, WaypointCluster, WaypointUpstreamTls, Workload } from '../xds/types.js';
import type { WaypointState } from './state.js';

export interface UpstreamTarget {
  workload: Workload;
  /**
   * The endpoint's IP, or the DNS name of an endpoint that has only a hostname (resolved when connecting), or a
   * wildcard host (`*.example.com`: the request's host under it is resolved, as Envoy's dynamic forward proxy).
   */
  ip: string;
  /** `ip` is a DNS name or a wildcard (a ServiceEntry endpoint with DNS or DYNAMIC_DNS resolution). */
  dns: boolean;
  /** The endpoint's own port (the Service's target port). */
  port: number;
  /** `ip:port`: Envoy's UPSTREAM_HOST. */
  address: string;
  /** HBONE to the endpoint's ztunnel, or plain TCP to a workload outside the mesh. */
  hbone: boolean;
  /** Requests (or TCP connections) in flight to it: least-request balancing reads it. */
  active: number;
  /**
   * Envoy's UPSTREAM_HOST and UPSTREAM_LOCAL_ADDRESS: an HBONE endpoint is reached through the waypoint's internal
   * `connect_originate` listener, so that is what Istio's waypoint logs.
   */
  upstreamHost: string;
  upstreamLocalAddress: string | undefined;
  /** The cluster it was picked from (none for workload-addressed traffic). */
  cluster?: UpstreamCluster;
}

/** Envoy's stream reset reasons for an upstream that failed before its response started and may be retried. */
export type ResetBeforeResponse = 'remote connection failure' | 'connection timeout' | 'connection termination' | 'remote refused stream reset';

/**
 * An upstream attempt failed before anything reached the application, so the request may be retried (Envoy's
 * `reset-before-request`); in the words Envoy puts into a local reply and its response flags.
 */
export class UpstreamConnectError extends Error {
  override name = 'UpstreamConnectError';
  constructor(
    readonly resetReason: ResetBeforeResponse,
    /** Envoy's UPSTREAM_TRANSPORT_FAILURE_REASON; empty when the connection itself was made. */
    readonly transportFailure = '',
    options?: { cause?: unknown },
  ) {
    super(localReplyBody(resetReason, transportFailure, false), options);
  }

  /** The response flag of a request that ends with this failure. */
  get flag(): 'UF' | 'UC' | 'UR' {
    return this.resetReason === 'connection termination' ? 'UC' : this.resetReason === 'remote refused stream reset' ? 'UR' : 'UF';
  }

  /** Envoy's response code details: `upstream_reset_before_response_started{<reason>[,<transport failure>]}`. */
  get details(): string {
    return resetDetails(this.resetReason, this.transportFailure);
  }
}

/** Node's timers hold at most 2^31 - 1 ms; a longer duration (days) is that long instead of firing at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export function timerMs(ms: number): number {
  return Math.min(ms, MAX_TIMER_MS);
}

export function resetDetails(resetReason: string, transportFailure = ''): string {
  return `upstream_reset_before_response_started{${resetReason}${transportFailure ? `,${transportFailure}` : ''}}`;
}

/** Envoy's local reply body for an upstream that failed before answering; `retried` after exhausted retries. */
export function localReplyBody(resetReason: string, transportFailure: string, retried: boolean): string {
  return (
    `upstream connect error or disconnect/reset before headers. ${retried ? 'retried and the latest ' : ''}reset reason: ${resetReason}` +
    (transportFailure ? `, transport failure reason: ${transportFailure}` : '')
  );
}

function workloadIp(w: Workload): string | undefined {
  const a = w.addresses[0];
  return a ? bytesToIp(a) : undefined;
}

function target(w: Workload, port: number): UpstreamTarget | undefined {
  const ip = workloadIp(w) ?? (w.hostname || undefined);
  if (ip === undefined) return undefined;
  const address = formatAuthority(ip, port);
  const hbone = w.tunnelProtocol === 'HBONE';
  return {
    workload: w,
    ip,
    dns: w.addresses.length === 0,
    port,
    address,
    hbone,
    active: 0,
    upstreamHost: hbone ? `envoy://connect_originate/${address}` : address,
    upstreamLocalAddress: hbone ? 'envoy://internal_client_address/' : undefined,
  };
}

/** A wildcard endpoint (DYNAMIC_DNS): connections go to the request's host, so they are pooled per host. */
export function isWildcardTarget(t: UpstreamTarget): boolean {
  return t.dns && t.ip.startsWith('*.');
}

/** The request's host (without its port) when it is under `wildcard` (`*.example.com`); else the attempt fails. */
function hostUnder(wildcard: string, requestHost: string | undefined): string {
  const host = (requestHost ?? '').toLowerCase().replace(/:\d+$/, '').replace(/\.$/, '');
  if (host.length > wildcard.length - 1 && host.endsWith(wildcard.slice(1))) return host;
  throw new UpstreamConnectError('remote connection failure', `dns resolution failure: ${requestHost ? `host ${requestHost}` : 'no request host'} is not under ${wildcard}`);
}

/** How long a DNS-named endpoint's address is kept: Istio's default `dnsRefreshRate` for DNS clusters. */
const DNS_REFRESH_MS = 60_000;
const DNS_CACHE_ENTRIES = 1024;

/**
 * Addresses of endpoints known by their DNS name (ServiceEntries with DNS resolution), as the waypoint's resolver (its
 * pod's resolv.conf and hosts file) answers: IPv4 first, as Istio's clusters for IPv4 proxies look up. Envoy keeps a
 * DNS cluster's addresses and refreshes them in the background; here a name is looked up when a connection needs it,
 * kept for DNS_REFRESH_MS, and lookups of one name in flight are shared, so the search-path queries a name costs
 * (the pod's `ndots`) are paid once a minute, not per connection.
 */
class EndpointResolver {
  private readonly cache = new Map<string, { address: string; expiresAt: number }>();
  private readonly pending = new Map<string, Promise<string>>();

  resolve(hostname: string, timeoutMs: number): Promise<string> {
    const hit = this.cache.get(hostname);
    if (hit !== undefined && hit.expiresAt > performance.now()) return Promise.resolve(hit.address);
    let p = this.pending.get(hostname);
    if (p === undefined) {
      p = this.lookup(hostname).finally(() => this.pending.delete(hostname));
      this.pending.set(hostname, p);
    }
    // Bounded by the connect timeout; what it takes is deducted from the connect that follows (connectPlain).
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new UpstreamConnectError('connection timeout', `dns resolution failure: ${hostname}: timeout`)), timeoutMs);
    });
    return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
  }

  private async lookup(hostname: string): Promise<string> {
    let answers: { address: string; family: number }[];
    try {
      answers = await dnsLookup(hostname, { all: true });
    } catch (e) {
      throw new UpstreamConnectError('remote connection failure', `dns resolution failure: ${hostname}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { cause: e });
    }
    const address = (answers.find((a) => a.family === 4) ?? answers[0])?.address;
    if (address === undefined) throw new UpstreamConnectError('remote connection failure', `dns resolution failure: ${hostname}: no addresses`);
    if (this.cache.size >= DNS_CACHE_ENTRIES) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(hostname, { address, expiresAt: performance.now() + DNS_REFRESH_MS });
    return address;
  }
}

export interface UpstreamsOptions {
  state: WaypointState;
  pool: HbonePool;
  certificate: () => Promise<WorkloadCertificate>;
  connectTimeoutMs: number;
  log?: Logger;
}

/** Outlier detection's view of one endpoint of a cluster. */
interface HostHealth {
  consecutiveErrors: number;
  consecutiveGateway: number;
  /** Ejected until this time (ms, performance.now()); 0: in rotation. */
  ejectedUntil: number;
  /** Ejections so far, less one per interval spent healthy since: the next ejection lasts that many base times. */
  ejections: number;
  /** When it last came back (or was first seen): healthy intervals since then lower `ejections`. */
  since: number;
}

/**
 * What a cluster keeps across configuration changes (its endpoints are re-read on every change of the mesh): the
 * circuit breakers' counts and outlier detection's host states.
 */
class ClusterCounters {
  /** Requests in flight (Envoy's rq_active), retries in flight (rq_retry open). */
  requests = 0;
  retries = 0;
  roundRobin = 0;
  readonly hosts = new Map<string, HostHealth>();

  /**
   * Nothing in flight, no endpoint out or on its way out: dropping it loses only the ejection multipliers of endpoints
   * back in rotation.
   */
  idle(now: number): boolean {
    if (this.requests > 0 || this.retries > 0) return false;
    for (const h of this.hosts.values()) if (h.ejectedUntil > now || h.consecutiveErrors > 0 || h.consecutiveGateway > 0) return false;
    return true;
  }
}

/**
 * One of Envoy's clusters of the waypoint: a Service port (and subset) with its endpoints and its DestinationRule's
 * load balancer, circuit breakers, outlier detection and TLS.
 */
export class UpstreamCluster {
  /** Consistent hashing's ring: sorted hashes and the endpoint each belongs to; built on first use. */
  private ring: { hashes: Uint32Array; targets: UpstreamTarget[] } | undefined;

  constructor(
    /** `namespace/hostname|port|subset`. */
    readonly key: string,
    readonly targets: UpstreamTarget[],
    readonly policy: WaypointCluster,
    private readonly counters: ClusterCounters,
    private readonly log: Logger | undefined,
  ) {}

  /** What decides how connections to the cluster's endpoints are made and pooled (DestinationRule pool and TLS). */
  get settings(): string {
    return (this.settingsKey ??= JSON.stringify([this.policy.connectionPool, this.policy.tls]));
  }
  private settingsKey: string | undefined;

  /** Whether connections need a pool of their own (a DestinationRule shapes them). */
  get ownPool(): boolean {
    return this.policy.connectionPool !== undefined || this.policy.tls !== undefined;
  }

  get connectTimeoutMs(): number {
    return this.policy.connectionPool?.connectTimeoutMs ?? 0;
  }

  /**
   * Envoy's circuit breakers before a request is sent: over `max_requests` requests in flight, or (HTTP/1.1, one
   * request per connection) over `max_connections` + `max_pending_requests`, the request overflows.
   */
  overflows(http1: boolean): boolean {
    const pool = this.policy.connectionPool;
    if (pool === undefined) return false;
    const active = this.counters.requests;
    if (pool.maxRequests > 0 && active >= pool.maxRequests) return true;
    return http1 && pool.maxConnections > 0 && pool.maxPendingRequests > 0 && active >= pool.maxConnections + pool.maxPendingRequests;
  }

  /** Envoy's max_connections for the TCP proxy: each connection in flight is one upstream connection. */
  tcpOverflows(): boolean {
    const max = this.policy.connectionPool?.maxConnections ?? 0;
    return max > 0 && this.counters.requests >= max;
  }

  requestStarted(): void {
    this.counters.requests++;
  }

  requestEnded(): void {
    this.counters.requests--;
  }

  /** Whether a retry may start now (Envoy's max_retries breaker); `holding`: the request holds a retry slot already. */
  retryAvailable(holding: boolean): boolean {
    const max = this.policy.connectionPool?.maxRetries ?? 0;
    return !(max > 0 && this.counters.retries - (holding ? 1 : 0) >= max);
  }

  /** A request goes into retries: it holds a retry slot until retryEnded. */
  retryStarted(): true {
    this.counters.retries++;
    return true;
  }

  retryEnded(): void {
    this.counters.retries--;
  }

  /**
   * An endpoint by the cluster's load balancer, leaving out ejected ones (unless fewer than min_health_percent are
   * left: Envoy's panic mode uses them all). `tried`: a retry's earlier endpoints, avoided while others are there
   * (Istio's previous-hosts predicate; not with consistent hashing). `hashKey`: the request's consistent-hash key.
   */
  pick(tried: readonly UpstreamTarget[] | undefined, hashKey: string | undefined): UpstreamTarget | undefined {
    let list = this.targets;
    if (list.length === 0) return undefined;
    const od = this.policy.outlierDetection;
    if (od !== undefined) {
      const now = performance.now();
      let healthy = 0;
      for (const t of list) if (!this.ejected(t, now)) healthy++;
      if (healthy < list.length && healthy * 100 >= od.minHealthPercent * list.length) {
        if (healthy === 0) return undefined;
        list = list.filter((t) => !this.ejected(t, now));
      }
    }
    const lb = this.policy.loadBalancer;
    if (lb?.consistentHash !== undefined && hashKey !== undefined) return this.byHash(list, hashKey);
    if (tried?.length && list.length > 1) {
      const untried = list.filter((t) => !tried.some((x) => x.address === t.address));
      if (untried.length) list = untried;
    }
    if (list.length === 1) return list[0];
    switch (lb?.simple) {
      case 'ROUND_ROBIN':
        return list[this.counters.roundRobin++ % list.length];
      case 'RANDOM':
        return list[Math.floor(Math.random() * list.length)];
      default: {
        // LEAST_REQUEST with equal weights: Envoy's power of two choices.
        const a = list[Math.floor(Math.random() * list.length)]!;
        const b = list[Math.floor(Math.random() * list.length)]!;
        return b.active < a.active ? b : a;
      }
    }
  }

  /** Ring hash: the first endpoint point at or after the key's hash, skipping endpoints not in `list`. */
  private byHash(list: UpstreamTarget[], key: string): UpstreamTarget | undefined {
    const ring = (this.ring ??= buildRing(this.targets, this.policy.loadBalancer!.consistentHash!.tableSize));
    const h = fnv1a(key);
    let lo = 0;
    let hi = ring.hashes.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (ring.hashes[mid]! < h) lo = mid + 1;
      else hi = mid;
    }
    const all = list.length === this.targets.length;
    for (let i = 0; i < ring.targets.length; i++) {
      const t = ring.targets[(lo + i) % ring.targets.length]!;
      if (all || list.includes(t)) return t;
    }
    return undefined;
  }

  private health(t: UpstreamTarget): HostHealth {
    let h = this.counters.hosts.get(t.address);
    if (h === undefined) this.counters.hosts.set(t.address, (h = { consecutiveErrors: 0, consecutiveGateway: 0, ejectedUntil: 0, ejections: 0, since: performance.now() }));
    return h;
  }

  private ejected(t: UpstreamTarget, now: number): boolean {
    const h = this.counters.hosts.get(t.address);
    if (h === undefined || h.ejectedUntil === 0) return false;
    if (now < h.ejectedUntil) return true;
    h.ejectedUntil = 0;
    h.since = now;
    this.log?.info(`outlier detection: ${t.address} of ${this.key} is back in rotation`);
    return false;
  }

  /**
   * Outlier detection hears how an attempt ended: an HTTP status, or 0 for a failure of the waypoint's own (connect
   * failure, reset, timeout), which counts as a 5xx and a gateway error. A run of errors ejects the endpoint at once,
   * for the base time × its ejections (at most 300 s), unless that takes the ejected share over max_ejection_percent.
   */
  outcome(t: UpstreamTarget, status: number): void {
    const od = this.policy.outlierDetection;
    if (od === undefined) return;
    const h = this.health(t);
    const error = status === 0 || status >= 500;
    const gateway = status === 0 || status === 502 || status === 503 || status === 504;
    h.consecutiveErrors = error ? h.consecutiveErrors + 1 : 0;
    h.consecutiveGateway = gateway ? h.consecutiveGateway + 1 : 0;
    const by5xx = od.consecutiveErrors > 0 && h.consecutiveErrors >= od.consecutiveErrors;
    const byGateway = od.consecutiveGatewayErrors > 0 && h.consecutiveGateway >= od.consecutiveGatewayErrors;
    if (!by5xx && !byGateway) return;
    const now = performance.now();
    if (this.ejected(t, now)) return;
    let out = 0;
    for (const x of this.targets) if (this.ejected(x, now)) out++;
    if (!((out * 100) / this.targets.length < od.maxEjectionPercent)) return;
    // One ejection less for every interval it stayed healthy since it last came back.
    h.ejections = Math.max(0, h.ejections - Math.floor((now - h.since) / od.intervalMs)) + 1;
    const ms = Math.min(od.baseEjectionTimeMs * h.ejections, Math.max(MAX_EJECTION_MS, od.baseEjectionTimeMs));
    h.ejectedUntil = now + ms;
    h.consecutiveErrors = 0;
    h.consecutiveGateway = 0;
    this.log?.info(`outlier detection: ejected ${t.address} of ${this.key} for ${ms}ms (${by5xx ? `${od.consecutiveErrors} consecutive 5xx` : `${od.consecutiveGatewayErrors} consecutive gateway errors`})`);
  }
}

/** Envoy's max_ejection_time default. */
const MAX_EJECTION_MS = 300_000;

/** FNV-1a over a string's UTF-16 code units: a stable, allocation-free hash for ring positions and keys. */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  // FNV's low bits mix poorly for short keys: one more avalanche round.
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return h >>> 0;
}

/** A hash ring with about `size` points spread evenly over the endpoints (at least one each). */
function buildRing(targets: UpstreamTarget[], size: number): { hashes: Uint32Array; targets: UpstreamTarget[] } {
  const per = Math.max(1, Math.ceil(Math.min(size, 1 << 16) / Math.max(1, targets.length)));
  const points: [number, UpstreamTarget][] = [];
  for (const t of targets) for (let i = 0; i < per; i++) points.push([fnv1a(`${t.address}_${i}`), t]);
  points.sort((a, b) => a[0] - b[0]);
  return { hashes: Uint32Array.from(points, (p) => p[0]), targets: points.map((p) => p[1]) };
}

export class Upstreams {
  /** `namespace/hostname|port|subset` → the cluster, rebuilt only after a change of the mesh or the configuration. */
  private readonly clusters = new Map<string, UpstreamCluster | null>();
  /**
   * What survives those rebuilds, by the key and the cluster's policy (a changed DestinationRule starts afresh, as a
   * new Envoy cluster does); idle entries are dropped at each change.
   */
  private readonly counters = new Map<string, ClusterCounters>();
  /** TLS settings by their files, read once per configuration change. */
  private tlsOptions = new Map<string, tls.ConnectionOptions>();

  private readonly resolver = new EndpointResolver();

  constructor(private readonly opts: UpstreamsOptions) {
    opts.state.onChange(() => {
      this.clusters.clear();
      this.tlsOptions = new Map();
      const now = performance.now();
      for (const [key, c] of this.counters) if (c.idle(now)) this.counters.delete(key);
    });
  }

  /**
   * The cluster of a Service port and subset; undefined for a subset no DestinationRule defines (Envoy has no such
   * cluster). Its endpoints are the ready ones of the Service (of the subset: those the control plane listed).
   */
  cluster(service: Service, servicePort: number, subset = ''): UpstreamCluster | undefined {
    const key = `${serviceKey(service)}|${servicePort}|${subset}`;
    let c = this.clusters.get(key);
    if (c === undefined) {
      const policy = this.opts.state.cluster(service, servicePort, subset);
      if (policy === undefined) c = null;
      else {
        const members = subset === '' ? undefined : new Set(policy.workloads);
        const list: UpstreamTarget[] = [];
        for (const ep of this.opts.state.endpointsOf(service)) {
          if (members !== undefined && !members.has(ep.workload.uid)) continue;
          const port = ep.targetPort(servicePort);
          const t = port === undefined ? undefined : target(ep.workload, port);
          if (t) list.push(t);
        }
        const countersKey = `${key}|${JSON.stringify([policy.loadBalancer, policy.connectionPool, policy.outlierDetection])}`;
        let counters = this.counters.get(countersKey);
        if (counters === undefined) this.counters.set(countersKey, (counters = new ClusterCounters()));
        // Outlier state of endpoints that are gone goes with them.
        for (const address of counters.hosts.keys()) if (!list.some((t) => t.address === address)) counters.hosts.delete(address);
        c = new UpstreamCluster(key, list, policy, counters, this.opts.log);
        for (const t of list) t.cluster = c;
      }
      this.clusters.set(key, c);
    }
    return c ?? undefined;
  }

  /** Workload-addressed traffic goes to the workload itself. */
  workload(w: Workload, port: number): UpstreamTarget | undefined {
    return target(w, port);
  }

  /**
   * A byte stream to the endpoint, TLS inside it when the cluster's DestinationRule originates TLS; rejects with
   * UpstreamConnectError.
   */
  async connect(t: UpstreamTarget, alpn?: string[], requestHost?: string): Promise<Duplex> {
    const stream = await this.connectPlain(t, requestHost);
    const settings = t.cluster?.policy.tls;
    return settings === undefined ? stream : this.originateTls(t, stream, settings, alpn, settings.sni || requestHost || '');
  }

  private async connectPlain(t: UpstreamTarget, requestHost: string | undefined): Promise<Duplex> {
    let connectTimeoutMs = timerMs(t.cluster?.connectTimeoutMs || this.opts.connectTimeoutMs);
    let ip = t.ip;
    if (t.dns) {
      // Resolving is part of connecting: one connect timeout covers both.
      const started = performance.now();
      ip = await this.resolver.resolve(isWildcardTarget(t) ? hostUnder(t.ip, requestHost) : t.ip, connectTimeoutMs);
      connectTimeoutMs = Math.max(1, connectTimeoutMs - Math.round(performance.now() - started));
    }
    if (t.hbone) {
      try {
        return await this.opts.pool.connect({
          destination: { address: ip, port: 15008 },
          certificate: await this.opts.certificate(),
          expectedIdentities: [identityOf(t.workload)],
          target: { address: ip, port: t.port },
        });
      } catch (e) {
        const timeout = e instanceof HboneConnectTimeoutError;
        throw new UpstreamConnectError(timeout ? 'connection timeout' : 'remote connection failure', (e as Error).message, { cause: e });
      }
    }
    return new Promise<Duplex>((resolve, reject) => {
      const socket = net.connect({ host: ip, port: t.port, noDelay: true });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new UpstreamConnectError('connection timeout', 'connection timeout'));
      }, connectTimeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve(socket);
      });
      socket.once('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(new UpstreamConnectError('remote connection failure', `delayed connect error: ${e.code === 'ECONNREFUSED' ? 'Connection refused' : e.message}`, { cause: e }));
      });
    });
  }

  /**
   * DestinationRule tls SIMPLE or MUTUAL: the handshake inside the tunnel, within the connect timeout. The server name
   * is the rule's `sni`, else the request's host (Istio's auto SNI); the certificate must carry one of the rule's
   * `subjectAltNames`, else match that name (auto SAN validation), unless `insecureSkipVerify`.
   */
  private originateTls(t: UpstreamTarget, stream: Duplex, settings: WaypointUpstreamTls, alpn: string[] | undefined, servername: string): Promise<Duplex> {
    let base: tls.ConnectionOptions;
    try {
      base = this.tlsOptionsOf(settings);
    } catch (e) {
      stream.destroy();
      return Promise.reject(new UpstreamConnectError('remote connection failure', `TLS error: ${(e as Error).message}`, { cause: e }));
    }
    const names = settings.subjectAltNames;
    const host = /^[\d.:]+$/.test(servername) ? '' : servername;
    const checkServerIdentity = (_: string, cert: tls.PeerCertificate): Error | undefined => {
      if (names.length > 0) {
        const sans = (cert.subjectaltname ?? '').split(',').map((x) => x.trim().replace(/^(DNS|URI|IP Address):/, ''));
        return names.some((n) => sans.includes(n)) ? undefined : new Error(`certificate SANs ${JSON.stringify(sans)} do not include ${names.join(', ')}`);
      }
      return host ? tls.checkServerIdentity(host, cert) : undefined;
    };
    return new Promise<Duplex>((resolve, reject) => {
      const socket = tls.connect({ ...base, socket: stream, checkServerIdentity, ...(host ? { servername: host } : {}), ...(alpn ? { ALPNProtocols: alpn } : {}) });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new UpstreamConnectError('connection timeout', 'TLS handshake timeout'));
      }, timerMs(t.cluster?.connectTimeoutMs || this.opts.connectTimeoutMs));
      const fail = (e: Error) => {
        clearTimeout(timer);
        socket.destroy();
        reject(new UpstreamConnectError('remote connection failure', `TLS error: ${e.message}`, { cause: e }));
      };
      socket.once('error', fail);
      socket.once('secureConnect', () => {
        clearTimeout(timer);
        socket.off('error', fail);
        resolve(socket);
      });
    });
  }

  /** The files of a TLS setting, read once per configuration change. */
  private tlsOptionsOf(s: WaypointUpstreamTls): tls.ConnectionOptions {
    const key = `${s.mode}|${s.caCertificates}|${s.clientCertificate}|${s.privateKey}|${s.insecureSkipVerify}`;
    let o = this.tlsOptions.get(key);
    if (o === undefined) {
      o = {
        rejectUnauthorized: !s.insecureSkipVerify,
        ...(s.caCertificates ? { ca: readFileSync(s.caCertificates) } : {}),
        ...(s.mode === 'MUTUAL' ? { cert: readFileSync(s.clientCertificate), key: readFileSync(s.privateKey) } : {}),
      };
      this.tlsOptions.set(key, o);
    }
    return o;
  }
}
