// The ambient index as the xDS server sees it: xDS object form, and incremental changes that contain exactly what
// changed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigStore } from '../../src/model/store.js';
import { AmbientIndex } from '../../src/model/ambient.js';
import { podWantsCapture } from '../../src/model/workloads.js';
import type { AmbientChange, ObjectStatus } from '../../src/model/ambient.js';
import { TYPE_ADDRESS, TYPE_AUTHORIZATION } from '../../src/xds/types.js';
import type { Address, Authorization, Workload } from '../../src/xds/types.js';
import type { AuthorizationPolicy, Deployment, Namespace, PeerAuthentication, Pod, Service } from '../../src/api/types.js';
import { parseYaml } from './helpers.js';

function ns(name: string, labels: Record<string, string> = {}): Namespace {
  return { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } };
}

function pod(name: string, namespace: string, labels: Record<string, string>, ip?: string, node = 'node-1'): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace, labels },
    spec: { nodeName: node, serviceAccountName: `sa-${name}`, containers: [{ name: 'app', ports: [{ name: 'http', containerPort: 8080 }] }] },
    ...(ip ? { status: { podIP: ip } } : {}),
  };
}

function service(name: string, namespace: string, selector: Record<string, string>, vip: string): Service {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace }, spec: { selector, clusterIP: vip, ports: [{ name: 'http', port: 80, targetPort: 'http' }] } };
}

function policy(name: string, namespace: string, spec: AuthorizationPolicy['spec']): AuthorizationPolicy {
  return { apiVersion: 'security.istio.io/v1', kind: 'AuthorizationPolicy', metadata: { name, namespace }, spec };
}

/** Records every change the index emits, per type. */
function record(index: AmbientIndex) {
  const changes: AmbientChange[] = [];
  const statuses: ObjectStatus[][] = [];
  index.onChange((c) => changes.push(c));
  index.onStatusChange((s) => statuses.push(s));
  return {
    changes,
    statuses,
    of(typeUrl: string) {
      return changes.filter((c) => c.typeUrl === typeUrl);
    },
    upserted(typeUrl: string): string[] {
      return this.of(typeUrl).flatMap((c) => [...c.upserted.keys()]).sort();
    },
    removed(typeUrl: string): string[] {
      return this.of(typeUrl).flatMap((c) => c.removed).sort();
    },
    clear() {
      changes.length = 0;
      statuses.length = 0;
    },
  };
}

/** A clock the test moves by hand, for lastTransitionTime. */
function testClock(start = '2026-01-01T00:00:00Z') {
  let now = new Date(start);
  return { clock: () => now, advance: (seconds: number) => void (now = new Date(now.getTime() + seconds * 1000)) };
}

function setup() {
  const time = testClock();
  const store = new ConfigStore();
  store.apply([
    ns('shop', { 'istio.io/dataplane-mode': 'ambient' }),
    ns('plain'),
    pod('web-1', 'shop', { app: 'web' }, '10.0.0.1', 'node-1'),
    pod('web-2', 'shop', { app: 'web' }, '10.0.0.2', 'node-2'),
    pod('db-1', 'shop', { app: 'db' }, '10.0.0.3', 'node-1'),
    pod('tool', 'plain', { app: 'tool' }, '10.0.1.1', 'node-1'),
    service('web', 'shop', { app: 'web' }, '10.96.0.1'),
  ]);
  const index = new AmbientIndex(store, {}, time.clock);
  return { store, index, rec: record(index), time };
}

const uid = (namespace: string, name: string) => `Kubernetes//Pod/${namespace}/${name}`;

function workload(index: AmbientIndex, namespace: string, name: string): Workload {
  const w = index.getWorkload(uid(namespace, name));
  assert.ok(w, `workload ${namespace}/${name} exists`);
  return w;
}

