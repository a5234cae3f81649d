// RequestAuthentications at waypoints through the ambient index: targetRefs naming the waypoint's Gateway (or its
// class from the root namespace) apply to all its traffic, those naming a bound Service to that Service; selector
// ones are for sidecars and never reach a waypoint (Istio's ambient waypoints ignore them); an edit re-sends them.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { renderWaypointConfig } from '../../src/model/configdump.js';
import { TYPE_WAYPOINT } from '../../src/xds/types.js';
import { parseYaml, WAYPOINT_MESH, waypointIndex } from './helpers.js';

const BASE = `${WAYPOINT_MESH}---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop, labels: {istio.io/use-waypoint: wp}}
spec: {clusterIP: 10.96.0.1, ports: [{name: http, port: 80}]}
`;
const RA = (name: string, target: string, issuer = 'https://issuer.example') => `
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: ${name}, namespace: shop}
spec:
  ${target}
  jwtRules:
  - issuer: ${issuer}
    jwksUri: https://issuer.example/jwks.json
    fromHeaders: [{name: x-jwt, prefix: "Token "}]
    outputClaimToHeaders: [{header: x-sub, claim: sub}]
    timeout: 2s
`;
const SELF = 'shop/wp/waypoint';
const WEB = 'shop/wp/service/shop/web.shop.svc.cluster.local';

function setup(yaml: string) {
  const t = waypointIndex(yaml);
  return { ...t, get: t.resource };
}

describe('RequestAuthentication at waypoints', () => {
  it('targetRefs to the Gateway apply to the waypoint, to a Service to that Service; the rule is sent as written', () => {
    const t = setup(BASE + '---' + RA('gw', 'targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: wp}]') + '---' + RA('svc', 'targetRefs: [{kind: Service, group: "", name: web}]'));
    assert.deepEqual(t.get(SELF)?.waypoint?.requestAuthentications, ['shop/gw']);
    assert.deepEqual(t.get(WEB)?.service?.requestAuthentications, ['shop/svc']);
    assert.deepEqual(t.get('shop/wp/authn/shop/gw')?.requestAuthentication, {
      name: 'gw',
      namespace: 'shop',
      rules: [
        {
          issuer: 'https://issuer.example',
          audiences: [],
          jwksUri: 'https://issuer.example/jwks.json',
          jwks: '',
          fromHeaders: [{ name: 'x-jwt', prefix: 'Token ' }],
          fromParams: [],
          fromCookies: [],
          outputPayloadToHeader: '',
          forwardOriginalToken: false,
          outputClaimToHeaders: [{ header: 'x-sub', claim: 'sub' }],
          timeoutMs: 2000,
          spaceDelimitedClaims: [],
        },
      ],
    });
    assert.deepEqual(renderWaypointConfig(t.index, 'shop/wp')?.requestAuthentications?.map((r) => r.name), ['gw', 'svc']);
    t.index.close();
  });

  it('a selector RequestAuthentication, even one selecting the waypoint’s pods, never reaches the waypoint', () => {
    const t = setup(BASE + '---' + RA('sel', 'selector: {matchLabels: {gateway.networking.k8s.io/gateway-name: wp}}'));
    assert.equal(t.get(SELF)?.waypoint?.requestAuthentications, undefined);
    assert.equal(t.get('shop/wp/authn/shop/sel'), undefined);
    t.index.close();
  });

  it('an edit re-sends the RequestAuthentication; a deletion removes it and the lists naming it', () => {
    const t = setup(BASE + '---' + RA('gw', 'targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: wp}]'));
    t.store.apply(parseYaml(RA('gw', 'targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: wp}]', 'https://other.example')));
    const resent = t.changes.filter((c) => c.typeUrl === TYPE_WAYPOINT).flatMap((c) => [...c.upserted.keys()]);
    assert.deepEqual(resent, ['shop/wp/authn/shop/gw']);
    assert.equal(t.get('shop/wp/authn/shop/gw')?.requestAuthentication?.rules[0]!.issuer, 'https://other.example');
    t.store.remove(['RequestAuthentication/shop/gw']);
    assert.equal(t.get('shop/wp/authn/shop/gw'), undefined);
    assert.equal(t.get(SELF)?.waypoint?.requestAuthentications, undefined);
    t.index.close();
  });

  it('its WaypointAccepted condition says whether a waypoint enforces it, as an AuthorizationPolicy’s does', () => {
    const unbound = `---
apiVersion: v1
kind: Service
metadata: {name: direct, namespace: shop, labels: {istio.io/use-waypoint: none}}
spec: {clusterIP: 10.96.0.2, ports: [{name: http, port: 80}]}
`;
    const t = setup(BASE + unbound + '---' + RA('gw', 'targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: wp}]') + '---' + RA('direct', 'targetRefs: [{kind: Service, group: "", name: direct}]'));
    const condition = (name: string) => t.index.statuses().find((x) => x.kind === 'RequestAuthentication' && x.name === name)?.conditions.find((c) => c.type === 'WaypointAccepted');
    assert.deepEqual([condition('gw')?.status, condition('gw')?.message], ['True', 'bound to shop/wp']);
    assert.deepEqual([condition('direct')?.status, condition('direct')?.reason, condition('direct')?.message], ['False', 'AncestorNotBound', 'Service shop/direct is not bound to a waypoint']);
    t.index.close();
  });
});
