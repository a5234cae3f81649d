// The cluster's view: every object applied to the local cluster plus the ones it derives (Pods of Deployments,
// Service cluster IPs, Pod status). This is what the control plane consumes, through `onChange` in-process or the
// supervisor's watch API from another process.
import { randomUUID } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { isNamespaced, resourceKey, type Kind, type Resource } from '../api/types.js';

export type ChangeType = 'ADDED' | 'MODIFIED' | 'DELETED';
export interface ChangeEvent {
  type: ChangeType;
  resource: Resource;
}
export type ChangeListener = (event: ChangeEvent) => void;

export type PutResult = 'created' | 'configured' | 'unchanged';

export class ResourceStore {
  private readonly objects = new Map<string, Resource>();
  private readonly listeners = new Set<ChangeListener>();
  private version = 0;

  get<K extends Kind>(kind: K, namespace: string | undefined, name: string): Extract<Resource, { kind: K }> | undefined {
    return this.objects.get(resourceKey({ kind, metadata: { name, namespace } })) as Extract<Resource, { kind: K }> | undefined;
  }

  list<K extends Kind>(kind: K, namespace?: string): Extract<Resource, { kind: K }>[];
  list(kind?: undefined, namespace?: string): Resource[];
  list(kind?: Kind, namespace?: string): Resource[] {
    const out: Resource[] = [];
    for (const r of this.objects.values()) {
      if (kind && r.kind !== kind) continue;
      if (namespace !== undefined && r.metadata.namespace !== namespace) continue;
      out.push(r);
    }
    return out.sort((a, b) => resourceKey(a).localeCompare(resourceKey(b)));
  }

  /**
   * Creates or replaces an object's spec (and anything but its status). Server-set metadata (uid,
   * creationTimestamp, generation, resourceVersion) is kept across updates; status is kept unless `withStatus`.
   */
  put(resource: Resource, withStatus = false): PutResult {
    const key = resourceKey(resource);
    const old = this.objects.get(key);
    const next = structuredClone(resource) as Resource & { status?: unknown };
    if (isNamespaced(next.kind)) next.metadata.namespace ??= 'default';
    if (!withStatus) {
      if (old && 'status' in old && old.status !== undefined) next.status = structuredClone(old.status);
      else delete next.status;
    }
    const specChanged = !old || !isDeepStrictEqual(stripServerFields(old), stripServerFields(next));
    const statusChanged = old !== undefined && !isDeepStrictEqual((old as { status?: unknown }).status, next.status);
    if (old && !specChanged && !statusChanged) return 'unchanged';
    next.metadata.uid = old?.metadata.uid ?? randomUUID();
    next.metadata.creationTimestamp = old?.metadata.creationTimestamp ?? new Date().toISOString();
    next.metadata.generation = (old?.metadata.generation ?? 0) + (specChanged ? 1 : 0);
    next.metadata.resourceVersion = String(++this.version);
    this.objects.set(key, next);
    this.emit({ type: old ? 'MODIFIED' : 'ADDED', resource: next });
    return old ? 'configured' : 'created';
  }

  /** Replaces an object's status; no event when nothing changed. */
  setStatus(kind: Kind, namespace: string | undefined, name: string, status: unknown): void {
    const old = this.get(kind, namespace, name);
    if (!old || isDeepStrictEqual((old as { status?: unknown }).status, status)) return;
    const next = { ...old, metadata: { ...old.metadata, resourceVersion: String(++this.version) }, status } as Resource;
    this.objects.set(resourceKey(next), next);
    this.emit({ type: 'MODIFIED', resource: next });
  }

  remove(kind: Kind, namespace: string | undefined, name: string): Resource | undefined {
    const key = resourceKey({ kind, metadata: { name, namespace } });
    const old = this.objects.get(key);
    if (!old) return undefined;
    this.objects.delete(key);
    this.emit({ type: 'DELETED', resource: old });
    return old;
  }

  /** Subscribes to changes; returns the unsubscribe function. A throwing listener never affects the others. */
  onChange(listener: ChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(event: ChangeEvent): void {
    for (const l of this.listeners) {
      try {
        l(event);
      } catch (err) {
        process.stderr.write(`store listener failed on ${event.type} ${resourceKey(event.resource)}: ${(err as Error).stack ?? err}\n`);
      }
    }
  }
}

function stripServerFields(r: Resource): unknown {
  const { uid: _u, creationTimestamp: _c, generation: _g, resourceVersion: _v, ...meta } = r.metadata;
  const { status: _s, ...rest } = r as Resource & { status?: unknown };
  return { ...rest, metadata: meta };
}
