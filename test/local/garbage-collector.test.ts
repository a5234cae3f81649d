// Kubernetes' garbage collector over the local cluster's store: a dependent goes only when all its owners are gone, an
// owner being identified by API group (any version), kind, namespace, name and uid; references the cluster cannot
// resolve keep the dependent.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { OwnerReference, Resource } from '../../src/api/types.js';
import { collectGarbage } from '../../src/local/controllers/garbage-collector.js';
import { ResourceStore } from '../../src/apiserver/store.js';

function gateway(name: string): Resource {
  return {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'Gateway',
    metadata: { name, namespace: 'shop' },
    spec: { gatewayClassName: 'istio-waypoint', listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE' }] },
  };
}

function serviceAccount(name: string, ownerReferences: OwnerReference[]): Resource {
  return { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace: 'shop', ownerReferences } };
}

/** A store holding `objects`; `ref` names one of them as an owner, by its current uid. */
function storeWith(...objects: Resource[]) {
  const store = new ResourceStore();
  for (const o of objects) store.put(o);
  const ref = (kind: Resource['kind'], name: string, apiVersion = 'gateway.networking.k8s.io/v1'): OwnerReference => {
    const owner = store.get(kind, kind === 'GatewayClass' ? undefined : 'shop', name)!;
    return { apiVersion, kind, name, uid: owner.metadata.uid! };
  };
  const remove = (kind: Resource['kind'], name: string) => store.remove(kind, kind === 'GatewayClass' ? undefined : 'shop', name);
  const sa = (name: string) => store.get('ServiceAccount', 'shop', name);
  return { store, ref, remove, sa };
}

describe('collectGarbage', () => {
  it('keeps a dependent while one of its owners exists, dropping the references to the gone ones', () => {
    const { store, ref, remove, sa } = storeWith(gateway('a'), gateway('b'));
    const [a, b] = [ref('Gateway', 'a'), ref('Gateway', 'b')];
    store.put(serviceAccount('shared', [a, b]));
    remove('Gateway', 'a');
    const first = collectGarbage(store);
    assert.deepEqual(first.deleted, []);
    assert.deepEqual(first.trimmed.map((t) => [t.resource.metadata.name, t.gone]), [['shared', [a]]]);
    assert.deepEqual(sa('shared')?.metadata.ownerReferences, [b]);
    remove('Gateway', 'b');
    assert.deepEqual(collectGarbage(store).deleted.map((r) => r.metadata.name), ['shared']);
    assert.equal(sa('shared'), undefined);
  });

  it('finds owners by API group and kind: another version of the group is the same owner, another group is not', () => {
    const { store, ref, remove, sa } = storeWith(gateway('wp'));
    // A Gateway of gateway.networking.k8s.io named in an older version.
    store.put(serviceAccount('by-v1beta1', [ref('Gateway', 'wp', 'gateway.networking.k8s.io/v1beta1')]));
    // Istio's own Gateway kind, which the local cluster does not serve, of the same name: never resolved, never gone.
    store.put(serviceAccount('by-istio-gateway', [{ apiVersion: 'networking.istio.io/v1', kind: 'Gateway', name: 'wp', uid: 'uid-istio-wp' }]));
    store.put(serviceAccount('by-absent-istio-gateway', [{ apiVersion: 'networking.istio.io/v1', kind: 'Gateway', name: 'nope', uid: 'uid-nope' }]));
    assert.deepEqual(collectGarbage(store), { deleted: [], trimmed: [] });
    remove('Gateway', 'wp');
    assert.deepEqual(collectGarbage(store).deleted.map((r) => r.metadata.name), ['by-v1beta1']);
    assert.ok(sa('by-istio-gateway') && sa('by-absent-istio-gateway'));
  });

  it('counts an owner of the same name but another uid (deleted and created again) as gone', () => {
    const { store, sa } = storeWith(gateway('wp'));
    store.put(serviceAccount('stale', [{ apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway', name: 'wp', uid: 'uid-of-an-earlier-wp' }]));
    assert.deepEqual(collectGarbage(store).deleted.map((r) => r.metadata.name), ['stale']);
    assert.equal(sa('stale'), undefined);
  });

  it('leaves a dependent alone when one of its references cannot be resolved', () => {
    const { store, ref, remove, sa } = storeWith(gateway('wp'));
    const gone = ref('Gateway', 'wp');
    remove('Gateway', 'wp');
    store.put(serviceAccount('unknown-kind', [gone, { apiVersion: 'example.com/v1', kind: 'Widget', name: 'w', uid: 'uid-w' }]));
    store.put(serviceAccount('no-uid', [gone, { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway', name: 'wp' }]));
    // A cluster-scoped object cannot be owned by a namespaced one.
    store.put({ apiVersion: 'gateway.networking.k8s.io/v1', kind: 'GatewayClass', metadata: { name: 'c', ownerReferences: [gone] }, spec: { controllerName: 'x' } });
    assert.deepEqual(collectGarbage(store), { deleted: [], trimmed: [] });
    assert.ok(sa('unknown-kind') && sa('no-uid') && store.get('GatewayClass', undefined, 'c'));
    assert.equal(sa('unknown-kind')?.metadata.ownerReferences?.length, 2, 'nothing trimmed either');
  });

  it('resolves a cluster-scoped owner of a namespaced dependent, and follows a chain of owners in one collection', () => {
    const { store, ref, remove, sa } = storeWith({ apiVersion: 'gateway.networking.k8s.io/v1', kind: 'GatewayClass', metadata: { name: 'cls' }, spec: { controllerName: 'x' } });
    store.put(serviceAccount('z-parent', [ref('GatewayClass', 'cls')]));
    // Listed before its owner, so only a second pass finds the owner gone.
    store.put(serviceAccount('a-child', [{ apiVersion: 'v1', kind: 'ServiceAccount', name: 'z-parent', uid: sa('z-parent')!.metadata.uid! }]));
    assert.deepEqual(collectGarbage(store), { deleted: [], trimmed: [] });
    remove('GatewayClass', 'cls');
    assert.deepEqual(collectGarbage(store).deleted.map((r) => r.metadata.name), ['z-parent', 'a-child']);
  });
});