test('snapshot holds workloads and services in xDS object form', () => {
  const { index } = setup();
  const addresses = index.snapshot(TYPE_ADDRESS);
  assert.deepEqual([...addresses.keys()].sort(), [uid('plain', 'tool'), uid('shop', 'db-1'), uid('shop', 'web-1'), uid('shop', 'web-2'), 'shop/web.shop.svc.cluster.local']);
  const web1 = (addresses.get(uid('shop', 'web-1')) as { workload: Workload }).workload;
  assert.deepEqual(web1.addresses, [Uint8Array.from([10, 0, 0, 1])]);
  assert.equal(web1.tunnelProtocol, 'HBONE');
  assert.equal(web1.serviceAccount, 'sa-web-1');
  assert.equal(web1.trustDomain, 'cluster.local');
  assert.equal(web1.clusterId, 'Kubernetes');
  assert.deepEqual(web1.services, { 'shop/web.shop.svc.cluster.local': { ports: [{ servicePort: 80, targetPort: 8080 }] } });
  assert.equal(workload(index, 'plain', 'tool').tunnelProtocol, 'NONE');
  const svc = (addresses.get('shop/web.shop.svc.cluster.local') as Address).service!;
  assert.deepEqual(svc.addresses, [{ network: '', address: Uint8Array.from([10, 96, 0, 1]) }]);
  assert.deepEqual(svc.ports, [{ servicePort: 80, targetPort: 0, appProtocol: 'HTTP11' }]);
  assert.equal(index.snapshot(TYPE_AUTHORIZATION).size, 0);
});

test('a label change nothing depends on emits nothing', () => {
  const { store, index, rec } = setup();
  store.apply([pod('web-1', 'shop', { app: 'web', unrelated: 'yes' }, '10.0.0.1', 'node-1')]);
  assert.equal(rec.changes.length, 0);
  assert.equal(index.getWorkload(uid('shop', 'web-1'))!.name, 'web-1');
});

test('a pod IP change updates only that workload and the IP lookup', () => {
  const { store, index, rec } = setup();
  store.apply([pod('web-1', 'shop', { app: 'web' }, '10.0.0.9', 'node-1')]);
  assert.deepEqual(rec.upserted(TYPE_ADDRESS), [uid('shop', 'web-1')]);
  assert.deepEqual(rec.removed(TYPE_ADDRESS), []);
  assert.equal(rec.of(TYPE_AUTHORIZATION).length, 0);
  assert.equal(index.workloadByIp('10.0.0.1'), undefined);
  assert.equal(index.workloadByIp('10.0.0.9')!.name, 'web-1');
});

test('removing a pod removes its workload', () => {
  const { store, index, rec } = setup();
  store.remove(['Pod/shop/web-2']);
  assert.deepEqual(rec.removed(TYPE_ADDRESS), [uid('shop', 'web-2')]);
  assert.deepEqual(rec.upserted(TYPE_ADDRESS), []);
  assert.equal(index.workloadByIp('10.0.0.2'), undefined);
  assert.deepEqual([...index.identitiesOnNode('node-2')], []);
});

test('a new Service updates the service and exactly the workloads it selects', () => {
  const { store, rec } = setup();
  store.apply([service('db', 'shop', { app: 'db' }, '10.96.0.2')]);
  assert.deepEqual(rec.upserted(TYPE_ADDRESS), [uid('shop', 'db-1'), 'shop/db.shop.svc.cluster.local']);
  rec.clear();
  store.remove(['Service/shop/db']);
  assert.deepEqual(rec.removed(TYPE_ADDRESS), ['shop/db.shop.svc.cluster.local']);
  assert.deepEqual(rec.upserted(TYPE_ADDRESS), [uid('shop', 'db-1')]);
});

