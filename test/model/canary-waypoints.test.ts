// Canary waypoints as istiod builds them (pilot/pkg/serviceregistry/ambient/waypoints.go getUseWaypointCanary,
// getCanaryWeight, buildWeightedWaypoints; model/service.go GetConditions), with the cases of its
// TestGetUseWaypointCanary, TestGetCanaryWeight and the services_test.go canary cases: the Service's WDS form
// carries both waypoints with their weights, both waypoints serve it, and a canary that cannot be used leaves the
// primary alone and says why in the WaypointBound condition.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TYPE_ADDRESS, TYPE_WAYPOINT, type Address, type WaypointResource } from '../../src/xds/types.js';
import { parseYaml, readyWaypoint, WAYPOINT_MESH, waypointIndex } from './helpers.js';

/** A second ready waypoint `shop/canary`, one that takes only workload traffic, and a namespace `other`. */
const CANARY = `
${readyWaypoint('canary', 101)}---
${readyWaypoint('workloads-only', 102, { 'istio.io/waypoint-for': 'workload' })}---
apiVersion: v1
kind: Namespace
metadata: {name: other}
`;

const RECEIVER = 'shop/reviews.shop.svc.cluster.local';

function reviews(labels: Record<string, string>, annotations: Record<string, string> = {}): string {
  return `
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: shop, labels: ${JSON.stringify(labels)}, annotations: ${JSON.stringify(annotations)}}
spec: {clusterIP: 10.96.0.1, selector: {app: reviews}, ports: [{name: http, port: 9080}]}
`;
}

function setup(service: string, namespaceExtra = '') {
  const mesh = WAYPOINT_MESH.replace('metadata: {name: shop, labels: {istio.io/dataplane-mode: ambient}}', `metadata: {name: shop, labels: {istio.io/dataplane-mode: ambient${namespaceExtra}}}`);
  const t = waypointIndex(`${mesh}---${CANARY}---${service}`);
  const wds = () => (t.index.snapshot(TYPE_ADDRESS).get(RECEIVER) as Address | undefined)?.service;
  const weights = () => wds()?.weightedWaypoints?.map((w) => `${w.destination.hostname?.hostname}=${w.weight ?? 0}`);
  const bound = () => t.index.statuses().find((s) => s.kind === 'Service' && s.name === 'reviews')?.conditions.find((c) => c.type === 'istio.io/WaypointBound');
  const serves = (waypoint: string) => (t.resource(`shop/${waypoint}/service/shop/reviews.shop.svc.cluster.local`) as WaypointResource | undefined)?.service !== undefined;
  return { ...t, wds, weights, bound, serves };
}

