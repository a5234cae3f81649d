// The indexed configuration store: every object Ambit knows, keyed by `resourceKey()`, with the indexes the ambient
// translation needs to stay incremental (a pod change must only touch what selects that pod, never scan 50,000 pods).
import type { Kind, Resource } from '../api/types.js';
import { resourceKey } from '../api/types.js';
import { addListener, addTo, deepEqual, deleteFrom } from './collections.js';

/** What one `apply` / `remove` call changed. An identical re-apply is not a change. */
export interface StoreChange {
  added: string[];
  updated: string[];
  removed: string[];
  /** The object as it was before this change, for every updated or removed key. */
  previous: Map<string, Resource>;
}

export type StoreListener = (change: StoreChange) => void;

export type Labels = Record<string, string>;

/** Kinds whose objects carry a label selector over workloads, and where that selector lives. */
const SELECTOR_KINDS: Partial<Record<Kind, (r: Resource) => Labels | undefined>> = {
  Service: (r) => (r.kind === 'Service' ? r.spec.selector : undefined),
  Deployment: (r) => (r.kind === 'Deployment' ? r.spec.selector?.matchLabels : undefined),
  AuthorizationPolicy: (r) => (r.kind === 'AuthorizationPolicy' ? r.spec.selector?.matchLabels : undefined),
  PeerAuthentication: (r) => (r.kind === 'PeerAuthentication' ? r.spec.selector?.matchLabels : undefined),
  ServiceEntry: (r) => (r.kind === 'ServiceEntry' ? r.spec.workloadSelector?.labels : undefined),
};

/** Kinds that are (or stand for) workloads, and the labels their pods carry. */
const LABELLED_KINDS: Partial<Record<Kind, (r: Resource) => Labels | undefined>> = {
  Pod: (r) => r.metadata.labels,
  Deployment: (r) => (r.kind === 'Deployment' ? r.spec.template.metadata?.labels : undefined),
  // istiod reads a WorkloadEntry's labels from both places (serviceentry.ConvertClientWorkloadEntry).
  WorkloadEntry: (r) => (r.kind === 'WorkloadEntry' ? { ...r.metadata.labels, ...r.spec.labels } : undefined),
};

export function selectorOf(r: Resource): Labels | undefined {
  return SELECTOR_KINDS[r.kind]?.(r);
}

/** True when every key/value of `selector` is in `labels` (an empty selector matches everything). */
export function selectorMatches(selector: Labels, labels: Labels | undefined): boolean {
  for (const k in selector) {
    if (labels === undefined || labels[k] !== selector[k]) return false;
  }
  return true;
}

function isEmpty(o: Labels | undefined): boolean {
  if (o === undefined) return true;
  for (const _ in o) return false;
  return true;
}

/** label → value → keys. Nested maps avoid building a composite string per lookup on the hot path. */
type LabelMap = Map<string, Map<string, Set<string>>>;

function addLabel(m: LabelMap, k: string, v: string, key: string): void {
  let values = m.get(k);
  if (values === undefined) m.set(k, (values = new Map()));
  addTo(values, v, key);
}

function deleteLabel(m: LabelMap, k: string, v: string, key: string): void {
  const values = m.get(k);
  if (values === undefined) return;
  deleteFrom(values, v, key);
  if (values.size === 0) m.delete(k);
}

export class ConfigStore {
  private readonly objects = new Map<string, Resource>();
  private readonly byKind = new Map<Kind, Set<string>>();
  // `kind\0namespace` → keys (`\0` cannot appear in Kubernetes names)
  private readonly byKindNamespace = new Map<string, Set<string>>();
  // Pods and Deployments (template labels) per namespace, by each of their labels. Selectors are namespace-scoped, so
  // a lookup must not walk the candidates of other namespaces (a `tier: db` selector would otherwise scan every
  // tier-db pod of the mesh for each namespace).
  private readonly byLabel = new Map<string, LabelMap>();
  private readonly podsByNode = new Map<string, Set<string>>();
  // Objects with a non-empty selector, per `kind\0namespace`, filed under the first (sorted) pair of the selector.
  // Any object whose selector matches a label set must contain that pair, so looking up each of the labels finds
  // every candidate exactly once.
  private readonly bySelectorPair = new Map<string, LabelMap>();
  private readonly listeners: StoreListener[] = [];

