// The API server as informers meet it across restarts and installs: a watch resuming from a resourceVersion that a
// previous store issued (the server restarted without its history) is told to list again (410), and a server that
// stands for a cluster without Istio's CRDs answers 404 for their resources until the CRD is created, and close()
// returns though a client is connecting at that moment.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { once } from 'node:events';
import { request } from 'node:https';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { RESOURCE_TYPES } from '../../src/api/kinds.js';
import { ResourceStore } from '../../src/apiserver/store.js';
import { TestApiServer } from '../support/api-server.js';

/** Every line of a watch stream, read until the server ends it. */
function watchLines(api: TestApiServer, path: string): Promise<{ type: string; object: Record<string, unknown> }[]> {
  return new Promise((resolve, reject) => {
    const req = request(api.requestOptions('GET', path), (res) => {
      assert.equal(res.statusCode, 200);
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString('utf8')));
      res.on('end', () => resolve(text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { type: string; object: Record<string, unknown> })));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

describe('API server: watch resume after a restart, kinds without CRDs', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ambit-apiserver-'));
  let api: TestApiServer;
  const ns = { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop' } };

  before(async () => {
    const store = new ResourceStore();
    store.put(ns as never);
    api = await TestApiServer.start({ store, dir, builtInTypes: RESOURCE_TYPES.filter((t) => t.group !== 'security.istio.io') });
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers a watch from a resourceVersion newer than its store with 410, so the client lists again', async () => {
    const old = api.store;
    for (let i = 0; i < 5; i++) old.put({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `c${i}`, namespace: 'shop' } } as never);
    const lastSeen = old.resourceVersion;
    await api.close();
    const fresh = new ResourceStore();
    fresh.put(ns as never);
    await api.listen(fresh);
    assert.ok(fresh.resourceVersion < lastSeen);
    const events = await watchLines(api, `/api/v1/namespaces/shop/configmaps?watch=true&resourceVersion=${lastSeen}`);
    assert.equal(events.length, 1);
    assert.equal(events[0]!.type, 'ERROR');
    assert.equal(events[0]!.object.code, 410);
    assert.equal(events[0]!.object.reason, 'Expired');
    assert.equal(events[0]!.object.message, `Too large resource version: ${lastSeen}, current: ${fresh.resourceVersion}`);
  });

  it('still resumes from its own latest resourceVersion', async () => {
    const from = api.store.resourceVersion;
    const events = watchLines(api, `/api/v1/namespaces/shop/configmaps?watch=true&resourceVersion=${from}&timeoutSeconds=1`);
    api.store.put({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'late', namespace: 'shop' } } as never);
    const got = await events;
    assert.deepEqual(
      got.map((e) => [e.type, (e.object.metadata as { name: string }).name]),
      [['ADDED', 'late']],
    );
  });

  it('answers 404 for a kind left out until its CRD is created, then serves it', async () => {
    const path = '/apis/security.istio.io/v1/authorizationpolicies';
    assert.equal((await api.json('GET', path)).code, 404);
    const crd = {
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: { name: 'authorizationpolicies.security.istio.io' },
      spec: {
        group: 'security.istio.io',
        scope: 'Namespaced',
        names: { plural: 'authorizationpolicies', singular: 'authorizationpolicy', kind: 'AuthorizationPolicy', listKind: 'AuthorizationPolicyList' },
        versions: [{ name: 'v1', served: true, storage: true, subresources: { status: {} }, schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } } }],
      },
    };
    assert.equal((await api.json('POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', crd)).code, 201);
    const created = await api.json('POST', '/apis/security.istio.io/v1/namespaces/shop/authorizationpolicies', {
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: { name: 'deny' },
      spec: { action: 'DENY' },
    });
    assert.equal(created.code, 201);
    const list = await api.json('GET', path);
    assert.equal(list.code, 200);
    assert.deepEqual((list.body.items as { metadata: { name: string } }[]).map((i) => i.metadata.name), ['deny']);
  });

  it('closes though a connection is still in its TLS handshake', { timeout: 10_000 }, async () => {
    // What an informer reconnecting at the moment of close() looks like to the server: accepted, not yet HTTP.
    const socket = connect(api.port, '127.0.0.1');
    await once(socket, 'connect');
    const ended = once(socket, 'close');
    await api.close();
    await ended;
    await assert.rejects(api.json('GET', '/api/v1/namespaces'), /ECONNREFUSED/);
  });
});
