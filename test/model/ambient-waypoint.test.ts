// The ambient index with waypoints, through a real ConfigStore: when a waypoint Gateway becomes usable (its Service
// plus a Ready pod labelled gateway.networking.k8s.io/gateway-name), what Services and workloads that name it
// (istio.io/use-waypoint) are sent to ztunnel, the waypoint's own xDS collection, the statuses istiod writes
// (Service WaypointBound, Gateway, GatewayClass, WaypointAccepted), and that every change emits exactly what changed.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Resource } from '../../src/api/types.js';
import { AmbientIndex, type AmbientChange, type ObjectStatus } from '../../src/model/ambient.js';
import { ConfigStore } from '../../src/model/store.js';
import { TYPE_ADDRESS, TYPE_AUTHORIZATION, TYPE_WAYPOINT, type Address, type WaypointResource } from '../../src/xds/types.js';
import { parseYaml } from './helpers.js';

const NOW = '2026-01-01T00:00:00Z';
const clock = () => new Date(NOW);

// A namespace enrolled in a service waypoint, the waypoint (Gateway, its Service and a Ready pod, as istiod's
// deployment controller creates them), a Service and pod using it, a Deployment naming it, and policies of each kind.
const SCENARIO = `
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {istio.io/dataplane-mode: ambient, istio.io/use-waypoint: wp}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: istio-waypoint, generation: 1}
spec: {controllerName: istio.io/mesh-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: wp, namespace: shop, generation: 2}
spec:
  gatewayClassName: istio-waypoint
  listeners: [{name: mesh, port: 15008, protocol: HBONE}]
---
apiVersion: v1
kind: Service
metadata:
  name: wp
  namespace: shop
  labels: {gateway.istio.io/managed: istio.io-mesh-controller, gateway.networking.k8s.io/gateway-name: wp}
spec:
  selector: {gateway.networking.k8s.io/gateway-name: wp}
  clusterIP: 10.96.0.100
  ports: [{name: status-port, port: 15021, appProtocol: tcp}, {name: mesh, port: 15008, appProtocol: hbone}]
---
apiVersion: v1
kind: Pod
metadata:
  name: wp-1
  namespace: shop
  uid: uid-wp-1
  labels: {gateway.istio.io/managed: istio.io-mesh-controller, gateway.networking.k8s.io/gateway-name: wp}
spec: {serviceAccountName: wp, containers: [{name: istio-proxy}]}
status: {podIP: 10.1.0.100, conditions: [{type: Ready, status: "True"}]}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop, generation: 1}
spec:
  selector: {app: web}
  clusterIP: 10.96.0.1
  ports: [{name: http, port: 80}, {name: grpc-api, port: 9090}, {port: 3306}]
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: shop, uid: uid-web-1, labels: {app: web}}
spec: {serviceAccountName: web, containers: [{name: app}]}
status: {podIP: 10.1.0.1, conditions: [{type: Ready, status: "True"}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: batch, namespace: shop}
spec:
  selector: {matchLabels: {app: batch}}
  template: {metadata: {labels: {app: batch, istio.io/use-waypoint: wp}}, spec: {containers: [{name: c}]}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: gw-policy, namespace: shop}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: wp}]
  action: DENY
  rules: [{to: [{operation: {methods: [DELETE]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: class-policy, namespace: istio-system}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: GatewayClass, name: istio-waypoint}]
  rules: [{from: [{source: {namespaces: [shop]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: svc-policy, namespace: shop, annotations: {istio.io/dry-run: "true"}}
spec:
  targetRefs: [{kind: Service, name: web}]
  rules: [{to: [{operation: {paths: [/admin]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ext, namespace: shop}
spec:
  targetRefs: [{kind: Service, name: web}]
  action: CUSTOM
  provider: {name: opa}
  rules: [{}]
`;

const SCENARIO_DOCS = () => parseYaml(SCENARIO);
const WEB = 'shop/web.shop.svc.cluster.local';
const WEB_POD = 'Kubernetes//Pod/shop/web-1';
const WP_POD = 'Kubernetes//Pod/shop/wp-1';
const WP_ADDRESS = { hostname: { namespace: 'shop', hostname: 'wp.shop.svc.cluster.local' }, hboneMtlsPort: 15008 };
const P = 'shop/wp/';

