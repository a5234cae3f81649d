// The ztunnel xDS client against a real control plane server over TLS: initial sync into ProxyState, incremental
// updates and removals, NACK of an invalid resource (last good config kept), and a control plane restart on the same
// port (config keeps serving while it is down; on reconnect only differences are pushed thanks to
// initial_resource_versions).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TokenFileAuthenticator } from '../../src/controlplane/auth.js';
import { MeshCa } from '../../src/controlplane/ca.js';
import { ControlPlaneServer } from '../../src/controlplane/server.js';
import { xdsTypesOf } from '../../src/controlplane/xds.js';
import { TYPE_ADDRESS, TYPE_AUTHORIZATION } from '../../src/xds/types.js';
import { ProxyState } from '../../src/ztunnel/state.js';
import { XdsClient, proxyNodeId } from '../../src/xds/client.js';
import { CapturedLog, FakeSource } from '../controlplane/helpers.js';
import { RecordingLog, eventually, policy, service, workload } from '../ztunnel/helpers.js';

describe('ztunnel xDS client', () => {
  let dir: string;
  let ca: MeshCa;
  let source: FakeSource;
  let server: ControlPlaneServer | undefined;
  let serverLog: CapturedLog;
  let port: number;
  let tokenFile: string;
  const log = new RecordingLog();
  const state = new ProxyState(log.logger('state'));
  let client: XdsClient;

  const startServer = async (listen: string) => {
    serverLog = new CapturedLog();
    server = await ControlPlaneServer.start({
      ca,
      authenticator: new TokenFileAuthenticator(join(dir, 'node-tokens.json')),
      xdsTypes: xdsTypesOf(source),
      placement: { identitiesOnNode: () => new Set() },
      listen,
      debugListen: '127.0.0.1:0',
      log: serverLog,
    });
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ambit-zt-xds-'));
    writeFileSync(join(dir, 'node-tokens.json'), JSON.stringify({ 'token-node-1': 'node-1' }));
    tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, 'token-node-1\n');
    ca = await MeshCa.load({ trustDomain: 'cluster.local', stateDir: dir });
    source = new FakeSource([TYPE_ADDRESS, TYPE_AUTHORIZATION]);
    source.set(TYPE_ADDRESS, {
      'Kubernetes//Pod/default/a': workload('a', [10, 244, 1, 2], { policies: ['default/selected'] }),
      'Kubernetes//Pod/default/b': workload('b', [10, 244, 2, 2], { sa: 'client' }),
      'default/echo.default.svc.cluster.local': service('echo', 'default', [10, 96, 0, 20]),
    });
    source.set(TYPE_AUTHORIZATION, {
      'default/ns-allow': policy('ns-allow', 'default', 'ALLOW'),
      'istio-system/global-deny': policy('global-deny', 'istio-system', 'DENY', 'GLOBAL'),
      'default/selected': policy('selected', 'default', 'ALLOW', 'WORKLOAD_SELECTOR'),
    });
    await startServer('127.0.0.1:0');
    port = server!.port;
    client = new XdsClient({
      address: `127.0.0.1:${port}`,
      serverName: 'istiod.istio-system.svc',
      rootPem: ca.rootPem,
      tokenFile,
      nodeId: proxyNodeId('ztunnel', '172.18.0.2', 'ztunnel-node-1', 'istio-system'),
      metadata: { NODE_NAME: 'node-1' },
      subscriptions: state.xdsSubscriptions(),
      onSynced: (t) => state.markSynced(t),
      log: log.logger('xds'),
      initialBackoffMs: 50,
      maxBackoffMs: 200,
    });
    client.start();
  });

  after(async () => {
    client?.close();
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('syncs workloads, services and policies into ProxyState', async () => {
    await eventually('initial sync', () => state.synced);
    const a = state.workloadByIp('10.244.1.2');
    assert.equal(a?.name, 'a');
    assert.equal(state.workloadByIp('::ffff:10.244.2.2')?.name, 'b', 'IPv4-mapped addresses from dual-stack sockets resolve');
    assert.equal(state.identityOf(state.workloadByName('default', 'b')!), 'spiffe://cluster.local/ns/default/sa/client');
    const svc = state.serviceByVip('10.96.0.20');
    assert.equal(svc?.hostname, 'echo.default.svc.cluster.local');
    assert.equal(state.serviceByHostname('echo.default.svc.cluster.local')?.name, 'echo');
    const eps = state.endpointsOf(svc!);
    assert.deepEqual(eps.map((e) => e.workload.name).sort(), ['a', 'b']);
    assert.equal(eps[0]!.targetPort(80), 8080);
    assert.equal(eps[0]!.targetPort(81), undefined);
    // ztunnel's order: namespace policies, then global ones, then the ones the workload selects.
    assert.deepEqual(state.policiesFor(a!).map((p) => p.key), ['default/ns-allow', 'istio-system/global-deny', 'default/selected']);
    assert.ok(client.connected);
    assert.ok(serverLog.has('new delta connection for node:ztunnel-node-1.istio-system'), 'server saw our node id');
  });

  it("a host-network workload is known by name but not by its (the node's) address, as in ztunnel's WorkloadStore", async () => {
    const pod = workload('h', [10, 244, 1, 9]).workload!;
    const host = { workload: { ...pod, networkMode: 'HOST_NETWORK' as const } };
    source.set(TYPE_ADDRESS, { 'Kubernetes//Pod/default/h': host });
    await eventually('the host-network workload', () => state.workloadByName('default', 'h') !== undefined);
    assert.equal(state.workloadByIp('10.244.1.9'), undefined);
    source.set(TYPE_ADDRESS, { 'Kubernetes//Pod/default/h': { workload: { ...pod, networkMode: 'STANDARD' as const } } });
    await eventually('the same workload on the pod network', () => state.workloadByIp('10.244.1.9')?.name === 'h');
    source.set(TYPE_ADDRESS, {}, ['Kubernetes//Pod/default/h']);
    await eventually('its removal', () => state.workloadByName('default', 'h') === undefined && state.workloadByIp('10.244.1.9') === undefined);
  });

  it('applies updates and removals, and signals policy changes', async () => {
    let policyChanges = 0;
    const off = state.onPolicyChange(() => policyChanges++);
    source.set(TYPE_AUTHORIZATION, { 'default/ns-allow': policy('ns-allow', 'default', 'DENY') }, ['istio-system/global-deny']);
    await eventually('policy update', () => state.policy('istio-system/global-deny') === undefined && state.policy('default/ns-allow')?.action === 'DENY');
    assert.ok(policyChanges >= 1);
    assert.deepEqual(state.policiesFor(state.workloadByName('default', 'a')!).map((p) => `${p.key}:${p.action}`), [
      'default/ns-allow:DENY',
      'default/selected:ALLOW',
    ]);
    source.set(TYPE_ADDRESS, {}, ['Kubernetes//Pod/default/b']);
    await eventually('workload removal', () => state.workloadByIp('10.244.2.2') === undefined);
    assert.deepEqual(state.endpointsOf(state.serviceByVip('10.96.0.20')!).map((e) => e.workload.name), ['a']);
    off();
  });

  it('warns once about a policy key the workload lists but xDS never sent', async () => {
    source.set(TYPE_ADDRESS, { 'Kubernetes//Pod/default/c': workload('c', [10, 244, 1, 3], { policies: ['default/ghost'] }) });
    const c = await eventually('workload c', () => state.workloadByName('default', 'c'));
    assert.deepEqual(state.policiesFor(c).map((p) => p.key), ['default/ns-allow']);
    state.policiesFor(c);
    assert.equal(log.count('skipping unknown policy default/ghost'), 1);
  });

  it('NACKs an invalid resource, keeps the last good version and applies the rest', async () => {
    const bad = workload('a', [10, 244, 1, 2]);
    bad.workload!.addresses = [new Uint8Array([10, 244, 1, 2, 9])];
    source.set(TYPE_ADDRESS, {
      'Kubernetes//Pod/default/a': bad,
      'Kubernetes//Pod/default/d': workload('d', [10, 244, 1, 4]),
    });
    await eventually('NACK', () => client.stats.nacks > 0);
    await eventually('server logged the NACK', () => serverLog.has('ACK ERROR'));
    assert.match(client.lastNack ?? '', /Kubernetes\/\/Pod\/default\/a: workload Kubernetes\/\/Pod\/default\/a: invalid IP address of 5 bytes/);
    assert.equal(state.workloadByIp('10.244.1.2')?.name, 'a', 'last good version of a still serves');
    assert.equal(state.workloadByIp('10.244.1.4')?.name, 'd', 'the valid resource in the same response was applied');
    assert.ok(log.has('rejecting Address config'));
    // A fixed resource is accepted again.
    source.set(TYPE_ADDRESS, { 'Kubernetes//Pod/default/a': workload('a', [10, 244, 1, 5]) });
    await eventually('fixed resource', () => state.workloadByIp('10.244.1.5')?.name === 'a');
    assert.equal(state.workloadByIp('10.244.1.2'), undefined, 'the old address is unindexed');
  });

  it('keeps serving while the control plane is down and resumes with only the differences', async () => {
    await server!.close();
    server = undefined;
    await eventually('client notices the outage', () => !client.connected);
    // The last configuration still answers lookups.
    assert.equal(state.workloadByIp('10.244.1.5')?.name, 'a');
    assert.ok(state.serviceByVip('10.96.0.20'));

    // While down: one workload goes away, one arrives, the rest is unchanged.
    source.set(TYPE_ADDRESS, { 'Kubernetes//Pod/default/e': workload('e', [10, 244, 1, 6]) }, ['Kubernetes//Pod/default/c']);
    const connectsBefore = client.stats.connects;
    await startServer(`127.0.0.1:${port}`);
    await eventually('resync after restart', () => state.workloadByIp('10.244.1.6')?.name === 'e' && state.workloadByName('default', 'c') === undefined, 10_000);
    assert.ok(client.stats.connects > connectsBefore, 'a new stream was opened');
    // initial_resource_versions told the new server what we hold: it sent one Address and removed one, not all.
    assert.ok(serverLog.has('WDS: PUSH for node:ztunnel-node-1.istio-system resources:1 removed:1'), serverLog.lines.join('\n'));
    assert.ok(serverLog.has('WADS: PUSH for node:ztunnel-node-1.istio-system resources:0 removed:0'));
    assert.equal(state.workloadByIp('10.244.1.5')?.name, 'a');
  });
});

