// Delta ADS client: a proxy's side of the stream the control plane serves (src/controlplane/xds.ts). It subscribes to
// each configured type (wildcard, or the names/glob collections it is allowed to see), hands each response to that
// type's handler as one batch and ACKs it. A resource that cannot be decoded or fails validation is left out and the
// response is NACKed naming it, so the last good version keeps serving. When the stream breaks, the handlers keep
// everything they have (the data path goes on with the last configuration) and the client reconnects with backoff,
// telling the server what it holds via initial_resource_versions so only differences are resent.
//
// Each attempt opens a new gRPC channel. A channel has its own reconnect back-off, and a stream started while it waits
// fails at once; with one long-lived channel the two back-offs stacked (27 s after the control plane was back, with
// both capped at 15 s). A fresh channel connects when asked, so ours is the only back-off: once the server answers
// again, the next attempt (at most CONTROL_PLANE_BACKOFF.maxMs away) gets through.
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { Backoff, CONTROL_PLANE_BACKOFF } from '../common/backoff.js';
import { parseHostPort } from '../common/ip.js';
import type { Logger } from '../telemetry/log.js';
import type { XdsMetrics, XdsTerminationReason } from './metrics.js';
import { adsServiceDefinition, messageTypeForUrl, TO_OBJECT } from './protos.js';

/** One xDS type the client follows, and what to do with what arrives. */
export interface XdsSubscription {
  typeUrl: string;
  /** Name in log lines (`Address`, `Authorization`, …). */
  shortName: string;
  /** Resource names to subscribe to: `['*']` for everything, else names or glob collections (`prefix/*`). */
  names: readonly string[];
  /** Throws when a decoded resource is unusable; the resource is then left out and the response NACKed. */
  validate?(name: string, value: any): void;
  /** Applies one response's upserts and removals as one batch; a throw NACKs the response. */
  apply(upserts: Map<string, any>, removed: string[]): void;
}

export interface XdsClientOptions {
  /** `host:port` of the ADS server. */
  address: string;
  /** Name the server certificate must carry (istiod's service name when the address is an IP). */
  serverName: string;
  /** Mesh root(s), PEM. */
  rootPem: string;
  /** Read on every connect, so rotated tokens are used. */
  tokenFile: string;
  /** `ztunnel~<ip>~<pod>.<ns>~<ns>.svc.cluster.local`, `waypoint~…`. */
  nodeId: string;
  /** Node metadata (NODE_NAME, NAME, NAMESPACE, INSTANCE_IPS, CLUSTER_ID, …). */
  metadata: Record<string, string>;
  subscriptions: readonly XdsSubscription[];
  /** Called once per type after its first response has been applied. */
  onSynced?(typeUrl: string): void;
  log: Logger;
  /** istio_xds_* series (terminations, messages and their bytes per type). */
  metrics?: XdsMetrics;
  /** Reconnect backoff: starts here, doubles, jittered, capped at maxBackoffMs (default CONTROL_PLANE_BACKOFF). */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
}

/** Istio's proxy node id: `<type>~<ip>~<pod>.<namespace>~<namespace>.svc.<cluster domain>`. */
export function proxyNodeId(type: 'ztunnel' | 'waypoint', ip: string, podName: string, podNamespace: string, clusterDomain = 'cluster.local'): string {
  return `${type}~${ip}~${podName}.${podNamespace}~${podNamespace}.svc.${clusterDomain}`;
}

interface RawResource {
  name: string;
  version: string;
  resource?: { type_url?: string; value?: Uint8Array };
}

interface RawResponse {
  typeUrl?: string;
  nonce?: string;
  resources: RawResource[];
  removedResources: string[];
}

/**
 * How ztunnel classes the end of an established stream: the server going away in an orderly way (max connection
 * age, shutdown) is a `Reconnect`, any other gRPC status an `Error`.
 */
