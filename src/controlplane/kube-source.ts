// Feeds the config store from a Kubernetes API server, as istiod does: one client-node informer per kind the mesh
// model reads (list, then watch from the list's resourceVersion, at the kind's preferred version), each object
// validated as the configuration files are. start() resolves once every kind has been listed and is being watched,
// the whole first state reaching the store as one change; a kind the server does not serve (Istio's or the Gateway
// API's CRDs not installed) counts as having no objects and is asked for again later. A watch that fails is
// restarted with back-off while the store keeps the last known state; one that cannot resume (410 Expired) lists
// again, and what vanished meanwhile is deleted. Status computed by the
// control plane is written through the objects' status subresource, only when it differs from what the cluster has;
// the objects of a waypoint are created or replaced through the API (the WaypointController's ClusterWriter).
//
// client-node 1.4's informer (ListWatch) is used as it is, with two things added around it: it reports failures but
// not success, so its Watch is wrapped to say when a watch request was answered (that is when a kind counts as synced
// and a back-off is reset); and after any error other than 410 it stops for good, so it is restarted from here.
import { isDeepStrictEqual } from 'node:util';
import { ListWatch, Watch, type KubeConfig, type KubernetesListObject, type KubernetesObject } from '@kubernetes/client-node';
import { RESOURCE_TYPES, findModelType, groupVersion, parseApiVersion, qualifiedResource, type ResourceType } from '../api/kinds.js';
import type { Kind, Resource } from '../api/types.js';
import { formatPath, validateResource } from '../api/validation.js';
import { Backoff } from '../common/backoff.js';
import type { ObjectStatus } from '../model/ambient.js';
import type { ConfigStore } from '../model/store.js';
import { forStore, ownStatus } from './cluster-objects.js';
import { KubeApiError, KubeClient } from './kube-client.js';
import type { Logger } from './log.js';
import type { ClusterWriter } from './waypoint-controller.js';

/**
 * The local cluster's stand-ins for its own components (the istiod and ztunnel pods in istio-system) carry this
 * annotation (src/local/component-objects.ts): they are the mesh's infrastructure, not workloads in it.
 */
const COMPONENT_ANNOTATION = 'ambit.dev/component';

/** Restarting a failed list or watch; a kind that is not served is asked for again at most this often too. */
const RESTART_BACKOFF = { initialMs: 500, maxMs: 30_000 } as const;
const STATUS_PUSH_MS = 300;
/** Status writes sent at once: enough to write a thousand policies' status in about a second, not a flood. */
const STATUS_WRITES_IN_FLIGHT = 16;

/** An object as the API server sends it (client-node's types claim Dates for timestamps; these are JSON). */
interface KubeObj extends KubernetesObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; resourceVersion?: string; annotations?: Record<string, string> };
  status?: Record<string, unknown>;
}

type ModelType = ResourceType & { kind: Kind };

const MODEL_TYPES = RESOURCE_TYPES.filter((t): t is ModelType => t.model === true);

export interface KubeSourceOptions {
  /** The cluster and credentials (see loadKubeConfig). */
  kubeConfig: KubeConfig;
  store: ConfigStore;
  log: Logger;
  /** Status to publish to the cluster (the ambient index's). */
  statuses?: () => ObjectStatus[];
}

/** One kind's informer and what this source knows about it. */
interface KindWatch {
  type: ModelType;
  /** The preferred version's apiVersion, given to list items (typed lists leave it out of them). */
  apiVersion: string;
  /** The collection in every namespace, at the preferred version. */
  path: string;
  informer: ListWatch<KubeObj>;
  /** Listed and watched at least once, or found not served: start() waits for every kind to get here. */
  synced: boolean;
  /** The last list said the server does not serve the kind. */
  absent: boolean;
  /** The last list or watch failed (the store holds the last known state). */
  failing: boolean;
  backoff: Backoff;
  restartTimer?: NodeJS.Timeout;
}

/** Status we wrote (or found in place): the ObjectStatus as JSON and the object's resourceVersion after the write. */
interface Pushed {
  json: string;
  resourceVersion: string | undefined;
  /** For objects whose status is shared: the condition types that are ours (what clearing removes). */
  owned?: string[];
}