// The issue this guards: gRPC's channel back-off stacked on the client's, so a ztunnel came back 27 s after the control
// plane did, and a DENY deleted during the outage kept denying that long. The outage here lasts until the client has
// failed seven times in a row (its back-off at the cap), then the server comes back on the same port: the resync must
// follow within the 5 s cap (plus a margin for a loaded machine), whatever the outage's length.
describe('xDS client after a long control-plane outage', () => {
  const RESYNC_BOUND_MS = 5_000 + 3_000;
  let dir: string;
  let ca: MeshCa;
  let server: ControlPlaneServer | undefined;
  const log = new RecordingLog();
  const state = new ProxyState(log.logger('state'));
  const source = new FakeSource([TYPE_ADDRESS, TYPE_AUTHORIZATION]);
  let client: XdsClient | undefined;

  const startServer = async (listen: string) => {
    server = await ControlPlaneServer.start({
      ca,
      authenticator: new TokenFileAuthenticator(join(dir, 'node-tokens.json')),
      xdsTypes: xdsTypesOf(source),
      placement: { identitiesOnNode: () => new Set() },
      listen,
      debugListen: '127.0.0.1:0',
      log: new CapturedLog(),
    });
    return server.port;
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ambit-zt-xds-outage-'));
    writeFileSync(join(dir, 'node-tokens.json'), JSON.stringify({ 'token-node-1': 'node-1' }));
    writeFileSync(join(dir, 'token'), 'token-node-1\n');
    ca = await MeshCa.load({ trustDomain: 'cluster.local', stateDir: dir });
  });

  after(async () => {
    client?.close();
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('resyncs within the back-off cap once the server is back, and a DENY deleted meanwhile stops applying', async (t) => {
    source.set(TYPE_ADDRESS, { 'Kubernetes//Pod/default/a': workload('a', [10, 244, 1, 2]) });
    source.set(TYPE_AUTHORIZATION, { 'default/deny': policy('deny', 'default', 'DENY') });
    const port = await startServer('127.0.0.1:0');
    // The defaults, as the proxies run: no test-sized back-off.
    client = new XdsClient({
      address: `127.0.0.1:${port}`,
      serverName: 'istiod.istio-system.svc',
      rootPem: ca.rootPem,
      tokenFile: join(dir, 'token'),
      nodeId: proxyNodeId('ztunnel', '172.18.0.2', 'ztunnel-node-1', 'istio-system'),
      metadata: { NODE_NAME: 'node-1' },
      subscriptions: state.xdsSubscriptions(),
      onSynced: (t) => state.markSynced(t),
      log: log.logger('xds'),
    });
    client.start();
    await eventually('initial sync with the DENY', () => state.synced && state.policy('default/deny')?.action === 'DENY');

    await server!.close();
    server = undefined;
    source.set(TYPE_AUTHORIZATION, {}, ['default/deny']);
    await eventually('seven failed reconnects in a row', () => log.count('XDS client connection error') >= 7, 30_000);
    assert.equal(state.policy('default/deny')?.action, 'DENY', 'the last configuration keeps serving during the outage');

    await startServer(`127.0.0.1:${port}`);
    const back = Date.now();
    await eventually('the deleted DENY gone after the server is back', () => state.policy('default/deny') === undefined, RESYNC_BOUND_MS);
    assert.ok(client.connected);
    const waits = log.lines.filter((l) => l.includes('XDS client connection error')).map((l) => Number(/retrying in (\d+)ms/.exec(l)?.[1]));
    assert.ok(waits.every((ms) => ms <= 5_000), `every wait within the cap: ${waits.join(', ')}`);
    t.diagnostic(`resynced ${Date.now() - back}ms after the server was back`);
  });
});
