// KubeSource against a real API server (src/apiserver over HTTPS, client certificate from a kubeconfig): the first
// sync of every kind as one change (component pods and invalid objects left out, a kind without its CRD not blocking
// start), live changes, statuses written through the status subresource (only when they change; a Service's
// conditions merged), a waypoint's objects created, replaced and deleted, a kind picked up once its CRD is installed,
// a restart of the server without its history (the informers list again and apply what vanished meanwhile), a resume
// past the kept history (410 Expired, then a list); the sync time at 5,000 pods and 1,000 policies; and the assembled
// control plane reading the API.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { RESOURCE_TYPES } from '../../src/api/kinds.js';
import type { Resource } from '../../src/api/types.js';
import { ResourceStore, type KubeObject } from '../../src/apiserver/store.js';
import { loadKubeConfig } from '../../src/controlplane/kube-client.js';
import { KubeSource } from '../../src/controlplane/kube-source.js';
import type { Logger } from '../../src/controlplane/log.js';
import { runControlPlane, type RunningControlPlane } from '../../src/controlplane/run.js';
import type { ObjectStatus } from '../../src/model/ambient.js';
import { ConfigStore } from '../../src/model/store.js';
import { TestApiServer } from '../support/api-server.js';
import { eventually } from '../support/eventually.js';

const WAYPOINT_BOUND = 'istio.io/WaypointBound';

const namespace = (name: string, labels: Record<string, string> = {}): KubeObject => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } });
const pod = (name: string, ip: string, extra: Partial<KubeObject['metadata']> = {}, ns = 'shop'): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace: ns, labels: { app: name }, ...extra },
  spec: { nodeName: 'node-1', serviceAccountName: name, containers: [{ name: 'app', image: 'app:1' }] },
  status: { phase: 'Running', podIP: ip },
});
const service = (): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name: 'web', namespace: 'shop' },
  spec: { selector: { app: 'web' }, ports: [{ name: 'http', port: 80 }], clusterIP: '10.96.0.10' },
  status: { loadBalancer: {}, conditions: [{ type: 'Other', status: 'True', reason: 'Theirs', message: 'written by someone else' }] },
});
const policy = (name: string, action: string): KubeObject => ({
  apiVersion: 'security.istio.io/v1',
  kind: 'AuthorizationPolicy',
  metadata: { name, namespace: 'shop' },
  spec: { action, rules: [{ from: [{ source: { namespaces: ['evil'] } }] }] },
  // What an earlier control plane wrote: not input to the mesh.
  status: { conditions: [{ type: 'ZtunnelAccepted', status: 'True', reason: 'Accepted', message: 'old' }] },
});
const condition = (type: string, message: string) => ({ type, status: 'True' as const, reason: 'Accepted', message });

const objectIn = (store: ResourceStore, group: string, kind: string, name: string) => store.getObject(group, kind, kind === 'GatewayClass' ? undefined : 'shop', name);

