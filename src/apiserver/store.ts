// The cluster's objects: every object written through the API (or by the cluster's own controllers), with the
// metadata the API server keeps (uid, creationTimestamp, generation, one global resourceVersion counter) and a
// bounded history of changes, so a watch can resume from a resourceVersion as kube-apiserver's watch cache allows.
// The mesh's kinds are also reachable through typed accessors (`get('Pod', ns, name)`), which the local cluster's
// controllers use.
import { randomUUID } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { findModelType, modelType, parseApiVersion } from '../api/kinds.js';
import type { Kind, ObjectMeta, Resource } from '../api/types.js';
import { kubeTime } from '../common/time.js';

/** Any Kubernetes object: apiVersion, kind, metadata, and the rest untyped. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta & { deletionTimestamp?: string; finalizers?: string[]; managedFields?: unknown[] };
  [field: string]: unknown;
}

export type ChangeType = 'ADDED' | 'MODIFIED' | 'DELETED';
export interface ChangeEvent {
  type: ChangeType;
  resource: Resource;
  /** The object before a MODIFIED change (watchers with a selector turn a change across it into ADDED/DELETED). */
  previous?: Resource;
  /** The resourceVersion of the change (for DELETED, a new version assigned to the deletion). */
  resourceVersion: number;
}
export type ChangeListener = (event: ChangeEvent) => void;

export type PutResult = 'created' | 'configured' | 'unchanged';

/** Identifies a stored type: its API group and kind (kinds repeat across groups: Istio's Gateway and the Gateway API's). */
export function typeId(group: string, kind: string): string {
  return `${group}/${kind}`;
}

function objectTypeId(o: { apiVersion: string; kind: string }): string {
  return typeId(parseApiVersion(o.apiVersion).group, o.kind);
}

function objectKey(ns: string | undefined, name: string): string {
  return `${ns ?? ''}/${name}`;
}

/** How many changes a watch can resume across; older resourceVersions get 410 Expired, and the client relists. */
const HISTORY_LIMIT = 20_000;

export class ResourceStore {
  private readonly types = new Map<string, Map<string, KubeObject>>();
  private readonly listeners = new Set<ChangeListener>();
  private version = 0;
  private readonly history: ChangeEvent[] = [];
  private historyStart = 0;

  /** The latest resourceVersion (a list's snapshot version). */
  get resourceVersion(): number {
    return this.version;
  }

  // ---- the mesh's kinds, typed ---------------------------------------------------------------------------------------

  get<K extends Kind>(kind: K, namespace: string | undefined, name: string): Extract<Resource, { kind: K }> | undefined {
    return this.getObject(modelType(kind).group, kind, namespace, name) as Extract<Resource, { kind: K }> | undefined;
  }

  list<K extends Kind>(kind: K, namespace?: string): Extract<Resource, { kind: K }>[];
  list(kind?: undefined, namespace?: string): Resource[];
  list(kind?: Kind, namespace?: string): Resource[] {
    if (kind) return this.listObjects(modelType(kind).group, kind, namespace) as unknown as Resource[];
    const out: Resource[] = [];
    for (const [id, objects] of this.types) {
      const slash = id.lastIndexOf('/');
      const [group, k] = [id.slice(0, slash), id.slice(slash + 1)];
      if (!isModelType(group, k)) continue;
      for (const o of objects.values()) if (namespace === undefined || o.metadata.namespace === namespace) out.push(o as unknown as Resource);
    }
    return out.sort((a, b) => sortKey(a).localeCompare(sortKey(b)));
  }

  /**
   * Creates or replaces an object's spec (and anything but its status). Server-set metadata (uid,
   * creationTimestamp, generation, resourceVersion) is kept across updates; status is kept unless `withStatus`.
   */
  put(resource: Resource | KubeObject, withStatus = false): PutResult {
    const next = structuredClone(resource) as KubeObject;
    if (findModelType(next.kind)?.namespaced) next.metadata.namespace ??= 'default';
    const old = this.getObject(parseApiVersion(next.apiVersion).group, next.kind, next.metadata.namespace, next.metadata.name);
    if (!withStatus) {
      if (old && old.status !== undefined) next.status = structuredClone(old.status);
      else delete next.status;
    }
    const specChanged = !old || !isDeepStrictEqual(withoutServerFields(old), withoutServerFields(next));
    const statusChanged = old !== undefined && !isDeepStrictEqual(old.status, next.status);
    if (old && !specChanged && !statusChanged) return 'unchanged';
    this.store(next, old, specChanged);
    return old ? 'configured' : 'created';
  }

  /** Replaces an object's status; no event when nothing changed. */
  setStatus(kind: Kind, namespace: string | undefined, name: string, status: unknown): void {
    const old = this.get(kind, namespace, name) as unknown as KubeObject | undefined;
    if (!old || isDeepStrictEqual(old.status, status)) return;
    const next = { ...old, metadata: { ...old.metadata }, status } as KubeObject;
    if (status === undefined) delete next.status;
    this.store(next, old, false);
  }

  remove(kind: Kind, namespace: string | undefined, name: string): Resource | undefined {
    return this.removeObject(modelType(kind).group, kind, namespace, name) as unknown as Resource | undefined;
  }

  // ---- any kind ------------------------------------------------------------------------------------------------------

  getObject(group: string, kind: string, namespace: string | undefined, name: string): KubeObject | undefined {
    return this.types.get(typeId(group, kind))?.get(objectKey(namespace, name));
  }

