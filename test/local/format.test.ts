// kubectl's tables for the Gateway API and Istio kinds (the CRDs' printer columns) and the tabwriter layouts behind them.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { AuthorizationPolicy, Gateway, GatewayClass, PeerAuthentication, ServiceEntry, VirtualService, WorkloadEntry } from '../../src/api/types.js';
import { resourceTable, table } from '../../src/local/format.js';

// Old enough that AGE reads "3d" however long the test takes.
const created = new Date(Date.now() - 3 * 86_400_000 - 1_800_000).toISOString();

function gateway(name: string, namespace: string, status?: Gateway['status']): Gateway {
  return {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'Gateway',
    metadata: { name, namespace, creationTimestamp: created },
    spec: { gatewayClassName: 'istio-waypoint', listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE' }] },
    ...(status ? { status } : {}),
  };
}

const condition = (type: string, status: 'True' | 'False' | 'Unknown') => ({ type, status, reason: type, message: '', lastTransitionTime: created });

const programmed = gateway('waypoint', 'orders', {
  addresses: [
    { type: 'IPAddress', value: '10.96.0.12' },
    { type: 'Hostname', value: 'waypoint.orders.svc.cluster.local' },
  ],
  conditions: [condition('Accepted', 'True'), condition('Programmed', 'True'), condition('ResolvedRefs', 'True')],
});
const failing = gateway('broken', 'orders', { conditions: [condition('Accepted', 'True'), condition('Programmed', 'False')] });
const fresh = gateway('fresh', 'payments');

const plain = { wide: false, allNamespaces: false, qualified: false };

describe('ServiceEntry and WorkloadEntry tables (Istio CRDs\' printer columns)', () => {
  it('ServiceEntry: HOSTS as kubectl prints an array, LOCATION, RESOLUTION, AGE; WorkloadEntry: AGE then ADDRESS', () => {
    const se: ServiceEntry = {
      apiVersion: 'networking.istio.io/v1', kind: 'ServiceEntry', metadata: { name: 'ext', namespace: 'shop', creationTimestamp: created },
      spec: { hosts: ['a.example.com', 'b.example.com'], location: 'MESH_EXTERNAL', resolution: 'DNS' },
    };
    const bare: ServiceEntry = { apiVersion: 'networking.istio.io/v1', kind: 'ServiceEntry', metadata: { name: 'bare', namespace: 'shop', creationTimestamp: created }, spec: { hosts: ['c.example.com'] } };
    assert.equal(
      resourceTable([se, bare], plain),
      [
        'NAME   HOSTS                               LOCATION        RESOLUTION   AGE',
        'ext    ["a.example.com","b.example.com"]   MESH_EXTERNAL   DNS          3d',
        'bare   ["c.example.com"]                                                3d',
        '',
      ].join('\n'),
    );
    const we: WorkloadEntry = { apiVersion: 'networking.istio.io/v1', kind: 'WorkloadEntry', metadata: { name: 'vm', namespace: 'shop', creationTimestamp: created }, spec: { address: '10.0.0.5' } };
    assert.equal(resourceTable([we], plain), ['NAME   AGE   ADDRESS', 'vm     3d    10.0.0.5', ''].join('\n'));
  });
});

describe('policy and routing tables (Istio CRDs\' printer columns)', () => {
  it('AuthorizationPolicy ACTION (empty when unset), PeerAuthentication MODE, VirtualService GATEWAYS and HOSTS as JSON', () => {
    const meta = (name: string) => ({ name, namespace: 'shop', creationTimestamp: created });
    const deny: AuthorizationPolicy = { apiVersion: 'security.istio.io/v1', kind: 'AuthorizationPolicy', metadata: meta('deny'), spec: { action: 'DENY', rules: [{}] } };
    const allowAll: AuthorizationPolicy = { apiVersion: 'security.istio.io/v1', kind: 'AuthorizationPolicy', metadata: meta('allow'), spec: { rules: [{}] } };
    assert.equal(resourceTable([deny, allowAll], plain), ['NAME    ACTION   AGE', 'deny    DENY     3d', 'allow            3d', ''].join('\n'));
    const pa: PeerAuthentication = { apiVersion: 'security.istio.io/v1', kind: 'PeerAuthentication', metadata: meta('strict'), spec: { mtls: { mode: 'STRICT' } } };
    assert.equal(resourceTable([pa], plain), ['NAME     MODE     AGE', 'strict   STRICT   3d', ''].join('\n'));
    const vs: VirtualService = { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: meta('reviews'), spec: { hosts: ['reviews'], http: [] } };
    assert.equal(resourceTable([vs], plain), ['NAME      GATEWAYS   HOSTS         AGE', 'reviews              ["reviews"]   3d', ''].join('\n'));
  });
});

describe('Gateway table', () => {
  it('shows CLASS, the first address, the Programmed status and AGE; empty cells where the status has nothing', () => {
    assert.equal(
      resourceTable([programmed, failing, fresh], plain),
      [
        'NAME       CLASS            ADDRESS      PROGRAMMED   AGE',
        'waypoint   istio-waypoint   10.96.0.12   True         3d',
        'broken     istio-waypoint                False        3d',
        'fresh      istio-waypoint                             3d',
        '',
      ].join('\n'),
    );
  });

  it('puts NAMESPACE first for all namespaces, and -o wide adds nothing', () => {
    assert.equal(
      resourceTable([programmed, fresh], { wide: true, allNamespaces: true, qualified: false }),
      [
        'NAMESPACE   NAME       CLASS            ADDRESS      PROGRAMMED   AGE',
        'orders      waypoint   istio-waypoint   10.96.0.12   True         3d',
        'payments    fresh      istio-waypoint                             3d',
        '',
      ].join('\n'),
    );
  });
});

describe('GatewayClass table', () => {
  const waypointClass: GatewayClass = {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'GatewayClass',
    metadata: { name: 'istio-waypoint', creationTimestamp: created },
    spec: { controllerName: 'istio.io/mesh-controller', description: 'The default Istio waypoint GatewayClass' },
    status: { conditions: [condition('Accepted', 'True')] },
  };
  const pendingClass: GatewayClass = {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'GatewayClass',
    metadata: { name: 'other', creationTimestamp: created },
    spec: { controllerName: 'example.com/gateway-controller' },
  };

  it('shows CONTROLLER, ACCEPTED and AGE', () => {
    assert.equal(
      resourceTable([waypointClass, pendingClass], plain),
      [
        'NAME             CONTROLLER                       ACCEPTED   AGE',
        'istio-waypoint   istio.io/mesh-controller         True       3d',
        'other            example.com/gateway-controller              3d',
        '',
      ].join('\n'),
    );
  });

  it('adds DESCRIPTION (a priority-1 column) with -o wide', () => {
    assert.equal(
      resourceTable([waypointClass, pendingClass], { ...plain, wide: true }),
      [
        'NAME             CONTROLLER                       ACCEPTED   AGE   DESCRIPTION',
        'istio-waypoint   istio.io/mesh-controller         True       3d    The default Istio waypoint GatewayClass',
        'other            example.com/gateway-controller              3d',
        '',
      ].join('\n'),
    );
  });
});

describe('table layouts', () => {
  const rows = [['waypoint', 'True', '']];
  it('pads with three spaces and trims an empty last cell by default (kubectl)', () => {
    assert.equal(table(['NAME', 'STATUS', 'MESSAGE'], rows), 'NAME       STATUS   MESSAGE\nwaypoint   True\n');
  });
  it("pads with five spaces and keeps an empty last cell's padding when asked (istioctl)", () => {
    assert.equal(table(['NAME', 'STATUS', 'MESSAGE'], rows, { padding: 5, trimEnd: false }), 'NAME         STATUS     MESSAGE\nwaypoint     True       \n');
  });
});
