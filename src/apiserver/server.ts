// The Kubernetes API over HTTPS, as kubectl (1.27–1.33) and @kubernetes/client-node use it: discovery, CRUD with
// resourceVersion preconditions, the four patch types, watch with resume and 410 Expired, label and field selectors,
// server-side Tables, the status and scale subresources, CustomResourceDefinitions, and pods/log and pods/exec handed
// to the cluster. Clients authenticate with a client certificate signed by the cluster's API CA or a service account
// token; anonymous requests get 401. Every authenticated user may do everything (there is no RBAC; see
// docs/kubernetes-api.md).
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Server as NetServer, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { randomBytes } from 'node:crypto';
import { parse as parseYaml } from 'yaml';
import { InvalidObjectError } from '../api/errors.js';
import { IMMORTAL_NAMESPACES, IMMORTAL_NAMESPACE_REASON } from '../api/types.js';
import { fieldTree, strictDecodingError, unknownFieldMessage, unknownFields } from '../api/fields.js';
import { groupVersion, parseApiVersion, type ResourceType } from '../api/kinds.js';
import { parseSelector } from '../api/label-selector.js';
import { ServedTypes } from './discovery.js';
import { OpenApiV3 } from './openapi.js';
import { ApiError, alreadyExists, badRequest, conflict, expired, forbidden, forbiddenObject, invalid, methodNotAllowed, notFound, pathNotFound, tooLarge, unauthorized, unknownVersion, unsupportedMediaType } from './errors.js';
import { queryFlag } from './query.js';
import { parseFieldSelector } from './selectors.js';
import { PROTOBUF_CONTENT_TYPE, decodeProtobufObject } from './protobuf.js';
import type { ChangeEvent, KubeObject, ResourceStore } from './store.js';
import { APPLY_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH, PatchError, applyPatch, type Json, type JsonObject, type PatchContext } from './patch.js';
import { toEventTable, toTable } from './tables.js';
import { kubeTime } from '../common/time.js';

export interface UserInfo {
  username: string;
  groups: string[];
}

/** Who made a request, and how they proved it. */
interface Caller extends UserInfo {
  /**
   * `certificate`: a client certificate of the cluster's API CA (only the cluster's admin and its components hold
   * one); `token`: a service account token. Tokens are authenticated (TokenReview, `auth can-i`) but given no access
   * to resources: there is no RBAC, and a pod's token must not be cluster admin.
   */
  via: 'certificate' | 'token';
}

/** What the cluster behind the API does besides storing objects. */
export interface ApiBackend {
  /**
   * Admission: checks an object about to be stored and fills in what the cluster assigns (a Service's cluster IP).
   * Throws an ApiError (or an Error, taken as 422 Invalid) to refuse. `old` is the stored object on updates.
   */
  admit?(object: KubeObject, old: KubeObject | undefined, type: ResourceType): KubeObject;
  /** After an object is gone (a Service's IP goes back to the pool). */
  deleted?(object: KubeObject, type: ResourceType): void;
  /** After any write: the cluster's controllers reconcile. */
  changed?(): void;
  /** `GET …/pods/<name>/log`. */
  podLog?(req: IncomingMessage, res: ServerResponse, namespace: string, pod: KubeObject, query: URLSearchParams): Promise<void>;
  /** `…/pods/<name>/exec` as a WebSocket upgrade. */
  podExec?(req: IncomingMessage, socket: Duplex, head: Buffer, namespace: string, pod: KubeObject, query: URLSearchParams): void;
  /** A bearer token's user (service account tokens), or undefined when it is not valid. */
  authenticateToken?(token: string): Promise<UserInfo | undefined>;
  /** TokenRequest: a token for a service account (bound to a pod when one is given); no audiences: the API's own. */
  requestToken?(serviceAccount: KubeObject, spec: { audiences: string[]; expirationSeconds: number }, pod: KubeObject | undefined): Promise<{ token: string; expirationTimestamp: string }>;
  /** TokenReview: `status` of a token for the given audiences. */
  reviewToken?(token: string, audiences: string[]): Promise<Record<string, unknown>>;
}

export interface ApiServerOptions {
  store: ResourceStore;
  /** Serving certificate and key (PEM) and the CA client certificates must chain to. */
  tls: { cert: string; key: string; clientCA: string };
  host?: string;
  /** 0: any free port. */
  port?: number;
  backend?: ApiBackend;
  log?: (line: string) => void;
  /**
   * The types served without a CRD; default: the whole registry (as if Istio and the Gateway API were installed).
   * Leaving some out stands for a cluster without their CRDs: requests for them get 404 until a CRD is created.
   */
  builtInTypes?: readonly ResourceType[];
}

/** kube-apiserver's request body limit. */
const MAX_BODY_BYTES = 3 * 1024 * 1024;
/** The watch deadline when the client gives none (kube-apiserver picks 30–60 min from --min-request-timeout). */
const DEFAULT_WATCH_SECONDS = 1800;
const BOOKMARK_INTERVAL_MS = 60_000;
/** The longest delay a Node timer holds (longer ones fire at once); a watch's deadline is clamped to it. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/**
 * How far a watch may run ahead of a client that does not read (beyond its initial events) before the server closes
 * it, as kube-apiserver's watch cache closes a watcher that falls behind; the client resumes from the last event it
 * read. Without it, every change would queue in memory for as long as the client stalls.
 */
const MAX_WATCH_BACKLOG_BYTES = 16 * 1024 * 1024;
/** How long a closed watch waits for a stalled client to take what was queued before its connection is dropped. */
const WATCH_DRAIN_MS = 30_000;
/** The Kubernetes release whose API this server follows (what `kubectl version` shows as the server). */
export const SERVED_KUBERNETES_VERSION = { major: '1', minor: '33', gitVersion: 'v1.33.0-ambit' };

const TABLE_ACCEPT = /application\/json;\s*as=Table;\s*v=v1(beta1)?;\s*g=meta\.k8s\.io/;
const DISCOVERY_ACCEPT = /application\/json;[^,]*g=apidiscovery\.k8s\.io[^,]*/g;

interface Target {
  type: ResourceType;
  version: string;
  namespace?: string;
  name?: string;
  subresource?: string;
}

export class ApiServer {
  readonly served: ServedTypes;
  private readonly openapi: OpenApiV3;
  private server: Server | undefined;
  private readonly store: ResourceStore;
  private readonly backend: ApiBackend;
  private readonly log: (line: string) => void;
  private readonly watchers = new Set<() => void>();
  private readonly extraListeners: NetServer[] = [];
  /** Each stored object's JSON as a list item, for the apiVersion it was last listed at. */
  private readonly itemJson = new WeakMap<KubeObject, { apiVersion: string; json: string }>();
  private readonly sockets = new Set<Socket>();
  /** Each stored object's last watch event line (`<type> <apiVersion>` as key): every watcher of a type sends the same. */
  private readonly eventJson = new WeakMap<KubeObject, { key: string; line: string }>();