function setup(extra = '') {
  const store = new ConfigStore();
  store.apply(parseYaml(SCENARIO + extra));
  const index = new AmbientIndex(store, {}, clock);
  const changes: AmbientChange[] = [];
  const statusChanges: ObjectStatus[][] = [];
  index.onChange((c) => changes.push(c));
  index.onStatusChange((s) => statusChanges.push(s));
  const names = (typeUrl: string, which: 'upserted' | 'removed') =>
    changes
      .filter((c) => c.typeUrl === typeUrl)
      .flatMap((c) => (which === 'upserted' ? [...c.upserted.keys()] : c.removed))
      .sort();
  return {
    store,
    index,
    changes,
    statusChanges,
    names,
    clear: () => void ((changes.length = 0), (statusChanges.length = 0)),
    address: (key: string) => index.snapshot(TYPE_ADDRESS).get(key) as Address | undefined,
    status: (kind: string, namespace: string, name: string) => index.statuses().find((s) => s.kind === kind && s.namespace === namespace && s.name === name),
    /** Applies a change of labels (or any field) to an object of the scenario. */
    edit: (kind: string, namespace: string, name: string, change: (r: any) => void) => {
      const r = structuredClone(store.get(`${kind}/${namespace}/${name}`)!);
      change(r);
      store.apply([r as Resource]);
    },
  };
}

const bound = (message = 'Successfully attached to waypoint shop/wp') => ({ type: 'istio.io/WaypointBound', status: 'True', reason: 'WaypointAccepted', message, lastTransitionTime: '2026-01-01T00:00:00Z', observedGeneration: 1 });

