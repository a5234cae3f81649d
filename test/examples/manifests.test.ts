// The shipped manifests go through the same loader users' files do, and the demo keeps its story consistent: every
// namespace enrolled, every pod reporting its identity and probed on /healthz, and the policies naming identities
// that the demo's ServiceAccounts actually produce.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { formatIssue, loadPaths } from '../../src/config/loader.js';
import { LABEL_DATAPLANE_MODE, type Deployment, type Namespace, type Resource, type Service } from '../../src/api/types.js';
import { translateHTTPRoute } from '../../src/model/routes.js';

const EXAMPLES = fileURLToPath(new URL('../../../examples/', import.meta.url));

async function load(dir: string): Promise<Resource[]> {
  const r = await loadPaths([EXAMPLES + dir]);
  const errors = r.issues.filter((i) => i.severity === 'error').map(formatIssue);
  assert.deepEqual(errors, [], `examples/${dir} has errors`);
  return r.objects.map((o) => o.resource);
}

describe('examples/demo', () => {
  it('loads without errors and tells frontend → orders → payments', async () => {
    const objects = await load('demo');
    const of = <K extends Resource['kind']>(kind: K) =>
      objects.filter((o): o is Extract<Resource, { kind: K }> => o.kind === kind);

    const namespaces = of('Namespace');
    assert.deepEqual(namespaces.map((n) => n.metadata.name).sort(), ['frontend', 'orders', 'payments']);
    for (const ns of namespaces) assert.equal(ns.metadata.labels?.[LABEL_DATAPLANE_MODE], 'ambient', ns.metadata.name);

    const identities = new Set(of('ServiceAccount').map((sa) => `cluster.local/ns/${sa.metadata.namespace}/sa/${sa.metadata.name}`));
    const deployments = of('Deployment');
    assert.equal(deployments.length, 3);
    for (const d of deployments as Deployment[]) {
      const pod = d.spec.template.spec;
      assert.ok(identities.has(`cluster.local/ns/${d.metadata.namespace}/sa/${pod.serviceAccountName}`), d.metadata.name);
      const c = pod.containers[0]!;
      assert.equal(c.command?.[0], 'ambit-echo');
      const fieldRefs = Object.fromEntries((c.env ?? []).map((e) => [e.name, e.valueFrom?.fieldRef?.fieldPath]));
      assert.deepEqual(
        [fieldRefs.POD_NAME, fieldRefs.POD_NAMESPACE, fieldRefs.NODE_NAME, fieldRefs.SERVICE_ACCOUNT],
        ['metadata.name', 'metadata.namespace', 'spec.nodeName', 'spec.serviceAccountName'],
      );
      assert.equal(c.readinessProbe?.httpGet?.path, '/healthz');
      // Every named targetPort of the Service exists on the container.
      const svc = of('Service').find((s) => s.metadata.namespace === d.metadata.namespace)!;
      const names = new Set((c.ports ?? []).map((p) => p.name));
      for (const p of svc.spec.ports ?? []) {
        if (typeof p.targetPort === 'string') assert.ok(names.has(p.targetPort), `${svc.metadata.name}:${p.targetPort}`);
      }
    }

    const allowed = new Map(of('AuthorizationPolicy').map((p) => [
      p.metadata.namespace,
      p.spec.rules?.flatMap((r) => r.from ?? []).flatMap((f) => f.source?.principals ?? []),
    ]));
    assert.deepEqual(allowed.get('orders'), ['cluster.local/ns/frontend/sa/frontend']);
    assert.deepEqual(allowed.get('payments'), ['cluster.local/ns/orders/sa/orders']);
    for (const principals of allowed.values()) for (const p of principals ?? []) assert.ok(identities.has(p), p);

    const strict = of('PeerAuthentication');
    assert.equal(strict.length, 1);
    assert.equal(strict[0]!.metadata.namespace, 'payments');
    assert.equal(strict[0]!.spec.selector, undefined);
    assert.equal(strict[0]!.spec.mtls?.mode, 'STRICT');
  });
});

describe('examples/policies', () => {
  it('loads without errors', async () => {
    const objects = await load('policies');
    assert.ok(objects.filter((o) => o.kind === 'AuthorizationPolicy').length >= 8);
    assert.ok(objects.some((o) => o.kind === 'PeerAuthentication'));
  });
});

describe('examples/waypoint', () => {
  it("loads without errors, and the orders L4 policy admits the waypoint's identity", async () => {
    const objects = await load('waypoint');
    const gateway = objects.find((o) => o.kind === 'Gateway');
    assert.equal(gateway?.kind === 'Gateway' && gateway.spec.gatewayClassName, 'istio-waypoint');
    const ns = objects.find((o) => o.kind === 'Namespace');
    assert.deepEqual(ns?.metadata.labels, { [LABEL_DATAPLANE_MODE]: 'ambient', 'istio.io/use-waypoint': 'waypoint' });
    const l4 = objects.find((o) => o.kind === 'AuthorizationPolicy' && o.metadata.name === 'orders-allow-frontend');
    const principals = l4?.kind === 'AuthorizationPolicy' ? l4.spec.rules?.flatMap((r) => r.from ?? []).flatMap((f) => f.source?.principals ?? []) : [];
    assert.ok(principals?.includes('cluster.local/ns/orders/sa/waypoint'), `${principals}`);
    const l7 = objects.filter((o) => o.kind === 'AuthorizationPolicy' && (o.spec.targetRefs?.length ?? 0) > 0);
    assert.deepEqual(l7.map((p) => p.metadata.name).sort(), ['no-debug-requests', 'orders-frontend-reads']);
  });

  it('the HTTPRoute is accepted for the demo’s orders Service, /api first, with its filter, timeout and retry', async () => {
    const demo = await load('demo');
    const route = (await load('waypoint')).find((o) => o.kind === 'HTTPRoute');
    assert.ok(route?.kind === 'HTTPRoute');
    const orders = demo.find((o): o is Service => o.kind === 'Service' && o.metadata.name === 'orders');
    const ns = (await load('waypoint')).find((o): o is Namespace => o.kind === 'Namespace');
    const t = translateHTTPRoute(route, {
      domainSuffix: 'cluster.local',
      service: (namespace, name) => (namespace === 'orders' && name === 'orders' ? orders : undefined),
      serviceEntry: () => undefined,
      namespace: (name) => (name === 'orders' ? ns : undefined),
    });
    assert.deepEqual(t.parents[0]?.conditions.map((c) => [c.type, c.status, c.message]), [
      ['Accepted', 'True', 'Route was valid'],
      ['ResolvedRefs', 'True', 'All references resolved'],
      ['ResolvedWaypoints', 'True', 'All waypoints resolved'],
    ]);
    const routes = [...t.services.values()][0]!;
    assert.deepEqual(routes.map((r) => [r.port, r.match?.path?.value, r.timeoutMs, r.retry?.codes]), [
      [80, '/api', 2000, [503]],
      [80, '/', undefined, []],
    ]);
  });
});