  constructor(private readonly options: ApiServerOptions) {
    this.served = new ServedTypes(options.builtInTypes);
    this.store = options.store;
    this.openapi = new OpenApiV3(this.served, this.store);
    this.backend = options.backend ?? {};
    this.log = options.log ?? (() => undefined);
    this.refreshCustomTypes();
  }

  /** Starts listening; returns the port. */
  async listen(): Promise<number> {
    const server = createServer({ cert: this.options.tls.cert, key: this.options.tls.key, ca: this.options.tls.clientCA, requestCert: true, rejectUnauthorized: false });
    server.on('request', (req: IncomingMessage, res: ServerResponse) => void this.handle(req, res));
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => void this.upgrade(req, socket, head));
    server.on('tlsClientError', () => undefined);
    server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    // Watches are long-lived by design; kubectl's own timeouts govern the rest.
    server.requestTimeout = 0;
    server.headersTimeout = 60_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port ?? 0, this.options.host ?? '127.0.0.1', () => resolve());
    });
    this.server = server;
    return (server.address() as { port: number }).port;
  }

  /**
   * Serves connections accepted by another listener too (one made inside a network namespace, where the cluster's
   * components reach the API); they get the same TLS and authentication.
   */
  serve(listener: NetServer): void {
    listener.on('connection', (socket) => this.server?.emit('connection', socket));
    this.extraListeners.push(listener);
  }

  async close(): Promise<void> {
    for (const l of this.extraListeners) l.close();
    const server = this.server;
    // Stop accepting before ending the watches: informers reconnect as soon as their watch ends, and a connection
    // accepted after the others were closed would hold close() forever (its watch never ends by itself).
    const closed = server ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
    for (const stop of this.watchers) stop();
    // Every socket, also those still in their TLS handshake (not yet an HTTP connection closeAllConnections knows).
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }

  // ---- request handling ----------------------------------------------------------------------------------------------

  private async authenticate(req: IncomingMessage): Promise<Caller> {
    const socket = req.socket as TLSSocket;
    if (socket.authorized) {
      const cert = socket.getPeerCertificate();
      const subject = cert.subject as unknown as Record<string, string | string[]> | undefined;
      const cn = subject?.CN;
      const o = subject?.O;
      if (typeof cn === 'string' && cn) return { username: cn, groups: [...(Array.isArray(o) ? o : o ? [o] : []), 'system:authenticated'], via: 'certificate' };
    }
    const auth = req.headers.authorization;
    if (auth?.startsWith('Bearer ') && this.backend.authenticateToken) {
      const user = await this.backend.authenticateToken(auth.slice(7).trim());
      if (user) return { ...user, via: 'token' };
    }
    throw unauthorized();
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const url = new URL(req.url ?? '/', 'https://apiserver');
      const path = url.pathname.replace(/\/+$/, '') || '/';
      if (path === '/healthz' || path === '/livez' || path === '/readyz') return sendText(res, 200, 'ok');
      const caller = await this.authenticate(req);
      if (await this.nonResource(req, res, path)) return;
      const target = this.resolve(path);
      if (!target) throw pathNotFound();
      authorize(caller, req.method ?? 'GET', target, url.searchParams);
      await this.resource(req, res, target, url.searchParams, caller);
    } catch (err) {
      this.fail(res, err);
    }
  }

  private fail(res: ServerResponse, err: unknown): void {
    const e = toApiError(err);
    if (e.code >= 500) this.log(`apiserver: ${(err as Error)?.stack ?? err}`);
    if (res.headersSent) {
      res.end();
      return;
    }
    sendJson(res, e.code, e.status());
  }

  private async upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const refuse = (e: ApiError) => {
      const body = JSON.stringify(e.status());
      socket.end(`HTTP/1.1 ${e.code} ${e.reason}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
    };
    try {
      const caller = await this.authenticate(req);
      const url = new URL(req.url ?? '/', 'https://apiserver');
      const target = this.resolve(url.pathname);
      if (!target || target.subresource !== 'exec' || target.type.kind !== 'Pod' || target.type.group !== '' || !target.name) throw pathNotFound();
      authorize(caller, 'POST', target, url.searchParams);
      const pod = this.store.getObject('', 'Pod', target.namespace, target.name);
      if (!pod) throw notFound(target.type, target.name);
      if (!this.backend.podExec) throw methodNotAllowed();
      this.backend.podExec(req, socket, head, target.namespace!, pod, url.searchParams);
    } catch (err) {
      refuse(toApiError(err));
    }
  }

  /** Paths that are not resources: version, OpenAPI, discovery. Returns false for resource paths. */
  private async nonResource(req: IncomingMessage, res: ServerResponse, path: string): Promise<boolean> {
    // Discovery, version and OpenAPI documents are read-only.
    if (req.method !== 'GET' && (path === '/version' || path.startsWith('/openapi') || path === '/api' || path === '/apis' || isDiscoveryPath(path))) throw methodNotAllowed();
    if (path === '/version') {
      sendJson(res, 200, { ...SERVED_KUBERNETES_VERSION, gitCommit: '', gitTreeState: 'clean', buildDate: '', goVersion: '', compiler: 'ambit', platform: `${process.platform}/${process.arch === 'x64' ? 'amd64' : process.arch}` });
      return true;
    }
    if (path === '/openapi/v2') {
      // kubectl 1.27/1.28 load this before any apply and parse only protobuf; an empty document means "no schemas",
      // after which kubectl leaves validation to the server (it still sends fieldValidation=Strict).
      res.writeHead(200, { 'content-type': 'application/com.github.proto-openapi.spec.v2.v1.0+protobuf', 'content-length': 0 });
      res.end();
      return true;
    }
    if (path === '/openapi/v3') {
      sendJson(res, 200, this.openapi.index());
      return true;
    }
    if (path.startsWith('/openapi/v3/')) {
      const doc = this.openapi.document(path.slice('/openapi/v3/'.length));
      if (!doc) throw pathNotFound();
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(doc.body), etag: `"${doc.hash}"`, 'cache-control': 'no-cache, private' });
      res.end(doc.body);
      return true;
    }
    if (path.startsWith('/openapi/')) throw pathNotFound();
    if (path === '/api' || path === '/apis') {
      const core = path === '/api';
      const accept = req.headers.accept ?? '';
      const aggregated = aggregatedVersion(accept);
      if (aggregated) {
        res.writeHead(200, { 'content-type': `application/json;g=apidiscovery.k8s.io;v=${aggregated};as=APIGroupDiscoveryList` });
        res.end(JSON.stringify(this.served.aggregated(core, `apidiscovery.k8s.io/${aggregated}`)));
      } else sendJson(res, 200, core ? this.served.apiVersions(`${req.socket.localAddress}:${req.socket.localPort}`) : this.served.apiGroupList());
      return true;
    }
    if (path === '/api/v1') {
      sendJson(res, 200, this.served.apiResourceList('', 'v1'));
      return true;
    }
    const group = /^\/apis\/([^/]+)$/.exec(path);
    if (group) {
      const doc = this.served.apiGroup(group[1]!);
      if (!doc) throw pathNotFound();
      sendJson(res, 200, { kind: 'APIGroup', apiVersion: 'v1', ...doc });
      return true;
    }
    const gv = /^\/apis\/([^/]+)\/([^/]+)$/.exec(path);
    if (gv) {
      const doc = this.served.apiResourceList(gv[1]!, gv[2]!);
      if (!doc) throw pathNotFound();
      sendJson(res, 200, doc);
      return true;
    }
    return false;
  }

  /** `/api/v1/namespaces/ns/pods/x/log`, `/apis/apps/v1/deployments` → the target. */
  private resolve(path: string): Target | undefined {
    // A malformed escape is the client's error: Go's URL parser refuses the request line with 400.
    const bad = /%(?![0-9a-fA-F]{2})[^/]{0,2}/.exec(path);
    if (bad) throw badRequest(`invalid URL escape ${JSON.stringify(bad[0])}`);
    let parts: string[];
    try {
      parts = path.split('/').filter(Boolean).map(decodeURIComponent);
    } catch {
      return undefined; // escapes of bytes that are not UTF-8: no name of an object
    }
    let group: string;
    let version: string;
    let rest: string[];
    if (parts[0] === 'api' && parts.length >= 3) [group, version, rest] = ['', parts[1]!, parts.slice(2)];
    else if (parts[0] === 'apis' && parts.length >= 4) [group, version, rest] = [parts[1]!, parts[2]!, parts.slice(3)];
    else return undefined;
    let namespace: string | undefined;
    // `namespaces/<ns>/<plural>…` is a namespaced collection, except a namespace's own subresources.
    if (rest[0] === 'namespaces' && rest.length >= 3 && !(rest.length === 3 && ['status', 'finalize'].includes(rest[2]!))) {
      namespace = rest[1];
      rest = rest.slice(2);
    }
    const type = this.served.find(group, version, rest[0]!);
    if (!type || rest.length > 3) return undefined;
    if (namespace !== undefined && !type.namespaced) return undefined;
    // A namespaced type's cluster-wide path is a collection only (`/api/v1/pods`): there is no `/api/v1/pods/x`.
    if (namespace === undefined && type.namespaced && rest.length > 1) return undefined;
    return { type, version, namespace, name: rest[1], subresource: rest[2] };
  }

  private async resource(req: IncomingMessage, res: ServerResponse, target: Target, query: URLSearchParams, caller: Caller): Promise<void> {
    const { type, name, subresource } = target;
    const verbs = type.verbs;
    const method = req.method ?? 'GET';
    if (verbs && !(method === 'POST' && verbs.includes('create') && !name)) throw methodNotAllowed();
    if (subresource) return this.subresource(req, res, target, query);
    if (!name) {
      // kube-apiserver serves only list and watch on a namespaced type's cluster-wide path (`/api/v1/pods`): a create
      // there would store an object without a namespace, and a deletecollection would empty every namespace.
      if (type.namespaced && target.namespace === undefined && method !== 'GET') throw methodNotAllowed();
      if (method === 'GET') return queryFlag(query, 'watch') ? this.watch(req, res, target, query) : this.list(req, res, target, query);
      if (method === 'POST') return this.create(req, res, target, query, caller);
      if (method === 'DELETE') return this.deleteCollection(req, res, target, query);
      throw methodNotAllowed();
    }
    if (method === 'GET') {
      const o = this.mustGet(target);
      return this.reply(req, res, 200, target, o);
    }
    if (method === 'PUT') return this.update(req, res, target, query);
    if (method === 'PATCH') return this.patch(req, res, target, query);
    if (method === 'DELETE') return this.delete(req, res, target, query);
    throw methodNotAllowed();
  }

  // ---- reads ---------------------------------------------------------------------------------------------------------

  private mustGet(target: Target): KubeObject {
    const o = this.store.getObject(target.type.group, target.type.kind, target.namespace, target.name!);
    if (!o) throw notFound(target.type, target.name!);
    return o;
  }

  private filter(target: Target, query: URLSearchParams): (o: KubeObject) => boolean {
    let labels: ReturnType<typeof parseSelector>;
    try {
      labels = parseSelector(query.get('labelSelector') ?? '');
    } catch (err) {
      throw badRequest(`unable to parse requirement: ${(err as Error).message}`);
    }
    const fields = parseFieldSelector(query.get('fieldSelector') ?? '', target.type.group, target.type.kind);
    const ns = target.namespace;
    return (o) => (ns === undefined || o.metadata.namespace === ns) && labels.matches(o.metadata.labels) && fields.matches(o);
  }

  private async list(req: IncomingMessage, res: ServerResponse, target: Target, query: URLSearchParams): Promise<void> {
    const { type, version } = target;
    const keep = this.filter(target, query);
    const items = this.store.listObjects(type.group, type.kind, target.namespace).filter(keep);
    const resourceVersion = String(this.store.resourceVersion);
    if (TABLE_ACCEPT.test(req.headers.accept ?? '')) {
      return sendJson(res, 200, toTable(type, items.map((o) => this.versioned(o, target)), { includeObject: includeObject(query), resourceVersion }));
    }
    const custom = type.printerColumns !== undefined;
    const apiVersion = groupVersion(type.group, version);
    // The body is put together from each item's JSON, kept per stored object (a write replaces the object, so a
    // cached text never goes stale): a list of thousands of pods costs string joins, not a full serialization.
    const parts: string[] = [];
    for (const o of items) {
      const cached = this.itemJson.get(o);
      if (cached?.apiVersion === apiVersion) {
        parts.push(cached.json);
        continue;
      }
      const v = this.versioned(o, target);
      // Typed lists of built-in kinds leave kind and apiVersion out of their items; custom resource lists keep them.
      let json: string;
      if (custom) json = JSON.stringify(v);
      else {
        const { kind: _k, apiVersion: _a, ...rest } = v;
        json = JSON.stringify(rest);
      }
      this.itemJson.set(o, { apiVersion, json });
      parts.push(json);
    }
    const body = `{"kind":${JSON.stringify(`${type.kind}List`)},"apiVersion":${JSON.stringify(apiVersion)},"metadata":{"resourceVersion":${JSON.stringify(resourceVersion)}},"items":[${parts.join(',')}]}`;
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-cache, private' });
    res.end(body);
  }

  /** An object as the requested version shows it (the versions of a type share one schema here). */
  private versioned(o: KubeObject, target: Target): KubeObject {
    const apiVersion = groupVersion(target.type.group, target.version);
    return o.apiVersion === apiVersion ? o : { ...o, apiVersion };
  }

  private reply(req: IncomingMessage, res: ServerResponse, code: number, target: Target, o: KubeObject): void {
    const v = this.versioned(o, target);
    if (TABLE_ACCEPT.test(req.headers.accept ?? '')) return sendJson(res, code, toTable(target.type, [v], { includeObject: 'Metadata', resourceVersion: o.metadata.resourceVersion }));
    sendJson(res, code, v);
  }

  private watch(req: IncomingMessage, res: ServerResponse, target: Target, query: URLSearchParams): void {
    const keep = this.filter(target, query);
    const { type } = target;
    const table = TABLE_ACCEPT.test(req.headers.accept ?? '');
    const rvParam = query.get('resourceVersion') ?? '';
    const fromStart = rvParam === '' || rvParam === '0';
    const from = fromStart ? this.store.resourceVersion : Number(rvParam);
    if (!Number.isInteger(from) || from < 0) throw badRequest(`invalid resourceVersion: ${JSON.stringify(rvParam)}`);
    // A version newer than the store's was issued by an earlier store (the server restarted without its history):
    // nothing after it will ever come, so the watcher is told to list again, as for one too old.
    const backlog = fromStart ? [] : from > this.store.resourceVersion ? undefined : this.store.changesSince(from);
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked', 'cache-control': 'no-cache, private' });
    res.flushHeaders();
    let first = true;
    // What is queued when the initial events are written: only growth beyond it counts against a stalled client.
    let baseline = Infinity;
    let stop: () => void = () => undefined;
    const write = (line: string) => {
      if (res.writableEnded) return;
      res.write(line);
      if (res.writableLength - baseline > MAX_WATCH_BACKLOG_BYTES) {
        this.log(`apiserver: closing a watch of ${type.plural} whose client is not reading (${res.writableLength} bytes queued)`);
        stop();
        setTimeout(() => res.destroy(), WATCH_DRAIN_MS).unref();
      }
    };
    const send = (eventType: string, o: KubeObject) => {
      if (table) {
        const object = toEventTable(type, this.versioned(o, target), { includeObject: includeObject(query), first });
        first = false;
        return write(`${JSON.stringify({ type: eventType, object })}\n`);
      }
      // A stored object never changes (a write replaces it), so its line is serialized once for all its watchers.
      const key = `${eventType} ${groupVersion(type.group, target.version)}`;
      const cached = this.eventJson.get(o);
      if (cached?.key === key) return write(cached.line);
      const line = `${JSON.stringify({ type: eventType, object: this.versioned(o, target) })}\n`;
      this.eventJson.set(o, { key, line });
      write(line);
    };
    if (backlog === undefined) {
      const error = from > this.store.resourceVersion ? unknownVersion(from, this.store.resourceVersion) : expired(from, this.store.oldestResumable);
      res.end(`${JSON.stringify({ type: 'ERROR', object: error.status() })}\n`);
      return;
    }
    const relevant = (e: ChangeEvent): [string, KubeObject] | undefined => {
      const o = e.resource as unknown as KubeObject;
      if (parseApiVersion(o.apiVersion).group !== type.group || o.kind !== type.kind) return undefined;
      const now = keep(o);
      if (e.type === 'DELETED') return now ? ['DELETED', o] : undefined;
      const before = e.previous ? keep(e.previous as unknown as KubeObject) : false;
      if (now) return [before ? 'MODIFIED' : 'ADDED', o];
      // A change that takes the object out of the selection is its deletion for this watcher.
      return before ? ['DELETED', o] : undefined;
    };
    if (fromStart) for (const o of this.store.listObjects(type.group, type.kind, target.namespace)) if (keep(o)) send('ADDED', o);
    for (const e of backlog) {
      const r = relevant(e);
      if (r) send(r[0], r[1]);
    }
    baseline = res.writableLength;
    const unsubscribe = this.store.onChange((e) => {
      const r = relevant(e);
      if (r) send(r[0], r[1]);
    });
    // timeoutSeconds=0 (or none) is the server's default, as kube-apiserver reads it.
    const timeout = Number(query.get('timeoutSeconds') ?? DEFAULT_WATCH_SECONDS);
    const seconds = Number.isFinite(timeout) && timeout !== 0 ? timeout : DEFAULT_WATCH_SECONDS;
    const bookmarks = query.get('allowWatchBookmarks') === 'true';
    const bookmarkTimer = bookmarks
      ? setInterval(() => {
          const kind = type.kind;
          write(`${JSON.stringify({ type: 'BOOKMARK', object: { kind, apiVersion: groupVersion(type.group, target.version), metadata: { resourceVersion: String(this.store.resourceVersion) } } })}\n`);
        }, BOOKMARK_INTERVAL_MS)
      : undefined;
    const deadline = setTimeout(() => stop(), Math.min(Math.max(1, seconds) * 1000, MAX_TIMER_MS));
    stop = () => {
      unsubscribe();
      clearInterval(bookmarkTimer);
      clearTimeout(deadline);
      this.watchers.delete(stop);
      if (!res.writableEnded) res.end();
    };
    this.watchers.add(stop);
    res.on('close', stop);
  }

  // ---- writes --------------------------------------------------------------------------------------------------------

  private async create(req: IncomingMessage, res: ServerResponse, target: Target, query: URLSearchParams, caller: Caller): Promise<void> {
    const { type } = target;
    const body = await readObject(req);
    if (type.group === 'authentication.k8s.io' && type.kind === 'TokenReview') return this.tokenReview(res, body, target);
    if (type.group === 'authorization.k8s.io' && type.kind === 'SelfSubjectAccessReview') {
      // The cluster's certificate holders may do everything, service account tokens nothing (see authorize).
      const allowed = caller.via === 'certificate';
      return sendJson(res, 201, { ...body, apiVersion: groupVersion(type.group, target.version), kind: type.kind, metadata: { creationTimestamp: null }, status: { allowed, ...(allowed ? {} : { reason: 'service account tokens are given no access to this cluster' }) } });
    }
    const o = this.checkBody(body, target);
    this.checkFields(o, query, res);
    const meta = o.metadata;
    if (!meta.name && typeof meta.generateName === 'string' && meta.generateName) meta.name = meta.generateName + randomSuffix();
    if (!meta.name) throw invalid(type, '', [{ field: 'metadata.name', message: 'Required value: name or generateName is required', reason: 'FieldValueRequired' }]);
    this.checkNamespace(target);
    if (this.store.getObject(type.group, type.kind, meta.namespace, meta.name)) throw alreadyExists(type, meta.name);
    for (const f of ['uid', 'resourceVersion', 'generation', 'creationTimestamp', 'deletionTimestamp'] as const) delete meta[f];
    if (type.status) delete o.status;
    const admitted = this.admit(o, undefined, type);
    if (isDryRun(query)) return this.reply(req, res, 201, target, admitted);
    const stored = this.store.write(admitted, true);
    this.afterWrite(type);
    this.reply(req, res, 201, target, stored);
  }

  private async update(req: IncomingMessage, res: ServerResponse, target: Target, query: URLSearchParams): Promise<void> {
    const body = this.checkBody(await readObject(req), target);
    this.checkFields(body, query, res);
    if (body.metadata.name !== target.name) throw badRequest(`the name of the object (${body.metadata.name}) does not match the name on the URL (${target.name})`);
    const old = this.mustGet(target);
    this.commit(req, res, target, query, old, body);
  }

  private async patch(req: IncomingMessage, res: ServerResponse, target: Target, query: URLSearchParams): Promise<void> {
    const contentType = (req.headers['content-type'] ?? '').split(';')[0]!.trim();
    const patch = await readPatch(req, contentType);
    const { type } = target;
    const old = this.store.getObject(type.group, type.kind, target.namespace, target.name!);
    if (!old && contentType !== APPLY_PATCH) throw notFound(type, target.name!);
    if (!old) this.checkNamespace(target);
    let next = applyPatch(contentType, old as JsonObject | undefined, patch as Json, patchContext(type.kind, groupVersion(type.group, target.version), query)) as KubeObject;
    next = this.checkBody(next, target);
    this.checkFields(next, query, res, patch);
    if (!old) {
      if (type.status) delete next.status;
      const admitted = this.admit(next, undefined, type);
      if (isDryRun(query)) return this.reply(req, res, 201, target, admitted);
      const stored = this.store.write(admitted, true);
      this.afterWrite(type);
      return this.reply(req, res, 201, target, stored);
    }
    this.commit(req, res, target, query, old, next);
  }

  /** Stores an update of `old` (main resource or status subresource), honouring resourceVersion preconditions. */
  private commit(req: IncomingMessage, res: ServerResponse, target: Target, query: URLSearchParams, old: KubeObject, body: KubeObject, statusOnly = false): void {
    const { type } = target;
    const rv = body.metadata.resourceVersion;
    if (rv && rv !== old.metadata.resourceVersion) throw conflict(type, old.metadata.name);
    const next: KubeObject = statusOnly
      ? { ...structuredClone(old), status: body.status }
      : { ...body, metadata: { ...body.metadata, uid: old.metadata.uid, creationTimestamp: old.metadata.creationTimestamp } };
    if (next.status === undefined) delete next.status;
    // With a status subresource, the main resource's writes keep the stored status.
    if (!statusOnly && type.status) {
      if (old.status === undefined) delete next.status;
      else next.status = structuredClone(old.status);
    }
    next.metadata.generation = old.metadata.generation;
    next.metadata.resourceVersion = old.metadata.resourceVersion;
    const admitted = statusOnly ? next : this.admit(next, old, type);
    if (sameObject(old, admitted)) return this.reply(req, res, 200, target, old);
    if (isDryRun(query)) return this.reply(req, res, 200, target, admitted);
    const stored = this.store.write(admitted, !statusOnly && specOf(old) !== specOf(admitted));
    this.afterWrite(type);
    this.reply(req, res, 200, target, stored);
  }

  private async delete(req: IncomingMessage, res: ServerResponse, target: Target, query: URLSearchParams): Promise<void> {
    const options = (await readOptionalObject(req)) as { preconditions?: { uid?: string; resourceVersion?: string } } | undefined;
    // Admission (NamespaceLifecycle) runs before the object is read: an immortal namespace is refused even when absent.
    checkDeletable(target.type, target.name!);
    const old = this.mustGet(target);
    const pre = options?.preconditions;
    if (pre?.uid && pre.uid !== old.metadata.uid) {
      throw new ApiError(409, 'Conflict', `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${old.metadata.uid}`);
    }
    if (pre?.resourceVersion && pre.resourceVersion !== old.metadata.resourceVersion) {
      throw new ApiError(409, 'Conflict', `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in meta: ${old.metadata.resourceVersion}`);
    }
    if (!isDryRun(query)) this.remove(target.type, old);
    const { type } = target;
    sendJson(res, 200, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details: { name: old.metadata.name, group: type.group, kind: type.plural, uid: old.metadata.uid } });
  }

  private async deleteCollection(req: IncomingMessage, res: ServerResponse, target: Target, query: URLSearchParams): Promise<void> {
    await readOptionalObject(req);
    const keep = this.filter(target, query);
    const matched = this.store.listObjects(target.type.group, target.type.kind, target.namespace).filter(keep);
    const doomed = matched.filter((o) => deletionRefusal(target.type, o.metadata.name) === undefined);
    if (!isDryRun(query)) for (const o of doomed) this.remove(target.type, o);
    // As kube-apiserver, which deletes a collection item by item: the others go, the refusal is the answer.
    const refused = matched.find((o) => deletionRefusal(target.type, o.metadata.name) !== undefined);
    if (refused) checkDeletable(target.type, refused.metadata.name);
    sendJson(res, 200, { kind: `${target.type.kind}List`, apiVersion: groupVersion(target.type.group, target.version), metadata: { resourceVersion: String(this.store.resourceVersion) }, items: doomed });
  }

  /** Removes an object and what cannot outlive it: a namespace's objects, a CRD's custom resources. */
  private remove(type: ResourceType, o: KubeObject): void {
    const gone = this.store.removeObject(type.group, type.kind, o.metadata.namespace, o.metadata.name);
    if (!gone) return;
    this.backend.deleted?.(gone, type);
    if (type.group === '' && type.kind === 'Namespace') {
      for (const child of this.store.objectsIn(o.metadata.name)) {
        const { group, version } = parseApiVersion(child.apiVersion);
        const t = this.served.byKind(group, version, child.kind);
        if (t) this.remove(t, child);
        else this.store.removeObject(group, child.kind, child.metadata.namespace, child.metadata.name);
      }
    }
    if (type.group === 'apiextensions.k8s.io' && type.kind === 'CustomResourceDefinition') {
      const spec = o.spec as { group?: string; names?: { plural?: string } } | undefined;
      const t = this.served.types.find((x) => x.group === spec?.group && x.plural === spec?.names?.plural && this.served.isCustom(x));
      if (t) for (const cr of this.store.listObjects(t.group, t.kind)) this.remove(t, cr);
    }
    this.afterWrite(type);
  }

  private afterWrite(type: ResourceType): void {
    if (type.group === 'apiextensions.k8s.io' && type.kind === 'CustomResourceDefinition') this.refreshCustomTypes();
    this.backend.changed?.();
  }

  private refreshCustomTypes(): void {
    this.served.setCustomResourceDefinitions(this.store.listObjects('apiextensions.k8s.io', 'CustomResourceDefinition'));
  }

  private admit(o: KubeObject, old: KubeObject | undefined, type: ResourceType): KubeObject {
    if (type.group === 'apiextensions.k8s.io' && type.kind === 'CustomResourceDefinition') return admitCrd(o, type);
    if (!this.backend.admit) return o;
    try {
      return this.backend.admit(o, old, type);
    } catch (err) {
      if (err instanceof ApiError) throw err;
      if (err instanceof InvalidObjectError) throw invalid(type, o.metadata.name, err.causes);
      throw new ApiError(422, 'Invalid', (err as Error).message, { name: o.metadata.name, group: type.group, kind: type.kind });
    }
  }

  private checkNamespace(target: Target): void {
    if (target.namespace !== undefined && !this.store.getObject('', 'Namespace', undefined, target.namespace)) {
      throw notFound({ plural: 'namespaces', group: '' }, target.namespace);
    }
  }

  /** The body's apiVersion, kind and namespace must agree with the URL (kube fills them in when absent). */
  private checkBody(body: Record<string, unknown>, target: Target): KubeObject {
    const { type, version } = target;
    const apiVersion = groupVersion(type.group, version);
    if (body.apiVersion !== undefined && body.apiVersion !== apiVersion) {
      const other = typeof body.apiVersion === 'string' ? parseApiVersion(body.apiVersion) : undefined;
      // Another served version of the same type is converted (the versions share one schema here).
      if (!(other && other.group === type.group && type.versions.includes(other.version))) {
        throw badRequest(`the API version in the data (${String(body.apiVersion)}) does not match the expected API version (${apiVersion})`);
      }
    }
    if (body.kind !== undefined && body.kind !== type.kind) throw badRequest(`the kind in the data (${String(body.kind)}) does not match the expected kind (${type.kind})`);
    const metadata = (body.metadata ?? {}) as KubeObject['metadata'];
    if (typeof metadata !== 'object' || Array.isArray(metadata)) throw badRequest('metadata must be an object');
    if (type.namespaced) {
      if (metadata.namespace && metadata.namespace !== target.namespace) {
        throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
      }
      metadata.namespace = target.namespace;
    } else delete metadata.namespace;
    return { ...body, apiVersion, kind: type.kind, metadata } as KubeObject;
  }

  /**
   * Unknown fields, as `fieldValidation` asks (kube-apiserver's default is Warn): Strict refuses the write with its
   * strict decoding error (400 on create and update, 422 on a patch), Warn answers with one `Warning` header per
   * field, which kubectl prints. Custom resources of users' CRDs are not checked (no schemas are kept).
   */
  private checkFields(o: KubeObject, query: URLSearchParams, res: ServerResponse, patch?: unknown): void {
    const mode = query.get('fieldValidation') ?? 'Warn';
    if (mode === 'Ignore' || !fieldTree(o.apiVersion, o.kind)) return;
    if (mode !== 'Strict' && mode !== 'Warn') throw badRequest(`fieldValidation must be one of "Ignore", "Warn" or "Strict", got ${JSON.stringify(mode)}`);
    // A main-resource write of a kind with a status subresource discards status, so status is not checked (the
    // local cluster's pod status carries fields of its own, which a `kubectl label pod` must not warn about).
    const { status: _status, ...written } = o;
    const unknown = unknownFields(o.apiVersion, o.kind, this.served.byKind(parseApiVersion(o.apiVersion).group, parseApiVersion(o.apiVersion).version, o.kind)?.status ? written : o);
    if (unknown.length === 0) return;
    if (mode === 'Warn') {
      res.setHeader('Warning', unknown.map((f) => `299 - ${JSON.stringify(unknownFieldMessage(f))}`));
      return;
    }
    const message = strictDecodingError(o.kind, o.apiVersion, unknown);
    if (patch === undefined) throw badRequest(message);
    throw new ApiError(422, 'Invalid', `The request is invalid: patch: Invalid value: ${JSON.stringify(JSON.stringify(patch))}: ${message.slice(message.indexOf('strict decoding error'))}`, {
      causes: [{ reason: 'FieldValueInvalid', message: `Invalid value: ${JSON.stringify(JSON.stringify(patch))}: ${message.slice(message.indexOf('strict decoding error'))}`, field: 'patch' }],
    });
  }

  // ---- subresources --------------------------------------------------------------------------------------------------

  private async subresource(req: IncomingMessage, res: ServerResponse, target: Target, query: URLSearchParams): Promise<void> {
    const { type, subresource } = target;
    const method = req.method ?? 'GET';
    if (subresource === 'status' && type.status) {
      const old = this.mustGet(target);
      if (method === 'GET') return this.reply(req, res, 200, target, old);
      let body: KubeObject;
      if (method === 'PUT') body = this.checkBody(await readObject(req), target);
      else if (method === 'PATCH') {
        const contentType = (req.headers['content-type'] ?? '').split(';')[0]!.trim();
        const patch = await readPatch(req, contentType);
        body = applyPatch(contentType, old as JsonObject, patch as Json, patchContext(type.kind, old.apiVersion, query)) as KubeObject;
      } else throw methodNotAllowed();
      return this.commit(req, res, target, query, old, body, true);
    }
    if (subresource === 'scale' && type.scale) return this.scale(req, res, target, query);
    if (subresource === 'token' && type.group === '' && type.kind === 'ServiceAccount' && method === 'POST') return this.tokenRequest(req, res, target);
    if (subresource === 'log' && type.group === '' && type.kind === 'Pod' && method === 'GET') {
      const pod = this.mustGet(target);
      if (!this.backend.podLog) throw methodNotAllowed();
      return this.backend.podLog(req, res, target.namespace!, pod, query);
    }
    if (subresource === 'exec' && type.group === '' && type.kind === 'Pod') {
      this.mustGet(target);
      throw badRequest('exec needs a WebSocket upgrade (kubectl 1.30 or newer, protocol v5.channel.k8s.io); SPDY is not served');
    }
    throw pathNotFound();
  }

  private async scale(req: IncomingMessage, res: ServerResponse, target: Target, query: URLSearchParams): Promise<void> {
    const old = this.mustGet(target);
    const toScale = (o: KubeObject) => {
      const spec = (o.spec ?? {}) as { replicas?: number; selector?: { matchLabels?: Record<string, string> } };
      const status = (o.status ?? {}) as { replicas?: number };
      return {
        kind: 'Scale',
        apiVersion: 'autoscaling/v1',
        metadata: { name: o.metadata.name, namespace: o.metadata.namespace, uid: o.metadata.uid, resourceVersion: o.metadata.resourceVersion, creationTimestamp: o.metadata.creationTimestamp },
        spec: { replicas: spec.replicas ?? 1 },
        status: { replicas: status.replicas ?? 0, selector: Object.entries(spec.selector?.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`).join(',') },
      };
    };
    const method = req.method ?? 'GET';
    if (method === 'GET') return sendJson(res, 200, toScale(old));
    let scale: { spec?: { replicas?: unknown }; metadata?: { resourceVersion?: string } };
    if (method === 'PUT') scale = (await readObject(req)) as typeof scale;
    else if (method === 'PATCH') {
      const contentType = (req.headers['content-type'] ?? '').split(';')[0]!.trim();
      const patch = await readPatch(req, contentType);
      // Scale is not a kind with merge keys of its own: a strategic patch of it is a merge patch.
      const asMerge = contentType.startsWith(STRATEGIC_MERGE_PATCH) ? MERGE_PATCH : contentType;
      scale = applyPatch(asMerge, toScale(old) as unknown as JsonObject, patch as Json, patchContext('Scale', 'autoscaling/v1', query)) as typeof scale;
    } else throw methodNotAllowed();
    const replicas = scale.spec?.replicas;
    if (!Number.isInteger(replicas) || (replicas as number) < 0) {
      throw invalid({ kind: 'Scale', group: 'autoscaling', plural: 'scales' }, old.metadata.name, [{ field: 'spec.replicas', message: `Invalid value: ${JSON.stringify(replicas)}: must be greater than or equal to 0` }]);
    }
    const next = structuredClone(old);
    (next.spec as { replicas?: number }).replicas = replicas as number;
    if (scale.metadata?.resourceVersion && scale.metadata.resourceVersion !== old.metadata.resourceVersion) throw conflict(target.type, old.metadata.name);
    const admitted = this.admit(next, old, target.type);
    const stored = isDryRun(query) ? admitted : this.store.write(admitted, true);
    if (!isDryRun(query)) this.afterWrite(target.type);
    sendJson(res, 200, toScale(stored));
  }

  /** `kubectl create token SA`: a TokenRequest answered with a token of the cluster's issuer. */
  private async tokenRequest(req: IncomingMessage, res: ServerResponse, target: Target): Promise<void> {
    const sa = this.mustGet(target);
    const body = await readObject(req);
    const spec = (body.spec ?? {}) as { audiences?: unknown; expirationSeconds?: unknown; boundObjectRef?: { kind?: string; name?: string; uid?: string } };
    const requestType = { kind: 'TokenRequest', group: 'authentication.k8s.io', plural: 'tokenrequests' };
    const seconds = spec.expirationSeconds === undefined ? 3600 : Number(spec.expirationSeconds);
    if (!Number.isInteger(seconds) || seconds < 600) {
      throw invalid(requestType, sa.metadata.name, [{ field: 'spec.expirationSeconds', message: `Invalid value: ${JSON.stringify(spec.expirationSeconds)}: may not specify a duration less than 10 minutes` }]);
    }
    if (seconds > 2 ** 32) {
      throw invalid(requestType, sa.metadata.name, [{ field: 'spec.expirationSeconds', message: `Invalid value: ${seconds}: may not specify a duration larger than 2^32 seconds` }]);
    }
    const audiences = Array.isArray(spec.audiences) ? spec.audiences.filter((a): a is string => typeof a === 'string') : [];
    let pod: KubeObject | undefined;
    const bound = spec.boundObjectRef;
    if (bound) {
      if (bound.kind !== 'Pod') throw badRequest(`cannot bind token for ${String(bound.kind)} kind: only Pod tokens are issued by this cluster`);
      pod = this.store.getObject('', 'Pod', target.namespace, bound.name ?? '');
      if (!pod) throw notFound({ plural: 'pods', group: '' }, bound.name ?? '');
      if (bound.uid && bound.uid !== pod.metadata.uid) throw new ApiError(409, 'Conflict', `the UID in the bound object reference (${bound.uid}) does not match the UID in record. The object might have been deleted and then recreated`);
      // A token bound to a pod speaks for that pod: only the pod's own service account may have one.
      if (((pod.spec as { serviceAccountName?: string } | undefined)?.serviceAccountName ?? 'default') !== sa.metadata.name) {
        throw badRequest(`cannot bind token for serviceaccount ${JSON.stringify(sa.metadata.name)} to pod running with different serviceaccount name.`);
      }
    }
    if (!this.backend.requestToken) throw methodNotAllowed();
    const { token, expirationTimestamp } = await this.backend.requestToken(sa, { audiences, expirationSeconds: seconds }, pod);
    sendJson(res, 201, {
      kind: 'TokenRequest',
      apiVersion: 'authentication.k8s.io/v1',
      metadata: { name: sa.metadata.name, namespace: sa.metadata.namespace, creationTimestamp: null },
      spec: { audiences, expirationSeconds: seconds, boundObjectRef: bound ?? null },
      status: { token, expirationTimestamp },
    });
  }

  private async tokenReview(res: ServerResponse, body: Record<string, unknown>, target: Target): Promise<void> {
    const spec = (body.spec ?? {}) as { token?: unknown; audiences?: unknown };
    if (typeof spec.token !== 'string' || !spec.token) {
      throw invalid(target.type, '', [{ field: 'spec.token', message: 'Required value', reason: 'FieldValueRequired' }]);
    }
    const audiences = Array.isArray(spec.audiences) ? spec.audiences.filter((a): a is string => typeof a === 'string') : [];
    const status = this.backend.reviewToken ? await this.backend.reviewToken(spec.token, audiences) : { authenticated: false, error: 'token review is not available' };
    sendJson(res, 201, { kind: 'TokenReview', apiVersion: 'authentication.k8s.io/v1', metadata: { creationTimestamp: null }, spec, status });
  }
}