describe('KubeSource', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ambit-kube-source-'));
  const lines: string[] = [];
  const log: Logger = { info: (m) => lines.push(`info ${m}`), warn: (m) => lines.push(`warn ${m}`), error: (m) => lines.push(`error ${m}`) };
  const logged = (pattern: RegExp) => lines.some((l) => pattern.test(l));
  let desired: ObjectStatus[] = [];
  let statusRounds = 0;
  const store = new ConfigStore();
  let api: TestApiServer;
  let source: KubeSource;

  before(async () => {
    const cluster = new ResourceStore();
    cluster.put(namespace('shop', { 'istio.io/dataplane-mode': 'ambient' }), true);
    cluster.put(namespace('istio-system'), true);
    cluster.put(pod('web', '10.244.1.5'), true);
    cluster.put(pod('ztunnel-abcde', '10.244.1.2', { annotations: { 'ambit.dev/component': 'ztunnel' } }, 'istio-system'), true);
    cluster.put(service(), true);
    cluster.put(policy('deny-evil', 'DENY'), true);
    cluster.put(policy('broken', 'BLOCK'), true);
    // Telemetry's CRD is not installed on this cluster.
    api = await TestApiServer.start({ store: cluster, dir, builtInTypes: RESOURCE_TYPES.filter((t) => t.group !== 'telemetry.istio.io') });
    source = new KubeSource({
      kubeConfig: loadKubeConfig(api.kubeconfigPath),
      store,
      log,
      statuses: () => {
        statusRounds++;
        return desired;
      },
    });
  });
  after(async () => {
    source.close();
    await api.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('lists every kind, leaving out component pods and invalid objects, though one kind is not served', async () => {
    const changes: number[] = [];
    const unsubscribe = store.subscribe((c) => changes.push(c.added.length));
    await source.start();
    unsubscribe();
    assert.deepEqual(changes, [5], 'the first state reaches the store whole, as one change');
    assert.deepEqual(store.list('Namespace').map((n) => n.metadata.name).sort(), ['istio-system', 'shop']);
    assert.deepEqual(store.list('Pod').map((p) => p.metadata.name), ['web'], 'the component pod is not a workload');
    const web = store.list('Pod')[0]!;
    assert.equal(web.status?.podIP, '10.244.1.5');
    assert.equal(web.metadata.resourceVersion, undefined, 'server bookkeeping stays out of the store');
    assert.deepEqual(store.list('AuthorizationPolicy').map((p) => p.metadata.name), ['deny-evil']);
    assert.equal((store.list('AuthorizationPolicy')[0] as { status?: unknown }).status, undefined, 'our own output is not input');
    assert.deepEqual((store.list('Service')[0] as { status?: unknown }).status, { loadBalancer: {} }, "a Service's conditions are not input");
    assert.ok(logged(/warn AuthorizationPolicy shop\/broken is invalid and left out of the mesh: spec\.action/), lines.join('\n'));
    assert.ok(logged(/telemetries\.telemetry\.istio\.io \(telemetry\.istio\.io\/v1\) is not served/), lines.join('\n'));
    assert.ok(logged(/cluster sync: \d+ objects of 18 kinds .*not served \(CRDs not installed\?\): telemetries\.telemetry\.istio\.io/), lines.join('\n'));
  });

  it('follows additions, changes and deletions made through the API', async () => {
    const created = await api.json('POST', '/api/v1/namespaces/shop/pods', pod('api', '10.244.1.6'));
    assert.equal(created.code, 201);
    await eventually('the new pod', () => store.get('Pod/shop/api'));
    const relabel = await api.json('PATCH', '/api/v1/namespaces/shop/pods/web', { metadata: { labels: { app: 'web', version: 'v2' } } }, 'application/merge-patch+json');
    assert.equal(relabel.code, 200);
    await eventually('the new label', () => store.get('Pod/shop/web')?.metadata.labels?.version === 'v2');
    assert.equal((await api.json('DELETE', '/api/v1/namespaces/shop/pods/api')).code, 200);
    await eventually('the deletion', () => store.get('Pod/shop/api') === undefined);
    // An object turning invalid leaves the mesh; fixed, it comes back.
    const spec = (action: string) => ({ spec: { action } });
    await api.json('PATCH', '/apis/security.istio.io/v1/namespaces/shop/authorizationpolicies/deny-evil', spec('BLOCK'), 'application/merge-patch+json');
    await eventually('the policy made invalid to leave', () => store.get('AuthorizationPolicy/shop/deny-evil') === undefined);
    await api.json('PATCH', '/apis/security.istio.io/v1/namespaces/shop/authorizationpolicies/deny-evil', spec('DENY'), 'application/merge-patch+json');
    await eventually('the fixed policy to return', () => store.get('AuthorizationPolicy/shop/deny-evil'));
  });

  it('writes a status through the status subresource, only when it changes, and clears it', async () => {
    const cluster = api.store;
    const before = objectIn(cluster, 'security.istio.io', 'AuthorizationPolicy', 'deny-evil')!;
    desired = [{ kind: 'AuthorizationPolicy', namespace: 'shop', name: 'deny-evil', conditions: [condition('ZtunnelAccepted', 'attached to ztunnel')] }];
    const written = await eventually('the status', () => {
      const o = objectIn(cluster, 'security.istio.io', 'AuthorizationPolicy', 'deny-evil')!;
      return (o.status as { conditions: { message: string }[] }).conditions[0]!.message === 'attached to ztunnel' && o;
    });
    assert.deepEqual(written.status, { conditions: [condition('ZtunnelAccepted', 'attached to ztunnel')] });
    assert.deepEqual(written.spec, before.spec);
    assert.equal(written.metadata.generation, before.metadata.generation, 'a status write is not a spec change');
    // Rounds that find the status in place write nothing.
    const rounds = statusRounds;
    await eventually('three more status rounds', () => statusRounds >= rounds + 3);
    assert.equal(objectIn(cluster, 'security.istio.io', 'AuthorizationPolicy', 'deny-evil')!.metadata.resourceVersion, written.metadata.resourceVersion);
    assert.equal((store.get('AuthorizationPolicy/shop/deny-evil') as { status?: unknown }).status, undefined, 'the echo of our write is not input');

    desired = [];
    await eventually('the status cleared', () => objectIn(cluster, 'security.istio.io', 'AuthorizationPolicy', 'deny-evil')!.status === undefined);
  });

  it("merges only its own condition types into a Service's status", async () => {
    const cluster = api.store;
    const conditions = () => (objectIn(cluster, '', 'Service', 'web')!.status as { conditions?: { type: string; message: string }[] }).conditions;
    desired = [{ kind: 'Service', namespace: 'shop', name: 'web', conditions: [condition(WAYPOINT_BOUND, 'bound to waypoint')], ownedConditions: [WAYPOINT_BOUND] }];
    await eventually('our condition', () => conditions()?.some((c) => c.type === WAYPOINT_BOUND));
    assert.deepEqual(conditions()!.map((c) => c.type), ['Other', WAYPOINT_BOUND]);
    assert.deepEqual((objectIn(cluster, '', 'Service', 'web')!.status as { loadBalancer?: unknown }).loadBalancer, {});

    // Someone else adds a condition: ours stays, and a change of ours keeps theirs.
    const theirs = await api.json('PATCH', '/api/v1/namespaces/shop/services/web/status', { status: { conditions: [...conditions()!, condition('Another', 'also theirs')] } }, 'application/merge-patch+json');
    assert.equal(theirs.code, 200);
    desired = [{ kind: 'Service', namespace: 'shop', name: 'web', conditions: [condition(WAYPOINT_BOUND, 'bound to another waypoint')], ownedConditions: [WAYPOINT_BOUND] }];
    await eventually('our changed condition', () => conditions()?.some((c) => c.message === 'bound to another waypoint'));
    assert.deepEqual(conditions()!.map((c) => c.type), ['Other', 'Another', WAYPOINT_BOUND]);

    desired = [];
    await eventually('our condition removed', () => !conditions()?.some((c) => c.type === WAYPOINT_BOUND));
    assert.deepEqual(conditions()!.map((c) => c.type), ['Other', 'Another']);
    assert.deepEqual((store.get('Service/shop/web') as { status?: unknown }).status, { loadBalancer: {} });
  });

  it("creates a waypoint's objects, replaces them when they exist, and deletes them", async () => {
    const cluster = api.store;
    const sa = (labels: Record<string, string>): Resource => ({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'waypoint', namespace: 'shop', labels } });
    const cls: Resource = { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'GatewayClass', metadata: { name: 'istio-waypoint' }, spec: { controllerName: 'istio.io/mesh-controller' } } as Resource;
    assert.deepEqual(await source.apply([sa({ managed: 'yes' }), cls]), [{ object: 'ServiceAccount shop/waypoint' }, { object: 'GatewayClass istio-waypoint' }]);
    assert.deepEqual(objectIn(cluster, '', 'ServiceAccount', 'waypoint')?.metadata.labels, { managed: 'yes' });
    assert.ok(objectIn(cluster, 'gateway.networking.k8s.io', 'GatewayClass', 'istio-waypoint'));
    // Replaced, not merged: a label the new object does not have is gone.
    assert.deepEqual(await source.apply([sa({ fresh: 'yes' }), cls]), [{ object: 'ServiceAccount shop/waypoint' }, { object: 'GatewayClass istio-waypoint' }]);
    assert.deepEqual(objectIn(cluster, '', 'ServiceAccount', 'waypoint')?.metadata.labels, { fresh: 'yes' });
    await eventually('the store to see the service account', () => store.get('ServiceAccount/shop/waypoint')?.metadata.labels?.fresh === 'yes');

    const [missingNamespace] = await source.apply([{ ...sa({}), metadata: { name: 'waypoint', namespace: 'nowhere' } }]);
    assert.match(missingNamespace!.error ?? '', /namespaces "nowhere" not found/);

    assert.deepEqual(await source.delete([sa({})]), [{ object: 'ServiceAccount shop/waypoint' }]);
    assert.equal(objectIn(cluster, '', 'ServiceAccount', 'waypoint'), undefined);
    const [again] = await source.delete([sa({})]);
    assert.equal(again!.reason, 'NotFound');
  });

  it('picks up a kind once its CRD is installed', async () => {
    const crd = {
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: { name: 'telemetries.telemetry.istio.io' },
      spec: {
        group: 'telemetry.istio.io',
        scope: 'Namespaced',
        names: { plural: 'telemetries', singular: 'telemetry', kind: 'Telemetry', listKind: 'TelemetryList' },
        versions: [{ name: 'v1', served: true, storage: true, subresources: { status: {} }, schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } } }],
      },
    };
    assert.equal((await api.json('POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', crd)).code, 201);
    const telemetry = { apiVersion: 'telemetry.istio.io/v1', kind: 'Telemetry', metadata: { name: 'mesh-default', namespace: 'shop' }, spec: {} };
    assert.equal((await api.json('POST', '/apis/telemetry.istio.io/v1/namespaces/shop/telemetries', telemetry)).code, 201);
    await eventually('the Telemetry object', () => store.get('Telemetry/shop/mesh-default'), { timeoutMs: 10_000 });
    await eventually('the watch of telemetries', () => logged(/info watching telemetries\.telemetry\.istio\.io again/));
  });

  it('keeps the last state while the server is down, then lists again from a server that lost its history', async () => {
    const old = api.store;
    const oldPolicy = objectIn(old, 'security.istio.io', 'AuthorizationPolicy', 'deny-evil')!;
    const mark = lines.length;
    await api.close();
    await eventually('the lost watch', () => logged(/warn lost the watch of /));
    assert.ok(store.get('Pod/shop/web'), 'the last known state is served meanwhile');

    // The new store holds what the old one did, except the pod deleted and the policy changed while it was down.
    const fresh = new ResourceStore();
    for (const o of [namespace('shop', { 'istio.io/dataplane-mode': 'ambient' }), namespace('istio-system'), service()]) fresh.put(o, true);
    fresh.put(pod('db', '10.244.1.7'), true);
    fresh.put({ ...policy('deny-evil', 'DENY'), spec: { action: 'DENY', rules: [{ from: [{ source: { namespaces: ['worse'] } }] }] } }, true);
    assert.ok(fresh.resourceVersion < old.resourceVersion, 'the new store is behind the versions the informers saw');
    assert.notEqual(objectIn(fresh, 'security.istio.io', 'AuthorizationPolicy', 'deny-evil')!.metadata.resourceVersion, oldPolicy.metadata.resourceVersion);
    await api.listen(fresh);

    await eventually('the pod deleted meanwhile to go', () => store.get('Pod/shop/web') === undefined, { timeoutMs: 15_000 });
    assert.ok(store.get('Pod/shop/db'));
    type Rules = { spec: { rules: { from: { source: { namespaces: string[] } }[] }[] } };
    await eventually('the policy changed meanwhile', () => (store.get('AuthorizationPolicy/shop/deny-evil') as Rules).spec.rules[0]!.from[0]!.source.namespaces[0] === 'worse');
    await eventually('the Telemetry object to go with its CRD', () => store.get('Telemetry/shop/mesh-default') === undefined);
    assert.ok(logged(/info re-listing pods: the watch could not resume/), lines.join('\n'));
    const served = RESOURCE_TYPES.filter((t) => t.model && t.group !== 'telemetry.istio.io').length;
    await eventually('every served kind watched again', () => lines.slice(mark).filter((l) => /^info watching .* again$/.test(l)).length >= served);
  });

  it('lists again when the history to resume from is gone (410 Expired)', async () => {
    const cluster = api.store;
    const relists = lines.filter((l) => l.includes('re-listing pods')).length;
    await api.close();
    cluster.removeObject('', 'Pod', 'shop', 'db');
    // More changes than the store keeps (20,000) while the informers are away: they cannot resume past them.
    for (let i = 0; i < 21_000; i++) cluster.put({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'churn', namespace: 'shop' }, data: { i: String(i) } });
    assert.ok(cluster.oldestResumable > 0);
    await api.listen();
    await eventually('the pod deleted meanwhile to go', () => store.get('Pod/shop/db') === undefined, { timeoutMs: 15_000 });
    assert.ok(lines.filter((l) => l.includes('re-listing pods')).length > relists);
  });
});

