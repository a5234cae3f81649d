// The waypoint's side of Delta ADS against a real ControlPlaneServer over TLS: glob collection subscriptions
// (`<ns>/<gateway>/*`) with the real XdsClient, unsubscribing a glob, and who may read what (meshXdsAuthorizer): a
// node proxy never reads waypoint configuration; a waypoint pod, authenticated by its service account token (signed
// by ServiceAccountIssuer, checked against its JWKS file and the pod's existence), reads Address and its own
// waypoint's collection only.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { Resource } from '../../src/api/types.js';
import { AnyAuthenticator, ServiceAccountTokenAuthenticator, TokenFileAuthenticator } from '../../src/controlplane/auth.js';
import { MeshCa } from '../../src/controlplane/ca.js';
import { meshXdsAuthorizer } from '../../src/controlplane/run.js';
import { ControlPlaneServer } from '../../src/controlplane/server.js';
import { xdsTypesOf } from '../../src/controlplane/xds.js';
import { ServiceAccountIssuer } from '../../src/local/tokens.js';
import { AmbientIndex } from '../../src/model/ambient.js';
import { ConfigStore } from '../../src/model/store.js';
import { XdsClient, proxyNodeId } from '../../src/xds/client.js';
import { TYPE_ADDRESS, TYPE_AUTHORIZATION, TYPE_WAYPOINT, waypointCollection, type WaypointResource } from '../../src/xds/types.js';
import { RecordingLog, eventually, service } from '../ztunnel/helpers.js';
import { AdsStream, CapturedLog, FakeSource, TOKENS, tempDir } from './helpers.js';

const self = (ns: string, name: string, policies: string[] = []): WaypointResource => ({
  waypoint: { name, namespace: ns, hostname: `${name}.${ns}.svc.cluster.local`, trustDomain: 'cluster.local', trafficType: 'SERVICE', policies },
});
const svc = (name: string): WaypointResource => ({
  service: { name, namespace: 'shop', hostname: `${name}.shop.svc.cluster.local`, ports: [{ port: 80, name: 'http', protocol: 'HTTP' }], policies: [], routes: [] },
});
const pol = (name: string, action: 'ALLOW' | 'DENY' = 'ALLOW'): WaypointResource => ({ policy: { name, namespace: 'shop', action, rules: [], dryRun: false } });

const WP = 'shop/wp/';
const OTHER = 'shop/other/';

function cluster(): Resource[] {
  const gateway = (name: string): Resource => ({
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'Gateway',
    metadata: { name, namespace: 'shop' },
    spec: { gatewayClassName: 'istio-waypoint', listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE' }] },
  });
  const pod = (name: string, sa: string): Resource => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'shop', uid: `uid-${name}`, labels: { 'gateway.networking.k8s.io/gateway-name': sa } },
    spec: { serviceAccountName: sa, nodeName: 'node-1', containers: [{ name: 'istio-proxy' }] },
    status: { podIP: name === 'wp-1' ? '10.1.0.10' : '10.1.0.11' },
  });
  return [gateway('wp'), gateway('other'), pod('wp-1', 'wp'), pod('other-1', 'other')];
}

