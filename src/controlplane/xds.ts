// Delta ADS server (envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources), the protocol
// ztunnel uses to receive Address and Authorization resources from istiod.
//
// Each registered type URL has a source (the model) and a cache of its resources encoded once per version: the
// version is a hash of the resource's bytes, and the cached bytes are a complete envoy Resource message, so a push to
// a hundred clients copies bytes a hundred times but encodes once. Per stream the server remembers, for each type,
// which version of which resource the client holds; pushes then carry only resources whose version differs and
// removals of names the client holds, which also makes reconnects with initial_resource_versions cheap.
import { createHash } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { TYPE_ADDRESS, TYPE_AUTHORIZATION } from '../xds/types.js';
import { AuthenticationError, bearerToken, describeCaller, type CallerIdentity, type NodeAuthenticator } from './auth.js';
import { scopedLogger, type Logger } from './log.js';
import type { ControlPlaneMetrics } from './metrics.js';
import { adsServiceDefinition, messageTypeForUrl, protoRoot } from '../xds/protos.js';

export interface XdsChange {
  typeUrl: string;
  /** Resources added or changed, by xDS resource name, in protobufjs object form. */
  upserted: Map<string, object>;
  removed: string[];
}

/** Where the resources of one or more xDS types come from (the model's AmbientIndex). */
export interface XdsSource {
  typeUrls(): string[];
  snapshot(typeUrl: string): Map<string, object>;
  /** Registers a listener; returns the function that unregisters it. */
  onChange(listener: (change: XdsChange) => void): () => void;
}

/** One servable xDS type. Adding a type (say, waypoint configuration) is one more of these. */
export interface XdsType {
  typeUrl: string;
  source: XdsSource;
  /** The resource's protobuf message; defaults to the message the type URL names. */
  message?: protobuf.Type;
  /** Name used in log lines and metric labels; defaults to istiod's short name or the type URL. */
  shortName?: string;
  /** How clients that subscribe by name (not to everything) are served; without it they get exactly what they name. */
  onDemand?: OnDemandIndex;
}

/**
 * On-demand subscriptions (ztunnel's XDS_ON_DEMAND; istiod's WorkloadGenerator.generateDeltasOndemand): a client
 * subscribes to nothing (`*` subscribed and unsubscribed in one request), then asks for resources by name or alias as
 * it meets them. The server answers with the resources an alias stands for (carrying the alias in the Resource's
 * `aliases`), tells it which names stand for nothing (as removed), and also sends what such a client holds without
 * asking (istiod's AdditionalPodSubscriptions).
 */
export interface OnDemandIndex {
  /** Names besides its own that a subscription may use for this resource (Address: `network/IP` of each address). */
  aliasesOf(value: object): string[];
  /** Whether a client subscribed to `names`, with this node metadata, also holds this resource without naming it. */
  implied(value: object, metadata: Readonly<Record<string, string>>, names: ReadonlySet<string>): boolean;
}

// istiod's short names (pilot/pkg/xds/v3 GetShortType), so log lines read the same.
export const XDS_SHORT_NAMES: Record<string, string> = { [TYPE_ADDRESS]: 'WDS', [TYPE_AUTHORIZATION]: 'WADS' };

/**
 * Snapshot answers (the first response of a type on a stream carries every resource: tens of megabytes with 50,000
 * workloads) are built only while fewer than this many snapshot bytes are still being written. Otherwise a hundred
 * ztunnels connecting at once make the server hold a hundred encoded snapshots, plus gRPC's framed copies, at once.
 */
const SNAPSHOT_BUDGET_BYTES = 64 * 1024 * 1024;
/** A snapshot still not written out after this long (its client stopped reading) stops holding up the others. */
const STALLED_SNAPSHOT_MS = 30_000;

/** The XdsType entries for every type a source serves. */
export function xdsTypesOf(source: XdsSource): XdsType[] {
  return source.typeUrls().map((typeUrl) => ({ typeUrl, source }));
}

interface CachedResource {
  name: string;
  version: string;
  /** The whole envoy.service.discovery.v3.Resource message, ready to be embedded in a response. */
  encoded: Uint8Array;
  /** Kept only for types served on demand: the value (for `implied`) and its aliases. */
  value?: object;
  aliases?: string[];
}

