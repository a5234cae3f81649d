// ClusterSource against a real supervisor-style API on a Unix socket: snapshot, live changes, a dropped watch that
// reconnects and re-lists (removing what vanished meanwhile), and policy status written back.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import type { Server, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Resource } from '../../src/api/types.js';
import { ClusterSource } from '../../src/controlplane/cluster-source.js';
import type { Logger } from '../../src/controlplane/log.js';
import { STREAMED, serveJson } from '../../src/common/rpc.js';
import { ConfigStore } from '../../src/model/store.js';

const ns = (labels: Record<string, string> = {}): Resource => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop', labels, resourceVersion: '3' } });
const pod = (ip: string): Resource =>
  ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'web', namespace: 'shop', resourceVersion: '7' },
    spec: { nodeName: 'node-1', containers: [{ name: 'c', command: ['sleep'] }] },
    status: { phase: 'Running', podIP: ip },
  }) as Resource;
const routeParent = {
  parentRef: { group: '', kind: 'Service', name: 'web' },
  controllerName: 'istio.io/gateway-controller',
  conditions: [{ type: 'Accepted', status: 'True' as const, reason: 'Accepted', message: 'Route was valid' }],
};
const policy: Resource = {
  apiVersion: 'security.istio.io/v1',
  kind: 'AuthorizationPolicy',
  metadata: { name: 'deny', namespace: 'shop' },
  spec: { action: 'DENY', rules: [{}] },
  status: { conditions: [{ type: 'ZtunnelAccepted', status: 'True' }] },
} as unknown as Resource;

async function until(what: string, cond: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('ClusterSource', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ambit-cs-'));
  const socket = join(dir, 'supervisor.sock');
  let snapshot: Resource[] = [];
  const streams: ServerResponse[] = [];
  const statusPosts: unknown[] = [];
  const warnings: string[] = [];
  const log: Logger = { info: () => undefined, warn: (m) => warnings.push(m), error: (m) => warnings.push(m) };
  let server: Server;
  const store = new ConfigStore();
  const source = new ClusterSource({
    socketPath: socket,
    store,
    log,
    statuses: () => [
      { kind: 'AuthorizationPolicy', namespace: 'shop', name: 'deny', conditions: [{ type: 'ZtunnelAccepted', status: 'True', reason: 'Accepted', message: 'attached to ztunnel' }] },
      { kind: 'HTTPRoute', namespace: 'shop', name: 'canary', conditions: [], parents: [routeParent] },
    ],
  });
  const send = (e: unknown) => streams.at(-1)!.write(JSON.stringify(e) + '\n');

  before(async () => {
    snapshot = [ns({ 'istio.io/dataplane-mode': 'ambient' }), pod('10.244.1.2'), policy];
    server = await serveJson(socket, {
      'GET /v1/watch': (_b, _q, res) => {
        res.writeHead(200, { 'content-type': 'application/x-ndjson' });
        for (const resource of snapshot) res.write(JSON.stringify({ type: 'ADDED', resource }) + '\n');
        res.write('{"type":"SYNCED"}\n');
        streams.push(res);
        return STREAMED;
      },
      'POST /v1/status': (body) => {
        statusPosts.push(body);
        return { updated: 1 };
      },
    });
  });
  after(() => {
    source.close();
    for (const s of streams) s.destroy();
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('starts with the snapshot, keeping workload status but neither its own output nor resourceVersion', async () => {
    await source.start();
    assert.equal(store.countOf('Namespace') + store.countOf('Pod') + store.countOf('AuthorizationPolicy'), 3);
    const p = store.list('Pod', 'shop')[0]!;
    assert.equal(p.status?.podIP, '10.244.1.2');
    assert.equal(p.metadata.resourceVersion, undefined);
    assert.equal((store.list('AuthorizationPolicy', 'shop')[0] as { status?: unknown }).status, undefined);
  });

  it('applies changes and deletions as they arrive', async () => {
    send({ type: 'MODIFIED', resource: pod('10.244.1.9') });
    await until('pod IP change', () => store.list('Pod', 'shop')[0]?.status?.podIP === '10.244.1.9');
    send({ type: 'DELETED', resource: policy });
    await until('policy removal', () => store.countOf('AuthorizationPolicy') === 0);
  });

  it('writes policy status back to the cluster, and a route\'s as its status.parents alone', async () => {
    await until('a status POST', () => statusPosts.length > 0);
    assert.deepEqual(statusPosts[0], {
      items: [
        { kind: 'AuthorizationPolicy', namespace: 'shop', name: 'deny', status: { conditions: [{ type: 'ZtunnelAccepted', status: 'True', reason: 'Accepted', message: 'attached to ztunnel' }] } },
        { kind: 'HTTPRoute', namespace: 'shop', name: 'canary', status: { parents: [routeParent] } },
      ],
    });
  });

  it('keeps serving through a dropped watch, then re-lists and drops what vanished meanwhile', async () => {
    snapshot = [ns({})];
    streams.at(-1)!.destroy();
    await until('the warning', () => warnings.some((w) => w.includes('lost the cluster watch')));
    assert.equal(store.countOf('Pod'), 1, 'the last known state stays until the re-list (reconnect waits 200 ms)');
    await until('re-list', () => store.countOf('Pod') === 0);
    assert.deepEqual(store.list('Namespace')[0]?.metadata.labels, {});
    assert.equal(streams.length, 2);
  });
});
