// The ztunnel pods' istio-token as the local cluster writes it: for each ztunnel pod object the cluster published (from
// componentObjects, as publishComponentObjects stores them), a token of istio-system/ztunnel for audience istio-ca bound
// to that pod and its node, in the file the node's ztunnel reads, mode 0600; the API server's TokenReview accepts it.
// A pod published again after a delete, or a re-created service account, gets a new token at once; a look-alike pod
// a user made does not.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { ResourceStore, type KubeObject } from '../../src/apiserver/store.js';
import { componentObjects, type ComponentPlacement } from '../../src/local/component-objects.js';
import { ZtunnelTokens } from '../../src/local/component-tokens.js';
import { StateLayout } from '../../src/local/layout.js';
import { ServiceAccountIssuer } from '../../src/local/tokens.js';
import { eventually } from '../support/eventually.js';

const PLACEMENTS: ComponentPlacement[] = [
  { component: 'controlplane', ip: '172.18.0.1', healthy: true, restarts: 0 },
  { component: 'ztunnel', node: 'node-1', ip: '172.18.0.2', healthy: true, restarts: 0 },
  { component: 'ztunnel', node: 'node-2', ip: '172.18.0.3', healthy: true, restarts: 0 },
];

describe('ZtunnelTokens', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ambit-ztunnel-tokens-'));
  const layout = new StateLayout(dir);
  const store = new ResourceStore();
  const published = new Set<string>();
  const logged: string[] = [];
  let tokens: ZtunnelTokens | undefined;
  after(() => {
    tokens?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** What publishComponentObjects does: store the objects, remember the pods' uids, then sync the tokens. */
  const publish = () => {
    for (const o of componentObjects(PLACEMENTS, 2, undefined)) {
      store.put(o, true);
      if (o.kind === 'Pod') published.add(store.getObject('', 'Pod', o.metadata.namespace, o.metadata.name)!.metadata.uid!);
    }
    tokens!.sync();
  };
  const ztunnelPod = (node: string) => store.listObjects('', 'Pod', 'istio-system').find((p) => p.metadata.name.startsWith('ztunnel-') && (p.spec as { nodeName: string }).nodeName === node)!;
  const token = (node: string) => readFileSync(layout.ztunnelToken(node), 'utf8').trim();
  const boundPod = (node: string) => (decodeJwt(token(node))['kubernetes.io'] as { pod: { uid: string } }).pod.uid;

  it("writes each node's token, bound to its ztunnel pod and node, and the API server's review accepts it", async () => {
    const issuer = await ServiceAccountIssuer.load(layout.serviceAccountKey, layout.serviceAccountJwks);
    tokens = new ZtunnelTokens({ issuer, store, layout, published, log: (l) => logged.push(l) });
    publish();
    for (const node of ['node-1', 'node-2']) {
      await eventually(`the token of ${node}`, () => statSync(layout.ztunnelToken(node)).isFile());
      const pod = ztunnelPod(node);
      const claims = decodeJwt(token(node));
      assert.equal(claims.sub, 'system:serviceaccount:istio-system:ztunnel');
      assert.deepEqual(claims.aud, ['istio-ca']);
      assert.equal(claims.exp! - claims.iat!, 43200);
      assert.deepEqual(claims['kubernetes.io'], {
        namespace: 'istio-system',
        pod: { name: pod.metadata.name, uid: pod.metadata.uid },
        serviceaccount: { name: 'ztunnel', uid: store.getObject('', 'ServiceAccount', 'istio-system', 'ztunnel')!.metadata.uid },
        node: { name: node },
      });
      assert.equal(statSync(layout.ztunnelToken(node)).mode & 0o777, 0o600);
      const review = (await issuer.review(token(node), ['istio-ca'], (kind, ns, name) => store.getObject('', kind, ns, name)?.metadata.uid)) as { authenticated: boolean };
      assert.equal(review.authenticated, true);
    }
    assert.deepEqual(logged, []);
  });

  it('leaves a token alone while its pod and service account stay, and writes a new one for a pod published again', async () => {
    const before = token('node-1');
    publish();
    assert.equal(token('node-1'), before, 'an unchanged pod keeps its token');
    const old = ztunnelPod('node-1');
    store.removeObject('', 'Pod', 'istio-system', old.metadata.name);
    publish();
    const again = ztunnelPod('node-1');
    assert.notEqual(again.metadata.uid, old.metadata.uid);
    await eventually('a token bound to the new pod', () => boundPod('node-1') === again.metadata.uid);
    assert.equal(boundPod('node-2'), ztunnelPod('node-2').metadata.uid, "the other node's token is untouched");
  });

  it('writes new tokens when the service account is re-created', async () => {
    const before = [token('node-1'), token('node-2')];
    store.removeObject('', 'ServiceAccount', 'istio-system', 'ztunnel');
    publish();
    const uid = store.getObject('', 'ServiceAccount', 'istio-system', 'ztunnel')!.metadata.uid;
    await eventually('tokens naming the new service account', () =>
      ['node-1', 'node-2'].every((node) => (decodeJwt(token(node))['kubernetes.io'] as { serviceaccount: { uid: string } }).serviceaccount.uid === uid),
    );
    assert.notDeepEqual([token('node-1'), token('node-2')], before);
  });

  it("gives a user's look-alike ztunnel pod no node's token", async () => {
    const real = ztunnelPod('node-2');
    const before = token('node-2');
    const lookAlike: KubeObject = { ...structuredClone(real), metadata: { ...structuredClone(real.metadata), name: 'ztunnel-fake', uid: undefined, resourceVersion: undefined } };
    store.put(lookAlike, true);
    publish();
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(token('node-2'), before, 'not even rewritten');
  });
});
