// Events, as the cluster's components record them in Kubernetes (`kubectl describe`, `kubectl get events`): the
// scheduler's Scheduled/FailedScheduling, the kubelet's Created/Started/Killing/Unhealthy/BackOff and sandbox
// failures, the Deployment controller's ScalingReplicaSet, with Kubernetes' reasons and texts. As client-go's
// correlator does, an event identical to one already recorded (same source, object, type, reason and message) bumps
// that one's count and lastTimestamp instead of adding another. As kube-apiserver's --event-ttl (1 h) they expire,
// and the cluster keeps at most MAX_EVENTS of them, so a crash-looping pod cannot grow the store without bound.
import type { KubeObject, ResourceStore } from '../apiserver/store.js';
import { kubeTime } from '../common/time.js';

/** The object an event is about; `fieldPath` names a part of it (`spec.containers{app}`). */
export interface InvolvedObject {
  apiVersion: string;
  kind: string;
  namespace?: string;
  name: string;
  uid?: string;
  fieldPath?: string;
}

/** Who records: `default-scheduler`, `kubelet` (with its node as host), `deployment-controller`. */
export interface EventSource {
  component: string;
  host?: string;
}

export type EventType = 'Normal' | 'Warning';

const EVENT_TTL_MS = 60 * 60_000;
const MAX_EVENTS = 5000;
const SWEEP_INTERVAL_MS = 60_000;

interface Recorded {
  namespace: string;
  name: string;
  last: number;
}

export class EventRecorder {
  /** Recorded events by correlation key, oldest first (a Map keeps insertion order; a bump moves the entry last). */
  private readonly recorded = new Map<string, Recorded>();
  private readonly sweeper: NodeJS.Timeout;
  private lastNanos = 0n;

  constructor(private readonly store: ResourceStore) {
    this.sweeper = setInterval(() => this.expire(Date.now() - EVENT_TTL_MS), SWEEP_INTERVAL_MS);
    this.sweeper.unref();
  }

  record(source: EventSource, object: InvolvedObject, type: EventType, reason: string, message: string): void {
    const now = Date.now();
    const key = JSON.stringify([source.component, source.host, object.apiVersion, object.kind, object.namespace, object.name, object.uid, object.fieldPath, type, reason, message]);
    const seen = this.recorded.get(key);
    const existing = seen && (this.store.getObject('', 'Event', seen.namespace, seen.name) as (KubeObject & { count?: number }) | undefined);
    if (seen && existing) {
      this.recorded.delete(key);
      this.recorded.set(key, { ...seen, last: now });
      this.store.put({ ...existing, count: (existing.count ?? 1) + 1, lastTimestamp: kubeTime(now) } as KubeObject);
      return;
    }
    // Kubernetes names an event after its object and the time in nanoseconds, as hex; the clock here counts
    // milliseconds, so the nanoseconds are made unique by stepping past the last name's.
    this.lastNanos = BigInt(now) * 1_000_000n > this.lastNanos ? BigInt(now) * 1_000_000n : this.lastNanos + 1n;
    const name = `${object.name}.${this.lastNanos.toString(16)}`;
    // A cluster-scoped object's events live in `default`, as client-go's recorder puts them.
    const namespace = object.namespace ?? 'default';
    this.store.put({
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name, namespace },
      involvedObject: object,
      reason,
      message,
      source,
      firstTimestamp: kubeTime(now),
      lastTimestamp: kubeTime(now),
      count: 1,
      type,
      eventTime: null,
      reportingComponent: source.component,
      reportingInstance: source.host ?? '',
    } as unknown as KubeObject);
    this.recorded.delete(key);
    this.recorded.set(key, { namespace, name, last: now });
    if (this.recorded.size > MAX_EVENTS) this.removeOldest(this.recorded.size - MAX_EVENTS);
  }

  close(): void {
    clearInterval(this.sweeper);
  }

  /** Removes the events last seen before `before`. */
  private expire(before: number): void {
    let n = 0;
    for (const r of this.recorded.values()) {
      if (r.last >= before) break;
      n++;
    }
    this.removeOldest(n);
  }

  private removeOldest(n: number): void {
    for (const [key, r] of this.recorded) {
      if (n-- <= 0) break;
      this.recorded.delete(key);
      this.store.removeObject('', 'Event', r.namespace, r.name);
    }
  }
}

/** The involved object of a pod, or of one of its containers. */
export function podObject(pod: { namespace: string; name: string; uid: string }, container?: string): InvolvedObject {
  return { apiVersion: 'v1', kind: 'Pod', namespace: pod.namespace, name: pod.name, uid: pod.uid, ...(container ? { fieldPath: `spec.containers{${container}}` } : {}) };
}