describe('KubeSource at scale', () => {
  const PODS = 5000;
  const POLICIES = 1000;
  const NAMESPACES = 10;
  const dir = mkdtempSync(join(tmpdir(), 'ambit-kube-scale-'));
  const quiet: Logger = { info: () => undefined, warn: () => undefined, error: () => undefined };
  let api: TestApiServer;
  let source: KubeSource | undefined;
  let desired: ObjectStatus[] = [];

  before(async () => {
    const cluster = new ResourceStore();
    for (let n = 0; n < NAMESPACES; n++) cluster.put(namespace(`ns-${n}`, { 'istio.io/dataplane-mode': 'ambient' }), true);
    for (let i = 0; i < PODS; i++) cluster.put(pod(`pod-${i}`, `10.244.${i >> 8}.${i & 255}`, {}, `ns-${i % NAMESPACES}`), true);
    for (let i = 0; i < POLICIES; i++) cluster.put({ ...policy(`policy-${i}`, 'DENY'), metadata: { name: `policy-${i}`, namespace: `ns-${i % NAMESPACES}` } }, true);
    api = await TestApiServer.start({ store: cluster, dir });
  });
  after(async () => {
    source?.close();
    await api.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it(`syncs ${PODS} pods and ${POLICIES} AuthorizationPolicies, and writes their status`, { timeout: 120_000 }, async () => {
    const store = new ConfigStore();
    source = new KubeSource({ kubeConfig: loadKubeConfig(api.kubeconfigPath), store, log: quiet, statuses: () => desired });
    const t0 = performance.now();
    await source.start();
    const syncMs = performance.now() - t0;
    assert.equal(store.countOf('Pod'), PODS);
    assert.equal(store.countOf('AuthorizationPolicy'), POLICIES);

    desired = Array.from({ length: POLICIES }, (_, i) => ({
      kind: 'AuthorizationPolicy' as const,
      namespace: `ns-${i % NAMESPACES}`,
      name: `policy-${i}`,
      conditions: [condition('ZtunnelAccepted', 'attached to ztunnel')],
    }));
    const t1 = performance.now();
    const written = () =>
      api.store.listObjects('security.istio.io', 'AuthorizationPolicy').filter((o) => (o.status as { conditions: { message: string }[] }).conditions[0]!.message === 'attached to ztunnel').length;
    await eventually('every status written', () => written() === POLICIES, { timeoutMs: 60_000 });
    const statusMs = performance.now() - t1;
    console.log(`initial sync of ${PODS} pods and ${POLICIES} AuthorizationPolicies: ${syncMs.toFixed(0)} ms; ${POLICIES} status writes: ${statusMs.toFixed(0)} ms`);
  });
});

describe('the control plane reading Kubernetes (runControlPlane with kubernetes.kubeconfig)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ambit-kube-cp-'));
  const quiet: Logger = { info: () => undefined, warn: () => undefined, error: () => undefined };
  let api: TestApiServer;
  let cp: RunningControlPlane | undefined;

  before(async () => {
    const cluster = new ResourceStore();
    cluster.put(namespace('shop', { 'istio.io/dataplane-mode': 'ambient' }), true);
    cluster.put(pod('web', '10.244.1.5'), true);
    cluster.put(policy('deny-evil', 'DENY'), true);
    cluster.put({
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'Gateway',
      metadata: { name: 'waypoint', namespace: 'shop' },
      spec: { gatewayClassName: 'istio-waypoint', listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE' }] },
    });
    api = await TestApiServer.start({ store: cluster, dir });
  });
  after(async () => {
    await cp?.close();
    await api.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("serves the cluster's workloads, writes policy status and deploys the waypoint through the API", async () => {
    cp = await runControlPlane({
      config: [],
      kubernetes: { kubeconfig: api.kubeconfigPath },
      stateDir: dir,
      listen: '127.0.0.1:0',
      debugListen: '127.0.0.1:0',
      logger: () => quiet,
    });
    assert.ok(cp.index.hasPod('shop', 'web', api.store.getObject('', 'Pod', 'shop', 'web')!.metadata.uid!));
    const cluster = api.store;
    await eventually('the policy status', () => (objectIn(cluster, 'security.istio.io', 'AuthorizationPolicy', 'deny-evil')!.status as { conditions: { type: string; message: string }[] }).conditions.some((c) => c.type === 'ZtunnelAccepted' && c.message !== 'old'));
    await eventually("the waypoint's objects", () => ['ServiceAccount', 'Service'].every((kind) => objectIn(cluster, '', kind, 'waypoint')) && objectIn(cluster, 'apps', 'Deployment', 'waypoint'));
    assert.ok(objectIn(cluster, 'gateway.networking.k8s.io', 'GatewayClass', 'istio-waypoint'));
  });
});