// ---- helpers -----------------------------------------------------------------------------------------------------------

/** What a patch needs from the request: the kind (for merge keys), the URL's apiVersion, fieldManager and force. */
function patchContext(kind: string, apiVersion: string, query: URLSearchParams): PatchContext {
  const manager = query.get('fieldManager');
  const force = query.get('force');
  return { kind, apiVersion, now: new Date(), ...(manager ? { manager } : {}), ...(force !== null ? { force: force === 'true' } : {}) };
}

/** `/api/v1`, `/apis/<group>`, `/apis/<group>/<version>`: the discovery documents below `/api` and `/apis`. */
function isDiscoveryPath(path: string): boolean {
  return /^\/apis\/[^/]+(\/[^/]+)?$/.test(path) || path === '/api/v1';
}

/** kube's verb for a request on a target. */
function verbOf(method: string, target: Target, query: URLSearchParams): string {
  switch (method) {
    case 'GET':
      return target.name ? 'get' : queryFlag(query, 'watch') ? 'watch' : 'list';
    case 'POST':
      return 'create';
    case 'PUT':
      return 'update';
    case 'PATCH':
      return 'patch';
    case 'DELETE':
      return target.name ? 'delete' : 'deletecollection';
    default:
      return method.toLowerCase();
  }
}

