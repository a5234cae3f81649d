// The local cluster's Kubernetes API, as kind's control-plane container serves it: an API CA made per cluster, a
// serving certificate for 127.0.0.1, an admin client certificate (`kubernetes-admin`, group `system:masters`) in the
// kubeconfig the supervisor writes, and the cluster's controllers behind the API (admission, pod logs and exec).
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { stringify } from 'yaml';
import { findModelType, parseApiVersion } from '../api/kinds.js';
import type { Resource } from '../api/types.js';
import { ApiServer, type ApiBackend } from '../apiserver/server.js';
import type { KubeObject } from '../apiserver/store.js';
import { createRootCA, signCertificate } from '../identity/certs.js';
import type { LocalCluster } from './cluster.js';
import { contextName } from './kubeconfig.js';

const CERT_TTL_SECONDS = 365 * 24 * 3600;

export interface KubeApiOptions {
  cluster: LocalCluster;
  clusterName: string;
  kubeconfigPath: string;
  backend: Pick<ApiBackend, 'podLog' | 'podExec' | 'authenticateToken' | 'reviewToken'>;
  log: (line: string) => void;
}

async function keyPair(): Promise<{ publicKey: string; privateKey: string }> {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { publicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString(), privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
}

/** Starts the API server on a free loopback port and writes the cluster's kubeconfig; returns the server. */
export async function startKubeApi(opts: KubeApiOptions): Promise<{ server: ApiServer; port: number }> {
  const ca = await createRootCA({ trustDomain: 'kubernetes', commonName: 'kubernetes', ttlSeconds: CERT_TTL_SECONDS * 10 });
  const serving = await keyPair();
  const servingCert = await signCertificate({
    publicKey: serving.publicKey,
    issuerCertPem: ca.certPem,
    issuerKeyPem: ca.keyPem,
    uriSans: [],
    dnsSans: ['localhost', 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc', 'kubernetes.default.svc.cluster.local'],
    ipSans: ['127.0.0.1'],
    ttlSeconds: CERT_TTL_SECONDS,
    subject: 'CN=kube-apiserver',
  });
  const admin = await keyPair();
  const adminCert = await signCertificate({
    publicKey: admin.publicKey,
    issuerCertPem: ca.certPem,
    issuerKeyPem: ca.keyPem,
    uriSans: [],
    ttlSeconds: CERT_TTL_SECONDS,
    subject: 'O=system:masters, CN=kubernetes-admin',
  });
  const { cluster } = opts;
  const backend: ApiBackend = {
    ...opts.backend,
    admit: (object) => (findModelType(object.kind)?.group === parseApiVersion(object.apiVersion).group ? (cluster.admit(object as unknown as Resource) as unknown as KubeObject) : object),
    deleted: (object) => {
      if (findModelType(object.kind)?.group === parseApiVersion(object.apiVersion).group) cluster.released(object as unknown as Resource);
    },
    changed: () => void cluster.reconcile(),
  };
  const server = new ApiServer({ store: cluster.store, tls: { cert: servingCert, key: serving.privateKey, clientCA: ca.certPem }, backend, log: opts.log });
  const port = await server.listen();
  const name = contextName(opts.clusterName);
  const b64 = (pem: string) => Buffer.from(pem).toString('base64');
  const kubeconfig = {
    apiVersion: 'v1',
    kind: 'Config',
    preferences: {},
    clusters: [{ name, cluster: { server: `https://127.0.0.1:${port}`, 'certificate-authority-data': b64(ca.certPem) } }],
    users: [{ name, user: { 'client-certificate-data': b64(adminCert), 'client-key-data': b64(admin.privateKey) } }],
    contexts: [{ name, context: { cluster: name, user: name } }],
    'current-context': name,
  };
  writeFileSync(opts.kubeconfigPath, stringify(kubeconfig), { mode: 0o600 });
  opts.log(`Kubernetes API listening on https://127.0.0.1:${port} (kubeconfig ${opts.kubeconfigPath})`);
  return { server, port };
}
