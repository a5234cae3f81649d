// The control plane's log names a VirtualService the waypoints do not apply and a DestinationRule whose fields they
// partly ignore (neither has a status to say so), once per change, and says when that is over.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { noticeUnappliedConfig } from '../../src/controlplane/unapplied-notices.js';
import { ConfigStore } from '../../src/model/store.js';
import { parseYaml } from '../model/helpers.js';

const SERVICE = `
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec: {ports: [{name: http, port: 80}]}
`;
const vs = (extra: string) => `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web, namespace: shop}
spec:
  hosts: [web]
  http:
  - route: [{destination: {host: web, port: {number: 80}}}]${extra}
`;
const dr = (name: string, trafficPolicy: string, extra = '') => `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ${name}, namespace: shop}
spec:
  host: ${name}
  trafficPolicy: ${trafficPolicy}${extra}
`;

function capture() {
  const lines: string[] = [];
  const log = { info: (m: string) => lines.push(`info ${m}`), warn: (m: string) => lines.push(`warn ${m}`), error: (m: string) => lines.push(`error ${m}`) };
  return { lines, log };
}

test('a VirtualService the waypoints cannot apply is logged once, and again when it is applied', () => {
  const { lines, log } = capture();
  const store = new ConfigStore();
  store.apply(parseYaml(SERVICE + '---' + vs('\n    rewrite: {uriRegexRewrite: {match: ^/a, rewrite: /b}}')));
  const stop = noticeUnappliedConfig(store, 'cluster.local', log);
  assert.equal(lines.length, 1);
  assert.match(lines[0]!, /^warn VirtualService shop\/web is not applied at waypoints: .*uriRegexRewrite/);
  store.apply(parseYaml(vs('\n    rewrite: {uriRegexRewrite: {match: ^/a, rewrite: /b}}\n    timeout: 2s')));
  assert.equal(lines.length, 1, 'the same reasons are not repeated');
  store.apply(parseYaml(vs('')));
  assert.deepEqual(lines.slice(1), ['info VirtualService shop/web is applied at waypoints again']);
  stop();
});

test('a DestinationRule with fields the waypoints ignore is logged once per change, and when it has none left', () => {
  const { lines, log } = capture();
  const store = new ConfigStore();
  // No Service named by either rule: the reasons do not need one.
  store.apply(parseYaml(dr('reviews', '{loadBalancer: {simple: PASSTHROUGH}}') + '---' + dr('ratings', '{loadBalancer: {simple: ROUND_ROBIN}}')));
  const stop = noticeUnappliedConfig(store, 'cluster.local', log);
  assert.deepEqual(lines, ['warn DestinationRule shop/reviews: loadBalancer.simple PASSTHROUGH is not supported at waypoints (ignored at waypoints)']);

  store.apply(parseYaml(dr('reviews', '{loadBalancer: {simple: PASSTHROUGH}, connectionPool: {tcp: {maxConnections: 1}}}')));
  assert.equal(lines.length, 1, 'the same reasons are not repeated');

  // Port-level settings and subsets count, for any port they name.
  store.apply(parseYaml(dr('reviews', '{portLevelSettings: [{port: {number: 9080}, tls: {mode: SIMPLE, credentialName: reviews-ca}}]}', '\n  subsets: [{name: v1, trafficPolicy: {proxyProtocol: {}}}]')));
  assert.deepEqual(lines.slice(1), [
    'warn DestinationRule shop/reviews: trafficPolicy.proxyProtocol is not supported yet; tls.credentialName is not supported yet (use caCertificates, clientCertificate and privateKey files) (ignored at waypoints)',
  ]);

  store.apply(parseYaml(dr('reviews', '{loadBalancer: {simple: ROUND_ROBIN}}')));
  assert.deepEqual(lines.slice(2), ['info DestinationRule shop/reviews no longer has fields waypoints ignore']);

  // A rule for sidecars (workloadSelector) never reaches a waypoint; a deleted rule is forgotten.
  store.apply(parseYaml(dr('sidecars', '{loadBalancer: {simple: PASSTHROUGH}}', '\n  workloadSelector: {matchLabels: {app: client}}')));
  store.apply(parseYaml(dr('gone', '{loadBalancer: {localityLbSetting: {failoverPriority: [x]}}, outlierDetection: {}}')));
  assert.deepEqual(lines.slice(3), ['warn DestinationRule shop/gone: loadBalancer.localityLbSetting is not supported yet (ignored at waypoints)']);
  store.remove(['DestinationRule/shop/gone']);
  store.apply(parseYaml(dr('gone', '{loadBalancer: {localityLbSetting: {failoverPriority: [x]}}, outlierDetection: {}}')));
  assert.equal(lines.length, 5, 'logged again once re-created');
  stop();
});
