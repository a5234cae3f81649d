// Kubernetes API benchmark (`npm run bench:kube-api`): the API server (src/apiserver) over a store of 5,000 pods and
// 1,000 AuthorizationPolicies (a synthetic mesh), measured as kubectl and client-node use it:
// - list all pods as JSON and as kubectl's Table, median of repeated requests, against a peer in the same run: a
//   plain node:https server answering the same bytes, pre-serialized (the floor for "5,000 pods over HTTPS");
// - @kubernetes/client-node informers (pods and AuthorizationPolicies, all namespaces) until their first sync;
// - watch delivery: 1,000 pod changes written to the store, until one watching client has read them all;
// - the process's RSS with the objects stored, and after the informers synced.
// Method and results: docs/performance.md.
import { createServer } from 'node:https';
import { request } from 'node:https';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { KubeConfig, makeInformer, CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { createApiCertificates, kubeconfigFor, type ApiCertificates } from '../src/apiserver/certificates.js';
import { ApiServer } from '../src/apiserver/server.js';
import { ResourceStore } from '../src/apiserver/store.js';
import { syntheticMesh, type MeshScale } from './lib/mesh.js';
import { fmtMs, markdownTable, MiB, nowMs, percentile } from './lib/stats.js';

const FULL: MeshScale & { repeats: number; changes: number } = { namespaces: 50, nodes: 10, pods: 5_000, services: 500, policies: 1_000, repeats: 20, changes: 1_000 };
const QUICK: MeshScale & { repeats: number; changes: number } = { namespaces: 10, nodes: 4, pods: 500, services: 50, policies: 100, repeats: 5, changes: 100 };
const TABLE_ACCEPT = 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json';

const { values } = parseArgs({ options: { quick: { type: 'boolean' }, json: { type: 'string' } } });
const scale = values.quick ? QUICK : FULL;

/** One GET with the admin certificate; resolves with the body size once it is read whole. */
function get(port: number, path: string, certs: ApiCertificates, accept = 'application/json'): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, ca: certs.ca, cert: certs.clients.admin!.cert, key: certs.clients.admin!.key, headers: { accept }, agent: false }, (res) => {
      let size = 0;
      res.on('data', (d: Buffer) => (size += d.length));
      res.on('end', () => (res.statusCode === 200 ? resolve(size) : reject(new Error(`GET ${path}: ${res.statusCode}`))));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

async function medianMs(repeats: number, fn: () => Promise<unknown>): Promise<number> {
  const samples: number[] = [];
  await fn(); // warm-up
  for (let i = 0; i < repeats; i++) {
    const t = nowMs();
    await fn();
    samples.push(nowMs() - t);
  }
  return percentile(samples, 50);
}

const rssMiB = () => process.memoryUsage().rss / MiB;

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'ambit-bench-kube-'));
  const rssStart = rssMiB();
  const store = new ResourceStore();
  const mesh = syntheticMesh(scale);
  const fillStart = nowMs();
  for (const r of mesh.resources) store.put(r, true);
  const fillMs = nowMs() - fillStart;
  const rssStored = rssMiB();
  const certs = await createApiCertificates(['127.0.0.1'], { admin: { user: 'kubernetes-admin', groups: ['system:masters'] } });
  const server = new ApiServer({ store, tls: { cert: certs.serving.cert, key: certs.serving.key, clientCA: certs.ca } });
  const port = await server.listen();
  // The peer: the same list, serialized once, from a plain HTTPS server.
  const podList = JSON.stringify({ kind: 'PodList', apiVersion: 'v1', metadata: { resourceVersion: String(store.resourceVersion) }, items: store.listObjects('', 'Pod') });
  const peer = createServer({ cert: certs.serving.cert, key: certs.serving.key, ca: certs.ca, requestCert: true }, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(podList);
  });
  await new Promise<void>((r) => peer.listen(0, '127.0.0.1', r));
  const peerPort = (peer.address() as { port: number }).port;
  try {
    const listJson = await medianMs(scale.repeats, () => get(port, '/api/v1/pods', certs));
    const listPeer = await medianMs(scale.repeats, () => get(peerPort, '/api/v1/pods', certs));
    const listTable = await medianMs(scale.repeats, () => get(port, '/api/v1/pods?limit=500', certs, TABLE_ACCEPT));
    const listPolicies = await medianMs(scale.repeats, () => get(port, '/apis/security.istio.io/v1/authorizationpolicies', certs));
    const jsonBytes = await get(port, '/api/v1/pods', certs);

    // client-node informers, as the control plane runs them.
    const kubeconfigPath = join(dir, 'kubeconfig');
    writeFileSync(kubeconfigPath, stringify(kubeconfigFor('bench', `https://127.0.0.1:${port}`, certs.ca, certs.clients.admin!)));
    const kc = new KubeConfig();
    kc.loadFromFile(kubeconfigPath);
    const core = kc.makeApiClient(CoreV1Api);
    const custom = kc.makeApiClient(CustomObjectsApi);
    const syncStart = nowMs();
    const pods = makeInformer(kc, '/api/v1/pods', () => core.listPodForAllNamespaces());
    const policies = makeInformer(kc, '/apis/security.istio.io/v1/authorizationpolicies', () =>
      custom.listClusterCustomObject({ group: 'security.istio.io', version: 'v1', plural: 'authorizationpolicies' }) as never,
    );
    let added = 0;
    const want = scale.pods + scale.policies;
    const synced = new Promise<void>((resolve) => {
      const onAdd = () => {
        if (++added === want) resolve();
      };
      pods.on('add', onAdd);
      policies.on('add', onAdd);
    });
    await Promise.all([pods.start(), policies.start()]);
    await synced;
    const informerSyncMs = nowMs() - syncStart;
    const rssSynced = rssMiB();

    // Watch delivery: changes to pods until the informer has seen every one.
    let updates = 0;
    const allSeen = new Promise<void>((resolve) => pods.on('update', () => ++updates === scale.changes && resolve()));
    const podsInStore = store.listObjects('', 'Pod');
    const watchStart = nowMs();
    for (let i = 0; i < scale.changes; i++) {
      const p = podsInStore[i % podsInStore.length]!;
      store.put({ ...p, metadata: { ...p.metadata, labels: { ...p.metadata.labels, round: String(i) } } });
    }
    await allSeen;
    const watchMs = nowMs() - watchStart;
    await pods.stop();
    await policies.stop();

    const rows = [
      ['list all pods (JSON)', fmtMs(listJson), fmtMs(listPeer), `${(listJson / listPeer).toFixed(2)}×`],
      ['list all pods (Table, kubectl get -A)', fmtMs(listTable), '', ''],
      [`list all ${scale.policies} AuthorizationPolicies`, fmtMs(listPolicies), '', ''],
      [`informers synced (${scale.pods} pods + ${scale.policies} policies)`, fmtMs(informerSyncMs), '', ''],
      [`${scale.changes} pod changes delivered to an informer`, fmtMs(watchMs), '', `${Math.round(scale.changes / (watchMs / 1000))} events/s`],
    ];
    process.stdout.write(`\nKubernetes API: ${scale.pods} pods, ${scale.services} services, ${scale.policies} policies (${(jsonBytes / MiB).toFixed(1)} MiB pod list)\n\n`);
    process.stdout.write(markdownTable(['', 'Ambit API server', 'static HTTPS peer', 'ratio / rate'], rows));
    process.stdout.write(
      `\nstore filled in ${fmtMs(fillMs)}; RSS ${rssStart.toFixed(0)} MiB at start, ${rssStored.toFixed(0)} MiB with the objects stored, ${rssSynced.toFixed(0)} MiB with the informers synced (same process)\n`,
    );
    if (values.json) {
      writeFileSync(
        values.json,
        JSON.stringify({ scale, listJsonMs: listJson, listPeerMs: listPeer, listRatio: listJson / listPeer, listTableMs: listTable, listPoliciesMs: listPolicies, informerSyncMs, watchMs, rssMiB: { start: rssStart, stored: rssStored, synced: rssSynced } }, null, 2),
      );
    }
  } finally {
    await server.close();
    peer.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error)?.stack ?? err}\n`);
  process.exit(1);
});