  /** Adds or replaces objects. Returns (and tells subscribers) exactly what changed. */
  apply(resources: Resource[]): StoreChange {
    const change: StoreChange = { added: [], updated: [], removed: [], previous: new Map() };
    const added = new Set<string>();
    for (const r of resources) {
      const key = resourceKey(r);
      const old = this.objects.get(key);
      if (old !== undefined) {
        if (deepEqual(old, r)) continue;
        this.unindex(key, old);
        // The same key twice in one batch: it stays "added", or keeps its first previous version.
        if (!added.has(key) && !change.previous.has(key)) {
          change.previous.set(key, old);
          change.updated.push(key);
        }
      } else {
        added.add(key);
        change.added.push(key);
      }
      this.objects.set(key, r);
      this.index(key, r);
    }
    this.emit(change);
    return change;
  }

  /** Removes objects by key; unknown keys are ignored. */
  remove(keys: string[]): StoreChange {
    const change: StoreChange = { added: [], updated: [], removed: [], previous: new Map() };
    for (const key of keys) {
      const old = this.objects.get(key);
      if (old === undefined) continue;
      this.unindex(key, old);
      this.objects.delete(key);
      change.removed.push(key);
      change.previous.set(key, old);
    }
    this.emit(change);
    return change;
  }

  /** Listeners run synchronously after every apply/remove that changed something. */
  subscribe(listener: StoreListener): () => void {
    return addListener(this.listeners, listener);
  }

  get(key: string): Resource | undefined {
    return this.objects.get(key);
  }

  keys(): IterableIterator<string> {
    return this.objects.keys();
  }

  /** All objects of a kind, optionally only those in one namespace. */
  list<K extends Kind>(kind: K, namespace?: string): Extract<Resource, { kind: K }>[] {
    const keys = namespace === undefined ? this.byKind.get(kind) : this.byKindNamespace.get(`${kind}\0${namespace}`);
    return this.resolve(keys) as Extract<Resource, { kind: K }>[];
  }

  countOf(kind: Kind): number {
    return this.byKind.get(kind)?.size ?? 0;
  }

  /** Pods scheduled on a node (`spec.nodeName`). */
  podsOnNode(node: string): Extract<Resource, { kind: 'Pod' }>[] {
    return this.resolve(this.podsByNode.get(node)) as Extract<Resource, { kind: 'Pod' }>[];
  }

  /**
   * Pods or Deployments (by their pod template labels) whose labels contain `selector`, in `namespace` or in all
   * namespaces when it is undefined. An empty selector returns every object of the kind in scope.
   */
  matching<K extends 'Pod' | 'Deployment' | 'WorkloadEntry'>(kind: K, namespace: string | undefined, selector: Labels): Extract<Resource, { kind: K }>[] {
    if (isEmpty(selector)) return this.list(kind, namespace);
    const out: Extract<Resource, { kind: K }>[] = [];
    if (namespace === undefined) for (const labels of this.byLabel.values()) this.collectMatching(labels, kind, selector, out);
    else {
      const labels = this.byLabel.get(namespace);
      if (labels !== undefined) this.collectMatching(labels, kind, selector, out);
    }
    return out;
  }

  /** Adds the objects of `kind` in one namespace's label index that match a non-empty selector. */
  private collectMatching<K extends 'Pod' | 'Deployment' | 'WorkloadEntry'>(byLabel: LabelMap, kind: K, selector: Labels, out: Extract<Resource, { kind: K }>[]): void {
    // Walk the smallest candidate set among the selector's pairs.
    let smallest: Set<string> | undefined;
    for (const k in selector) {
      const s = byLabel.get(k)?.get(selector[k]!);
      if (s === undefined) return;
      if (smallest === undefined || s.size < smallest.size) smallest = s;
    }
    const labelsOf = LABELLED_KINDS[kind]!;
    for (const key of smallest!) {
      const r = this.objects.get(key)!;
      if (r.kind === kind && selectorMatches(selector, labelsOf(r))) out.push(r as Extract<Resource, { kind: K }>);
    }
  }

