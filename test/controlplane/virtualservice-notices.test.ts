// The control plane's log names a VirtualService the waypoints do not apply (it has no status to say so), once per
// change, and says when it is applied again.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { noticeUnappliedVirtualServices } from '../../src/controlplane/virtualservice-notices.js';
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

test('a VirtualService the waypoints cannot apply is logged once, and again when it is applied', () => {
  const lines: string[] = [];
  const log = { info: (m: string) => lines.push(`info ${m}`), warn: (m: string) => lines.push(`warn ${m}`), error: (m: string) => lines.push(`error ${m}`) };
  const store = new ConfigStore();
  store.apply(parseYaml(SERVICE + '---' + vs('\n    fault: {abort: {httpStatus: 503, percentage: {value: 10}}}')));
  const stop = noticeUnappliedVirtualServices(store, 'cluster.local', log);
  assert.equal(lines.length, 1);
  assert.match(lines[0]!, /^warn VirtualService shop\/web is not applied at waypoints: .*fault/);
  store.apply(parseYaml(vs('\n    fault: {abort: {httpStatus: 503, percentage: {value: 10}}}\n    timeout: 2s')));
  assert.equal(lines.length, 1, 'the same reasons are not repeated');
  store.apply(parseYaml(vs('')));
  assert.deepEqual(lines.slice(1), ['info VirtualService shop/web is applied at waypoints again']);
  stop();
});