/** Field numbers of the messages the server writes by hand, read from the .proto files rather than repeated here. */
function fieldTag(type: protobuf.Type, field: string): number {
  const f = type.fields[field];
  if (!f) throw new Error(`${type.fullName} has no field ${field}`);
  return (f.id << 3) | 2; // every field we write by hand is length-delimited
}

class ResponseEncoder {
  private readonly resourceType: protobuf.Type;
  private readonly tags: Record<'systemVersionInfo' | 'resources' | 'typeUrl' | 'nonce' | 'removedResources' | 'aliases', number>;

  constructor() {
    const root = protoRoot();
    this.resourceType = root.lookupType('envoy.service.discovery.v3.Resource');
    const response = root.lookupType('envoy.service.discovery.v3.DeltaDiscoveryResponse');
    this.tags = {
      systemVersionInfo: fieldTag(response, 'systemVersionInfo'),
      resources: fieldTag(response, 'resources'),
      typeUrl: fieldTag(response, 'typeUrl'),
      nonce: fieldTag(response, 'nonce'),
      removedResources: fieldTag(response, 'removedResources'),
      aliases: fieldTag(this.resourceType, 'aliases'),
    };
  }

  resource(typeUrl: string, name: string, version: string, value: Uint8Array): Uint8Array {
    // protobufjs's bundled Any keeps the proto field name `type_url`.
    return this.resourceType.encode({ name, version, resource: { type_url: typeUrl, value } }).finish();
  }

  /**
   * A DeltaDiscoveryResponse whose resources are copied from their cached encodings. `aliasesFor` gives the aliases
   * a resource is sent with: appended to its encoding as more `aliases` fields, which protobuf merges.
   */
  response(typeUrl: string, systemVersion: string, nonce: string, resources: CachedResource[], removed: string[], aliasesFor?: (r: CachedResource) => string[]): Uint8Array {
    const w = protobuf.Writer.create();
    w.uint32(this.tags.systemVersionInfo).string(systemVersion);
    for (const r of resources) {
      const aliases = aliasesFor?.(r) ?? [];
      if (aliases.length === 0) {
        w.uint32(this.tags.resources).bytes(r.encoded);
        continue;
      }
      const extra = protobuf.Writer.create();
      for (const a of aliases) extra.uint32(this.tags.aliases).string(a);
      w.uint32(this.tags.resources).bytes(Buffer.concat([r.encoded, extra.finish()]));
    }
    w.uint32(this.tags.typeUrl).string(typeUrl);
    w.uint32(this.tags.nonce).string(nonce);
    for (const name of removed) w.uint32(this.tags.removedResources).string(name);
    return w.finish();
  }
}

/** The encoded resources of one type, kept in step with its source. */
class TypeCache {
  readonly resources = new Map<string, CachedResource>();
  readonly shortName: string;
  readonly onDemand: OnDemandIndex | undefined;
  /** Alias → the names of the resources that answer to it (on-demand types only). */
  private readonly byAlias = new Map<string, Set<string>>();
  private readonly message: protobuf.Type;

  constructor(
    readonly typeUrl: string,
    reg: XdsType,
    private readonly encoder: ResponseEncoder,
    private readonly log: Logger,
  ) {
    this.message = reg.message ?? messageTypeForUrl(typeUrl);
    this.shortName = reg.shortName ?? XDS_SHORT_NAMES[typeUrl] ?? typeUrl;
    this.onDemand = reg.onDemand;
  }

  /** The names of the resources an alias stands for (empty when none). */
  resolve(alias: string): Iterable<string> {
    return this.byAlias.get(alias) ?? [];
  }

  private index(entry: CachedResource, add: boolean): void {
    for (const a of entry.aliases ?? []) {
      let names = this.byAlias.get(a);
      if (add) {
        if (!names) this.byAlias.set(a, (names = new Set()));
        names.add(entry.name);
      } else if (names) {
        names.delete(entry.name);
        if (names.size === 0) this.byAlias.delete(a);
      }
    }
  }