test('a selector policy is sent, listed on the workloads it selects, and reported in status', () => {
  const { store, index, rec, time } = setup();
  store.apply([policy('web-allow', 'shop', { selector: { matchLabels: { app: 'web' } }, rules: [{ from: [{ source: { namespaces: ['shop'] } }] }] })]);
  assert.deepEqual(rec.upserted(TYPE_AUTHORIZATION), ['shop/web-allow']);
  assert.deepEqual(rec.upserted(TYPE_ADDRESS), [uid('shop', 'web-1'), uid('shop', 'web-2')]);
  // The xDS server must have the policy before any workload references it.
  assert.equal(rec.changes[0]!.typeUrl, TYPE_AUTHORIZATION);
  assert.deepEqual(workload(index, 'shop', 'web-1').authorizationPolicies, ['shop/web-allow']);
  const auth = index.snapshot(TYPE_AUTHORIZATION).get('shop/web-allow') as Authorization;
  assert.equal(auth.scope, 'WORKLOAD_SELECTOR');
  assert.deepEqual(auth.rules[0]!.clauses[0]!.matches[0]!.namespaces, [{ exact: 'shop' }]);
  assert.deepEqual(rec.statuses, [
    [{ kind: 'AuthorizationPolicy', namespace: 'shop', name: 'web-allow', conditions: [{ type: 'ZtunnelAccepted', status: 'True', reason: 'Accepted', message: 'attached to ztunnel', lastTransitionTime: '2026-01-01T00:00:00Z' }] }],
  ]);

  // Turning it into AUDIT stops sending it, unlists it, and flips the condition to False.
  rec.clear();
  time.advance(60);
  store.apply([policy('web-allow', 'shop', { selector: { matchLabels: { app: 'web' } }, action: 'AUDIT', rules: [{}] })]);
  assert.deepEqual(rec.removed(TYPE_AUTHORIZATION), ['shop/web-allow']);
  assert.deepEqual(rec.upserted(TYPE_ADDRESS), [uid('shop', 'web-1'), uid('shop', 'web-2')]);
  assert.deepEqual(workload(index, 'shop', 'web-1').authorizationPolicies, []);
  assert.equal(index.statuses()[0]!.conditions[0]!.status, 'False');
  assert.equal(index.statuses()[0]!.conditions[0]!.message, 'ztunnel does not support the AUDIT action');
  assert.equal(index.statuses()[0]!.conditions[0]!.lastTransitionTime, '2026-01-01T00:01:00Z', 'the status flipped');
  // Another reason to be rejected is no transition: the status stays False, and so does its time.
  time.advance(60);
  store.apply([policy('web-allow', 'shop', { selector: { matchLabels: { app: 'web' } }, action: 'CUSTOM', provider: { name: 'ext' }, rules: [{}] })]);
  assert.match(index.statuses()[0]!.conditions[0]!.message, /CUSTOM/);
  assert.equal(index.statuses()[0]!.conditions[0]!.lastTransitionTime, '2026-01-01T00:01:00Z');

  rec.clear();
  store.remove(['AuthorizationPolicy/shop/web-allow']);
  assert.deepEqual(rec.statuses, [[{ kind: 'AuthorizationPolicy', namespace: 'shop', name: 'web-allow', conditions: [] }]]);
  assert.deepEqual(index.statuses(), []);
  assert.equal(rec.of(TYPE_ADDRESS).length, 0);
});

test('relabelling a pod into a policy selector touches only that pod', () => {
  const { store, index, rec } = setup();
  store.apply([policy('db-only', 'shop', { selector: { matchLabels: { app: 'db' } }, rules: [{}] })]);
  rec.clear();
  store.apply([pod('web-2', 'shop', { app: 'db' }, '10.0.0.2', 'node-2')]);
  assert.deepEqual(rec.upserted(TYPE_ADDRESS), [uid('shop', 'web-2')]);
  assert.equal(rec.of(TYPE_AUTHORIZATION).length, 0);
  const w = workload(index, 'shop', 'web-2');
  assert.deepEqual(w.authorizationPolicies, ['shop/db-only']);
  // It left the web Service too.
  assert.deepEqual(w.services, {});
});

test('a namespace-wide policy changes no workload', () => {
  const { store, rec } = setup();
  store.apply([policy('ns-wide', 'shop', { action: 'DENY', rules: [{ to: [{ operation: { ports: ['9999'] } }] }] })]);
  assert.deepEqual(rec.upserted(TYPE_AUTHORIZATION), ['shop/ns-wide']);
  assert.equal(rec.of(TYPE_ADDRESS).length, 0);
});

test('the first PeerAuthentication brings the static STRICT policy; removing the last takes it away', () => {
  const { store, index, rec } = setup();
  const pa: PeerAuthentication = { apiVersion: 'security.istio.io/v1', kind: 'PeerAuthentication', metadata: { name: 'default', namespace: 'shop' }, spec: { mtls: { mode: 'STRICT' } } };
  store.apply([pa]);
  assert.deepEqual(rec.upserted(TYPE_AUTHORIZATION), ['istio-system/istio_converted_static_strict']);
  assert.deepEqual(rec.upserted(TYPE_ADDRESS), [uid('shop', 'db-1'), uid('shop', 'web-1'), uid('shop', 'web-2')]);
  assert.deepEqual(workload(index, 'shop', 'db-1').authorizationPolicies, ['istio-system/istio_converted_static_strict']);
  assert.deepEqual(workload(index, 'plain', 'tool').authorizationPolicies, []);
  rec.clear();
  store.remove(['PeerAuthentication/shop/default']);
  assert.deepEqual(rec.removed(TYPE_AUTHORIZATION), ['istio-system/istio_converted_static_strict']);
  assert.deepEqual(rec.upserted(TYPE_ADDRESS), [uid('shop', 'db-1'), uid('shop', 'web-1'), uid('shop', 'web-2')]);
});