  /** Objects of one type, in one namespace or all, sorted by namespace and name (as kube-apiserver lists them). */
  listObjects(group: string, kind: string, namespace?: string): KubeObject[] {
    const objects = this.types.get(typeId(group, kind));
    if (!objects) return [];
    const out: KubeObject[] = [];
    for (const o of objects.values()) if (namespace === undefined || o.metadata.namespace === namespace) out.push(o);
    return out.sort(byNamespaceAndName);
  }

  /** Every object in a namespace, of any type (what goes with the namespace). */
  objectsIn(namespace: string): KubeObject[] {
    const out: KubeObject[] = [];
    for (const objects of this.types.values()) for (const o of objects.values()) if (o.metadata.namespace === namespace) out.push(o);
    return out;
  }

  /**
   * Stores an object exactly as given (the API server has already merged, validated and decided what changed):
   * assigns uid and creationTimestamp on create, bumps generation when `specChanged`, and a new resourceVersion.
   */
  write(next: KubeObject, specChanged: boolean): KubeObject {
    const old = this.getObject(parseApiVersion(next.apiVersion).group, next.kind, next.metadata.namespace, next.metadata.name);
    return this.store(structuredClone(next), old, specChanged);
  }

  removeObject(group: string, kind: string, namespace: string | undefined, name: string): KubeObject | undefined {
    const objects = this.types.get(typeId(group, kind));
    const key = objectKey(namespace, name);
    const old = objects?.get(key);
    if (!old) return undefined;
    objects!.delete(key);
    // The DELETED event carries the final object with a version of its own, as kube-apiserver's does.
    const gone = { ...old, metadata: { ...old.metadata, resourceVersion: String(++this.version) } } as KubeObject;
    this.emit({ type: 'DELETED', resource: gone as unknown as Resource, resourceVersion: this.version });
    return gone;
  }

  /**
   * Changes after `resourceVersion`, oldest first; undefined when they are no longer kept (the watcher must relist,
   * kube's 410 Expired). `oldest` is the first version still resumable.
   */
  changesSince(resourceVersion: number): ChangeEvent[] | undefined {
    if (resourceVersion >= this.version) return [];
    if (resourceVersion < this.historyStart) return undefined;
    let lo = 0;
    let hi = this.history.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.history[mid]!.resourceVersion <= resourceVersion) lo = mid + 1;
      else hi = mid;
    }
    return this.history.slice(lo);
  }

  /** The oldest resourceVersion a watch can still resume from. */
  get oldestResumable(): number {
    return this.historyStart;
  }

  /** Subscribes to changes; returns the unsubscribe function. A throwing listener never affects the others. */
  onChange(listener: ChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private store(next: KubeObject, old: KubeObject | undefined, specChanged: boolean): KubeObject {
    next.metadata.uid = old?.metadata.uid ?? next.metadata.uid ?? randomUUID();
    next.metadata.creationTimestamp = old?.metadata.creationTimestamp ?? kubeTime();
    next.metadata.generation = (old?.metadata.generation ?? 0) + (specChanged || !old ? 1 : 0);
    next.metadata.resourceVersion = String(++this.version);
    const id = objectTypeId(next);
    let objects = this.types.get(id);
    if (!objects) this.types.set(id, (objects = new Map()));
    objects.set(objectKey(next.metadata.namespace, next.metadata.name), next);
    this.emit({
      type: old ? 'MODIFIED' : 'ADDED',
      resource: next as unknown as Resource,
      ...(old ? { previous: old as unknown as Resource } : {}),
      resourceVersion: this.version,
    });
    return next;
  }

  private emit(event: ChangeEvent): void {
    this.history.push(event);
    if (this.history.length > HISTORY_LIMIT) {
      // Drop the oldest tenth at once: shifting one per change would be quadratic.
      const dropped = this.history.splice(0, HISTORY_LIMIT / 10);
      this.historyStart = dropped[dropped.length - 1]!.resourceVersion;
    }
    for (const l of this.listeners) {
      try {
        l(event);
      } catch (err) {
        process.stderr.write(`store listener failed on ${event.type} ${sortKey(event.resource)}: ${(err as Error).stack ?? err}\n`);
      }
    }
  }
}

function isModelType(group: string, kind: string): boolean {
  return findModelType(kind)?.group === group;
}

/** Whether an object is of a kind the mesh model reads (Istio's Gateway is not; the Gateway API's is). */
export function isModelObject(o: { apiVersion: string; kind: string }): boolean {
  return isModelType(parseApiVersion(o.apiVersion).group, o.kind);
}

/** Namespace, then name, by code units (as kube-apiserver's etcd keys sort); no locale rules on a hot path. */
function byNamespaceAndName(a: KubeObject, b: KubeObject): number {
  const na = a.metadata.namespace ?? '';
  const nb = b.metadata.namespace ?? '';
  if (na !== nb) return na < nb ? -1 : 1;
  return a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0;
}

function sortKey(o: { kind: string; metadata: { namespace?: string; name: string } }): string {
  return `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;
}

function withoutServerFields(o: KubeObject): unknown {
  const { uid: _u, creationTimestamp: _c, generation: _g, resourceVersion: _v, managedFields: _m, ...meta } = o.metadata;
  const { status: _s, ...rest } = o;
  return { ...rest, metadata: meta };
}