function terminationReason(e: grpc.ServiceError): XdsTerminationReason {
  const msg = e.details ?? '';
  if (e.code === grpc.status.UNKNOWN || e.code === grpc.status.CANCELLED || e.code === grpc.status.DEADLINE_EXCEEDED) return 'Reconnect';
  if (e.code === grpc.status.UNAVAILABLE && (msg.includes('transport is closing') || msg.includes('received prior goaway'))) return 'Reconnect';
  return 'Error';
}

type AdsClient = new (target: string, credentials: grpc.ChannelCredentials, options: grpc.ChannelOptions) => grpc.Client;

export class XdsClient {
  private readonly Ads: AdsClient;
  private readonly target: string;
  private readonly credentials: grpc.ChannelCredentials;
  /** The present attempt's channel (see the file comment for why each attempt has its own). */
  private client: grpc.Client | undefined;
  private call: grpc.ClientDuplexStream<any, RawResponse> | undefined;
  /** What the client holds: type → name → version (sent as initial_resource_versions on reconnect). */
  private readonly held: Map<string, Map<string, string>>;
  private readonly subscriptions: Map<string, XdsSubscription>;
  private readonly synced = new Set<string>();
  private readonly backoff: Backoff;
  private retryTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private streamId = 0;
  /** True while a stream is open and has delivered at least one response. */
  connected = false;
  /** Counts for /config_dump and tests. */
  readonly stats = { connects: 0, responses: 0, acks: 0, nacks: 0 };
  lastNack: string | undefined;

  constructor(private readonly opts: XdsClientOptions) {
    this.Ads = grpc.makeGenericClientConstructor(adsServiceDefinition(), 'AggregatedDiscoveryService');
    const { host, port } = parseHostPort(opts.address, 'XDS_ADDRESS');
    this.target = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
    this.credentials = grpc.credentials.createSsl(Buffer.from(opts.rootPem));
    this.backoff = new Backoff(opts.initialBackoffMs ?? CONTROL_PLANE_BACKOFF.initialMs, opts.maxBackoffMs ?? CONTROL_PLANE_BACKOFF.maxMs);
    this.subscriptions = new Map(opts.subscriptions.map((s) => [s.typeUrl, s]));
    this.held = new Map(opts.subscriptions.map((s) => [s.typeUrl, new Map()]));
  }

  start(): void {
    this.connect();
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.call?.cancel();
    this.call = undefined;
    this.connected = false;
    this.client?.close();
    this.client = undefined;
  }

  private connect(): void {
    if (this.closed) return;
    const id = ++this.streamId;
    let token: string;
    try {
      token = readFileSync(this.opts.tokenFile, 'utf8').trim();
    } catch (e) {
      this.opts.metrics?.terminated('Error');
      this.scheduleReconnect(id, `cannot read token file ${this.opts.tokenFile}: ${(e as Error).message}`);
      return;
    }
    const md = new grpc.Metadata();
    md.set('authorization', `Bearer ${token}`);
    this.client?.close();
    this.client = new this.Ads(this.target, this.credentials, {
      'grpc.ssl_target_name_override': this.opts.serverName,
      'grpc.default_authority': this.opts.serverName,
      // Notice a control plane that vanished without closing the connection.
      'grpc.keepalive_time_ms': 30_000,
      'grpc.keepalive_timeout_ms': 10_000,
    });
    const call: grpc.ClientDuplexStream<any, RawResponse> = (this.client as any).DeltaAggregatedResources(md);
    this.call = call;
    this.stats.connects++;
    call.on('data', (res: RawResponse) => {
      if (id !== this.streamId) return;
      if (!this.connected) {
        this.connected = true;
        this.opts.log.info(`Stream established`, { address: this.opts.address });
      }
      this.backoff.reset();
      this.handleResponse(call, res);
    });
    let ended_ = false;
    // A stream that never delivered a response never got through: ztunnel's `ConnectionError`.
    let established = false;
    call.on('data', () => (established = true));
    const ended = (why: string, reason: XdsTerminationReason) => {
      // 'error' and 'end' may both arrive for one stream; react once.
      if (ended_ || id !== this.streamId || this.closed) return;
      ended_ = true;
      this.connected = false;
      this.call = undefined;
      this.opts.metrics?.terminated(reason);
      this.scheduleReconnect(id, why);
    };
    call.on('error', (e: grpc.ServiceError) =>
      ended(`gRPC error: ${e.details || e.message} (${grpc.status[e.code] ?? e.code})`, established ? terminationReason(e) : 'ConnectionError'),
    );
    call.on('end', () => ended('stream closed by the server', 'Complete'));

    const metadata = { fields: Object.fromEntries(Object.entries(this.opts.metadata).map(([k, v]) => [k, { stringValue: v }])) };
    for (const sub of this.opts.subscriptions) {
      call.write({
        node: { id: this.opts.nodeId, metadata },
        typeUrl: sub.typeUrl,
        resourceNamesSubscribe: [...sub.names],
        initialResourceVersions: Object.fromEntries(this.held.get(sub.typeUrl)!),
      });
    }
  }