/** `/api/v1/namespaces/shop/pods`, `/apis/security.istio.io/v1/authorizationpolicies` (every namespace). */
function collectionPath(type: ResourceType, version: string, namespace?: string): string {
  const root = type.group ? `/apis/${type.group}/${version}` : `/api/${version}`;
  return type.namespaced && namespace !== undefined ? `${root}/namespaces/${encodeURIComponent(namespace)}/${type.plural}` : `${root}/${type.plural}`;
}

function objectPath(type: ResourceType, version: string, namespace: string | undefined, name: string): string {
  return `${collectionPath(type, version, namespace)}/${encodeURIComponent(name)}`;
}

function keyOf(kind: string, o: { metadata: { name: string; namespace?: string } }): string {
  return `${kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;
}

/** `Deployment shop/waypoint`, `GatewayClass istio-waypoint`: how the waypoint controller's log names an object. */
function objectLabel(r: { kind: string; metadata: { name: string; namespace?: string } }): string {
  return `${r.kind} ${r.metadata.namespace ? `${r.metadata.namespace}/` : ''}${r.metadata.name}`;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** JSON's view of a value: what the server will store and send back (undefined fields gone). */
function asJson<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

/**
 * The merge patch that makes the object's status carry `s` (undefined: none of ours any more), or undefined when it
 * already does. A status that is ours is replaced whole (keys no longer ours are set to null). Where only some
 * condition types are ours (`owned`), the others are kept as the cluster has them; the patch carries the object's
 * resourceVersion because a merge patch replaces the whole list, so a condition another writer added since we read
 * the object must make the write fail (409, retried) rather than vanish.
 */
function statusPatch(current: KubeObj, s: ObjectStatus | undefined, owned: string[] | undefined): Record<string, unknown> | undefined {
  const status = current.status ?? {};
  if (owned) {
    const ours = new Set(owned);
    const conditions = (Array.isArray(status.conditions) ? status.conditions : []) as { type?: string }[];
    const want = asJson(s?.conditions ?? []);
    if (isDeepStrictEqual(conditions.filter((c) => ours.has(c.type ?? '')), want)) return undefined;
    const merged = [...conditions.filter((c) => !ours.has(c.type ?? '')), ...want];
    return { metadata: { resourceVersion: current.metadata.resourceVersion }, status: { conditions: merged.length ? merged : null } };
  }
  if (!s) return current.status === undefined ? undefined : { status: null };
  const want: Record<string, unknown> = asJson(ownStatus(s));
  if (isDeepStrictEqual(status, want)) return undefined;
  for (const k of Object.keys(status)) if (!(k in want)) want[k] = null;
  return { status: want };
}

/** client-node's Watch, also telling when a watch request was answered (ListWatch reports only failures). */
class AnsweredWatch extends Watch {
  constructor(
    config: KubeConfig,
    private readonly answered: () => void,
  ) {
    super(config);
  }

  override async watch(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, apiObj: unknown, watchObj?: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    let ended = false;
    const controller = await super.watch(path, queryParams, callback, (err) => {
      ended = true;
      done(err);
    });
    // Watch calls `done` before returning when the request failed; otherwise the stream is open.
    if (!ended) this.answered();
    return controller;
  }
}

export class KubeSource implements ClusterWriter {
  private readonly client: KubeClient;
  private readonly watches = new Map<Kind, KindWatch>();
  private readonly pending = new Map<string, Resource | null>();
  private flushScheduled = false;
  /** Invalid objects already reported, by key: the resourceVersion reported (each new version is reported again). */
  private readonly reportedInvalid = new Map<string, string | undefined>();
  private readonly pushed = new Map<string, Pushed>();
  private pushing = false;
  private statusTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private initialSyncDone = false;
  private startedAt = 0;
  private firstSync!: () => void;
  private readonly synced = new Promise<void>((resolve) => (this.firstSync = resolve));

  constructor(private readonly opts: KubeSourceOptions) {
    this.client = new KubeClient(opts.kubeConfig);
  }

  /** Starts every informer; resolves once each kind is listed and watched, or found not served. */
  async start(): Promise<void> {
    this.startedAt = Date.now();
    for (const type of MODEL_TYPES) {
      const version = type.versions[0]!;
      const path = collectionPath(type, version);
      const kw: KindWatch = {
        type,
        apiVersion: groupVersion(type.group, version),
        path,
        informer: undefined as unknown as ListWatch<KubeObj>,
        synced: false,
        absent: false,
        failing: false,
        backoff: new Backoff(RESTART_BACKOFF.initialMs, RESTART_BACKOFF.maxMs),
      };
      kw.informer = this.informer(kw);
      this.watches.set(type.kind, kw);
      this.run(kw);
    }
    await this.synced;
    if (this.opts.statuses) this.statusTimer = setInterval(() => void this.pushStatus(), STATUS_PUSH_MS);
  }

  close(): void {
    this.closed = true;
    clearInterval(this.statusTimer);
    for (const kw of this.watches.values()) {
      clearTimeout(kw.restartTimer);
      void kw.informer.stop();
    }
    this.client.close();
  }

  // ---- reading -----------------------------------------------------------------------------------------------------

  /** A new informer for the kind; what an informer it replaced still reports is ignored. */
  private informer(kw: KindWatch): ListWatch<KubeObj> {
    const informer: ListWatch<KubeObj> = new ListWatch<KubeObj>(
      kw.path,
      new AnsweredWatch(this.opts.kubeConfig, () => kw.informer === informer && this.watching(kw)),
      () => this.list(kw),
      false,
    );
    informer.on('add', (o) => kw.informer === informer && this.received(kw, o));
    informer.on('update', (o) => kw.informer === informer && this.received(kw, o));
    informer.on('delete', (o) => kw.informer === informer && this.removed(kw, o));
    informer.on('error', (err) => kw.informer === informer && this.failed(kw, err));
    return informer;
  }

  private run(kw: KindWatch): void {
    // A failure before the request is sent (credentials that cannot be loaded) rejects instead of reaching 'error'.
    kw.informer.start().catch((err: unknown) => this.failed(kw, err));
  }

  private async list(kw: KindWatch): Promise<KubernetesListObject<KubeObj>> {
    if (kw.synced && !kw.absent) this.opts.log.info(`re-listing ${qualifiedResource(kw.type)}: the watch could not resume`);
    const list = await this.client.get<KubernetesListObject<KubeObj>>(kw.path);
    // Lists of built-in kinds leave kind and apiVersion out of their items; the store and validation need them.
    for (const item of list.items) {
      item.kind ??= kw.type.kind;
      item.apiVersion ??= kw.apiVersion;
    }
    return list;
  }

  /** The watch is open: the list before it (if any) has been handed to the handlers. */
  private watching(kw: KindWatch): void {
    if (this.closed) return;
    kw.backoff.reset();
    if (kw.failing || kw.absent) this.opts.log.info(`watching ${qualifiedResource(kw.type)} again`);
    kw.failing = false;
    kw.absent = false;
    this.markSynced(kw);
  }

  private markSynced(kw: KindWatch): void {
    if (kw.synced) return;
    kw.synced = true;
    const all = [...this.watches.values()];
    if (all.length < MODEL_TYPES.length || !all.every((w) => w.synced)) return;
    this.initialSyncDone = true;
    this.flush();
    const absent = all.filter((w) => w.absent).map((w) => qualifiedResource(w.type));
    let objects = 0;
    for (const w of all) objects += w.informer.list().length;
    this.opts.log.info(
      `cluster sync: ${objects} objects of ${all.length - absent.length} kinds in ${Date.now() - this.startedAt} ms` +
        (absent.length ? `; not served (CRDs not installed?): ${absent.join(', ')}` : ''),
    );
    this.firstSync();
  }

  private failed(kw: KindWatch, err: unknown): void {
    if (this.closed) return;
    // A KubeApiError from our list, or the error client-node's Watch makes of a reply other than 200.
    const code = (err as { statusCode?: number } | undefined)?.statusCode;
    if (code === 404) {
      if (!kw.absent) {
        this.opts.log.info(`${qualifiedResource(kw.type)} (${kw.apiVersion}) is not served by the cluster; taking it as empty and asking again`);
      }
      // Its objects are gone with it (a deleted CRD takes its objects). A new informer starts with an empty cache: the
      // old one would take objects listed again later for ones it still holds, and not report them.
      for (const o of kw.informer.list()) this.removed(kw, o);
      void kw.informer.stop();
      kw.informer = this.informer(kw);
      kw.absent = true;
      kw.failing = false;
      this.markSynced(kw);
    } else {
      if (!kw.failing) {
        this.opts.log.warn(`lost the watch of ${qualifiedResource(kw.type)}: ${errorText(err)}; serving the last known configuration and retrying`);
      }
      kw.failing = true;
    }
    clearTimeout(kw.restartTimer);
    kw.restartTimer = setTimeout(() => {
      kw.restartTimer = undefined;
      if (!this.closed) this.run(kw);
    }, kw.backoff.next());
  }

  private received(kw: KindWatch, o: KubeObj): void {
    const key = keyOf(kw.type.kind, o);
    // Any version other than the one our status write produced may carry someone else's status: compare again.
    const pushed = this.pushed.get(key);
    if (pushed && pushed.resourceVersion !== o.metadata.resourceVersion) this.pushed.delete(key);
    if (o.metadata.annotations?.[COMPONENT_ANNOTATION] !== undefined) {
      this.queue(key, null);
      return;
    }
    const { resource, issues } = validateResource(o);
    if (!resource) {
      if (!this.reportedInvalid.has(key) || this.reportedInvalid.get(key) !== o.metadata.resourceVersion) {
        this.reportedInvalid.set(key, o.metadata.resourceVersion);
        const errors = issues.filter((i) => i.severity === 'error').map((i) => (i.path.length ? `${formatPath(i.path)}: ${i.message}` : i.message));
        this.opts.log.warn(`${objectLabel({ kind: kw.type.kind, metadata: o.metadata })} is invalid and left out of the mesh: ${errors.join('; ')}`);
      }
      this.queue(key, null);
      return;
    }
    this.reportedInvalid.delete(key);
    this.queue(key, forStore(resource));
  }

  private removed(kw: KindWatch, o: KubeObj): void {
    const key = keyOf(kw.type.kind, o);
    this.pushed.delete(key);
    this.reportedInvalid.delete(key);
    this.queue(key, null);
  }

  /** Events that arrive together (a list, a rollout, an apply of many objects) reach the store as one change. */
  private queue(key: string, r: Resource | null): void {
    this.pending.set(key, r);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.flushScheduled = false;
    // Until every kind is listed the store gets nothing: the first state arrives whole, as one change (the waypoint
    // controller would otherwise create objects whose kind is merely not listed yet, and the index would translate
    // pods whose namespace it has not seen).
    if (!this.initialSyncDone || this.pending.size === 0) return;
    const upserts: Resource[] = [];
    const removals: string[] = [];
    for (const [k, v] of this.pending) {
      if (v) upserts.push(v);
      else removals.push(k);
    }
    this.pending.clear();
    if (upserts.length) this.opts.store.apply(upserts);
    if (removals.length) this.opts.store.remove(removals);
  }

  // ---- status ------------------------------------------------------------------------------------------------------

  private async pushStatus(): Promise<void> {
    // While a watch is down the cache may be stale: a write computed from it could undo someone else's.
    if (this.pushing || [...this.watches.values()].some((w) => w.failing)) return;
    const writes: (() => Promise<void>)[] = [];
    const wanted = new Set<string>();
    for (const s of this.opts.statuses!()) {
      const key = `${s.kind}/${s.namespace}/${s.name}`;
      wanted.add(key);
      const json = JSON.stringify(s);
      if (this.pushed.get(key)?.json === json) continue;
      const kw = this.watches.get(s.kind);
      const current = kw?.informer.get(s.name, s.namespace || undefined);
      if (!kw || !current) continue;
      const patch = statusPatch(current, s, s.ownedConditions);
      const record = (resourceVersion: string | undefined) => void this.pushed.set(key, { json, resourceVersion, owned: s.ownedConditions });
      if (patch === undefined) record(current.metadata.resourceVersion);
      else writes.push(() => this.writeStatus(kw, current, patch).then(record));
    }
    // Objects that no longer have a status from us get it cleared (only our conditions, where the rest is not ours).
    for (const [key, p] of this.pushed) {
      if (wanted.has(key)) continue;
      const [kind, namespace, name] = key.split('/') as [Kind, string, string];
      const kw = this.watches.get(kind);
      const current = kw?.informer.get(name, namespace || undefined);
      const patch = current && statusPatch(current, undefined, p.owned);
      if (!kw || !current || !patch) this.pushed.delete(key);
      else writes.push(() => this.writeStatus(kw, current, patch).then(() => void this.pushed.delete(key)));
    }
    if (writes.length === 0) return;
    this.pushing = true;
    const failures: string[] = [];
    try {
      let next = 0;
      const worker = async () => {
        while (next < writes.length && !this.closed) {
          const write = writes[next++]!;
          try {
            await write();
          } catch (err) {
            // Gone meanwhile (404), or changed meanwhile (409): the next round works from the newer state.
            const code = err instanceof KubeApiError ? err.statusCode : undefined;
            if (code !== 404 && code !== 409) failures.push(errorText(err));
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(STATUS_WRITES_IN_FLIGHT, writes.length) }, worker));
    } finally {
      this.pushing = false;
    }
    if (failures.length) this.opts.log.warn(`cannot write the status of ${failures.length} object(s) to the cluster: ${failures[0]}`);
  }

  /** PATCHes the status subresource; resolves with the object's new resourceVersion. */
  private async writeStatus(kw: KindWatch, current: KubeObj, patch: Record<string, unknown>): Promise<string | undefined> {
    const version = parseApiVersion(current.apiVersion ?? kw.apiVersion).version;
    const path = `${objectPath(kw.type, version, current.metadata.namespace, current.metadata.name)}/status`;
    const updated = await this.client.request<KubeObj>('PATCH', path, patch, 'application/merge-patch+json');
    return updated.metadata?.resourceVersion;
  }

  // ---- writing objects (the waypoint controller) ---------------------------------------------------------------------

  /** Creates each object, or replaces the one that exists (spec, labels, owners; the cluster keeps its status). */
  async apply(objects: Resource[]): Promise<{ object: string; error?: string }[]> {
    const results: { object: string; error?: string }[] = [];
    for (const r of objects) {
      const object = objectLabel(r);
      const type = findModelType(r.kind);
      if (!type) {
        results.push({ object, error: `${r.kind} is not a kind the control plane writes` });
        continue;
      }
      const collection = collectionPath(type, parseApiVersion(r.apiVersion).version, r.metadata.namespace);
      try {
        await this.client.request('POST', collection, r);
        results.push({ object });
        continue;
      } catch (err) {
        if (!(err instanceof KubeApiError && err.statusCode === 409)) {
          results.push({ object, error: errorText(err) });
          continue;
        }
      }
      // It exists: replace it at the version just read (a PUT of a custom resource must name one).
      const path = `${collection}/${encodeURIComponent(r.metadata.name)}`;
      try {
        const current = await this.client.get<KubeObj>(path);
        await this.client.request('PUT', path, { ...r, metadata: { ...r.metadata, resourceVersion: current.metadata.resourceVersion } });
        results.push({ object });
      } catch (err) {
        results.push({ object, error: errorText(err) });
      }
    }
    return results;
  }

  async delete(refs: { kind: string; metadata: { name: string; namespace?: string } }[]): Promise<{ object: string; error?: string; reason?: string }[]> {
    const results: { object: string; error?: string; reason?: string }[] = [];
    for (const ref of refs) {
      const object = objectLabel(ref);
      const type = findModelType(ref.kind);
      if (!type) {
        results.push({ object, error: `${ref.kind} is not a kind the control plane writes` });
        continue;
      }
      try {
        await this.client.request('DELETE', objectPath(type, type.versions[0]!, ref.metadata.namespace, ref.metadata.name));
        results.push({ object });
      } catch (err) {
        const reason = err instanceof KubeApiError ? err.reason : undefined;
        results.push({ object, error: errorText(err), ...(reason ? { reason } : {}) });
      }
    }
    return results;
  }
}
