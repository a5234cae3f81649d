// The cluster's event recorder against the real store: Kubernetes' event shape, client-go's aggregation of identical
// events into one with a count, and the bound on how many events the cluster keeps.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ResourceStore, type KubeObject } from '../../src/apiserver/store.js';
import { EventRecorder, podObject } from '../../src/local/events.js';

type Event = KubeObject & { count: number; reason: string; message: string; type: string; involvedObject: Record<string, unknown>; source: Record<string, unknown>; firstTimestamp: string; lastTimestamp: string };

const events = (store: ResourceStore, namespace?: string) => store.listObjects('', 'Event', namespace) as Event[];
const pod = { namespace: 'shop', name: 'web', uid: '1f0c3a7e-0000-4000-8000-000000000001' };

test('an event has the shape kubectl describe and get events read', (t) => {
  const store = new ResourceStore();
  const recorder = new EventRecorder(store);
  t.after(() => recorder.close());
  recorder.record({ component: 'kubelet', host: 'node-2' }, podObject(pod, 'web'), 'Normal', 'Started', 'Started container web');
  const [e] = events(store, 'shop');
  assert.ok(e);
  assert.match(e.metadata.name, /^web\.[0-9a-f]+$/);
  assert.deepEqual(e.involvedObject, { apiVersion: 'v1', kind: 'Pod', namespace: 'shop', name: 'web', uid: pod.uid, fieldPath: 'spec.containers{web}' });
  assert.deepEqual(e.source, { component: 'kubelet', host: 'node-2' });
  assert.equal(e.count, 1);
  assert.equal(e.type, 'Normal');
  assert.match(e.firstTimestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
});

test('identical events are counted on one object; a different message is a new event', (t) => {
  const store = new ResourceStore();
  const recorder = new EventRecorder(store);
  t.after(() => recorder.close());
  for (let i = 0; i < 3; i++) recorder.record({ component: 'kubelet', host: 'node-1' }, podObject(pod, 'web'), 'Warning', 'Unhealthy', 'Readiness probe failed: connection refused');
  recorder.record({ component: 'kubelet', host: 'node-1' }, podObject(pod, 'web'), 'Warning', 'Unhealthy', 'Readiness probe failed: HTTP probe failed with statuscode: 503');
  const list = events(store, 'shop').sort((a, b) => b.count - a.count);
  assert.deepEqual(list.map((e) => [e.count, e.message]), [
    [3, 'Readiness probe failed: connection refused'],
    [1, 'Readiness probe failed: HTTP probe failed with statuscode: 503'],
  ]);
});

test('an event deleted through the API is recorded afresh, not resurrected with its old count', (t) => {
  const store = new ResourceStore();
  const recorder = new EventRecorder(store);
  t.after(() => recorder.close());
  recorder.record({ component: 'kubelet' }, podObject(pod), 'Normal', 'Killing', 'Stopping container web');
  recorder.record({ component: 'kubelet' }, podObject(pod), 'Normal', 'Killing', 'Stopping container web');
  const [first] = events(store, 'shop');
  store.removeObject('', 'Event', 'shop', first!.metadata.name);
  recorder.record({ component: 'kubelet' }, podObject(pod), 'Normal', 'Killing', 'Stopping container web');
  const after = events(store, 'shop');
  assert.equal(after.length, 1);
  assert.equal(after[0]!.count, 1);
});

test('events of cluster-scoped objects go to default, and the cluster keeps at most 5000, dropping the oldest', (t) => {
  const store = new ResourceStore();
  const recorder = new EventRecorder(store);
  t.after(() => recorder.close());
  recorder.record({ component: 'kubelet' }, { apiVersion: 'v1', kind: 'Node', name: 'node-1' }, 'Normal', 'NodeReady', 'first');
  assert.equal(events(store, 'default').length, 1);
  for (let i = 0; i < 5000; i++) recorder.record({ component: 'kubelet' }, podObject(pod), 'Normal', 'Pulled', `message ${i}`);
  assert.equal(events(store).length, 5000);
  assert.equal(events(store, 'default').length, 0, 'the oldest event (the node one) was dropped');
});