  private scheduleReconnect(id: number, why: string): void {
    if (this.closed || id !== this.streamId) return;
    this.call?.cancel();
    const delay = this.backoff.next();
    this.opts.log.warn(`XDS client connection error: ${why}, retrying in ${delay}ms`);
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  private handleResponse(call: grpc.ClientDuplexStream<any, RawResponse>, res: RawResponse): void {
    const typeUrl = res.typeUrl ?? '';
    this.stats.responses++;
    if (this.opts.metrics) {
      let bytes = 0;
      for (const r of res.resources) bytes += r.resource?.value?.length ?? 0;
      this.opts.metrics.received(typeUrl, bytes);
    }
    const held = this.held.get(typeUrl);
    const sub = this.subscriptions.get(typeUrl);
    if (!held || !sub) {
      this.nack(call, typeUrl, res.nonce ?? '', `unsupported type ${typeUrl}`);
      return;
    }
    const decoded = new Map<string, any>();
    const rejected: string[] = [];
    for (const r of res.resources) {
      try {
        const url = r.resource?.type_url ?? '';
        if (url !== typeUrl) throw new Error(`resource packed as ${url || '(no type)'} in a ${typeUrl} response`);
        const type = messageTypeForUrl(typeUrl);
        const value = type.toObject(type.decode(r.resource!.value ?? new Uint8Array()), TO_OBJECT);
        sub.validate?.(r.name, value);
        decoded.set(r.name, value);
      } catch (e) {
        rejected.push(`${r.name}: ${(e as Error).message}`);
      }
    }
    const removed = res.removedResources ?? [];
    try {
      sub.apply(decoded, removed);
    } catch (e) {
      rejected.push(`applying the update failed: ${(e as Error).message}`);
    }
    for (const r of res.resources) if (decoded.has(r.name)) held.set(r.name, r.version);
    for (const n of removed) held.delete(n);
    if (!this.synced.has(typeUrl)) {
      this.synced.add(typeUrl);
      this.opts.onSynced?.(typeUrl);
    }
    if (decoded.size || removed.length) {
      this.opts.log.debug(`received ${sub.shortName} update`, { resources: decoded.size, removes: removed.length, nonce: res.nonce ?? '' });
    }
    if (rejected.length > 0) {
      this.nack(call, typeUrl, res.nonce ?? '', rejected.join('; '));
      return;
    }
    this.stats.acks++;
    call.write({ typeUrl, responseNonce: res.nonce ?? '' });
  }

  private nack(call: grpc.ClientDuplexStream<any, RawResponse>, typeUrl: string, nonce: string, message: string): void {
    this.stats.nacks++;
    this.lastNack = message;
    this.opts.log.warn(`XDS client: rejecting ${this.subscriptions.get(typeUrl)?.shortName ?? typeUrl} config: ${message}`);
    call.write({ typeUrl, responseNonce: nonce, errorDetail: { code: grpc.status.INVALID_ARGUMENT, message } });
  }
}