describe('ambient index: a usable waypoint', () => {
  const t = setup();

  it('binds a Service of its namespace: waypoint address on the Service, WaypointBound=True', () => {
    assert.deepEqual(t.address(WEB)?.service?.waypoint, WP_ADDRESS);
    assert.deepEqual(t.status('Service', 'shop', 'web'), {
      kind: 'Service',
      namespace: 'shop',
      name: 'web',
      conditions: [bound()],
      ownedConditions: ['istio.io/WaypointBound'],
    });
  });

  it("binds nothing that is the waypoint's own, and workloads only with waypoint-for workload|all", () => {
    assert.equal(t.address('shop/wp.shop.svc.cluster.local')?.service?.waypoint, undefined);
    assert.equal(t.status('Service', 'shop', 'wp'), undefined);
    assert.equal(t.address(WP_POD)?.workload?.waypoint, undefined);
    assert.equal(t.address(WEB_POD)?.workload?.waypoint, undefined);
    const replicas = t.index.allWorkloads().filter((w) => w.workloadName === 'batch');
    assert.equal(replicas.length, 1);
    assert.equal(replicas[0]!.waypoint, undefined);
  });

  it('reports the Gateway and its GatewayClass', () => {
    const gw = t.status('Gateway', 'shop', 'wp')!;
    assert.deepEqual(
      gw.conditions.map((c) => [c.type, c.status, c.reason, c.message, c.observedGeneration]),
      [
        ['Accepted', 'True', 'Accepted', 'Resource accepted', 2],
        ['Programmed', 'True', 'Programmed', 'Resource programmed, assigned to service(s) wp.shop.svc.cluster.local:15008', 2],
        ['ResolvedRefs', 'True', 'ResolvedRefs', 'All references resolved', 2],
      ],
    );
    assert.deepEqual(gw.addresses, [
      { type: 'IPAddress', value: '10.96.0.100' },
      { type: 'Hostname', value: 'wp.shop.svc.cluster.local' },
    ]);
    assert.deepEqual(gw.listeners?.map((l) => [l.name, l.attachedRoutes, l.conditions.map((c) => `${c.type}=${c.status}`)]), [['mesh', 0, ['Accepted=True', 'Conflicted=False', 'Programmed=True', 'ResolvedRefs=True']]]);
    assert.ok(gw.listeners![0]!.conditions.every((c) => c.lastTransitionTime === '2026-01-01T00:00:00Z'));
    assert.deepEqual(t.status('GatewayClass', '', 'istio-waypoint')?.conditions, [
      { type: 'Accepted', status: 'True', reason: 'Accepted', message: 'Handled by Istio controller', observedGeneration: 1, lastTransitionTime: '2026-01-01T00:00:00Z' },
    ]);
  });

  it("serves the waypoint's collection: itself, each bound Service, each referenced policy; never CUSTOM", () => {
    const snap = t.index.snapshot(TYPE_WAYPOINT) as Map<string, WaypointResource>;
    assert.deepEqual([...snap.keys()].sort(), [
      `${P}policy/istio-system/class-policy`,
      `${P}policy/shop/gw-policy`,
      `${P}policy/shop/svc-policy`,
      `${P}service/shop/web.shop.svc.cluster.local`,
      `${P}waypoint`,
    ]);
    assert.deepEqual(snap.get(`${P}waypoint`), {
      waypoint: { name: 'wp', namespace: 'shop', hostname: 'wp.shop.svc.cluster.local', trustDomain: 'cluster.local', trafficType: 'SERVICE', policies: ['istio-system/class-policy', 'shop/gw-policy'] },
    });
    assert.deepEqual(snap.get(`${P}service/shop/web.shop.svc.cluster.local`), {
      service: {
        name: 'web',
        namespace: 'shop',
        hostname: 'web.shop.svc.cluster.local',
        ports: [
          { port: 80, name: 'http', protocol: 'HTTP' },
          { port: 9090, name: 'grpc-api', protocol: 'GRPC' },
          { port: 3306, name: '', protocol: 'TCP' },
        ],
        policies: ['shop/svc-policy'],
        routes: [],
      },
    });
    assert.deepEqual(snap.get(`${P}policy/shop/svc-policy`)?.policy, { name: 'svc-policy', namespace: 'shop', action: 'ALLOW', rules: [{ to: [{ operation: { paths: ['/admin'] } }] }], dryRun: true });
    assert.equal(snap.get(`${P}policy/shop/gw-policy`)?.policy?.action, 'DENY');
    // targetRefs policies are the waypoint's, not ztunnel's.
    assert.deepEqual([...t.index.snapshot(TYPE_AUTHORIZATION).keys()], []);
  });

  it('reports WaypointAccepted per policy, CUSTOM as not enforced', () => {
    const accepted = (name: string, ns = 'shop') => t.status('AuthorizationPolicy', ns, name)!.conditions.map((c) => [c.type, c.status, c.reason, c.message]);
    assert.deepEqual(accepted('gw-policy'), [['WaypointAccepted', 'True', 'Accepted', 'bound to shop/wp']]);
    assert.deepEqual(accepted('class-policy', 'istio-system'), [['WaypointAccepted', 'True', 'Accepted', 'bound to istio-waypoint']]);
    // As in istiod, the dry-run check comes before the targetRefs one, so a dry-run targetRefs policy is reported to
    // ztunnel's column too (authorization.go convertAuthorizationPolicy).
    assert.deepEqual(accepted('svc-policy'), [
      ['ZtunnelAccepted', 'False', 'UnsupportedValue', `found policy "shop/svc-policy" using dry-run annotation, but support for ambient dry-run authorizationPolicies isn't enabled`],
      ['WaypointAccepted', 'True', 'Accepted', 'bound to shop/wp'],
    ]);
    assert.deepEqual(accepted('ext').map((c) => c.slice(0, 3)), [['WaypointAccepted', 'False', 'UnsupportedValue']]);
  });
});

