// The API server's HTTP handling against what kube-apiserver does with the same requests: which paths and verbs it
// serves, how watches behave with slow readers and odd parameters, and the bounds on what a request can cost.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request, type RequestOptions } from 'node:https';
import { createApiCertificates, type ApiCertificates } from '../../src/apiserver/certificates.js';
import { ApiServer } from '../../src/apiserver/server.js';
import { ResourceStore, type KubeObject } from '../../src/apiserver/store.js';

interface Reply {
  status: number;
  body: Record<string, unknown>;
}

describe('ApiServer', () => {
  const store = new ResourceStore();
  let server: ApiServer;
  let port: number;
  let certs: ApiCertificates;

  const options = (method: string, path: string, headers: Record<string, string> = {}): RequestOptions => ({
    host: '127.0.0.1',
    port,
    method,
    path,
    ca: certs.ca,
    cert: certs.clients.admin!.cert,
    key: certs.clients.admin!.key,
    headers: { 'content-type': 'application/json', ...headers },
  });

  const call = (method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Reply> =>
    new Promise((done, fail) => {
      const req = request(options(method, path, headers), (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          done({ status: res.statusCode!, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} });
        });
      });
      req.on('error', fail);
      req.end(body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body));
    });

  const configMap = (namespace: string, name: string, data: Record<string, string> = {}): KubeObject => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace }, data });

  before(async () => {
    certs = await createApiCertificates(['127.0.0.1'], { admin: { user: 'kubernetes-admin', groups: ['system:masters'] } });
    server = new ApiServer({ store, tls: { cert: certs.serving.cert, key: certs.serving.key, clientCA: certs.ca } });
    port = await server.listen();
    for (const name of ['default', 'other']) store.put({ apiVersion: 'v1', kind: 'Namespace', metadata: { name }, status: { phase: 'Active' } } as KubeObject, true);
  });
  after(() => server.close());

  describe("a namespaced type's cluster-wide path", () => {
    it('lists across namespaces but refuses create and deletecollection with 405, as kube-apiserver does', async () => {
      store.write(configMap('default', 'a'), true);
      store.write(configMap('other', 'b'), true);
      const list = await call('GET', '/api/v1/configmaps');
      assert.equal(list.status, 200);
      assert.deepEqual((list.body.items as KubeObject[]).map((o) => `${o.metadata.namespace}/${o.metadata.name}`), ['default/a', 'other/b']);

      const created = await call('POST', '/api/v1/configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'nowhere' } });
      assert.equal(created.status, 405);
      assert.equal(created.body.reason, 'MethodNotAllowed');
      assert.equal(created.body.message, 'the server does not allow this method on the requested resource');
      assert.equal(store.listObjects('', 'ConfigMap').length, 2, 'no object without a namespace is stored');

      const wiped = await call('DELETE', '/api/v1/configmaps');
      assert.equal(wiped.status, 405);
      assert.equal(store.listObjects('', 'ConfigMap').length, 2, 'every namespace keeps its objects');
    });

    it('has no objects under it: a name there is an unknown path, and server-side apply there creates nothing', async () => {
      const get = await call('GET', '/api/v1/configmaps/a');
      assert.equal(get.status, 404);
      assert.equal(get.body.message, 'the server could not find the requested resource');
      const apply = await call('PATCH', '/api/v1/configmaps/c?fieldManager=test', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' } }, { 'content-type': 'application/apply-patch+yaml' });
      assert.equal(apply.status, 404);
      assert.equal(store.getObject('', 'ConfigMap', undefined, 'c'), undefined);
      assert.equal((await call('GET', '/api/v1/configmaps/a/status')).status, 404);
    });

    it("still serves a namespace's own status and the cluster-scoped kinds by name", async () => {
      const status = await call('GET', '/api/v1/namespaces/default/status');
      assert.equal(status.status, 200);
      assert.equal((status.body.metadata as { name: string }).name, 'default');
      assert.equal((await call('GET', '/api/v1/namespaces/other')).status, 200);
    });
  });
});
