// On-demand Delta xDS for istio.workload.Address, as ztunnel's XDS_ON_DEMAND uses it against istiod
// (generateDeltasOndemand): subscribe to nothing with `*` subscribed and unsubscribed in the first request and get
// the node's own workloads; ask by `network/IP` and get the resource with its aliases, and a Service's workloads with
// it; names that stand for nothing come back as removed; later changes reach only what the client holds or implies.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TYPE_ADDRESS, type Address } from '../../src/xds/types.js';
import { ADDRESS_ON_DEMAND } from '../../src/controlplane/on-demand.js';
import { AdsStream, FakeSource, startControlPlane, type Fixture } from './helpers.js';

const NODE_ID = 'ztunnel~172.18.0.2~ztunnel-abc.istio-system~istio-system.svc.cluster.local';

function workload(name: string, ip: number[], node: string, service: string): Address {
  return {
    workload: {
      uid: `Kubernetes//Pod/default/${name}`, name, namespace: 'default', addresses: [new Uint8Array(ip)], network: '',
      tunnelProtocol: 'HBONE', trustDomain: 'cluster.local', serviceAccount: 'default', node, canonicalName: name,
      canonicalRevision: 'latest', workloadType: 'POD', workloadName: name,
      services: { [`default/${service}.default.svc.cluster.local`]: { ports: [{ servicePort: 80, targetPort: 8080 }] } },
      authorizationPolicies: [], status: 'HEALTHY', clusterId: 'Kubernetes',
    },
  } as unknown as Address;
}

function service(name: string, vip: number[]): Address {
  return {
    service: { name, namespace: 'default', hostname: `${name}.default.svc.cluster.local`, addresses: [{ network: '', address: new Uint8Array(vip) }], ports: [{ servicePort: 80, targetPort: 8080 }], subjectAltNames: [] },
  } as unknown as Address;
}

const uid = (name: string) => `Kubernetes//Pod/default/${name}`;
const svcKey = (name: string) => `default/${name}.default.svc.cluster.local`;

describe('on-demand Address subscriptions', () => {
  let fx: Fixture;
  const source = new FakeSource([TYPE_ADDRESS]);
  const streams: AdsStream[] = [];

  before(async () => {
    source.set(TYPE_ADDRESS, {
      [uid('local')]: workload('local', [10, 244, 1, 5], 'node-1', 'app'),
      [uid('remote')]: workload('remote', [10, 244, 2, 6], 'node-2', 'app'),
      [uid('other')]: workload('other', [10, 244, 2, 7], 'node-2', 'other'),
      [svcKey('app')]: service('app', [10, 96, 0, 10]),
      [svcKey('other')]: service('other', [10, 96, 0, 11]),
    });
    fx = await startControlPlane({ types: [{ typeUrl: TYPE_ADDRESS, source, onDemand: ADDRESS_ON_DEMAND }] });
  });
  after(async () => {
    for (const s of streams) s.close();
    await fx?.close();
  });

  const onDemand = () => {
    const s = new AdsStream(fx.server.port, fx.server.rootPem, 'token-node-1');
    streams.push(s);
    s.send({
      node: { id: NODE_ID, metadata: { fields: { NODE_NAME: { stringValue: 'node-1' } } } },
      typeUrl: TYPE_ADDRESS, resourceNamesSubscribe: ['*'], resourceNamesUnsubscribe: ['*'],
    });
    return s;
  };

  it('a first request subscribing to nothing gets only the workloads on its own node', async () => {
    const s = onDemand();
    const r = await s.next();
    assert.deepEqual(r.resources.map((x) => x.name), [uid('local')]);
    assert.deepEqual(r.resources[0]!.aliases, ['/10.244.1.5']);
    assert.deepEqual(r.removedResources, []);
  });

  it('asking by a VIP brings the Service with its aliases and its workloads; an unknown address comes back removed', async () => {
    const s = onDemand();
    const first = await s.next();
    s.send({ typeUrl: TYPE_ADDRESS, responseNonce: first.nonce, resourceNamesSubscribe: ['/10.96.0.11', '/10.1.2.3'] });
    const r = await s.next();
    assert.deepEqual(r.resources.map((x) => x.name).sort(), [svcKey('other'), uid('other')].sort());
    assert.deepEqual(r.resources.find((x) => x.name === svcKey('other'))!.aliases, ['/10.96.0.11']);
    assert.deepEqual(r.removedResources, ['/10.1.2.3']);
  });

  it('asking by a pod IP brings that workload; changes then reach what it holds, nothing else', async () => {
    const s = onDemand();
    const first = await s.next();
    s.send({ typeUrl: TYPE_ADDRESS, responseNonce: first.nonce, resourceNamesSubscribe: ['/10.244.2.6'] });
    const r = await s.next();
    assert.deepEqual(r.resources.map((x) => x.name), [uid('remote')]);
    s.send({ typeUrl: TYPE_ADDRESS, responseNonce: r.nonce });
    // A change to a workload it never asked for, on another node: not sent.
    source.set(TYPE_ADDRESS, { [uid('other')]: workload('other', [10, 244, 2, 8], 'node-2', 'other') });
    assert.equal(await s.quiet(300), true);
    // A change to the workload it asked for: sent.
    source.set(TYPE_ADDRESS, { [uid('remote')]: workload('remote', [10, 244, 2, 9], 'node-2', 'app') });
    const pushed = await s.next();
    assert.deepEqual(pushed.resources.map((x) => x.name), [uid('remote')]);
    s.send({ typeUrl: TYPE_ADDRESS, responseNonce: pushed.nonce });
    // A new workload on its own node: sent without being asked for.
    source.set(TYPE_ADDRESS, { [uid('newcomer')]: workload('newcomer', [10, 244, 1, 9], 'node-1', 'other') });
    const local = await s.next();
    assert.deepEqual(local.resources.map((x) => x.name), [uid('newcomer')]);
  });

  it('a wildcard client still gets everything, without aliases', async () => {
    const s = new AdsStream(fx.server.port, fx.server.rootPem, 'token-node-1');
    streams.push(s);
    s.subscribe(TYPE_ADDRESS);
    const r = await s.next();
    assert.equal(r.resources.length, 6);
    assert.ok(r.resources.every((x) => x.aliases.length === 0));
  });
});