describe('ambient index: waypoint changes', () => {
  it("its pod going unready unbinds its users, and they are bound again when it is Ready", () => {
    const t = setup();
    t.edit('Pod', 'shop', 'wp-1', (p) => (p.status.conditions[0].status = 'False'));
    assert.equal(t.address(WEB)?.service?.waypoint, undefined);
    // Only the Service that lost its waypoint and the waypoint pod (now unhealthy) change for ztunnel.
    assert.deepEqual(t.names(TYPE_ADDRESS, 'upserted'), [WP_POD, WEB].sort());
    assert.deepEqual(t.status('Service', 'shop', 'web')?.conditions, [
      { type: 'istio.io/WaypointBound', status: 'False', reason: 'WaypointIsNotReady', message: 'waypoint "shop/wp" is not ready', observedGeneration: 1, lastTransitionTime: NOW },
    ]);
    const programmed = t.status('Gateway', 'shop', 'wp')!.conditions[1]!;
    assert.deepEqual([programmed.status, programmed.reason], ['False', 'AddressNotAssigned']);
    assert.equal(t.status('Gateway', 'shop', 'wp')!.addresses, undefined);
    // The waypoint keeps its own configuration; the Service it no longer serves, and that Service's policy, go.
    assert.deepEqual(t.names(TYPE_WAYPOINT, 'removed'), [`${P}policy/shop/svc-policy`, `${P}service/shop/web.shop.svc.cluster.local`]);
    assert.deepEqual(t.names(TYPE_WAYPOINT, 'upserted'), []);
    const reason = (name: string) => t.status('AuthorizationPolicy', 'shop', name)!.conditions.find((c) => c.type === 'WaypointAccepted')!.reason;
    assert.deepEqual([reason('gw-policy'), reason('svc-policy')], ['TargetNotFound', 'AncestorNotBound']);

    t.clear();
    t.edit('Pod', 'shop', 'wp-1', (p) => (p.status.conditions[0].status = 'True'));
    assert.deepEqual(t.address(WEB)?.service?.waypoint, WP_ADDRESS);
    assert.deepEqual(t.names(TYPE_WAYPOINT, 'upserted'), [`${P}policy/shop/svc-policy`, `${P}service/shop/web.shop.svc.cluster.local`]);
    assert.deepEqual(t.status('Service', 'shop', 'web')?.conditions.map((c) => c.status), ['True']);
  });

  it('a waypoint once reported ready stays bound when its pods fail: its Services fail closed, not around it', () => {
    const t = setup();
    // What the cluster holds once the control plane wrote the Gateway's status: its addresses, read back.
    t.edit('Gateway', 'shop', 'wp', (g) => (g.status = { addresses: [{ type: 'IPAddress', value: '10.96.0.100' }] }));
    t.clear();
    t.edit('Pod', 'shop', 'wp-1', (p) => (p.status.conditions[0].status = 'False'));
    assert.deepEqual(t.address(WEB)?.service?.waypoint, WP_ADDRESS, 'still sent through the waypoint');
    assert.deepEqual(t.status('Service', 'shop', 'web')?.conditions.map((c) => c.status), ['True']);
    const gw = t.status('Gateway', 'shop', 'wp')!;
    assert.deepEqual([gw.conditions[1]!.status, gw.conditions[1]!.reason], ['False', 'AddressNotAssigned'], 'Programmed says no instance is ready');
    assert.deepEqual(gw.addresses?.map((a) => a.value), ['10.96.0.100', 'wp.shop.svc.cluster.local'], 'addresses are never taken back');
    assert.deepEqual(t.names(TYPE_WAYPOINT, 'removed'), []);
  });

  it('waypoint-for all binds workloads too; workload unbinds the Service with UnsupportedTrafficType', () => {
    const t = setup();
    t.edit('Gateway', 'shop', 'wp', (g) => (g.metadata.labels = { 'istio.io/waypoint-for': 'all' }));
    assert.deepEqual(t.address(WEB_POD)?.workload?.waypoint, WP_ADDRESS);
    assert.deepEqual(t.index.allWorkloads().find((w) => w.workloadName === 'batch')?.waypoint, WP_ADDRESS);
    assert.deepEqual(t.address(WEB)?.service?.waypoint, WP_ADDRESS);
    assert.equal(t.address(WP_POD)?.workload?.waypoint, undefined);
    assert.equal((t.index.snapshot(TYPE_WAYPOINT).get(`${P}waypoint`) as WaypointResource).waypoint?.trafficType, 'ALL');

    t.edit('Gateway', 'shop', 'wp', (g) => (g.metadata.labels = { 'istio.io/waypoint-for': 'workload' }));
    assert.deepEqual(t.address(WEB_POD)?.workload?.waypoint, WP_ADDRESS);
    assert.equal(t.address(WEB)?.service?.waypoint, undefined);
    assert.deepEqual(t.status('Service', 'shop', 'web')?.conditions.map((c) => [c.status, c.reason, c.message]), [
      ['False', 'UnsupportedTrafficType', 'attempting to bind to traffic type "service" which the waypoint "shop/wp" does not support'],
    ]);
    assert.equal(t.index.snapshot(TYPE_WAYPOINT).has(`${P}service/shop/web.shop.svc.cluster.local`), false);
  });

  it('a Service in another namespace binds once allowedRoutes admits it', () => {
    const t = setup(`
---
apiVersion: v1
kind: Namespace
metadata: {name: other, labels: {istio.io/dataplane-mode: ambient}}
---
apiVersion: v1
kind: Service
metadata: {name: api, namespace: other, labels: {istio.io/use-waypoint: wp, istio.io/use-waypoint-namespace: shop}}
spec: {clusterIP: 10.96.1.1, ports: [{name: http, port: 8080}]}
`);
    assert.deepEqual(t.status('Service', 'other', 'api')?.conditions.map((c) => c.reason), ['AttachmentDenied']);
    t.edit('Gateway', 'shop', 'wp', (g) => (g.spec.listeners[0].allowedRoutes = { namespaces: { from: 'All' } }));
    assert.deepEqual(t.address('other/api.other.svc.cluster.local')?.service?.waypoint, WP_ADDRESS);
    assert.deepEqual(t.status('Service', 'other', 'api')?.conditions.map((c) => c.reason), ['WaypointAccepted']);
    assert.deepEqual(t.names(TYPE_WAYPOINT, 'upserted'), [`${P}service/other/api.other.svc.cluster.local`]);
  });

  it('emits only what changed', () => {
    const t = setup();
    // A second Ready waypoint pod: its own workload, nothing else.
    t.store.apply(parseYaml(SCENARIO.split('---').find((d) => d.includes('name: wp-1'))!.replace(/wp-1/g, 'wp-2')));
    assert.deepEqual(t.names(TYPE_ADDRESS, 'upserted'), ['Kubernetes//Pod/shop/wp-2']);
    assert.equal(t.changes.filter((c) => c.typeUrl !== TYPE_ADDRESS).length, 0);
    assert.equal(t.statusChanges.length, 0);

    // A new policy targeting the bound Service: its resource and the Service's list; nothing for ztunnel.
    t.clear();
    t.store.apply(parseYaml(`
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: more, namespace: shop}
spec: {targetRefs: [{kind: Service, name: web}], action: DENY, rules: [{}]}`));
    assert.deepEqual(t.names(TYPE_WAYPOINT, 'upserted'), [`${P}policy/shop/more`, `${P}service/shop/web.shop.svc.cluster.local`]);
    assert.deepEqual(t.changes.map((c) => c.typeUrl), [TYPE_WAYPOINT]);
    assert.deepEqual(t.statusChanges.flat().map((s) => `${s.kind}/${s.name}`), ['AuthorizationPolicy/more']);

    // A port of the bound Service: its Address and its waypoint resource.
    t.clear();
    t.edit('Service', 'shop', 'web', (s) => s.spec.ports.push({ name: 'tcp-raw', port: 7000 }));
    assert.deepEqual(t.names(TYPE_ADDRESS, 'upserted'), [WEB_POD, WEB].sort());
    assert.deepEqual(t.names(TYPE_WAYPOINT, 'upserted'), [`${P}service/shop/web.shop.svc.cluster.local`]);
    assert.equal(t.statusChanges.length, 0);

    // The namespace no longer names the waypoint: the Service loses it and its condition, the policy is dropped.
    t.clear();
    t.edit('Namespace', '', 'shop', (n) => delete n.metadata.labels['istio.io/use-waypoint']);
    assert.deepEqual(t.names(TYPE_ADDRESS, 'upserted'), [WEB]);
    assert.deepEqual(t.names(TYPE_WAYPOINT, 'removed'), [`${P}policy/shop/more`, `${P}policy/shop/svc-policy`, `${P}service/shop/web.shop.svc.cluster.local`]);
    const web = t.statusChanges.flat().find((s) => s.kind === 'Service' && s.name === 'web');
    assert.deepEqual(web, { kind: 'Service', namespace: 'shop', name: 'web', conditions: [], ownedConditions: ['istio.io/WaypointBound'] });
    assert.equal(t.status('Service', 'shop', 'web'), undefined);
  });

  it('deleting the Gateway removes its collection and status; its users report it not ready', () => {
    const t = setup();
    t.store.remove(['Gateway/shop/wp']);
    assert.deepEqual([...t.index.snapshot(TYPE_WAYPOINT).keys()], []);
    assert.equal(t.status('Gateway', 'shop', 'wp'), undefined);
    assert.equal(t.index.waypoint('shop/wp'), undefined);
    assert.equal(t.address(WEB)?.service?.waypoint, undefined);
    assert.deepEqual(t.status('Service', 'shop', 'web')?.conditions.map((c) => c.reason), ['WaypointIsNotReady']);
  });

  it('lastTransitionTime moves only when a condition changes status', () => {
    let now = new Date(NOW);
    const store = new ConfigStore();
    store.apply(parseYaml(SCENARIO));
    const index = new AmbientIndex(store, {}, () => now);
    const web = () => index.statuses().find((s) => s.kind === 'Service' && s.name === 'web')!.conditions[0]!;
    now = new Date('2026-01-02T00:00:00Z');
    // A new observedGeneration with the same status keeps the time (Kubernetes' rule).
    const svc = structuredClone(store.get('Service/shop/web')!);
    svc.metadata.generation = 2;
    store.apply([svc]);
    assert.deepEqual([web().observedGeneration, web().lastTransitionTime], [2, NOW]);
    store.remove(['Pod/shop/wp-1']);
    assert.deepEqual([web().status, web().lastTransitionTime], ['False', '2026-01-02T00:00:00Z']);
  });
});

