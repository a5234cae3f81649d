// Feeds the config store from a local cluster, the way istiod follows the Kubernetes API with informers: list and
// watch the supervisor's `GET /v1/watch` feed (a snapshot of ADDED events, SYNCED, then every change), reconnect
// with back-off when it drops, and keep serving the last known state meanwhile. Status computed by the control plane
// is written back (`POST /v1/status`), so `ambit get ap -o yaml` shows it as `kubectl` would; objects the control
// plane creates (a waypoint's Deployment, Service and ServiceAccount) are written through the same API.
import { resourceKey, type Resource } from '../api/types.js';
import { call, streamJson } from '../common/rpc.js';
import type { ObjectStatus } from '../model/ambient.js';
import type { ConfigStore } from '../model/store.js';
import { STATUS_IS_INPUT, forStore, ownStatus } from './cluster-objects.js';
import type { Logger } from './log.js';
import type { ClusterWriter } from './waypoint-controller.js';

const RECONNECT_MIN_MS = 200;
const RECONNECT_MAX_MS = 5000;
const STATUS_PUSH_MS = 300;

interface WatchEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'SYNCED';
  resource?: Resource;
}

export interface ClusterSourceOptions {
  /** The supervisor's API socket (`<state>/supervisor.sock`). */
  socketPath: string;
  store: ConfigStore;
  log: Logger;
  /** Status to publish to the cluster (the ambient index's). */
  statuses?: () => ObjectStatus[];
}

interface StatusItem {
  kind: string;
  namespace: string;
  name: string;
  /** The whole status of an object whose status is ours; absent clears it. */
  status?: Record<string, unknown>;
  /** For an object whose status is someone else's: our conditions, merged over the condition types we own. */
  conditions?: unknown[];
  ownedConditions?: string[];
}

function statusItem(s: ObjectStatus): StatusItem {
  const item: StatusItem = { kind: s.kind, namespace: s.namespace, name: s.name };
  if (s.ownedConditions) return { ...item, conditions: s.conditions, ownedConditions: s.ownedConditions };
  return { ...item, status: ownStatus(s) };
}

export class ClusterSource implements ClusterWriter {
  /** Keys this source put into the store: a re-list removes the ones that vanished while disconnected. */
  private known = new Set<string>();
  private watch: { close(): void } | undefined;
  private pending = new Map<string, Resource | null>();
  private flushScheduled = false;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private backoffMs = RECONNECT_MIN_MS;
  private closed = false;
  private firstSync!: () => void;
  private readonly synced = new Promise<void>((resolve) => (this.firstSync = resolve));
  private statusTimer: NodeJS.Timeout | undefined;
  /** Status last written per `kind/namespace/name`, so only changes are sent; the item clears it when gone. */
  private pushed = new Map<string, { json: string; clear: StatusItem }>();
  private pushing = false;

  constructor(private readonly opts: ClusterSourceOptions) {}

  /** Connects and resolves after the first complete snapshot is in the store (retrying until the cluster answers). */
  async start(): Promise<void> {
    this.connect();
    await this.synced;
    if (this.opts.statuses) this.statusTimer = setInterval(() => void this.pushStatus(), STATUS_PUSH_MS);
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    clearInterval(this.statusTimer);
    this.watch?.close();
  }

  private connect(): void {
    if (this.closed) return;
    const snapshot = new Map<string, Resource>();
    let inSnapshot = true;
    const onValue = (value: unknown) => {
      const e = value as WatchEvent;
      if (e.type === 'SYNCED') {
        inSnapshot = false;
        this.backoffMs = RECONNECT_MIN_MS;
        this.applySnapshot(snapshot);
        return;
      }
      if (!e.resource || !e.resource.kind || !e.resource.metadata?.name) return;
      const r = forStore(e.resource);
      const key = resourceKey(r);
      if (inSnapshot) snapshot.set(key, r);
      else this.queue(key, e.type === 'DELETED' ? null : r);
    };
    const onEnd = (err?: Error) => {
      if (this.closed) return;
      this.watch = undefined;
      this.opts.log.warn(`lost the cluster watch on ${this.opts.socketPath}${err ? `: ${err.message}` : ''}; serving the last known configuration and reconnecting`);
      this.scheduleReconnect();
    };
    streamJson(this.opts.socketPath, '/v1/watch', onValue, onEnd).then(
      (w) => {
        if (this.closed) w.close();
        else this.watch = w;
      },
      // streamJson reports connection errors through onEnd too; nothing more to do here.
      () => undefined,
    );
  }

