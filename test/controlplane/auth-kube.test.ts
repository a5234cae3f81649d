// Callers authenticated as istiod does with a Kubernetes API: TokenReviewAuthenticator against a real API server
// (src/apiserver over HTTPS, the TokenReview answered by the local cluster's ServiceAccountIssuer, pods read back
// through the API). A ztunnel's service account token (a trusted node account) makes a node caller on its pod's node;
// any other pod's token a service account caller; refusals say why in istiod's and kube's words. Then the assembled
// control plane reading that API: a ztunnel's token gets xDS and the certificates of its own node's pods only, through
// the real CA client.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ResourceStore, type KubeObject } from '../../src/apiserver/store.js';
import { AuthenticationError, DEFAULT_TRUSTED_NODE_ACCOUNTS, parseTrustedNodeAccounts } from '../../src/controlplane/auth.js';
import { TokenReviewAuthenticator } from '../../src/controlplane/kube-auth.js';
import { KubeClient, loadKubeConfig } from '../../src/controlplane/kube-client.js';
import type { Logger } from '../../src/controlplane/log.js';
import { runControlPlane, type RunningControlPlane } from '../../src/controlplane/run.js';
import { ServiceAccountIssuer, type TokenSubject } from '../../src/local/tokens.js';
import { SecretManager } from '../../src/xds/ca-client.js';
import { TYPE_ADDRESS } from '../../src/xds/types.js';
import { TestApiServer } from '../support/api-server.js';
import { eventually } from '../support/eventually.js';
import { RecordingLog } from '../ztunnel/helpers.js';
import { AdsStream } from './helpers.js';

const CLUSTER = 'failed to validate the JWT from cluster "Kubernetes": ';

const namespace = (name: string, labels: Record<string, string> = {}): KubeObject => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } });
const serviceAccount = (ns: string, name: string): KubeObject => ({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace: ns } });
const pod = (ns: string, name: string, sa: string, node: string, ip: string): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace: ns, labels: { app: name } },
  spec: { nodeName: node, serviceAccountName: sa, containers: [{ name: 'app', image: 'app:1' }] },
  status: { phase: 'Running', podIP: ip },
});

/** The API store of a two-node cluster: a ztunnel pod per node, and workloads in the ambient namespace `shop`. */
function cluster(): ResourceStore {
  const store = new ResourceStore();
  store.put(namespace('istio-system'), true);
  store.put(namespace('shop', { 'istio.io/dataplane-mode': 'ambient' }), true);
  for (const [ns, sa] of [['istio-system', 'ztunnel'], ['istio-system', 'default'], ['shop', 'web'], ['shop', 'api'], ['shop', 'wp']]) store.put(serviceAccount(ns!, sa!));
  store.put(pod('istio-system', 'ztunnel-a', 'ztunnel', 'node-1', '172.18.0.2'), true);
  store.put(pod('istio-system', 'ztunnel-b', 'ztunnel', 'node-2', '172.18.0.3'), true);
  store.put(pod('istio-system', 'debug', 'default', 'node-2', '172.18.0.3'), true);
  store.put(pod('shop', 'web', 'web', 'node-1', '10.244.1.5'), true);
  store.put(pod('shop', 'api', 'api', 'node-2', '10.244.2.5'), true);
  store.put(pod('shop', 'wp-1', 'wp', 'node-1', '10.244.1.6'), true);
  return store;
}

/** An API server over `store` whose TokenReviews the issuer answers, as the local cluster's does; `reviews` counts them. */
function apiServer(store: ResourceStore, issuer: ServiceAccountIssuer, dir: string, reviews = { count: 0 }): Promise<TestApiServer> {
  return TestApiServer.start({
    store,
    dir,
    backend: {
      reviewToken: (token, audiences) => {
        reviews.count++;
        return issuer.review(token, audiences, (kind, ns, name) => store.getObject('', kind, ns, name)?.metadata.uid);
      },
    },
  });
}

