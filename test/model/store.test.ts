import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigStore } from '../../src/model/store.js';
import type { StoreChange } from '../../src/model/store.js';
import type { Pod, Resource, Service } from '../../src/api/types.js';

function pod(name: string, ns: string, labels: Record<string, string>, node?: string): Pod {
  return { apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: ns, labels }, spec: { containers: [{ name: 'app' }], ...(node ? { nodeName: node } : {}) } };
}

function service(name: string, ns: string, selector: Record<string, string> | undefined): Service {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: ns }, spec: { ...(selector ? { selector } : {}), ports: [{ port: 80 }] } };
}

const names = (rs: Resource[]) => rs.map((r) => r.metadata.name).sort();

test('apply reports added, updated and unchanged objects precisely', () => {
  const store = new ConfigStore();
  const seen: StoreChange[] = [];
  store.subscribe((c) => seen.push(c));
  const a = pod('a', 'ns', { app: 'a' });
  let c = store.apply([a, pod('b', 'ns', { app: 'b' })]);
  assert.deepEqual(c.added, ['Pod/ns/a', 'Pod/ns/b']);
  assert.equal(seen.length, 1);

  // A structurally identical object (new identity, same content) is not a change and notifies nobody.
  c = store.apply([pod('a', 'ns', { app: 'a' })]);
  assert.deepEqual([c.added, c.updated, c.removed], [[], [], []]);
  assert.equal(seen.length, 1);

  c = store.apply([pod('a', 'ns', { app: 'a2' })]);
  assert.deepEqual(c.updated, ['Pod/ns/a']);
  assert.equal(c.previous.get('Pod/ns/a'), a);
  assert.equal(seen.length, 2);
});

test('the same key twice in one batch is reported once, with the version before the batch', () => {
  const store = new ConfigStore();
  const first = pod('a', 'ns', { v: '1' });
  store.apply([first]);
  const c = store.apply([pod('a', 'ns', { v: '2' }), pod('a', 'ns', { v: '3' })]);
  assert.deepEqual(c.updated, ['Pod/ns/a']);
  assert.equal(c.previous.get('Pod/ns/a'), first);
  assert.equal(store.get('Pod/ns/a')!.metadata.labels!.v, '3');

  const added = store.apply([pod('n', 'ns', { v: '1' }), pod('n', 'ns', { v: '2' })]);
  assert.deepEqual([added.added, added.updated], [['Pod/ns/n'], []]);
});

test('remove reports removed keys with their last version and ignores unknown keys', () => {
  const store = new ConfigStore();
  const a = pod('a', 'ns', {});
  store.apply([a]);
  const c = store.remove(['Pod/ns/a', 'Pod/ns/missing']);
  assert.deepEqual(c.removed, ['Pod/ns/a']);
  assert.equal(c.previous.get('Pod/ns/a'), a);
  assert.equal(store.get('Pod/ns/a'), undefined);
  assert.equal(store.list('Pod').length, 0);
});

test('indexes by kind, namespace, labels and node follow updates', () => {
  const store = new ConfigStore();
  store.apply([pod('a', 'x', { app: 'web', tier: 'front' }, 'n1'), pod('b', 'x', { app: 'web' }, 'n2'), pod('c', 'y', { app: 'web' }, 'n1')]);
  assert.deepEqual(names(store.list('Pod', 'x')), ['a', 'b']);
  assert.deepEqual(names(store.matching('Pod', 'x', { app: 'web' })), ['a', 'b']);
  assert.deepEqual(names(store.matching('Pod', undefined, { app: 'web' })), ['a', 'b', 'c']);
  assert.deepEqual(names(store.matching('Pod', 'x', { app: 'web', tier: 'front' })), ['a']);
  assert.deepEqual(names(store.matching('Pod', 'x', { app: 'db' })), []);
  assert.deepEqual(names(store.podsOnNode('n1')), ['a', 'c']);

  // Moving a pod and relabelling it updates every index.
  store.apply([pod('a', 'x', { app: 'db' }, 'n2')]);
  assert.deepEqual(names(store.podsOnNode('n1')), ['c']);
  assert.deepEqual(names(store.podsOnNode('n2')), ['a', 'b']);
  assert.deepEqual(names(store.matching('Pod', 'x', { app: 'web' })), ['b']);
  assert.deepEqual(names(store.matching('Pod', 'x', { app: 'db' })), ['a']);
});

test('services are found by the pods they select, never when the selector is empty', () => {
  const store = new ConfigStore();
  store.apply([
    service('web', 'x', { app: 'web' }),
    service('web-front', 'x', { app: 'web', tier: 'front' }),
    service('other-ns', 'y', { app: 'web' }),
    service('no-selector', 'x', undefined),
    service('empty-selector', 'x', {}),
  ]);
  assert.deepEqual(names(store.selecting('Service', 'x', { app: 'web', tier: 'front', extra: '1' })), ['web', 'web-front']);
  assert.deepEqual(names(store.selecting('Service', 'x', { app: 'web' })), ['web']);
  assert.deepEqual(names(store.selecting('Service', 'x', { tier: 'front' })), []);
  store.apply([service('web', 'x', { app: 'api' })]);
  assert.deepEqual(names(store.selecting('Service', 'x', { app: 'web', tier: 'front' })), ['web-front']);
  assert.deepEqual(names(store.selecting('Service', 'x', { app: 'api' })), ['web']);
});