  private scheduleReconnect(): void {
    if (this.closed || this.reconnectTimer) return;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      this.connect();
    }, this.backoffMs);
    this.backoffMs = Math.min(this.backoffMs * 2, RECONNECT_MAX_MS);
  }

  private applySnapshot(snapshot: Map<string, Resource>): void {
    // Events queued from an older connection are superseded by the new list.
    this.pending.clear();
    const gone = [...this.known].filter((k) => !snapshot.has(k));
    const applied = this.opts.store.apply([...snapshot.values()]);
    const removed = this.opts.store.remove(gone);
    this.known = new Set(snapshot.keys());
    this.pushed.clear();
    this.opts.log.info(
      `cluster sync: ${snapshot.size} objects (${applied.added.length} added, ${applied.updated.length} updated, ${removed.removed.length} removed)`,
    );
    this.firstSync();
  }

  /** Events that arrive together (a rollout, an apply of many objects) reach the store as one change. */
  private queue(key: string, r: Resource | null): void {
    this.pending.set(key, r);
    if (r && !STATUS_IS_INPUT.has(r.kind)) this.pushed.delete(`${r.kind}/${r.metadata.namespace ?? ''}/${r.metadata.name}`);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      const upserts: Resource[] = [];
      const removals: string[] = [];
      for (const [k, v] of this.pending) {
        if (v) {
          upserts.push(v);
          this.known.add(k);
        } else {
          removals.push(k);
          this.known.delete(k);
        }
      }
      this.pending.clear();
      if (upserts.length) this.opts.store.apply(upserts);
      if (removals.length) this.opts.store.remove(removals);
    });
  }

  apply(objects: Resource[]): Promise<{ object: string; error?: string }[]> {
    return call<{ results: { object: string; error?: string }[] }>(this.opts.socketPath, 'POST', '/v1/apply', { objects }, { timeoutMs: 10_000 }).then((r) => r.results);
  }

  delete(refs: { kind: string; metadata: { name: string; namespace?: string } }[]): Promise<{ object: string; error?: string; reason?: string }[]> {
    return call<{ results: { object: string; error?: string; reason?: string }[] }>(this.opts.socketPath, 'POST', '/v1/delete', { objects: refs }, { timeoutMs: 10_000 }).then(
      (r) => r.results,
    );
  }

  private async pushStatus(): Promise<void> {
    if (this.pushing || !this.watch) return;
    const current = new Map<string, { item: StatusItem; json: string }>();
    for (const s of this.opts.statuses!()) {
      const item = statusItem(s);
      current.set(`${s.kind}/${s.namespace}/${s.name}`, { item, json: JSON.stringify(item) });
    }
    const items: StatusItem[] = [];
    for (const [key, c] of current) if (this.pushed.get(key)?.json !== c.json) items.push(c.item);
    // An object that no longer has a status from us gets it cleared (only our conditions, where the rest is not ours).
    for (const [key, p] of this.pushed) if (!current.has(key)) items.push(p.clear);
    if (items.length === 0) return;
    this.pushing = true;
    try {
      await call(this.opts.socketPath, 'POST', '/v1/status', { items }, { timeoutMs: 5000 });
      for (const it of items) {
        const key = `${it.kind}/${it.namespace}/${it.name}`;
        const c = current.get(key);
        if (c === undefined) this.pushed.delete(key);
        else {
          const clear: StatusItem = { kind: it.kind, namespace: it.namespace, name: it.name };
          if (it.ownedConditions) Object.assign(clear, { conditions: [], ownedConditions: it.ownedConditions });
          this.pushed.set(key, { json: c.json, clear });
        }
      }
    } catch (err) {
      this.opts.log.warn(`cannot write status to the cluster: ${(err as Error).message}`);
    } finally {
      this.pushing = false;
    }
  }
}
