// Delta ADS over a real TLS gRPC connection: subscription, incremental pushes, removals, NACKs, reconnects with
// initial_resource_versions, authentication, encode-once caching and the debug endpoints.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { TYPE_ADDRESS, TYPE_AUTHORIZATION, type Address, type Authorization } from '../../src/xds/types.js';
import { messageTypeForUrl } from '../../src/xds/protos.js';
import { xdsTypesOf } from '../../src/controlplane/xds.js';
import { AdsStream, FakeSource, startControlPlane, type Fixture } from './helpers.js';

function workload(uid: string, ip: number[], sa = 'default'): Address {
  return {
    workload: {
      uid,
      name: uid.split('/').pop()!,
      namespace: 'default',
      addresses: [new Uint8Array(ip)],
      network: '',
      tunnelProtocol: 'HBONE',
      trustDomain: 'cluster.local',
      serviceAccount: sa,
      node: 'node-1',
      canonicalName: 'app',
      canonicalRevision: 'latest',
      workloadType: 'POD',
      workloadName: uid,
      services: { 'default/app.default.svc.cluster.local': { ports: [{ servicePort: 80, targetPort: 8080 }] } },
      authorizationPolicies: [],
      status: 'HEALTHY',
      clusterId: 'Kubernetes',
    },
  };
}

const denyAll: Authorization = { name: 'deny', namespace: 'default', scope: 'NAMESPACE', action: 'DENY', rules: [], dryRun: false };

const W1 = 'Kubernetes//Pod/default/a';
const W2 = 'Kubernetes//Pod/default/b';