  /** Stores a resource; returns the new entry when its bytes changed, undefined when unchanged or unencodable. */
  upsert(name: string, value: object): CachedResource | undefined {
    let bytes: Uint8Array;
    try {
      bytes = this.message.encode(this.message.fromObject(value as Record<string, unknown>)).finish();
    } catch (e) {
      // A model bug must not take the other resources down with it; the client keeps the previous version.
      this.log.error(`${this.shortName}: cannot encode resource ${name} as ${this.message.fullName}: ${(e as Error).message}`);
      return undefined;
    }
    const version = createHash('sha256').update(bytes).digest('base64url').slice(0, 16);
    const old = this.resources.get(name);
    if (old?.version === version) return undefined;
    const entry: CachedResource = { name, version, encoded: this.encoder.resource(this.typeUrl, name, version, bytes) };
    if (this.onDemand) {
      entry.value = value;
      entry.aliases = this.onDemand.aliasesOf(value);
      if (old) this.index(old, false);
      this.index(entry, true);
    }
    this.resources.set(name, entry);
    return entry;
  }

  remove(name: string): boolean {
    const old = this.resources.get(name);
    if (old) this.index(old, false);
    return this.resources.delete(name);
  }
}

/** What one stream has asked for, and holds, of one type. */
interface Watch {
  wildcard: boolean;
  /** Explicitly subscribed names and glob collections (besides the wildcard). */
  names: Set<string>;
  /** Prefixes of the glob collections subscribed (`ns/gw/*` → `ns/gw/`). */
  globs: string[];
  /** name -> version the client holds, as far as we know. */
  held: Map<string, string>;
  nonceSent: string;
  nonceAcked: string;
  /** When the last response of this type was sent (istiod's LastSendTime). */
  lastSendTime?: Date;
  /** The client's last NACK of this type, until it ACKs again (istiod's LastError). */
  lastError?: string;
  /** The snapshot answer waits for its turn; it is built from the cache when sent, so pushes skip this watch. */
  snapshotPending: boolean;
  /** Set for a non-wildcard watch of an on-demand type: resources it holds without naming them. */
  implied?: (value: object) => boolean;
}

function wantsName(w: Watch, name: string): boolean {
  if (w.wildcard || w.names.has(name)) return true;
  for (const prefix of w.globs) if (name.startsWith(prefix)) return true;
  return false;
}

function wants(w: Watch, r: CachedResource): boolean {
  if (wantsName(w, r.name)) return true;
  if (r.aliases?.some((a) => w.names.has(a))) return true;
  return r.value !== undefined && w.implied !== undefined && w.implied(r.value);
}

/** The aliases sent with resources to an on-demand watch: all of each resource's, as istiod sends them. */
function aliasesFor(w: Watch): ((r: CachedResource) => string[]) | undefined {
  return w.implied ? (r) => r.aliases ?? [] : undefined;
}

/**
 * A subscribed name ending in `/*` is a glob collection (xDS's `xdstp://…/*` collections without the scheme): every
 * resource whose name starts with what precedes the `*`.
 */
export function globPrefix(name: string): string | undefined {
  return name.length > 2 && name.endsWith('/*') ? name.slice(0, -1) : undefined;
}

function globsOf(names: Iterable<string>): string[] {
  const out: string[] = [];
  for (const n of names) {
    const p = globPrefix(n);
    if (p !== undefined) out.push(p);
  }
  return out;
}

export interface XdsConnectionInfo {
  id: string;
  /** Node name proven by a node proxy's token (empty for a workload's own service account token). */
  node: string;
  /** Who the bearer token proved the caller to be: `node node-1`, `serviceaccount ns/sa`. */
  caller: string;
  /** Node id the client sent (ztunnel: `ztunnel~<ip>~<pod>.<ns>~<ns>.svc.cluster.local`). */
  proxyId: string;
  peer: string;
  connectedAt: Date;
  /** The node metadata the client sent (CLUSTER_ID, NAMESPACE, ISTIO_VERSION, …). */
  metadata: Record<string, string>;
  watched: { typeUrl: string; wildcard: boolean; resources: number; nonceSent: string; nonceAcked: string; lastSendTime?: Date; lastError?: string }[];
}

class Connection {
  readonly watched = new Map<string, Watch>();
  readonly connectedAt = new Date();
  /** Releases the budget share of each snapshot this stream is still writing. */
  readonly snapshotWrites = new Set<() => void>();
  id = '';
  proxyId = '';
  metadata: Record<string, string> = {};

