// EndpointSlices in the ambient index: the workloads of endpoints that are not pods, and the Services a slice gives the
// pods it names, kept up to date as the slice, its Service and the pods change (istiod's ambient EndpointSlice
// handling; the whole translation is in the endpointslices-istiod golden).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { EndpointSlice, Pod, Service } from '../../src/api/types.js';
import { AmbientIndex } from '../../src/model/ambient.js';
import { ConfigStore } from '../../src/model/store.js';
import { TYPE_ADDRESS, type Workload } from '../../src/xds/types.js';

const SLICE_UID = 'Kubernetes/discovery.k8s.io/EndpointSlice/shop/db-1/192.168.0.7';
const POD_UID = 'Kubernetes//Pod/shop/web';

function service(portName: string, extra: Partial<Service['spec']> = {}): Service {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name: 'db', namespace: 'shop' }, spec: { clusterIP: '10.96.0.5', ports: [{ name: portName, port: 5432, targetPort: 15432 }], ...extra } };
}

function slice(endpoints: EndpointSlice['endpoints']): EndpointSlice {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: 'db-1', namespace: 'shop', labels: { 'kubernetes.io/service-name': 'db' } },
    addressType: 'IPv4',
    endpoints,
    ports: [{ name: 'pg', protocol: 'TCP', port: 6432 }],
  };
}

function pod(uid: string): Pod {
  return { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web', namespace: 'shop', uid }, spec: { containers: [{ name: 'app' }] }, status: { podIP: '10.1.0.9' } };
}

const external = { addresses: ['192.168.0.7'] };
const webRef = (uid: string) => ({ addresses: ['10.1.0.9'], targetRef: { kind: 'Pod', namespace: 'shop', name: 'web', uid } });

function setup() {
  const store = new ConfigStore();
  const index = new AmbientIndex(store);
  const upserted: string[] = [];
  const removed: string[] = [];
  index.onChange((c) => {
    if (c.typeUrl !== TYPE_ADDRESS) return;
    upserted.push(...c.upserted.keys());
    removed.push(...c.removed);
  });
  const workload = (uid: string) => index.getWorkload(uid) as Workload | undefined;
  return { store, index, upserted, removed, workload };
}

test('a slice endpoint that is not a pod is a workload while its Service exists, with the Service’s port mapped by name', () => {
  const { store, upserted, removed, workload } = setup();
  store.apply([slice([external])]);
  assert.equal(workload(SLICE_UID), undefined, 'no Service yet');
  store.apply([service('pg')]);
  assert.deepEqual(workload(SLICE_UID)?.services, { 'shop/db.shop.svc.cluster.local': { ports: [{ servicePort: 5432, targetPort: 6432 }] } });
  assert.equal(workload(SLICE_UID)?.networkMode, 'HOST_NETWORK');
  assert.ok(upserted.includes(SLICE_UID));
  // The slice's port is matched to the Service's by name: a renamed Service port no longer matches.
  store.apply([service('postgres')]);
  assert.deepEqual(workload(SLICE_UID)?.services, { 'shop/db.shop.svc.cluster.local': { ports: [] } });
  // An ExternalName Service is not sent to ztunnel, and neither are its slices' endpoints.
  store.apply([service('pg', { type: 'ExternalName', externalName: 'db.example.com' })]);
  assert.equal(workload(SLICE_UID), undefined);
  assert.ok(removed.includes(SLICE_UID));
  store.apply([service('pg')]);
  store.remove(['Service/shop/db']);
  assert.equal(workload(SLICE_UID), undefined);
});

test('a slice naming a pod gives the pod’s workload its Service, as long as the reference (with its uid) holds', () => {
  const { store, workload } = setup();
  store.apply([service('pg'), pod('u1'), slice([webRef('u1')])]);
  // The pod's own port mapping, from the Service (its targetPort), not the slice's port.
  assert.deepEqual(workload(POD_UID)?.services, { 'shop/db.shop.svc.cluster.local': { ports: [{ servicePort: 5432, targetPort: 15432 }] } });
  assert.equal(workload('Kubernetes/discovery.k8s.io/EndpointSlice/shop/db-1/10.1.0.9'), undefined, 'a pod endpoint is the pod’s workload');
  // The pod is recreated under the same name: the slice still names the old one.
  store.apply([pod('u2')]);
  assert.deepEqual(workload(POD_UID)?.services, {});
  store.apply([slice([webRef('u2')])]);
  assert.deepEqual(workload(POD_UID)?.services, { 'shop/db.shop.svc.cluster.local': { ports: [{ servicePort: 5432, targetPort: 15432 }] } });
  // Its Service's ports reach the pod.
  store.apply([{ ...service('pg'), spec: { clusterIP: '10.96.0.5', ports: [{ name: 'pg', port: 5433 }] } }]);
  assert.deepEqual(workload(POD_UID)?.services, { 'shop/db.shop.svc.cluster.local': { ports: [{ servicePort: 5433, targetPort: 5433 }] } });
  store.remove(['Service/shop/db']);
  assert.deepEqual(workload(POD_UID)?.services, {});
  store.apply([service('pg')]);
  store.remove(['EndpointSlice/shop/db-1']);
  assert.deepEqual(workload(POD_UID)?.services, {});
});

test('a pod’s IP in a slice without a reference to the pod is not merged with the pod', () => {
  const { store, workload } = setup();
  store.apply([service('pg'), pod('u1'), slice([{ addresses: ['10.1.0.9'], conditions: { ready: false } }])]);
  assert.deepEqual(workload(POD_UID)?.services, {});
  const opaque = workload('Kubernetes/discovery.k8s.io/EndpointSlice/shop/db-1/10.1.0.9');
  assert.equal(opaque?.status, 'UNHEALTHY');
  assert.equal(opaque?.serviceAccount, '');
  assert.equal(opaque?.tunnelProtocol, 'NONE');
});