describe('Delta ADS server', () => {
  let fx: Fixture;
  let source: FakeSource;
  let encodes = 0;
  const streams: AdsStream[] = [];
  const open = (token: string | null = 'token-node-1') => {
    const s = new AdsStream(fx.server.port, fx.server.rootPem, token);
    streams.push(s);
    return s;
  };

  before(async () => {
    source = new FakeSource([TYPE_ADDRESS, TYPE_AUTHORIZATION]);
    source.set(TYPE_ADDRESS, { [W1]: workload(W1, [10, 244, 1, 5]), [W2]: workload(W2, [10, 244, 1, 6]) });
    // Count encodings of Address messages to prove the cache encodes each version once, however many clients.
    const address = messageTypeForUrl(TYPE_ADDRESS);
    // (A Proxy, because protobufjs replaces a Type's own encode/fromObject with generated code on first use.)
    const countingEncode = (...args: Parameters<typeof address.encode>) => {
      encodes++;
      return address.encode(...args);
    };
    const counting = new Proxy(address, { get: (t, p) => (p === 'encode' ? countingEncode : Reflect.get(t, p)) });
    fx = await startControlPlane({
      types: [{ typeUrl: TYPE_ADDRESS, source, message: counting }, ...xdsTypesOf(source).filter((t) => t.typeUrl !== TYPE_ADDRESS)],
    });
  });
  after(async () => {
    for (const s of streams) s.close();
    await fx?.close();
  });

  let v1 = '';
  let v2 = '';
  let client: AdsStream;

  it('sends every resource on a wildcard subscription, with per-resource versions', async () => {
    client = open();
    client.subscribe(TYPE_ADDRESS);
    const r = await client.next();
    assert.equal(r.typeUrl, TYPE_ADDRESS);
    assert.deepEqual(r.resources.map((x) => x.name).sort(), [W1, W2]);
    const a = r.resources.find((x) => x.name === W1)!;
    assert.equal(a.value.workload.uid, W1);
    assert.deepEqual([...a.value.workload.addresses[0]], [10, 244, 1, 5]);
    assert.equal(a.value.workload.tunnelProtocol, 'HBONE');
    assert.equal(a.value.workload.services['default/app.default.svc.cluster.local'].ports[0].targetPort, 8080);
    v1 = a.version;
    v2 = r.resources.find((x) => x.name === W2)!.version;
    assert.ok(v1 && v2 && v1 !== v2);
    assert.deepEqual(r.removedResources, []);
    client.send({ typeUrl: TYPE_ADDRESS, responseNonce: r.nonce });
    assert.ok(fx.log.has('ADS: new delta connection for node:ztunnel-abc.istio-system-'));
  });

  it('answers an empty type with an empty response (ztunnel waits for it)', async () => {
    client.subscribe(TYPE_AUTHORIZATION);
    const r = await client.next();
    assert.equal(r.typeUrl, TYPE_AUTHORIZATION);
    assert.deepEqual(r.resources, []);
    client.send({ typeUrl: TYPE_AUTHORIZATION, responseNonce: r.nonce });
  });

  it('pushes only the changed resource on an update', async () => {
    source.set(TYPE_ADDRESS, { [W1]: workload(W1, [10, 244, 1, 5], 'reviews') });
    const r = await client.next();
    assert.deepEqual(r.resources.map((x) => x.name), [W1]);
    assert.equal(r.resources[0]!.value.workload.serviceAccount, 'reviews');
    assert.notEqual(r.resources[0]!.version, v1);
    v1 = r.resources[0]!.version;
    client.send({ typeUrl: TYPE_ADDRESS, responseNonce: r.nonce });
    assert.ok(fx.log.has('XDS: Pushing WDS'));
  });

  it('does not push when a re-applied resource has identical bytes', async () => {
    source.set(TYPE_ADDRESS, { [W1]: workload(W1, [10, 244, 1, 5], 'reviews') });
    assert.ok(await client.quiet(300));
  });

  it('pushes authorization policies on the same stream', async () => {
    source.set(TYPE_AUTHORIZATION, { 'default/deny': denyAll });
    const r = await client.next();
    assert.equal(r.typeUrl, TYPE_AUTHORIZATION);
    assert.equal(r.resources[0]!.name, 'default/deny');
    assert.equal(r.resources[0]!.value.action, 'DENY');
    assert.equal(r.resources[0]!.value.scope, 'NAMESPACE');
    client.send({ typeUrl: TYPE_AUTHORIZATION, responseNonce: r.nonce });
  });

  it('sends removals as removed_resources', async () => {
    source.set(TYPE_ADDRESS, {}, [W2]);
    const r = await client.next();
    assert.deepEqual(r.resources, []);
    assert.deepEqual(r.removedResources, [W2]);
    client.send({ typeUrl: TYPE_ADDRESS, responseNonce: r.nonce });
  });

  it('logs a NACK with the node, keeps serving and does not resend the rejected version', async () => {
    source.set(TYPE_ADDRESS, { [W2]: workload(W2, [10, 244, 1, 7]) });
    const r = await client.next();
    assert.deepEqual(r.resources.map((x) => x.name), [W2]);
    v2 = r.resources[0]!.version;
    client.send({ typeUrl: TYPE_ADDRESS, responseNonce: r.nonce, errorDetail: { code: grpc.status.INVALID_ARGUMENT, message: 'bad address' } });
    assert.ok(await client.quiet(300), 'a NACK must not trigger a resend');
    assert.ok(fx.log.has('ADS:WDS: ACK ERROR ztunnel-abc.istio-system-'), fx.log.lines.join('\n'));
    assert.ok(fx.log.has('INVALID_ARGUMENT:bad address'));
    const metrics = await fx.server.metrics.registry.getSingleMetricAsString('pilot_total_xds_rejects');
    assert.match(metrics, /pilot_total_xds_rejects\{type="wds"\} 1/);
    // Still serving: the next change arrives.
    source.set(TYPE_ADDRESS, { [W2]: workload(W2, [10, 244, 1, 8]) });
    const next = await client.next();
    assert.deepEqual(next.resources.map((x) => x.name), [W2]);
    assert.notEqual(next.resources[0]!.version, v2);
    v2 = next.resources[0]!.version;
    client.send({ typeUrl: TYPE_ADDRESS, responseNonce: next.nonce });
  });

  it('on reconnect sends only what differs from initial_resource_versions, plus removals', async () => {
    const again = open();
    again.subscribe(TYPE_ADDRESS, { initialResourceVersions: { [W1]: v1, [W2]: 'stale', 'Kubernetes//Pod/default/gone': 'x' } });
    const r = await again.next();
    assert.deepEqual(r.resources.map((x) => x.name), [W2]);
    assert.equal(r.resources[0]!.version, v2);
    assert.deepEqual(r.removedResources, ['Kubernetes//Pod/default/gone']);
  });

  it('refuses a stream without a token, or with an unknown one, as UNAUTHENTICATED', async () => {
    for (const token of [null, 'not-a-token']) {
      const s = open(token);
      s.subscribe(TYPE_ADDRESS);
      const err = await s.closed;
      assert.equal(err?.code, grpc.status.UNAUTHENTICATED, `token ${token}`);
      assert.match(err!.details, /authentication failure/);
    }
  });

  it('refuses a first request without a node id', async () => {
    const s = open();
    s.send({ typeUrl: TYPE_ADDRESS });
    const err = await s.closed;
    assert.equal(err?.code, grpc.status.INVALID_ARGUMENT);
    assert.equal(err?.details, 'missing node information');
  });

  it('encodes a changed resource once for many subscribed clients', async () => {
    const many = Array.from({ length: 20 }, () => open());
    for (const s of many) s.subscribe(TYPE_ADDRESS);
    for (const s of many) s.send({ typeUrl: TYPE_ADDRESS, responseNonce: (await s.next()).nonce });
    const before = encodes;
    source.set(TYPE_ADDRESS, { [W1]: workload(W1, [10, 244, 1, 9]) });
    const got = await Promise.all(many.map((s) => s.next()));
    assert.equal(encodes - before, 1);
    assert.ok(got.every((r) => r.resources.length === 1 && r.resources[0]!.name === W1));
    assert.equal(new Set(got.map((r) => r.resources[0]!.version)).size, 1);
  });

  it('serves /ready, /metrics and /debug/status on the debug port', async () => {
    const base = `http://127.0.0.1:${fx.server.debugPort}`;
    assert.equal((await fetch(`${base}/ready`)).status, 200);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    const connected = Number(/^pilot_xds (\d+)/m.exec(metrics)?.[1]);
    assert.ok(connected >= 22, `pilot_xds ${connected}`);
    assert.match(metrics, /pilot_xds_pushes\{type="wds"\} \d+/);
    const status = (await (await fetch(`${base}/debug/status`)).json()) as any;
    assert.equal(status.xds.resources[TYPE_ADDRESS], 2);
    assert.ok(status.xds.connections.some((c: any) => c.node === 'node-1' && c.proxyId === 'ztunnel-abc.istio-system'));
    assert.equal((await fetch(`${base}/nope`)).status, 404);
  });

  it('forgets a stream when its client goes away', async () => {
    const before = fx.server.xds.connectionInfo().length;
    const gone = streams.pop()!;
    gone.close();
    for (let i = 0; i < 50 && fx.server.xds.connectionInfo().length === before; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(fx.server.xds.connectionInfo().length, before - 1);
    assert.ok(fx.log.has('terminated with stream closed'));
  });
});