test('a mesh-wide PeerAuthentication reaches every namespace', () => {
  const { store, index } = setup();
  store.apply([{ apiVersion: 'security.istio.io/v1', kind: 'PeerAuthentication', metadata: { name: 'default', namespace: 'istio-system' }, spec: { mtls: { mode: 'STRICT' } } }]);
  assert.deepEqual(workload(index, 'plain', 'tool').authorizationPolicies, ['istio-system/istio_converted_static_strict']);
});

test('labelling a namespace for ambient captures exactly its pods', () => {
  const { store, index, rec } = setup();
  store.apply([ns('plain', { 'istio.io/dataplane-mode': 'ambient' })]);
  assert.deepEqual(rec.upserted(TYPE_ADDRESS), [uid('plain', 'tool')]);
  assert.equal(workload(index, 'plain', 'tool').tunnelProtocol, 'HBONE');
  rec.clear();
  store.apply([pod('tool', 'plain', { app: 'tool', 'istio.io/dataplane-mode': 'none' }, '10.0.1.1', 'node-1')]);
  assert.equal(workload(index, 'plain', 'tool').tunnelProtocol, 'NONE');
});

test('Deployment replicas stand in for pods until the pods exist', () => {
  const { store, index, rec } = setup();
  const deploy = (replicas: number): Deployment => ({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'api', namespace: 'shop' },
    spec: { replicas, selector: { matchLabels: { app: 'api' } }, template: { metadata: { labels: { app: 'api' } }, spec: { containers: [{ name: 'api' }] } } },
  });
  store.apply([deploy(2)]);
  const replicas = rec.upserted(TYPE_ADDRESS);
  assert.equal(replicas.length, 2);
  for (const key of replicas) {
    const w = index.getWorkload(key)!;
    assert.match(w.name, /^api-[bcdfghjklmnpqrstvwxz2456789]{10}-[bcdfghjklmnpqrstvwxz2456789]{5}$/);
    assert.deepEqual([w.workloadType, w.workloadName, w.addresses.length, w.status], ['POD', 'api', 0, 'UNHEALTHY']);
  }

  // A running pod of the Deployment (created through its ReplicaSet) replaces one replica.
  rec.clear();
  const running = pod('api-abc-12345', 'shop', { app: 'api', 'pod-template-hash': 'abc' }, '10.0.0.50', 'node-2');
  running.metadata.generateName = 'api-abc-';
  running.metadata.ownerReferences = [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'api-abc', uid: 'rs-uid', controller: true }];
  store.apply([running]);
  assert.deepEqual(rec.upserted(TYPE_ADDRESS), [uid('shop', 'api-abc-12345')]);
  assert.equal(rec.removed(TYPE_ADDRESS).length, 1);
  assert.ok(replicas.includes(rec.removed(TYPE_ADDRESS)[0]!));
  const w = workload(index, 'shop', 'api-abc-12345');
  assert.deepEqual([w.workloadType, w.workloadName], ['POD', 'api']);

  // Scaling to 1 retires the last replica; the pod names its workload from its own owner references, so deleting the
  // Deployment leaves it as it is.
  rec.clear();
  store.apply([deploy(1)]);
  assert.equal(rec.removed(TYPE_ADDRESS).length, 1);
  assert.deepEqual(rec.upserted(TYPE_ADDRESS), []);
  rec.clear();
  store.remove(['Deployment/shop/api']);
  assert.deepEqual(rec.upserted(TYPE_ADDRESS), []);
  assert.equal(workload(index, 'shop', 'api-abc-12345').workloadName, 'api');
});