it('an incremental build equals a full rebuild (documents applied one by one in reverse order)', () => {
  const docs = parseYaml(SCENARIO);
  const whole = new ConfigStore();
  whole.apply(docs);
  const expected = new AmbientIndex(whole, {}, clock);

  const piecewise = new ConfigStore();
  const incremental = new AmbientIndex(piecewise, {}, clock);
  for (const d of [...docs].reverse()) piecewise.apply([d]);
  for (const type of [TYPE_ADDRESS, TYPE_AUTHORIZATION, TYPE_WAYPOINT]) assert.deepEqual(incremental.snapshot(type), expected.snapshot(type), type);
  assert.deepEqual(incremental.statuses(), expected.statuses());
  // And the scenario is not trivially empty.
  assert.equal(expected.snapshot(TYPE_WAYPOINT).size, 5);
  assert.equal(expected.statuses().length, 7);

  // Taken apart again in the original order, nothing is left.
  for (const d of docs) piecewise.remove([`${d.kind}/${d.metadata.namespace ?? ''}/${d.metadata.name}`]);
  for (const type of [TYPE_ADDRESS, TYPE_AUTHORIZATION, TYPE_WAYPOINT]) assert.equal(incremental.snapshot(type).size, 0, type);
  assert.deepEqual(incremental.statuses(), []);
});