/** What the kubelet would give the pod's `istio-token` volume: bound to the pod (its current uid) and node. */
function subjectOf(store: ResourceStore, ns: string, name: string): TokenSubject {
  const p = store.getObject('', 'Pod', ns, name)!;
  const sa = (p.spec as { serviceAccountName: string }).serviceAccountName;
  return {
    namespace: ns,
    serviceAccount: sa,
    serviceAccountUid: store.getObject('', 'ServiceAccount', ns, sa)!.metadata.uid!,
    pod: { name, uid: p.metadata.uid! },
    node: (p.spec as { nodeName: string }).nodeName,
  };
}

async function assertRefused(auth: TokenReviewAuthenticator, token: string, why: string | RegExp): Promise<void> {
  await assert.rejects(auth.authenticate(token), (e: Error) => {
    assert.ok(e instanceof AuthenticationError, `${e.name}: ${e.message}`);
    if (typeof why === 'string') assert.equal(e.message, why);
    else assert.match(e.message, why);
    return true;
  });
}

describe('TokenReviewAuthenticator', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ambit-kube-auth-'));
  let store: ResourceStore;
  let issuer: ServiceAccountIssuer;
  let api: TestApiServer;
  let client: KubeClient;
  let auth: TokenReviewAuthenticator;
  const reviews = { count: 0 };
  const tokenOf = (ns: string, name: string) => issuer.token(subjectOf(store, ns, name));

  before(async () => {
    store = cluster();
    issuer = await ServiceAccountIssuer.load(join(dir, 'sa.key'), join(dir, 'sa.jwks.json'));
    api = await apiServer(store, issuer, dir, reviews);
    client = new KubeClient(loadKubeConfig(api.kubeconfigPath));
    auth = new TokenReviewAuthenticator({ client, trustedNodeAccounts: new Set(DEFAULT_TRUSTED_NODE_ACCOUNTS), cacheMs: 0 });
  });
  after(async () => {
    client.close();
    await api.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("makes a ztunnel's token a node caller, on the node of the pod it is bound to", async () => {
    assert.deepEqual(await auth.authenticate(await tokenOf('istio-system', 'ztunnel-a')), { node: 'node-1' });
    assert.deepEqual(await auth.authenticate(await tokenOf('istio-system', 'ztunnel-b')), { node: 'node-2' });
  });

  it("makes any other pod's token a service account caller with its pod", async () => {
    const wp = store.getObject('', 'Pod', 'shop', 'wp-1')!;
    assert.deepEqual(await auth.authenticate(await tokenOf('shop', 'wp-1')), { serviceAccount: { namespace: 'shop', name: 'wp', pod: { name: 'wp-1', uid: wp.metadata.uid } } });
    // A pod of istio-system that is not a node proxy is a workload like any other.
    assert.deepEqual((await auth.authenticate(await tokenOf('istio-system', 'debug'))).serviceAccount?.name, 'default');
  });

  it("refuses a ztunnel token once its pod is deleted, and when the pod is replaced, in kube's words", async () => {
    const token = await tokenOf('istio-system', 'ztunnel-b');
    const old = store.getObject('', 'Pod', 'istio-system', 'ztunnel-b')!;
    assert.equal((await api.json('DELETE', '/api/v1/namespaces/istio-system/pods/ztunnel-b')).code, 200);
    await assertRefused(auth, token, `${CLUSTER}the service account authentication returns an error: [invalid bearer token, service account token has been invalidated]`);
    // Re-created under the same name on another node: another pod, whose node the old token does not speak for.
    assert.equal((await api.json('POST', '/api/v1/namespaces/istio-system/pods', pod('istio-system', 'ztunnel-b', 'ztunnel', 'node-1', '172.18.0.2'))).code, 201);
    const now = store.getObject('', 'Pod', 'istio-system', 'ztunnel-b')!;
    await assertRefused(
      auth,
      token,
      `${CLUSTER}the service account authentication returns an error: [invalid bearer token, pod UID (${now.metadata.uid}) does not match service account pod ref claim (${old.metadata.uid})]`,
    );
    assert.deepEqual(await auth.authenticate(await tokenOf('istio-system', 'ztunnel-b')), { node: 'node-1' });
  });

  it('refuses a token for another audience', async () => {
    const token = await issuer.token(subjectOf(store, 'istio-system', 'ztunnel-a'), { audiences: ['vault'], expirationSeconds: 3600 });
    await assertRefused(auth, token, `${CLUSTER}the service account authentication returns an error: [invalid bearer token, token audiences ["vault"] is invalid for the target audiences ["istio-ca"]]`);
  });

  it('refuses a token of another issuer, and one that is no JWT', async () => {
    const other = await ServiceAccountIssuer.load(join(dir, 'other.key'), join(dir, 'other.jwks.json'));
    await assertRefused(auth, await other.token(subjectOf(store, 'istio-system', 'ztunnel-a')), new RegExp(`^${CLUSTER}the service account authentication returns an error: \\[invalid bearer token, `));
    await assertRefused(auth, 'token-node-1', new RegExp(`^${CLUSTER}the service account authentication returns an error: \\[invalid bearer token, `));
  });

  it('refuses tokens bound to no pod: a node proxy would name no node, a workload must show its pod', async () => {
    const { pod: _, ...unbound } = subjectOf(store, 'istio-system', 'ztunnel-a');
    await assertRefused(auth, await issuer.token(unbound), 'the token of node proxy service account istio-system/ztunnel is not bound to a pod, so it names no node');
    const { pod: __, ...unboundWp } = subjectOf(store, 'shop', 'wp-1');
    await assertRefused(auth, await issuer.token(unboundWp), 'service account token of shop/wp is not bound to a pod: only a projected token of a pod is accepted');
  });

  it("refuses a ztunnel token bound to a pod of another service account (istiod's node authorizer check)", async () => {
    // The API server refuses to issue such a token, as kube-apiserver does…
    const ztunnelSa = '/api/v1/namespaces/istio-system/serviceaccounts/ztunnel/token';
    const request = { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { audiences: ['istio-ca'], boundObjectRef: { kind: 'Pod', apiVersion: 'v1', name: 'debug' } } };
    const refused = await api.json('POST', ztunnelSa, request);
    assert.deepEqual([refused.code, refused.body.message], [400, 'cannot bind token for serviceaccount "ztunnel" to pod running with different serviceaccount name.']);
    // …and should one exist anyway (an issuer that does not check), the control plane does not take the pod's node.
    const forged = await issuer.token({ ...subjectOf(store, 'istio-system', 'debug'), serviceAccount: 'ztunnel', serviceAccountUid: store.getObject('', 'ServiceAccount', 'istio-system', 'ztunnel')!.metadata.uid! });
    await assertRefused(auth, forged, 'pod found, but ServiceAccount does not match: default vs ztunnel');
  });

  it('trusts other node accounts when told to (CA_TRUSTED_NODE_ACCOUNTS)', async () => {
    const debugIsNode = new TokenReviewAuthenticator({ client, trustedNodeAccounts: new Set(parseTrustedNodeAccounts('istio-system/ztunnel, istio-system/default', 'CA_TRUSTED_NODE_ACCOUNTS')), cacheMs: 0 });
    assert.deepEqual(await debugIsNode.authenticate(await tokenOf('istio-system', 'debug')), { node: 'node-2' });
    assert.throws(() => parseTrustedNodeAccounts('istio-system/ztunnel,ztunnel', 'CA_TRUSTED_NODE_ACCOUNTS'), /^Error: CA_TRUSTED_NODE_ACCOUNTS: invalid entry "ztunnel": expected <namespace>\/<service account>/);
  });

  it('remembers an accepted token for a while (one review for concurrent calls), never a refused one', async () => {
    const cached = new TokenReviewAuthenticator({ client, trustedNodeAccounts: new Set(DEFAULT_TRUSTED_NODE_ACCOUNTS), cacheMs: 500 });
    const token = await tokenOf('istio-system', 'ztunnel-a');
    const before = reviews.count;
    const [a, b] = await Promise.all([cached.authenticate(token), cached.authenticate(token)]);
    assert.deepEqual([a, b], [{ node: 'node-1' }, { node: 'node-1' }]);
    assert.deepEqual(await cached.authenticate(token), { node: 'node-1' });
    assert.equal(reviews.count - before, 1, 'three calls, one TokenReview');
    // The pod goes: the remembered answer holds until it expires, then the review refuses the token.
    const ztunnelA = store.getObject('', 'Pod', 'istio-system', 'ztunnel-a')!;
    store.removeObject('', 'Pod', 'istio-system', 'ztunnel-a');
    assert.deepEqual(await cached.authenticate(token), { node: 'node-1' });
    await eventually('the remembered answer to expire', async () => {
      try {
        await cached.authenticate(token);
        return false;
      } catch (e) {
        return e instanceof AuthenticationError;
      }
    });
    // Refusals are asked again: with the pod back (the same uid), the token passes at once.
    store.put(ztunnelA, true);
    assert.deepEqual(await cached.authenticate(token), { node: 'node-1' });
  });
});

describe('the control plane reading Kubernetes authenticates ztunnels by their service account token', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ambit-kube-auth-cp-'));
  const quiet: Logger = { info: () => undefined, warn: () => undefined, error: () => undefined };
  const WEB = 'spiffe://cluster.local/ns/shop/sa/web';
  const API = 'spiffe://cluster.local/ns/shop/sa/api';
  let store: ResourceStore;
  let issuer: ServiceAccountIssuer;
  let api: TestApiServer;
  let cp: RunningControlPlane;
  let secrets: SecretManager;
  const tokenFile = join(dir, 'istio-token');

  before(async () => {
    store = cluster();
    issuer = await ServiceAccountIssuer.load(join(dir, 'sa.key'), join(dir, 'sa.jwks.json'));
    api = await apiServer(store, issuer, dir);
    cp = await runControlPlane({ config: [], kubernetes: { kubeconfig: api.kubeconfigPath }, stateDir: dir, listen: '127.0.0.1:0', debugListen: '127.0.0.1:0', logger: () => quiet });
    await issuer.writeToken(tokenFile, subjectOf(store, 'istio-system', 'ztunnel-a'));
    secrets = new SecretManager({
      caAddress: `127.0.0.1:${cp.server.port}`,
      serverName: 'istiod.istio-system.svc',
      rootPem: cp.server.rootPem,
      tokenFile,
      ttlSeconds: 3600,
      log: new RecordingLog().logger('cert'),
      initialRetryMs: 60_000,
      requestTimeoutMs: 5000,
    });
  });
  after(async () => {
    secrets?.close();
    await cp?.close();
    await api.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("issues node-1's ztunnel the certificate of a pod on node-1", async () => {
    assert.equal((await secrets.fetch(WEB)).identity, WEB);
  });

  it('refuses it the certificate of a pod on node-2', async () => {
    await assert.rejects(secrets.fetch(API), new RegExp(`PERMISSION_DENIED: node node-1 may not request a certificate for ${API}: no pod with that identity is scheduled on it$`));
  });

  it('serves it xDS, and refuses a stream whose token the cluster does not vouch for', async () => {
    const ads = new AdsStream(cp.server.port, cp.server.rootPem, await issuer.token(subjectOf(store, 'istio-system', 'ztunnel-a')));
    try {
      ads.subscribe(TYPE_ADDRESS);
      const names = (await ads.next()).resources.map((r) => r.name);
      assert.ok(names.includes('Kubernetes//Pod/shop/web'), names.join(', '));
    } finally {
      ads.close();
    }
    const stranger = new AdsStream(cp.server.port, cp.server.rootPem, await issuer.token(subjectOf(store, 'istio-system', 'ztunnel-a'), { audiences: ['vault'], expirationSeconds: 3600 }));
    const error = await stranger.closed;
    stranger.close();
    assert.match(error?.details ?? '', /^authentication failure: failed to validate the JWT from cluster "Kubernetes": .*token audiences \["vault"\] is invalid/);
  });

  it('refuses node tokens and issuer keys: with a Kubernetes API the cluster reviews every token', async () => {
    writeFileSync(join(dir, 'node-tokens.json'), '{}');
    await assert.rejects(
      runControlPlane({ config: [], kubernetes: { kubeconfig: api.kubeconfigPath }, stateDir: dir, nodeTokens: join(dir, 'node-tokens.json'), logger: () => quiet }),
      /^Error: --node-tokens and --service-account-jwks serve a control plane without a Kubernetes API/,
    );
  });
});