describe('canary waypoints (buildWeightedWaypoints)', () => {
  const W = 'istio.io/use-waypoint';
  const C = 'istio.io/use-waypoint-canary';
  const CW = 'istio.io/use-waypoint-canary-weight';
  const PRIMARY_ONLY = 'Successfully attached to waypoint shop/wp';

  it('a usable canary: both waypoints with the weight split, both serve the Service, the primary stays the waypoint', () => {
    const t = setup(reviews({ [W]: 'wp', [C]: 'canary' }, { [CW]: '5' }));
    assert.deepEqual(t.weights(), ['wp.shop.svc.cluster.local=95', 'canary.shop.svc.cluster.local=5']);
    assert.equal(t.wds()?.waypoint?.hostname?.hostname, 'wp.shop.svc.cluster.local');
    assert.deepEqual([t.serves('wp'), t.serves('canary')], [true, true]);
    assert.deepEqual([t.bound()?.status, t.bound()?.message], ['True', PRIMARY_ONLY]);
    t.index.close();
  });

  const fallbacks: [string, Record<string, string>, Record<string, string>, string][] = [
    ['invalid weight (not a number)', { [W]: 'wp', [C]: 'canary' }, { [CW]: 'not-a-number' }, 'canary waypoint "shop/canary" has an invalid weight; must be an integer in [0,100]'],
    ['invalid weight (negative)', { [W]: 'wp', [C]: 'canary' }, { [CW]: '-1' }, 'canary waypoint "shop/canary" has an invalid weight; must be an integer in [0,100]'],
    ['invalid weight (over 100)', { [W]: 'wp', [C]: 'canary' }, { [CW]: '101' }, 'canary waypoint "shop/canary" has an invalid weight; must be an integer in [0,100]'],
    ['the same waypoint as the primary', { [W]: 'wp', [C]: 'wp' }, { [CW]: '5' }, 'canary waypoint "shop/wp" must differ from the primary waypoint'],
    ['a canary that does not exist', { [W]: 'wp', [C]: 'nowhere' }, { [CW]: '5' }, 'waypoint "shop/nowhere" is not ready'],
    ['a canary that does not take Service traffic', { [W]: 'wp', [C]: 'workloads-only' }, { [CW]: '5' }, 'attempting to bind to traffic type "service" which the waypoint "shop/workloads-only" does not support'],
  ];
  for (const [name, labels, annotations, why] of fallbacks) {
    it(`${name}: the primary alone, still bound, the reason in the condition`, () => {
      const t = setup(reviews(labels, annotations));
      assert.equal(t.weights(), undefined);
      assert.deepEqual([t.serves('wp'), t.serves(labels[C]!)], [true, labels[C] === 'wp']);
      assert.deepEqual([t.bound()?.status, t.bound()?.reason, t.bound()?.message], ['True', 'WaypointAccepted', `${PRIMARY_ONLY}. Canary waypoint not attached: ${why}`]);
      t.index.close();
    });
  }

  it('no weight: 0 % (the canary serves the Service but gets no connections); empty or `none`: no canary', () => {
    const t = setup(reviews({ [W]: 'wp', [C]: 'canary' }));
    assert.deepEqual(t.weights(), ['wp.shop.svc.cluster.local=100', 'canary.shop.svc.cluster.local=0']);
    t.index.close();
    for (const value of ['', 'none']) {
      const u = setup(reviews({ [W]: 'wp', [C]: value }, { [CW]: '5' }));
      assert.deepEqual([u.weights(), u.bound()?.message], [undefined, PRIMARY_ONLY]);
      u.index.close();
    }
  });

  it('a canary without a bound primary does nothing', () => {
    const t = setup(reviews({ [C]: 'canary' }, { [CW]: '5' }));
    assert.deepEqual([t.weights(), t.bound(), t.serves('canary')], [undefined, undefined, false]);
    t.index.close();
  });

  it("the namespace's canary (label and weight) applies to Services that inherit its primary, not to those naming their own", () => {
    const nsCanary = `, ${C}: canary}, annotations: {${CW}: "30"`;
    const inherit = setup(reviews({}), `, ${W}: wp${nsCanary}`);
    assert.deepEqual(inherit.weights(), ['wp.shop.svc.cluster.local=70', 'canary.shop.svc.cluster.local=30']);
    inherit.index.close();
    const own = setup(reviews({ [W]: 'wp' }), `, ${W}: wp${nsCanary}`);
    assert.equal(own.weights(), undefined);
    own.index.close();
    // The object's weight beats the namespace's; its canary label beats the namespace's.
    const mixed = setup(reviews({}, { [CW]: '42' }), `, ${W}: wp${nsCanary}`);
    assert.deepEqual(mixed.weights(), ['wp.shop.svc.cluster.local=58', 'canary.shop.svc.cluster.local=42']);
    mixed.index.close();
  });

  it('follows the canary waypoint becoming ready, and the weight changing, incrementally', () => {
    const t = setup(reviews({ [W]: 'wp', [C]: 'canary' }, { [CW]: '10' }));
    t.store.remove(['Pod/shop/canary-1']);
    // Once reported ready (status.addresses), a waypoint stays usable; without a status it needs a ready pod.
    assert.equal(t.weights(), undefined);
    assert.match(t.bound()!.message, /Canary waypoint not attached: waypoint "shop\/canary" is not ready$/);
    assert.equal(t.serves('canary'), false);
    t.store.apply(parseYaml(CANARY).filter((o) => o.kind === 'Pod' && o.metadata.name === 'canary-1'));
    assert.deepEqual(t.weights(), ['wp.shop.svc.cluster.local=90', 'canary.shop.svc.cluster.local=10']);
    assert.equal(t.serves('canary'), true);
    t.store.apply(parseYaml(reviews({ [W]: 'wp', [C]: 'canary' }, { [CW]: '25' })));
    assert.deepEqual(t.weights(), ['wp.shop.svc.cluster.local=75', 'canary.shop.svc.cluster.local=25']);
    t.store.apply(parseYaml(reviews({ [W]: 'wp' })));
    assert.deepEqual([t.weights(), t.serves('canary')], [undefined, false]);
    assert.ok(t.index.snapshot(TYPE_WAYPOINT).has('shop/wp/service/shop/reviews.shop.svc.cluster.local'));
    t.index.close();
  });

  it('istio.io/ingress-use-waypoint is reported as istiod does', () => {
    const on = setup(reviews({ [W]: 'wp', 'istio.io/ingress-use-waypoint': 'true' }));
    assert.equal(on.bound()?.message, `${PRIMARY_ONLY}. Ingress traffic will traverse the waypoint`);
    on.index.close();
    const off = setup(reviews({ [W]: 'wp', 'istio.io/ingress-use-waypoint': 'no' }));
    assert.equal(off.bound()?.message, `${PRIMARY_ONLY}. Ingress traffic is not using the waypoint, set the istio.io/ingress-use-waypoint label to true if desired.`);
    off.index.close();
  });
});