it('after each edit of a waypoint scenario, the incremental index equals one built afresh', () => {
  const t = setup(`
---
apiVersion: v1
kind: Namespace
metadata: {name: other, labels: {istio.io/dataplane-mode: ambient, team: a}}
---
apiVersion: v1
kind: Service
metadata: {name: api, namespace: other, labels: {istio.io/use-waypoint: wp, istio.io/use-waypoint-namespace: shop}}
spec: {clusterIP: 10.96.1.1, ports: [{name: http, port: 8080}]}
`);
  const edits: [string, () => void][] = [
    ['GatewayClass waypoint-for all', () => t.edit('GatewayClass', '', 'istio-waypoint', (c) => (c.metadata.labels = { 'istio.io/waypoint-for': 'all' }))],
    ['allowedRoutes Selector team=a', () => t.edit('Gateway', 'shop', 'wp', (g) => (g.spec.listeners[0].allowedRoutes = { namespaces: { from: 'Selector', selector: { matchLabels: { team: 'a' } } } }))],
    ['namespace other relabelled', () => t.edit('Namespace', '', 'other', (n) => (n.metadata.labels.team = 'b'))],
    ['Gateway waypoint-for service', () => t.edit('Gateway', 'shop', 'wp', (g) => (g.metadata.labels = { 'istio.io/waypoint-for': 'service' }))],
    ['Service web opts out', () => t.edit('Service', 'shop', 'web', (s) => (s.metadata.labels = { 'istio.io/use-waypoint': 'none' }))],
    ['Service web opts in again', () => t.edit('Service', 'shop', 'web', (s) => (s.metadata.labels = {}))],
    ['policy retargeted to the Gateway', () => t.edit('AuthorizationPolicy', 'shop', 'svc-policy', (p) => (p.spec.targetRefs = [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'wp' }]))],
    ['waypoint Service removed', () => t.store.remove(['Service/shop/wp'])],
    ['name-override to a Service that does not exist', () => t.edit('Gateway', 'shop', 'wp', (g) => (g.metadata.annotations = { 'gateway.istio.io/name-override': 'wp-svc' }))],
    ['the overridden Service appears', () => t.store.apply(parseYaml(SCENARIO.split('---').find((d) => d.includes('clusterIP: 10.96.0.100'))!.replace('name: wp\n', 'name: wp-svc\n')))],
    ['Gateway changes class', () => t.edit('Gateway', 'shop', 'wp', (g) => (g.spec.gatewayClassName = 'istio'))],
    ['Gateway back to istio-waypoint', () => t.edit('Gateway', 'shop', 'wp', (g) => (g.spec.gatewayClassName = 'istio-waypoint'))],
    ['waypoint pod removed', () => t.store.remove(['Pod/shop/wp-1'])],
  ];
  for (const [what, edit] of edits) {
    edit();
    const fresh = new AmbientIndex(t.store, {}, clock);
    for (const type of [TYPE_ADDRESS, TYPE_AUTHORIZATION, TYPE_WAYPOINT]) assert.deepEqual(t.index.snapshot(type), fresh.snapshot(type), `${what}: ${type}`);
    assert.deepEqual(t.index.statuses(), fresh.statuses(), `${what}: statuses`);
    fresh.close();
  }
  // The name-override step bound the Services to the waypoint under its new hostname.
  assert.equal(t.index.waypoint('shop/wp')?.hostname, 'wp-svc.shop.svc.cluster.local');
});

