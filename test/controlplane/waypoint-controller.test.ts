// istiod's deployment controller for waypoints: the ServiceAccount, Deployment and Service rendered for a Gateway of
// class istio-waypoint (manifests/charts/istio-control/istio-discovery/files/waypoint.yaml,
// pilot/pkg/config/kube/gatewaycommon/testdata/deployment/waypoint.yaml), `covers`, and the WaypointController
// reconciling a ConfigStore through a ClusterWriter that records each call and stores what it applies the way a
// cluster would (with fields of its own, such as a cluster IP).
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Deployment, Gateway, GatewayClass, Resource, Service } from '../../src/api/types.js';
import { resourceKey } from '../../src/api/types.js';
import { WaypointController, covers, waypointObjects, type ClusterWriter } from '../../src/controlplane/waypoint-controller.js';
import { ConfigStore } from '../../src/model/store.js';
import { eventually } from '../support/eventually.js';
import { CapturedLog } from './helpers.js';

const OPTS = { controlPlaneAddress: '10.0.0.1:15012', trustDomain: 'example.org', clusterId: 'Kubernetes' };
const NAME = 'gateway.networking.k8s.io/gateway-name';
const CLASS = 'gateway.networking.k8s.io/gateway-class-name';
const MANAGED = 'gateway.istio.io/managed';