  /**
   * Objects of a selector kind in `namespace` whose non-empty selector matches `labels`. Objects without a selector
   * (or with an empty one) are never returned: what "no selector" means differs per kind and is the caller's call.
   */
  selecting<K extends 'Service' | 'Deployment' | 'AuthorizationPolicy' | 'PeerAuthentication' | 'ServiceEntry'>(
    kind: K,
    namespace: string,
    labels: Labels | undefined,
  ): Extract<Resource, { kind: K }>[] {
    const out: Extract<Resource, { kind: K }>[] = [];
    const byPair = this.bySelectorPair.get(`${kind}\0${namespace}`);
    if (labels === undefined || byPair === undefined) return out;
    const selOf = SELECTOR_KINDS[kind]!;
    for (const k in labels) {
      const keys = byPair.get(k)?.get(labels[k]!);
      if (keys === undefined) continue;
      for (const key of keys) {
        const r = this.objects.get(key)!;
        if (selectorMatches(selOf(r)!, labels)) out.push(r as Extract<Resource, { kind: K }>);
      }
    }
    return out;
  }

  private resolve(keys: Set<string> | undefined): Resource[] {
    if (keys === undefined) return [];
    const out: Resource[] = [];
    for (const k of keys) out.push(this.objects.get(k)!);
    return out;
  }

  private emit(change: StoreChange): void {
    if (change.added.length + change.updated.length + change.removed.length === 0) return;
    for (const l of [...this.listeners]) l(change);
  }

  private index(key: string, r: Resource): void {
    addTo(this.byKind, r.kind, key);
    addTo(this.byKindNamespace, `${r.kind}\0${r.metadata.namespace ?? ''}`, key);
    const labels = LABELLED_KINDS[r.kind]?.(r);
    if (labels !== undefined) {
      const ns = r.metadata.namespace ?? '';
      let byLabel = this.byLabel.get(ns);
      if (byLabel === undefined) this.byLabel.set(ns, (byLabel = new Map()));
      for (const k in labels) addLabel(byLabel, k, labels[k]!, key);
    }
    if (r.kind === 'Pod' && r.spec?.nodeName) addTo(this.podsByNode, r.spec.nodeName, key);
    const first = firstSelectorPair(r);
    if (first !== undefined) {
      const scope = `${r.kind}\0${r.metadata.namespace ?? ''}`;
      let byPair = this.bySelectorPair.get(scope);
      if (byPair === undefined) this.bySelectorPair.set(scope, (byPair = new Map()));
      addLabel(byPair, first[0], first[1], key);
    }
  }

  private unindex(key: string, r: Resource): void {
    deleteFrom(this.byKind, r.kind, key);
    deleteFrom(this.byKindNamespace, `${r.kind}\0${r.metadata.namespace ?? ''}`, key);
    const labels = LABELLED_KINDS[r.kind]?.(r);
    const byLabel = labels === undefined ? undefined : this.byLabel.get(r.metadata.namespace ?? '');
    if (byLabel !== undefined) {
      for (const k in labels) deleteLabel(byLabel, k, labels[k]!, key);
      if (byLabel.size === 0) this.byLabel.delete(r.metadata.namespace ?? '');
    }
    if (r.kind === 'Pod' && r.spec?.nodeName) deleteFrom(this.podsByNode, r.spec.nodeName, key);
    const first = firstSelectorPair(r);
    if (first !== undefined) {
      const scope = `${r.kind}\0${r.metadata.namespace ?? ''}`;
      const byPair = this.bySelectorPair.get(scope);
      if (byPair === undefined) return;
      deleteLabel(byPair, first[0], first[1], key);
      if (byPair.size === 0) this.bySelectorPair.delete(scope);
    }
  }
}

/** The smallest key of a non-empty selector with its value: where the object is filed in the selector index. */
function firstSelectorPair(r: Resource): [string, string] | undefined {
  const sel = selectorOf(r);
  if (sel === undefined) return undefined;
  let first: string | undefined;
  for (const k in sel) if (first === undefined || k < first) first = k;
  return first === undefined ? undefined : [first, sel[first]!];
}