test('identities on a node are the SPIFFE ids of its pods', () => {
  const { store, index } = setup();
  assert.deepEqual([...index.identitiesOnNode('node-1')].sort(), [
    'spiffe://cluster.local/ns/plain/sa/sa-tool',
    'spiffe://cluster.local/ns/shop/sa/sa-db-1',
    'spiffe://cluster.local/ns/shop/sa/sa-web-1',
  ]);
  store.apply([pod('web-1', 'shop', { app: 'web' }, '10.0.0.1', 'node-2')]);
  assert.deepEqual([...index.identitiesOnNode('node-1')].sort(), ['spiffe://cluster.local/ns/plain/sa/sa-tool', 'spiffe://cluster.local/ns/shop/sa/sa-db-1']);
  assert.deepEqual([...index.identitiesOnNode('unknown')], []);
});

test('an index built over a filled store equals one fed incrementally', () => {
  const docs = parseYaml(`
apiVersion: v1
kind: Namespace
metadata: {name: a, labels: {istio.io/dataplane-mode: ambient}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: p, namespace: a}
spec: {selector: {matchLabels: {app: x}}, portLevelMtls: {"8080": {mode: STRICT}}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: x, namespace: a}
spec: {selector: {matchLabels: {app: x}}, rules: [{}]}
---
apiVersion: v1
kind: Service
metadata: {name: x, namespace: a}
spec: {selector: {app: x}, clusterIP: 10.96.5.5, ports: [{port: 80}]}
---
apiVersion: v1
kind: Pod
metadata: {name: x1, namespace: a, labels: {app: x}}
spec: {containers: [{name: c}]}
status: {podIP: 10.5.0.1}
`);
  const whole = new ConfigStore();
  whole.apply(docs);
  const expected = new AmbientIndex(whole, {}, testClock().clock);

  // Applied one by one in reverse order, every dependency arrives after its dependents.
  const piecewise = new ConfigStore();
  const incremental = new AmbientIndex(piecewise, {}, testClock().clock);
  for (const d of [...docs].reverse()) piecewise.apply([d]);
  assert.deepEqual(incremental.snapshot(TYPE_ADDRESS), expected.snapshot(TYPE_ADDRESS));
  assert.deepEqual(incremental.snapshot(TYPE_AUTHORIZATION), expected.snapshot(TYPE_AUTHORIZATION));
  assert.deepEqual(incremental.statuses(), expected.statuses());
  assert.deepEqual(workload(incremental, 'a', 'x1').authorizationPolicies, ['a/x', 'a/converted_peer_authentication_p']);
});

test('removing a mesh-wide PeerAuthentication together with a port-level one removes its converted policy', () => {
  const { store, index } = setup();
  const mesh: PeerAuthentication = { apiVersion: 'security.istio.io/v1', kind: 'PeerAuthentication', metadata: { name: 'default', namespace: 'istio-system' }, spec: { mtls: { mode: 'STRICT' } } };
  const ports: PeerAuthentication = {
    apiVersion: 'security.istio.io/v1',
    kind: 'PeerAuthentication',
    metadata: { name: 'web-ports', namespace: 'shop' },
    spec: { selector: { matchLabels: { app: 'web' } }, portLevelMtls: { '9090': { mode: 'PERMISSIVE' } } },
  };
  store.apply([mesh, ports]);
  assert.ok(index.snapshot(TYPE_AUTHORIZATION).has('shop/converted_peer_authentication_web-ports'));
  assert.deepEqual(workload(index, 'shop', 'web-1').authorizationPolicies, ['shop/converted_peer_authentication_web-ports']);
  const rec = record(index);
  store.remove(['PeerAuthentication/istio-system/default', 'PeerAuthentication/shop/web-ports']);
  assert.deepEqual(rec.removed(TYPE_AUTHORIZATION), ['istio-system/istio_converted_static_strict', 'shop/converted_peer_authentication_web-ports']);
  assert.equal(index.snapshot(TYPE_AUTHORIZATION).size, 0);
  assert.deepEqual(workload(index, 'shop', 'web-1').authorizationPolicies, []);
});

test('the CNI captures a pod before it has an IP, and never a host-network pod (podWantsCapture)', () => {
  const ambient = ns('shop', { 'istio.io/dataplane-mode': 'ambient' });
  const fresh = pod('fresh', 'shop', { app: 'web' });
  assert.equal(podWantsCapture(fresh, ambient), true);
  assert.equal(podWantsCapture({ ...fresh, spec: { ...fresh.spec, hostNetwork: true } }, ambient), false);
  assert.equal(podWantsCapture({ ...fresh, status: { phase: 'Succeeded' } }, ambient), false);
});
