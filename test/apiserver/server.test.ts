// The API server's HTTP handling against what kube-apiserver does with the same requests: which paths and verbs it
// serves, how watches behave with slow readers and odd parameters, and the bounds on what a request can cost.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request, type RequestOptions } from 'node:https';
import type { IncomingMessage } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
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

  /** Opens a request and hands back the response unread. */
  const open = (method: string, path: string): Promise<IncomingMessage> =>
    new Promise((done, fail) => {
      const req = request(options(method, path), done);
      req.on('error', fail);
      req.end();
    });

  /** Reads a watch stream until it ends; the events it carried. */
  const events = (res: IncomingMessage): Promise<{ type: string; object: KubeObject }[]> =>
    new Promise((done, fail) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', fail);
      res.on('end', () => done(Buffer.concat(chunks).toString().split('\n').filter(Boolean).map((line) => JSON.parse(line) as { type: string; object: KubeObject })));
    });

  const configMap = (namespace: string, name: string, data: Record<string, string> = {}): KubeObject => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace }, data });

  before(async () => {
    certs = await createApiCertificates(['127.0.0.1'], { admin: { user: 'kubernetes-admin', groups: ['system:masters'] } });
    server = new ApiServer({
      store,
      tls: { cert: certs.serving.cert, key: certs.serving.key, clientCA: certs.ca },
      // A stand-in token authenticator: "pod-token" is a service account's, anything else is not a token.
      backend: { authenticateToken: async (token) => (token === 'pod-token' ? { username: 'system:serviceaccount:default:web', groups: ['system:serviceaccounts', 'system:authenticated'] } : undefined) },
    });
    port = await server.listen();
    for (const name of ['default', 'other']) store.put({ apiVersion: 'v1', kind: 'Namespace', metadata: { name }, status: { phase: 'Active' } } as KubeObject, true);
  });
  after(() => server.close());

  describe('authorization', () => {
    /** A request with a bearer token and no client certificate. */
    const withToken = (method: string, path: string, token: string, body?: unknown): Promise<Reply> =>
      new Promise((done, fail) => {
        const req = request({ host: '127.0.0.1', port, method, path, ca: certs.ca, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' } }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => done({ status: res.statusCode!, body: JSON.parse(Buffer.concat(chunks).toString() || '{}') as Record<string, unknown> }));
        });
        req.on('error', fail);
        req.end(body === undefined ? undefined : JSON.stringify(body));
      });

    it("gives a service account token no access to resources, with kube-apiserver's Forbidden texts", async () => {
      const list = await withToken('GET', '/api/v1/namespaces/default/pods', 'pod-token');
      assert.equal(list.status, 403);
      assert.equal(list.body.reason, 'Forbidden');
      assert.equal(list.body.message, 'pods is forbidden: User "system:serviceaccount:default:web" cannot list resource "pods" in API group "" in the namespace "default"');
      const exec = await withToken('POST', '/api/v1/namespaces/istio-system/pods/ztunnel-x/exec?command=sh', 'pod-token');
      assert.equal(exec.body.message, 'pods "ztunnel-x" is forbidden: User "system:serviceaccount:default:web" cannot create resource "pods/exec" in API group "" in the namespace "istio-system"');
      const nodes = await withToken('GET', '/api/v1/nodes?watch=true', 'pod-token');
      assert.equal(nodes.body.message, 'nodes is forbidden: User "system:serviceaccount:default:web" cannot watch resource "nodes" in API group "" at the cluster scope');
      const create = await withToken('POST', '/api/v1/namespaces/default/configmaps', 'pod-token', configMap('default', 'sneaky'));
      assert.equal(create.status, 403);
      assert.equal(store.getObject('', 'ConfigMap', 'default', 'sneaky'), undefined);
      // Discovery stays open to every authenticated caller, as kube's system:discovery role has it.
      assert.equal((await withToken('GET', '/api', 'pod-token')).status, 200);
    });

    it('answers a token what it may do (nothing), and refuses what is no token', async () => {
      const review = { apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectAccessReview', spec: { resourceAttributes: { verb: 'list', resource: 'pods', namespace: 'default' } } };
      const asToken = await withToken('POST', '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', 'pod-token', review);
      assert.equal(asToken.status, 201);
      assert.equal((asToken.body.status as { allowed: boolean }).allowed, false);
      const asAdmin = await call('POST', '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', review);
      assert.equal((asAdmin.body.status as { allowed: boolean }).allowed, true);
      assert.equal((await withToken('GET', '/api/v1/namespaces/default/pods', 'forged')).status, 401);
    });
  });

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

  describe('namespace deletion', () => {
    it("refuses to delete default, kube-system and kube-public with NamespaceLifecycle's 403, also in a collection whose others go", async () => {
      for (const name of ['kube-system', 'doomed']) store.put({ apiVersion: 'v1', kind: 'Namespace', metadata: { name }, status: { phase: 'Active' } } as KubeObject, true);
      for (const name of ['default', 'kube-system', 'kube-public']) {
        const r = await call('DELETE', `/api/v1/namespaces/${name}`);
        assert.equal(r.status, 403, name);
        assert.equal(r.body.message, `namespaces "${name}" is forbidden: this namespace may not be deleted`);
        assert.equal(r.body.reason, 'Forbidden');
      }
      assert.ok(store.getObject('', 'Namespace', undefined, 'default'));
      const r = await call('DELETE', '/api/v1/namespaces?labelSelector=');
      assert.equal(r.status, 403);
      assert.equal(store.getObject('', 'Namespace', undefined, 'doomed'), undefined, 'the deletable namespaces of the collection are gone');
      assert.ok(store.getObject('', 'Namespace', undefined, 'default'));
      assert.ok(store.getObject('', 'Namespace', undefined, 'kube-system'));
      // The suite's other tests use `other`.
      store.put({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'other' }, status: { phase: 'Active' } } as KubeObject, true);
    });
  });

  describe('paths', () => {
    it('answers a malformed escape in the path with 400 and escapes of bytes that are not UTF-8 with 404, never an internal error', async () => {
      const bad = await call('GET', '/api/v1/namespaces/default/configmaps/%zz');
      assert.equal(bad.status, 400);
      assert.equal(bad.body.message, 'invalid URL escape "%zz"');
      assert.equal((await call('GET', '/api/v1/namespaces/default/configmaps/%ff')).status, 404);
      assert.equal((await call('GET', '/api/v1/namespaces/default/configmaps/a%2Fb')).status, 404);
    });
  });

  describe('watch', () => {
    it('closes a watch whose client stops reading once it has fallen far behind, and the client resumes from the last event it read', async () => {
      const res = await open('GET', '/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=10&resourceVersion=' + store.resourceVersion);
      res.pause();
      const big = 'x'.repeat(256 * 1024);
      const total = 200; // 50 MiB of events, far beyond what a stalled client may leave queued
      for (let i = 0; i < total; i++) store.write(configMap('default', 'flood', { big, i: String(i) }), true);
      res.resume();
      const got = await events(res);
      assert.ok(got.length > 0 && got.length < total, `the watch ended early (${got.length} of ${total} events)`);
      // What it sent is whole and in order: an informer resumes from the last resourceVersion it saw.
      const last = got[got.length - 1]!.object.metadata.resourceVersion!;
      const rest = await open('GET', `/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=${last}&timeoutSeconds=1`);
      const more = await events(rest);
      assert.equal(got.length + more.length, total);
      assert.equal((more[more.length - 1]!.object.data as Record<string, string>).i, String(total - 1));
    });

    it('serializes a change once for all the watchers of its type, not once per watcher', async () => {
      const watches = await Promise.all(Array.from({ length: 5 }, () => open('GET', '/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=1&resourceVersion=' + store.resourceVersion)));
      const streams = watches.map(events);
      const stringify = JSON.stringify;
      let serialized = 0;
      JSON.stringify = ((value: unknown, ...rest: []) => {
        if ((value as { type?: string } | null)?.type === 'MODIFIED') serialized++;
        return stringify(value, ...rest);
      }) as typeof JSON.stringify;
      try {
        store.write(configMap('default', 'shared', { v: '1' }), true);
        store.write(configMap('default', 'shared', { v: '2' }), true);
      } finally {
        JSON.stringify = stringify;
      }
      assert.equal(serialized, 1);
      for (const got of await Promise.all(streams)) assert.deepEqual(got.map((e) => [e.type, (e.object.data as Record<string, string>).v]), [['ADDED', '1'], ['MODIFIED', '2']]);
    });

    it('reads timeoutSeconds as kube-apiserver does: 0 is the default, and a deadline beyond a timer is not "at once"', async () => {
      const zero = await open('GET', '/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=0');
      const long = await open('GET', '/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=3000000');
      let ended = 0;
      for (const res of [zero, long]) {
        res.on('end', () => ended++);
        res.resume();
      }
      await sleep(1500);
      assert.equal(ended, 0, 'both watches are still open');
      zero.destroy();
      long.destroy();
    });
  });

  describe('status and scale patches', () => {
    const deployment = (): KubeObject => ({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'web', namespace: 'default' },
      spec: { replicas: 1, selector: { matchLabels: { app: 'web' } }, template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'web', image: 'nginx' }] } } },
      status: { replicas: 1 },
    });

    it('answers a body that does not parse with 400, not an internal error', async () => {
      store.write(deployment(), true);
      for (const sub of ['status', 'scale']) {
        const reply = await call('PATCH', `/apis/apps/v1/namespaces/default/deployments/web/${sub}`, '{"spec":', { 'content-type': 'application/merge-patch+json' });
        assert.equal(reply.status, 400, `${sub}: ${JSON.stringify(reply.body)}`);
        assert.equal(reply.body.reason, 'BadRequest');
        assert.match(String(reply.body.message), /^error decoding patch: /);
      }
    });

    it('takes a server-side apply of status as YAML, as kubectl apply --server-side --subresource=status sends it', async () => {
      store.write(deployment(), true);
      const yaml = 'apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: default\nstatus:\n  readyReplicas: 1\n';
      const reply = await call('PATCH', '/apis/apps/v1/namespaces/default/deployments/web/status?fieldManager=test&force=true', yaml, { 'content-type': 'application/apply-patch+yaml' });
      assert.equal(reply.status, 200, JSON.stringify(reply.body));
      assert.equal((store.getObject('apps', 'Deployment', 'default', 'web')!.status as { readyReplicas?: number }).readyReplicas, 1);
    });
  });
});