  constructor(
    readonly call: grpc.ServerDuplexStream<any, Uint8Array>,
    readonly caller: CallerIdentity,
  ) {}

  info(): XdsConnectionInfo {
    return {
      id: this.id,
      node: this.caller.node ?? '',
      caller: describeCaller(this.caller),
      proxyId: this.proxyId,
      peer: this.call.getPeer(),
      connectedAt: this.connectedAt,
      metadata: this.metadata,
      watched: [...this.watched].map(([typeUrl, w]) => ({
        typeUrl,
        wildcard: w.wildcard,
        resources: w.held.size,
        nonceSent: w.nonceSent,
        nonceAcked: w.nonceAcked,
        ...(w.lastSendTime ? { lastSendTime: w.lastSendTime } : {}),
        ...(w.lastError ? { lastError: w.lastError } : {}),
      })),
    };
  }
}

/** Decoded DeltaDiscoveryRequest (protobufjs object form, see TO_OBJECT in protos.ts). */
interface DeltaRequest {
  node?: { id?: string; metadata?: { fields?: Record<string, { stringValue?: string }> } };
  typeUrl?: string;
  resourceNamesSubscribe: string[];
  resourceNamesUnsubscribe: string[];
  initialResourceVersions: Record<string, string>;
  responseNonce?: string;
  errorDetail?: { code?: number; message?: string };
}

/**
 * Decides whether a caller may subscribe to `names` of a type (`*` for everything); returns why not, or undefined.
 * Asked for the first request of each type and for every later subscription.
 */
export type XdsAuthorizer = (caller: CallerIdentity, typeUrl: string, names: readonly string[]) => string | undefined;

export interface XdsServerOptions {
  authenticator: NodeAuthenticator;
  /** Without one, every authenticated caller may subscribe to anything. */
  authorize?: XdsAuthorizer;
  types?: XdsType[];
  metrics?: ControlPlaneMetrics;
  log?: Logger;
}

export class XdsServer {
  private readonly caches = new Map<string, TypeCache>();
  private readonly unsubscribes: (() => void)[] = [];
  private readonly connections = new Set<Connection>();
  private readonly encoder = new ResponseEncoder();
  private readonly auth: NodeAuthenticator;
  private readonly authorize: XdsAuthorizer | undefined;
  private readonly metrics: ControlPlaneMetrics | undefined;
  private readonly log: Logger;
  private nonceCounter = 0;
  private connectionCounter = 0;
  private snapshotBytesInFlight = 0;
  /** Snapshot answers waiting for room under SNAPSHOT_BUDGET_BYTES, oldest first. */
  private readonly snapshotQueue: (() => void)[] = [];
  /** Bumped on every change that reaches the caches; sent as system_version_info for debugging. */
  private pushVersion = 0;

  constructor(opts: XdsServerOptions) {
    this.auth = opts.authenticator;
    this.authorize = opts.authorize;
    this.metrics = opts.metrics;
    this.log = opts.log ?? scopedLogger('ads');
    for (const t of opts.types ?? []) this.registerType(t);
  }

  registerType(reg: XdsType): void {
    if (this.caches.has(reg.typeUrl)) throw new Error(`xDS type ${reg.typeUrl} is already registered`);
    const cache = new TypeCache(reg.typeUrl, reg, this.encoder, this.log);
    this.caches.set(reg.typeUrl, cache);
    // Subscribe before taking the snapshot so no change falls between the two; replaying one is harmless because
    // unchanged bytes keep their version.
    this.unsubscribes.push(reg.source.onChange((c) => c.typeUrl === reg.typeUrl && this.apply(cache, c)));
    for (const [name, value] of reg.source.snapshot(reg.typeUrl)) cache.upsert(name, value);
  }

  /** Adds the ADS service to a gRPC server. */
  addTo(server: grpc.Server): void {
    server.addService(adsServiceDefinition(), {
      DeltaAggregatedResources: (call: grpc.ServerDuplexStream<any, Uint8Array>) => void this.handleStream(call),
    });
  }

  connectionInfo(): XdsConnectionInfo[] {
    return [...this.connections].map((c) => c.info());
  }

  /** Number of resources of a type as currently served. */
  resourceCount(typeUrl: string): number {
    return this.caches.get(typeUrl)?.resources.size ?? 0;
  }