describe('waypoint xDS: glob collections and authorization', () => {
  const { dir, cleanup } = tempDir('wp-xds');
  const store = new ConfigStore();
  const index = new AmbientIndex(store);
  const source = new FakeSource([TYPE_ADDRESS, TYPE_AUTHORIZATION, TYPE_WAYPOINT]);
  const serverLog = new CapturedLog();
  const clientLog = new RecordingLog();
  const streams: AdsStream[] = [];
  let server: ControlPlaneServer;
  let issuer: ServiceAccountIssuer;
  let wpToken: string;
  let client: XdsClient | undefined;
  const open = (token: string | null) => {
    const s = new AdsStream(server.port, server.rootPem, token);
    streams.push(s);
    return s;
  };
  const tokenFor = (pod: string, sa: string) => issuer.token({ namespace: 'shop', serviceAccount: sa, pod: { name: pod, uid: `uid-${pod}` }, node: 'node-1' });

  before(async () => {
    store.apply(cluster());
    source.set(TYPE_ADDRESS, { 'shop/web.shop.svc.cluster.local': service('web', 'shop', [10, 96, 0, 1]) });
    source.set(TYPE_WAYPOINT, {
      [`${WP}waypoint`]: self('shop', 'wp', ['shop/deny']),
      [`${WP}service/shop/web.shop.svc.cluster.local`]: svc('web'),
      [`${WP}policy/shop/deny`]: pol('deny', 'DENY'),
      [`${OTHER}waypoint`]: self('shop', 'other'),
      [`${OTHER}service/shop/api.shop.svc.cluster.local`]: svc('api'),
    });
    const tokenFile = join(dir, 'node-tokens.json');
    writeFileSync(tokenFile, JSON.stringify(TOKENS));
    const jwks = join(dir, 'sa-jwks.json');
    issuer = await ServiceAccountIssuer.load(join(dir, 'sa-key.pem'), jwks);
    wpToken = await tokenFor('wp-1', 'wp');
    server = await ControlPlaneServer.start({
      ca: await MeshCa.load({ trustDomain: 'cluster.local', stateDir: dir }),
      authenticator: new AnyAuthenticator([new TokenFileAuthenticator(tokenFile), new ServiceAccountTokenAuthenticator(jwks, (ns, name, uid) => index.hasPod(ns, name, uid))]),
      authorize: meshXdsAuthorizer(index),
      xdsTypes: xdsTypesOf(source),
      placement: index,
      listen: '127.0.0.1:0',
      debugListen: '127.0.0.1:0',
      log: serverLog,
    });
  });

  after(async () => {
    client?.close();
    for (const s of streams) s.close();
    await server?.close();
    index.close();
    cleanup();
  });

  it('the XdsClient of a waypoint receives exactly its collection, then only changes under it', async () => {
    writeFileSync(join(dir, 'wp-token'), wpToken + '\n');
    const held = { address: new Map<string, any>(), waypoint: new Map<string, any>() };
    const batches: string[][] = [];
    const follow = (m: Map<string, any>) => (upserts: Map<string, any>, removed: string[]) => {
      batches.push([...upserts.keys(), ...removed.map((n) => `-${n}`)]);
      for (const [k, v] of upserts) m.set(k, v);
      for (const n of removed) m.delete(n);
    };
    client = new XdsClient({
      address: `127.0.0.1:${server.port}`,
      serverName: 'istiod.istio-system.svc',
      rootPem: server.rootPem,
      tokenFile: join(dir, 'wp-token'),
      nodeId: proxyNodeId('waypoint', '10.1.0.10', 'wp-1', 'shop'),
      metadata: {},
      subscriptions: [
        { typeUrl: TYPE_ADDRESS, shortName: 'Address', names: ['*'], apply: follow(held.address) },
        { typeUrl: TYPE_WAYPOINT, shortName: 'Waypoint', names: [waypointCollection('shop', 'wp')], apply: follow(held.waypoint) },
      ],
      log: clientLog.logger('xds'),
      initialBackoffMs: 50,
      maxBackoffMs: 200,
    });
    client.start();
    await eventually('waypoint collection', () => held.waypoint.size === 3 && held.address.size === 1);
    assert.deepEqual([...held.waypoint.keys()].sort(), [`${WP}policy/shop/deny`, `${WP}service/shop/web.shop.svc.cluster.local`, `${WP}waypoint`]);
    assert.equal(held.waypoint.get(`${WP}policy/shop/deny`).policy.action, 'DENY');
    assert.ok(serverLog.has('new delta connection for node:wp-1.shop-'));
    assert.ok(serverLog.has('(authenticated serviceaccount shop/wp)'));

    // A change elsewhere, then one under our prefix: only the latter arrives (in order, so the former never will).
    batches.length = 0;
    source.set(TYPE_WAYPOINT, { [`${OTHER}policy/shop/x`]: pol('x') });
    source.set(TYPE_WAYPOINT, { [`${WP}policy/shop/allow`]: pol('allow'), [`${WP}waypoint`]: self('shop', 'wp', ['shop/allow', 'shop/deny']) });
    await eventually('own change', () => held.waypoint.has(`${WP}policy/shop/allow`));
    assert.deepEqual(batches.flat().sort(), [`${WP}policy/shop/allow`, `${WP}waypoint`]);
    assert.deepEqual(held.waypoint.get(`${WP}waypoint`).waypoint.policies, ['shop/allow', 'shop/deny']);

    // Removals under the prefix reach it; removals elsewhere do not.
    source.set(TYPE_WAYPOINT, {}, [`${OTHER}policy/shop/x`]);
    source.set(TYPE_WAYPOINT, {}, [`${WP}service/shop/web.shop.svc.cluster.local`]);
    await eventually('own removal', () => held.waypoint.size === 3 && !held.waypoint.has(`${WP}service/shop/web.shop.svc.cluster.local`));
    assert.ok(!batches.flat().some((n) => n.includes(OTHER)), batches.join(' | '));
    assert.equal(client.stats.nacks, 0);
  });

  it('unsubscribing a glob stops its pushes; a later exact subscription gets just that name', async () => {
    const s = open(wpToken);
    s.subscribe(TYPE_WAYPOINT, { resourceNamesSubscribe: [waypointCollection('shop', 'wp')] });
    const first = await s.next();
    assert.deepEqual(first.resources.map((r) => r.name).sort(), [`${WP}policy/shop/allow`, `${WP}policy/shop/deny`, `${WP}waypoint`]);
    s.send({ typeUrl: TYPE_WAYPOINT, responseNonce: first.nonce, resourceNamesUnsubscribe: [waypointCollection('shop', 'wp')] });
    // The server answers no unsubscription; it shows in what it believes the stream holds.
    await eventually('unsubscription processed', () =>
      server.xds.connectionInfo().some((c) => c.proxyId === 'ztunnel-abc.istio-system' && c.watched.some((w) => w.typeUrl === TYPE_WAYPOINT && w.resources === 0)),
    );
    source.set(TYPE_WAYPOINT, { [`${WP}policy/shop/allow`]: pol('allow', 'DENY') });
    s.send({ typeUrl: TYPE_WAYPOINT, resourceNamesSubscribe: [`${WP}waypoint`] });
    const next = await s.next();
    assert.deepEqual(next.resources.map((r) => r.name), [`${WP}waypoint`], 'the change to an unsubscribed name was not pushed');
    assert.equal(next.resources[0]!.value.waypoint.name, 'wp');
    source.set(TYPE_WAYPOINT, { [`${WP}policy/shop/allow`]: pol('allow') });
    source.set(TYPE_WAYPOINT, { [`${WP}waypoint`]: self('shop', 'wp', ['shop/deny']) });
    assert.deepEqual((await s.next()).resources.map((r) => r.name), [`${WP}waypoint`]);
  });

  const refused = (caller: string, what: string, why: string) => `${caller} may not subscribe to ${what}: ${why}`;
  const NODE_WHY = 'waypoint configuration is served to waypoints, which authenticate with their own service account token';
  const cases: { name: string; token: () => string | Promise<string>; typeUrl: string; names?: string[]; details?: string }[] = [
    { name: 'a node proxy may read Address', token: () => 'token-node-1', typeUrl: TYPE_ADDRESS },
    { name: 'a node proxy may not read a waypoint collection', token: () => 'token-node-1', typeUrl: TYPE_WAYPOINT, names: [waypointCollection('shop', 'wp')], details: refused('node node-1', `${TYPE_WAYPOINT} shop/wp/*`, NODE_WHY) },
    { name: 'a node proxy may not read every waypoint resource', token: () => 'token-node-1', typeUrl: TYPE_WAYPOINT, details: refused('node node-1', `${TYPE_WAYPOINT} *`, NODE_WHY) },
    { name: 'a waypoint may read Address', token: () => wpToken, typeUrl: TYPE_ADDRESS },
    { name: 'a waypoint may read one resource of its own collection', token: () => wpToken, typeUrl: TYPE_WAYPOINT, names: [`${WP}waypoint`] },
    { name: 'a waypoint may not read Authorization', token: () => wpToken, typeUrl: TYPE_AUTHORIZATION, details: refused('serviceaccount shop/wp', 'WADS *', 'only node proxies read it') },
    {
      name: "a waypoint may not read another waypoint's collection",
      token: () => wpToken,
      typeUrl: TYPE_WAYPOINT,
      names: [waypointCollection('shop', 'wp'), waypointCollection('shop', 'other')],
      details: refused('serviceaccount shop/wp', `${TYPE_WAYPOINT} shop/wp/*, shop/other/*`, '"shop/other/*" is not the configuration of a waypoint that runs as shop/wp'),
    },
    {
      name: 'a waypoint may not read every waypoint resource',
      token: () => wpToken,
      typeUrl: TYPE_WAYPOINT,
      details: refused('serviceaccount shop/wp', `${TYPE_WAYPOINT} *`, '"*" is not the configuration of a waypoint that runs as shop/wp'),
    },
    {
      name: 'the other waypoint may read its own but not ours',
      token: () => tokenFor('other-1', 'other'),
      typeUrl: TYPE_WAYPOINT,
      names: [`${WP}waypoint`],
      details: refused('serviceaccount shop/other', `${TYPE_WAYPOINT} shop/wp/waypoint`, '"shop/wp/waypoint" is not the configuration of a waypoint that runs as shop/other'),
    },
    {
      name: 'a collection of a Gateway that is no waypoint',
      token: () => wpToken,
      typeUrl: TYPE_WAYPOINT,
      names: ['shop/ghost/*'],
      details: refused('serviceaccount shop/wp', `${TYPE_WAYPOINT} shop/ghost/*`, '"shop/ghost/*" is not the configuration of a waypoint that runs as shop/wp'),
    },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const s = open(await c.token());
      s.subscribe(c.typeUrl, c.names ? { resourceNamesSubscribe: c.names } : {});
      if (c.details === undefined) {
        const r = await s.next();
        assert.equal(r.typeUrl, c.typeUrl);
        assert.ok(r.resources.length > 0);
        return;
      }
      const err = await s.closed;
      assert.equal(err?.code, grpc.status.PERMISSION_DENIED);
      assert.equal(err?.details, c.details);
      assert.ok(serverLog.has(`refused: ${c.details.slice(c.details.lastIndexOf(': ') + 2)}`));
    });
  }

  it('a later subscription on an allowed stream is checked too', async () => {
    const s = open(wpToken);
    s.subscribe(TYPE_WAYPOINT, { resourceNamesSubscribe: [waypointCollection('shop', 'wp')] });
    const first = await s.next();
    s.send({ typeUrl: TYPE_WAYPOINT, responseNonce: first.nonce, resourceNamesSubscribe: [`${OTHER}waypoint`] });
    const err = await s.closed;
    assert.equal(err?.code, grpc.status.PERMISSION_DENIED);
    assert.match(err?.details ?? '', /"shop\/other\/waypoint" is not the configuration of a waypoint that runs as shop\/wp$/);
  });

  it("a token outlives neither its pod nor the pod's uid", async () => {
    store.remove(['Pod/shop/other-1']);
    const gone = open(await tokenFor('other-1', 'other'));
    gone.subscribe(TYPE_ADDRESS);
    const err = await gone.closed;
    assert.deepEqual([err?.code, err?.details], [grpc.status.UNAUTHENTICATED, 'authentication failure: pod shop/other-1 has been deleted']);
    // Recreated under the same name: a new uid, so the old pod's token stays refused.
    store.apply([{ ...cluster()[3]!, metadata: { ...cluster()[3]!.metadata, uid: 'uid-other-1-new' } } as Resource]);
    const stale = open(await tokenFor('other-1', 'other'));
    stale.subscribe(TYPE_ADDRESS);
    const staleErr = await stale.closed;
    assert.deepEqual([staleErr?.code, staleErr?.details], [grpc.status.UNAUTHENTICATED, 'authentication failure: pod shop/other-1 has been deleted']);
  });
});