// The waypoint controller creates GatewayClass istio-waypoint after the configuration is loaded, so a policy
// targeting it usually exists first (tests/integration/ambient/baseline_test.go TestAuthorizationWaypointDefaultDeny).
it('a policy targeting GatewayClass istio-waypoint is re-evaluated when the class appears or goes', () => {
  const store = new ConfigStore();
  store.apply(SCENARIO_DOCS().filter((d) => d.metadata.name === 'class-policy'));
  const index = new AmbientIndex(store, {}, clock);
  const reason = () => index.statuses().find((s) => s.name === 'class-policy')!.conditions[0]!.reason;
  assert.equal(reason(), 'TargetNotFound');
  store.apply(SCENARIO_DOCS().filter((d) => d.kind === 'GatewayClass'));
  assert.equal(reason(), 'Accepted');
  store.remove(['GatewayClass//istio-waypoint']);
  assert.equal(reason(), 'TargetNotFound');
});

/** A real store that notes which AuthorizationPolicies the index reads: a policy never read was not recomputed. */
class PolicyReadsStore extends ConfigStore {
  readonly reads = new Set<string>();
  override get(key: string): Resource | undefined {
    if (key.startsWith('AuthorizationPolicy/')) this.reads.add(key);
    return super.get(key);
  }
}