  /** Stops following the sources and ends every stream with UNAVAILABLE so clients reconnect elsewhere. */
  close(): void {
    for (const u of this.unsubscribes.splice(0)) u();
    for (const c of this.connections) c.call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'control plane shutting down' });
    this.connections.clear();
    this.metrics?.xdsClients.set(0);
  }

  private async handleStream(call: grpc.ServerDuplexStream<any, Uint8Array>): Promise<void> {
    // Requests that arrive while the token is checked stay buffered in the stream until 'data' is listened to.
    const token = bearerToken(call.metadata);
    let identity;
    let why = token === undefined ? 'no "authorization: Bearer <token>" metadata' : 'unknown bearer token';
    try {
      identity = token === undefined ? undefined : await this.auth.authenticate(token);
    } catch (e) {
      if (e instanceof AuthenticationError) why = e.message;
      else this.log.error(`ADS: "${call.getPeer()}" token check failed: ${(e as Error).message}`);
    }
    if (!identity) {
      this.metrics?.xdsAuthFailures.inc();
      this.log.warn(`ADS: "${call.getPeer()}" refused: authentication failure: ${why}`);
      call.emit('error', { code: grpc.status.UNAUTHENTICATED, details: `authentication failure: ${why}` });
      return;
    }
    const conn = new Connection(call, identity);
    call.on('data', (req: DeltaRequest) => {
      try {
        this.handleRequest(conn, req);
      } catch (e) {
        this.log.error(`ADS: ${conn.id || call.getPeer()} request failed: ${(e as Error).stack ?? e}`);
        call.emit('error', { code: grpc.status.INTERNAL, details: (e as Error).message });
      }
    });
    call.on('end', () => call.end());
    call.on('error', () => this.drop(conn, 'with error'));
    call.on('close', () => this.drop(conn, 'with stream closed'));
  }

  private drop(conn: Connection, how: string): void {
    if (!this.connections.delete(conn)) return;
    // grpc-js never completes writes on a cancelled stream, so give their budget back here.
    for (const release of [...conn.snapshotWrites]) release();
    this.metrics?.xdsClients.set(this.connections.size);
    this.log.info(`ADS: "${conn.call.getPeer()}" ${conn.id} terminated ${how}`);
  }

  private handleRequest(conn: Connection, req: DeltaRequest): void {
    if (!conn.id) {
      const nodeId = req.node?.id;
      if (!nodeId) {
        conn.call.emit('error', { code: grpc.status.INVALID_ARGUMENT, details: 'missing node information' });
        return;
      }
      // istiod names connections after the proxy id, the third `~` field of the node id (`<pod>.<ns>`).
      const parts = nodeId.split('~');
      conn.proxyId = parts.length === 4 ? parts[2]! : nodeId;
      for (const [k, v] of Object.entries(req.node?.metadata?.fields ?? {})) if (typeof v?.stringValue === 'string') conn.metadata[k] = v.stringValue;
      conn.id = `${conn.proxyId}-${++this.connectionCounter}`;
      this.connections.add(conn);
      this.metrics?.xdsClients.set(this.connections.size);
      this.log.info(`ADS: new delta connection for node:${conn.id} (authenticated ${describeCaller(conn.caller)})`);
    }

    const typeUrl = req.typeUrl ?? '';
    const cache = this.caches.get(typeUrl);
    if (!cache) {
      // istiod has no generator for such a type and stays silent; so do we, but say so once per stream and type.
      if (!conn.watched.has(typeUrl)) {
        this.log.warn(`ADS: ${conn.id} asked for unknown type "${typeUrl}"; not served`);
        conn.watched.set(typeUrl, { wildcard: false, names: new Set(), globs: [], held: new Map(), nonceSent: '', nonceAcked: '', snapshotPending: false });
      }
      return;
    }

    if (req.errorDetail) {
      const code = grpc.status[req.errorDetail.code ?? grpc.status.UNKNOWN] ?? String(req.errorDetail.code);
      this.log.warn(`ADS:${cache.shortName}: ACK ERROR ${conn.id} ${code}:${req.errorDetail.message ?? ''}`);
      this.metrics?.xdsRejects.inc({ type: cache.shortName.toLowerCase() });
      const nacked = conn.watched.get(typeUrl);
      if (nacked) nacked.lastError = `${code}: ${req.errorDetail.message ?? ''}`;
      // The client keeps what it had; resending the same bytes would be rejected again, so wait for a change.
      return;
    }

    const subscribe = req.resourceNamesSubscribe.filter((n) => n !== '*');
    let w = conn.watched.get(typeUrl);
    const asked = w === undefined && req.resourceNamesSubscribe.length === 0 ? ['*'] : req.resourceNamesSubscribe;
    const refused = asked.length > 0 ? this.authorize?.(conn.caller, typeUrl, asked) : undefined;
    if (refused !== undefined) {
      this.log.warn(`ADS:${cache.shortName}: ${conn.id} (${describeCaller(conn.caller)}) refused: ${refused}`);
      conn.call.emit('error', { code: grpc.status.PERMISSION_DENIED, details: `${describeCaller(conn.caller)} may not subscribe to ${cache.shortName} ${asked.join(', ')}: ${refused}` });
      return;
    }
    if (!w) {
      // First request for this type on this stream: a new subscription, or a reconnect telling us what it holds.
      // `*` subscribed and unsubscribed at once is a subscription to nothing yet (an on-demand client).
      const all = req.resourceNamesSubscribe.length === 0 || req.resourceNamesSubscribe.includes('*');
      w = {
        wildcard: all && !req.resourceNamesUnsubscribe.includes('*'),
        names: new Set(subscribe),
        globs: globsOf(subscribe),
        held: new Map(Object.entries(req.initialResourceVersions)),
        nonceSent: '',
        nonceAcked: '',
        snapshotPending: true,
      };
      const watch = w;
      if (!watch.wildcard && cache.onDemand) {
        const { onDemand } = cache;
        watch.implied = (value) => onDemand.implied(value, conn.metadata, watch.names);
        for (const n of subscribe) for (const real of cache.resolve(n)) watch.names.add(real);
      }
      conn.watched.set(typeUrl, watch);
      this.snapshotQueue.push(() => {
        watch.snapshotPending = false;
        if (!this.connections.has(conn)) return;
        const resources = [...cache.resources.values()].filter((r) => wants(watch, r) && watch.held.get(r.name) !== r.version);
        const removed = [...watch.held.keys()].filter((n) => !cache.resources.has(n));
        if (!watch.wildcard) removed.push(...this.unknownNames(cache, subscribe));
        // Always answer the first request, even with nothing in it: ztunnel waits for it before reporting ready.
        this.send(conn, cache, watch, resources, removed, true, true);
      });
      this.startSnapshots();
      return;
    }

    if (req.responseNonce) {
      if (req.responseNonce === w.nonceSent) {
        w.nonceAcked = req.responseNonce;
        w.lastError = undefined;
      }
    }
    // Only an unsubscription can make held names unwanted; an ACK (every push brings a hundred) must not walk
    // the tens of thousands of names a wildcard client holds.
    if (req.resourceNamesUnsubscribe.length > 0) {
      for (const n of req.resourceNamesUnsubscribe) {
        if (n === '*') w.wildcard = false;
        else w.names.delete(n);
      }
      w.globs = globsOf(w.names);
      for (const n of [...w.held.keys()]) {
        const r = cache.resources.get(n);
        if (!(r ? wants(w, r) : wantsName(w, n))) w.held.delete(n);
      }
    }

    // Newly subscribed names are answered even if the client seems to hold them (it may have dropped them).
    const fresh = subscribe.filter((n) => !w!.names.has(n));
    for (const n of fresh) w.names.add(n);
    const freshGlobs = globsOf(fresh);
    w.globs.push(...freshGlobs);
    const becameWildcard = req.resourceNamesSubscribe.includes('*') && !w.wildcard;
    if (becameWildcard) {
      w.wildcard = true;
      w.implied = undefined;
    }
    // A pending snapshot is built from the subscription as it is when sent, so it will carry these names too.
    if (w.snapshotPending || (!fresh.length && !becameWildcard)) return;
    if (w.implied) {
      // On demand: what the names and aliases stand for, plus what that implies (a service's workloads), sent
      // unless the client holds that version. One pass over the type's resources per request.
      for (const n of fresh) for (const real of cache.resolve(n)) w.names.add(real);
      const resources = [...cache.resources.values()].filter((r) => wants(w!, r) && w!.held.get(r.name) !== r.version);
      this.send(conn, cache, w, resources, this.unknownNames(cache, fresh), true);
      return;
    }
    const freshSet = new Set(fresh);
    const resources = [...cache.resources.values()].filter(
      (r) => freshSet.has(r.name) || freshGlobs.some((p) => r.name.startsWith(p)) || (becameWildcard && w!.held.get(r.name) !== r.version),
    );
    this.send(conn, cache, w, resources, this.unknownNames(cache, fresh), true);
  }

  /** Names (not collections) that no resource has and, for on-demand types, no resource answers to as an alias. */
  private unknownNames(cache: TypeCache, names: string[]): string[] {
    return names.filter((n) => globPrefix(n) === undefined && !cache.resources.has(n) && (!cache.onDemand || [...cache.resolve(n)].length === 0));
  }

  /** Applies a source change to the cache and pushes what changed to every stream that holds or wants it. */
  private apply(cache: TypeCache, change: XdsChange): void {
    const changed: CachedResource[] = [];
    for (const [name, value] of change.upserted) {
      const entry = cache.upsert(name, value);
      if (entry) changed.push(entry);
    }
    const removed = change.removed.filter((n) => cache.remove(n));
    if (!changed.length && !removed.length) return;
    this.pushVersion++;
    let clients = 0;
    for (const conn of this.connections) {
      const w = conn.watched.get(cache.typeUrl);
      if (!w || w.snapshotPending) continue;
      const resources = changed.filter((r) => wants(w, r) && w.held.get(r.name) !== r.version);
      const gone = removed.filter((n) => w.held.has(n));
      if (!resources.length && !gone.length) continue;
      this.send(conn, cache, w, resources, gone, false);
      clients++;
    }
    this.log.info(
      `XDS: Pushing ${cache.shortName} Version:${this.pushVersion} changed:${changed.length} removed:${removed.length} ConnectedEndpoints:${this.connections.size} pushed:${clients}`,
    );
  }

  /** Sends the queued snapshot answers that fit in the budget (always at least one when nothing is being written). */
  private startSnapshots(): void {
    while (this.snapshotQueue.length > 0 && this.snapshotBytesInFlight < SNAPSHOT_BUDGET_BYTES) this.snapshotQueue.shift()!();
  }

  /** Counts a snapshot write against the budget; the returned function (idempotent) gives it back. */
  private reserveSnapshot(conn: Connection, bytes: number): () => void {
    this.snapshotBytesInFlight += bytes;
    const release = () => {
      if (!conn.snapshotWrites.delete(release)) return;
      clearTimeout(timer);
      this.snapshotBytesInFlight -= bytes;
      this.startSnapshots();
    };
    const timer = setTimeout(release, STALLED_SNAPSHOT_MS).unref();
    conn.snapshotWrites.add(release);
    return release;
  }

  /**
   * `requested`: an answer to the client's own request (logged per connection), not a push of a change.
   * `snapshot`: the first answer of a type, counted against the snapshot budget until written.
   */
  private send(conn: Connection, cache: TypeCache, w: Watch, resources: CachedResource[], removed: string[], requested: boolean, snapshot = false): void {
    const nonce = `${++this.nonceCounter}`;
    const bytes = this.encoder.response(cache.typeUrl, String(this.pushVersion), nonce, resources, removed, aliasesFor(w));
    // An on-demand client now holds what it was sent under the resource's own name: later changes reach it (istiod
    // merges what it sent into the subscription).
    if (w.implied) for (const r of resources) w.names.add(r.name);
    for (const r of resources) w.held.set(r.name, r.version);
    for (const n of removed) w.held.delete(n);
    w.nonceSent = nonce;
    w.lastSendTime = new Date();
    if (snapshot) {
      const release = this.reserveSnapshot(conn, bytes.length);
      conn.call.write(bytes, () => release());
    } else {
      conn.call.write(bytes);
    }
    this.metrics?.xdsPushes.inc({ type: cache.shortName.toLowerCase() });
    // Answers are logged per connection (like istiod); pushes of changes are summarised once per batch in apply().
    if (requested) {
      this.log.info(`${cache.shortName}: PUSH for node:${conn.proxyId} resources:${resources.length} removed:${removed.length} size:${bytes.length}B`);
    }
  }
}