function gateway(name: string, opts: { uid?: string; annotations?: Record<string, string>; labels?: Record<string, string>; className?: string } = {}): Gateway {
  return {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'Gateway',
    metadata: { name, namespace: 'shop', ...(opts.uid === '' ? {} : { uid: opts.uid ?? `uid-${name}` }), labels: opts.labels ?? {}, annotations: opts.annotations ?? {} },
    spec: { gatewayClassName: opts.className ?? 'istio-waypoint', listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE' }] },
  };
}

describe('waypointObjects', () => {
  const [sa, deployment, service] = waypointObjects(gateway('wp'), OPTS);
  const owner = [{ apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway', name: 'wp', uid: 'uid-wp' }];
  const managedLabels = { [NAME]: 'wp', [CLASS]: 'istio-waypoint', [MANAGED]: 'istio.io-mesh-controller' };

  it('ServiceAccount: named after the Gateway, owned by it, labelled managed like everything istiod applies', () => {
    assert.deepEqual(sa, {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: 'wp', namespace: 'shop', labels: managedLabels, ownerReferences: owner },
    });
  });

  it("Deployment: labels, selector and pod template as Istio's waypoint.yaml", () => {
    assert.deepEqual(deployment.metadata, { name: 'wp', namespace: 'shop', labels: managedLabels, ownerReferences: owner });
    assert.deepEqual(deployment.spec.selector, { matchLabels: { [NAME]: 'wp' } });
    assert.equal(deployment.spec.replicas, undefined, 'scaling is left to the user (no replicas field)');
    assert.deepEqual(deployment.spec.template.metadata, {
      annotations: { 'istio.io/rev': 'default', 'prometheus.io/path': '/stats/prometheus', 'prometheus.io/port': '15020', 'prometheus.io/scrape': 'true' },
      labels: {
        'sidecar.istio.io/inject': 'false',
        'istio.io/dataplane-mode': 'none',
        'service.istio.io/canonical-name': 'wp',
        'service.istio.io/canonical-revision': 'latest',
        ...managedLabels,
      },
    });
  });

  it('Deployment: one istio-proxy container running `ambit proxy waypoint`', () => {
    const spec = deployment.spec.template.spec;
    assert.equal(spec.serviceAccountName, 'wp');
    assert.equal(spec.containers.length, 1);
    const c = spec.containers[0]!;
    assert.equal(c.name, 'istio-proxy');
    assert.deepEqual([c.command, c.args], [['ambit'], ['proxy', 'waypoint']]);
    assert.deepEqual(c.ports, [
      { containerPort: 15020, name: 'metrics', protocol: 'TCP' },
      { containerPort: 15021, name: 'status-port', protocol: 'TCP' },
    ]);
    const env = Object.fromEntries((c.env ?? []).map((e) => [e.name, e.value ?? `fieldRef:${e.valueFrom?.fieldRef?.fieldPath}`]));
    assert.deepEqual(env, {
      POD_NAME: 'fieldRef:metadata.name',
      POD_NAMESPACE: 'fieldRef:metadata.namespace',
      INSTANCE_IP: 'fieldRef:status.podIP',
      SERVICE_ACCOUNT: 'fieldRef:spec.serviceAccountName',
      NODE_NAME: 'fieldRef:spec.nodeName',
      GATEWAY_NAME: `fieldRef:metadata.labels['${NAME}']`,
      XDS_ADDRESS: '10.0.0.1:15012',
      CA_ADDRESS: '10.0.0.1:15012',
      TRUST_DOMAIN: 'example.org',
      ISTIO_META_CLUSTER_ID: 'Kubernetes',
    });
    assert.deepEqual(c.readinessProbe?.httpGet, { path: '/healthz/ready', port: 15021 });
    assert.equal(c.readinessProbe?.failureThreshold, 4);
    assert.equal(c.readinessProbe?.timeoutSeconds, 1);
  });

  it("Deployment: the projected istio-token volume, mounted where Istio's proxy reads it", () => {
    const spec = deployment.spec.template.spec;
    assert.deepEqual(spec.volumes, [
      { name: 'istio-token', projected: { sources: [{ serviceAccountToken: { audience: 'istio-ca', expirationSeconds: 43200, path: 'istio-token' } }] } },
    ]);
    assert.deepEqual(spec.containers[0]!.volumeMounts, [{ name: 'istio-token', mountPath: '/var/run/secrets/tokens' }]);
  });

  it('Service: status-port plus one port per listener, selecting the pods by gateway name', () => {
    assert.deepEqual(service.metadata, {
      name: 'wp',
      namespace: 'shop',
      labels: managedLabels,
      annotations: { 'networking.istio.io/traffic-distribution': 'PreferClose' },
      ownerReferences: owner,
    });
    assert.deepEqual(service.spec, {
      type: 'ClusterIP',
      selector: { [NAME]: 'wp' },
      ports: [
        { name: 'status-port', port: 15021, protocol: 'TCP', appProtocol: 'tcp' },
        { name: 'mesh', port: 15008, protocol: 'TCP', appProtocol: 'hbone' },
      ],
    });
    const extra = gateway('wp');
    extra.spec.listeners.push({ name: 'http', port: 8080, protocol: 'HTTP' });
    assert.deepEqual(waypointObjects(extra, OPTS)[2].spec.ports?.[2], { name: 'http', port: 8080, protocol: 'TCP', appProtocol: 'http' });
  });

  it('name-override and service-account annotations; istio.io/rev', () => {
    const g = gateway('wp', { annotations: { 'gateway.istio.io/name-override': 'custom', 'gateway.istio.io/service-account': 'wp-sa' }, labels: { 'istio.io/rev': 'canary' } });
    const [s, d, svc] = waypointObjects(g, OPTS);
    assert.deepEqual([s.metadata.name, d.metadata.name, svc.metadata.name], ['wp-sa', 'custom', 'custom']);
    assert.equal(d.spec.template.spec.serviceAccountName, 'wp-sa');
    assert.equal(d.spec.template.metadata?.labels?.['service.istio.io/canonical-name'], 'custom');
    assert.equal(d.spec.template.metadata?.annotations?.['istio.io/rev'], 'canary');
    // Still selected and owned by the Gateway's own name.
    assert.deepEqual(svc.spec.selector, { [NAME]: 'wp' });
    assert.deepEqual([s, d, svc].map((o) => o.metadata.ownerReferences?.[0]?.name), ['wp', 'wp', 'wp']);
  });

  // istiod's extractServicePorts: a repeated port is skipped and sanitizeListenerNameForPort turns `.` into `-`.
  const portCases: [string, () => void][] = [
    [
      'listeners sharing a port make one Service port',
      () => {
        const g = gateway('wp');
        g.spec.listeners.push({ name: 'again', port: 15008, protocol: 'HBONE' });
        assert.deepEqual(waypointObjects(g, OPTS)[2].spec.ports?.map((p) => p.port), [15021, 15008]);
      },
    ],
    [
      'a listener name is made a valid port name',
      () => {
        const g = gateway('wp');
        g.spec.listeners[0]!.name = 'mesh.v1';
        assert.equal(waypointObjects(g, OPTS)[2].spec.ports?.[1]?.name, 'mesh-v1');
      },
    ],
  ];
  for (const [name, check] of portCases) it(name, check);
});

describe('covers', () => {
  const cases: [string, unknown, unknown, boolean][] = [
    ['equal scalars', 1, 1, true],
    ['different scalars', 'a', 'b', false],
    ['extra fields in have', { a: 1, b: { c: 2, d: 3 } }, { b: { c: 2 } }, true],
    ['a wanted field missing', { a: 1 }, { a: 1, b: 2 }, false],
    ['a nested difference', { a: { b: 1 } }, { a: { b: 2 } }, false],
    ['undefined in want is no requirement', { a: 1 }, { a: 1, b: undefined }, true],
    ['arrays element-wise, extra fields allowed', [{ a: 1, x: 9 }, { b: 2 }], [{ a: 1 }, { b: 2 }], true],
    ['arrays of another length', [1, 2, 3], [1, 2], false],
    ['array order matters', [1, 2], [2, 1], false],
    ['object wanted, array held', [1], { 0: 1 }, false],
    ['array wanted, object held', { 0: 1 }, [1], false],
    ['nothing held', undefined, { a: 1 }, false],
    ['null wanted and held', null, null, true],
    ['null held, object wanted', null, { a: 1 }, false],
    ['empty object wanted', { a: 1 }, {}, true],
  ];
  for (const [name, have, want, expected] of cases) it(name, () => assert.equal(covers(have, want), expected));

  it('a rendered Service is covered by what the cluster stores for it', () => {
    const svc = waypointObjects(gateway('wp'), OPTS)[2];
    const stored = structuredClone(svc) as Service;
    stored.metadata.uid = 'svc-uid';
    stored.metadata.resourceVersion = '7';
    stored.spec.clusterIP = '10.96.0.50';
    stored.spec.clusterIPs = ['10.96.0.50'];
    stored.spec.ports = stored.spec.ports!.map((p) => ({ ...p, targetPort: p.port }));
    assert.ok(covers(stored, svc));
    stored.spec.ports.pop();
    assert.ok(!covers(stored, svc));
  });
});

/** A cluster: what is applied is stored with the cluster's own fields; `fail` makes the next applies fail. */
class RecordingCluster implements ClusterWriter {
  readonly applied: string[][] = [];
  readonly deleted: string[][] = [];
  fail = 0;
  private ips = 50;
  constructor(private readonly store: ConfigStore) {}

  async apply(objects: Resource[]): Promise<{ object: string; error?: string }[]> {
    this.applied.push(objects.map(resourceKey));
    if (this.fail > 0) {
      this.fail--;
      return objects.map((o) => ({ object: resourceKey(o), error: 'the API server is unavailable' }));
    }
    this.store.apply(
      objects.map((o) => {
        const stored = structuredClone(o) as Resource;
        stored.metadata.uid ??= `uid-${resourceKey(o)}`;
        stored.metadata.resourceVersion = String(this.applied.length);
        if (stored.kind === 'Service' && !stored.spec.clusterIP) stored.spec.clusterIP = `10.96.0.${this.ips++}`;
        if (stored.kind === 'Deployment') (stored as Deployment & { status: unknown }).status = { readyReplicas: 0 };
        return stored;
      }),
    );
    return objects.map((o) => ({ object: resourceKey(o) }));
  }

  async delete(refs: { kind: string; metadata: { name: string; namespace?: string } }[]) {
    this.deleted.push(refs.map(resourceKey));
    this.store.remove(refs.map(resourceKey));
    return refs.map((r) => ({ object: resourceKey(r) }));
  }
}

describe('WaypointController', () => {
  const store = new ConfigStore();
  const cluster = new RecordingCluster(store);
  const log = new CapturedLog();
  store.apply([gateway('wp'), gateway('pending', { uid: '' }), gateway('ingress', { className: 'istio' })]);
  const controller = new WaypointController({ store, writer: cluster, log, ...OPTS });
  after(() => controller.close());
  const objectsOf = (name: string) => ['ServiceAccount', 'Deployment', 'Service'].map((k) => `${k}/shop/${name}`);
  /** Waits for the next apply call and returns what it applied. */
  const nextApply = async (count: number) => {
    await eventually(`apply call ${count}`, () => cluster.applied.length >= count);
    return cluster.applied[count - 1]!;
  };

  it('creates the GatewayClass and the three objects of each waypoint Gateway that has a uid', async () => {
    controller.start();
    assert.deepEqual(await nextApply(1), ['GatewayClass//istio-waypoint', ...objectsOf('wp')]);
    assert.deepEqual((store.get('GatewayClass//istio-waypoint') as GatewayClass | undefined)?.spec, { controllerName: 'istio.io/mesh-controller', description: 'The default Istio waypoint GatewayClass' });
    assert.ok(log.has('waypoint controller: applied GatewayClass istio-waypoint, ServiceAccount shop/wp, Deployment shop/wp, Service shop/wp'));
  });

  it('does not re-apply what the cluster holds, with its own fields added', async () => {
    assert.equal((store.get('Service/shop/wp') as Service).spec.clusterIP, '10.96.0.50');
    // A change the controller looks at (a waypoint pod) makes it check again; then a new Gateway needs work. Passes
    // run one at a time, so the next apply call is the new Gateway's alone.
    store.apply([{ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'wp-1', namespace: 'shop', labels: { [NAME]: 'wp' } }, spec: { containers: [] } }]);
    store.apply([gateway('pending', { uid: 'uid-pending' })]);
    assert.deepEqual(await nextApply(2), objectsOf('pending'));
    assert.equal(cluster.deleted.length, 0);
  });

  it('puts back an edited managed object, and only that one', async () => {
    const edited = structuredClone(store.get('Service/shop/wp')) as Service;
    edited.spec.ports = edited.spec.ports!.slice(0, 1);
    store.apply([edited]);
    assert.deepEqual(await nextApply(3), ['Service/shop/wp']);
    assert.equal((store.get('Service/shop/wp') as Service).spec.ports?.length, 2);

    // istiod's canManage: an object without the managed label is somebody else's and is not overwritten. The next
    // pass (for the GatewayClass) shows the Deployment was skipped.
    const relabelled = structuredClone(store.get('Deployment/shop/wp')) as Deployment;
    delete relabelled.metadata.labels![MANAGED];
    relabelled.spec.replicas = 3;
    store.apply([relabelled]);
    const cls = structuredClone(store.get('GatewayClass//istio-waypoint')) as GatewayClass;
    cls.spec.controllerName = 'example.com/other';
    store.apply([cls]);
    assert.deepEqual(await nextApply(4), ['GatewayClass//istio-waypoint']);
    assert.equal((store.get('Deployment/shop/wp') as Deployment).spec.replicas, 3);
    assert.ok(log.has('waypoint controller: Deployment shop/wp exists and is not managed by the mesh controller; leaving it alone'));
  });

  it('deletes the managed objects of a Gateway that is no longer a waypoint; a deleted Gateway is left to the cluster', async () => {
    store.apply([gateway('pending', { uid: 'uid-pending', className: 'istio' })]);
    await eventually('delete call', () => cluster.deleted.length >= 1);
    assert.deepEqual(cluster.deleted[0], ['Deployment/shop/pending', 'Service/shop/pending', 'ServiceAccount/shop/pending']);
    assert.deepEqual(objectsOf('pending').map((k) => store.get(k)), [undefined, undefined, undefined]);

    // The cluster garbage-collects the objects of a deleted Gateway by their owner reference; the controller does not.
    store.remove(['Gateway/shop/wp']);
    store.apply([gateway('next')]);
    assert.deepEqual(await nextApply(5), objectsOf('next'));
    assert.equal(cluster.deleted.length, 1);
    assert.ok(store.get('Deployment/shop/wp'));
  });

  it('retries after the cluster refused a write', async () => {
    cluster.fail = 1;
    store.apply([gateway('retry')]);
    assert.deepEqual(await nextApply(6), objectsOf('retry'));
    assert.equal(store.get('Service/shop/retry'), undefined);
    assert.ok(log.has('waypoint controller: cannot apply Service/shop/retry: the API server is unavailable'));
    // Nothing else changes in the store: the retry timer alone brings the second attempt.
    assert.deepEqual(await nextApply(7), objectsOf('retry'));
    await eventually('retried objects stored', () => store.get('Service/shop/retry'));
  });
});