describe('ambient index: a change reaches only the targetRefs policies that name it', () => {
  // The waypoint scenario plus a namespace of 40 Services without a waypoint, each targeted by its own policy, one
  // policy targeting two of them, and one targeting a Gateway that does not exist.
  const BULK = 40;
  const bulk = [
    `
---
apiVersion: v1
kind: Namespace
metadata: {name: bulk, labels: {istio.io/dataplane-mode: ambient}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: both, namespace: bulk}
spec: {targetRefs: [{kind: Service, name: s1}, {kind: Service, name: s2}], rules: [{}]}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: gw, namespace: bulk}
spec: {targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: elsewhere}], rules: [{}]}`,
  ];
  for (let i = 0; i < BULK; i++) {
    bulk.push(`
---
apiVersion: v1
kind: Service
metadata: {name: s${i}, namespace: bulk}
spec: {clusterIP: 10.96.2.${i + 1}, ports: [{name: http, port: 80}]}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: p${i}, namespace: bulk}
spec: {targetRefs: [{kind: Service, name: s${i}}], rules: [{}]}`);
  }

  function setupCounting() {
    const store = new PolicyReadsStore();
    store.apply(parseYaml(SCENARIO + bulk.join('')));
    const index = new AmbientIndex(store, {}, clock);
    const statusChanges: ObjectStatus[][] = [];
    index.onStatusChange((s) => statusChanges.push(s));
    const edit = (kind: string, namespace: string, name: string, change: (r: any) => void) => {
      const r = structuredClone(store.get(`${kind}/${namespace}/${name}`)!);
      change(r);
      store.reads.clear();
      statusChanges.length = 0;
      store.apply([r as Resource]);
    };
    const reads = () => [...store.reads].sort();
    const emitted = () => statusChanges.flat().map((s) => `${s.kind}/${s.namespace}/${s.name}`);
    const accepted = (ns: string, name: string) => index.statuses().find((s) => s.kind === 'AuthorizationPolicy' && s.namespace === ns && s.name === name)?.conditions.map((c) => c.reason);
    return { store, index, edit, reads, emitted, accepted };
  }

  it('a Service change recomputes only the policies targeting that Service', () => {
    const t = setupCounting();
    assert.deepEqual(t.accepted('bulk', 'p7'), ['AncestorNotBound']);
    assert.deepEqual(t.accepted('bulk', 'gw'), ['TargetNotFound']);

    t.edit('Service', 'bulk', 's7', (s) => s.spec.ports.push({ name: 'tcp', port: 7000 }));
    assert.deepEqual(t.reads(), ['AuthorizationPolicy/bulk/p7']);
    assert.deepEqual(t.emitted(), []);

    t.edit('Service', 'bulk', 's2', (s) => (s.metadata.labels = { team: 'x' }));
    assert.deepEqual(t.reads(), ['AuthorizationPolicy/bulk/both', 'AuthorizationPolicy/bulk/p2']);

    // Removed: its policies, and only they, report it missing.
    t.store.reads.clear();
    const statusesBefore = t.index.statuses().length;
    t.store.remove(['Service/bulk/s1']);
    assert.deepEqual(t.reads(), ['AuthorizationPolicy/bulk/both', 'AuthorizationPolicy/bulk/p1']);
    assert.deepEqual(t.accepted('bulk', 'p1'), ['TargetNotFound']);
    assert.deepEqual(t.accepted('bulk', 'both'), ['Invalid']);
    assert.equal(t.index.statuses().length, statusesBefore);
  });

  it('a bound Service or a waypoint reaches its own policies and its waypoint, not unrelated ones', () => {
    const t = setupCounting();
    const unrelated = (reads: string[]) => reads.filter((k) => k.startsWith('AuthorizationPolicy/bulk/'));

    // The bound Service: its policies' status, and the waypoint's resources (its own policies and the Service's).
    t.edit('Service', 'shop', 'web', (s) => s.spec.ports.push({ name: 'tcp-raw', port: 7000 }));
    assert.deepEqual(unrelated(t.reads()), []);
    assert.ok(t.reads().includes('AuthorizationPolicy/shop/svc-policy') && t.reads().includes('AuthorizationPolicy/shop/ext'));

    // The Service opts out of the waypoint: its policy is no longer bound (CUSTOM ext never is), nothing else changes.
    t.edit('Service', 'shop', 'web', (s) => (s.metadata.labels = { 'istio.io/use-waypoint': 'none' }));
    assert.deepEqual(unrelated(t.reads()), []);
    assert.deepEqual(t.emitted(), ['AuthorizationPolicy/shop/svc-policy', 'Service/shop/web']);
    assert.deepEqual(t.accepted('shop', 'svc-policy'), ['UnsupportedValue', 'AncestorNotBound']);

    // The waypoint stops being usable: the policy targeting it reports so; bulk/gw (another Gateway) is not read.
    t.edit('Pod', 'shop', 'wp-1', (p) => (p.status.conditions[0].status = 'False'));
    assert.deepEqual(unrelated(t.reads()), []);
    assert.deepEqual(t.accepted('shop', 'gw-policy'), ['TargetNotFound']);

    // A policy retargeted from one bulk Service to another: both Services' changes reach it afterwards, by its new target.
    t.edit('AuthorizationPolicy', 'bulk', 'p5', (p) => (p.spec.targetRefs = [{ kind: 'Service', name: 's6' }]));
    t.edit('Service', 'bulk', 's5', (s) => (s.metadata.labels = { team: 'x' }));
    assert.deepEqual(t.reads(), []);
    t.edit('Service', 'bulk', 's6', (s) => (s.metadata.labels = { team: 'x' }));
    assert.deepEqual(t.reads(), ['AuthorizationPolicy/bulk/p5', 'AuthorizationPolicy/bulk/p6']);
  });
});