/**
 * What a caller may do. Holders of the cluster's client certificates may do everything; a service account token may
 * only ask what it may do (SelfSubjectAccessReview, answered no). There are no roles to grant more.
 */
function authorize(caller: Caller, method: string, target: Target, query: URLSearchParams): void {
  if (caller.via === 'certificate') return;
  const { type } = target;
  if (type.group === 'authorization.k8s.io' && type.kind === 'SelfSubjectAccessReview' && method === 'POST') return;
  throw forbidden(caller.username, verbOf(method, target, query), type, target.subresource, target.namespace, target.name);
}

function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof PatchError) return new ApiError(err.code, err.reason, err.message, err.causes ? { causes: err.causes } : undefined);
  return new ApiError(500, 'InternalError', `Internal error occurred: ${(err as Error)?.message ?? String(err)}`);
}

function sendJson(res: ServerResponse, code: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-cache, private' });
  res.end(body);
}

function sendText(res: ServerResponse, code: number, text: string): void {
  res.writeHead(code, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** The aggregated discovery version the client asked for (`v2`, `v2beta1`), or undefined for legacy discovery. */
function aggregatedVersion(accept: string): string | undefined {
  for (const m of accept.matchAll(DISCOVERY_ACCEPT)) {
    const v = /(?:^|;)\s*v=(v2beta1|v2)\b/.exec(m[0]);
    if (v && /as=APIGroupDiscoveryList/.test(m[0])) return v[1];
  }
  return undefined;
}

function includeObject(query: URLSearchParams): 'None' | 'Metadata' | 'Object' {
  const v = query.get('includeObject');
  return v === 'None' || v === 'Object' ? v : 'Metadata';
}

function isDryRun(query: URLSearchParams): boolean {
  return query.getAll('dryRun').includes('All');
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw tooLarge(MAX_BODY_BYTES);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** A PATCH body: YAML (or JSON) for server-side apply, JSON for the other patch types. */
async function readPatch(req: IncomingMessage, contentType: string): Promise<unknown> {
  const raw = (await readBody(req)).toString('utf8');
  try {
    return contentType === APPLY_PATCH ? parseYaml(raw) : JSON.parse(raw);
  } catch (err) {
    throw badRequest(`error decoding patch: ${(err as Error).message}`);
  }
}

async function readObject(req: IncomingMessage): Promise<Record<string, unknown>> {
  const contentType = (req.headers['content-type'] ?? 'application/json').split(';')[0]!.trim();
  // kubectl 1.32+ sends its typed-client bodies (create namespace, deployment, …; auth can-i) only as protobuf.
  if (contentType === PROTOBUF_CONTENT_TYPE) return decodeProtobufObject(await readBody(req));
  if (contentType !== 'application/json' && contentType !== 'application/yaml') throw unsupportedMediaType(['application/json', 'application/yaml', PROTOBUF_CONTENT_TYPE]);
  const raw = (await readBody(req)).toString('utf8');
  let value: unknown;
  try {
    value = contentType === 'application/yaml' ? parseYaml(raw) : JSON.parse(raw);
  } catch (err) {
    throw badRequest(`the object provided is unrecognized: ${(err as Error).message}`);
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw badRequest('the object provided is unrecognized (must be of type Object)');
  return value as Record<string, unknown>;
}

async function readOptionalObject(req: IncomingMessage): Promise<Record<string, unknown> | undefined> {
  const raw = (await readBody(req)).toString('utf8').trim();
  if (!raw) return undefined;
  try {
    return JSON.parse(raw) as Record<string, unknown>;
  } catch (err) {
    throw badRequest(`the body of the request was in an unknown format: ${(err as Error).message}`);
  }
}

/** generateName's five random characters (kube's alphabet leaves out vowels and look-alikes). */
function randomSuffix(): string {
  const alphabet = 'bcdfghjklmnpqrstvwxz2456789';
  return [...randomBytes(5)].map((b) => alphabet[b % alphabet.length]).join('');
}

function specOf(o: KubeObject): string {
  const { metadata: _m, status: _s, ...rest } = o;
  return JSON.stringify(rest);
}

function sameObject(a: KubeObject, b: KubeObject): boolean {
  const strip = (o: KubeObject) => {
    const { resourceVersion: _r, generation: _g, managedFields: _f, ...meta } = o.metadata;
    return JSON.stringify({ ...o, metadata: meta });
  };
  return strip(a) === strip(b);
}

/** A CRD is stored with the status kube-apiserver's controllers give it at once: names accepted, established. */
function admitCrd(o: KubeObject, type: ResourceType): KubeObject {
  const spec = o.spec as { group?: string; names?: { plural?: string; kind?: string; singular?: string; listKind?: string }; versions?: { name?: string; storage?: boolean }[] } | undefined;
  const plural = spec?.names?.plural;
  const group = spec?.group;
  const causes: { field: string; message: string }[] = [];
  if (!group) causes.push({ field: 'spec.group', message: 'Required value' });
  if (!plural) causes.push({ field: 'spec.names.plural', message: 'Required value' });
  if (!spec?.names?.kind) causes.push({ field: 'spec.names.kind', message: 'Required value' });
  if (group && plural && o.metadata.name !== `${plural}.${group}`) {
    causes.push({ field: 'metadata.name', message: `Invalid value: "${o.metadata.name}": must be spec.names.plural+"."+spec.group` });
  }
  if (!Array.isArray(spec?.versions) || spec.versions.length === 0) causes.push({ field: 'spec.versions', message: 'Invalid value: null: must have exactly one version marked as storage version' });
  if (causes.length) throw invalid(type, o.metadata.name, causes);
  const names = spec!.names!;
  const now = kubeTime();
  const storage = spec!.versions!.find((v) => v.storage)?.name ?? spec!.versions![0]!.name;
  return {
    ...o,
    status: {
      acceptedNames: { ...names, singular: names.singular ?? names.kind!.toLowerCase(), listKind: names.listKind ?? `${names.kind}List` },
      conditions: [
        { type: 'NamesAccepted', status: 'True', lastTransitionTime: now, reason: 'NoConflicts', message: 'no conflicts found' },
        { type: 'Established', status: 'True', lastTransitionTime: now, reason: 'InitialNamesAccepted', message: 'the initial names have been accepted' },
      ],
      storedVersions: [storage],
    },
  };
}

/** Why an object may not be deleted (kube's NamespaceLifecycle: `default`, `kube-system`, `kube-public`), or undefined. */
function deletionRefusal(type: ResourceType, name: string): string | undefined {
  return type.group === '' && type.kind === 'Namespace' && IMMORTAL_NAMESPACES.includes(name) ? IMMORTAL_NAMESPACE_REASON : undefined;
}

function checkDeletable(type: ResourceType, name: string): void {
  const reason = deletionRefusal(type, name);
  if (reason) throw forbiddenObject(type, name, reason);
}
